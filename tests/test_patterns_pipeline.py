"""Pipeline: exactly-once delivery, order, backpressure, errors, early stop, Ctrl-C, no leaks.

Stage functions used by process stages live at module level so that they
pickle under every start method (the spawn tests import this module in the
children).
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from manycore.patterns import (
    Gate,
    Pipeline,
    PipelineRun,
    RemoteError,
    RemoteTraceback,
    Stage,
    WorkerDied,
)

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)

JOIN_S = 30.0


# --- stage functions (module level: picklable) ----------------------------------


def square(x: int) -> int:
    return x * x


def add_one(x: int) -> int:
    return x + 1


def tag_pid(x: int) -> tuple[int, int]:
    return (x, os.getpid())


def jitter(x: int) -> int:
    """Identity with a random small delay (seeded by the item: runs are reproducible)."""
    time.sleep(random.Random(x).random() * 0.002)
    return x


def fail_at(bad: int, x: int) -> int:
    if x == bad:
        raise ValueError(f"stage failed on {x}")
    return x


def crash_at(bad: int, x: int) -> int:
    if x == bad:
        os._exit(7)
    return x


def sleep_long(x: int) -> int:
    if x == 1:
        time.sleep(60)
    return x


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no pickling for this one")


def raise_unpicklable(x: int) -> int:
    raise Unpicklable(f"bad {x}")


def return_lock(x: int) -> Any:
    return threading.Lock()


def is_none(x: Any) -> bool:
    return x is None


# --- helpers -------------------------------------------------------------------------


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("manycore-pipeline")]


def my_children() -> set[int]:
    """Pids of live (or zombie) processes whose parent is this process, from /proc."""
    me = os.getpid()
    pids: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and b"resource_tracker" not in cmdline and b"forkserver" not in cmdline:
            pids.add(int(entry))
    return pids


def assert_no_leaks(before_children: set[int]) -> None:
    """No pipeline thread, no multiprocessing child, no new child process in /proc."""
    assert pipeline_threads() == []
    assert multiprocessing.active_children() == []
    assert my_children() - before_children == set()


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before = my_children()
    yield
    assert_no_leaks(before)


def counted(source: Iterator[int] | range, counter: list[int]) -> Iterator[int]:
    for x in source:
        counter[0] += 1
        yield x


# --- correctness -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds",
    [
        ("thread",),
        ("process",),
        ("thread", "process"),
        ("process", "thread"),
        ("process", "process", "thread"),
    ],
)
@pytest.mark.usefixtures("no_leaks")
def test_ordered_results_for_every_kind_mix(kinds: tuple[str, ...]) -> None:
    fns = [square, add_one, add_one]
    stages = [Stage(fns[i], workers=2 + i, kind=k) for i, k in enumerate(kinds)]  # type: ignore[arg-type]
    p = Pipeline.from_stages(stages)
    n = 257
    expected = [x * x + (len(kinds) - 1) for x in range(n)]
    assert list(p.run(range(n))) == expected
    assert list(p.run(range(n))) == expected  # a pipeline is reusable


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
@pytest.mark.usefixtures("no_leaks")
def test_other_start_methods_with_process_stages(method: str) -> None:
    p = Pipeline(square, workers=2, kind="process").then(add_one, workers=2, kind="process").then(str)
    with p.run(range(101), mp_context=multiprocessing.get_context(method)) as results:
        assert list(results) == [str(x * x + 1) for x in range(101)]


@pytest.mark.usefixtures("no_leaks")
def test_process_stage_really_runs_in_other_processes() -> None:
    out = list(Pipeline(tag_pid, workers=3, kind="process").run(range(60)))
    assert [x for x, _ in out] == list(range(60))
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 3


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.usefixtures("no_leaks")
def test_unordered_delivers_the_same_multiset(kind: str) -> None:
    p = Pipeline(jitter, workers=4, kind=kind).then(square, workers=2)  # type: ignore[arg-type]
    out = list(p.run(range(300), ordered=False))
    assert sorted(out) == [x * x for x in range(300)]


@pytest.mark.usefixtures("no_leaks")
def test_ordered_despite_random_delays() -> None:
    p = Pipeline(jitter, workers=6).then(jitter, workers=3).then(add_one)
    assert list(p.run(range(400), maxsize=24)) == [x + 1 for x in range(400)]


@pytest.mark.usefixtures("no_leaks")
def test_empty_source_and_none_items() -> None:
    p = Pipeline(is_none, workers=3, kind="process").then(lambda b: b, workers=2)
    assert list(p.run([])) == []
    assert list(p.run([None, 0, None])) == [True, False, True]


@pytest.mark.parametrize("maxsize", [1, 2, 5])
@pytest.mark.usefixtures("no_leaks")
def test_small_maxsize_still_completes(maxsize: int) -> None:
    p = Pipeline(jitter, workers=4).then(add_one, workers=2, kind="process")
    assert list(p.run(range(50), maxsize=maxsize)) == [x + 1 for x in range(50)]


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.usefixtures("no_leaks")
def test_stress_every_item_exactly_once(ordered: bool) -> None:
    """Many workers, random delays: each stage calls fn once per item; every item comes out once."""
    n = 1_999
    calls: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    lock = threading.Lock()

    def recorder(name: str) -> Callable[[tuple[int, int]], tuple[int, int]]:
        def fn(item: tuple[int, int]) -> tuple[int, int]:
            with lock:
                calls[name].append(item[0])
            if random.random() < 0.05:
                time.sleep(random.random() * 0.001)
            return (item[0], item[1] + 1)

        return fn

    p = (
        Pipeline(recorder("a"), workers=7)
        .then(recorder("b"), workers=3)
        .then(jitter_pair, workers=2, kind="process")
        .then(recorder("c"), workers=5)
    )
    source = ((i, i * 7) for i in range(n))
    out = list(p.run(source, ordered=ordered, maxsize=17))
    for name in calls:
        assert sorted(calls[name]) == list(range(n)), f"stage {name}: an item was skipped or repeated"
    assert len(out) == n
    assert sorted(i for i, _ in out) == list(range(n))
    assert sum(v for _, v in out) == sum(i * 7 + 4 for i in range(n))  # checksum: every stage ran once
    if ordered:
        assert [i for i, _ in out] == list(range(n))


def jitter_pair(item: tuple[int, int]) -> tuple[int, int]:
    if item[0] % 50 == 0:
        time.sleep(0.001)
    return (item[0], item[1] + 1)


# --- backpressure ----------------------------------------------------------------------


@pytest.mark.parametrize(("ordered", "kind"), [(True, "thread"), (False, "thread"), (True, "process")])
@pytest.mark.usefixtures("no_leaks")
def test_slow_consumer_keeps_producer_at_most_maxsize_ahead(ordered: bool, kind: str) -> None:
    maxsize = 5
    produced = 0
    consumed = 0
    lead = 0

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(60):
            produced += 1
            yield i

    p = Pipeline(add_one, workers=3, kind=kind).then(add_one, workers=2)  # type: ignore[arg-type]
    with p.run(source(), ordered=ordered, maxsize=maxsize) as results:
        for r in results:
            consumed += 1  # received (it is no longer in flight)
            # A slow consumer: before asking for the next result, let the producer run
            # as far ahead as it can.  It must get exactly maxsize ahead and no further.
            deadline = time.monotonic() + JOIN_S
            while produced - consumed < maxsize and produced < 60:
                assert time.monotonic() < deadline, "the producer stopped short of maxsize"
                time.sleep(0.0005)
            time.sleep(0.001)
            # read here, where the producer is held back: in the producer's thread the
            # consumer's count may lag a received result (threads run at once on 3.13t)
            lead = max(lead, produced - consumed)
            assert produced - consumed <= maxsize
            assert results.items_in - results.items_out <= maxsize
            del r
    assert consumed == 60
    assert lead == maxsize


@pytest.mark.usefixtures("no_leaks")
def test_slow_middle_stage_holds_back_the_source() -> None:
    maxsize = 4
    gate = Gate()
    produced = [0]

    def blocked(x: int) -> int:
        gate.wait(JOIN_S)
        return x

    p = Pipeline(add_one, workers=2).then(blocked, workers=2).then(add_one)
    with p.run(counted(range(1000), produced), maxsize=maxsize) as results:
        deadline = time.monotonic() + JOIN_S
        while produced[0] < maxsize:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(0.05)
        assert produced[0] == maxsize  # the middle stage is stuck: the source is not read further
        gate.open()
        assert sum(1 for _ in results) == 1000


# --- errors ---------------------------------------------------------------------------


def infinite() -> Iterator[int]:
    i = 0
    while True:
        yield i
        i += 1


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.usefixtures("no_leaks")
def test_error_in_middle_stage_stops_everything_and_is_reraised(kind: str) -> None:
    pulled = [0]
    p = (
        Pipeline(add_one, workers=2)
        .then(functools.partial(fail_at, 41), workers=3, kind=kind)  # type: ignore[arg-type]
        .then(add_one, workers=2)
    )
    run = p.run(counted(infinite(), pulled), maxsize=8)
    seen: list[int] = []
    with pytest.raises(ValueError, match="stage failed on 41") as info:
        seen.extend(run)
    # Stopped promptly: the infinite source was read at most maxsize past what was delivered.
    assert pulled[0] <= len(seen) + 8
    assert seen == list(range(2, 2 + len(seen)))
    assert len(seen) <= 40  # nothing from item 40 on: ordered output stops at the failure
    assert pipeline_threads() == []
    assert multiprocessing.active_children() == []
    text = "".join(traceback.format_exception(info.value))
    assert "fail_at" in text
    assert 'raise ValueError(f"stage failed on {x}")' in text
    if kind == "process":
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "fail_at" in info.value.__cause__.tb_text
    assert any("stage 2/3 'fail_at'" in note for note in info.value.__notes__)
    assert list(run) == []  # after the error the iterator is finished


@pytest.mark.usefixtures("no_leaks")
def test_error_in_first_and_last_stage() -> None:
    for stages in ([fail_at_3, add_one], [add_one, fail_at_3]):
        p = Pipeline.from_stages(Stage(fn, workers=2) for fn in stages)
        with pytest.raises(ValueError, match="failed on 3"):
            list(p.run(range(10)))


def fail_at_3(x: int) -> int:
    return fail_at(3, x)


def stop_iteration(x: int) -> int:
    if x == 3:
        return next(iter([]))
    return x


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.usefixtures("no_leaks")
def test_stop_iteration_in_a_stage_is_an_error_not_the_end(kind: str) -> None:
    with pytest.raises(RuntimeError, match="raised StopIteration") as info:
        list(Pipeline(stop_iteration, kind=kind).run(range(10)))  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, StopIteration)


@pytest.mark.usefixtures("no_leaks")
def test_error_in_source_is_reraised() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("source broke")

    with pytest.raises(KeyError, match="source broke"):
        list(Pipeline(add_one, workers=2, kind="process").run(source()))


@pytest.mark.usefixtures("no_leaks")
def test_unpicklable_exception_becomes_remote_error() -> None:
    with pytest.raises(RemoteError, match="Unpicklable: bad 0") as info:
        list(Pipeline(raise_unpicklable, kind="process").run(range(3)))
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "raise_unpicklable" in info.value.__cause__.tb_text
    assert info.value.exc_type.endswith("Unpicklable")


@pytest.mark.usefixtures("no_leaks")
def test_unpicklable_item_and_result() -> None:
    with pytest.raises(TypeError, match="pickle"):
        list(Pipeline(lambda x: threading.Lock()).then(add_one, kind="process").run(range(3)))
    with pytest.raises(TypeError, match="pickle"):
        list(Pipeline(return_lock, kind="process").run(range(3)))


@pytest.mark.usefixtures("no_leaks")
def test_worker_process_crash_is_reported() -> None:
    p = Pipeline(functools.partial(crash_at, 5), workers=2, kind="process").then(add_one)
    with pytest.raises(WorkerDied, match="exited with code 7"):
        list(p.run(range(20)))


def test_process_stage_needs_a_picklable_function() -> None:
    with pytest.raises(TypeError, match="picklable"):
        Pipeline(lambda x: x, kind="process")

    def local(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="picklable"):
        Pipeline(add_one).then(local, kind="process")
    Pipeline(local)  # fine for threads


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"workers": 0}, ValueError),
        ({"workers": 1.5}, TypeError),
        ({"kind": "fiber"}, ValueError),
    ],
)
def test_stage_validation(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Pipeline(add_one, **kwargs)


def test_run_and_from_stages_validation() -> None:
    p = Pipeline(add_one)
    with pytest.raises(ValueError, match="maxsize"):
        p.run(range(3), maxsize=0)
    with pytest.raises(ValueError, match="at least one stage"):
        Pipeline.from_stages([])
    with pytest.raises(TypeError):
        Pipeline.from_stages([add_one])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Stage(3)  # type: ignore[arg-type]


def test_repr() -> None:
    p = Pipeline(add_one, workers=2).then(square, kind="process", name="sq")
    assert repr(p) == "<Pipeline add_one[2 threads] -> sq[1 process]>"
    with p.run(range(3)) as run:
        assert "running" in repr(run)
        assert run.ordered
        assert run.maxsize == 6
        list(run)
    assert "finished" in repr(run)
    assert [s.name for s in p.stages] == ["add_one", "sq"]


# --- stopping early -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.usefixtures("no_leaks")
def test_break_out_of_for_loop_stops_workers_and_closes_source(kind: str) -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from infinite()
        finally:
            closed.set()

    p = Pipeline(add_one, workers=3, kind=kind).then(add_one, workers=2)  # type: ignore[arg-type]
    for r in p.run(source()):
        if r == 10:
            break
    # No explicit close and no gc.collect(): dropping the iterator closes the run.
    assert closed.is_set()
    assert pipeline_threads() == []


@pytest.mark.usefixtures("no_leaks")
def test_close_method_and_with_block() -> None:
    p = Pipeline(add_one, workers=2, kind="process").then(add_one, workers=2)
    run = p.run(infinite())
    assert next(run) == 2
    run.close()
    run.close()  # idempotent
    assert list(run) == []
    with p.run(infinite()) as results:
        assert next(results) == 2
    assert pipeline_threads() == []

    def fail_inside_with() -> None:
        with p.run(infinite()) as results:
            next(results)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside_with()


@pytest.mark.usefixtures("no_leaks")
def test_close_from_another_thread_wakes_the_consumer() -> None:
    gate = Gate()

    def stuck(x: int) -> int:
        gate.wait(JOIN_S)
        return x

    run: PipelineRun[int] = Pipeline(stuck, workers=2).run(range(100))
    got: list[Any] = []
    consumer = threading.Thread(target=lambda: got.extend(run), daemon=True)
    consumer.start()
    time.sleep(0.02)
    closer = threading.Thread(target=run.close, daemon=True)
    closer.start()
    time.sleep(0.02)
    gate.open()  # let the two stuck thread-stage calls finish: close waits for them
    closer.join(JOIN_S)
    consumer.join(JOIN_S)
    assert not closer.is_alive()
    assert not consumer.is_alive()
    assert len(got) <= 2


@pytest.mark.usefixtures("no_leaks")
def test_close_terminates_a_busy_process_worker() -> None:
    run = Pipeline(sleep_long, workers=2, kind="process").run(range(5), ordered=False)
    first = next(run)
    assert first in (0, 2, 3, 4)
    t0 = time.monotonic()
    run.close()  # item 1 sleeps 60 s in its worker: terminated after the grace period
    assert time.monotonic() - t0 < JOIN_S  # hang guard, not a timing claim


@pytest.mark.usefixtures("no_leaks")
def test_garbage_collected_run_is_closed() -> None:
    run = Pipeline(add_one, workers=2, kind="process").run(infinite())
    next(run)
    del run
    gc.collect()
    assert pipeline_threads() == []


# --- Ctrl-C ---------------------------------------------------------------------------

CTRL_C_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys, threading, time
    from manycore.patterns import Pipeline

    def slow_square(x):
        time.sleep(0.005)
        return x * x

    def forever():
        i = 0
        while True:
            yield i
            i += 1

    if __name__ == "__main__":
        method, use_with = sys.argv[1], sys.argv[2] == "with"
        multiprocessing.set_start_method(method)
        p = Pipeline(slow_square, workers=2, kind="process").then(str, workers=2)

        def consume(results):
            for k, _ in enumerate(results):
                if k == 20:
                    pids = [c.pid for c in multiprocessing.active_children()]
                    print("READY", *pids, flush=True)

        if use_with:
            try:
                with p.run(forever()) as results:
                    consume(results)
            except KeyboardInterrupt:
                print("INTERRUPTED", len(threading.enumerate()), len(multiprocessing.active_children()), flush=True)
                sys.exit(3)
        else:
            consume(p.run(forever()))  # no with: the KeyboardInterrupt unwinds and drops the run
    """
)


def _read_line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the script did not get going"
    return str(stream.readline())


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + JOIN_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize(("method", "use_with"), [("fork", "with"), ("spawn", "with"), ("fork", "bare")])
def test_ctrl_c_stops_the_pipeline(tmp_path: Path, method: str, use_with: str) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    # A new session: SIGINT goes to the whole process group, as a terminal's Ctrl-C does.
    proc = subprocess.Popen(
        [sys.executable, str(script), method, use_with],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = _read_line(proc.stdout, 60)
        assert line.startswith("READY"), line + proc.stderr.read() if proc.stderr else line
        worker_pids = [int(x) for x in line.split()[1:]]
        assert len(worker_pids) == 2
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    if use_with == "with":
        assert proc.returncode == 3, err
        assert out.strip() == "INTERRUPTED 1 0", err  # only the main thread left, no children
    else:
        assert proc.returncode == -signal.SIGINT, err
        assert "KeyboardInterrupt" in err
    assert all(_gone(pid) for pid in worker_pids), "a worker process outlived Ctrl-C"
    assert "Traceback" not in err.split("KeyboardInterrupt")[-1]  # workers print nothing (they ignore SIGINT)
    assert err.count("Traceback") <= 1
