"""Benchmark of the native runtime against its peers, measured side by side in one run.

    python benchmarks/native.py [--quick] [--json FILE]

Sections
  1. sum_of_squares(10**7): the unit's pure-Python loop vs native (1 thread, all threads)
     vs NumPy; each result checked for exactness against the exact integer.
  2. dispatch: an empty parallel region on the native pool (measured in C) vs
     ThreadPoolExecutor submit+result vs creating threads per call.
  3. memory-bound: sum and dot over a large float64 array vs NumPy, with a copy
     bandwidth reference.
  4. GIL-release crossover: native.sum on growing inputs, 1 thread vs all threads.

Only ratios measured within this run are reported; nothing is compared with
numbers from elsewhere.  Timings are min (and median) of several repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from manycore import native


def measure(fn: Callable[[], Any], repeat: int, number: int = 1) -> tuple[float, float]:
    """(min, median) seconds per call over `repeat` batches of `number` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times), statistics.median(times)


def seed_sum_of_squares(n: int) -> int:
    """The unit's pure-Python implementation, verbatim in spirit."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def row(name: str, best: float, median: float, extra: str = "") -> None:
    print(f"  {name:<44} {best * 1e3:>10.3f} ms  (median {median * 1e3:8.3f})  {extra}")


def section_sum_of_squares(quick: bool, results: dict[str, Any]) -> None:
    n = 10**7
    exact = (n - 1) * n * (2 * n - 1) // 6
    cpus = native.default_threads()
    print(f"\n[1] sum of squares, N = 10**7 (exact answer {exact}; > 2**63 = {2**63})")
    py_best, py_med = measure(lambda: seed_sum_of_squares(n), repeat=1 if quick else 3)
    row("pure Python loop (the unit's)", py_best, py_med, "exact ✔")
    native.sum_of_squares(n)  # warm the pool
    rep = 20 if quick else 50
    timings: dict[str, float] = {"python_loop": py_best}
    for threads in sorted({1, cpus}):
        value = native.sum_of_squares(n, threads=threads)
        best, med = measure(lambda t=threads: native.sum_of_squares(n, threads=t), rep)
        timings[f"native_{threads}t"] = best
        ok = "exact ✔" if value == exact else f"WRONG ✘ ({value})"
        row(f"native, {threads} thread(s)", best, med, f"{py_best / best:7.0f}x the loop, {ok}")
    arange = np.arange(n, dtype=np.int64)
    np_value = int(np.sum(arange * arange))
    best, med = measure(lambda: np.sum(arange * arange), rep // 2)
    timings["numpy_int64"] = best
    ok = "exact ✔" if np_value == exact else f"WRONG ✘ (wraps mod 2**64: {np_value})"
    row("NumPy np.sum(a*a), int64", best, med, f"{py_best / best:7.0f}x the loop, {ok}")
    best, med = measure(lambda: float(np.sum(np.arange(n, dtype=np.float64) ** 2)), rep // 2)
    f_value = float(np.sum(np.arange(n, dtype=np.float64) ** 2))
    ok = "exact ✔" if f_value == exact else f"inexact ✘ (float64: {f_value!r})"
    row("NumPy np.sum(a**2), float64", best, med, f"{py_best / best:7.0f}x the loop, {ok}")
    all_t = timings[f"native_{cpus}t"]
    one_t = timings["native_1t"]
    speedup = py_best / all_t
    efficiency = one_t / (cpus * all_t) if cpus > 1 else 1.0
    print(f"  -> native all threads vs loop: {speedup:.0f}x (target >= 700x)")
    print(f"  -> {cpus}-thread efficiency T1/(p*Tp): {efficiency:.2f} (target >= 0.95)")
    print(f"  -> the unit claims 40-50x for Cython; measured here: {py_best / one_t:.0f}x on one thread")
    results["sum_of_squares"] = {
        "timings_s": timings,
        "speedup_vs_loop": speedup,
        "efficiency": efficiency,
        "numpy_int64_exact": np_value == exact,
    }


def section_dispatch(quick: bool, results: dict[str, Any]) -> None:
    cpus = native.default_threads()
    print(f"\n[2] dispatch cost of one empty parallel region ({cpus} participants)")
    iters = 50_000 if quick else 200_000
    native.bench_dispatch(1000)
    per = min(native.bench_dispatch(iters) for _ in range(3))
    print(f"  {'native pool (C loop of empty regions)':<44} {per * 1e6:10.3f} us   (target <= 1.5 us)")
    pool = native.default_pool()
    addr_calls = 20_000 if quick else 100_000
    noop = _noop_address()
    py_best, _ = measure(lambda: native.parallel_for(noop, cpus, 0, 1, pool=pool), 3, addr_calls // 10)
    print(f"  {'native.parallel_for from Python (noop C fn)':<44} {py_best * 1e6:10.3f} us")

    def executor_round(ex: ThreadPoolExecutor) -> None:
        futures = [ex.submit(int) for _ in range(cpus)]
        for f in futures:
            f.result()

    with ThreadPoolExecutor(cpus) as ex:
        executor_round(ex)
        tpe, _ = measure(lambda: executor_round(ex), 3, 2000 if quick else 10_000)
    print(f"  {'ThreadPoolExecutor: submit+result x threads':<44} {tpe * 1e6:10.3f} us   ({tpe / per:.0f}x)")

    def create_threads() -> None:
        ts = [threading.Thread(target=int) for _ in range(cpus)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    thr, _ = measure(create_threads, 3, 500 if quick else 2000)
    print(f"  {'threading.Thread create+start+join x threads':<44} {thr * 1e6:10.3f} us   ({thr / per:.0f}x)")
    raw, _ = measure(lambda: native.start_threads(cpus, 0), 3, 500 if quick else 2000)
    print(
        f"  {'pthread_create+join x threads (start_threads)':<44} {raw * 1e6:10.3f} us   ({raw / per:.0f}x)"
    )
    results["dispatch_us"] = {
        "native_region": per * 1e6,
        "parallel_for_from_python": py_best * 1e6,
        "thread_pool_executor": tpe * 1e6,
        "threading_thread": thr * 1e6,
        "pthread_create_join": raw * 1e6,
    }


def _noop_address() -> int:
    """Address of the core's mc_noop_range: `void f(void *, size_t, size_t)` doing nothing."""
    return int(native._native.noop_address())


