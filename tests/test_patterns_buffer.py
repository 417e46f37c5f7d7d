"""BoundedBuffer: queue.Queue semantics (same tests run on queue.Queue), close(), stress, model check."""

from __future__ import annotations

import queue
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from manycore.patterns import BoundedBuffer, Closed

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)

JOIN_S = 20.0  # hang guard for every join in this module


def start(fn: Callable[[], Any]) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def join_all(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(JOIN_S)
        assert not t.is_alive(), f"{t.name} still running: deadlock?"


def wait_until(pred: Callable[[], bool], what: str, timeout: float = JOIN_S) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def waiters(buf: Any) -> int:
    """Threads blocked in put() or get() (CPython's Condition keeps them in _waiters)."""
    if isinstance(buf, BoundedBuffer):
        return len(buf._not_empty._waiters) + len(buf._not_full._waiters)  # type: ignore[attr-defined]
    return len(buf.not_empty._waiters) + len(buf.not_full._waiters)  # type: ignore[attr-defined]


# --- the same semantics tests, run on queue.Queue and on BoundedBuffer ---------------

FACTORIES = [pytest.param(queue.Queue, id="queue.Queue"), pytest.param(BoundedBuffer, id="BoundedBuffer")]


@pytest.fixture(params=FACTORIES)
def make(request: pytest.FixtureRequest) -> Callable[[int], Any]:
    factory = request.param
    return lambda maxsize: factory(maxsize)


def test_fifo_and_sizes(make: Callable[[int], Any]) -> None:
    q = make(3)
    assert q.empty()
    assert not q.full()
    assert q.qsize() == 0
    for x in ("a", None, 3):
        q.put(x)
    assert q.full()
    assert q.qsize() == 3
    assert not q.empty()
    assert [q.get(), q.get(), q.get()] == ["a", None, 3]
    assert q.empty()


def test_nonblocking_raises_full_and_empty(make: Callable[[int], Any]) -> None:
    q = make(1)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(block=False)
    q.put_nowait(1)
    with pytest.raises(queue.Full):
        q.put_nowait(2)
    with pytest.raises(queue.Full):
        q.put(2, block=False, timeout=5)  # timeout ignored when not blocking
    assert q.get(block=False, timeout=-1) == 1  # ... and not validated either


def test_timeouts_raise_after_waiting(make: Callable[[int], Any]) -> None:
    q = make(1)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.02)
    with pytest.raises(queue.Empty):
        q.get(timeout=0)
    q.put(1)
    with pytest.raises(queue.Full):
        q.put(2, timeout=0.02)
    with pytest.raises(queue.Full):
        q.put(2, timeout=0)
    assert q.get(timeout=0) == 1


def test_negative_timeout_is_value_error_when_blocking(make: Callable[[int], Any]) -> None:
    q = make(2)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)  # even with room: queue.Queue validates first
    q.put(1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-0.5)  # even with an item
    q.put(2, block=False, timeout=-1)  # not blocking: not validated
    assert q.qsize() == 2


def test_blocked_get_is_woken_by_put(make: Callable[[int], Any]) -> None:
    q = make(2)
    got: list[Any] = []
    t = start(lambda: got.append(q.get(timeout=JOIN_S)))
    wait_until(lambda: waiters(q) == 1, "the getter to block")
    q.put("x")
    join_all([t])
    assert got == ["x"]


def test_blocked_put_is_woken_by_get(make: Callable[[int], Any]) -> None:
    q = make(1)
    q.put(1)
    t = start(lambda: q.put(2, timeout=JOIN_S))
    wait_until(lambda: waiters(q) == 1, "the putter to block")
    assert q.get() == 1
    join_all([t])
    assert q.get_nowait() == 2


def test_many_blocked_getters_each_get_one_item(make: Callable[[int], Any]) -> None:
    q = make(8)
    got: list[Any] = []
    lock = threading.Lock()

    def getter() -> None:
        item = q.get(timeout=JOIN_S)
        with lock:
            got.append(item)

    ts = [start(getter) for _ in range(6)]
    wait_until(lambda: waiters(q) == 6, "six getters to block")
    for i in range(6):
        q.put(i)
    join_all(ts)
    assert sorted(got) == list(range(6))


# --- BoundedBuffer only -------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3])
def test_maxsize_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        BoundedBuffer(bad)


@pytest.mark.parametrize("bad", [2.0, "3", True, None])
def test_maxsize_must_be_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="maxsize"):
        BoundedBuffer(bad)


def test_closed_is_an_exception_and_shutdown_where_available() -> None:
    assert issubclass(Closed, Exception)
    if sys.version_info >= (3, 13):
        assert issubclass(Closed, queue.ShutDown)
    else:
        assert not hasattr(queue, "ShutDown")


def test_put_after_close_raises_and_get_drains_then_raises() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(4)
    b.put(1)
    b.put(2)
    b.close()
    assert b.closed
    with pytest.raises(Closed):
        b.put(3)
    with pytest.raises(Closed):
        b.put_nowait(3)
    assert b.get() == 1
    assert b.get(block=False) == 2
    for call in (b.get, b.get_nowait, lambda: b.get(timeout=0.01)):
        with pytest.raises(Closed):
            call()
    b.close()  # idempotent
    with pytest.raises(Closed):
        b.get()


def test_close_immediate_discards_items() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(4)
    b.put(1)
    b.close(immediate=True)
    assert b.qsize() == 0
    with pytest.raises(Closed):
        b.get()


