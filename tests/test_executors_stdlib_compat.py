"""ThreadExecutor / ProcessExecutor where they once differed from the stdlib pools they replace.

Each case was found by running CPython's own concurrent.futures tests against
our executors; each test runs the stdlib class too, so the expectation is the
stdlib's observed behaviour, not ours.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import multiprocessing
import pickle
import threading
import time
from typing import Any

import pytest

import manycore

HANG_GUARD_S = 60.0
START_METHODS = ["fork", "spawn"]


def put_in(queue: Any, tag: str) -> None:
    queue.put(tag)


def identity(x: Any) -> Any:
    return x


class FailsToUnpickle:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_raise_unpickling, ())


class ExitsOnUnpickle:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_exit, ())


def _raise_unpickling() -> None:
    raise pickle.UnpicklingError("refused")


def _exit() -> None:
    raise SystemExit(3)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("cls", [cf.ProcessPoolExecutor, manycore.ProcessExecutor])
def test_initargs_may_hold_multiprocessing_queues(cls: type, method: str) -> None:
    # documented stdlib use: share a Queue/Lock with the workers through initargs
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    with cls(max_workers=1, mp_context=ctx, initializer=put_in, initargs=(queue, "init")) as executor:
        assert executor.submit(abs, -3).result(timeout=HANG_GUARD_S) == 3
    assert queue.get(timeout=HANG_GUARD_S) == "init"


@pytest.mark.parametrize("method", START_METHODS)
def test_pmap_workers_run_an_initializer_with_a_queue_and_a_closure(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    tag = f"closure-{method}"
    with manycore.ProcessExecutor(
        max_workers=2, mp_context=ctx, initializer=lambda q: q.put(tag), initargs=(queue,)
    ) as executor:
        assert list(executor.pmap(abs, range(-40, 0), chunksize=5)) == list(range(40, 0, -1))
    assert queue.get(timeout=HANG_GUARD_S) == tag


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_dropping_the_executor_stops_its_workers_while_futures_live(kind: str) -> None:
    # CPython's test_del_shutdown: no shutdown(), no gc.collect(); the map iterator keeps futures
    for cls in (
        [cf.ThreadPoolExecutor, manycore.ThreadExecutor]
        if kind == "threads"
        else [cf.ProcessPoolExecutor, manycore.ProcessExecutor]
    ):
        gc.disable()
        try:
            executor = cls(max_workers=3)
            results = executor.map(abs, range(-50, 0))
            futures = [executor.submit(abs, -1) for _ in range(5)]
            if kind == "threads":
                workers: list[Any] = list(executor._threads)
            else:
                workers = list(executor._processes.values())
            del executor
            deadline = time.monotonic() + HANG_GUARD_S
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
                time.sleep(0.01)  # a process can close its sentinel just before it exits
            assert not any(w.is_alive() for w in workers), cls.__name__
        finally:
            gc.enable()
        assert list(results) == list(range(50, 0, -1))
        assert [f.result(timeout=HANG_GUARD_S) for f in futures] == [1] * 5


@pytest.mark.parametrize("payload", [FailsToUnpickle(), ExitsOnUnpickle()], ids=["error", "exit"])
def test_a_call_that_cannot_be_unpickled_fails_with_broken_process_pool(payload: Any) -> None:
    with manycore.ProcessExecutor(max_workers=1) as executor:
        with pytest.raises(cf.process.BrokenProcessPool, match="could not be unpickled") as info:
            executor.submit(identity, payload).result(timeout=HANG_GUARD_S)
        assert "still usable" in str(info.value)
        # the stdlib's pool breaks here; ours only failed that call
        assert executor.submit(abs, -5).result(timeout=HANG_GUARD_S) == 5


@pytest.mark.parametrize("cls", [cf.ProcessPoolExecutor, manycore.ProcessExecutor])
def test_an_unpicklable_argument_fails_with_the_picklers_type(cls: type) -> None:
    with cls(max_workers=1) as executor:
        future = executor.submit(identity, threading.Lock())
        with pytest.raises(TypeError, match="cannot pickle"):
            future.result(timeout=HANG_GUARD_S)
        assert executor.submit(abs, -2).result(timeout=HANG_GUARD_S) == 2
