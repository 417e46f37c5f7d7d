"""ThreadExecutor: a drop-in ``concurrent.futures.ThreadPoolExecutor`` with ``pmap``.

Same constructor (``max_workers``, ``thread_name_prefix``, ``initializer``,
``initargs``), same ``submit``/``map``/``shutdown`` semantics and the same
``BrokenThreadPool`` when an initializer fails — it *is* a
``ThreadPoolExecutor``.  Threads share the GIL: they speed up I/O and code that
releases the GIL (NumPy, native kernels), not pure-Python CPU work.

One deliberate difference: leaving a ``with`` block by Ctrl-C cancels the
queued calls (``shutdown(wait=True, cancel_futures=True)``) instead of
running the whole queue before the ``KeyboardInterrupt`` gets through.

After ``fork()`` the child has none of the worker threads: its copy of the
executor refuses ``submit`` with ``RuntimeError`` (the stdlib pool accepts the
call and never runs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._contract import ManycoreExecutor, NotifyCancelledOnShutdown

R = TypeVar("R")


class ThreadExecutor(NotifyCancelledOnShutdown, ThreadPoolExecutor, ManycoreExecutor):
    """A ``ThreadPoolExecutor`` whose futures cancelled by ``shutdown`` wake ``wait``/``as_completed``."""

    backend_name = "threads"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pid = os.getpid()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        if self._pid != os.getpid():
            raise RuntimeError("this ThreadExecutor was created before fork(); its threads are in the parent")
        future = super().submit(fn, *args, **kwargs)
        self._watch(future)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self._cancelling_on_shutdown = True
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
