"""pmap: results, ordering, laziness, errors, timeouts, crashes, Ctrl-C, pickling, shared memory."""

from __future__ import annotations

import itertools
import multiprocessing
import operator
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import manycore
from light_tasks import segfault
from manycore import TaskError, WorkerCrashed, _build, pmap, pstarmap

BACKENDS = ["serial", "threads", "processes", "native"]


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def busy(x: int) -> int:
    total = 0
    for i in range(20_000):
        total += i % 7
    return x + total - total


def children() -> set[int]:
    """Live child processes of this process (from /proc), zombies excluded."""
    me = os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(entry))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_in_order(backend: str) -> None:
    assert list(pmap(square, range(103), backend=backend)) == [x * x for x in range(103)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unordered_has_every_result(backend: str) -> None:
    out = list(pmap(square, range(50), backend=backend, ordered=False, chunksize=3))
    assert sorted(out) == [x * x for x in range(50)]


@pytest.mark.parametrize("backend", [*BACKENDS, "auto"])
def test_empty_input(backend: str) -> None:
    assert list(pmap(square, [], backend=backend)) == []


def test_result_acts_as_list() -> None:
    r = pmap(square, range(5), backend="threads")
    assert r == [0, 1, 4, 9, 16]
    assert r[2] == 4
    assert list(r) == [0, 1, 4, 9, 16]


def test_partly_iterated_result_cannot_become_a_list() -> None:
    r = pmap(square, range(5), backend="serial")
    assert next(r) == 0
    with pytest.raises(RuntimeError, match="after iterating"):
        r.results()


def test_pstarmap_unpacks_arguments() -> None:
    assert list(pstarmap(pow, [(2, 3), (3, 2), (10, 0)], backend="processes")) == [8, 9, 1]


def test_executor_pmap_method() -> None:
    with manycore.ThreadExecutor(max_workers=2) as ex:
        assert list(ex.pmap(square, range(10))) == [x * x for x in range(10)]
    with manycore.ProcessExecutor(max_workers=2) as ex:
        assert list(ex.pmap(lambda x: -x, range(10))) == [-x for x in range(10)]
        assert list(ex.pstarmap(max, [(1, 5), (7, 2)])) == [5, 7]


def test_lambdas_and_closures_run_in_processes() -> None:
    offset = 1000
    assert list(pmap(lambda x: x + offset, range(20), backend="processes")) == [x + 1000 for x in range(20)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_raise_names_the_item(backend: str) -> None:
    with pytest.raises(ValueError, match="bad item 3") as info:
        list(pmap(fail_on_three, range(10), backend=backend, chunksize=2))
    notes = getattr(info.value, "__notes__", [])
    assert any("item 3" in n for n in notes)
    if backend == "processes":
        # the worker's traceback travels as __cause__, like ProcessPoolExecutor
        assert "fail_on_three" in str(info.value.__cause__)


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_collect_keeps_the_others(backend: str) -> None:
    out = list(pmap(fail_on_three, range(8), backend=backend, errors="collect", chunksize=3))
    assert [x for i, x in enumerate(out) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    err = out[3]
    assert isinstance(err, TaskError)
    assert err.index == 3
    assert isinstance(err.exception, ValueError)
    assert "fail_on_three" in err.traceback


@pytest.mark.parametrize("backend", ["serial", "threads", "processes"])
def test_infinite_input_is_consumed_lazily(backend: str) -> None:
    consumed = itertools.count()
    read = [0]

    def numbers():
        for i in consumed:
            read[0] = i + 1
            yield i

    results = pmap(square, numbers(), backend=backend, chunksize=4, workers=2)
    first = list(itertools.islice(results, 20))
    results.close()
    assert first == [x * x for x in range(20)]
    # bounded: what was read is what was needed plus a few chunks in flight
    assert read[0] <= 20 + 3 * 4 * 2 + 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_error_stops_the_map_after_earlier_items(backend: str) -> None:
    def numbers():
        yield from range(5)
        raise OSError("input broke")

    results = pmap(square, numbers(), backend=backend, chunksize=2)
    seen = [next(results) for _ in range(5)]
    assert seen == [0, 1, 4, 9, 16]
    with pytest.raises(OSError, match="input broke"):
        next(results)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"workers": 0}, ValueError, "workers"),
        ({"workers": -2}, ValueError, "workers"),
        ({"workers": "2"}, TypeError, "workers"),
        ({"chunksize": 0}, ValueError, "chunksize"),
        ({"chunksize": "big"}, TypeError, "chunksize"),
        ({"errors": "ignore"}, ValueError, "errors"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"task_timeout": -1}, ValueError, "task_timeout"),
        ({"backend": "gpu"}, ValueError, "backend"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        pmap(square, range(3), **kwargs)


def test_bad_fn_and_iterable() -> None:
    with pytest.raises(TypeError, match="fn must be callable"):
        pmap(42, range(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable"):
        pmap(square, 42)  # type: ignore[arg-type]


def sleepy(x: int) -> int:
    if x == 2:
        time.sleep(60)
    return x


def regex_hog(x: int) -> int:
    """Catastrophic backtracking: a C loop inside `re` that holds the GIL."""
    if x == 1:
        re.match(r"(a+)+$", "a" * 64 + "b")
    return x


@pytest.mark.parametrize("fn", [sleepy, regex_hog])
def test_task_timeout_kills_only_the_stuck_worker(fn) -> None:
    before = children()
    t0 = time.monotonic()
    out = list(
        pmap(fn, range(6), backend="processes", workers=2, chunksize=1, task_timeout=0.5, errors="collect")
    )
    assert time.monotonic() - t0 < 20  # hang guard
    stuck = 2 if fn is sleepy else 1
    assert isinstance(out[stuck], TaskError)
    assert isinstance(out[stuck].exception, TimeoutError)
    assert [x for i, x in enumerate(out) if i != stuck] == [i for i in range(6) if i != stuck]
    assert children() <= before


def test_task_timeout_raises_by_default() -> None:
    with pytest.raises(TimeoutError, match="item 2"):
        list(pmap(sleepy, range(4), backend="processes", task_timeout=0.3, chunksize=1))


def test_task_timeout_on_threads_abandons_the_item() -> None:
    def wait_forever(x: int) -> int:
        if x == 1:
            threading.Event().wait(3)
        return x

    out = list(pmap(wait_forever, range(4), backend="threads", task_timeout=0.3, errors="collect"))
    assert isinstance(out[1], TaskError)
    assert isinstance(out[1].exception, TimeoutError)
    assert [out[0], out[2], out[3]] == [0, 2, 3]


@pytest.mark.parametrize("kind", ["ThreadExecutor", "stdlib"])
def test_task_timeout_counts_from_when_the_call_starts(kind: str) -> None:
    """A worker that takes longer to start than task_timeout (here a slow initializer; a new
    subinterpreter is one) does not time its first item out: the clock starts with the call."""
    from concurrent.futures import ThreadPoolExecutor

    from manycore.executors import ThreadExecutor

    make = {"ThreadExecutor": ThreadExecutor, "stdlib": ThreadPoolExecutor}[kind]
    with make(max_workers=1, initializer=time.sleep, initargs=(2.5,)) as executor:
        t0 = time.monotonic()
        out = list(pmap(abs, [-1, -2, -3], executor=executor, task_timeout=1.5, errors="collect"))
        took = time.monotonic() - t0
    assert out == [1, 2, 3]
    assert took >= 2.5  # the initializer did delay the first call past task_timeout


def test_overall_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        list(pmap(sleepy, range(4), backend="processes", timeout=0.5, chunksize=1))
    assert time.monotonic() - t0 < 20


def exit_on_five(x: int) -> int:
    if x == 5:
        os._exit(7)
    return x


def segfault_on_four(x: int) -> int:
    if x == 4:
        segfault()
    return x


def test_worker_crash_names_item_and_exit_code() -> None:
    with pytest.raises(WorkerCrashed) as info:
        list(pmap(exit_on_five, range(10), backend="processes", chunksize=2))
    assert info.value.index == 5
    assert info.value.exitcode == 7
    assert "item 5" in str(info.value)


def test_worker_segfault_collect_keeps_other_results() -> None:
    before = children()
    out = list(pmap(segfault_on_four, range(12), backend="processes", chunksize=3, errors="collect"))
    err = out[4]
    assert isinstance(err, TaskError)
    assert isinstance(err.exception, WorkerCrashed)
    assert err.exception.signal_name == "SIGSEGV"
    assert [x for i, x in enumerate(out) if i != 4] == [i for i in range(12) if i != 4]
    assert children() <= before


@pytest.mark.timeout(240)
def test_crashes_while_chunks_are_sent_ahead_lose_nothing() -> None:
    # Quick items make the engine send chunks ahead; a worker that dies holds
    # one it has not started (or the send finds the pipe closed): every other
    # item still comes back, the crashed one is named.
    for _ in range(15):
        out = list(
            pmap(segfault_on_four, range(40), backend="processes", workers=2, chunksize=1, errors="collect")
        )
        assert isinstance(out[4], TaskError)
        assert isinstance(out[4].exception, WorkerCrashed)
        assert [x for i, x in enumerate(out) if i != 4] == [i for i in range(40) if i != 4]


def test_crash_is_a_broken_process_pool() -> None:
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        list(pmap(exit_on_five, range(8), backend="processes"))


def test_unpicklable_item_is_named() -> None:
    items = [1, 2, threading.Lock(), 4]
    out = list(pmap(lambda x: 1, items, backend="processes", errors="collect", chunksize=4))
    assert out[0] == out[1] == out[3] == 1
    assert isinstance(out[2], TaskError)
    # the pickler's own exception (TypeError for a lock), with a note naming the item
    assert type(out[2].exception) is TypeError, repr(out[2].exception)
    assert "cannot pickle" in str(out[2].exception)
    assert "item 2 cannot be sent to a worker process" in out[2].exception.__notes__


def test_unpicklable_result_is_named() -> None:
    def make(x: int):
        return threading.Lock() if x == 1 else x

    out = list(pmap(make, range(3), backend="processes", errors="collect", chunksize=3))
    assert out[0] == 0
    assert out[2] == 2
    assert isinstance(out[1], TaskError)
    assert "item 1" in str(out[1].exception)


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}-{b}")
        self.a = a


def raise_custom(x: int) -> int:
    if x == 1:
        raise NeedsTwoArgs(1, 2)
    return x


def test_exception_that_cannot_be_unpickled() -> None:
    out = list(pmap(raise_custom, range(3), backend="processes", errors="collect"))
    assert out[0] == 0
    assert out[2] == 2
    assert isinstance(out[1], TaskError)
    exc = out[1].exception
    # the original comes back if some pickling support (tblib, installed by dask)
    # can rebuild it; otherwise an UnpicklableError naming it
    assert type(exc).__name__ == "NeedsTwoArgs" or "NeedsTwoArgs" in str(exc)


def shm_segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}


def array_sum(a: np.ndarray) -> float:
    a += 1  # copy-on-write: the parent's array must not change
    return float(a.sum())


def test_large_arrays_travel_through_shared_memory_and_are_released() -> None:
    before = shm_segments()
    arrays = [np.full(300_000, float(i)) for i in range(4)]  # 2.4 MB each
    out = list(pmap(array_sum, arrays, backend="processes", chunksize=1))
    assert out == [300_000.0 * (i + 1) for i in range(4)]
    assert all((a == i).all() for i, a in enumerate(arrays))
    assert shm_segments() <= before


def test_shared_memory_released_on_error() -> None:
    before = shm_segments()

    def boom(a: np.ndarray) -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        list(pmap(boom, [np.zeros(300_000)] * 3, backend="processes", chunksize=1))
    assert shm_segments() <= before


def test_progress_is_silent_without_a_tty(capfd: pytest.CaptureFixture[str]) -> None:
    assert list(pmap(square, range(20), backend="threads", progress=True)) == [x * x for x in range(20)]
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_explain_prints_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    list(pmap(square, range(100), explain=True))
    err = capsys.readouterr().err
    assert "backend=serial" in err
    assert "item_wall_s" in err


def cpu_heavy(x: int) -> int:
    total = 0
    for i in range(300_000):
        total += i ^ x
    return total


def test_auto_keeps_trivial_work_serial_and_sends_waiting_work_to_threads(capsys) -> None:
    list(pmap(abs, range(1000), explain=True))
    assert "backend=serial" in capsys.readouterr().err

    def wait_a_bit(x: int) -> int:
        time.sleep(0.01)
        return x

    assert list(pmap(wait_a_bit, range(30), explain=True)) == list(range(30))
    assert "backend=threads" in capsys.readouterr().err


def test_auto_gives_threads_short_chunks(capsys) -> None:
    """A hand-off to a thread costs microseconds: chunks of ~2 ms (not ~20 ms as for processes), so
    two workers stay balanced when later items cost more than the probed ones."""
    import re

    from manycore._map.decide import THREAD_CHUNK_S

    def wait_half_a_ms(x: int) -> int:
        time.sleep(0.0005)
        return x

    assert list(pmap(wait_half_a_ms, range(200), workers=2, explain=True)) == list(range(200))
    err = capsys.readouterr().err
    assert "backend=threads" in err
    chunk = int(re.search(r"chunksize=(\d+)", err).group(1))  # type: ignore[union-attr]
    # items take >= 0.5 ms (sleep's floor), so a chunk holds at most THREAD_CHUNK_S / 0.5 ms of them
    assert 1 <= chunk <= THREAD_CHUNK_S / 0.0005, err


def test_auto_sends_cpu_bound_python_to_processes_or_to_threads_without_the_gil(capsys) -> None:
    out = list(pmap(cpu_heavy, range(24), explain=True))
    assert out == [cpu_heavy(x) for x in range(24)]
    err = capsys.readouterr().err
    if _build.gil_enabled():
        assert "backend=processes" in err
    else:  # free-threaded build, GIL off: threads run Python in parallel
        assert "backend=threads" in err
        assert "free-threaded build with the GIL off" in err


def test_auto_decision_is_cached(capsys) -> None:
    def f(x: int) -> int:
        return x + 1

    list(pmap(f, range(50), explain=True))
    list(pmap(f, range(50), explain=True))
    assert "cached" in capsys.readouterr().err


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import manycore

    def slow(x):
        time.sleep(30)
        return x

    main = threading.main_thread().ident
    threading.Timer(1.0, lambda: signal.pthread_kill(main, signal.SIGINT)).start()
    t0 = time.monotonic()
    try:
        list(manycore.pmap(slow, range(8), backend=sys.argv[1], workers=2, chunksize=1))
    except KeyboardInterrupt:
        print("interrupted after", round(time.monotonic() - t0, 2), flush=True)
    import multiprocessing
    print("children", len(multiprocessing.active_children()), flush=True)
    """
)


@pytest.mark.parametrize("backend", ["processes", "serial"])
def test_ctrl_c_stops_promptly_without_orphans(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CTRL_C_SCRIPT, backend],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "interrupted after" in proc.stdout, proc.stderr
    seconds = float(proc.stdout.split("interrupted after")[1].split()[0])
    assert seconds < 5  # signal at 1 s; a hang would take 30 s
    assert "children 0" in proc.stdout


def test_no_worker_survives_a_map() -> None:
    before = children()
    list(pmap(square, range(100), backend="processes"))
    assert children() <= before


def test_signal_name_of_exit_codes() -> None:
    assert WorkerCrashed("x", exitcode=-signal.SIGKILL).signal_name == "SIGKILL"
    assert WorkerCrashed("x", exitcode=3).signal_name is None


def test_known_length_starts_only_the_workers_that_get_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    from manycore._workers import engine as _engine

    started: list[int] = []
    spawn = _engine.ProcessEngine._spawn

    def counting_spawn(self: _engine.ProcessEngine, slot: int) -> object:
        started.append(slot)
        return spawn(self, slot)

    monkeypatch.setattr(_engine.ProcessEngine, "_spawn", counting_spawn)
    # 3 items in chunks of 2: two chunks, so two of the four workers, started up front
    assert list(pmap(square, [1, 2, 3], backend="processes", workers=4, chunksize=2)) == [1, 4, 9]
    assert sorted(started) == [0, 1]
    started.clear()
    # a generator has no length: workers start as chunks are read (here one chunk, one worker)
    assert list(pmap(square, (x for x in [1, 2, 3]), backend="processes", workers=4, chunksize=5)) == [
        1,
        4,
        9,
    ]
    assert started == [0]


def blas_threads_after(seconds: float) -> list[int]:
    time.sleep(seconds)
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "openblas"]


def test_workers_limit_blas_threads_once_a_chunk_ran_long() -> None:
    # NumPy's OpenBLAS is loaded here, so forked workers inherit it.  A worker
    # limits it (to cpus // workers) after its first chunk that ran >= 0.1 s:
    # limiting starts OpenBLAS threads that spin, which short maps never pay.
    from manycore._workers.protocol import LIMIT_INNER_AFTER_S

    assert np.ones((2, 2)) @ np.ones((2, 2)) is not None
    expected = max(1, len(os.sched_getaffinity(0)) // 2)
    first = 1.5 * LIMIT_INNER_AFTER_S
    # one chunk per worker that runs long, then one more item each
    # forked workers, whatever threads other tests left running (else forkserver: a fresh OpenBLAS)
    fork = multiprocessing.get_context("fork")
    with manycore.ProcessExecutor(2, mp_context=fork) as ex:
        got = list(ex.pmap(blas_threads_after, [first, first, 0, 0], chunksize=1))
    assert all(got), got  # OpenBLAS seen in every worker
    assert got[2:] == [[expected], [expected]], got
    # a short map never limits: its workers keep the parent's setting
    parent = blas_threads_after(0)
    with manycore.ProcessExecutor(2, mp_context=fork) as ex:
        short = list(ex.pmap(blas_threads_after, [0, 0], chunksize=1))
    assert short == [parent, parent], short


@pytest.mark.timeout(120)
def test_overlapping_pmaps_on_one_process_executor() -> None:
    # An engine's workers serve one map at a time: a pmap nested in the loop over
    # another, or running in another thread at once, gets workers of its own
    # (it used to wait forever for workers busy with the suspended map).
    base = children()
    with manycore.ProcessExecutor(2) as ex:
        outer = []
        for x in ex.pmap(square, range(4), chunksize=1):
            outer.append(sum(ex.pmap(square, range(x + 1), chunksize=1)))
        assert outer == [sum(y * y for y in range(x * x + 1)) for x in range(4)]

        results: list[int | None] = [None, None]

        def run(k: int) -> None:
            results[k] = sum(ex.pmap(square, range(2000), chunksize=10))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [sum(y * y for y in range(2000))] * 2
        # only the shared engine's workers outlive a map (private engines close with theirs)
        assert len(children() - base) <= 2


# ------------------------------------------------ the serial path over a list
def fail_at(bad: set[int]):
    def fn(x: int) -> int:
        if x in bad:
            raise ValueError(f"bad item {x}")
        return x * 2

    return fn


class Doubler:
    """A callable that is not a Python function: run through C-level map."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, x: int) -> int:
        if x == self.bad:
            raise KeyError(x)
        return x * 2


@pytest.mark.parametrize(
    "make", [lambda bad: fail_at({bad}), lambda bad: Doubler(bad)], ids=["function", "callable"]
)
@pytest.mark.parametrize("bad", [0, 1, 4_999, 9_999])
def test_run_chunk_records_the_failed_position_and_goes_on(make, bad: int) -> None:
    from manycore._workers.batches import run_chunk

    values, failures = run_chunk(make(bad), list(range(10_000)))
    assert len(values) == 10_000
    assert list(failures) == [bad]
    assert values[bad] is None
    assert values[:bad] == [2 * x for x in range(bad)]
    assert values[bad + 1 :] == [2 * x for x in range(bad + 1, 10_000)]


def test_run_chunk_into_continues_an_earlier_run() -> None:
    from manycore._workers.batches import run_chunk

    first = run_chunk(fail_at({1}), [0, 1, 2])
    values, failures = run_chunk(fail_at({4}), [3, 4, 5], into=first)
    assert values is first[0]
    assert values == [0, None, 4, 6, None, 10]
    assert sorted(failures) == [1, 4]


def test_run_chunk_lets_keyboard_interrupt_through() -> None:
    from manycore._workers.batches import run_chunk

    def interrupt(x: int) -> int:
        if x == 2:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        run_chunk(interrupt, range(5))


@pytest.mark.parametrize("backend", ["serial", "auto"])
@pytest.mark.parametrize("bad", [2, 5_000, 19_999])
def test_serial_list_raise_streams_the_results_before_the_failure(backend: str, bad: int) -> None:
    fn = fail_at({bad, bad + 1})  # a new function: auto probes it first (the probe joins the rest)
    got: list[int] = []

    def consume() -> None:
        for value in pmap(fn, list(range(20_000)), backend=backend):
            got.append(value)

    with pytest.raises(ValueError, match=f"^bad item {bad}\n") as info:
        consume()
    assert info.value.args == (f"bad item {bad}",)
    assert got == [2 * x for x in range(bad)]
    assert any(f"item {bad} of pmap" in note for note in info.value.__notes__)


@pytest.mark.parametrize("backend", ["serial", "auto"])
def test_serial_list_collect_puts_task_errors_in_place(backend: str) -> None:
    bad = {3, 4_000, 19_999}
    fn = fail_at(bad)
    for _ in range(2):  # auto: first probed, then with the cached decision
        out = pmap(fn, tuple(range(20_000)), backend=backend, errors="collect").results()
        assert len(out) == 20_000
        errors = {i: v for i, v in enumerate(out) if isinstance(v, TaskError)}
        assert sorted(errors) == sorted(bad)
        assert all(e.index == i and isinstance(e.exception, ValueError) for i, e in errors.items())
        assert [v for i, v in enumerate(out) if i not in bad] == [
            2 * x for x in range(20_000) if x not in bad
        ]


def test_serial_list_results_iteration_and_list_agree() -> None:
    items = list(range(5_000))
    expected = [x * x for x in items]
    result = pmap(square, items, backend="serial")
    assert result.results() == expected
    assert result.results() is result.results()  # kept, not recomputed
    assert list(result) == expected  # iterating after results() goes over the kept list
    assert list(pmap(square, items, backend="serial")) == expected
    streaming = pmap(square, range(5_000), backend="serial")
    assert next(streaming) == 0
    assert next(streaming) == 1
    with pytest.raises(RuntimeError, match="after iterating"):
        streaming.results()
    assert list(streaming) == expected[2:]


def test_serial_list_calls_fn_once_per_item_in_order() -> None:
    seen: list[int] = []

    def record(x: int) -> int:
        seen.append(x)
        if x == 700:
            raise ValueError("x")
        return x

    out = pmap(record, list(range(3_000)), errors="collect").results()
    assert seen == list(range(3_000))  # the probe's items are not run again
    assert isinstance(out[700], TaskError)
    assert out[:700] == list(range(700))


def test_serial_list_with_input_mutated_by_fn_does_not_lose_results() -> None:
    items = list(range(2_000))

    def grow(x: int) -> int:
        if 0 <= x < 3:
            items.append(-1)
        return x

    out = list(pmap(grow, items, backend="serial"))
    assert out[:2_000] == list(range(2_000))
    assert out[2_000:] in ([], [-1, -1, -1])  # appended items may or may not be seen, as with map()


def test_serial_list_is_computed_as_the_consumer_iterates() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return -x

    result = pmap(record, list(range(10_000)), backend="serial")
    stream = iter(result)
    assert calls == []  # nothing runs before the first next()
    assert operator.length_hint(result) == 10_000  # list() sizes its copy once
    assert [next(stream) for _ in range(3)] == [0, -1, -2]
    assert calls == [0, 1, 2]  # no read-ahead: a consumer that stops early stops the work
    result.close()
    assert list(stream) == []  # closed: no further item is computed
    assert calls == [0, 1, 2]
    assert list(pmap(record, tuple(range(5)), backend="serial")) == [0, -1, -2, -3, -4]


def test_serial_list_with_progress_still_delivers_everything() -> None:
    out = pmap(fail_at({7}), list(range(3_000)), backend="serial", progress=True, errors="collect").results()
    assert isinstance(out[7], TaskError)
    assert out[7].index == 7
    assert out[:7] == [2 * x for x in range(7)]


def test_auto_serial_list_close_stops_after_the_probe() -> None:
    calls: list[int] = []

    def record(x: int) -> int:  # a new function: auto probes a few items first
        calls.append(x)
        return x

    result = pmap(record, list(range(10_000)))
    stream = iter(result)
    assert next(stream) == 0
    probed = len(calls)
    assert 1 <= probed <= 16
    result.close()
    rest = list(stream)
    assert rest == list(range(1, len(rest) + 1))  # what was computed before close() only
    assert len(calls) == probed


def test_delivery_never_mistakes_a_tuple_result_for_a_batch() -> None:
    # Results waiting behind a gap that never fills (the input raised) are
    # delivered in order; single results kept item by item are values, even
    # when a value is a 2-tuple like the (values, failures) pairs kept beside them.
    from manycore._map.deliver import Backlog, deliver

    batches = [
        (range(3, 5), [("a", {}), ("b", {})], {}),  # a contiguous run that overtook items 0-2
        ([6, 8], [("c", {}), ("d", {})], {}),  # two single results (a careful re-run)
        ([10, 12], [None, ("e", {})], {0: (ValueError("item 10 failed"), "")}),
    ]
    out = deliver(iter(batches), ordered=True, errors="raise", backlog=Backlog(limit=100))
    assert next(out) == [("a", {}), ("b", {})]
    assert next(out) == [("c", {})]
    assert next(out) == [("d", {})]
    with pytest.raises(ValueError, match="item 10 failed") as info:
        next(out)
    assert "raised by item 10 of pmap" in str(getattr(info.value, "__notes__", ""))


@pytest.mark.parametrize("size", [1, 3])
def test_a_plain_stdlib_pool_is_used_at_its_own_size(size: int, capsys: pytest.CaptureFixture[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(size) as pool:
        assert list(pmap(square, range(10), executor=pool, explain=True)) == [x * x for x in range(10)]
    assert f"workers={size} " in capsys.readouterr().err


# a hang guard: it used to wait 30 s in the engine's close for a run that never started
@pytest.mark.timeout(25)
def test_an_unpicklable_fn_fails_at_once_naming_fn() -> None:
    lock = threading.Lock()
    with pytest.raises(TypeError, match="pickle") as info:
        list(pmap(lambda x: (lock, x)[1], range(4), backend="processes", workers=2))
    assert any("cannot send fn" in note for note in getattr(info.value, "__notes__", [])), info.value


def test_len_is_the_inputs_length_without_waiting() -> None:
    gate = threading.Event()

    def held(x: int) -> int:
        gate.wait(60)
        return x

    result = pmap(held, [1, 2, 3], backend="threads", workers=2)
    assert len(result) == 3  # known before any item ran
    assert bool(result)
    gate.set()
    assert result == [1, 2, 3]
    assert len(pmap(abs, range(0))) == 0
    assert not pmap(abs, [])
    collected = pmap(lambda x: 1 / x, [1, 0, 2], backend="threads", errors="collect")
    assert len(collected) == 3
    assert isinstance(list(collected)[1], TaskError)


def test_len_of_a_map_over_an_iterator_says_what_to_do() -> None:
    result = pmap(abs, iter([1, -2]))
    with pytest.raises(
        TypeError, match=r"len\(\) of a PMapResult needs an input of known length.*results\(\)"
    ):
        len(result)
    assert bool(result)  # never raises
    assert list(result) == [1, 2]
    materialised = pmap(abs, (x for x in [1, -2]))
    assert materialised.results() == [1, 2]
    assert len(materialised) == 2  # once kept, it has a length
