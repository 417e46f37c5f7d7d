"""The executor contract (manycore.executors._contract), one suite over every backend.

Every test runs on serial, threads, processes, asyncio (with coroutine
functions), native and dask (a real LocalCluster with 2 single-threaded worker
processes, started once for this module).  Each backend gets ``max_workers=2``
(the Dask cluster has 2 worker threads).

Blocking is deterministic: a :class:`Gate` is a directory shared by every
process; ``blocker`` tasks announce themselves with a ``started-i`` file and
poll for an ``open`` file, so the tests know exactly which work is running and
which is queued.  Every wait has a hang guard (``HANG_GUARD_S``), so a
deadlock fails the test instead of hanging the run; none is a timing assertion.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import importlib.util
import os
import re
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from manycore.executors import ManycoreExecutor, backends, get_executor

HANG_GUARD_S = 60.0
NOTIFY_GUARD_S = 10.0
POLL_S = 0.002
ALL_BACKENDS = ("serial", "threads", "processes", "asyncio", "native", "interpreters", "dask")
#: Subinterpreters need CPython 3.14, or 3.13 with the backport (test_backends_says_why_interpreters_are_missing)
INTERPRETERS = backends()["interpreters"] is None
BACKENDS = tuple(b for b in ALL_BACKENDS if b != "interpreters" or INTERPRETERS)


# ================================================================ tasks
# Module-level so that process and Dask workers import them by reference.
class TaskFailure(Exception):
    """A task's own exception type: it must come back as itself, args intact."""


def add(a: int, b: int = 0) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def fail(message: str, code: int) -> int:
    raise TaskFailure(message, code)


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise TaskFailure("bad item", x)
    return x


def fail_value(message: str) -> int:
    raise ValueError(message)