def section_memory(quick: bool, results: dict[str, Any]) -> None:
    n = (25 if quick else 100) * 10**6
    mb = n * 8 / 1e6
    print(f"\n[3] memory-bound: float64 arrays of {mb:.0f} MB")
    rng = np.random.default_rng(0)
    x = rng.random(n)
    y = rng.random(n)
    dst = np.empty_like(x)
    rep = 5 if quick else 7
    copy, _ = measure(lambda: np.copyto(dst, x), rep)
    print(
        f"  {'np.copyto (read+write bandwidth reference)':<44} {copy * 1e3:10.3f} ms  "
        f"({2 * mb / 1e3 / copy:.1f} GB/s)"
    )
    peers: dict[str, Callable[[], Any]] = {
        "np.sum": lambda: np.sum(x),
        "native.sum": lambda: native.sum(x),
        "np.dot": lambda: np.dot(x, y),
        "native.dot": lambda: native.dot(x, y),
    }
    # Interleave the peers round by round so a noisy neighbour hurts them alike.
    samples: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(rep + 1):
        for name, fn in peers.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    out: dict[str, float] = {}
    for name, times in samples.items():
        times = times[1:]  # the first round warms caches and page tables
        out[name] = best = min(times)
        bytes_read = mb * (2 if "dot" in name else 1)
        row(name, best, statistics.median(times), f"{bytes_read / 1e3 / best:5.1f} GB/s")
    print(f"  -> native.sum vs np.sum: {out['np.sum'] / out['native.sum']:.2f}x faster (target >= 1.8x)")
    print(f"  -> native.dot vs np.dot: {out['np.dot'] / out['native.dot']:.2f}x (target >= 1.0x)")
    print(
        f"  -> agreement: sum rel diff {abs(native.sum(x) - np.sum(x)) / np.sum(x):.1e}, "
        f"dot rel diff {abs(native.dot(x, y) - np.dot(x, y)) / np.dot(x, y):.1e}"
    )
    results["memory_bound_s"] = out | {"copy": copy}


def section_crossover(quick: bool, results: dict[str, Any]) -> None:
    cpus = native.default_threads()
    print(f"\n[4] when does threading a call pay? native.sum over float64, 1 vs {cpus} threads")
    print(f"  (the extension releases the GIL from {int(native._native.GIL_RELEASE_MIN_WORK)} elements)")
    rows = {}
    for exp in range(10, 21, 2):
        n = 2**exp
        x = np.ones(n)
        number = max(1, 2**20 // n) * 20
        one, _ = measure(lambda x=x: native.sum(x, threads=1), 5, number)
        many, _ = measure(lambda x=x: native.sum(x, threads=cpus), 5, number)
        rows[n] = (one, many)
        print(
            f"  n = 2**{exp:<3} 1 thread {one * 1e6:9.2f} us   {cpus} threads {many * 1e6:9.2f} us"
            f"   speedup {one / many:5.2f}x"
        )
    results["crossover_us"] = {str(k): [v[0] * 1e6, v[1] * 1e6] for k, v in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 200 MB memory test")
    parser.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    args = parser.parse_args(argv)
    info = native.build_info()
    print(
        f"manycore native benchmark — {info['cpu_count']} CPUs, SIMD {info['simd']}, "
        f"{info['compiler']}, Python {sys.version.split()[0]}, pid {os.getpid()}"
    )
    results: dict[str, Any] = {"build": info}
    section_sum_of_squares(args.quick, results)
    section_dispatch(args.quick, results)
    section_memory(args.quick, results)
    section_crossover(args.quick, results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
