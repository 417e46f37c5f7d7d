"""Native threads from Python: call_in_threads, start_threads, parallel_for,
pthread_create failures (no leaked threads) and Ctrl-C during long kernels."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import threading
import traceback
from collections.abc import Callable

import numpy as np
import pytest

import native_reference as ref
from manycore import native
from native_support import THREAD_COUNTS, leftover_threads, run_python, thread_ids


# ================================================================ call_in_threads
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 17, 64])
def test_call_in_threads_results_in_order(n: int) -> None:
    objs = [object() for _ in range(n)]
    assert native.call_in_threads(lambda i: i * i, n) == [i * i for i in range(n)]
    got = native.call_in_threads(lambda i: objs[i], n)
    assert all(g is o for g, o in zip(got, objs, strict=True))


@pytest.mark.parametrize("n", [1, 4, 16])
def test_call_in_threads_runs_on_distinct_native_threads(n: int) -> None:
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    plain_ids = native.call_in_threads(lambda i: threading.get_native_id(), n)

    def record(i: int) -> int:
        tid = threading.get_native_id()
        with lock:
            seen.append((i, tid))
        return tid

    ids = native.call_in_threads(record, n)
    main = threading.get_native_id()
    assert len(set(ids)) == n
    assert main not in ids
    assert main not in plain_ids
    assert sorted(i for i, _ in seen) == list(range(n))
    assert dict(seen) == dict(enumerate(ids))


def test_call_in_threads_callable_objects() -> None:
    class Square:
        def __call__(self, i: int) -> int:
            return i * i

    assert native.call_in_threads(Square(), 4) == [0, 1, 4, 9]
    assert native.call_in_threads(str, 3) == ["0", "1", "2"]


def _explode(i: int) -> None:
    raise ValueError(f"boom {i}")


def test_call_in_threads_reraises_lowest_index_with_traceback() -> None:
    def fn(i: int) -> int:
        if i in (5, 2, 7):
            _explode(i)
        return i

    with pytest.raises(ValueError, match=r"^boom 2") as ei:
        native.call_in_threads(fn, 8)
    assert str(ei.value) == "boom 2"
    names = [frame.name for frame in traceback.extract_tb(ei.value.__traceback__)]
    assert "_explode" in names
    assert "fn" in names
    notes = ei.value.__notes__
    assert any("fn(2)" in note for note in notes)
    assert any("2 other call(s) also raised" in note for note in notes)


def test_call_in_threads_single_failure_has_no_count_note() -> None:
    def fn(i: int) -> int:
        if i == 3:
            raise KeyError(i)
        return i

    with pytest.raises(KeyError) as ei:
        native.call_in_threads(fn, 4)
    assert not any("other call" in note for note in ei.value.__notes__)
    assert "fn" in [f.name for f in traceback.extract_tb(ei.value.__traceback__)]


def test_call_in_threads_native_kernels_inside() -> None:
    # the callables release the GIL inside native kernels: results stay exact
    x = np.arange(300_000, dtype=np.int64)
    want = ref.isumsq_ref(x.tolist())
    assert native.call_in_threads(lambda i: native.sum_of_squares(x, threads=1 + i % 3), 6) == [want] * 6
    got = native.call_in_threads(lambda i: native.count_primes(10**6), 3)
    assert got == [78498] * 3


CALL_IN_THREADS_CTRL_C = """
import json, os, signal, threading, time
from manycore import native

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
done = []
def fn(i):
    time.sleep(1.0)
    done.append(i)
    return i

threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    native.call_in_threads(fn, 3)
    outcome = "returned"
except KeyboardInterrupt:
    outcome = "interrupted"
