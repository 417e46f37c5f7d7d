"""Items run one at a time under a time limit, in this process: ``task_timeout`` where nothing can be killed.

pmap runs user code in the calling process in two places: the auto
backend's probe (the first items, timed serially) and the serial backend.
With ``task_timeout`` (or an overall ``timeout``) set, such an item must not
hold the map for longer than that.  A thread cannot be killed, so a
:class:`Helper` runs each item on a daemon thread of its own while the caller
waits for at most the limit; an item that overruns fails with
``TimeoutError``, its thread is *abandoned* (it runs on, and nothing waits
for it: the interpreter still exits, and a ``RuntimeWarning`` at exit says
what it still runs) and the next item gets a new thread.

Without a limit the items run in the calling thread, as before: no thread
hand-off, and ``KeyboardInterrupt`` arrives inside the item.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .._workers.batches import Failures, run_chunk
from ..executors._contract import register_exit_hook
from ..executors._work import warn_abandoned

#: What pmap raises when its overall ``timeout`` passes.
MAP_TIMEOUT_MESSAGE = "pmap did not finish within its timeout"
#: The longest a wait for a helper's item blocks in one go: Ctrl-C is seen within this.
WAIT_SLICE_S = 0.25

_abandoned: list[tuple[threading.Thread, str]] = []
_abandoned_lock = threading.Lock()


def abandon(thread: threading.Thread, what: str) -> None:
    """Nothing waits for ``thread`` (a daemon thread) any more; at exit a warning says it ran ``what``."""
    with _abandoned_lock:
        _abandoned.append((thread, what))


def overrun_error(index: int, task_timeout: float) -> TimeoutError:
    return TimeoutError(
        f"item {index} exceeded task_timeout={task_timeout:g}s "
        "(it ran in this process, where it cannot be killed; its thread was abandoned)"
    )


class Overran(Exception):
    """An item ran past its limit (raised inside this module only)."""


class Helper:
    """Runs calls one at a time on a daemon thread; a call past its limit is abandoned with its thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: (
            queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None] | None
        ) = None

    def call(self, fn: Callable[[], Any], limit_s: float, what: str) -> tuple[Any, float, float]:
        """``(fn(), wall_s, cpu_s)``, timed on the helper thread; :class:`Overran` after ``limit_s``."""
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._jobs,), name=self._name, daemon=True).start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        deadline = time.monotonic() + limit_s
        while not done.wait(min(WAIT_SLICE_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                jobs, self._jobs = self._jobs, None
                jobs.put(None)  # the abandoned thread exits once its call returns
                abandon(box["thread"], what)
                raise Overran(what)
        if "error" in box:
            raise box["error"]
        return box["value"], box["wall"], box["cpu"]

    def close(self) -> None:
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None


def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None]) -> None:
    me = threading.current_thread()
    while True:
        job = jobs.get()
        if job is None:
            return
        fn, box, done = job
        box["thread"] = me
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        box["wall"], box["cpu"] = time.perf_counter() - w0, time.thread_time() - c0
        done.set()
        del job, fn, box, done


def run_one(
    fn: Callable[[Any], Any],
    item: Any,
    index: int,
    task_timeout: float | None,
    deadline: float | None,
    helper: Helper | None,
) -> tuple[list[Any], Failures, float, float, bool]:
    """``fn(item)`` as :func:`run_chunk` reports it, wall and CPU seconds, and whether it overran.

    With a ``task_timeout`` or a ``deadline`` (``time.monotonic()``), on
    ``helper``'s thread: past ``task_timeout`` the item fails with
    ``TimeoutError``; past the deadline the map does (``TimeoutError`` raised).
    """
    limits = [
        *([task_timeout] if task_timeout is not None else []),
        *([deadline - time.monotonic()] if deadline is not None else []),
    ]
    if not limits or helper is None:
        w0, c0 = time.perf_counter(), time.thread_time()
        values, failures = run_chunk(fn, [item])
        return values, failures, time.perf_counter() - w0, time.thread_time() - c0, False
    limit_s = max(0.0, min(limits))
    what = f"item {index} of pmap({fn_name(fn)}, ...)"
    try:
        (values, failures), wall, cpu = helper.call(lambda: run_chunk(fn, [item]), limit_s, what)
    except Overran:
        if task_timeout is None or (deadline is not None and time.monotonic() >= deadline):
            raise TimeoutError(MAP_TIMEOUT_MESSAGE) from None
        return [None], {0: (overrun_error(index, task_timeout), "")}, limit_s, 0.0, True
    return values, failures, wall, cpu, False


def fn_name(fn: Any) -> str:
    """How messages name ``fn``."""
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


def _warn_abandoned_at_exit() -> None:
    with _abandoned_lock:
        left = [(t, what) for t, what in _abandoned if t.is_alive()]
    for thread, what in left:
        warn_abandoned(f"thread {thread.name!r}", what)


register_exit_hook(_warn_abandoned_at_exit)
