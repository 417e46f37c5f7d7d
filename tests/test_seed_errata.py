"""One test (or a few) per entry of docs/seed-errata.md: the unit's text fails, the fix works.

Each test runs the unit's own text where it can (kept verbatim as ``UNIT_SOURCE``/``UNIT_PYX``/
``UNIT_C_SOURCE`` in the example that corrects it) and shows the failure deterministically:
forced thread orders instead of luck, subprocesses where the failure is a crash or a hang. C and
Cython demonstrations compile the text with the compiler of this machine and are skipped where
there is none; everything else runs everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib.util
import io
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from manycore import native
from manycore.examples import (
    asyncio_fetch_apis,
    asyncio_nonblocking_io,
    condition_producer_consumer,
    condition_producer_consumer_v2,
    ctypes_sum_add,
    cython_fast_square,
    cython_prange_compute_sum,
    data_parallelism_process_pool,
    multiprocessing_manager_shared_list,
    multiprocessing_pipe,
    multiprocessing_pool,
    multiprocessing_process,
    posix_thread_ctypes,
    sum_of_squares_evaluation,
    threading_rlock_recursive,
    threading_semaphore_join_loop,
    threadmodule_start_threads,
)
from manycore.examples import get as get_example
from manycore.patterns import race

EXAMPLES_DIR = Path(condition_producer_consumer.__file__).parent
fork_only = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


def run_script(tmp_path: Path, source: str, *, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "unit_program.py"
    script.write_text(source, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


SPAWN_PRELUDE = 'import multiprocessing; multiprocessing.set_start_method("spawn", force=True)\n'
FORK_PRELUDE = 'import multiprocessing; multiprocessing.set_start_method("fork", force=True)\n'
SPAWN_RUNNER = """\
import multiprocessing, runpy, sys
multiprocessing.set_start_method("spawn")
sys.argv = [sys.argv[1], "--small"]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


# ================================================================ E1: no `__main__` guard
def test_e1_unguarded_process_pool_breaks_under_spawn(tmp_path: Path) -> None:
    proc = run_script(tmp_path, SPAWN_PRELUDE + data_parallelism_process_pool.UNIT_SOURCE)
    assert proc.returncode != 0
    assert "BrokenProcessPool" in proc.stderr
    assert "bootstrapping phase" in proc.stderr  # the child's own explanation
    assert "Squared Data" not in proc.stdout


@fork_only
def test_e1_unguarded_process_pool_works_under_fork_which_is_why_it_went_unnoticed(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_PRELUDE + data_parallelism_process_pool.UNIT_SOURCE)
    assert proc.returncode == 0, proc.stderr
    assert "Squared Data: [1, 4, 9, 16, 25, 36, 49, 64, 81]" in proc.stdout


def test_e1_unguarded_process_prints_nothing_under_spawn_yet_reports_success(tmp_path: Path) -> None:
    proc = run_script(tmp_path, SPAWN_PRELUDE + multiprocessing_process.UNIT_SOURCE)
    assert "Process finished!" in proc.stdout
    assert "Number: 0" not in proc.stdout  # the child died before running print_numbers
    assert "bootstrapping phase" in proc.stderr


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="kills the hung process group with os.killpg")
def test_e1_unguarded_pool_hangs_under_spawn(tmp_path: Path) -> None:
    unit_pool = (
        "from multiprocessing import Pool\n\ndef square(num):\n    return num * num\n\n"
        "data = [1, 2, 3, 4, 5]\n\nwith Pool(processes=3) as pool:\n    results = pool.map(square, data)\n\n"
        'print("Squared results:", results)\n'
    )
    assert 'print("Squared results:", results)' in unit_pool
    script = tmp_path / "unit_pool.py"
    script.write_text(SPAWN_PRELUDE + unit_pool, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: we kill it and every worker it spawned
    )
    # Wait for the evidence (a worker's "bootstrapping phase" error), not a fixed time: a
    # loaded machine may take seconds to spawn the workers.  The script never ends by itself.
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any("bootstrapping phase" in line for line in list(err_lines)):
            time.sleep(1.0)  # and give map() a moment it would need to finish, if it could
            break
        time.sleep(0.05)
    hung = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    out = proc.stdout.read() if proc.stdout else ""  # type: ignore[union-attr]
    proc.wait()
    reader.join(10)
    err = "".join(err_lines)
    assert hung, "Pool replaces the workers that die at start-up, so map() never returns"
    assert "Squared results" not in out
    assert "bootstrapping phase" in err


