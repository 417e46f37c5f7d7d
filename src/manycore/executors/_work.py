"""Work items of the in-process pools (threads, native threads, asyncio's calls) and their futures.

Two things the stdlib's ``ThreadPoolExecutor`` cannot do, shared by
``ThreadExecutor``, ``NativeExecutor`` and ``AsyncExecutor``'s plain calls:

* **A nested wait does not deadlock.**  A task that submits to its own
  executor and waits for the result (``future.result()`` or
  ``future.exception()``) while every worker is busy would wait for ever: the
  call sits in the queue behind it.  Here a worker that waits on a future of
  its own pool that no worker has taken yet runs that call itself, inline, and
  then returns its result.  Each call still runs exactly once: the queue entry
  is claimed first, and the worker that later dequeues it skips it.
  (``concurrent.futures.wait()`` and ``as_completed()`` do not go through
  the future's methods: from inside a task, wait on ``result()``.)
* **An abandoned call does not hold the interpreter.**  ``pmap``'s
  ``task_timeout`` gives up on a call that overran (a thread cannot be
  killed); the thread running it is then *abandoned*: no ``shutdown`` and no
  interpreter exit waits for it (a ``RuntimeWarning`` at exit names what it
  still runs), and it exits once its call returns.
"""

from __future__ import annotations

import queue
import threading
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

R = TypeVar("R")


class Owner(Protocol):
    """The pool a future belongs to, as its nested waits see it."""

    def on_own_worker(self) -> bool: ...


class WorkItem:
    """One call: claimed once, by the worker that dequeues it or by a worker that waits on it."""

    __slots__ = ("args", "fn", "future", "kwargs", "taken", "thread")

    _claim_lock = threading.Lock()

    def __init__(
        self, future: OwnFuture[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.taken = False
        self.thread: threading.Thread | None = None  # the thread running it, once it runs
        future._item = self

    def claim(self) -> bool:
        with WorkItem._claim_lock:
            if self.taken:
                return False
            self.taken = True
            return True

    def run(self) -> None:
        """Run the call if nobody has claimed it (call from the thread that runs it)."""
        if not self.claim():
            return
        future = self.future
        if not future.set_running_or_notify_cancel():
            future._item = None
            return
        self.thread = threading.current_thread()
        try:
            result = self._call()
        except BaseException as exc:
            future._item = None  # future -> item -> future: break the cycle before waking waiters
            future.set_exception(exc)
            # exc -> traceback -> this frame -> self: break the cycle (as the stdlib does).
            self = None  # type: ignore[assignment]
        else:
            future._item = None
            future.set_result(result)

    def _call(self) -> Any:
        # Whoever result() wakes may reuse or free what the call took (a buffer
        # it exported, say): neither the item nor this thread holds it by then.
        fn, args, kwargs = self.fn, self.args, self.kwargs
        del self.fn, self.args, self.kwargs
        return fn(*args, **kwargs)


class OwnFuture(Future[R]):
    """A future whose ``result()``/``exception()`` from a worker of its own pool runs the call inline."""

    def __init__(self, owner: Owner) -> None:
        super().__init__()
        self._owner = weakref.ref(owner)
        self._item: WorkItem | None = None

    def _run_here_if_queued(self) -> None:
        item = self._item
        if item is None or item.taken:
            return
        owner = self._owner()
        if owner is not None and owner.on_own_worker():
            item.run()

    def result(self, timeout: float | None = None) -> R:
        self._run_here_if_queued()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._run_here_if_queued()
        return super().exception(timeout)


def warn_abandoned(who: str, what: str) -> None:
    """At exit: ``who`` (a thread) still runs ``what``, a call given up on after its task_timeout."""
    warnings.warn_explicit(  # at exit no frame of the user's is left to point at
        f"{who} still runs {what}, abandoned after its task_timeout; "
        "the interpreter exits without waiting for it",
        RuntimeWarning,
        filename="manycore",
        lineno=0,
    )


def drain(calls: queue.SimpleQueue[WorkItem | None], settle: Callable[[WorkItem], None]) -> int:
    """Empty a pool's queue: each call nobody has claimed yet is ``settle``d (never run).

    Returns how many calls (stop marks aside) it took out of the queue."""
    taken = 0
    while True:
        try:
            item = calls.get_nowait()
        except queue.Empty:
            return taken
        if item is not None:
            taken += 1
            if item.claim():
                settle(item)


def cancel(item: WorkItem) -> None:
    """Cancel a queued call, waking ``wait()``/``as_completed()`` (the stdlib's pools do not)."""
    if item.future.cancel():
        item.future.set_running_or_notify_cancel()
