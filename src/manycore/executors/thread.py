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

import os
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._contract import ManycoreExecutor, MapPlan, check_max_workers
from ._threadpool import ThreadPool, stop

R = TypeVar("R")
Initializer = Callable[..., object] | None


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
        count = check_max_workers(max_workers, self._default_workers())
        # the stdlib's own checks (initializer callable); it starts no thread
        super().__init__(count, thread_name_prefix, initializer, initargs)
        self._pool = self._make_pool(count, thread_name_prefix, initializer, initargs)
        self._finalizer = weakref.finalize(self, stop, self._pool)

    @classmethod
    def _default_workers(cls) -> int:
        return default_max_workers()

    def _make_pool(self, count: int, prefix: str, init: Initializer, initargs: tuple[Any, ...]) -> ThreadPool:
        """The pool of threads behind this executor (subclasses give the threads more to do)."""
        return ThreadPool(count, prefix, init, initargs)

    @property
    def max_workers(self) -> int:
        """How many threads may run calls at once."""
        return self._pool.max_workers

    @property
    def thread_pool(self) -> ThreadPool:
        """The pool of manycore threads behind this executor (``AsyncExecutor`` submits to it directly)."""
        return self._pool

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._pool.submit(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures)

    def map_plan(self) -> MapPlan:
        """Batches on ``max_workers`` threads; a call that overran ``task_timeout`` is abandoned."""
        return MapPlan(workers=self.max_workers, abandon=self._pool.abandon, timed_from_start=True)


def default_max_workers() -> int:
    """The stdlib's default: ``min(32, CPUs + 4)`` (CPUs this process may use, on 3.13+ as there)."""
    count = getattr(os, "process_cpu_count", os.cpu_count)
    return min(32, (count() or 1) + 4)
