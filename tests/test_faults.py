"""Fault tests for the executors, pmap and Pipeline: crashes, kills, memory, Ctrl-C, pickling, nesting, fork.

Each test that can hang or kill the interpreter runs a *scenario* (a
``scenario_*`` function below) in a fresh interpreter with a hard timeout
(:func:`fault_support.run_scenario`); the scenario asserts inside and wraps
its work in :class:`leakcheck.LeakCheck` (threads, file descriptors, child
processes, shared-memory segments), and the test asserts from outside that it
exited as expected and that none of its processes outlived it.  Tests that
cannot hang or crash the interpreter run in-process (leak-checked where it
matters, under the module's pytest timeout).  Waits are bounded by
``HANG_GUARD_S``; nothing here asserts a duration.

docs/semantics.md is the table these tests prove.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import functools
import gc
import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import numpy as np
import pytest

from fault_support import HANG_GUARD_S, POLL_S, Gate, run_scenario
from leakcheck import (
    LeakCheck,
    child_processes,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    thread_ids,
    traced_growth,
    warm_up,
    worker_processes,
)
from light_tasks import announced_sleep, gated, segfault, sleeps_on_one
from manycore import TaskError, WorkerCrashed, pmap
from manycore.executors import ProcessExecutor, ThreadExecutor, backends, get_executor
from manycore.patterns import Pipeline, RemoteError, WorkerDied

pytestmark = pytest.mark.timeout(240)

MODULE = __name__.rpartition(".")[2]
EXIT_CODE = 7
#: Address space a memory-limited worker may add to what it has mapped already.
MEMORY_HEADROOM = 256 << 20
#: What the memory tests try to allocate under that limit.
BIG_ALLOCATION = 2 << 30
SIGNALS = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM}
DEATHS = ("segfault", "exit", "sigkill", "sigterm")
#: Subinterpreters where this Python has them (tests/test_executors_contract.py checks the reason elsewhere)
INTERPRETERS = ("interpreters",) if backends()["interpreters"] is None else ()
IN_PROCESS_BACKENDS = ("serial", "threads", "processes", "asyncio", "native", *INTERPRETERS)


def scenario(name: str, *args: str) -> Any:
    """Run ``scenario_<name>(*args)`` of this module in a subprocess; it must exit 0 and leave no process."""
    outcome = run_scenario(MODULE, f"scenario_{name}", *args)
    outcome.assert_ok()
    return outcome


# ================================================================ tasks (module level: picklable)
def square(x: int) -> int:
    return x * x


def add_one(x: int) -> int:
    return x + 1


def crash(how: str) -> None:
    """Die (or fail) the way ``how`` says."""
    if how == "segfault":
        segfault()
    elif how == "exit":
        os._exit(EXIT_CODE)
    elif how == "memory":
        bytearray(BIG_ALLOCATION)
    raise AssertionError(f"crash({how!r}) returned")


def fault_task(how: str, gate_dir: str, key: object, after: object = None) -> object:
    """Announce ``key`` at the gate (once ``after`` has), then die; for the outside kills, wait to be killed."""
    gate = Gate(gate_dir)
    if after is not None:
        gate.wait_started(1, after)
    gate.announce(key)
    if how in SIGNALS:
        Gate(gate_dir).wait_open()  # the scenario kills this process before it opens
        return key
    crash(how)
    return key


def fault_on(bad: int, how: str, gate_dir: str, x: int) -> int:
    if x == bad:
        fault_task(how, gate_dir, x)
    return x * x


async def async_announced_sleep(gate_dir: str, seconds: float, x: int) -> int:
    import asyncio

    Gate(gate_dir).announce(x)
    await asyncio.sleep(seconds)
    return x


def limit_memory() -> None:
    """Initializer: cap the address space at what is mapped now plus ``MEMORY_HEADROOM``."""
    with open("/proc/self/status") as f:
        vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm_kib * 1024 + MEMORY_HEADROOM, hard))


_memory_limited = False


def memory_hog_stage(bad: int, x: int) -> int:
    """A process stage that caps its own address space, then allocates too much for item ``bad``."""
    global _memory_limited
    if not _memory_limited:
        limit_memory()
        _memory_limited = True
    if x == bad:
        crash("memory")
    return x


def kill_announced(gate: Gate, key: object, sig: int, stop: threading.Event) -> None:
    """Send ``sig`` to every process that announces ``key`` (a re-run included) until ``stop``."""
    killed: set[int] = set()
    while not stop.is_set():
        for k, pid in gate.started():
            if k == str(key) and pid not in killed:
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(POLL_S)


@contextlib.contextmanager
def killer(gate: Gate, key: object, how: str) -> Iterator[None]:
    """For ``how`` in SIGKILL/SIGTERM: kill whatever runs item ``key`` from outside, while the block runs."""
    if how not in SIGNALS:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=kill_announced, args=(gate, key, SIGNALS[how], stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(HANG_GUARD_S)


def expected_death(how: str) -> tuple[str | None, int | None]:
    """(signal name, exit code) a worker that died by ``how`` reports."""
    return {
        "segfault": ("SIGSEGV", -signal.SIGSEGV),
        "exit": (None, EXIT_CODE),
        "sigkill": ("SIGKILL", -signal.SIGKILL),
        "sigterm": ("SIGTERM", -signal.SIGTERM),
    }[how]


# ================================================================ worker deaths: ProcessExecutor
def scenario_process_executor_worker_death(how: str) -> None:
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        executor = ProcessExecutor(2, initializer=limit_memory if how == "memory" else None)
        try:
            # The victim dies once the bystander runs and every call is submitted: both are
            # in flight and four are queued when the pool breaks (a submit after the break
            # would raise BrokenProcessPool itself: on a busy machine the victim can be quick).
            victim = executor.submit(fault_task, how, gate.dir, "victim", "all-submitted")
            bystander = executor.submit(gated, gate.dir, "bystander")
            queued = [executor.submit(square, i) for i in range(4)]
            gate.wait_started(1, "bystander")
            gate.announce("all-submitted")
            (_, pid), *_ = gate.wait_started(1, "victim")
            if how in SIGNALS:
                os.kill(pid, SIGNALS[how])
            error = victim.exception(timeout=HANG_GUARD_S)
            if how == "memory":
                # A MemoryError is an ordinary exception: the pool survives it.
                assert isinstance(error, MemoryError), repr(error)
                gate.open()
                assert bystander.result(timeout=HANG_GUARD_S) == "bystander"
                assert [f.result(timeout=HANG_GUARD_S) for f in queued] == [0, 1, 4, 9]
                assert executor.submit(square, 5).result(timeout=HANG_GUARD_S) == 25
                return
            # The stdlib's semantics: a dead worker breaks the pool and fails every pending future.
            assert isinstance(error, BrokenProcessPool), repr(error)
            for future in [bystander, *queued]:
                assert isinstance(future.exception(timeout=HANG_GUARD_S), BrokenProcessPool)
            with pytest.raises(BrokenProcessPool):
                executor.submit(square, 1)
            assert issubclass(BrokenProcessPool, RuntimeError)
        finally:
            gate.open()
            executor.shutdown(wait=True)


@pytest.mark.parametrize("how", [*DEATHS, "memory"])
def test_process_executor_worker_death_breaks_the_pool_cleanly(how: str) -> None:
    scenario("process_executor_worker_death", how)


# ================================================================ worker deaths: pmap's engine
def scenario_pmap_worker_death(how: str) -> None:
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        fn = functools.partial(fault_on, 3, how, gate.dir)
        with killer(gate, 3, how):
            if how == "memory":
                with ProcessExecutor(2, initializer=limit_memory) as executor:
                    out = list(executor.pmap(fn, range(8), chunksize=2, errors="collect"))
            else:
                out = list(pmap(fn, range(8), backend="processes", workers=2, chunksize=2, errors="collect"))
        assert [x for i, x in enumerate(out) if i != 3] == [i * i for i in range(8) if i != 3], out
        error = out[3]
        assert isinstance(error, TaskError), error
        assert error.index == 3
        if how == "memory":
            assert isinstance(error.exception, MemoryError), repr(error.exception)
            return
        assert isinstance(error.exception, WorkerCrashed), repr(error.exception)
        assert isinstance(error.exception, BrokenProcessPool)
        assert error.exception.index == 3
        assert "item 3" in str(error.exception)
        name, code = expected_death(how)
        assert error.exception.signal_name == name, str(error.exception)
        assert error.exception.exitcode == code, str(error.exception)


@pytest.mark.parametrize("how", [*DEATHS, "memory"])
def test_pmap_worker_death_fails_only_its_item(how: str) -> None:
    scenario("pmap_worker_death", how)


# ================================================================ worker deaths: Pipeline process stage
def scenario_pipeline_worker_death(how: str) -> None:
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        if how == "memory":
            stage: Callable[[int], int] = functools.partial(memory_hog_stage, 3)
        else:
            stage = functools.partial(fault_on, 3, how, gate.dir)
        p = Pipeline(stage, workers=2, kind="process").then(add_one, workers=2)
        with killer(gate, 3, how), pytest.raises(BaseException) as info:  # noqa: PT011 - checked below
            list(p.run(range(8)))
        if how == "memory":
            assert isinstance(info.value, MemoryError), repr(info.value)
            return
        assert isinstance(info.value, WorkerDied), repr(info.value)
        _, code = expected_death(how)
        assert code is not None
        how_text = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        assert how_text in str(info.value), str(info.value)
        assert "item #3" in str(info.value)


@pytest.mark.parametrize("how", [*DEATHS, "memory"])
def test_pipeline_worker_death_is_reported(how: str) -> None:
    scenario("pipeline_worker_death", how)


# ================================================================ crashes in thread-based backends
def scenario_crash_in_thread_backend(backend: str, how: str) -> None:
    if backend == "native-kernel":
        # A C range function that faults: memset(NULL, begin, end) on the pool's threads.
        memset = ctypes.cast(ctypes.CDLL(None).memset, ctypes.c_void_p).value
        assert memset is not None
        from manycore import native

        native.parallel_for(memset, 1000, 0, 10)
    elif backend == "pipeline-thread":
        list(Pipeline(crash, workers=2).run([how]))
    else:
        executor = get_executor(backend, max_workers=2)
        executor.submit(crash, how).result(timeout=HANG_GUARD_S)
    print("SURVIVED", flush=True)


@pytest.mark.parametrize(
    ("backend", "how"),
    [
        *[
            (b, h)
            for b in ("serial", "threads", "asyncio", "native", "pipeline-thread")
            for h in ("segfault", "exit")
        ],
        ("native-kernel", "segfault"),
    ],
)
def test_crash_in_a_thread_backend_ends_the_process(backend: str, how: str) -> None:
    """No isolation without processes: a segfault or os._exit in a task ends the whole program."""
    outcome = run_scenario(MODULE, "scenario_crash_in_thread_backend", backend, how)
    assert "SURVIVED" not in outcome.stdout
    expected = -signal.SIGSEGV if how == "segfault" else EXIT_CODE
    assert outcome.returncode == expected, str(outcome)
    outcome.assert_no_orphans()


def scenario_memory_error_in_thread_backends() -> None:
    executors = {
        name: get_executor(name, max_workers=2) for name in ("serial", "threads", "asyncio", "native")
    }
    try:
        for executor in executors.values():  # start every thread before the limit
            assert executor.submit(square, 2).result(timeout=HANG_GUARD_S) == 4
        limit_memory()
        for name, executor in executors.items():
            error = executor.submit(crash, "memory").exception(timeout=HANG_GUARD_S)
            assert isinstance(error, MemoryError), (name, error)
            assert executor.submit(square, 3).result(timeout=HANG_GUARD_S) == 9, name
        with pytest.raises(MemoryError):
            list(Pipeline(crash).run(["memory"]))
    finally:
        for executor in executors.values():
            executor.shutdown(wait=True)


def test_memory_error_in_thread_backends_is_an_ordinary_exception() -> None:
    scenario("memory_error_in_thread_backends")


# ================================================================ Ctrl-C
def scenario_sigint_during_pmap(backend: str, target: str) -> None:
    warm_up()
    before_children = set(worker_processes())
    before_threads = thread_ids()
    with tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)

        def interrupt() -> None:
            gate.wait_started(2)  # both workers are busy
            if target == "group":  # a terminal's Ctrl-C: the whole foreground process group
                os.killpg(os.getpgrp(), signal.SIGINT)
            else:  # to the main thread itself, which waits in a Python lock (see below)
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        fn = functools.partial(gated, gate.dir)
        executor = ProcessExecutor(2) if backend == "executor-processes" else None
        try:
            if executor is not None:
                list(executor.pmap(fn, range(50), chunksize=1))
            else:
                list(pmap(fn, range(50), backend=backend, workers=2, chunksize=1))
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("pmap finished although Ctrl-C was pressed")
        # No worker process survives the interrupted map (a /proc scan, not multiprocessing's view).
        deadline = time.monotonic() + HANG_GUARD_S
        while set(worker_processes()) - before_children and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert set(worker_processes()) - before_children == set(), worker_processes()
        started = len(gate.started())
        gate.open()  # thread workers cannot be killed: let the two running calls finish
        deadline = time.monotonic() + HANG_GUARD_S
        while thread_ids() - before_threads and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert thread_ids() - before_threads == set(), "a worker thread outlived the map"
        # Nothing started after Ctrl-C: queued work was cancelled.
        assert len(gate.started()) == started == 2, gate.started()
        if executor is not None:
            assert executor.submit(square, 3).result(timeout=HANG_GUARD_S) == 9  # still usable
            executor.shutdown(wait=True)
    print("INTERRUPTED", flush=True)


@pytest.mark.parametrize(
    ("backend", "target"),
    [
        ("processes", "process"),
        ("processes", "group"),
        ("executor-processes", "group"),
        ("threads", "process"),
    ],
)
def test_sigint_during_pmap_stops_it_without_orphans(backend: str, target: str) -> None:
    outcome = scenario("sigint_during_pmap", backend, target)
    assert "INTERRUPTED" in outcome.stdout


def scenario_ctrl_c_in_with_block(backend: str) -> None:
    """Ctrl-C while the caller waits inside ``with executor:`` (2 workers busy, more work queued)."""
    before_children = set(worker_processes())
    with tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        submitted = threading.Event()

        def interrupt() -> None:
            gate.wait_started(1)
            submitted.wait(HANG_GUARD_S)  # every call is queued before Ctrl-C comes
            # Sent to the main thread: a process-directed signal may be taken by
            # another thread, and then the main thread, blocked in a Python lock,
            # only sees it when its wait ends (seen on 3.13t: 60 s late).
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            if backend in ("threads", "native", "dask", "interpreters"):
                # The running calls wait at the gate until Ctrl-C has cancelled the
                # queue, so a slow signal on a busy machine cannot let them all run.
                deadline = time.monotonic() + HANG_GUARD_S
                while sum(f.cancelled() for f in futures) < 4 and time.monotonic() < deadline:
                    time.sleep(0.01)
                gate.open()

        interrupter = threading.Thread(target=interrupt, daemon=True)
        futures: list[cf.Future[Any]] = []
        options: dict[str, Any] = {"max_workers": 2}
        try:
            with get_executor(backend, **options) as executor:
                if backend == "serial":
                    interrupter.start()
                    submitted.set()
                    executor.submit(announced_sleep, gate.dir, HANG_GUARD_S, 0)  # interrupted inside
                elif backend == "processes":
                    futures = [executor.submit(gated, gate.dir, i) for i in range(8)]
                else:
                    if backend == "asyncio":  # running coroutines are cancelled: they may sleep long
                        futures = [
                            executor.submit(async_announced_sleep, gate.dir, HANG_GUARD_S, i)
                            for i in range(8)
                        ]
                    else:
                        futures = [executor.submit(gated, gate.dir, i) for i in range(8)]
                # started after the submits: the process pool forks its workers in
                # submit(), and forking while another thread runs Python can leave the
                # child a lock that thread held (seen as a stuck worker on 3.13t)
                interrupter.start()
                submitted.set()
                # Short sleeps, not one long lock wait: a signal that lands just before
                # the main thread blocks in a lock is seen only when the wait ends (60 s
                # late, seen on 3.13t); a sleep slice bounds that to 50 ms.
                deadline = time.monotonic() + HANG_GUARD_S
                while time.monotonic() < deadline:
                    time.sleep(0.05)
            raise AssertionError("the with block was not interrupted")
        except KeyboardInterrupt:
            pass
        if backend == "processes":
            # __exit__ terminated the workers: running work failed, queued work was cancelled.
            assert all(f.done() for f in futures)
            assert not any(f.done() and not f.cancelled() and f.exception() is None for f in futures)
            assert sum(f.cancelled() for f in futures) >= len(futures) - 2 - 3  # minus running and prefetched
            assert set(worker_processes()) - before_children == set(), worker_processes()
        elif backend != "serial":
            # __exit__ by Ctrl-C is shutdown(wait=True, cancel_futures=True) (asyncio also cancels
            # the running coroutines): the queue does not run first; nothing is left pending.
            assert all(f.done() for f in futures)
            finished = [f for f in futures if not f.cancelled() and f.exception() is None]
            assert [f.result() for f in finished] == [futures.index(f) for f in finished]
            # 2 running when the signal came, and a couple more may start while it propagates
            assert len(finished) <= 4, len(finished)
            assert sum(f.cancelled() for f in futures) >= 4, [f._state for f in futures]
            if backend == "asyncio":
                assert finished == []
                stopped = [f for f in futures if not f.cancelled()]
                assert stopped
                assert all(isinstance(f.exception(), cf.CancelledError) for f in stopped)
    print("INTERRUPTED", flush=True)


@pytest.mark.parametrize(
    "backend", ["serial", "threads", "processes", "asyncio", "native", "dask", *INTERPRETERS]
)
def test_ctrl_c_inside_a_with_block(backend: str) -> None:
    outcome = scenario("ctrl_c_in_with_block", backend)
    assert "INTERRUPTED" in outcome.stdout


# ================================================================ exceptions that do not travel
class CustomInit(Exception):
    """Pickles (as ``CustomInit(message)``) but cannot be unpickled: ``__init__`` wants two arguments."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}+{b}")


