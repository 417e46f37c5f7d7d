"""NativeExecutor beyond the shared contract: tasks run on the extension's pthreads,
C callables run there without the GIL, C range functions run on the native pool."""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import errno
import gc
import itertools
import threading
import time
import traceback
from collections.abc import Callable, Iterator

import pytest

from manycore import _native
from manycore.executors import NativeExecutor, get_executor
from manycore.executors import native as native_backend
from manycore.executors.native import is_native_callable
from native_support import leftover_threads, run_python, thread_ids

HANG_GUARD_S = 60.0

libc = ctypes.CDLL(None, use_errno=True)


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


sem_init = libc.sem_init
sem_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
sem_init.restype = ctypes.c_int
sem_destroy = libc.sem_destroy
sem_destroy.argtypes = [ctypes.c_void_p]
sem_destroy.restype = ctypes.c_int
sem_post = libc.sem_post
sem_post.argtypes = [ctypes.c_void_p]
sem_post.restype = ctypes.c_int
sem_timedwait = libc.sem_timedwait
sem_timedwait.argtypes = [ctypes.c_void_p, ctypes.POINTER(timespec)]
sem_timedwait.restype = ctypes.c_int

RANGE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


@pytest.fixture
def executor() -> Iterator[NativeExecutor]:
    ex = NativeExecutor(max_workers=2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def whoami(barrier: threading.Barrier) -> tuple[int, str]:
    barrier.wait()  # both workers are inside a task at once: two distinct threads
    return threading.get_native_id(), type(threading.current_thread()).__name__


def test_tasks_run_on_the_extensions_threads(executor: NativeExecutor) -> None:
    barrier = threading.Barrier(2, timeout=HANG_GUARD_S)
    outcomes = [f.result(timeout=HANG_GUARD_S) for f in [executor.submit(whoami, barrier) for _ in range(2)]]
    ids = {native_id for native_id, _ in outcomes}
    assert len(ids) == 2
    assert ids == set(executor.native_ids)
    assert ids <= thread_ids()  # threads of this process ...
    python_threads = {t.native_id for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    assert threading.get_native_id() in python_threads
    assert not ids & python_threads  # ... that the threading module did not create
    assert {kind for _, kind in outcomes} == {"_DummyThread"}


def test_threads_exit_on_shutdown() -> None:
    before = thread_ids()
    ex = NativeExecutor(max_workers=3)
    ids = set(ex.native_ids)
    assert len(ids) == 3
    assert ids <= thread_ids()
    assert ex.submit(sum, [1, 2, 3]).result(timeout=HANG_GUARD_S) == 6
    ex.shutdown(wait=True)
    assert leftover_threads(before) == set()


def test_c_callable_runs_without_the_gil(executor: NativeExecutor) -> None:
    """A C call blocked on one native thread lets another C call run on the other.

    The waiter blocks in ``sem_timedwait``; only a ``sem_post`` issued by the
    second task (a Python-level call that needs the GIL to start) releases it.
    Were the GIL held across the first call, the post could not happen and the
    wait would end with ETIMEDOUT after the hang guard.
    """
    assert is_native_callable(sem_timedwait)
    assert is_native_callable(sem_post)
    sem = (ctypes.c_long * 8)()  # >= sizeof(sem_t), suitably aligned
    assert sem_init(sem, 0, 0) == 0
    try:
        deadline = timespec(int(time.time() + HANG_GUARD_S), 0)
        waiter = executor.submit(sem_timedwait, sem, ctypes.byref(deadline))
        while not waiter.running():
            time.sleep(0.001)
        poster = executor.submit(sem_post, sem)
        assert poster.result(timeout=HANG_GUARD_S) == 0
        assert waiter.result(timeout=HANG_GUARD_S) == 0, f"errno {ctypes.get_errno()}"
    finally:
        sem_destroy(sem)


def test_is_native_callable() -> None:
    untyped = libc.getpid  # argtypes unset: ctypes would guess int arguments
    assert not is_native_callable(untyped)
    typed = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.cast(libc.getpid, ctypes.c_void_p).value)
    assert is_native_callable(typed)
    holds_gil = ctypes.pythonapi.Py_IsInitialized
    holds_gil.argtypes = []
    assert not is_native_callable(holds_gil)  # PyDLL functions keep the GIL
    assert not is_native_callable(len)

    class Marked:
        __manycore_native__ = True

        def __call__(self) -> None: ...

    assert is_native_callable(Marked())


def test_submit_range_runs_the_core_noop(executor: NativeExecutor) -> None:
    future = executor.submit_range(_native.noop_address(), 1_000_003)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=HANG_GUARD_S) is None
    assert executor.submit_range(_native.noop_address(), 0).result(timeout=HANG_GUARD_S) is None


