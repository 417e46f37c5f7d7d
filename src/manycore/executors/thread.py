"""ThreadExecutor: a drop-in ``concurrent.futures.ThreadPoolExecutor`` with ``pmap``.

Same constructor (``max_workers``, ``thread_name_prefix``, ``initializer``,
``initargs``), same ``submit``/``map``/``shutdown`` semantics and the same
``BrokenThreadPool`` when an initializer fails — it *is* a
``ThreadPoolExecutor``.  Threads share the GIL: they speed up I/O and code that
releases the GIL (NumPy, native kernels), not pure-Python CPU work.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._contract import ManycoreExecutor, NotifyCancelledOnShutdown

R = TypeVar("R")


class ThreadExecutor(NotifyCancelledOnShutdown, ThreadPoolExecutor, ManycoreExecutor):
    """A ``ThreadPoolExecutor`` whose futures cancelled by ``shutdown`` wake ``wait``/``as_completed``."""

    backend_name = "threads"

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future = super().submit(fn, *args, **kwargs)
        self._watch(future)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self._cancelling_on_shutdown = True
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