def raise_custom_init(x: int) -> int:
    if x == 1:
        raise CustomInit(x, 10)
    return x


def raise_local_class(x: int) -> int:
    class LocalError(Exception):  # not importable: cannot be pickled by reference
        pass

    if x == 1:
        raise LocalError(f"local {x}")
    return x


def raise_worker_only_class(x: int) -> int:
    """An exception whose class exists only in the worker: it pickles there, and cannot be unpickled here."""
    if x != 1:
        return x
    module = sys.modules.get("manycore_worker_only")
    if module is None:
        module = types.ModuleType("manycore_worker_only")
        sys.modules[module.__name__] = module
        module.WorkerOnlyError = type("WorkerOnlyError", (Exception,), {"__module__": module.__name__})  # type: ignore[attr-defined]
    raise module.WorkerOnlyError(f"worker only {x}")


RAISERS = {
    "custom_init": raise_custom_init,
    "local_class": raise_local_class,
    "worker_only": raise_worker_only_class,
}
TYPE_NAMES = {"custom_init": "CustomInit", "local_class": "LocalError", "worker_only": "WorkerOnlyError"}


def _check_travelled(error: BaseException, kind: str) -> None:
    """How an exception that cannot travel as itself arrives, the same on every process path."""
    if kind == "local_class":
        # A class with no importable name goes by value (cloudpickle): the parent
        # gets an exception of an equal class, with its message.
        assert type(error).__name__ == "LocalError", repr(error)
        assert str(error) == "local 1", repr(error)
    else:
        # It cannot be rebuilt here: a RemoteError names its type and keeps its traceback.
        assert isinstance(error, RemoteError), repr(error)
        assert error.exc_type.endswith(TYPE_NAMES[kind]), error.exc_type
        assert TYPE_NAMES[kind] in error.tb  # the worker-side traceback text


