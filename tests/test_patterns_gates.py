"""Gate and Countdown: threading.Event semantics (same tests run on Event), threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.context import BaseContext
from typing import Any

import pytest

from manycore.patterns import Countdown, Gate

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)

JOIN_S = 20.0


class EventAsGate:
    """threading.Event under Gate's names, so one test body checks both."""

    def __init__(self) -> None:
        self._e = threading.Event()
        self.open, self.close, self.is_open, self.wait = (
            self._e.set,
            self._e.clear,
            self._e.is_set,
            self._e.wait,
        )


@pytest.fixture(params=[pytest.param(EventAsGate, id="threading.Event"), pytest.param(Gate, id="Gate")])
def make_gate(request: pytest.FixtureRequest) -> Callable[[], Any]:
    factory = request.param
    return lambda: factory()


def test_wait_returns_bool(make_gate: Callable[[], Any]) -> None:
    g = make_gate()
    assert not g.is_open()
    assert g.wait(0.01) is False
    assert g.wait(0) is False
    assert g.wait(-1) is False  # negative acts as zero, as in threading.Event
    g.open()
    assert g.is_open()
    assert g.wait() is True
    assert g.wait(0) is True
    g.close()
    assert g.wait(0) is False


def test_open_releases_every_waiter(make_gate: Callable[[], Any]) -> None:
    g = make_gate()
    passed = Countdown(10)
    results: list[bool] = []

    def worker() -> None:
        results.append(g.wait(JOIN_S))
        passed.count_down()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(10)]
    for t in ts:
        t.start()
    assert passed.wait(0.02) is False  # nobody passes a closed gate
    g.open()
    assert passed.wait(JOIN_S)
    for t in ts:
        t.join(JOIN_S)
    assert results == [True] * 10


def test_gate_repr() -> None:
    g = Gate()
    assert "closed" in repr(g)
    g.open()
    assert "open" in repr(g)


def test_countdown_semantics() -> None:
    c = Countdown(3)
    assert c.count == 3
    assert c.initial == 3
    assert c.wait(0.01) is False
    assert c.count_down() == 2
    assert c.count_down(2) == 0
    assert c.wait(0) is True
    assert c.wait() is True
    with pytest.raises(ValueError, match="more count-downs"):
        c.count_down()
    assert c.count == 0
    assert "0/3" in repr(c)


def test_countdown_over_count_changes_nothing() -> None:
    c = Countdown(2)
    with pytest.raises(ValueError, match="only 2 left"):
        c.count_down(3)
    assert c.count == 2
    assert not c.wait(0)


def test_countdown_zero_is_open() -> None:
    assert Countdown(0).wait(0) is True


@pytest.mark.parametrize(("args", "exc"), [((-1,), ValueError), ((1.0,), TypeError), ((True,), TypeError)])
def test_countdown_validation(args: tuple[Any, ...], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Countdown(*args)


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_count_down_argument_validation(n: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        Countdown(5).count_down(n)


def test_countdown_from_many_threads_releases_exactly_at_zero() -> None:
    workers, each = 13, 17
    c = Countdown(workers * each)
    start = Gate()
    early = 0

    def worker() -> None:
        nonlocal early
        start.wait(JOIN_S)
        for _ in range(each):
            if c.wait(0):
                early += 1
            c.count_down()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in ts:
        t.start()
    start.open()
    assert c.wait(JOIN_S)
    for t in ts:
        t.join(JOIN_S)
    assert early == 0
    assert c.count == 0


# --- across processes ---------------------------------------------------------------


def _process_worker(gate: Gate, ready: Countdown, done: Countdown) -> None:
    ready.count_down()
    if gate.wait(JOIN_S):
        done.count_down()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_gate_and_countdown_across_processes(method: str) -> None:
    ctx: BaseContext = multiprocessing.get_context(method)
    n = 3
    gate, ready, done = Gate(ctx=ctx), Countdown(n, ctx=ctx), Countdown(n, ctx=ctx)
    procs = [ctx.Process(target=_process_worker, args=(gate, ready, done)) for _ in range(n)]  # type: ignore[attr-defined]
    for p in procs:
        p.start()
    try:
        assert ready.wait(JOIN_S), "workers did not start"
        assert done.count == n  # all are parked at the gate
        gate.open()
        assert done.wait(JOIN_S)
        assert done.count == 0
    finally:
        for p in procs:
            p.join(JOIN_S)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * n


def test_thread_versions_are_not_picklable() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Countdown(1))
    # the process version can only be pickled while starting a process (as an argument)
    with pytest.raises(RuntimeError):
        pickle.dumps(Gate(ctx=multiprocessing.get_context("spawn")))
