"""Pools: life cycle, default pools, bit-identical results for every thread count,
concurrent and nested use, closing while busy, and fork()."""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import native_reference as ref
from manycore import native
from native_support import THREAD_COUNTS, leftover_threads, run_python, thread_ids

RANGE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


# ================================================================ life cycle
def test_pool_basics() -> None:
    p = native.Pool(3)
    assert p.threads == 3
    assert not p.closed
    assert repr(p) == "<manycore.native.Pool threads=3 open>"
    p.close()
    assert p.closed
    assert repr(p) == "<manycore.native.Pool threads=3 closed>"
    p.close()  # idempotent
    assert p.closed


def test_pool_context_manager_closes() -> None:
    with native.Pool(2) as p:
        assert isinstance(p, native.Pool)
        assert not p.closed
        assert native.sum_of_squares(10**6, pool=p) == ref.sum_of_squares_range(10**6)
    assert p.closed
    with pytest.raises(RuntimeError):
        native.sum_of_squares(10**6, pool=p)


def test_pool_context_manager_closes_on_exception() -> None:
    with pytest.raises(ZeroDivisionError), native.Pool(2) as p:
        _ = 1 / 0
    assert p.closed


def test_pool_default_size_is_cpu_count() -> None:
    with native.Pool() as p:
        assert p.threads == native.default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_pool_threads_are_created_and_joined(k: int) -> None:
    before = thread_ids()
    p = native.Pool(k)
    assert len(thread_ids() - before) == k - 1  # k participants: k - 1 workers plus the caller
    p.close()
    assert leftover_threads(before) == set()
    q = native.Pool(k)
    assert len(thread_ids() - before) == k - 1
    del q  # dropping the last reference joins the workers too
    gc.collect()
    assert leftover_threads(before) == set()


def test_pool_with_max_threads() -> None:
    before = thread_ids()
    x = _floats("d", 1_000_003, seed=8)
    want = native.sum(x, threads=1)
    with native.Pool(native.MAX_THREADS) as p:
        assert native.MAX_THREADS == 1024
        assert len(thread_ids() - before) == 1023
        assert ref.bits(native.sum(x, pool=p)) == ref.bits(want)
        assert native.sum_of_squares(10**7, pool=p) == ref.sum_of_squares_range(10**7)
        assert native.count_primes(10**6, pool=p) == 78498
    assert leftover_threads(before) == set()


def test_build_info_and_bench_dispatch() -> None:
    info = native.build_info()
    assert info["cpu_count"] == len(os.sched_getaffinity(0)) == native.default_threads()
    assert info["max_threads"] == native.MAX_THREADS
    assert info["poll_interval_ms"] == 20
    assert info["simd"] in ("avx512", "avx2", "baseline")
    assert isinstance(info["compiler"], str)
    assert isinstance(info["openmp"], bool)
    for kw in ({}, {"threads": 1}, {"threads": 3}):
        per = native.bench_dispatch(200, **kw)
        assert isinstance(per, float)
        assert math.isfinite(per)
        assert per > 0.0


def test_default_pool_is_shared() -> None:
    d = native.default_pool()
    assert d is native.default_pool()
    assert d is native.default_pool(None)
    assert d.threads == native.default_threads()
    assert not d.closed
    assert native.default_pool(1).threads >= 1
    assert native.default_pool(d.threads) is d


def test_default_pool_grows_once() -> None:
    big = native.default_pool(9)
    assert big.threads >= 9
    assert native.default_pool(9) is big
    before = thread_ids()
    for _ in range(3):
        assert native.default_pool(9) is big
        native.sum_of_squares(10**6, threads=9)
    assert thread_ids() - before == set()  # no new pool per call


@pytest.mark.parametrize("k", THREAD_COUNTS)
def test_threads_less_than_pool(k: int, explicit_pools: dict[int, native.Pool]) -> None:
    p = explicit_pools[8]
    x = np.arange(1_000_003, dtype=np.float64)
    assert native.sum(x, pool=p, threads=k) == native.sum(x, threads=1)


# ================================================================ determinism across thread counts
def canonical(v: Any) -> Any:
    """A hashable, bit-exact form of a kernel result."""
    if isinstance(v, float):
        return ("float", struct.pack("<d", v), v.hex())
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, tuple):
        return tuple(canonical(e) for e in v)
    return v


def over_thread_counts(call: Callable[..., Any], pools: dict[int, native.Pool]) -> dict[str, Any]:
    results = {"default": call()}
    for k in THREAD_COUNTS:
        results[f"threads={k}"] = call(threads=k)
        results[f"Pool({k})"] = call(pool=pools[k])
        results[f"Pool(8), threads={k}"] = call(pool=pools[8], threads=k)
    return results