print(json.dumps({"outcome": outcome, "done": sorted(done), "after": native.call_in_threads(str, 2)}))
"""


def test_call_in_threads_ctrl_c_after_every_thread_returned() -> None:
    proc = run_python(CALL_IN_THREADS_CTRL_C, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"outcome": "interrupted", "done": [0, 1, 2], "after": ["0", "1"]}


def test_call_in_threads_leaves_no_threads() -> None:
    before = thread_ids()
    native.call_in_threads(lambda i: i, 16)
    assert leftover_threads(before) == set()


# ================================================================ start_threads
@pytest.mark.parametrize("n", THREAD_COUNTS)
@pytest.mark.parametrize("work", [0, 1, 7, 10**6 + 3, 10**7])
def test_start_threads_records(n: int, work: int) -> None:
    records = native.start_threads(n, work)
    assert len(records) == n
    assert [r.index for r in records] == list(range(n))
    ids = [r.native_id for r in records]
    assert len(set(ids)) == n
    assert threading.get_native_id() not in ids
    assert sum(r.items for r in records) == work
    assert max(r.items for r in records) - min(r.items for r in records) <= 1
    assert sum(r.partial for r in records) == native.sum_of_squares(work) == ref.sum_of_squares_range(work)
    ncpu = os.cpu_count() or 1
    for r in records:
        assert 0.0 <= r.start_s <= r.end_s
        assert r.seconds == r.end_s - r.start_s
        assert -1 <= r.cpu < max(ncpu, 1024)
        assert r.partial >= 0


START_THREADS_CTRL_C = """
import json, os, signal, threading, time
from manycore import native

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
sent = []
def interrupt():
    time.sleep(0.5)
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
cpu0 = time.process_time()
try:
    native.start_threads(2, 2**35)  # minutes of work on 2 cores
    outcome, late = "returned", None
except KeyboardInterrupt:
    outcome, late = "interrupted", time.monotonic() - sent[0]
after = native.start_threads(2, 10**6)
print(json.dumps({"outcome": outcome, "late": late, "cpu": time.process_time() - cpu0,
                  "after": sum(r.partial for r in after) == native.sum_of_squares(10**6)}))
"""


def test_start_threads_stops_at_ctrl_c() -> None:
    """Ctrl-C stops the threads (they check a flag every ~0.3 ms of work) and is raised at once:
    in about 10 ms on an idle machine; 2 s here leaves room for a busy one (it used to take minutes)."""
    proc = run_python(START_THREADS_CTRL_C, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "interrupted", result
    assert result["late"] < 2.0, result
    assert result["cpu"] < 20.0, result  # the threads stopped: they did not run on in the background
    assert result["after"] is True


def test_start_threads_default_work_and_large_partials() -> None:
    records = native.start_threads(3)
    assert sum(r.items for r in records) == 10_000_000
    assert sum(r.partial for r in records) == 333333283333335000000
    assert any(r.partial > 2**64 for r in records)  # 128-bit partials survive the binding


def test_start_threads_leaves_no_threads() -> None:
    before = thread_ids()
    native.start_threads(8, 1000)
    assert leftover_threads(before) == set()


# ================================================================ parallel_for with a ctypes callback
RANGE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


class Recorder:
    """A ctypes callback recording (context, begin, end, native thread id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, int, int, int]] = []
        self.lock = threading.Lock()
        self.fn = RANGE_FN(self._record)  # kept alive as long as the Recorder
        self.address = ctypes.cast(self.fn, ctypes.c_void_p).value

    def _record(self, ctx: int | None, begin: int, end: int) -> None:
        with self.lock:
            self.calls.append((ctx, begin, end, threading.get_native_id()))

    def chunks(self) -> list[tuple[int, int]]:
        return sorted((b, e) for _, b, e, _ in self.calls)


def assert_exact_cover(chunks: list[tuple[int, int]], n: int, grain: int) -> None:
    pos = 0
    for b, e in chunks:
        assert b == pos, f"gap or overlap at {pos}: chunk {(b, e)}"
        assert e > b
        if grain:
            assert e - b <= grain
        pos = e
    assert pos == n


@pytest.mark.parametrize("schedule", ["static", "dynamic"])
@pytest.mark.parametrize("grain", [0, 1, 7, 64, 1000, 5000])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [1, 2, 17, 1000, 4097])
def test_parallel_for_covers_range_exactly_once(n: int, grain: int, threads: int, schedule: str) -> None:
    rec = Recorder()
    native.parallel_for(rec.address, n, 0, grain, schedule=schedule, threads=threads)
    assert_exact_cover(rec.chunks(), n, grain)
    if grain == 0:  # default grain: about 16 chunks per participant
        assert len(rec.calls) <= 16 * threads + 1