def scenario_untravelled_exception(backend: str, kind: str) -> None:
    warm_up()
    fn = RAISERS[kind]
    with LeakCheck():
        if backend == "processes":
            with ProcessExecutor(2) as executor:
                # worker_only: survives the worker's round trip, fails to unpickle here (the
                # stdlib's pool breaks then): a RemoteError naming it, and the pool goes on
                error = executor.submit(fn, 1).exception(timeout=HANG_GUARD_S)
                assert error is not None
                _check_travelled(error, kind)
                assert TYPE_NAMES[kind] in str(error.__cause__)  # the worker's traceback, as text
                assert executor.submit(fn, 2).result(timeout=HANG_GUARD_S) == 2  # the pool is fine
        elif backend == "pmap":
            out = list(pmap(fn, range(3), backend="processes", workers=2, chunksize=1, errors="collect"))
            assert out[0] == 0, out
            assert out[2] == 2, out
            assert isinstance(out[1], TaskError), out
            assert out[1].index == 1
            # the item fails, not the map
            _check_travelled(out[1].exception, kind)
            assert TYPE_NAMES[kind] in out[1].traceback
        else:
            with pytest.raises(Exception) as info:  # noqa: PT011 - checked below
                list(Pipeline(fn, workers=2, kind="process").run(range(3)))
            _check_travelled(info.value, kind)


@pytest.mark.parametrize("kind", ["custom_init", "local_class", "worker_only"])
@pytest.mark.parametrize("backend", ["processes", "pmap", "pipeline"])
def test_exception_that_cannot_travel_back(backend: str, kind: str) -> None:
    scenario("untravelled_exception", backend, kind)


def return_lock(x: int) -> Any:
    return threading.Lock()


def identity(x: Any) -> Any:
    return x