def assert_identical(results: dict[str, Any]) -> Any:
    first_key = "threads=1"
    want = canonical(results[first_key])
    for key, v in results.items():
        assert canonical(v) == want, f"{key} differs from {first_key}: {v!r} vs {results[first_key]!r}"
    return results[first_key]


def _floats(fmt: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(fmt)


@pytest.mark.parametrize("n", [131073, 1_000_003])
@pytest.mark.parametrize("fmt", ["f", "d"])
def test_float_reductions_identical_bits(fmt: str, n: int, explicit_pools: dict[int, native.Pool]) -> None:
    x = _floats(fmt, n, seed=n)
    y = _floats(fmt, n, seed=n + 1)
    s = assert_identical(over_thread_counts(lambda **kw: native.sum(x, **kw), explicit_pools))
    q = assert_identical(over_thread_counts(lambda **kw: native.sum_of_squares(x, **kw), explicit_pools))
    d = assert_identical(over_thread_counts(lambda **kw: native.dot(x, y, **kw), explicit_pools))
    if n < 200_000:  # and they are the documented summation, bit for bit
        xs, ys = x.tolist(), y.tolist()
        assert ref.bits(s) == ref.bits(ref.fsum_ref(xs))
        assert ref.bits(q) == ref.bits(ref.fsumsq_ref(xs))
        assert ref.bits(d) == ref.bits(ref.fdot_ref(xs, ys))


def test_float_sum_with_larger_blocks_identical_bits() -> None:
    # n > 2**28: the block size doubles (8192); still independent of the thread count
    n = 2**28 + 17
    tile = _floats("f", 100003, seed=5)
    x = np.resize(tile, n)
    results = {k: native.sum(x, threads=k) for k in (1, 2, 5)}
    results[0] = native.sum(x)
    assert len({ref.bits(v) for v in results.values()}) == 1
    want = float(np.sum(x, dtype=np.float64))
    scale = float(np.sum(np.abs(x), dtype=np.float64))
    assert abs(results[1] - want) <= 1e-12 * scale
    del x


@pytest.mark.parametrize("fmt", ["b", "H", "i", "Q", "q"])
def test_int_reductions_identical(fmt: str, explicit_pools: dict[int, native.Pool]) -> None:
    info = np.iinfo(np.dtype(fmt))
    rng = np.random.default_rng(1)
    x = rng.integers(int(info.min), int(info.max), size=500_009, endpoint=True, dtype=np.dtype(fmt)).astype(
        fmt
    )
    xs = x.tolist()
    assert assert_identical(over_thread_counts(lambda **kw: native.sum(x, **kw), explicit_pools)) == sum(xs)
    assert assert_identical(over_thread_counts(lambda **kw: native.dot(x, x, **kw), explicit_pools)) == sum(
        v * v for v in xs
    )
    assert assert_identical(over_thread_counts(lambda **kw: native.minmax(x, **kw), explicit_pools)) == (
        min(xs),
        max(xs),
    )


def test_minmax_identical_bits(explicit_pools: dict[int, native.Pool]) -> None:
    x = _floats("d", 1_000_003, seed=9)
    x[::1000] = 0.0
    x[7::1000] = -0.0
    lo, hi = assert_identical(over_thread_counts(lambda **kw: native.minmax(x, **kw), explicit_pools))
    assert (lo, hi) == (float(x.min()), float(x.max()))
    z = np.array([0.0, -0.0] * 300_000)
    lo, hi = assert_identical(over_thread_counts(lambda **kw: native.minmax(z, **kw), explicit_pools))
    assert math.copysign(1.0, lo) == -1.0
    assert math.copysign(1.0, hi) == 1.0
    z[123_457] = math.nan
    lo, hi = native.minmax(z, threads=5)
    assert math.isnan(lo)
    assert math.isnan(hi)


def test_sum_of_squares_range_and_primes_identical(explicit_pools: dict[int, native.Pool]) -> None:
    n = 10**7 + 19
    want = ref.sum_of_squares_range(n)
    assert (
        assert_identical(over_thread_counts(lambda **kw: native.sum_of_squares(n, **kw), explicit_pools))
        == want
    )
    assert assert_identical(
        over_thread_counts(lambda **kw: native.count_primes(2 * 10**6 + 1, **kw), explicit_pools)
    ) == ref.count_primes_ref(2 * 10**6 + 1)


def test_histogram_identical(explicit_pools: dict[int, native.Pool]) -> None:
    x = _floats("d", 1_000_003, seed=3) * 1e-6
    x[::997] = math.nan
    counts = assert_identical(
        over_thread_counts(lambda **kw: native.histogram(x, 100, -2.0, 3.0, **kw), explicit_pools)
    )
    assert counts.tolist() == ref.histogram_ref(x.tolist(), 100, -2.0, 3.0)


def test_monte_carlo_pi_identical(explicit_pools: dict[int, native.Pool]) -> None:
    est = assert_identical(
        over_thread_counts(lambda **kw: native.monte_carlo_pi(300_007, 42, **kw), explicit_pools)
    )
    assert ref.bits(est) == ref.bits(4.0 * ref.monte_carlo_hits_ref(300_007, 42) / 300_007)
    assert_identical(
        over_thread_counts(lambda **kw: native.monte_carlo_pi(4_000_037, 7, **kw), explicit_pools)
    )


def test_mandelbrot_identical(explicit_pools: dict[int, native.Pool]) -> None:
    img = assert_identical(
        over_thread_counts(lambda **kw: native.mandelbrot(203, 151, 100, **kw), explicit_pools)
    )
    assert img.shape == (151, 203)
    rows = [0, 75, 150]
    full = ref.mandelbrot_ref(203, 151, 100, -2.0, 1.0, -1.5, 1.5)
    assert [img[r].tolist() for r in rows] == [full[r] for r in rows]


def test_matmul_identical(explicit_pools: dict[int, native.Pool]) -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((97, 201))
    b = rng.standard_normal((201, 83))
    c = assert_identical(over_thread_counts(lambda **kw: native.matmul(a, b, **kw), explicit_pools))
    want = ref.matmul_ref(a, b)
    assert np.array(want).tobytes() == c.tobytes()  # the naive loop's rounding, bit for bit


def test_square_identical(explicit_pools: dict[int, native.Pool]) -> None:
    x = _floats("d", 1_000_003, seed=4)
    sq = assert_identical(over_thread_counts(lambda **kw: native.square(x, **kw), explicit_pools))
    assert sq.tobytes() == (x * x).tobytes()
    i = np.arange(1_000_003, dtype=np.int64) - 500_000
    i[777_777] = 2**62
    for kw in ({}, {"threads": 3}, {"pool": explicit_pools[5]}):
        with pytest.raises(OverflowError):
            native.square(i, **kw)


# ================================================================ concurrent and nested use
def test_concurrent_calls_on_one_pool() -> None:
    x = _floats("d", 1_000_003, seed=6)
    want = native.sum(x, threads=1)
    want_sos = ref.sum_of_squares_range(3 * 10**6)
    errors: list[BaseException] = []
    results: list[bool] = []
    lock = threading.Lock()
    with native.Pool(3) as p:

        def worker(i: int) -> None:
            try:
                for _ in range(5):
                    ok = native.sum(x, pool=p) == want and native.sum(x, threads=1 + i % 3) == want
                    ok = ok and native.sum_of_squares(3 * 10**6, pool=p, threads=1 + i % 3) == want_sos
                    with lock:
                        results.append(ok)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert results == [True] * 20


def test_close_while_a_kernel_runs_is_deferred() -> None:
    before = thread_ids()
    p = native.Pool(3)
    workers = thread_ids() - before
    assert len(workers) == 2
    started = threading.Event()
    proceed = threading.Event()
    calls: list[int] = []

    def body(ctx: int | None, begin: int, end: int) -> None:
        calls.append(begin)
        started.set()
        proceed.wait(30)

    fn = RANGE_FN(body)
    addr = ctypes.cast(fn, ctypes.c_void_p).value
    errors: list[BaseException] = []

    def run() -> None:
        try:
            native.parallel_for(addr, 6, 0, 1, pool=p)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert started.wait(30)
        p.close()  # returns at once: the workers are joined when the kernel finishes
        assert p.closed
        with pytest.raises(RuntimeError, match="closed Pool"):
            native.sum(np.zeros(10), pool=p)
        assert workers <= thread_ids()  # not joined yet: the kernel still runs on them
    finally:
        proceed.set()
        t.join(timeout=30)
    assert not t.is_alive()
    assert errors == []
    assert sorted(calls) == list(range(6))
    assert leftover_threads(before) == set()  # joined when the kernel finished


NESTED_SCRIPT = """
import ctypes, json
import numpy as np
from manycore import native

x = np.arange(300_000, dtype=np.float64)
want = native.sum(x, threads=1)
p = native.Pool(3)
FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
res = []

@FN
def body(ctx, b, e):
    res.append(native.sum(x, pool=p) == want)   # same pool, from inside its own region
    res.append(native.sum(x) == want)           # the default pool
    res.append(native.sum_of_squares(10**6, threads=2) == 333332833333500000)

addr = ctypes.cast(body, ctypes.c_void_p).value
native.parallel_for(addr, 12, 0, 1, pool=p)
native.parallel_for(addr, 12, 0, 1, schedule="dynamic")
native.parallel_for(addr, 12, 0, 1, threads=3)
print(json.dumps({"n": len(res), "ok": all(res), "after": native.sum(x, pool=p) == want}))
"""


def test_nested_calls_from_inside_a_region() -> None:
    proc = run_python(NESTED_SCRIPT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"n": 108, "ok": True, "after": True}


# ================================================================ fork
FORK_SCRIPT = """
import json, multiprocessing, os, sys, time, traceback
import numpy as np
from manycore import native

x = np.arange(1_000_000, dtype=np.float64)
want = native.sum(x, threads=1)
assert native.sum(x) == want           # the default pool exists in the parent
assert native.sum(x, threads=3) == want
p = native.Pool(2)
assert native.sum(x, pool=p) == want
noop = native._native.noop_address()
native.parallel_for(noop, 10**5)       # the C face caches the default pool's handle


def child_sum(i):
    return native.sum(x, threads=1 + i % 3) == want and native.count_primes(10**6) == 78498


def in_child():
    res = {}
    res["sum_default"] = native.sum(x) == want
    res["sum_threads3"] = native.sum(x, threads=3) == want
    res["sos"] = native.sum_of_squares(10**7) == 333333283333335000000
    res["primes"] = native.count_primes(10**6) == 78498
    res["default_threads"] = native.default_pool().threads
    res["parallel_for_default"] = native.parallel_for(noop, 10**5) is None  # not the parent's pool
    for name, arg in (("stale_large", x), ("stale_small", x[:10])):
        try:
            native.sum(arg, pool=p)
            res[name] = "no error"
        except RuntimeError as e:
            res[name] = "RuntimeError: " + str(e)
    try:
        native.sum_of_squares(10**7, pool=p)
        res["stale_sos"] = "no error"
    except RuntimeError as e:
        res["stale_sos"] = "RuntimeError: " + str(e)
    with native.Pool(2) as q:
        res["child_pool"] = native.sum(x, pool=q) == want
    p.close()
    res["stale_closed"] = p.closed
    return res


pid = os.fork()
if pid == 0:
    code = 0
    try:
        print("CHILD " + json.dumps(in_child()), flush=True)
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)

deadline = time.monotonic() + 30
while True:
    wpid, status = os.waitpid(pid, os.WNOHANG)
    if wpid:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("CHILD-HANG", flush=True)
        sys.exit(3)
    time.sleep(0.01)

parent = {"child_exit": os.waitstatus_to_exitcode(status)}
ctx = multiprocessing.get_context("fork")
with ctx.Pool(2) as mp:
    parent["mp"] = mp.map_async(child_sum, range(4)).get(timeout=30)
parent["parent_pool"] = native.sum(x, pool=p) == want
parent["parent_default"] = native.sum(x) == want
print("PARENT " + json.dumps(parent), flush=True)
"""


@pytest.fixture(scope="module")
def fork_result() -> dict[str, Any]:
    proc = run_python(FORK_SCRIPT, timeout=90)
    out: dict[str, Any] = {"returncode": proc.returncode, "stderr": proc.stderr}
    for line in proc.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag in ("CHILD", "PARENT"):
            out[tag.lower()] = json.loads(payload)
        elif tag == "CHILD-HANG":
            out["hang"] = True
    return out


def test_fork_nothing_hangs(fork_result: dict[str, Any]) -> None:
    assert "hang" not in fork_result
    assert fork_result["returncode"] == 0, fork_result["stderr"]
    assert fork_result["parent"]["child_exit"] == 0, fork_result["stderr"]


def test_fork_child_kernels_work(fork_result: dict[str, Any]) -> None:
    child = fork_result["child"]
    for key in ("sum_default", "sum_threads3", "sos", "primes", "child_pool", "parallel_for_default"):
        assert child[key] is True, (key, child)
    assert child["default_threads"] == native.default_threads()
    assert child["stale_closed"] is True


def test_fork_stale_pool_raises_in_child(fork_result: dict[str, Any]) -> None:
    child = fork_result["child"]
    assert child["stale_large"].startswith("RuntimeError"), child
    assert "fork" in child["stale_large"]
    assert child["stale_sos"].startswith("RuntimeError"), child


def test_fork_stale_pool_raises_in_child_for_small_inputs_too(fork_result: dict[str, Any]) -> None:
    # README: "using a pool object created before the fork raises RuntimeError"
    child = fork_result["child"]
    assert child["stale_small"].startswith("RuntimeError"), child


def test_fork_parent_unaffected_and_multiprocessing(fork_result: dict[str, Any]) -> None:
    parent = fork_result["parent"]
    assert parent["parent_pool"] is True
    assert parent["parent_default"] is True
    assert parent["mp"] == [True] * 4


# ================================================================ every size x every thread count
SIZES = (0, 1, 2, 3, 17, 4095, 4097, 65537, 100003, 131071, 131073, 262147)


def thread_configs(pools: dict[int, native.Pool]) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [{}]
    for k in THREAD_COUNTS:
        configs += [{"threads": k}, {"pool": pools[k]}]
    return configs


@pytest.mark.parametrize("n", SIZES)
def test_reductions_every_size_every_thread_count(n: int, explicit_pools: dict[int, native.Pool]) -> None:
    rng = np.random.default_rng(n)
    xi = rng.integers(-(2**63), 2**63 - 1, size=n, endpoint=True, dtype=np.int64)
    xu = rng.integers(0, 255, size=n, endpoint=True, dtype=np.uint8)
    xf = _floats("d", n, seed=n)
    yf = _floats("f", n, seed=n + 1)
    li, lu, lf, lyf = xi.tolist(), xu.tolist(), xf.tolist(), yf.tolist()
    want = {
        "sum_i": sum(li),
        "dot_i": sum(v * v for v in li),
        "sos_u": sum(v * v for v in lu),
        "sum_f": ref.bits(ref.fsum_ref(lf)),
        "dot_f": ref.bits(ref.fdot_ref(lf, lf)),
        "sos_f32": ref.bits(ref.fsumsq_ref(lyf)),
        "hist": ref.histogram_ref(lf, 13, -1.0, 1.0),
        "square": (xf * xf).tobytes(),
    }
    if n:
        want["minmax_i"] = (min(li), max(li))
        want["minmax_f"] = (min(lf), max(lf))
    for kw in thread_configs(explicit_pools):
        got = {
            "sum_i": native.sum(xi, **kw),
            "dot_i": native.dot(xi, xi, **kw),
            "sos_u": native.sum_of_squares(xu, **kw),
            "sum_f": ref.bits(native.sum(xf, **kw)),
            "dot_f": ref.bits(native.dot(xf, xf, **kw)),
            "sos_f32": ref.bits(native.sum_of_squares(yf, **kw)),
            "hist": native.histogram(xf, 13, -1.0, 1.0, **kw).tolist(),
            "square": native.square(xf, **kw).tobytes(),
        }
        if n:
            got["minmax_i"] = native.minmax(xi, **kw)
            got["minmax_f"] = native.minmax(xf, **kw)
        assert got == want, kw


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 97, 65536, 65537, 131072, 131075, 1_000_003])
def test_counts_every_thread_count(n: int, explicit_pools: dict[int, native.Pool]) -> None:
    primes = ref.count_primes_ref(n)
    sos = ref.sum_of_squares_range(n)
    for kw in thread_configs(explicit_pools):
        assert native.count_primes(n, **kw) == primes, kw
        assert native.sum_of_squares(n, **kw) == sos, kw


@pytest.mark.parametrize("samples", [1, 17, 4097, 65537, 100003])
def test_monte_carlo_every_thread_count(samples: int, explicit_pools: dict[int, native.Pool]) -> None:
    want = ref.bits(4.0 * ref.monte_carlo_hits_ref(samples, 99) / samples)
    for kw in thread_configs(explicit_pools):
        assert ref.bits(native.monte_carlo_pi(samples, 99, **kw)) == want, kw


@pytest.mark.parametrize(("w", "h"), [(1, 1), (7, 3), (33, 17), (64, 64)])
def test_mandelbrot_every_thread_count(w: int, h: int, explicit_pools: dict[int, native.Pool]) -> None:
    want = ref.mandelbrot_ref(w, h, 130, -2.0, 1.0, -1.5, 1.5)
    for kw in thread_configs(explicit_pools):
        assert native.mandelbrot(w, h, 130, **kw).tolist() == want, kw
