"""AsyncExecutor beyond the shared contract: where calls run, the concurrency bound,
cancellation of running coroutines only at exit, and no asyncio warnings on any path."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import gc
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from manycore.executors import AsyncExecutor
from native_support import run_python

HANG_GUARD_S = 60.0


@pytest.fixture
def no_asyncio_noise(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail on 'Task was destroyed but it is pending' (logged) or 'never awaited' (warned)."""
    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not [str(w.message) for w in caught if issubclass(w.category, (RuntimeWarning, ResourceWarning))]


async def where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


def sync_where() -> str:
    return threading.current_thread().name


async def hold(release: threading.Event, active: list[int], peak: list[int]) -> int:
    active[0] += 1  # loop thread only: no lock needed
    peak[0] = max(peak[0], active[0])
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not release.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.002)
        return active[0]
    finally:
        active[0] -= 1


def wait_until(predicate: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.002)


def test_coroutines_run_on_the_loop_thread_plain_callables_off_it(no_asyncio_noise: None) -> None:
    with AsyncExecutor(thread_name="loop-under-test") as ex:
        assert ex.submit(where).result(timeout=HANG_GUARD_S) == "loop-under-test"
        assert ex.submit(functools.partial(where)).result(timeout=HANG_GUARD_S) == "loop-under-test"
        # A plain callable runs in the loop's default executor, never blocking the loop.
        name = ex.submit(sync_where).result(timeout=HANG_GUARD_S)
        assert name.startswith("loop-under-test-call")
        # ... and an awaitable it returns is awaited on the loop.
        assert ex.submit(lambda: where()).result(timeout=HANG_GUARD_S) == "loop-under-test"
        assert ex.loop.is_running()
    assert ex.loop.is_closed()


def test_async_callable_objects_are_awaited(no_asyncio_noise: None) -> None:
    class Doubler:
        async def __call__(self, x: int) -> int:
            await asyncio.sleep(0)
            return 2 * x

    with AsyncExecutor() as ex:
        assert ex.submit(Doubler(), 21).result(timeout=HANG_GUARD_S) == 42
        assert list(ex.map(Doubler(), range(5), timeout=HANG_GUARD_S)) == [0, 2, 4, 6, 8]


def test_max_workers_bounds_running_coroutines(no_asyncio_noise: None) -> None:
    release = threading.Event()
    active, peak = [0], [0]
    with AsyncExecutor(max_workers=3) as ex:
        futures = [ex.submit(hold, release, active, peak) for _ in range(10)]
        # a future is "running" once it holds a slot, a moment before its body counts itself
        wait_until(lambda: sum(f.running() for f in futures) == 3 and active[0] == 3)
        # While the three hold their slots nothing else starts (the state is stable).
        assert [f.running() for f in futures] == [True] * 3 + [False] * 7
        assert peak[0] == 3
        release.set()
        assert len(cf.wait(futures, timeout=HANG_GUARD_S).done) == 10
    assert peak[0] == 3


def test_running_coroutine_cannot_be_cancelled_through_its_future(no_asyncio_noise: None) -> None:
    release = threading.Event()
    active, peak = [0], [0]
    with AsyncExecutor(max_workers=1) as ex:
        running = ex.submit(hold, release, active, peak)
        queued = ex.submit(hold, release, active, peak)
        wait_until(running.running)
        assert not running.cancel()  # stdlib semantics: started work is not cancellable
        assert queued.cancel()
        assert cf.wait([queued], timeout=HANG_GUARD_S).done == {queued}  # notified at once
        release.set()
        assert running.result(timeout=HANG_GUARD_S) == 1


def test_submitting_a_coroutine_object_is_a_type_error_without_warning(no_asyncio_noise: None) -> None:
    with AsyncExecutor() as ex:
        coro = where()
        with pytest.raises(TypeError, match="coroutine function"):
            ex.submit(coro)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callable"):
            ex.submit(42)  # type: ignore[arg-type]


def test_base_exceptions_are_set_on_the_future_and_the_loop_survives(no_asyncio_noise: None) -> None:
    async def raise_(exc: BaseException) -> None:
        raise exc

    with AsyncExecutor() as ex:
        for exc in (KeyboardInterrupt(), SystemExit(3), GeneratorExit()):
            with pytest.raises(type(exc)):
                ex.submit(raise_, exc).result(timeout=HANG_GUARD_S)
        assert ex.submit(where).result(timeout=HANG_GUARD_S).startswith("manycore-asyncio-")