@pytest.mark.parametrize("schedule", ["static", "dynamic"])
def test_submit_range_covers_the_range_exactly(executor: NativeExecutor, schedule: str) -> None:
    chunks: list[tuple[int, int, int]] = []

    @RANGE_FN
    def record(context: int | None, begin: int, end: int) -> None:
        chunks.append((context or 0, begin, end))  # a ctypes callback: runs with the GIL

    n, grain = 1009, 37
    future = executor.submit_range(record, n, context=0xBEEF, grain=grain, schedule=schedule)
    assert future.result(timeout=HANG_GUARD_S) is None
    spans = sorted((b, e) for _, b, e in chunks)
    assert spans[0][0] == 0
    assert spans[-1][1] == n
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(spans))
    assert all(0 < e - b <= grain for b, e in spans)
    assert {c for c, _, _ in chunks} == {0xBEEF}


def test_submit_range_checks_arguments_at_once(executor: NativeExecutor) -> None:
    noop = _native.noop_address()
    with pytest.raises(ValueError, match="fn_address"):
        executor.submit_range(0, 10)
    with pytest.raises(ValueError, match="n"):
        executor.submit_range(noop, -1)
    with pytest.raises(ValueError, match="schedule"):
        executor.submit_range(noop, 10, schedule="guided")
    with pytest.raises(TypeError):
        executor.submit_range("noop", 10)  # type: ignore[arg-type]
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit_range(noop, 10)


def raise_lookup() -> None:
    raise LookupError("missing")


def test_exceptions_keep_their_traceback(executor: NativeExecutor) -> None:
    exc = executor.submit(raise_lookup).exception(timeout=HANG_GUARD_S)
    assert isinstance(exc, LookupError)
    assert "raise_lookup" in [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def test_shutdown_from_a_task_does_not_deadlock() -> None:
    ex = NativeExecutor(max_workers=2)

    def stop_myself() -> str:
        ex.shutdown(wait=True)  # cannot wait for its own thread: behaves like wait=False
        return "done"

    assert ex.submit(stop_myself).result(timeout=HANG_GUARD_S) == "done"
    with pytest.raises(RuntimeError):
        ex.submit(len, "x")
    ex.shutdown(wait=True)


def test_a_collected_executor_stops_its_threads() -> None:
    before = thread_ids()
    ex = NativeExecutor(max_workers=2)
    launcher = ex._workers.launcher
    assert ex.submit(len, "abc").result(timeout=HANG_GUARD_S) == 3
    del ex
    gc.collect()
    launcher.join(HANG_GUARD_S)
    assert not launcher.is_alive()
    assert leftover_threads(before) == set()


def test_max_workers_above_the_runtime_limit_is_value_error() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        NativeExecutor(max_workers=native_backend.MAX_THREADS + 1)
    with pytest.raises(TypeError):
        NativeExecutor(pool="default")  # type: ignore[arg-type]


@pytest.mark.parametrize("after", [0, 1])
def test_thread_creation_failure_raises_and_leaks_nothing(
    after: int, fail_thread_create: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With `after` threads started and waiting for work, the C launcher's
    # on_start_failure hook stops them: the constructor raises at once, not
    # after its startup safety net.
    monkeypatch.setattr(native_backend, "STARTUP_TIMEOUT_S", 4 * HANG_GUARD_S)
    before = thread_ids()
    fail_thread_create(after)
    started = time.monotonic()
    with pytest.raises(OSError, match="could not create an OS thread") as info:
        NativeExecutor(max_workers=3)
    assert time.monotonic() - started < HANG_GUARD_S  # the safety net would take 4x that
    assert info.value.errno == errno.EAGAIN
    assert leftover_threads(before) == set()
    with get_executor("native", max_workers=3) as ex:  # the hook fires once
        assert ex.submit(len, "ok").result(timeout=HANG_GUARD_S) == 2


def test_interpreter_exit_runs_queued_work_and_joins() -> None:
    result = run_python(
        """
        import time
        from manycore.executors import NativeExecutor

        ex = NativeExecutor(max_workers=1)
        ex.submit(time.sleep, 0.05)
        ex.submit(print, "queued work ran", flush=True)
        print("exiting", flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["exiting", "queued work ran"]
    assert result.stderr == ""
