"""Every example of the unit runs (small sizes, under a timeout) and prints what it should.

Each example runs in a fresh interpreter, ``python -m manycore.examples.NAME --small``, as
``manycore examples run`` does; its *output* is checked, not only its exit code, so an example
cannot rot silently. The process examples also run under the ``spawn`` start method, which is
what the added ``if __name__ == "__main__":`` guards are for. Then the ``manycore examples``
command: list, show, run, and the error for an unknown name.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from manycore import examples
from manycore.cli import main as cli

TIMEOUT_S = 60

Check = Callable[[str], None]


def has(*fragments: str) -> Check:
    def check(out: str) -> None:
        for fragment in fragments:
            assert fragment in out, f"missing {fragment!r}"

    return check


def matches(pattern: str) -> Check:
    def check(out: str) -> None:
        assert re.search(pattern, out, re.MULTILINE), f"no match for {pattern!r}"

    return check


def in_order(*lines: str) -> Check:
    """These lines, exactly, in this order (other lines may come before, between and after)."""

    def check(out: str) -> None:
        wanted = iter(lines)
        target: str | None = next(wanted)
        for line in out.splitlines():
            if line == target:
                target = next(wanted, None)
                if target is None:
                    return
        raise AssertionError(f"expected these lines in order: {list(lines)}; {target!r} not found where due")

    return check


def number(pattern: str, low: float, high: float = float("inf")) -> Check:
    """The first group of ``pattern`` is a number in [low, high]."""

    def check(out: str) -> None:
        m = re.search(pattern, out)
        assert m, f"no match for {pattern!r}"
        assert low <= float(m.group(1)) <= high, f"{m.group(0)!r}: not in [{low}, {high}]"

    return check


def same_group_values(pattern: str) -> Check:
    """``pattern`` has two groups and they are equal."""

    def check(out: str) -> None:
        m = re.search(pattern, out)
        assert m, f"no match for {pattern!r}"
        assert m.group(1) == m.group(2), m.group(0)

    return check


def different_group_values(pattern: str) -> Check:
    def check(out: str) -> None:
        m = re.search(pattern, out)
        assert m, f"no match for {pattern!r}"
        assert m.group(1) != m.group(2), m.group(0)

    return check


def when_built(module: str, attr: str, if_built: str, if_not: str) -> Check:
    """``if_built`` in the output when this build has ``module.attr``, else ``if_not``."""
    try:
        present = hasattr(importlib.import_module(module), attr)
    except ImportError:
        present = False
    return has(if_built if present else if_not)


NUMBERS = tuple(f"Number: {i}" for i in range(5))

EXPECTED: dict[str, list[Check]] = {
    "data_parallelism_process_pool": [
        has("Original Data: [1, 2, 3, 4, 5, 6, 7, 8, 9]", "Squared Data: [1, 4, 9, 16, 25, 36, 49, 64, 81]"),
        has("manycore.pmap: [1, 4, 9, 16, 25, 36, 49, 64, 81]"),
    ],
    "task_parallelism_thread_pool": [
        in_order("Square of 4: 16", "Cube of 4: 64"),
        has("manycore threads: ['Square of 4: 16', 'Cube of 4: 64']"),
    ],
    "multiprocessing_process": [
        in_order(*NUMBERS, "Process finished!"),
        different_group_values(r"parent process id (\d+)\)[\s\S]*child process id (\d+),"),
    ],
    "multiprocessing_pool": [
        has("Squared results: [1, 4, 9, 16, 25]", "manycore.pmap processes: [1, 4, 9, 16, 25]")
    ],
    "multiprocessing_queue_producer_consumer": [
        in_order(*(f"Consumed: {i}" for i in range(5))),
        has("manycore Pipeline (x2 in 2 processes): [0, 2, 4, 6, 8]"),
    ],
    "multiprocessing_pipe": [in_order("Received: Hello from sender!", "Both processes finished.")],
    "multiprocessing_manager_shared_list": [
        has("Shared List, sorted: [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]"),
        has("manycore manager_example counts: {'total': 10, 'worker-0': 5, 'worker-1': 5}"),
    ],
    "threading_thread": [
        in_order(*NUMBERS, "Thread execution finished!"),
        same_group_values(r"main: +process id (\d+),[\s\S]*thread: process id (\d+),"),
        different_group_values(r"main: .*native thread id (\d+)\)[\s\S]*thread: .*native thread id (\d+)\)"),
    ],
    "threading_lock_counter": [
        has("Final Counter: 20000 (expected 20000)"),
        matches(r"without a lock +100 +<- 100 updates lost"),
        matches(r"with a lock +200$"),
    ],
    "threading_rlock_recursive": [
        in_order(
            *(f"Lock acquired for {n}" for n in (3, 2, 1)), *(f"Lock released for {n}" for n in (1, 2, 3))
        ),
        has("plain Lock recursion completed: False"),
    ],
    "threading_semaphore": [
        has("Most threads inside at once: 2", "manycore Limiter(2): peak 2"),
        has(*(f"Thread-{i} is done!" for i in range(5))),
    ],
    "threading_event": [
        in_order("Thread waiting for event...", "Event occurred!"),
        has("manycore Gate: all 3 workers passed: True"),
    ],
    "condition_producer_consumer": [
        has("consumer starts first: finished; consumed [0, 1, 2, 3, 4]"),
        has("producer starts first: DEADLOCK (a thread waits forever); consumed []"),
        in_order(*(line for i in range(5) for line in (f"Produced: {i}", f"Consumed: {i}"))),
        has("Consumed in order: [0, 1, 2, 3, 4]", "manycore BoundedBuffer consumed: [0, 1, 2, 3, 4]"),
    ],
    "condition_producer_consumer_v2": [
        has("consumer starts first: DEADLOCK (a thread waits forever); consumed [0, 1]"),
        has(
            "consumer starts first: CRASHED: consumer: IndexError: pop from empty list; consumed [0, 1, 2, 3, 4]"
        ),
        lambda out: _count(out, "producer starts first: DEADLOCK", 2),
        has("Consumed in order: [0, 1, 2, 3, 4]"),
    ],
    "threading_thread_greet": [
        has("Hello, Alice!", "Hello, Bob!"),
        matches(r"All threads have finished\.\s*\Z"),
    ],
    "threading_lock_counter_five_threads": [
        has("Final Counter Value: 5000"),
        matches(r"without a lock +100 +<- 400 updates lost"),
        matches(r"with a lock +500$"),
    ],
    "threading_rlock_nested": [
        in_order(
            *(f"Task {n} acquired the lock" for n in (3, 2, 1, 0)),
            *(f"Task {n} released the lock" for n in (0, 1, 2, 3)),
        ),
        has("RLock free again: True"),
    ],
    "threading_semaphore_join_loop": [
        has(*(f"Thread-{i} started." for i in range(5)), *(f"Thread-{i} finished." for i in range(5))),
        number(r"2 at a time: (\d+\.\d) x", 2.9),  # at most 2 at once: at least 3 rounds of work
    ],
    "threading_event_set": [
        in_order("Thread is waiting for the event to be set.", "Event is set."),
        has("Event received, thread is proceeding"),
        has("Waiting 0.1 s on an event nobody sets returns: False"),
    ],
    "asyncio_coroutine": [
        in_order("Hello, Alice!", "Goodbye, Alice!"),
        has("without asyncio.run is a coroutine and printed nothing"),
    ],
    "asyncio_tasks": [
        in_order(
            "Both tasks running concurrently...",
            "Task 1 started",
            "Task 2 started",
            "Task 2 finished",
            "Task 1 finished",
        ),
        number(r"Total: (\d+\.\d) time units", 1.9, 2.9),  # sequential would be 3
    ],
    "asyncio_nonblocking_io": [
        has("The unit's text, run as a script, printed 0 characters."),
        has(*(f"Data from API_{i} fetched!" for i in (1, 2, 3))),
        has("Results: ['data from API_1', 'data from API_2', 'data from API_3']"),
        number(r"took (\d+\.\d) x one fetch", 0.9, 2.0),  # sequential would be 3
    ],
    "posix_thread_ctypes": [
        has("callback_alive_after_start_thread_returned: False", "handle_kept: False"),
        matches(r"run 3 times: the thread printed its line in [0-3] runs"),
        has("POSIX thread returned 42 (passed 21 in)"),
        when_built(
            "manycore.ffi.posix",
            "run_in_thread",
            "manycore.ffi.posix.run_in_thread(lambda x: 2 * x, 21) via ctypes: 42",
            "manycore.ffi.posix: not in this build yet",
        ),
        same_group_values(r"process id: main (\d+), thread (\d+)"),
        different_group_values(r"native thread id: main (\d+), POSIX thread (\d+)"),
        has("call_in_threads squares: [0, 1, 4]", "ran on distinct native threads: True"),
    ],
    "futures_thread_and_process_pools": [
        in_order("Running with ThreadPoolExecutor...", *(f"Task {i} completed" for i in range(5))),
        lambda out: _count(out, "Task 4 completed", 2),
        has("Running with ProcessPoolExecutor...", "Total execution time:"),
    ],
    "futures_thread_pool_map_io": [
        has(
            "['Data fetched from http://example1.com', 'Data fetched from http://example2.com', "
            "'Data fetched from http://example3.com']"
        ),
        number(r"3 fetches took (\d+\.\d) x one fetch", 0.9, 2.0),
        has("manycore.pmap threads: ['Data fetched from http://example1.com'"),
    ],
    "futures_submit": [has("[0, 1, 4, 9, 16]\n", "as_completed (sorted): [0, 1, 4, 9, 16]")],
    "futures_process_pool_map": [has("[0, 1, 8, 27, 64]\n", "manycore.pmap processes: [0, 1, 8, 27, 64]")],
    "futures_result_collection": [
        matches(r"^15$"),
        has("done: True | exception: None", "the worker's TypeError came back through result()"),
    ],
    "cython_prange_compute_sum": [
        has("exact answer 0.5 * n * (n - 1) / 2 = 2499975000.0"),
        has("pure Python loop: 2499975000.0"),
        has("manycore.native.sum (C, all cores, no GIL): 2499975000.0"),
        when_built(
            "manycore._cy.kernels",
            "compute_sum",
            "manycore._cy.kernels.compute_sum (Cython prange, prebuilt): 2499975000.0",
            "manycore._cy.kernels.compute_sum: not in this build yet",
        ),
        when_built(
            "manycore._cy.kernels_serial",
            "compute_sum",
            "kernels_serial.compute_sum (Cython prange, prebuilt): 2499975000.0 on 1 thread(s), OpenMP False",
            "manycore._cy.kernels_serial.compute_sum: not in this build yet",
        ),
        has("would hold: 1410065408"),
    ],
    "ctypes_sum_add": [
        when_built(
            "manycore.ffi", "add", "manycore.ffi.add(5, 10) = 15", "manycore.ffi.add: not in this build yet"
        ),
        when_built(
            "manycore.ffi",
            "add",
            "manycore.ffi.add(2**31 - 1, 1) -> OverflowError",
            "manycore.ffi.add: not in this build yet",
        ),
        matches(r"mc_cpu_count\(\) in manycore's prebuilt core: [1-9]\d*$"),
        has("abs(2**32 - 5) through ctypes c_int: 5 "),
    ],
    "cython_fast_square": [
        has("fast_square(10) in Python: 100"),
        when_built(
            "manycore._cy.kernels",
            "fast_square",
            "manycore._cy fast_square(10): 100",
            "manycore._cy fast_square: not in this build yet",
        ),
        has("fast_square(50000): -1794967296", "exact 50000 * 50000: 2500000000"),
        has(
            "-> [100, 2500000000, 2147488281] (int64 out)",
            "manycore.native.square(int64 [2**32]) -> OverflowError",
        ),
    ],
    "race_condition_debugging": [
        has("100000 with the lock (expected 100000): thread-safe, correct result"),
        matches(r"^\d+ without the lock on Python"),
        matches(r"without a lock +200 +<- 800 updates lost"),
        matches(r"with a lock +1000$"),
    ],
    "asyncio_fetch_apis": [
        in_order(
            "{'id': 1, 'title': 'DELECTUS AUT AUTEM'}",
            "{'id': 2, 'title': 'QUIS UT NAM FACILIS ET OFFICIA QUI'}",
            "{'id': 3, 'title': 'FUGIAT VENIAM MINUS'}",
        ),
        has("  ok   {'id': 3, 'title': 'FUGIAT VENIAM MINUS'}", "  FAIL http: HTTP 404"),
    ],
    "threadmodule_start_threads": [
        has(*(f"Thread {i} is executing: OS thread" for i in range(1, 6))),
        has("exact sum of squares below 10000000 = 333333283333335000000"),
        has("all threads joined, partials add up: True"),
    ],
    "sum_of_squares_evaluation": [
        has("pure Python sum_of_squares(1000000) = 333332833333500000"),
        has("manycore.native.sum_of_squares(10000000) = 333333283333335000000"),
        has("the unit's `long long` Cython version returns 1291890006563070912"),
        has("NumPy int64, same 64-bit arithmetic: 1291890006563070912"),
        when_built(
            "manycore._cy.kernels",
            "seed_sum_of_squares",
            "manycore._cy.kernels.seed_sum_of_squares): 1291890006563070912",
            "manycore._cy kernels: not in this build yet",
        ),
        when_built(
            "manycore._cy.kernels",
            "sum_of_squares",
            "manycore._cy.kernels.sum_of_squares (Cython prange, exact): 333333283333335000000",
            "manycore._cy kernels: not in this build yet",
        ),
        has("exact value fits in 64 bits: False"),
    ],
}

# Examples that start processes: also run under "spawn", which needs the __main__ guard.
SPAWN = [
    "data_parallelism_process_pool",
    "multiprocessing_process",
    "multiprocessing_pool",
    "multiprocessing_queue_producer_consumer",
    "multiprocessing_pipe",
    "multiprocessing_manager_shared_list",
    "futures_thread_and_process_pools",
    "futures_process_pool_map",
    "futures_result_collection",
]


def _count(out: str, fragment: str, times: int) -> None:
    assert out.count(fragment) == times, f"{fragment!r} {out.count(fragment)} times, expected {times}"


_durations: dict[str, float] = {}


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module", autouse=True)
def _report_durations() -> Iterator[None]:
    yield
    if _durations:
        total = sum(_durations.values())
        slowest = sorted(_durations.items(), key=lambda kv: -kv[1])[:3]
        print(f"\nexamples: {len(_durations)} runs, {total:.1f} s; slowest {slowest}")


@pytest.mark.parametrize("name", [e.name for e in examples.EXAMPLES])
def test_example_runs_and_prints_what_it_should(name: str) -> None:
    started = time.perf_counter()
    proc = _run(examples.get(name).command(small=True))
    _durations[name] = time.perf_counter() - started
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for check in EXPECTED[name]:
        try:
            check(proc.stdout)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\n--- stdout ---\n{proc.stdout}") from None


_SPAWN_RUNNER = """\
import multiprocessing, runpy, sys
multiprocessing.set_start_method("spawn")
sys.argv = [sys.argv[1], "--small"]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("name", SPAWN)
def test_process_example_works_under_spawn(name: str) -> None:
    proc = _run([sys.executable, "-c", _SPAWN_RUNNER, examples.get(name).module])
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "bootstrapping phase" not in proc.stderr
    for check in EXPECTED[name]:
        check(proc.stdout)