def test_process_executor_unpicklable_argument_and_result() -> None:
    warm_up()
    with LeakCheck(), ProcessExecutor(2) as executor:
        # the pickler's own exception type, as the stdlib pool reports it, with a note naming the part
        with pytest.raises(TypeError, match=r"(?s)cannot pickle.*cannot send argument 0 to a worker"):
            executor.submit(identity, threading.Lock()).result(timeout=HANG_GUARD_S)
        with pytest.raises(TypeError, match="cannot send keyword argument 'x' to a worker"):
            executor.submit(identity, x=threading.Lock()).result(timeout=HANG_GUARD_S)
        with pytest.raises(TypeError, match="pickle"):
            executor.submit(return_lock, 1).result(timeout=HANG_GUARD_S)
        assert executor.submit(square, 4).result(timeout=HANG_GUARD_S) == 16  # the pool is fine


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_an_initializer_that_cannot_reach_the_workers_fails_at_once(method: str) -> None:
    """Not forked, a worker gets its initializer and initargs by pickle: ones that do not pickle
    fail submit (as the stdlib's) and the executor's pmap with the pickler's error, named in a note."""
    warm_up()
    ctx = multiprocessing.get_context(method)
    lock = threading.Lock()
    with LeakCheck():
        executor = ProcessExecutor(2, mp_context=ctx, initializer=identity, initargs=(lock,))
        with pytest.raises(TypeError, match="cannot pickle") as info:
            executor.submit(square, 2)
        assert (
            f"cannot send the initargs to a worker process (start method '{method}')" in info.value.__notes__
        )
        with pytest.raises(BrokenProcessPool, match="could not be started"):
            executor.submit(square, 2)  # broken, saying why
        executor.shutdown()
        with ProcessExecutor(2, mp_context=ctx, initializer=lambda: lock) as executor:
            with pytest.raises(TypeError, match="cannot pickle") as info:
                list(executor.pmap(square, range(4)))
            assert any("cannot send the initializer" in note for note in info.value.__notes__)


def test_thread_backends_return_the_exception_object_itself() -> None:
    error = CustomInit(1, 2)

    def raise_it() -> None:
        raise error

    for name in ("serial", "threads", "asyncio", "native"):
        with get_executor(name, max_workers=2) as executor:
            assert executor.submit(raise_it).exception(timeout=HANG_GUARD_S) is error, name
            assert executor.submit(return_lock, 1).result(timeout=HANG_GUARD_S) is not None, name


# ================================================================ initializer failures
def failing_initializer() -> None:
    raise ValueError("initializer failed on purpose")


def scenario_initializer_fails() -> None:
    warm_up()
    with LeakCheck():
        executor = ProcessExecutor(2, initializer=failing_initializer)
        error = executor.submit(square, 3).exception(timeout=HANG_GUARD_S)
        assert isinstance(error, BrokenProcessPool), repr(error)
        with pytest.raises(BrokenProcessPool):
            executor.submit(square, 4)
        executor.shutdown(wait=True)

        # pmap's engine replaces dead workers, so it needs a rule to stop: it gives up
        # after repeated deaths without progress.
        with (
            ProcessExecutor(2, initializer=failing_initializer) as executor,
            pytest.raises(BrokenProcessPool, match="initializer"),
        ):
            list(executor.pmap(square, range(10)))

        threads = ThreadExecutor(2, initializer=failing_initializer)
        error = threads.submit(square, 3).exception(timeout=HANG_GUARD_S)
        assert isinstance(error, BrokenThreadPool), repr(error)
        with pytest.raises(BrokenThreadPool):
            threads.submit(square, 4)
        threads.shutdown(wait=True)


def test_initializer_failure_breaks_the_pool_without_hanging() -> None:
    scenario("initializer_fails")


# ================================================================ shutdown
@pytest.mark.parametrize("backend", IN_PROCESS_BACKENDS)
def test_pmap_and_map_after_shutdown_raise_runtime_error(backend: str) -> None:
    executor = get_executor(backend, max_workers=2)
    assert list(executor.pmap(abs, [-1, -2])) == [1, 2]
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        list(executor.pmap(abs, [-1, -2]))
    with pytest.raises(RuntimeError):
        executor.map(abs, [-1])
    with pytest.raises(RuntimeError):
        executor.submit(abs, -1)


def scenario_shutdown_during_pmap(backend: str) -> None:
    """``shutdown(wait=True, cancel_futures=True)`` from another thread while a pmap runs on the executor."""
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        executor = get_executor(backend, max_workers=2)
        outcome: list[BaseException | list[Any]] = []

        def consume() -> None:
            try:
                outcome.append(
                    list(executor.pmap(functools.partial(announced_sleep, gate.dir, 0.02), range(400)))
                )
            except BaseException as exc:
                outcome.append(exc)

        consumer = threading.Thread(target=consume)
        consumer.start()
        gate.wait_started(4)
        executor.shutdown(wait=True, cancel_futures=True)
        consumer.join(HANG_GUARD_S)
        assert not consumer.is_alive(), "pmap still running after shutdown"
        # The map stops: its queued work was cancelled, the executor refuses the rest.
        assert isinstance(outcome[0], (RuntimeError, cf.CancelledError)), repr(outcome[0])[:300]
        assert len(gate.started()) < 400
        # LeakCheck: no worker process (or thread) is left once shutdown(wait=True)
        # returned and the map ended.


@pytest.mark.parametrize("backend", ["processes", "threads", "asyncio", "native", *INTERPRETERS])
def test_shutdown_cancel_futures_stops_a_running_pmap(backend: str) -> None:
    scenario("shutdown_during_pmap", backend)


def first_quick_then_gated(gate_dir: str, x: int) -> int:
    if x == 0:
        return x
    return int(gated(gate_dir, x))  # type: ignore[call-overload]


@pytest.mark.parametrize(("backend", "running"), [("processes", 1), ("threads", 2)])
def test_closing_a_pmap_early_stops_its_work(backend: str, running: int) -> None:
    """``PMapResult.close()`` (what dropping it after ``break`` does) cancels pending work.

    pmap is pulled by its consumer: between two ``next()`` calls the process
    engine only finishes what it already handed out (here, item 1 on one
    worker, and item 2 if it was sent ahead to the worker that ran the quick
    item 0), while a thread pool keeps running its submitted calls (items 1
    and 2).  On processes ``close()`` kills the busy workers; on threads the
    running calls finish and nothing else starts.
    """
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        fn = functools.partial(first_quick_then_gated, gate.dir)
        results = pmap(fn, range(50), backend=backend, workers=2, chunksize=1)
        assert next(results) == 0
        gate.wait_started(running)
        results.close()
        started = len(gate.started())
        gate.open()  # lets running thread calls end (killed processes never see it)
        assert list(results) == []
        assert started == running or (backend == "processes" and started == 2), gate.started()
        if backend == "threads":  # the running calls end; nothing queued starts after them
            deadline = time.monotonic() + HANG_GUARD_S
            while any(t.name.startswith("ThreadPoolExecutor") for t in threading.enumerate()):
                assert time.monotonic() < deadline, "pmap's threads did not finish"
                time.sleep(POLL_S)
        assert len(gate.started()) == started, gate.started()


def waits_for_gate_on(bad: int, gate_dir: str, x: int) -> int:
    if x == bad:
        Gate(gate_dir).wait_open()
    return x


async def async_waits_for_gate_on(bad: int, gate_dir: str, x: int) -> int:
    import asyncio

    if x == bad:
        gate = Gate(gate_dir)
        deadline = time.monotonic() + HANG_GUARD_S
        while not gate.is_open() and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
    return x


@pytest.mark.parametrize("backend", ["asyncio", "native"])
def test_task_timeout_on_a_thread_like_backend_abandons_the_item(backend: str) -> None:
    """The item fails with TimeoutError; its call cannot be stopped and runs on in the background."""
    with tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        task = async_waits_for_gate_on if backend == "asyncio" else waits_for_gate_on
        with get_executor(backend, max_workers=2) as executor:
            out = list(
                executor.pmap(
                    functools.partial(task, 1, gate.dir), range(4), task_timeout=1.0, errors="collect"
                )
            )
            gate.open()  # the abandoned call ends; the executor's shutdown waits for it
    assert [out[0], out[2], out[3]] == [0, 2, 3]
    assert isinstance(out[1], TaskError), out
    assert isinstance(out[1].exception, TimeoutError)
    assert "abandoned" in str(out[1].exception)


