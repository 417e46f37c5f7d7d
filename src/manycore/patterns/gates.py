"""Gate and Countdown: Event-based coordination of workers.

``Gate``
    A start gate.  Workers ``wait()`` until a coordinator calls ``open()``;
    then every current and future ``wait()`` returns ``True`` at once, until
    ``close()`` is called.  Use it to release N workers together (so that a
    measurement does not include their start-up) or to hold them until set-up
    is done.
``Countdown``
    A latch (Java's ``CountDownLatch``).  Created with a count; each
    ``count_down()`` lowers it; when it reaches zero every ``wait()`` returns
    ``True``, for good.  Use it to wait for "all N workers are ready" or "all
    N parts are done" without joining threads one by one.

Both mirror ``threading.Event``: ``wait(timeout=None) -> bool`` returns
``True`` when the awaited state holds (immediately if it already does) and
``False`` if ``timeout`` seconds pass first.  A negative timeout behaves like
zero, as in ``threading.Event``.

With ``ctx=None`` they work between threads of one process.  Pass a
``multiprocessing`` context (``multiprocessing.get_context("spawn")``) to get a
version built on that context's ``Event``/``Lock``/``Value`` that can be handed
to child processes as a ``Process`` argument (it cannot be sent through a
``Queue`` or to a ``Pool``, like any multiprocessing synchronisation object).
"""

from __future__ import annotations

import threading
from multiprocessing.context import BaseContext
from typing import Any, Protocol

from ._checks import check_int

__all__ = ["Countdown", "Gate"]


class _EventLike(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = ...) -> bool: ...


def _make_event(ctx: BaseContext | None) -> _EventLike:
    return threading.Event() if ctx is None else ctx.Event()


class Gate:
    """A start gate: ``wait()`` blocks until ``open()``.

    Opening is permanent until ``close()``; waiters released by an ``open()``
    stay released even if ``close()`` follows immediately (unlike a
    ``Condition`` notification, nothing is lost if a worker arrives late).
    """

    def __init__(self, *, ctx: BaseContext | None = None) -> None:
        self._event = _make_event(ctx)

    def open(self) -> None:
        """Release every waiter, now and until ``close()``."""
        self._event.set()

    def close(self) -> None:
        """Make later ``wait()`` calls block again."""
        self._event.clear()

    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the gate is open; ``True`` if it is, ``False`` if ``timeout`` expired first."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Gate {'open' if self.is_open() else 'closed'}>"


class _Box:
    """Same shape as a raw ``multiprocessing.Value``: one mutable ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


class Countdown:
    """A latch released when ``count_down()`` has been called ``count`` times.

    ``count_down(n)`` lowers the count by ``n`` and returns what is left;
    lowering it below zero raises ``ValueError`` and changes nothing (a
    count-down that does not match the initial count is a bug worth seeing).
    ``Countdown(0)`` is open from the start.
    """

    def __init__(self, count: int, *, ctx: BaseContext | None = None) -> None:
        check_int(count, "count", minimum=0)
        self._initial = count
        self._event = _make_event(ctx)
        self._lock: Any
        self._count: Any
        if ctx is None:
            self._lock = threading.Lock()
            self._count = _Box(count)
        else:
            self._lock = ctx.Lock()
            self._count = ctx.Value("q", count, lock=False)
        if count == 0:
            self._event.set()

    @property
    def initial(self) -> int:
        """The count given at construction."""
        return self._initial

    @property
    def count(self) -> int:
        """The remaining count (a snapshot)."""
        with self._lock:
            return int(self._count.value)

    def count_down(self, n: int = 1) -> int:
        """Lower the count by ``n`` (>= 1); at zero, release every waiter.  Returns the remaining count."""
        check_int(n, "n", minimum=1)
        with self._lock:
            left = int(self._count.value) - n
            if left < 0:
                raise ValueError(
                    f"count_down({n}) with only {left + n} left: more count-downs than the initial count {self._initial}"
                )
            self._count.value = left
            if left == 0:
                self._event.set()
            return left

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the count is zero; ``True`` if it is, ``False`` if ``timeout`` expired first."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Countdown {self.count}/{self._initial} left>"