def sleep_then(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def blocker(gate: str, index: int) -> int:
    """Announce the start, then wait for the gate to open (bounded by the hang guard)."""
    Path(gate, f"started-{index}").touch()
    deadline = time.monotonic() + HANG_GUARD_S
    while not os.path.exists(os.path.join(gate, "open")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(POLL_S)
    return index


async def async_add(a: int, b: int = 0) -> int:
    await asyncio.sleep(0)
    return a + b


async def async_square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


async def async_fail(message: str, code: int) -> int:
    await asyncio.sleep(0)
    raise TaskFailure(message, code)


async def async_fail_on(x: int, bad: int) -> int:
    await asyncio.sleep(0)
    if x == bad:
        raise TaskFailure("bad item", x)
    return x


async def async_fail_value(message: str) -> int:
    await asyncio.sleep(0)
    raise ValueError(message)


async def async_sleep_then(x: int, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return x


async def async_blocker(gate: str, index: int) -> int:
    Path(gate, f"started-{index}").touch()
    deadline = time.monotonic() + HANG_GUARD_S
    while not os.path.exists(os.path.join(gate, "open")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        await asyncio.sleep(POLL_S)
    return index


ASYNC_VERSION: dict[Callable[..., Any], Callable[..., Any]] = {
    add: async_add,
    square: async_square,
    fail: async_fail,
    fail_on: async_fail_on,
    fail_value: async_fail_value,
    sleep_then: async_sleep_then,
    blocker: async_blocker,
}


# ================================================================ the gate
class Gate:
    """A cross-process gate: a directory with ``started-i`` files and, once opened, ``open``."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dir = str(path)

    def open(self) -> None:
        (self.path / "open").touch()

    def started(self) -> int:
        return sum(1 for p in self.path.iterdir() if p.name.startswith("started-"))

    def wait_started(self, count: int) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while self.started() < count:
            assert time.monotonic() < deadline, f"only {self.started()} of {count} blockers started"
            time.sleep(POLL_S)


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path / "gate")


# ================================================================ backends
@dataclass(frozen=True)
class Backend:
    """What the suite needs to know about a backend."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def concurrent(self) -> bool:
        """False for serial, which runs each call inside submit()."""
        return self.name != "serial"

    @property
    def prefetched(self) -> int:
        """Queued items a backend may already count as started (never cancellable).

        ProcessPoolExecutor moves work items into its call queue (room for
        max_workers + 1) and marks them running as they enter it; the two
        blocked workers took theirs out, so up to 3 queued items may be there.
        """
        return 3 if self.name == "processes" else 0

    def fn(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """The task ``f`` as this backend takes it (coroutine functions for asyncio)."""
        return ASYNC_VERSION[f] if self.name == "asyncio" else f

    def make(self, **options: Any) -> ManycoreExecutor:
        if self.name == "dask":  # the module's cluster already has its 2 workers
            return get_executor("dask", **self.options, **options)
        return get_executor(self.name, **{"max_workers": 2, **self.options, **options})


@pytest.fixture(scope="module")
def dask_cluster_address() -> Iterator[str]:
    """One LocalCluster (2 worker processes x 1 thread on 127.0.0.1) for the whole module."""
    owner = get_executor("dask", max_workers=2)
    try:
        yield str(owner.cluster.scheduler_address)  # type: ignore[attr-defined]
    finally:
        owner.shutdown(wait=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    name: str = request.param
    if name == "dask":
        return Backend(name, {"address": request.getfixturevalue("dask_cluster_address")})
    return Backend(name)


@pytest.fixture
def executor(backend: Backend, gate: Gate) -> Iterator[ManycoreExecutor]:
    ex = backend.make()
    try:
        yield ex
    finally:
        gate.open()  # release any blocker the test left running, then clean up
        ex.shutdown(wait=True, cancel_futures=True)


def results(futures: list[cf.Future[Any]]) -> list[Any]:
    return [f.result(timeout=HANG_GUARD_S) for f in futures]


def wait_cancelled(futures: list[cf.Future[Any]], at_least: int) -> list[cf.Future[Any]]:
    """The cancelled ones among ``futures``, once at least ``at_least`` are (hang-guarded).

    ``shutdown(wait=False, cancel_futures=True)`` may cancel asynchronously:
    ProcessPoolExecutor's management thread does it after shutdown returns.
    """
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        cancelled = [f for f in futures if f.cancelled()]
        if len(cancelled) >= at_least or time.monotonic() > deadline:
            return cancelled
        time.sleep(POLL_S)


# ================================================================ submit / result / exceptions
def test_submit_returns_real_future_with_result(backend: Backend, executor: ManycoreExecutor) -> None:
    future = executor.submit(backend.fn(add), 2, 3)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=HANG_GUARD_S) == 5
    assert executor.submit(backend.fn(add), 2, b=40).result(timeout=HANG_GUARD_S) == 42
    assert future.done()
    assert not future.cancelled()
    assert future.exception(timeout=0) is None


def test_exception_propagates_with_its_type_and_args(backend: Backend, executor: ManycoreExecutor) -> None:
    future = executor.submit(backend.fn(fail), "boom", 7)
    with pytest.raises(TaskFailure) as info:
        future.result(timeout=HANG_GUARD_S)
    assert info.value.args == ("boom", 7)
    exc = future.exception(timeout=0)
    assert type(exc) is TaskFailure
    assert exc.args == ("boom", 7)
    with pytest.raises(ValueError, match="plain"):
        executor.submit(backend.fn(fail_value), "plain").result(timeout=HANG_GUARD_S)
    # The executor is still usable after failures.
    assert executor.submit(backend.fn(square), 9).result(timeout=HANG_GUARD_S) == 81


# ================================================================ map
def test_map_keeps_input_order(backend: Backend, executor: ManycoreExecutor) -> None:
    xs = list(range(23))
    assert list(executor.map(backend.fn(square), xs, timeout=HANG_GUARD_S)) == [x * x for x in xs]
    assert list(executor.map(backend.fn(add), xs, reversed(xs))) == [len(xs) - 1] * len(xs)
    # Later items finish first; results still come in input order.
    delays = [0.04, 0.0, 0.02, 0.0]
    assert list(executor.map(backend.fn(sleep_then), range(4), delays, timeout=HANG_GUARD_S)) == [0, 1, 2, 3]
    assert list(executor.map(backend.fn(square), [])) == []


def test_map_accepts_chunksize(backend: Backend, executor: ManycoreExecutor) -> None:
    xs = list(range(31))
    for chunksize in (1, 4, 100):
        got = list(executor.map(backend.fn(square), xs, chunksize=chunksize, timeout=HANG_GUARD_S))
        assert got == [x * x for x in xs]


def test_map_raises_the_task_exception(backend: Backend, executor: ManycoreExecutor) -> None:
    items = executor.map(backend.fn(fail_on), range(6), [3] * 6, timeout=HANG_GUARD_S)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(TaskFailure) as info:
        next(items)
    assert info.value.args == ("bad item", 3)


def test_map_timeout_raises_timeout_error(backend: Backend, executor: ManycoreExecutor, gate: Gate) -> None:
    if not backend.concurrent:
        # Serial runs every call inside map(): results are ready, the timeout never fires.
        assert list(executor.map(square, range(5), timeout=0.001)) == [0, 1, 4, 9, 16]
        return
    items = executor.map(backend.fn(blocker), [gate.dir] * 2, [0, 1], timeout=0.2)
    with pytest.raises(TimeoutError):
        next(items)
    assert issubclass(cf.TimeoutError, TimeoutError)


# ================================================================ as_completed / wait / callbacks
def test_as_completed_and_wait(backend: Backend, executor: ManycoreExecutor) -> None:
    delays = [0.03, 0.0, 0.01, 0.0, 0.02]
    futures = [executor.submit(backend.fn(sleep_then), i, d) for i, d in enumerate(delays)]
    seen = {f.result(timeout=0) for f in cf.as_completed(futures, timeout=HANG_GUARD_S)}
    assert seen == set(range(len(delays)))

    more = [executor.submit(backend.fn(square), i) for i in range(6)]
    done, not_done = cf.wait(more, timeout=HANG_GUARD_S)
    assert done == set(more)
    assert not not_done
    assert results(more) == [i * i for i in range(6)]

    mixed = [executor.submit(backend.fn(fail), "x", 1), executor.submit(backend.fn(square), 3)]
    done, _ = cf.wait(mixed, timeout=HANG_GUARD_S, return_when=cf.FIRST_EXCEPTION)
    assert mixed[0] in done
    done, _ = cf.wait(mixed, timeout=HANG_GUARD_S, return_when=cf.ALL_COMPLETED)
    assert done == set(mixed)


def test_add_done_callback(backend: Backend, executor: ManycoreExecutor) -> None:
    called: list[cf.Future[Any]] = []
    fired = threading.Event()

    def callback(f: cf.Future[Any]) -> None:
        called.append(f)
        fired.set()

    future = executor.submit(backend.fn(add), 1, 2)
    future.add_done_callback(callback)
    assert fired.wait(HANG_GUARD_S)
    assert called == [future]
    assert future.result(timeout=0) == 3

    late: list[cf.Future[Any]] = []
    future.add_done_callback(late.append)  # already done: runs now, in this thread
    assert late == [future]

    failed = executor.submit(backend.fn(fail), "cb", 2)
    got = threading.Event()
    failed.add_done_callback(lambda f: got.set())
    assert got.wait(HANG_GUARD_S)
    assert isinstance(failed.exception(timeout=0), TaskFailure)


# ================================================================ shutdown
def test_shutdown_wait_true_finishes_all_work(backend: Backend, gate: Gate) -> None:
    executor = backend.make()
    futures = [executor.submit(backend.fn(sleep_then), i, 0.01) for i in range(6)]
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result(timeout=0) for f in futures] == list(range(6))


def test_shutdown_wait_false_returns_while_work_runs(backend: Backend, gate: Gate) -> None:
    executor = backend.make()
    try:
        if not backend.concurrent:
            done = executor.submit(square, 5)
            executor.shutdown(wait=False)
            assert done.result(timeout=0) == 25
            return
        running = [executor.submit(backend.fn(blocker), gate.dir, i) for i in range(2)]
        gate.wait_started(2)
        executor.shutdown(wait=False)  # must not wait for the blocked work
        assert not any(f.done() for f in running)
        with pytest.raises(RuntimeError):
            executor.submit(backend.fn(square), 1)
        gate.open()
        assert results(running) == [0, 1]
    finally:
        gate.open()
        executor.shutdown(wait=True)


def test_shutdown_cancel_futures_cancels_queued_work(backend: Backend, gate: Gate) -> None:
    executor = backend.make()
    try:
        if not backend.concurrent:
            # Serial never queues: every future is finished by submit, nothing to cancel.
            futures = [executor.submit(square, i) for i in range(3)]
            executor.shutdown(wait=True, cancel_futures=True)
            assert [f.result(timeout=0) for f in futures] == [0, 1, 4]
            return
        running = [executor.submit(backend.fn(blocker), gate.dir, i) for i in range(2)]
        gate.wait_started(2)  # both workers are now busy
        queued = [executor.submit(backend.fn(square), i) for i in range(8)]
        executor.shutdown(wait=False, cancel_futures=True)

        cancelled = wait_cancelled(queued, len(queued) - backend.prefetched)
        assert len(cancelled) >= len(queued) - backend.prefetched
        for f in queued:
            if not f.cancelled():  # only a prefetched item may escape, and it was marked running
                assert f.running() or f.done()
        # Running work is never cancelled by shutdown: it finishes once released.
        assert not any(f.cancelled() or f.done() for f in running)
        gate.open()
        assert results(running) == [0, 1]
        for i, f in enumerate(queued):
            if not f.cancelled():
                assert f.result(timeout=HANG_GUARD_S) == i * i
    finally:
        gate.open()
        executor.shutdown(wait=True)


def test_wait_and_as_completed_see_futures_cancelled_by_shutdown(backend: Backend, gate: Gate) -> None:
    """Futures cancelled by shutdown(cancel_futures=True) must wake wait() and as_completed().

    The stdlib executors (checked on CPython 3.11) only call ``future.cancel()``
    there, never ``set_running_or_notify_cancel()``, so ``wait()`` keeps such a
    future in ``not_done`` and ``as_completed()`` never yields it.
    """
    executor = backend.make()
    try:
        if not backend.concurrent:
            futures = [executor.submit(square, i) for i in range(3)]
            executor.shutdown(wait=False, cancel_futures=True)
            assert cf.wait(futures, timeout=HANG_GUARD_S).done == set(futures)
            return
        running = [executor.submit(backend.fn(blocker), gate.dir, i) for i in range(2)]
        gate.wait_started(2)
        queued = [executor.submit(backend.fn(square), i) for i in range(8)]
        executor.shutdown(wait=False, cancel_futures=True)
        cancelled = wait_cancelled(queued, len(queued) - backend.prefetched)
        assert cancelled
        # Notification is immediate where it works; a shorter guard keeps a failure quick.
        done, not_done = cf.wait(cancelled, timeout=NOTIFY_GUARD_S)
        assert done == set(cancelled)
        assert not not_done
        assert set(cf.as_completed(cancelled, timeout=NOTIFY_GUARD_S)) == set(cancelled)
        gate.open()
        assert results(running) == [0, 1]
    finally:
        gate.open()
        executor.shutdown(wait=True)


def test_cancel_a_queued_future(backend: Backend, executor: ManycoreExecutor, gate: Gate) -> None:
    if not backend.concurrent:
        assert not executor.submit(square, 2).cancel()  # already finished
        return
    running = [executor.submit(backend.fn(blocker), gate.dir, i) for i in range(2)]
    gate.wait_started(2)
    queued = [executor.submit(backend.fn(square), i) for i in range(4)]
    last = queued[-1]  # behind every prefetch buffer
    assert last.cancel()
    assert last.cancelled()
    if backend.name != "dask":  # the Dask client cannot see "running": cancel() would succeed
        assert not running[0].cancel()
    gate.open()
    assert results(running) == [0, 1]
    assert results(queued[:-1]) == [0, 1, 4]
    assert cf.wait([last], timeout=HANG_GUARD_S).done == {last}
    with pytest.raises(cf.CancelledError):
        last.result(timeout=0)


def test_submit_after_shutdown_raises_runtime_error(backend: Backend) -> None:
    executor = backend.make()
    assert executor.submit(backend.fn(square), 3).result(timeout=HANG_GUARD_S) == 9
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(backend.fn(square), 3)
    with pytest.raises(RuntimeError):
        list(executor.map(backend.fn(square), [1, 2]))
    executor.shutdown(wait=True)  # idempotent
    executor.shutdown(wait=False, cancel_futures=True)


def test_context_manager_shuts_down(backend: Backend) -> None:
    with backend.make() as executor:
        assert isinstance(executor, ManycoreExecutor)
        futures = [executor.submit(backend.fn(sleep_then), i, 0.005) for i in range(4)]
    assert all(f.done() for f in futures)  # __exit__ is shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        executor.submit(backend.fn(square), 1)


# ================================================================ construction and registry
@pytest.mark.parametrize("bad", [0, -1, -8])
def test_max_workers_zero_or_negative_is_value_error(backend: Backend, bad: int) -> None:
    with pytest.raises(ValueError, match="max_workers"):
        get_executor(backend.name, max_workers=bad)


def test_get_executor_builds_the_named_backend(backend: Backend) -> None:
    with backend.make() as executor:
        assert isinstance(executor, ManycoreExecutor)
        assert isinstance(executor, cf.Executor)
        assert executor.backend_name == backend.name
        assert executor.submit(backend.fn(square), 4).result(timeout=HANG_GUARD_S) == 16
    assert backends()[backend.name] is None


def test_backends_lists_every_backend() -> None:
    status = backends()
    assert set(status) == set(ALL_BACKENDS)
    assert all(status[name] is None for name in BACKENDS), status


def test_backends_says_why_interpreters_are_missing() -> None:
    reason = backends()["interpreters"]
    if sys.version_info >= (3, 14):
        assert reason is None
    elif sys.version_info < (3, 13):
        assert reason is not None
        assert "3.13" in reason, reason
        assert "3.14" in reason, reason
    elif sys.version_info[:3] == (3, 13, 0) and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert reason is not None
        assert "disabled on CPython 3.13.0" in reason, reason
    elif importlib.util.find_spec("interpreters_backport") is None:
        assert reason is not None
        assert "manycore[interpreters]" in reason, reason
    else:
        assert reason is None, reason
    if reason is not None:
        with pytest.raises(ImportError, match=re.escape(reason[:40])):
            get_executor("interpreters")


@pytest.mark.parametrize(
    ("alias", "name"),
    [("thread", "threads"), ("process", "processes"), ("async", "asyncio"), ("serial", "serial")],
)
def test_get_executor_accepts_aliases(alias: str, name: str) -> None:
    with get_executor(alias, max_workers=1) as executor:
        assert executor.backend_name == name


def test_get_executor_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        get_executor("gpu")