# ---------------------------------------------------------------- the registry
def test_every_program_file_is_registered_and_every_entry_has_a_file() -> None:
    here = Path(examples.__file__).parent
    files = {p.stem for p in here.glob("*.py") if not p.name.startswith("_")}
    assert files == {e.name for e in examples.EXAMPLES}
    assert set(EXPECTED) == files, "every example needs output checks here"
    for e in examples.EXAMPLES:
        assert e.section in examples.SECTIONS
        for companion in e.companions:
            assert (here / companion).is_file(), companion


def test_examples_follow_the_unit_order_and_count() -> None:
    order = [examples.SECTIONS.index(e.section) for e in examples.EXAMPLES]
    assert order == sorted(order)
    assert len(examples.EXAMPLES) == 35


@pytest.mark.parametrize("example", examples.EXAMPLES, ids=lambda e: e.name)
def test_example_file_starts_with_its_header_and_has_main_and_guard(example: examples.Example) -> None:
    source = example.source()
    header = source.split("from __future__", 1)[0]
    assert header.startswith("# Unit section: "), "first line names the unit's section"
    assert "# Shows: " in header
    assert "# Corrected" in header
    tree = ast.parse(source)
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert mains
    assert [a.arg for a in mains[0].args.args] == ["small"]
    assert 'if __name__ == "__main__":' in source