def slow_item(x: int) -> int:
    time.sleep(0.05)
    return x


@pytest.mark.parametrize("backend", ["serial", "threads"])
def test_pmap_timeout_bounds_the_whole_map(backend: str) -> None:
    """``timeout`` is checked between chunks (serial) or while waiting (threads): TimeoutError, map stopped."""
    seen: list[int] = []

    def consume(results: Iterator[int]) -> None:
        for value in results:
            seen.append(value)

    with pytest.raises(TimeoutError, match="timeout"):
        consume(pmap(slow_item, range(200), backend=backend, workers=2, chunksize=1, timeout=0.3))
    assert len(seen) < 200


# ================================================================ nesting
def process_pool_sum(n: int) -> int:
    with ProcessExecutor(2) as executor:
        return sum(executor.map(square, range(n), timeout=HANG_GUARD_S))


def pmap_sum(n: int, backend: str = "processes") -> int:
    return sum(pmap(square, range(n), backend=backend, workers=2))


def cpu_bound(x: int) -> int:
    total = 0
    for i in range(200_000):
        total += i ^ x
    return total


def auto_pmap_sum(n: int) -> int:
    return sum(pmap(cpu_bound, range(n)))


SUM_SQUARES_50 = sum(i * i for i in range(50))


def scenario_nested_executors() -> None:
    warm_up()
    with LeakCheck():
        # A ThreadExecutor task that uses a ProcessExecutor (fork from a worker thread),
        # and pmap on processes inside threads, both at once.
        with ThreadExecutor(4) as threads:
            futures = [threads.submit(process_pool_sum, 50) for _ in range(2)]
            futures += [threads.submit(pmap_sum, 50) for _ in range(2)]
            futures.append(threads.submit(pmap_sum, 50, "threads"))
            assert [f.result(timeout=HANG_GUARD_S) for f in futures] == [SUM_SQUARES_50] * 5
        # pmap inside a thread while the main thread runs one too.
        inner = cf.Future()  # type: ignore[var-annotated]
        thread = threading.Thread(target=lambda: inner.set_result(pmap_sum(50)))
        thread.start()
        assert pmap_sum(50) == SUM_SQUARES_50
        assert inner.result(timeout=HANG_GUARD_S) == SUM_SQUARES_50
        thread.join(HANG_GUARD_S)
        # pmap on processes inside a ProcessExecutor task (its workers may have children).
        with ProcessExecutor(2) as processes:
            assert processes.submit(pmap_sum, 50).result(timeout=HANG_GUARD_S) == SUM_SQUARES_50


def test_nested_executors() -> None:
    scenario("nested_executors")


def scenario_nested_pmap_in_pmap_worker() -> None:
    want = sum(cpu_bound(x) for x in range(6))
    out = list(pmap(auto_pmap_sum, [6, 6], backend="processes", workers=2, chunksize=1, errors="collect"))
    assert out == [want, want], out


def scenario_forced_processes_in_pmap_worker() -> None:
    out = list(pmap(pmap_sum, [10], backend="processes", workers=1, errors="collect"))
    assert isinstance(out[0], TaskError), out
    assert isinstance(out[0].exception, AssertionError), repr(out[0].exception)
    assert "daemonic processes are not allowed to have children" in str(out[0].exception)


def test_forced_processes_inside_a_pmap_worker_is_refused() -> None:
    """pmap's workers are daemonic (never outlive the parent), so they cannot start processes."""
    scenario("forced_processes_in_pmap_worker")


def test_nested_auto_pmap_inside_a_pmap_worker() -> None:
    """backend="auto" inside a pmap worker must not pick a backend that cannot run there."""
    scenario("nested_pmap_in_pmap_worker")


# ================================================================ a lock held by another thread at pool start
_SHARED_LOCK = threading.Lock()


def under_shared_lock(x: int) -> int:
    """A task that needs a lock of the caller's process: a forked worker inherits it as it was."""
    if not _SHARED_LOCK.acquire(timeout=HANG_GUARD_S / 3):
        raise AssertionError("the worker inherited the lock held (forked while another thread held it)")
    _SHARED_LOCK.release()
    return x * x


def scenario_lock_held_by_another_thread_at_pool_start() -> None:
    from manycore._workers import other_python_threads

    warm_up()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with _SHARED_LOCK:
            held.set()
            release.wait(HANG_GUARD_S)

    with LeakCheck():
        thread = threading.Thread(target=holder, name="lock-holder")
        thread.start()
        held.wait(HANG_GUARD_S)
        try:
            assert other_python_threads() == ["lock-holder"], other_python_threads()
            assert list(pmap(under_shared_lock, range(6), backend="processes", workers=2)) == [
                x * x for x in range(6)
            ]
            with ProcessExecutor(2) as executor:
                assert executor.mp_context.get_start_method() != "fork"
                assert list(executor.map(under_shared_lock, range(4))) == [0, 1, 4, 9]
            run = Pipeline(under_shared_lock, workers=2, kind="process").run(range(4))
            assert sorted(run) == [0, 1, 4, 9]
        finally:
            release.set()
            thread.join(HANG_GUARD_S)
        # single-threaded again: fork, the fast start, comes back
        with ProcessExecutor(2) as executor:
            assert executor.mp_context.get_start_method() == multiprocessing.get_start_method()
            assert list(executor.map(under_shared_lock, range(4))) == [0, 1, 4, 9]


def test_a_lock_held_by_another_thread_at_pool_start_does_not_hang_the_workers() -> None:
    """No process is forked while another thread runs Python (it could hold a lock the task needs):
    pmap's engine, ProcessExecutor and Pipeline process stages start such workers with forkserver."""
    scenario("lock_held_by_another_thread_at_pool_start")


def quick(x: int) -> int:
    time.sleep(0.002)
    return x


def scenario_a_lone_caller_forks_every_worker() -> None:
    """A caller with no other thread submitting fast: its pool's manager thread must not start
    workers of its own while the caller runs Python (they would have to use forkserver)."""
    from leakcheck import _is_forkserver

    for _ in range(40):
        with ProcessExecutor(2) as executor:
            futures = [executor.submit(quick, i) for i in range(8)]
            assert [f.result(timeout=HANG_GUARD_S) for f in futures] == list(range(8))
    servers = [p for p in child_processes() if _is_forkserver(p)]
    assert servers == [], "a forkserver was started: some worker was not forked"


def test_a_lone_caller_forks_every_worker() -> None:
    if multiprocessing.get_start_method() != "fork":
        pytest.fail("this test is about the default fork start method (Linux before 3.14)")
    scenario("a_lone_caller_forks_every_worker")


_FILELESS_MAIN = """
import threading
from manycore import ProcessExecutor, pmap

def triple(x):
    return 3 * x

stop = threading.Event()
threading.Thread(target=stop.wait, name="idle").start()  # fork is off: forkserver workers
try:
    assert list(pmap(triple, range(5), backend="processes", workers=2)) == [0, 3, 6, 9, 12]
    with ProcessExecutor(2) as executor:
        assert executor.submit(triple, 7).result(timeout=60) == 21
finally:
    stop.set()
print("ok")
"""


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_functions_of_a_fileless_main_reach_forkserver_workers(how: str) -> None:
    """`python -c`, `python - < script.py`, a REPL, a notebook: workers that were not forked
    have no such __main__ (and must not try to run `<stdin>` again); its functions travel by value."""
    import subprocess

    argv, stdin = (
        ([sys.executable, "-c", _FILELESS_MAIN], None)
        if how == "-c"
        else ([sys.executable, "-"], _FILELESS_MAIN)
    )
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=HANG_GUARD_S * 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok", proc.stdout