@pytest.mark.parametrize(
    "module",
    [data_parallelism_process_pool, multiprocessing_process, multiprocessing_pool],
    ids=lambda m: m.__name__,
)
def test_e1_guarded_versions_work_under_spawn(module: ModuleType) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SPAWN_RUNNER, module.__name__],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bootstrapping phase" not in proc.stderr
    assert re.search(r"Squared|Number: 4", proc.stdout)


# ================================================================ E2: Manager read after shutdown
@fork_only
def test_e2_manager_list_read_after_the_with_block_is_garbage(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_PRELUDE + multiprocessing_manager_shared_list.UNIT_SOURCE)
    assert "Shared List: <ListProxy object" in proc.stdout
    assert "'__str__()' failed" in proc.stdout


def test_e2_manager_list_read_inside_the_block_is_the_data() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        multiprocessing_manager_shared_list.main(small=True)
    assert "Shared List, sorted: [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]" in out.getvalue()


# ================================================================ E3: Pipe receiver without a timeout
def _unit_receiver(conn: Connection) -> None:  # the unit's receiver
    message = conn.recv()
    print(f"Received: {message}")


def _sender_that_dies(conn: Connection) -> None:
    os._exit(3)  # dies before sending anything


@fork_only
def test_e3_unit_receiver_blocks_forever_when_the_sender_dies_and_the_fix_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = multiprocessing.get_context("fork")
    monkeypatch.setattr(multiprocessing_pipe, "RECEIVE_TIMEOUT_S", 0.5)  # inherited by the forked child
    for receiver, expect_hang in ((_unit_receiver, True), (multiprocessing_pipe.receiver, False)):
        parent_conn, child_conn = ctx.Pipe()
        sender = ctx.Process(target=_sender_that_dies, args=(parent_conn,))
        receiving = ctx.Process(target=receiver, args=(child_conn,))
        sender.start()
        receiving.start()
        sender.join(10)
        receiving.join(2.0)
        still_waiting = receiving.is_alive()
        if still_waiting:
            receiving.kill()
            receiving.join()
        parent_conn.close()
        child_conn.close()
        assert sender.exitcode == 3
        assert still_waiting == expect_hang
        if not expect_hang:
            assert receiving.exitcode == 1  # SystemExit("receiver: nothing arrived within 0.5 s")


# ================================================================ E4: RLock print outside the function
def test_e4_rlock_text_as_laid_out_raises_name_error() -> None:
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(NameError, match="'n' is not defined"):
        exec(compile(threading_rlock_recursive.UNIT_SOURCE, "<unit>", "exec"), {"__name__": "__main__"})


