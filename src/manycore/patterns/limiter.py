"""Limiter and AsyncLimiter: at most ``limit`` concurrent users of a resource.

Both are built on a bounded semaphore (``threading.BoundedSemaphore`` and
``asyncio.BoundedSemaphore``) and share one contract:

* At most ``limit`` holders at any moment.  ``active`` is the number of current
  holders and ``peak`` the largest value ``active`` has reached; both count
  only holders of this limiter.
* ``acquire(blocking=True, timeout=None) -> bool`` mirrors
  ``threading.Semaphore.acquire``: ``True`` once a slot is held; ``False`` if
  ``blocking=False`` and no slot is free, or if ``timeout`` seconds pass first.
  Passing a timeout with ``blocking=False`` raises ``ValueError`` and a
  negative timeout acts as zero, both as in ``threading``.
* ``release()`` gives a slot back; releasing more often than acquiring raises
  ``ValueError`` (the *bounded* semaphore's check) and leaves the limiter
  unchanged.
* As a context manager (``with limiter:`` / ``async with limiter:``) the slot
  is released on every exit path, exceptions and cancellation included.
* As a decorator, every call of the decorated function holds a slot for its
  whole duration (for ``AsyncLimiter``: for the whole awaited coroutine).

Waiters are woken in FIFO order by ``asyncio``; ``threading`` makes no
fairness promise.  Use ``Limiter`` from threads and ``AsyncLimiter`` from
coroutines of one event loop: a ``Limiter`` would block the whole loop.

The seed's second Semaphore program ("c) Semaphore") nests its join loop in
its start loop (so it joins a thread that was never started and raises
``RuntimeError``) and uses a plain ``Semaphore``, which anyone may release;
here a release without an acquire is an error, not a silent increase of the
limit.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from ._checks import check_int

__all__ = ["AsyncLimiter", "Limiter"]

P = ParamSpec("P")
R = TypeVar("R")


def _check_acquire_args(blocking: bool, timeout: float | None) -> None:
    if not blocking and timeout is not None:
        raise ValueError("can't specify timeout for non-blocking acquire")


class _Slots:
    """What both limiters count: the limit, the holders now, the most holders at once."""

    def __init__(self, limit: int) -> None:
        self._limit = check_int(limit, "limit", minimum=1)
        self._active = 0
        self._peak = 0

    @property
    def limit(self) -> int:
        """The maximum number of simultaneous holders."""
        return self._limit

    def _took(self) -> bool:
        self._active += 1
        self._peak = max(self._peak, self._active)
        return True


class Limiter(_Slots):
    """At most ``limit`` threads inside at once; a context manager and a decorator.

    >>> db = Limiter(2)
    >>> with db:          # blocks while two other threads are inside
    ...     pass
    >>> @db
    ... def query(sql: str) -> str:
    ...     return sql
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._sem = threading.BoundedSemaphore(limit)
        self._count_lock = threading.Lock()

    @property
    def active(self) -> int:
        """Current number of holders (a snapshot)."""
        with self._count_lock:
            return self._active

    @property
    def peak(self) -> int:
        """Largest number of simultaneous holders seen so far (never more than ``limit``)."""
        with self._count_lock:
            return self._peak

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; see the module docstring for the exact semantics."""
        _check_acquire_args(blocking, timeout)
        if not self._sem.acquire(blocking, timeout):
            return False
        with self._count_lock:
            self._took()
        return True

    def release(self) -> None:
        """Give a slot back.  Raises ``ValueError`` if no slot is held."""
        with self._count_lock:
            # BoundedSemaphore raises ValueError on over-release; do it first so
            # a failed release leaves the counters untouched.
            self._sem.release()
            self._active -= 1

    def __enter__(self) -> Limiter:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` so that every call holds a slot."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError("Limiter cannot guard a coroutine function; use AsyncLimiter")

        @functools.wraps(fn)
        def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return fn(*args, **kwargs)

        return limited

    def __repr__(self) -> str:
        return f"<Limiter {self.active}/{self._limit} active, peak {self.peak}>"


class AsyncLimiter(_Slots):
    """At most ``limit`` coroutines inside at once; an async context manager and a decorator.

    Same contract as ``Limiter``, with ``await limiter.acquire(...)`` and
    ``async with limiter:``.  Not thread-safe: use it from one event loop.

    >>> api = AsyncLimiter(10)
    >>> @api
    ... async def fetch(url: str) -> str:
    ...     return url
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._sem = asyncio.BoundedSemaphore(limit)

    @property
    def active(self) -> int:
        """Current number of holders."""
        return self._active

    @property
    def peak(self) -> int:
        """Largest number of simultaneous holders seen so far (never more than ``limit``)."""
        return self._peak

    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; see the module docstring for the exact semantics.

        Cancellation while waiting leaves no slot held.
        """
        _check_acquire_args(blocking, timeout)
        if not blocking:
            if self._sem.locked():
                return False
            await self._sem.acquire()  # free slot and no waiters: completes without suspending
            return self._took()
        if timeout is None:
            await self._sem.acquire()
            return self._took()
        # A task plus asyncio.wait rather than asyncio.wait_for: on 3.10
        # wait_for can time out *after* the inner acquire succeeded and lose
        # the slot.  Here a late success is kept (and reported as True).
        task = asyncio.ensure_future(self._sem.acquire())
        try:
            await asyncio.wait({task}, timeout=max(timeout, 0.0))
        except BaseException:
            self._abandon(task)
            raise
        if task.done():
            if task.cancelled():
                return False
            task.result()
            return self._took()
        self._abandon(task)
        return False

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        """Give up on an acquire task; if it acquired anyway, hand the slot back."""

        def give_back(t: asyncio.Future[Any]) -> None:
            if not t.cancelled() and t.exception() is None:
                self._sem.release()

        if task.done():
            give_back(task)
        else:
            task.cancel()
            task.add_done_callback(give_back)

    def release(self) -> None:
        """Give a slot back.  Raises ``ValueError`` if no slot is held."""
        self._sem.release()
        self._active -= 1

    async def __aenter__(self) -> AsyncLimiter:
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Decorate coroutine function ``fn`` so that every awaited call holds a slot."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("AsyncLimiter guards coroutine functions (async def); use Limiter for plain ones")

        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self:
                return await fn(*args, **kwargs)

        return limited

    def __repr__(self) -> str:
        return f"<AsyncLimiter {self._active}/{self._limit} active, peak {self._peak}>"