@pytest.mark.parametrize("schedule", ["static", "dynamic"])
@pytest.mark.parametrize("k", THREAD_COUNTS)
def test_parallel_for_explicit_pool(k: int, schedule: str, explicit_pools: dict[int, native.Pool]) -> None:
    rec = Recorder()
    native.parallel_for(rec.address, 1234, 99, 10, schedule=schedule, pool=explicit_pools[k])
    assert_exact_cover(rec.chunks(), 1234, 10)
    assert {c[0] for c in rec.calls} == {99}  # the context pointer is passed through


@pytest.mark.parametrize("k", THREAD_COUNTS)
def test_parallel_for_static_uses_every_participant(k: int, explicit_pools: dict[int, native.Pool]) -> None:
    # static schedule: participant w runs a contiguous, non-empty share of the 100 chunks
    rec = Recorder()
    native.parallel_for(rec.address, 1000, 0, 10, schedule="static", pool=explicit_pools[k])
    by_thread: dict[int, list[int]] = {}
    for _, b, _e, tid in rec.calls:
        by_thread.setdefault(tid, []).append(b // 10)
    assert len(by_thread) == k
    assert threading.get_native_id() in by_thread  # the caller is participant 0
    for chunk_ids in by_thread.values():
        chunk_ids.sort()
        assert chunk_ids == list(range(chunk_ids[0], chunk_ids[0] + len(chunk_ids)))
        assert len(chunk_ids) in (100 // k, 100 // k + 1)


def test_parallel_for_n_zero_calls_nothing() -> None:
    rec = Recorder()
    for schedule in ("static", "dynamic"):
        for threads in (None, 1, 4):
            native.parallel_for(rec.address, 0, schedule=schedule, threads=threads)
    assert rec.calls == []


def test_parallel_for_context_pointer() -> None:
    seen: list[int] = []
    target = ctypes.c_int64(0)
    lock = threading.Lock()

    def body(ctx: int | None, begin: int, end: int) -> None:
        assert ctx is not None
        p = ctypes.cast(ctx, ctypes.POINTER(ctypes.c_int64))
        with lock:  # the GIL serialises callbacks only where there is one (not on 3.13t)
            p[0] += end - begin
        seen.append(end - begin)

    fn = RANGE_FN(body)
    addr = ctypes.cast(fn, ctypes.c_void_p).value
    native.parallel_for(addr, 10_000, ctypes.addressof(target), 100, threads=4)
    assert target.value == 10_000
    assert sum(seen) == 10_000
    native.parallel_for(addr, 5, ctypes.addressof(target), schedule="dynamic", threads=1)
    assert target.value == 10_005


def test_parallel_for_native_function() -> None:
    # a real C function (no GIL involved): the module's do-nothing range body
    from manycore import _native

    for threads in THREAD_COUNTS:
        native.parallel_for(_native.noop_address(), 10**6, threads=threads)


# ================================================================ pthread_create failures
@pytest.mark.parametrize("after", [0, 1, 2, 3, 4])
def test_pool_creation_failure(after: int, fail_thread_create: Callable[[int], None]) -> None:
    before = thread_ids()
    fail_thread_create(after)
    with pytest.raises(OSError, match="could not create an OS thread") as ei:
        native.Pool(6)
    assert ei.value.errno == errno.EAGAIN
    assert leftover_threads(before) == set()
    with native.Pool(6) as p:  # the hook fires once: the next pool works
        assert native.sum_of_squares(10**6, pool=p) == ref.sum_of_squares_range(10**6)
    assert leftover_threads(before) == set()


@pytest.mark.parametrize("after", [0, 1, 2, 3, 4])
def test_start_threads_failure(after: int, fail_thread_create: Callable[[int], None]) -> None:
    before = thread_ids()
    fail_thread_create(after)
    with pytest.raises(OSError, match="could not create an OS thread") as ei:
        native.start_threads(5, 10**6)
    assert ei.value.errno == errno.EAGAIN
    assert leftover_threads(before) == set()
    assert len(native.start_threads(5, 10)) == 5


@pytest.mark.parametrize("after", [0, 1, 2, 3, 4])
def test_call_in_threads_failure(after: int, fail_thread_create: Callable[[int], None]) -> None:
    called: list[int] = []
    before = thread_ids()
    fail_thread_create(after)
    with pytest.raises(OSError, match="could not create an OS thread") as ei:
        native.call_in_threads(called.append, 5)
    assert ei.value.errno == errno.EAGAIN
    assert sorted(called) == list(range(after))  # the threads that did start ran and were joined
    assert leftover_threads(before) == set()
    assert native.call_in_threads(lambda i: i, 5) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("after", [0, 1, 3])
def test_call_in_threads_on_start_failure_releases_waiting_bodies(
    after: int, fail_thread_create: Callable[[int], None]
) -> None:
    # Bodies that wait for a signal would make the join hang; the hook runs
    # before the join, with the number of threads started and the errno.
    go = threading.Event()
    reports: list[tuple[int, int]] = []

    def body(i: int) -> int:
        assert go.wait(60), "on_start_failure was not called before the join"
        return i

    def on_failure(started: int, os_error: int) -> None:
        reports.append((started, os_error))
        go.set()

    before = thread_ids()
    fail_thread_create(after)
    with pytest.raises(OSError, match="could not create an OS thread"):
        native.call_in_threads(body, 5, on_start_failure=on_failure)
    assert reports == [(after, errno.EAGAIN)]
    assert leftover_threads(before) == set()
    go.clear()
    assert native.call_in_threads(lambda i: i, 3, on_start_failure=on_failure) == [0, 1, 2]
    assert reports == [(after, errno.EAGAIN)]  # not called when every thread starts
    with pytest.raises(TypeError, match="on_start_failure must be callable"):
        native.call_in_threads(body, 2, on_start_failure=3)  # type: ignore[arg-type]


def test_default_pool_creation_failure_is_not_cached(fail_thread_create: Callable[[int], None]) -> None:
    x = np.arange(300_000, dtype=np.float64)
    want = native.sum(x, threads=1)
    size = max(native.default_threads(), 9) + 3  # larger than any default pool the other tests create
    before = thread_ids()
    fail_thread_create(3)
    with pytest.raises(OSError, match="could not create an OS thread") as ei:
        native.sum(x, threads=size)
    assert ei.value.errno == errno.EAGAIN
    assert leftover_threads(before) == set()
    assert native.sum(x, threads=size) == want
    assert native.default_pool(size).threads >= size


# ================================================================ Ctrl-C
CTRL_C_SCRIPT = """
import json, os, signal, threading, time
from manycore import native

# A shell starts background jobs with SIGINT ignored, and Python then installs
# no KeyboardInterrupt handler: install it explicitly.
signal.signal(signal.SIGINT, signal.default_int_handler)
mode, kernel = {mode!r}, {kernel!r}
pool = native.Pool(2) if mode == "pool" else None
kw = {{"pool": pool}} if mode == "pool" else ({{"threads": 1}} if mode == "serial" else {{}})
native.sum_of_squares(10**6, **kw)  # warm up (creates the default pool)

sent = []
def interrupt():
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)
threading.Timer(0.5, interrupt).start()

result = {{"mode": mode, "kernel": kernel}}
start = time.monotonic()
try:
    if kernel == "count_primes":
        native.count_primes(10**11, **kw)
    else:
        native.sum_of_squares(2**40, **kw)
    result["outcome"] = "finished"
except KeyboardInterrupt:
    result["outcome"] = "interrupted"
    result["after_signal"] = time.monotonic() - sent[0]
result["elapsed"] = time.monotonic() - start
# the same pool (or the serial path) still works and gives exact results
result["followup_sos"] = native.sum_of_squares(10**7 + 3, **kw)
result["followup_primes"] = native.count_primes(10**7, **kw)
result["followup_sum"] = native.sum(bytes(range(256)) * 4096, **kw)
print(json.dumps(result))
"""


@pytest.mark.parametrize("kernel", ["sum_of_squares", "count_primes"])
@pytest.mark.parametrize("mode", ["default", "pool", "serial"])
def test_ctrl_c_interrupts_long_kernel(mode: str, kernel: str) -> None:
    proc = run_python(CTRL_C_SCRIPT.format(mode=mode, kernel=kernel), timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "interrupted", result
    assert result["after_signal"] < 2.0, result  # hang guard, not a performance bound
    assert result["followup_sos"] == ref.sum_of_squares_range(10**7 + 3)
    assert result["followup_primes"] == 664579
    assert result["followup_sum"] == 4096 * sum(range(256))