# ================================================================ fork after threads started
FORK_ROUNDS = 12


def _child_checks(state: dict[str, Any]) -> dict[str, Any]:
    """What a child forked while every kind of worker thread was busy can and cannot do."""
    from manycore import _native, native

    x = state["x"]
    res: dict[str, Any] = {}
    res["sum"] = native.sum(x) == state["want"]
    res["sum_threads3"] = native.sum(x, threads=3) == state["want"]
    native.parallel_for(_native.noop_address(), 10**5, threads=2)
    try:
        native.sum(x, pool=state["stale"])
        res["stale_pool"] = "no error"
    except RuntimeError as exc:
        res["stale_pool"] = "RuntimeError" if "fork" in str(exc) else str(exc)
    for name in ("native", "asyncio", "threads", "processes"):
        executor = state[name]
        try:
            future = executor.submit(square, 3)
        except RuntimeError:
            res[name] = "RuntimeError"
            continue
        try:
            res[name] = f"ran: {future.result(timeout=5)}"
        except cf.TimeoutError:
            res[name] = "accepted the call and never ran it"
    for name in ("native", "asyncio", "threads", "processes"):
        state[name].shutdown(wait=True)  # the child's copy: must leave the parent's workers alone
    with ThreadExecutor(2) as fresh:
        res["fresh_threads"] = fresh.submit(square, 4).result(timeout=HANG_GUARD_S) == 16
    if state["round"] == 0:  # processes from the child: once is enough
        res["pmap_processes"] = pmap_sum(50) == SUM_SQUARES_50
    return res


def scenario_fork_after_threads_started() -> None:
    from manycore import _native, native
    from manycore.executors import AsyncExecutor, NativeExecutor

    x = np.arange(1_000_003, dtype=np.int64)
    want = int(x.sum())
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:  # keep the default pool dispatching while the main thread forks
        try:
            while not stop.is_set():
                assert native.sum(x) == want
                native.parallel_for(_native.noop_address(), 10**5, threads=2)
        except BaseException as exc:
            errors.append(exc)

    state: dict[str, Any] = {
        "x": x,
        "want": want,
        "stale": native.Pool(3),
        "native": NativeExecutor(2),
        "asyncio": AsyncExecutor(2),
        "threads": ThreadExecutor(2),
        "processes": ProcessExecutor(2),
    }
    for name in ("native", "asyncio", "threads", "processes"):
        task = async_announced_sleep if name == "asyncio" else announced_sleep
        state[name].submit(task, tempfile.gettempdir(), 0.0, 0).result(timeout=HANG_GUARD_S)
    assert list(state["processes"].pmap(square, range(20))) == [x * x for x in range(20)]  # its engine
    parent_workers = set(worker_processes())  # the ProcessExecutor's and its engine's workers
    hammers = [threading.Thread(target=hammer) for _ in range(2)]
    for t in hammers:
        t.start()
    results = []
    try:
        for round_ in range(FORK_ROUNDS):
            state["round"] = round_
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child
                code = 0
                try:
                    os.close(read_fd)
                    os.write(write_fd, json.dumps(_child_checks(state)).encode())
                except BaseException:
                    traceback.print_exc()
                    code = 1
                os._exit(code)
            os.close(write_fd)
            deadline = time.monotonic() + HANG_GUARD_S
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise AssertionError(f"forked child of round {round_} hung")
                time.sleep(POLL_S)
            with os.fdopen(read_fd, "rb") as f:
                report = f.read()
            assert os.waitstatus_to_exitcode(status) == 0, f"round {round_}: child failed"
            results.append(json.loads(report))
        # The children's shutdown() of their copies left the parent's workers alone.
        assert parent_workers <= set(worker_processes()), (parent_workers, worker_processes())
        assert list(state["processes"].pmap(square, range(20))) == [x * x for x in range(20)]
        assert state["processes"].submit(square, 5).result(timeout=HANG_GUARD_S) == 25
    finally:
        stop.set()
        for t in hammers:
            t.join(HANG_GUARD_S)
        for name in ("native", "asyncio", "threads", "processes"):
            state[name].shutdown(wait=True)
    assert not errors, errors
    for round_, res in enumerate(results):
        for key in ("sum", "sum_threads3", "fresh_threads"):
            assert res[key] is True, (round_, key, res)
        assert res["stale_pool"] == "RuntimeError", (round_, res)
        # Executors created before fork() have no workers in the child: they refuse work.
        for name in ("native", "asyncio", "threads", "processes"):
            assert res[name] == "RuntimeError", (round_, name, res[name])
    assert results[0]["pmap_processes"]


def test_fork_after_threads_started() -> None:
    scenario("fork_after_threads_started")


# ================================================================ inputs that raise midway
def broken_input(n: int) -> Iterator[int]:
    yield from range(n)
    raise KeyError("the input broke")