def test_importing_manycore_imports_no_example() -> None:
    code = (
        "import sys, manycore, manycore.examples, manycore.cli\n"
        "loaded = [m for m in sys.modules if m.startswith('manycore.examples.')]\n"
        "print(loaded)\n"
    )
    proc = _run([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_unknown_example_suggests_close_names() -> None:
    with pytest.raises(examples.UnknownExample) as info:
        examples.get("conditon")
    assert "condition_producer_consumer" in info.value.suggestions
    assert isinstance(info.value, KeyError)
    assert examples.close_matches("semaphore") == ["threading_semaphore", "threading_semaphore_join_loop"]
    assert examples.close_matches("zzzzzz") == []


# ---------------------------------------------------------------- the command
def test_cli_list_groups_by_section_in_unit_order() -> None:
    result = CliRunner().invoke(cli, ["examples", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    headings = [line for line in lines if not line.startswith(" ")]
    assert headings == list(examples.SECTIONS)
    names = [line.split()[0] for line in lines if line.startswith("  ")]
    assert names == [e.name for e in examples.EXAMPLES]
    assert "[+ threadmodule.c]" in result.output


def test_cli_show_prints_the_source_plain_when_not_a_terminal() -> None:
    result = CliRunner().invoke(cli, ["examples", "show", "condition_producer_consumer"])
    assert result.exit_code == 0, result.output
    assert result.output == examples.get("condition_producer_consumer").source()


def test_cli_show_companion_file() -> None:
    result = CliRunner().invoke(
        cli, ["examples", "show", "threadmodule_start_threads", "--file", "threadmodule.c"]
    )
    assert result.exit_code == 0, result.output
    assert "PyInit_threadmodule" in result.output
    assert "Py_BEGIN_ALLOW_THREADS" in result.output
    bad = CliRunner().invoke(cli, ["examples", "show", "threadmodule_start_threads", "--file", "nope.c"])
    assert bad.exit_code == 2
    assert "has no file 'nope.c'" in bad.output
    assert "threadmodule.c" in bad.output


@pytest.mark.parametrize("command", ["show", "run"])
def test_cli_unknown_name_is_a_usage_error_with_suggestions(command: str) -> None:
    result = CliRunner().invoke(cli, ["examples", command, "condition_producer"])
    assert result.exit_code == 2
    assert "unknown example 'condition_producer'" in result.output
    assert "did you mean condition_producer_consumer" in result.output


def test_cli_run_returns_the_example_exit_code() -> None:
    # A subprocess: `examples run` starts the example with sys.executable and exits with its code.
    ok = _run([sys.executable, "-m", "manycore.cli", "examples", "run", "futures_submit", "--small"])
    assert ok.returncode == 0, ok.stderr
    assert "[0, 1, 4, 9, 16]" in ok.stdout
    # Arguments after NAME (past `--`) reach the example.
    bad = _run([sys.executable, "-m", "manycore.cli", "examples", "run", "futures_submit", "--", "--small"])
    assert bad.returncode == 0, bad.stderr
    unknown = _run([sys.executable, "-m", "manycore.cli", "examples", "run", "nope"])
    assert unknown.returncode == 2
    assert "unknown example 'nope'" in unknown.stderr


def test_run_api_propagates_a_failing_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    example = examples.get("futures_submit")
    monkeypatch.setattr(
        examples.Example,
        "command",
        lambda self, small=False, args=(): [sys.executable, "-c", "raise SystemExit(3)"],
    )
    assert examples.run(example.name) == 3
