"""SharedCounter (multiprocessing.Value + its lock) and the Manager example."""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.context import BaseContext
from typing import Any

import pytest

from manycore.patterns import SharedCounter, manager_example

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)

JOIN_S = 30.0


def _bump(counter: SharedCounter, times: int) -> None:
    for _ in range(times):
        counter.increment()


def _bump_compound(counter: SharedCounter, times: int) -> None:
    for _ in range(times):
        with counter.get_lock():  # a compound update of one's own, under the counter's lock
            counter.increment(2)
            counter.decrement(1)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_counter_exact_across_processes(method: str) -> None:
    ctx: BaseContext = multiprocessing.get_context(method)
    counter = SharedCounter(5, ctx=ctx)
    n, times = 4, 2_003
    procs = [
        ctx.Process(target=target, args=(counter, times))
        for target in (_bump, _bump_compound)
        for _ in range(n // 2)
    ]  # type: ignore[attr-defined]
    for p in procs:
        p.start()
    for p in procs:
        p.join(JOIN_S)
        assert p.exitcode == 0
    assert counter.value == 5 + n * times


def test_counter_exact_across_threads() -> None:
    counter = SharedCounter()
    ts = [threading.Thread(target=_bump, args=(counter, 1_009), daemon=True) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(JOIN_S)
    assert counter.value == 8 * 1_009


def test_counter_api() -> None:
    c = SharedCounter(10)
    assert c.increment() == 11
    assert c.increment(5) == 16
    assert c.decrement(6) == 10
    assert c.increment(-10) == 0
    assert repr(c) == "<SharedCounter 0>"
    assert c.get_lock().acquire(timeout=1)
    c.get_lock().release()


def test_counter_overflow_leaves_value_unchanged() -> None:
    c = SharedCounter(2**63 - 2)
    assert c.increment() == 2**63 - 1
    with pytest.raises(OverflowError):
        c.increment()
    assert c.value == 2**63 - 1
    with pytest.raises(OverflowError):
        SharedCounter(-(2**63) - 1)


@pytest.mark.parametrize("bad", [1.0, "1", True])
def test_counter_type_checks(bad: Any) -> None:
    with pytest.raises(TypeError):
        SharedCounter(bad)
    with pytest.raises(TypeError):
        SharedCounter().increment(bad)


def test_manager_example_collects_everything() -> None:
    r = manager_example(workers=3, items_per_worker=7)
    assert r.items == sorted((w, i) for w in range(3) for i in range(7))
    assert r.counts == {"total": 21, "worker-0": 7, "worker-1": 7, "worker-2": 7}


def test_manager_example_under_spawn() -> None:
    r = manager_example(workers=2, items_per_worker=3, ctx=multiprocessing.get_context("spawn"))
    assert r.counts["total"] == 6
    assert len(r.items) == 6


def test_manager_example_validation() -> None:
    with pytest.raises(ValueError, match="workers"):
        manager_example(workers=0)
