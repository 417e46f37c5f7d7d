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
import sys
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


# ------------------------------------------------ interpreter exit (CPython's test_hang_gh83386 & co.)
EXIT_SCRIPT = """
import asyncio, atexit, sys, time
import concurrent.futures as cf
import manycore

def work(tag):
    time.sleep(0.5)
    print(tag, flush=True)

async def awork(tag):
    await asyncio.sleep(0.5)
    print(tag, flush=True)

def main(kind, how):
    if kind == "stdlib":
        ex, fn = cf.ThreadPoolExecutor(2), work
    elif kind == "async-coro":
        ex, fn = manycore.AsyncExecutor(2), awork
    elif kind == "dask":
        ex, fn = manycore.DaskExecutor(max_workers=1), work
    else:
        ex, fn = manycore.get_executor(kind, max_workers=2), work
    if how == "submit-from-atexit":
        def late():
            try:
                ex.submit(abs, -1)
            except RuntimeError as e:
                print("refused:", e, flush=True)
            else:
                print("accepted", flush=True)
        atexit.register(late)
        ex.submit(work, "ran").result()
        return ex
    future = ex.submit(fn, "ran")
    future.add_done_callback(
        lambda f: print("outcome:", "cancelled" if f.cancelled() else f.exception(), flush=True))
    if how == "shutdown-nowait":
        ex.shutdown(wait=False)
    return ex

if __name__ == "__main__":  # Dask's workers are spawned: they import this file
    executor = main(sys.argv[1], sys.argv[2])  # kept referenced until exit
"""


def run_exit_script(tmp_path: Any, kind: str, how: str) -> Any:
    import subprocess
    import sys

    script = tmp_path / "exit_case.py"
    script.write_text(EXIT_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), kind, how], capture_output=True, text=True, timeout=HANG_GUARD_S * 2
    )


# CPython 3.12.0-3.12.2 refuse to start a thread once the interpreter is
# exiting (gh-113964, fixed in 3.12.3).  AsyncExecutor then runs the call on
# its loop thread; Dask's client needs new threads of its own to finish and
# close, which manycore cannot avoid there.
NO_THREADS_AT_EXIT = (3, 12) <= sys.version_info[:3] < (3, 12, 3)
DASK_AT_EXIT = pytest.mark.skipif(
    NO_THREADS_AT_EXIT,
    reason="CPython gh-113964: 3.12.0-3.12.2 cannot start the threads Dask needs at interpreter exit "
    "(fixed in 3.12.3)",
)


@pytest.mark.parametrize(
    "kind", ["stdlib", "threads", "native", "asyncio", "async-coro", pytest.param("dask", marks=DASK_AT_EXIT)]
)
def test_work_left_after_shutdown_nowait_runs_before_exit(tmp_path: Any, kind: str) -> None:
    done = run_exit_script(tmp_path, kind, "shutdown-nowait")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["ran", "outcome: None"], (done.stdout, done.stderr)
    assert "cannot schedule new futures" not in done.stderr


@DASK_AT_EXIT
def test_dask_executor_open_at_exit_finishes_its_work_and_closes(tmp_path: Any) -> None:
    done = run_exit_script(tmp_path, "dask", "open")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["ran", "outcome: None"], (done.stdout, done.stderr)
    assert "cannot schedule new futures" not in done.stderr


@pytest.mark.parametrize("kind", ["stdlib", "threads", "native", "asyncio", "dask"])
def test_submit_from_an_atexit_handler_is_refused(tmp_path: Any, kind: str) -> None:
    done = run_exit_script(tmp_path, kind, "submit-from-atexit")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ran"
    assert lines[1].startswith("refused: cannot schedule new futures"), (done.stdout, done.stderr)


def test_dask_unpicklable_argument_fails_the_future_not_submit() -> None:
    executor = manycore.DaskExecutor(max_workers=1)
    try:
        future = executor.submit(identity, threading.Lock())
        error = future.exception(timeout=HANG_GUARD_S)
        assert isinstance(error, TypeError)
        assert any("Dask could not schedule identity" in note for note in error.__notes__)
        assert executor.submit(abs, -4).result(timeout=HANG_GUARD_S) == 4
    finally:
        executor.shutdown(wait=True)


FORK_SCRIPT = """
import multiprocessing, sys
import manycore

if __name__ == "__main__":
    dask = manycore.DaskExecutor(max_workers=1)  # alive while forked workers come and go
    native = manycore.NativeExecutor(max_workers=1)
    asyncio_ex = manycore.AsyncExecutor(1)
    ctx = multiprocessing.get_context("fork")
    with manycore.ProcessExecutor(max_workers=2, mp_context=ctx) as pool:
        print(sum(pool.map(abs, range(-20, 0))), flush=True)
    print(dask.submit(abs, -3).result(), native.submit(abs, -4).result(), flush=True)
"""


def test_forked_workers_exit_without_touching_the_parents_executors(tmp_path: Any) -> None:
    # Forked children run the exit hooks too: they must leave the parent's Dask
    # client, native threads and event loop alone (this once hung at worker exit).
    import subprocess
    import sys

    script = tmp_path / "fork_case.py"
    script.write_text(FORK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=HANG_GUARD_S * 2
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["210", "3", "4"], (done.stdout, done.stderr)