@pytest.mark.parametrize("backend", IN_PROCESS_BACKENDS)
def test_executor_map_with_an_input_that_raises(backend: str) -> None:
    """``Executor.map`` reads its whole input first: the input's error comes out of ``map()`` itself,
    and the calls submitted before it still run (stdlib semantics)."""
    with tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        task = functools.partial(
            async_announced_sleep if backend == "asyncio" else announced_sleep, gate.dir, 0
        )
        with (
            get_executor(backend, max_workers=2) as executor,
            pytest.raises(KeyError, match="the input broke"),
        ):
            executor.map(task, broken_input(5))
        assert sorted(int(k) for k, _ in gate.started()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("backend", ["processes", "asyncio"])
def test_executor_pmap_with_an_input_that_raises(backend: str) -> None:
    fn = async_square if backend == "asyncio" else square
    seen: list[int] = []

    def consume(results: Iterator[int]) -> None:
        for value in results:
            seen.append(value)

    with get_executor(backend, max_workers=2) as executor:
        with pytest.raises(KeyError, match="the input broke"):
            consume(executor.pmap(fn, broken_input(7), chunksize=2))
        assert seen == [x * x for x in range(7)]  # every item read before the error


async def async_square(x: int) -> int:
    return x * x


# ================================================================ volume
def test_100k_tiny_tasks_through_pmap_on_processes() -> None:
    warm_up()
    n = 10**5
    with LeakCheck():
        assert list(pmap(square, range(n), backend="processes", workers=2)) == [x * x for x in range(n)]
        out = list(pmap(square, range(n), backend="processes", workers=2, chunksize=97, ordered=False))
        assert sorted(out) == [x * x for x in range(n)]


def test_100k_tiny_tasks_through_thread_executor_map() -> None:
    n = 10**5
    with LeakCheck(), ThreadExecutor(2) as executor:
        assert list(executor.map(square, range(n), timeout=HANG_GUARD_S)) == [x * x for x in range(n)]


ARRAY_BYTES = 64 << 20
ARRAYS = 16  # 1 GiB in total


def checksum_and_scribble(a: np.ndarray) -> float:
    total = float(a.sum())
    a[:] = -1.0  # copy-on-write: must not reach the parent or another task
    return total


def scenario_gigabyte_payload() -> None:
    warm_up()
    n = ARRAY_BYTES // 8

    def arrays() -> Iterator[np.ndarray]:  # made one at a time: the parent never holds them all
        for i in range(ARRAYS):
            yield np.full(n, float(i))

    list(pmap(checksum_and_scribble, [np.ones(n // 64)] * 2, backend="processes", workers=2, chunksize=1))
    gc.collect()
    rss_before = rss_bytes()
    reset_peak_rss()
    with LeakCheck() as check:
        out = list(pmap(checksum_and_scribble, arrays(), backend="processes", workers=2, chunksize=1))
        assert out == [float(i) * n for i in range(ARRAYS)]
        # Every array went through its own shared-memory segment (LeakCheck: all unlinked).
        assert len(check.created_shm) >= ARRAYS, len(check.created_shm)
    peak = peak_rss_bytes() - rss_before
    gc.collect()
    left = rss_bytes() - rss_before
    print(json.dumps({"peak_mib": peak >> 20, "left_mib": left >> 20}), flush=True)
    # Bounded: a few arrays in flight, never the whole gigabyte.
    assert peak < ARRAYS * ARRAY_BYTES // 2, f"peak RSS grew by {peak >> 20} MiB"
    # And the memory comes back.
    assert left < 2 * ARRAY_BYTES, f"RSS still {left >> 20} MiB above the start"


def test_gigabyte_payload_through_shared_memory() -> None:
    scenario("gigabyte_payload")


# ================================================================ memory growth over repeated faults
def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def scenario_memory_growth_over_repeated_faults() -> None:
    warm_up()
    segfault_on_2 = functools.partial(fault_on, 2, "segfault", tempfile.gettempdir())

    def pmap_crash() -> None:
        out = list(
            pmap(segfault_on_2, range(6), backend="processes", workers=2, chunksize=1, errors="collect")
        )
        assert isinstance(out[2], TaskError)

    def broken_pool() -> None:
        with ProcessExecutor(1) as executor:
            assert isinstance(
                executor.submit(crash, "exit").exception(timeout=HANG_GUARD_S), BrokenProcessPool
            )

    def pipeline_error() -> None:
        with pytest.raises(ValueError, match="three"):
            list(Pipeline(fail_on_3, workers=2, kind="process").then(add_one).run(range(10)))

    def thread_errors() -> None:
        with ThreadExecutor(2) as executor:
            futures = [executor.submit(fail_on_3, x) for x in range(50)]
            assert sum(f.exception(timeout=HANG_GUARD_S) is not None for f in futures) == 1

    def serial_pmap_errors() -> None:
        out = list(pmap(fail_on_3, range(200), backend="serial", errors="collect"))
        assert isinstance(out[3], TaskError)

    report = {}
    for run in (pmap_crash, broken_pool, pipeline_error, thread_errors, serial_pmap_errors):
        with LeakCheck():
            growth = traced_growth(run, runs=10, warmups=3)
        report[run.__name__] = growth
    print(json.dumps(report), flush=True)
    for name, growth in report.items():
        # Nothing a run creates may stay: a leaked exception with its traceback and
        # frames, a future or a Process object per run is kilobytes; allow a few KiB
        # in total for interpreter caches (measured: at most about 3 KiB).
        assert growth < 32 << 10, f"{name}: {growth} bytes more after 10 more runs"


def test_memory_does_not_grow_over_repeated_faults() -> None:
    scenario("memory_growth_over_repeated_faults")


# ================================================================ dask
def die_once(flag_dir: str, x: int) -> int:
    """Kill the worker the first time, succeed when the task is retried elsewhere."""
    flag = os.path.join(flag_dir, f"died-{x}")
    if not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(EXIT_CODE)
    return x * x


def always_die(x: int) -> int:
    os._exit(EXIT_CODE)


def scenario_dask_worker_death() -> None:
    import dask

    from manycore.executors import DaskExecutor

    # A task whose worker dies is retried on another worker; after
    # allowed-failures + 1 deaths it fails with KilledWorker.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        tempfile.TemporaryDirectory() as tmp,
        DaskExecutor(max_workers=2, silence_logs=50) as executor,
    ):
        assert executor.submit(die_once, tmp, 3).result(timeout=HANG_GUARD_S) == 9
        error = executor.submit(always_die, 1).exception(timeout=HANG_GUARD_S)
        assert type(error).__name__ == "KilledWorker", repr(error)
        assert executor.submit(square, 5).result(timeout=HANG_GUARD_S) == 25  # the cluster recovered


def test_dask_worker_death_is_retried_then_killed_worker() -> None:
    scenario("dask_worker_death")


# ================================================================ ProcessExecutor's pool: on demand, fork rule, ending it
HELD = threading.Lock()


def takes_the_held_lock(gate_dir: str, key: str, together: int = 0) -> tuple[bool, int]:
    """Announce, wait for ``together`` calls to have announced, then take HELD.

    (A fork made while another thread held HELD copies it held.)
    """
    gate = Gate(gate_dir)
    gate.announce(key)
    deadline = time.monotonic() + HANG_GUARD_S
    while len([k for k, _ in gate.started() if k.startswith("call")]) < together:
        assert time.monotonic() < deadline, gate.started()
        time.sleep(POLL_S)
    acquired = HELD.acquire(timeout=5.0)
    if acquired:
        HELD.release()
    return acquired, os.getppid()


def scenario_pool_forks_a_worker_only_while_no_thread_runs_python() -> None:
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        executor = ProcessExecutor(2)  # made while no other thread runs: fork where it is the default
        try:
            first, parent = executor.submit(takes_the_held_lock, tmp, "first").result(timeout=HANG_GUARD_S)
            assert first
            holding, release = threading.Event(), threading.Event()

            def hold() -> None:
                with HELD:
                    holding.set()
                    release.wait(HANG_GUARD_S)  # inside Python code, holding the lock

            holder = threading.Thread(target=hold)
            holder.start()
            try:
                assert holding.wait(HANG_GUARD_S)
                # two calls that run at once: the second finds no idle worker and starts one now
                calls = [executor.submit(takes_the_held_lock, tmp, f"call{i}", 2) for i in range(2)]
                assert len(executor._processes) == 2, executor._processes
                results = [f.result(timeout=HANG_GUARD_S) for f in calls]
            finally:
                release.set()
                holder.join()
            # neither saw the lock held: the second worker did not fork from this threaded process
            assert all(ok for ok, _ in results), results
            if executor.mp_context.get_start_method() == "fork":
                assert parent == os.getpid()  # the first one was forked (fast) ...
                assert {ppid for _, ppid in results} - {os.getpid()}, results  # ... the second one was not
        finally:
            executor.shutdown(wait=True)


def test_pool_forks_a_worker_only_while_no_thread_runs_python() -> None:
    scenario("pool_forks_a_worker_only_while_no_thread_runs_python")


def scenario_pool_starts_workers_on_demand_and_caps_max_workers() -> None:
    from manycore.executors.process import MAX_WORKERS

    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        with pytest.warns(RuntimeWarning, match=r"max_workers=1000000 .* capped"):
            executor = ProcessExecutor(max_workers=10**6)
        try:
            assert executor.max_workers == MAX_WORKERS
            futures = [executor.submit(gated, tmp, i) for i in range(4)]
            gate.wait_started(4)
            assert len(executor._processes) == 4, executor._processes  # one per call waiting, no more
            gate.open()
            assert sorted(f.result(timeout=HANG_GUARD_S) for f in futures) == [0, 1, 2, 3]
            assert len(executor._processes) == 4
        finally:
            gate.open()
            executor.shutdown(wait=True)


def test_pool_starts_workers_on_demand_and_caps_max_workers() -> None:
    scenario("pool_starts_workers_on_demand_and_caps_max_workers")


def scenario_process_executor_ends_its_workers(how: str) -> None:
    warm_up()
    with LeakCheck(), tempfile.TemporaryDirectory() as tmp:
        gate = Gate(tmp)
        executor = ProcessExecutor(1)
        try:
            stuck = executor.submit(gated, tmp, "stuck")
            queued = executor.submit(square, 3)
            gate.wait_started(1, "stuck")
            getattr(executor, how)()  # returns without waiting, as in CPython 3.14
            assert isinstance(stuck.exception(timeout=HANG_GUARD_S), BrokenProcessPool)
            assert queued.cancelled()
            with pytest.raises((BrokenProcessPool, RuntimeError)):
                executor.submit(square, 1)
        finally:
            gate.open()
            executor.shutdown(wait=True)


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_process_executor_ends_its_workers(how: str) -> None:
    scenario("process_executor_ends_its_workers", how)


# ================================================================ orphans: workers end soon after their owner dies
def scenario_owner_of_three_kinds_of_workers(gate_dir: str) -> None:
    """Keeps a ProcessExecutor call, a pmap item and a Pipeline item running; killed by the test."""
    executor = ProcessExecutor(1)
    executor.submit(gated, gate_dir, "executor")
    job = functools.partial(gated, gate_dir)
    threading.Thread(
        target=lambda: list(pmap(job, ["pmap"], backend="processes", workers=1)), daemon=True
    ).start()
    run = Pipeline(job, kind="process").run(["pipeline"])
    threading.Thread(target=lambda: list(run), daemon=True).start()
    Gate(gate_dir).wait_open()  # never opened: the test kills this process


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead worker nobody reaped yet does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_soon_after_their_owner_is_killed() -> None:
    import subprocess
    import uuid

    from fault_support import TAG_ENV, TESTS_DIR, _kill_tagged

    tag = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r}); import {MODULE} as m; "
            f"m.scenario_owner_of_three_kinds_of_workers({tmp!r})"
        )
        owner = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=TESTS_DIR,
            env={**os.environ, TAG_ENV: tag},
            start_new_session=True,
        )
        try:
            gate = Gate(tmp)
            workers = [pid for _, pid in gate.wait_started(3)]
            assert {key for key, _ in gate.started()} == {"executor", "pmap", "pipeline"}
            os.kill(owner.pid, signal.SIGKILL)  # no handler, no atexit: only the workers can notice
            owner.wait(timeout=HANG_GUARD_S)
            deadline = time.monotonic() + 10.0  # the workers poll every 0.1 s; slack for a busy machine
            while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            left = [pid for pid in workers if _running(pid)]
        finally:
            Gate(tmp).open()
            if owner.poll() is None:
                owner.kill()
                owner.wait()
            _kill_tagged(tag, None)
        assert not left, f"workers still running after their owner was killed: {left}"