def test_e4_rlock_fixed_messages_nest_and_a_plain_lock_would_deadlock() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        threading_rlock_recursive.recursive_task(3)
    assert out.getvalue().splitlines() == [
        "Lock acquired for 3",
        "Lock acquired for 2",
        "Lock acquired for 1",
        "Lock released for 1",
        "Lock released for 2",
        "Lock released for 3",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        assert threading_rlock_recursive.recursive_task_plain_lock(3, threading.Lock()) is False


# ================================================================ E5: Semaphore join loop nested in the start loop
def test_e5_nested_join_loop_joins_a_thread_that_was_never_started() -> None:
    threads = [threading.Thread(target=lambda: None) for _ in range(5)]
    with pytest.raises(RuntimeError, match="cannot join thread before it is started"):
        exec(threading_semaphore_join_loop.UNIT_LOOPS, {"threads": threads})
    started = [t for t in threads if t.ident is not None]
    assert len(started) == 1  # only Thread-0 ever started
    for t in started:
        t.join()


def test_e5_fixed_loops_run_every_thread_at_most_two_at_a_time() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        threading_semaphore_join_loop.main(small=True)
    text = out.getvalue()
    assert all(f"Thread-{i} finished." in text for i in range(5))
    ratio = float(re.search(r"2 at a time: (\d+\.\d) x", text).group(1))  # type: ignore[union-attr]
    assert ratio >= 2.9


def test_e5_typos_in_the_semaphore_text() -> None:
    with pytest.raises(SyntaxError):
        compile(
            'threads = [threading.Thread(target=task, args=(f"Thread-{i},)) for i in range(5)]',
            "<unit>",
            "exec",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "invalid escape sequence '\{'"
        code = compile('f"\\{name} started."', "<unit>", "eval")
    assert eval(code, {"name": "Thread-0"}) == "\\Thread-0 started."


# ================================================================ E6: Condition, first version
Outcome = condition_producer_consumer.Outcome


def test_e6_unit_condition_deadlocks_when_the_producer_runs_first() -> None:
    outcome = condition_producer_consumer.run_unit_version(
        condition_producer_consumer.UNIT_SOURCE, "producer", 0.5
    )
    assert outcome.deadlocked
    assert outcome.consumed == []
    assert outcome.output == ["Produced: 0"]  # its notify() found nobody waiting: lost


def test_e6_unit_condition_works_only_when_the_consumer_waits_first() -> None:
    # a run that ends returns at once: the limit only bounds a deadlock (wide for a busy machine)
    outcome = condition_producer_consumer.run_unit_version(
        condition_producer_consumer.UNIT_SOURCE, "consumer", 10.0
    )
    assert not outcome.deadlocked
    assert not outcome.errors
    assert outcome.consumed == [0, 1, 2, 3, 4]


def test_e6_one_extra_notification_breaks_even_the_lucky_order() -> None:
    outcome = condition_producer_consumer.run_unit_version(
        condition_producer_consumer.UNIT_SOURCE, "consumer", 0.5, spurious=True
    )
    # The consumer took the wake-up for "no more data" (there is no shutdown signal) and left.
    assert outcome.deadlocked
    assert outcome.consumed == []


@pytest.mark.parametrize("first", ["producer", "consumer"])
@pytest.mark.timeout(30)
def test_e6_fixed_condition_consumes_everything_in_either_order(first: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert condition_producer_consumer.run_corrected(5, first) == [0, 1, 2, 3, 4]
        assert condition_producer_consumer_v2.run_corrected(5, first) == [0, 1, 2, 3, 4]


def _two_consumers(use_while: bool) -> tuple[list[str], list[int]]:
    """Two consumers wait; one item arrives with notify_all(). ``if`` vs ``while`` around wait()."""
    condition = condition_producer_consumer.TracingCondition()
    items: list[int] = []
    done = False
    errors: list[str] = []
    got: list[int] = []

    def consumer() -> None:
        try:
            with condition:
                if use_while:
                    while not items and not done:
                        condition.wait()
                    if items:
                        got.append(items.pop(0))
                else:
                    if not items:
                        condition.wait()
                    got.append(items.pop(0))
        except IndexError as exc:
            errors.append(f"IndexError: {exc}")

    threads = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads:
        t.start()
    condition_producer_consumer._wait_until(lambda: condition.waiting == 2, 10)
    assert condition.waiting == 2
    with condition:
        items.append(42)
        condition.notify_all()
    if use_while:
        condition_producer_consumer._wait_until(lambda: len(got) == 1 and condition.waiting == 1, 10)
        with condition:
            done = True  # the shutdown signal releases the consumer that found nothing
            condition.notify_all()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return errors, got


def test_e6_if_around_wait_lets_a_second_consumer_pop_from_an_empty_list() -> None:
    errors, got = _two_consumers(use_while=False)
    assert got == [42]
    assert errors == ["IndexError: pop from empty list"]


def test_e6_while_around_wait_never_does() -> None:
    errors, got = _two_consumers(use_while=True)
    assert got == [42]
    assert errors == []


# ================================================================ E7: Condition, second version (both copies)
@pytest.mark.parametrize(
    ("copy", "first", "deadlocked", "error", "consumed"),
    [
        ("A", "producer", True, None, []),
        ("A", "consumer", True, None, [0, 1]),
        ("B", "producer", True, None, []),
        ("B", "consumer", False, "consumer: IndexError: pop from empty list", [0, 1, 2, 3, 4]),
    ],
)
def test_e7_every_run_of_the_second_condition_program_fails(
    copy: str, first: str, deadlocked: bool, error: str | None, consumed: list[int]
) -> None:
    source = getattr(condition_producer_consumer_v2, f"UNIT_SOURCE_{copy}")
    # a run that ends returns at once; one expected to end gets a wide limit (a busy machine)
    outcome = condition_producer_consumer.run_unit_version(source, first, 0.5 if deadlocked else 10.0)
    assert outcome.deadlocked == deadlocked
    assert outcome.errors == ([error] if error else [])
    assert outcome.consumed == consumed


# ================================================================ E8: misindented asyncio.run
def test_e8_unit_nonblocking_io_runs_nothing() -> None:
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with contextlib.redirect_stdout(out):
        exec(compile(asyncio_nonblocking_io.UNIT_SOURCE, "<unit>", "exec"), namespace)
    assert out.getvalue() == ""
    assert "main" in namespace
    assert "fetch_data" in namespace


def test_e8_and_calling_its_main_fails_on_the_nested_asyncio_run() -> None:
    fast = asyncio_nonblocking_io.UNIT_SOURCE.replace("asyncio.sleep(2)", "asyncio.sleep(0.01)")
    namespace: dict[str, Any] = {}
    exec(compile(fast, "<unit>", "exec"), namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine 'main' was never awaited"
        with (
            contextlib.redirect_stdout(io.StringIO()),
            pytest.raises(
                RuntimeError, match=r"asyncio.run\(\) cannot be called from a running event loop"
            ) as info,
        ):
            asyncio.run(namespace["main"]())
        del info  # its traceback holds the never-awaited coroutine: collect it while warnings are off
        gc.collect()


def test_e8_fixed_version_fetches_concurrently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio_nonblocking_io, "DELAY_S", 0.01)
    with contextlib.redirect_stdout(io.StringIO()):
        results = asyncio.run(asyncio_nonblocking_io.main_async())
    assert results == ["data from API_1", "data from API_2", "data from API_3"]


# ================================================================ E9: ctypes pthread_create
def test_e9_unit_pthread_leaves_a_dangling_callback_and_no_handle() -> None:
    facts = posix_thread_ctypes.unit_version_facts()
    if "load_error" in facts:  # not glibc: the text cannot even load its library
        pytest.skip(f"libpthread.so.0: {facts['load_error']}")
    assert facts["callback_alive_after_start_thread_returned"] is False
    assert facts["handle_kept"] is False


def test_e9_unit_pthread_callback_type_lacks_the_void_pointer_argument() -> None:
    unit_type = ctypes.CFUNCTYPE(ctypes.c_void_p)  # THREAD_FUNC_TYPE as the unit declares it
    assert len(unit_type._argtypes_) == 0
    assert list(posix_thread_ctypes.START_ROUTINE._argtypes_) == [ctypes.c_void_p]


def test_e9_fixed_pthread_is_joined_and_returns_its_value() -> None:
    thread = posix_thread_ctypes.PosixThread(lambda x: x * 2, 21)
    thread.start()
    assert thread.join() == 42


def test_e9_fixed_pthread_returns_the_threads_exception() -> None:
    def fails(x: int) -> int:
        raise ValueError(f"bad {x}")

    thread = posix_thread_ctypes.PosixThread(fails, 7)
    thread.start()
    with pytest.raises(ValueError, match="bad 7"):
        thread.join()


def test_e9_many_fixed_threads_at_once() -> None:
    threads = [posix_thread_ctypes.PosixThread(lambda x: x * x, i) for i in range(8)]
    for t in threads:
        t.start()
    assert [t.join() for t in threads] == [i * i for i in range(8)]


# ================================================================ E10: "Thread running with PID"
def test_e10_a_threads_pid_is_its_process_id_its_own_id_is_the_native_thread_id() -> None:
    seen: dict[str, int] = {}

    def record() -> None:
        seen["pid"], seen["tid"] = os.getpid(), threading.get_native_id()

    worker = threading.Thread(target=record)
    worker.start()
    worker.join()
    assert seen["pid"] == os.getpid()  # what the unit prints: the same for every thread
    assert seen["tid"] != threading.get_native_id()  # what identifies the thread
    posix = posix_thread_ctypes.PosixThread(lambda x: x, 1)
    posix.start()
    posix.join()
    assert posix.pid == os.getpid()
    assert posix.native_id not in (0, threading.get_native_id(), seen["tid"])


# ================================================================ C and Cython: build helpers
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
PY_INCLUDE = sysconfig.get_paths()["include"]
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
needs_cc = pytest.mark.skipif(
    CC is None or not (Path(PY_INCLUDE) / "Python.h").is_file(), reason="needs a C compiler and Python.h"
)
needs_cython = pytest.mark.skipif(importlib.util.find_spec("Cython") is None, reason="needs Cython")


def compile_c(source_file: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CC is not None
    return subprocess.run(
        [CC, "-shared", "-fPIC", "-pthread", f"-I{PY_INCLUDE}", *extra, str(source_file), "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def build_cython(tmp_path: Path, name: str, source: str, *, openmp: bool = False) -> ModuleType:
    """Cythonize and compile ``source`` as module ``name`` in ``tmp_path``; import and return it."""
    pyx = tmp_path / f"{name}.pyx"
    pyx.write_text(source, encoding="utf-8")
    c_file = tmp_path / f"{name}.c"
    cy = subprocess.run(
        # freethreading_compatible: importing it must not turn the GIL back on in
        # this test process on a free-threaded build (the modules share no state)
        [
            sys.executable,
            "-m",
            "cython",
            "-3",
            "-X",
            "freethreading_compatible=True",
            str(pyx),
            "-o",
            str(c_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if cy.returncode != 0:
        raise CythonError(cy.stdout + cy.stderr)
    built = compile_c(c_file, tmp_path / f"{name}{EXT_SUFFIX}", "-O2", *(["-fopenmp"] if openmp else []))
    if built.returncode != 0:
        raise RuntimeError(built.stderr)
    spec = importlib.util.spec_from_file_location(name, tmp_path / f"{name}{EXT_SUFFIX}")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CythonError(Exception):
    pass


def companion(name: str) -> str:
    return (EXAMPLES_DIR / name).read_text(encoding="utf-8")


# ================================================================ E11: compute_sum (example.pyx)
def test_e11_cdef_int_cannot_hold_a_larger_n() -> None:
    assert ctypes.c_int(10**10).value == 1410065408  # what `cdef int n = 10**10` leaves in n


def test_e11_compute_sum_reference_and_native_agree_exactly() -> None:
    n = 10**6
    exact = 0.5 * n * (n - 1) / 2
    assert cython_prange_compute_sum.compute_sum_python(10**5) == 0.5 * 10**5 * (10**5 - 1) / 2
    assert native.sum(np.arange(n, dtype=np.float64) * 0.5) == exact == 249999750000.0


@needs_cc
@needs_cython
def test_e11_unit_compute_sum_does_not_compile_as_printed(tmp_path: Path) -> None:
    with pytest.raises(CythonError):
        build_cython(tmp_path, "unit_example", cython_prange_compute_sum.UNIT_PYX)


_PRANGE_PROBE = """\
# cython: language_level=3
from cython.parallel cimport prange, threadid

def iterations_off_thread_0(Py_ssize_t n):
    cdef Py_ssize_t i
    cdef long total = 0
    for i in prange(n, nogil=True, num_threads=2, schedule="static"):
        total += threadid() != 0
    return total
"""


@needs_cc
@needs_cython
def test_e11_prange_without_openmp_flags_runs_on_one_thread(tmp_path: Path) -> None:
    serial = build_cython(tmp_path, "probe_serial", _PRANGE_PROBE, openmp=False)  # `cythonize -i`
    assert serial.iterations_off_thread_0(1000) == 0
    try:
        parallel = build_cython(tmp_path, "probe_omp", _PRANGE_PROBE, openmp=True)
    except RuntimeError as exc:  # a compiler without OpenMP
        pytest.skip(f"no OpenMP: {exc}")
    assert parallel.iterations_off_thread_0(1000) == 500  # static schedule: half on thread 1
    meant = build_cython(tmp_path, "unit_example_indented", cython_prange_compute_sum.UNIT_PYX_INDENTED)
    assert meant.compute_sum() == 249999750000.0  # right answer, computed serially


@needs_cc
@needs_cython
def test_e11_corrected_example_pyx_builds_and_computes(tmp_path: Path) -> None:
    module = build_cython(tmp_path, "example", companion("example.pyx"), openmp=True)
    assert module.compute_sum() == 249999750000.0
    assert module.compute_sum(10**5) == 0.5 * 10**5 * (10**5 - 1) / 2


# ================================================================ E12: sum.c through ctypes
@pytest.fixture
def sum_library(tmp_path: Path) -> Path:
    if CC is None:
        pytest.skip("needs a C compiler")
    src = tmp_path / "sum.c"
    src.write_text(companion("sum.c"), encoding="utf-8")
    built = compile_c(src, tmp_path / "sum.so")
    assert built.returncode == 0, built.stderr
    return tmp_path / "sum.so"


def test_e12_unit_relative_path_depends_on_the_current_directory(sum_library: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "import ctypes\nlib = ctypes.CDLL('./sum.so')\nprint(lib.add(5, 10))\n"
    assert "lib = ctypes.CDLL('./sum.so')" in ctypes_sum_add.UNIT_SOURCE
    here = subprocess.run(
        [sys.executable, "-c", code], cwd=sum_library.parent, capture_output=True, text=True
    )
    there = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True)
    assert here.stdout.strip() == "15"
    assert there.returncode != 0
    assert "OSError" in there.stderr


def test_e12_undeclared_prototype_guesses_and_truncates(sum_library: Path) -> None:
    lib = ctypes.CDLL(str(sum_library))  # the unit's way: no argtypes, no restype
    assert lib.add(5, 10) == 15
    with pytest.raises(ctypes.ArgumentError):
        lib.add(2.5, 1)
    assert lib.add(2**32 + 5, 10) == 15  # 2**32 + 5 silently became 5
    assert lib.add(2**31 - 1, 1) == -(2**31)  # C int overflow (undefined; it wraps here)


def test_e12_fixed_loader_declares_and_checks(sum_library: Path) -> None:
    lib = ctypes_sum_add.load_sum_library(sum_library)
    assert ctypes_sum_add.checked_add(lib, 5, 10) == 15
    assert ctypes_sum_add.checked_add(lib, -(2**31), 2**31 - 1) == -1
    with pytest.raises(ctypes.ArgumentError):
        lib.add(2.5, 1)
    for a, b in ((2**31 - 1, 1), (2**32 + 5, 10), (-(2**31), -1)):
        with pytest.raises(OverflowError):
            ctypes_sum_add.checked_add(lib, a, b)


def test_e12_manycore_ffi_add_when_built() -> None:
    add = ctypes_sum_add.optional("manycore.ffi", "add")
    if add is None:
        pytest.skip("manycore.ffi.add is not in this build")
    assert add(5, 10) == 15
    with pytest.raises(OverflowError):
        add(2**31 - 1, 1)


# ================================================================ E13: fast_square in C int
def test_e13_c_int_square_wraps() -> None:
    assert ctypes.c_int32(50000 * 50000).value == -1794967296
    assert native.square(np.array([50000], dtype=np.int32)).tolist() == [2500000000]
    with pytest.raises(OverflowError):
        native.square(np.array([2**32], dtype=np.int64))


@needs_cc
@needs_cython
def test_e13_unit_fast_square_overflows_and_the_corrected_one_does_not(tmp_path: Path) -> None:
    with pytest.raises(CythonError):
        build_cython(tmp_path, "unit_math_cython", cython_fast_square.UNIT_PYX)  # body not indented
    unit = build_cython(tmp_path, "unit_math_cython_indented", cython_fast_square.UNIT_PYX_INDENTED)
    assert unit.fast_square(10) == 100
    assert unit.fast_square(50000) == -1794967296
    fixed = build_cython(tmp_path, "math_cython", companion("math_cython.pyx"))
    assert fixed.fast_square(10) == 100
    assert fixed.fast_square(50000) == 2500000000
    assert fixed.fast_square(-3037000499) == 3037000499**2
    with pytest.raises(OverflowError):
        fixed.fast_square(3037000500)


# ================================================================ E14: `counter += 1` seldom races on 3.10-3.12
def _unlocked_count(threads: int, times: int) -> int:
    box = [0]

    def increment() -> None:
        for _ in range(times):
            box[0] += 1

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return box[0]


def test_e14_unlocked_counter_usually_shows_no_race_and_the_demonstrator_always_does() -> None:
    counts = [_unlocked_count(5, 100_000) for _ in range(3)]
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 12) and gil:
        # Thread switches happen at loop back-edges and calls, never inside `+= 1`.
        assert counts == [500_000] * 3
    result = race.run_race(workers=5, rounds=200)
    assert result.unlocked == 200
    assert result.lost_updates == 800
    assert result.locked == result.expected == 1000


# ================================================================ E15: sum_of_squares.pyx
N = 10**7
EXACT = 333333283333335000000


def test_e15_long_long_wraps_at_ten_million() -> None:
    assert sum_of_squares_evaluation.sum_of_squares(10**4) == sum(i * i for i in range(10**4))
    assert native.sum_of_squares(N) == EXACT == (N - 1) * N * (2 * N - 1) // 6
    wrapped = sum_of_squares_evaluation.as_int64(EXACT)
    assert wrapped == 1291890006563070912  # positive, 19 digits: looks plausible, is wrong
    values = np.arange(N, dtype=np.int64)
    assert int(values @ values) == wrapped  # the same 64-bit arithmetic, run for real
    first_wrong = next(n for n in range(3_000_000, 3_100_000) if (n - 1) * n * (2 * n - 1) // 6 >= 2**63)
    assert 3_000_000 < first_wrong < N  # already wrong from about N = 3.04 million


@needs_cc
@needs_cython
def test_e15_unit_pyx_cdef_function_is_not_importable_and_cpdef_wraps(tmp_path: Path) -> None:
    unit = build_cython(tmp_path, "unit_sum_of_squares", sum_of_squares_evaluation.UNIT_PYX)
    assert not hasattr(unit, "sum_of_squares_cython")  # run.py's `from ... import` fails
    visible = build_cython(
        tmp_path,
        "unit_sum_of_squares_cpdef",
        sum_of_squares_evaluation.UNIT_PYX.replace("cdef long long sum", "cpdef long long sum"),
    )
    assert visible.sum_of_squares_cython(N) == 1291890006563070912
    fixed = build_cython(tmp_path, "sum_of_squares", companion("sum_of_squares.pyx"))
    assert fixed.sum_of_squares_cython(N) == EXACT
    assert fixed.sum_of_squares_cython(2**20) == sum(i * i for i in range(2**20))
    with pytest.raises(OverflowError):
        fixed.sum_of_squares_cython(2**32 + 1)


# ================================================================ E16: threadmodule.c
@pytest.fixture
def threadmodule_dir(tmp_path: Path) -> Path:
    if CC is None or not (Path(PY_INCLUDE) / "Python.h").is_file():
        pytest.skip("needs a C compiler and Python.h")
    return tmp_path


def _build_threadmodule(directory: Path, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    directory.mkdir(exist_ok=True)
    src = directory / "threadmodule.c"
    src.write_text(source, encoding="utf-8")
    return compile_c(src, directory / f"threadmodule{EXT_SUFFIX}", *extra)


def _run_in(directory: Path, code: str) -> subprocess.CompletedProcess[str]:
    def small_stack() -> None:  # a finite 8 MiB main-thread stack, whatever the shell's ulimit
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        limit = 8 << 20 if hard == resource.RLIM_INFINITY else min(8 << 20, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (limit, hard))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=small_stack if sys.platform != "win32" else None,
    )


def test_e16_unit_threadmodule_does_not_compile_as_printed(threadmodule_dir: Path) -> None:
    built = _build_threadmodule(threadmodule_dir / "verbatim", threadmodule_start_threads.UNIT_C_SOURCE)
    assert built.returncode != 0
    assert "error" in built.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="stack-overflow behaviour checked on Linux")
def test_e16_unit_threadmodule_with_braces_fixed_crashes_on_a_large_n(threadmodule_dir: Path) -> None:
    directory = threadmodule_dir / "braces_fixed"
    built = _build_threadmodule(directory, threadmodule_start_threads.UNIT_C_SOURCE_BRACES_FIXED)
    assert built.returncode == 0, built.stderr
    ok = _run_in(directory, "import threadmodule; threadmodule.start_threads(3)")
    assert ok.returncode == 0
    assert sorted(ok.stdout.splitlines()) == [f"Thread {i} is executing" for i in (1, 2, 3)]
    # pthread_t threads[n]; int thread_ids[n]: 24 MB of VLA on an 8 MiB stack.
    crashed = _run_in(directory, "import threadmodule; threadmodule.start_threads(2_000_000)")
    assert crashed.returncode == -signal.SIGSEGV


def test_e16_corrected_threadmodule_checks_n_and_returns_messages(threadmodule_dir: Path) -> None:
    directory = threadmodule_dir / "corrected"
    built = _build_threadmodule(directory, companion("threadmodule.c"), "-Wall", "-Wextra", "-Werror")
    assert built.returncode == 0, built.stderr
    code = (
        "import threadmodule\n"
        "print(threadmodule.start_threads(5))\n"
        "for bad in (0, -1, 2_000_000):\n"
        "    try:\n"
        "        threadmodule.start_threads(bad)\n"
        "    except ValueError as exc:\n"
        "        print('ValueError', exc)\n"
    )
    proc = _run_in(directory, code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str([f"Thread {i} is executing" for i in range(1, 6)])
    assert lines[1:] == [
        "ValueError n must be between 1 and 1024, got 0",
        "ValueError n must be between 1 and 1024, got -1",
        "ValueError n must be between 1 and 1024, got 2000000",
    ]


def test_e16_manycore_start_threads_is_the_prebuilt_version() -> None:
    records = native.start_threads(5, work=10**6)
    assert [r.index for r in records] == [0, 1, 2, 3, 4]
    assert sum(r.partial for r in records) == native.sum_of_squares(10**6)
    assert len({r.native_id for r in records}) == 5
    with pytest.raises(ValueError, match="n must be >= 1"):
        native.start_threads(0)


# ================================================================ E17: the network-dependent fetch
def test_e17_unit_fetch_loses_every_result_when_one_url_fails() -> None:
    from manycore.fetch import DemoServer

    assert "https://jsonplaceholder.typicode.com/todos/1" in asyncio_fetch_apis.UNIT_SOURCE
    namespace: dict[str, Any] = {"__name__": "unit"}
    exec(
        compile(
            asyncio_fetch_apis.UNIT_SOURCE.replace("asyncio.sleep(1)", "asyncio.sleep(0)"), "<unit>", "exec"
        ),
        namespace,
    )
    out = io.StringIO()
    with DemoServer(todos=5) as api:
        namespace["API_URLS"] = [*api.todo_urls(3), api.url("/todos/999")]  # one 404: body {}
        with contextlib.redirect_stdout(out), pytest.raises(KeyError, match="id"):
            asyncio.run(namespace["main"]())
    assert out.getvalue() == ""  # the three good todos are lost with the bad one


def test_e17_fixed_fetch_runs_offline_and_keeps_every_result() -> None:
    from manycore.fetch import DemoServer, fetch_all, process_data_sync

    with DemoServer(todos=5) as api:
        results = fetch_all(
            [*api.todo_urls(3), api.url("/todos/999")], process=process_data_sync, deadline_s=30
        )
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[0].data == {"id": 1, "title": "DELECTUS AUT AUTEM"}
    assert results[3].error is not None
    assert results[3].error.kind == "http"


def test_examples_named_in_errata_exist() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "seed-errata.md"
    text = doc.read_text(encoding="utf-8")
    for name in set(re.findall(r"`manycore examples run (\w+)", text)):
        get_example(name)
    for n in range(1, 18):
        assert re.search(rf"^## E{n}\b", text, re.MULTILINE), f"E{n} missing from docs/seed-errata.md"