def test_shutdown_cleans_up_background_tasks_and_async_generators(no_asyncio_noise: None) -> None:
    cleaned: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("task")

    async def agen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            cleaned.append("agen")

    async def leave_things_running() -> int:
        asyncio.get_running_loop().create_task(background())
        gen = agen()
        first = await gen.__anext__()  # left suspended: shutdown_asyncgens closes it
        leave_things_running.gen = gen  # type: ignore[attr-defined]  # keep it referenced
        return int(first)

    ex = AsyncExecutor()
    assert ex.submit(leave_things_running).result(timeout=HANG_GUARD_S) == 1
    ex.shutdown(wait=True)
    assert sorted(cleaned) == ["agen", "task"]
    assert ex.loop.is_closed()
    del leave_things_running.gen  # type: ignore[attr-defined]


def test_shutdown_from_inside_a_coroutine_does_not_deadlock(no_asyncio_noise: None) -> None:
    ex = AsyncExecutor()

    async def stop_myself() -> str:
        ex.shutdown(wait=True)  # cannot join its own thread: behaves like wait=False
        await asyncio.sleep(0)
        return "still finished"

    assert ex.submit(stop_myself).result(timeout=HANG_GUARD_S) == "still finished"
    with pytest.raises(RuntimeError):
        ex.submit(where)
    ex.shutdown(wait=True)
    assert ex.loop.is_closed()


def test_cancel_futures_on_many_queued_items_leaves_nothing_pending(no_asyncio_noise: None) -> None:
    release = threading.Event()
    active, peak = [0], [0]
    ex = AsyncExecutor(max_workers=2)
    running = [ex.submit(hold, release, active, peak) for _ in range(2)]
    wait_until(lambda: all(f.running() for f in running))
    queued = [ex.submit(where) for _ in range(200)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert cf.wait(queued, timeout=HANG_GUARD_S).done == set(queued)
    release.set()
    ex.shutdown(wait=True)
    # each returns how many were active when it finished: one saw 2, the other 1, in either order
    assert sorted(f.result(timeout=0) for f in running) == [1, 2]
    assert not any(t.name.startswith("manycore-asyncio") and t.is_alive() for t in [ex._thread])


def test_at_exit_running_coroutines_are_cancelled_cleanly() -> None:
    result = run_python(
        """
        import asyncio, warnings
        warnings.simplefilter("always")
        from manycore.executors import AsyncExecutor

        async def forever():
            try:
                await asyncio.sleep(3600)
            finally:
                print("finally ran", flush=True)

        ex = AsyncExecutor(max_workers=1)
        running = ex.submit(forever)
        queued = ex.submit(forever)
        while not running.running():
            pass
        print("exiting", flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["exiting", "finally", "ran"]  # the queued one never started
    assert result.stderr == ""  # no "Task was destroyed", no "never awaited"


def test_a_call_runs_on_the_loop_thread_when_exit_refuses_new_threads(no_asyncio_noise: None) -> None:
    """CPython 3.12.0-3.12.2 (gh-113964): no thread starts once the interpreter exits.

    The call pool's refusal is simulated; the call then runs on the loop
    thread, once, even if the pool later serves the work item it had queued.
    """
    ran_on: list[str] = []
    queued: list[Any] = []

    def refuse(fn: Any, *args: Any, **kwargs: Any) -> Any:
        queued.append(fn)  # the pool queues the item before it fails to start a thread
        raise RuntimeError("can't create new thread at interpreter shutdown")

    def work() -> str:
        ran_on.append(threading.current_thread().name)
        return "done"

    with AsyncExecutor(1, thread_name="loop-under-test") as ex:
        ex._call_pool.thread_pool.submit = refuse  # type: ignore[method-assign]
        assert ex.submit(work).result(timeout=30) == "done"
        assert queued
        assert queued[0]() is None
    assert ran_on == ["loop-under-test"]


def test_other_runtime_errors_of_the_call_pool_fail_the_future(no_asyncio_noise: None) -> None:
    def refuse(fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("cannot schedule new futures after shutdown")

    with AsyncExecutor(1) as ex:
        ex._call_pool.thread_pool.submit = refuse  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="cannot schedule new futures"):
            ex.submit(abs, -1).result(timeout=30)