# ================================================================ nested waits
NESTED_BACKENDS = ("threads", "native", "asyncio")


def scenario_nested_wait(backend: str) -> None:
    """A task waits for another call of its own executor while every worker is busy: the call
    runs inline in the waiting worker (once), instead of waiting for ever behind it."""
    ran: list[str] = []
    lock = threading.Lock()

    def leaf(x: int) -> int:
        with lock:
            ran.append(f"leaf{x}")
        return x * 10

    for workers in (1, 2):
        ran.clear()
        with get_executor(backend, max_workers=workers) as executor:

            def outer(x: int) -> int:
                inner = executor.submit(leaf, x)
                failing = executor.submit(operator_neg, "not a number")
                assert isinstance(failing.exception(), TypeError)  # exception() runs it inline too
                return inner.result() + 1

            outers = [executor.submit(outer, x) for x in range(2 * workers)]
            results = [f.result(timeout=HANG_GUARD_S) for f in outers]
        assert results == [x * 10 + 1 for x in range(2 * workers)], results
        assert sorted(ran) == sorted(f"leaf{x}" for x in range(2 * workers)), ran  # each ran once
    print("NESTED OK", flush=True)


def operator_neg(x: Any) -> Any:
    return -x


@pytest.mark.parametrize("backend", NESTED_BACKENDS)
def test_a_nested_wait_runs_the_call_inline(backend: str) -> None:
    outcome = scenario("nested_wait", backend)
    assert "NESTED OK" in outcome.stdout


def scenario_blocking_wait_on_the_event_loop() -> None:
    """A coroutine of an AsyncExecutor blocking on another of its calls would stop the loop that
    must run it: RuntimeError naming the deadlock, at once; awaiting the future works."""
    import asyncio

    from manycore import AsyncExecutor

    async def leaf() -> int:
        return 5

    with AsyncExecutor(max_workers=4) as executor:

        async def blocks() -> int:
            return int(executor.submit(leaf).result())

        async def awaits() -> int:
            return int(await asyncio.wrap_future(executor.submit(leaf))) + 1

        t0 = time.monotonic()
        error = executor.submit(blocks).exception(timeout=HANG_GUARD_S)
        assert isinstance(error, RuntimeError), error
        assert "deadlock" in str(error), error
        assert time.monotonic() - t0 < HANG_GUARD_S / 2
        assert executor.submit(awaits).result(timeout=HANG_GUARD_S) == 6
    print("LOOP OK", flush=True)


def test_a_blocking_wait_on_the_event_loop_raises() -> None:
    outcome = scenario("blocking_wait_on_the_event_loop")
    assert "LOOP OK" in outcome.stdout


# ================================================================ abandoned calls at exit


def scenario_abandoned_call_at_exit(backend: str) -> None:
    """pmap gives up on an item after task_timeout; the interpreter must still exit at once."""
    t0 = time.monotonic()
    out = list(pmap(sleeps_on_one, range(5), backend=backend, workers=2, task_timeout=1.0, errors="collect"))
    assert [out[i] for i in (0, 2, 3, 4)] == [0, 2, 3, 4], out
    assert isinstance(out[1], TaskError), out
    assert isinstance(out[1].exception, TimeoutError), out
    assert time.monotonic() - t0 < HANG_GUARD_S
    print("RETURNED", flush=True)


@pytest.mark.parametrize("backend", ["threads", "native", "asyncio", "serial", "auto", *INTERPRETERS])
def test_an_abandoned_call_does_not_hold_the_interpreter_at_exit(backend: str) -> None:
    """serial and auto (whose probe runs the first items in this process) hold task_timeout too."""
    t0 = time.monotonic()
    outcome = scenario("abandoned_call_at_exit", backend)
    assert "RETURNED" in outcome.stdout
    assert time.monotonic() - t0 < 120  # the abandoned call sleeps 600 s
    assert "RuntimeWarning" in outcome.stderr, outcome.stderr
    assert "item 1 of pmap(sleeps_on_one" in outcome.stderr, outcome.stderr


def scenario_ctrl_c_while_exit_waits(backend: str) -> None:
    """The main thread ends while a call still runs; the exit waits for it (stdlib semantics);
    Ctrl-C then ends the process at once, with a status that says it was interrupted."""
    gate_dir = tempfile.mkdtemp()
    executor = get_executor(backend, max_workers=1)
    executor.submit(sleeps_on_one, 1)
    main = threading.main_thread().ident or 0

    def interrupt() -> None:
        time.sleep(1.0)  # the main thread is in the exit hook's wait by then
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    executor.shutdown(wait=False)
    print("MAIN ENDS", flush=True)
    del gate_dir


@pytest.mark.parametrize("backend", ["threads", "native", "asyncio", "processes", *INTERPRETERS])
def test_ctrl_c_while_the_exit_waits_exits_non_zero(backend: str) -> None:
    t0 = time.monotonic()
    outcome = run_scenario(MODULE, "scenario_ctrl_c_while_exit_waits", backend)
    assert "MAIN ENDS" in outcome.stdout
    assert outcome.returncode != 0, str(outcome)
    assert time.monotonic() - t0 < 120  # the running call sleeps 600 s
    outcome.assert_no_orphans()
