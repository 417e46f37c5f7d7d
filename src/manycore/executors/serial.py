"""SerialExecutor: the executor contract with no concurrency at all.

``submit`` runs the call immediately in the calling thread and returns an
already-finished future.  It is the reference every other backend is tested
against, and what ``pmap`` picks for work too small to be worth shipping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ._contract import ManycoreExecutor

R = TypeVar("R")


class SerialExecutor(ManycoreExecutor):
    backend_name = "serial"

    def __init__(self, max_workers: int | None = None, **_ignored: Any) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers <= 0):
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = 1
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future[R] = Future()
        if not future.set_running_or_notify_cancel():  # pragma: no cover - new futures are never cancelled
            return future
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt / SystemExit are not task failures
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