def test_close_wakes_every_blocked_getter() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def getter() -> None:
        try:
            b.get(timeout=JOIN_S)
            result = "item"
        except Closed:
            result = "closed"
        except queue.Empty:
            result = "timeout"
        with lock:
            outcomes.append(result)

    ts = [start(getter) for _ in range(8)]
    wait_until(lambda: waiters(b) == 8, "eight getters to block")
    b.close()
    join_all(ts)
    assert outcomes == ["closed"] * 8


def test_close_wakes_every_blocked_putter_and_keeps_their_items_out() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(1)
    b.put(0)
    outcomes: list[str] = []
    lock = threading.Lock()

    def putter(i: int) -> None:
        try:
            b.put(i, timeout=JOIN_S)
            result = "put"
        except Closed:
            result = "closed"
        with lock:
            outcomes.append(result)

    ts = [start(lambda i=i: putter(i)) for i in range(1, 7)]
    wait_until(lambda: waiters(b) == 6, "six putters to block")
    b.close()
    join_all(ts)
    assert outcomes == ["closed"] * 6
    assert list(b) == [0]  # only the item put before close


def test_close_while_draining_getters_get_items_then_closed() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(3)
    for i in range(3):
        b.put(i)
    b.close()
    got: list[int] = []
    closed = 0
    lock = threading.Lock()

    def getter() -> None:
        nonlocal closed
        while True:
            try:
                item = b.get(timeout=JOIN_S)
            except Closed:
                with lock:
                    closed += 1
                return
            with lock:
                got.append(item)

    join_all([start(getter) for _ in range(5)])
    assert sorted(got) == [0, 1, 2]
    assert closed == 5


def test_iteration_ends_at_close() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(2)
    out: list[int] = []
    t = start(lambda: out.extend(b))
    for i in range(10):
        b.put(i, timeout=JOIN_S)
    b.close()
    join_all([t])
    assert out == list(range(10))


def test_repr_mentions_state() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(2)
    b.put(1)
    assert "open 1/2" in repr(b)
    b.close()
    assert "closed" in repr(b)


@pytest.mark.parametrize(("producers", "consumers", "maxsize"), [(8, 8, 3), (1, 7, 1), (7, 1, 2), (5, 3, 64)])
def test_stress_every_item_exactly_once(producers: int, consumers: int, maxsize: int) -> None:
    per_producer = 401  # prime, not a multiple of anything here
    b: BoundedBuffer[tuple[int, int]] = BoundedBuffer(maxsize)
    received: list[list[tuple[int, int]]] = [[] for _ in range(consumers)]
    max_seen = 0
    seen_lock = threading.Lock()

    def produce(p: int) -> None:
        rng = random.Random(p)
        for i in range(per_producer):
            b.put((p, i), timeout=JOIN_S)
            if rng.random() < 0.05:
                time.sleep(rng.random() * 0.001)

    def consume(c: int) -> None:
        nonlocal max_seen
        rng = random.Random(1000 + c)
        while True:
            try:
                item = b.get(timeout=JOIN_S)
            except Closed:
                return
            received[c].append(item)
            with seen_lock:
                max_seen = max(max_seen, b.qsize())
            if rng.random() < 0.05:
                time.sleep(rng.random() * 0.001)

    cons = [start(lambda c=c: consume(c)) for c in range(consumers)]
    prods = [start(lambda p=p: produce(p)) for p in range(producers)]
    join_all(prods)
    b.close()  # consumers drain what is left, then stop
    join_all(cons)

    everything = [item for part in received for item in part]
    expected = {(p, i) for p in range(producers) for i in range(per_producer)}
    assert len(everything) == len(expected)  # count: nothing lost, nothing duplicated
    assert set(everything) == expected
    assert sum(p * 100_003 + i for p, i in everything) == sum(
        p * 100_003 + i for p, i in expected
    )  # checksum
    for part in received:  # FIFO: each consumer sees each producer's items in order
        for p in range(producers):
            mine = [i for q, i in part if q == p]
            assert mine == sorted(mine)
    assert max_seen <= maxsize


class BufferModel(RuleBasedStateMachine):
    """Non-blocking operations on a BoundedBuffer agree with a deque model."""

    def __init__(self) -> None:
        super().__init__()
        self.maxsize = 3
        self.buf: BoundedBuffer[int] = BoundedBuffer(self.maxsize)
        self.model: deque[int] = deque()
        self.closed = False

    @rule(x=st.integers())
    def put(self, x: int) -> None:
        if self.closed:
            with pytest.raises(Closed):
                self.buf.put_nowait(x)
        elif len(self.model) == self.maxsize:
            with pytest.raises(queue.Full):
                self.buf.put_nowait(x)
        else:
            self.buf.put_nowait(x)
            self.model.append(x)

    @rule()
    def get(self) -> None:
        if self.model:
            assert self.buf.get_nowait() == self.model.popleft()
        elif self.closed:
            with pytest.raises(Closed):
                self.buf.get_nowait()
        else:
            with pytest.raises(queue.Empty):
                self.buf.get_nowait()

    @precondition(lambda self: not self.closed)
    @rule(immediate=st.booleans())
    def close(self, immediate: bool) -> None:
        self.buf.close(immediate=immediate)
        self.closed = True
        if immediate:
            self.model.clear()

    @invariant()
    def sizes_agree(self) -> None:
        assert self.buf.qsize() == len(self.model)
        assert self.buf.empty() == (not self.model)
        assert self.buf.full() == (len(self.model) == self.maxsize)
        assert self.buf.closed == self.closed


TestBufferModel = BufferModel.TestCase
TestBufferModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
