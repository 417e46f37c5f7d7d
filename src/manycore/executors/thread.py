"""ThreadExecutor: a drop-in ``concurrent.futures.ThreadPoolExecutor`` with ``pmap``.

Same constructor (``max_workers``, ``thread_name_prefix``, ``initializer``,
``initargs``), same ``submit``/``map``/``shutdown`` semantics and the same
``BrokenThreadPool`` when an initializer fails; ``isinstance(executor,
ThreadPoolExecutor)`` holds.  The threads are manycore's own
(:mod:`manycore.executors._threadpool`).  Threads share the GIL: they speed
up I/O and code that releases the GIL (NumPy, native kernels), not pure-Python
CPU work, except on a free-threaded build with the GIL off.

Where it differs from the stdlib, deliberately:

* leaving a ``with`` block by Ctrl-C cancels the queued calls
  (``shutdown(wait=True, cancel_futures=True)``) instead of running the whole
  queue before the ``KeyboardInterrupt`` gets through;
* a task that waits (``result()``/``exception()``) on a call of the same
  executor that no thread has taken yet runs it inline instead of
  deadlocking when every thread is busy;
* a call ``pmap`` abandoned after its ``task_timeout`` holds neither
  ``shutdown(wait=True)`` nor the interpreter's exit (a ``RuntimeWarning``
  at exit names it);
* futures cancelled by ``shutdown(cancel_futures=True)`` wake
  ``wait``/``as_completed`` at once;
* after ``fork()`` the child has none of the threads: its copy of the
  executor refuses ``submit`` with ``RuntimeError`` (the stdlib pool accepts
  the call and never runs it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._contract import ManycoreExecutor, MapPlan
from ._threadpool import ThreadPool, stop

R = TypeVar("R")


class ThreadExecutor(ThreadPoolExecutor, ManycoreExecutor):
    """A ``ThreadPoolExecutor`` on manycore's own threads (see the module docstring)."""

    backend_name = "threads"

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        # the stdlib's checks and defaults (max_workers, initializer); it starts no thread
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)
        self._threads_core = ThreadPool(self._max_workers, thread_name_prefix, initializer, initargs)
        self._finalizer = weakref.finalize(self, stop, self._threads_core)

    @property
    def max_workers(self) -> int:
        """How many threads may run calls at once."""
        return self._threads_core.max_workers

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._threads_core.submit(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._threads_core.shutdown(wait, cancel_futures)

    def map_plan(self) -> MapPlan:
        """Batches on ``max_workers`` threads; a call that overran ``task_timeout`` is abandoned."""
        return MapPlan(workers=self.max_workers, abandon=self._threads_core.abandon)
