"""BoundedBuffer: a Condition-based producer/consumer buffer, done right.

The seed's Condition programs (``unit5``, "e) Condition") wait with an ``if``
or wait unconditionally, so a notification sent before the consumer waits is
lost and the consumer sleeps forever; they also have no way to say "no more
items".  This buffer keeps every wait inside a predicate loop
(``Condition.wait_for``), so spurious or early wake-ups are harmless, and has a
``close()`` that every waiter observes.

Semantics mirror ``queue.Queue`` (and, for ``close``, Python 3.13's
``queue.Queue.shutdown``):

``put(item, block=True, timeout=None)``
    Appends ``item``.  If the buffer is full: with ``block=False`` raises
    ``queue.Full`` at once (``timeout`` is ignored); with ``timeout=None``
    waits until there is room; with ``timeout >= 0`` waits at most that many
    seconds and then raises ``queue.Full``.  With ``block=True`` a negative
    timeout raises ``ValueError`` (whether or not the call would wait).  Raises ``Closed`` if the buffer is closed when called or
    becomes closed while waiting; the item is then not added.
``get(block=True, timeout=None)``
    Removes and returns the oldest item (FIFO).  Items put before ``close()``
    are still returned after it ("drain"); once the buffer is closed *and*
    empty, raises ``Closed`` (immediately, even with ``block=True``).  If it is
    empty and open: ``block=False`` raises ``queue.Empty``, a timeout raises
    ``queue.Empty`` when it expires.  With ``block=True`` a negative timeout
    raises ``ValueError``.  ``Closed`` takes precedence over ``ValueError``.
``close(immediate=False)``
    Idempotent.  Wakes every thread waiting in ``put`` or ``get``.  Later
    ``put`` calls raise ``Closed``.  With ``immediate=True`` the remaining
    items are discarded, so every ``get`` raises ``Closed`` from then on.

No item is lost or duplicated: each successful ``put`` is matched by exactly
one successful ``get`` unless ``close(immediate=True)`` discards it.
``qsize()``, ``empty()`` and ``full()`` are snapshots, stale as soon as they
return (as in ``queue``).  The buffer is for threads of one process; for
processes use ``multiprocessing.Queue`` (or ``manycore.patterns.Pipeline``).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

from ..errors import Closed
from ._checks import check_int

__all__ = ["BoundedBuffer", "Closed"]

T = TypeVar("T")


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class BoundedBuffer(Generic[T]):
    """A FIFO buffer of at most ``maxsize`` items shared by producer and consumer threads.

    ``maxsize`` must be >= 1 (unlike ``queue.Queue``, there is no "unbounded"
    setting: the bound is the point).  See the module docstring for the exact
    semantics of ``put``, ``get`` and ``close``.  Iterating over the buffer
    yields items until it is closed and drained.
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = check_int(maxsize, "maxsize", minimum=1)
        self._items: deque[T] = deque()
        self._closed = False
        # One lock, two conditions: producers wait on not_full, consumers on
        # not_empty, so a put wakes a consumer and never another producer.
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    # predicates, evaluated with the lock held
    def _can_put(self) -> bool:
        return self._closed or len(self._items) < self._maxsize

    def _can_get(self) -> bool:
        return self._closed or bool(self._items)

    @property
    def maxsize(self) -> int:
        """The capacity given at construction."""
        return self._maxsize

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called (items may still be waiting to be drained)."""
        with self._lock:
            return self._closed

    def qsize(self) -> int:
        """Number of items currently buffered (a snapshot)."""
        with self._lock:
            return len(self._items)

    def empty(self) -> bool:
        """True if no item is buffered (a snapshot)."""
        with self._lock:
            return not self._items

    def full(self) -> bool:
        """True if ``maxsize`` items are buffered (a snapshot)."""
        with self._lock:
            return len(self._items) >= self._maxsize

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Append ``item``; may block while full.  Raises ``queue.Full``, ``Closed`` or ``ValueError``."""
        with self._not_full:
            if self._closed:
                raise Closed("put() on a closed BoundedBuffer")
            if block:
                _check_timeout(timeout)
            if len(self._items) >= self._maxsize:
                if not block:
                    raise queue.Full
                if not self._not_full.wait_for(self._can_put, timeout):
                    raise queue.Full
                if self._closed:
                    raise Closed("BoundedBuffer closed while put() was waiting")
            self._items.append(item)
            self._not_empty.notify()

    def put_nowait(self, item: T) -> None:
        """``put(item, block=False)``."""
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item; may block while empty.  Raises ``queue.Empty``, ``Closed`` or ``ValueError``."""
        with self._not_empty:
            if block:
                _check_timeout(timeout)
            if not self._items:
                if self._closed:
                    raise Closed("get() on a closed and drained BoundedBuffer")
                if not block:
                    raise queue.Empty
                if not self._not_empty.wait_for(self._can_get, timeout):
                    raise queue.Empty
                if not self._items:
                    raise Closed("BoundedBuffer closed (and drained) while get() was waiting")
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def get_nowait(self) -> T:
        """``get(block=False)``."""
        return self.get(block=False)

    def close(self, immediate: bool = False) -> None:
        """Close the buffer and wake every waiter; with ``immediate=True`` also discard buffered items."""
        with self._lock:
            self._closed = True
            if immediate:
                self._items.clear()
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def __iter__(self) -> Iterator[T]:
        """Yield items (blocking) until the buffer is closed and drained."""
        while True:
            try:
                yield self.get()
            except Closed:
                return

    def __repr__(self) -> str:
        with self._lock:
            state = "closed" if self._closed else "open"
            return f"<BoundedBuffer {state} {len(self._items)}/{self._maxsize}>"
