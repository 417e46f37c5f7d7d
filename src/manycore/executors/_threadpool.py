"""The thread pool behind ``ThreadExecutor`` and ``AsyncExecutor``'s plain calls.

``ThreadPoolExecutor``'s semantics, on manycore's own threads:

* threads start on demand, one per call that finds no idle thread, up to
  ``max_workers``; a thread runs ``initializer(*initargs)`` first, and one
  that fails breaks the pool (``BrokenThreadPool`` for every pending call and
  every later ``submit``);
* ``shutdown(wait, cancel_futures)``: no more calls; queued calls still run
  unless cancelled; ``wait`` joins the threads;
* when the main thread ends (before ``atexit`` handlers, as the stdlib's
  pools), every pool finishes its queue and its threads are joined; a pool
  whose executor was collected stops its threads.

And what :mod:`manycore.executors._work` adds: nested waits run the awaited
call inline, and an abandoned call (``pmap``'s ``task_timeout``) holds
neither ``shutdown(wait=True)`` nor the interpreter's exit.  For that the
threads are daemon threads, joined by the exit hook themselves, except the
abandoned ones.  An abandoned thread no longer counts towards
``max_workers`` (the pool may start another) and exits when its call returns.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

from ._contract import register_exit_hook
from ._work import OwnFuture, WorkItem, cancel, drain, warn_abandoned

_exiting = False
_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()
_prefixes = itertools.count()
_local = threading.local()  # .pool: the pool whose worker this thread is


class ThreadPool:
    """Threads serving :class:`~manycore.executors._work.OwnFuture` calls; see the module docstring."""

    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        finalizer: Callable[[], object] | None = None,
    ) -> None:
        """``finalizer()``: run by each thread as it exits, whatever the reason (after its initializer
        ran, failed or not); an exception it raises is logged."""
        self.max_workers = max_workers
        self._finalizer = finalizer
        self.prefix = thread_name_prefix or f"ThreadPoolExecutor-{next(_prefixes)}"
        self._initializer = initializer
        self._initargs = initargs
        self._queue: queue.SimpleQueue[WorkItem | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Exact, under the lock: calls in the queue, and threads free to take
        # one (waiting in get() or about to).  A thread starts only when the
        # queue holds more calls than there are free threads.  (A count of
        # idle threads released *after* a thread took its next call would go
        # stale and let an urgent call wait behind the very call waiting for it.)
        self._queued = 0
        self._free = 0
        self._threads: set[threading.Thread] = set()  # live, not abandoned
        self._abandoned: dict[threading.Thread, str] = {}  # thread -> what it still runs
        self._names = itertools.count()
        self.broken: str | None = None
        self.closed = False
        self.pid = os.getpid()
        _pools.add(self)

    # ---------------------------------------------------------- caller side
    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        beyond_limit: bool = False,
    ) -> OwnFuture[Any]:
        """Queue a call.  ``beyond_limit``: start a thread for it even with ``max_workers`` busy
        (a worker waits for it); the pool shrinks back as calls end."""
        future: OwnFuture[Any] = OwnFuture(self)
        with self._lock:
            if self.pid != os.getpid():
                raise RuntimeError("this executor was created before fork(); its threads are in the parent")
            if self.broken is not None:
                raise BrokenThreadPool(self.broken)
            if self.closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            item = WorkItem(future, fn, args, kwargs)
            self._queue.put(item)
            self._queued += 1
            try:
                self._grow(beyond_limit)
            except BaseException:  # no thread could start (e.g. gh-113964 at exit): it never runs
                item.claim()
                raise
        return future

    def _grow(self, beyond_limit: bool) -> None:  # under the lock
        if self._free >= self._queued:
            return  # a free thread takes the call
        if len(self._threads) < self.max_workers or beyond_limit:
            thread = threading.Thread(
                target=self._work, name=f"{self.prefix}_{next(self._names)}", daemon=True
            )
            thread.start()
            self._threads.add(thread)
            self._free += 1

    def on_own_worker(self) -> bool:
        return getattr(_local, "pool", None) is self

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        with self._lock:
            if self.pid != os.getpid():
                self.closed = True
                return
            self.closed = True
            if cancel_futures:
                self._cancel_queued()
            self._queue.put(None)  # each thread passes it on as it exits
        if wait:
            self.join()

    def join(self) -> None:
        """Wait for every thread but the abandoned ones (and the calling one)."""
        me = threading.current_thread()
        with self._lock:
            threads = [t for t in self._threads if t is not me]
        for thread in threads:
            thread.join()

    def abandon(self, future: Any, what: str) -> None:
        """Give up on ``future``'s running call: nothing waits for its thread any more."""
        item = getattr(future, "_item", None)
        thread = item.thread if item is not None else None
        if thread is None:
            return
        with self._lock:
            if thread in self._threads:
                self._threads.discard(thread)
                self._abandoned[thread] = what

    def _cancel_queued(self) -> None:  # under the lock
        self._queued -= drain(self._queue, cancel)

    def _fail_queued(self, reason: str) -> None:  # under the lock
        def fail(item: WorkItem) -> None:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(BrokenThreadPool(reason))

        self._queued -= drain(self._queue, fail)

    # ---------------------------------------------------------- worker side
    def _work(self) -> None:
        try:
            self._serve()
        finally:
            if self._finalizer is not None:
                try:
                    self._finalizer()
                except BaseException:
                    logging.getLogger("concurrent.futures").exception("Exception in a thread's finalizer:")

    def _serve(self) -> None:
        me = threading.current_thread()
        _local.pool = self
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except BaseException:
                logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
                with self._lock:
                    self.broken = "A thread initializer failed, the thread pool is not usable anymore"
                    self._threads.discard(me)
                    self._free -= 1
                    self._fail_queued(self.broken)
                return
        get = self._queue.get
        while True:
            item = get()
            if item is not None:
                with self._lock:
                    self._queued -= 1
                    self._free -= 1
                item.run()
                del item
                with self._lock:
                    if self._abandoned.pop(me, None) is not None:
                        return  # its call came back late: leave, a new thread took its place
                    if len(self._threads) > self.max_workers and self._queued <= self._free:
                        self._threads.discard(me)  # started beyond the limit: shrink back
                        return
                    self._free += 1
                continue
            with self._lock:
                self._threads.discard(me)
                self._free -= 1
            self._queue.put(None)  # the next thread exits too
            return

    def warn_abandoned(self) -> None:
        with self._lock:
            left = [(t, what) for t, what in self._abandoned.items() if t.is_alive()]
        for thread, what in left:
            warn_abandoned(f"thread {thread.name!r}", what)


def stop(pool: ThreadPool) -> None:
    """The executor was collected: its threads finish the queue and exit."""
    pool.shutdown(wait=False, cancel_futures=False)


def _stop_all_at_exit() -> None:
    global _exiting
    _exiting = True
    pools = [p for p in list(_pools) if p.pid == os.getpid()]
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=False)

    for pool in pools:
        pool.join()
        pool.warn_abandoned()


register_exit_hook(_stop_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pools.clear)
