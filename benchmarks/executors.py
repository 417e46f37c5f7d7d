"""Executors and pmap against their peers, measured side by side in one run.

    python benchmarks/executors.py [--quick]

Peers: serial, multiprocessing.Pool, concurrent.futures executors, joblib and mpire
(benchmark-only dependencies: `pip install joblib mpire`; missing ones are reported).

1. 100k trivial tasks: pmap(auto) vs serial; pmap(processes) vs Pool.map (default chunksize)
   vs ProcessPoolExecutor.map vs joblib vs mpire.
2. CPU-bound pure-Python function on all cores: speed-up over serial.
3. Per-task overhead of the batched process backend (pmap processes, large chunks) vs
   Pool.map with large chunks.
4. A GIL-releasing NumPy function on threads.
5. ProcessExecutor (manycore's own worker pool) against the stdlib's ProcessPoolExecutor, both
   warm: 5,000 tiny ``submit`` calls, ``map(chunksize=1)`` and ``map(chunksize=n/(4p))``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

import manycore


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def trivial(x: int) -> int:
    return x + 1


def cpu_task(n: int) -> int:
    total = 0
    for i in range(n):
        total += i % 7
    return total


def numpy_task(seed: int) -> float:
    a = _ARRAYS[seed % len(_ARRAYS)]
    return float(np.sort(a)[0])


_ARRAYS = [np.random.default_rng(k).random(2_000_000) for k in range(2)]


def line(name: str, seconds: float, base: float | None = None, note: str = "") -> None:
    ratio = f"{base / seconds:7.2f}x" if base else ""
    print(f"  {name:<52} {seconds * 1e3:10.1f} ms {ratio}  {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    rep = 3 if args.quick else 5
    print(f"executors benchmark — {cpus} CPUs, Python {sys.version.split()[0]}")

    n = 100_000
    items = list(range(n))
    expected = [x + 1 for x in items]
    print(f"\n[1] {n:,} trivial tasks (x + 1)")
    serial, _ = best_of(lambda: [trivial(x) for x in items], rep)
    line("serial list comprehension", serial, serial)
    lmap, _ = best_of(lambda: list(map(trivial, items)), rep)
    line("serial list(map(f, xs)) (C-level calls, as pmap's serial path)", lmap, serial)
    auto, _ = best_of(lambda: list(manycore.pmap(trivial, items)), rep)
    assert list(manycore.pmap(trivial, items)) == expected
    line("list(manycore.pmap(auto))", auto, serial, f"(target >= 0.9x serial; {lmap / auto:.2f}x list(map))")
    kept, _ = best_of(lambda: manycore.pmap(trivial, items).results(), rep)
    line("manycore.pmap(auto).results()", kept, serial, f"({lmap / kept:.2f}x list(map))")
    forced, _ = best_of(lambda: list(manycore.pmap(trivial, items, backend="processes")), rep)
    line("manycore.pmap(backend='processes'), pool start included", forced, serial)

    def pool_map() -> list[int]:
        with multiprocessing.get_context().Pool(cpus) as pool:
            return pool.map(trivial, items)

    pool_t, _ = best_of(pool_map, rep)
    line("multiprocessing.Pool.map (default chunksize), start incl.", pool_t, serial)
    print(f"  -> pmap(processes) vs Pool.map: {pool_t / forced:.2f}x (target >= 1.0x)")

    def ppe_map() -> list[int]:
        with ProcessPoolExecutor(cpus) as ex:
            return list(ex.map(trivial, items, chunksize=max(1, n // (cpus * 4))))

    ppe, _ = best_of(ppe_map, max(1, rep - 1))
    line("ProcessPoolExecutor.map (chunksize n/(4p)), start incl.", ppe, serial)
    try:
        from joblib import Parallel, delayed

        jl, _ = best_of(lambda: Parallel(n_jobs=cpus)(delayed(trivial)(x) for x in items), 1)
        line("joblib Parallel(n_jobs=p), loky", jl, serial)
        print(f"  -> pmap(processes) vs joblib: {jl / forced:.1f}x")
    except ImportError as exc:
        print(f"  joblib: not installed ({exc})")
    try:
        from mpire import WorkerPool

        def mpire_map() -> list[int]:
            with WorkerPool(n_jobs=cpus) as pool:
                return pool.map(trivial, items)

        mp_t, _ = best_of(mpire_map, rep)
        line("mpire WorkerPool.map", mp_t, serial)
    except ImportError as exc:
        print(f"  mpire: not installed ({exc})")

    work = [200_000 if args.quick else 400_000] * (4 * cpus)
    print(f"\n[2] CPU-bound pure Python: {len(work)} tasks of cpu_task({work[0]:,})")
    serial2, _ = best_of(lambda: [cpu_task(w) for w in work], 2)
    line("serial", serial2, serial2)
    par, _ = best_of(lambda: list(manycore.pmap(cpu_task, work, backend="processes")), 2)
    line("manycore.pmap(backend='processes'), start incl.", par, serial2, f"(target >= {0.925 * cpus:.2f}x)")

    def pool_cpu() -> list[int]:
        with multiprocessing.get_context().Pool(cpus) as pool:
            return pool.map(cpu_task, work)

    pool2, _ = best_of(pool_cpu, 2)
    line("multiprocessing.Pool.map, start incl. (peer)", pool2, serial2)
    with manycore.ProcessExecutor(cpus) as ex:
        list(ex.pmap(trivial, range(8 * cpus)))  # start the engine's workers
        warm, _ = best_of(lambda: list(ex.pmap(cpu_task, work)), 2)
        line("ProcessExecutor.pmap, warm workers", warm, serial2)
    auto2, _ = best_of(lambda: list(manycore.pmap(cpu_task, work)), 2)
    line("manycore.pmap(auto)", auto2, serial2)

    print("\n[3] per-task overhead of the batched process backend (warm workers, 1M trivial tasks)")
    big = list(range(1_000_000 if not args.quick else 300_000))
    with manycore.ProcessExecutor(cpus) as ex:
        list(ex.pmap(trivial, range(8 * cpus)))
        t_pm, _ = best_of(lambda: list(ex.pmap(trivial, big, chunksize=len(big) // (4 * cpus))), rep)
    with multiprocessing.get_context().Pool(cpus) as pool:
        pool.map(trivial, range(100))
        t_pool, _ = best_of(lambda: pool.map(trivial, big, chunksize=len(big) // (4 * cpus)), rep)
    t_ser, _ = best_of(lambda: [trivial(x) for x in big], rep)
    per_pm = (t_pm - t_ser / cpus) / len(big) * 1e6
    per_pool = (t_pool - t_ser / cpus) / len(big) * 1e6
    print(
        f"  pmap processes: {t_pm / len(big) * 1e6:.3f} us/task wall, {per_pm:.3f} us overhead (target <= 0.3)"
    )
    print(f"  Pool.map large chunks: {t_pool / len(big) * 1e6:.3f} us/task wall, {per_pool:.3f} us overhead")

    print(f"\n[4] GIL-releasing NumPy (np.sort of 2M floats) x {4 * cpus}")
    seeds = list(range(4 * cpus))
    s4, _ = best_of(lambda: [numpy_task(s) for s in seeds], rep)
    line("serial", s4, s4)
    t4, _ = best_of(lambda: list(manycore.pmap(numpy_task, seeds, backend="threads")), rep)
    line("manycore.pmap(backend='threads')", t4, s4)
    a4, _ = best_of(lambda: list(manycore.pmap(numpy_task, seeds)), rep)
    line("manycore.pmap(auto)", a4, s4)

    calls = 5_000
    print(f"\n[5] ProcessExecutor vs ProcessPoolExecutor (warm, {cpus} workers), {calls:,} tiny calls")
    small = list(range(calls))
    rows: dict[str, dict[str, float]] = {}
    for name, cls in (
        ("stdlib ProcessPoolExecutor", ProcessPoolExecutor),
        ("manycore.ProcessExecutor", None),
    ):
        with cls(cpus) if cls is not None else manycore.ProcessExecutor(cpus) as ex:
            list(ex.map(trivial, range(8 * cpus)))  # start every worker
            rows[name] = {
                "submit": best_of(lambda: [f.result() for f in [ex.submit(trivial, x) for x in small]], rep)[
                    0
                ],
                "map(chunksize=1)": best_of(lambda: list(ex.map(trivial, small)), rep)[0],
                "map(chunksize=n/(4p))": best_of(
                    lambda: list(ex.map(trivial, big, chunksize=len(big) // (4 * cpus))), rep
                )[0],
            }
    base_rows = rows["stdlib ProcessPoolExecutor"]
    for what, stdlib_t in base_rows.items():
        ours = rows["manycore.ProcessExecutor"][what]
        size = f"{len(big):,} calls" if "4p" in what else f"{calls:,} calls"
        line(f"stdlib {what}, {size}", stdlib_t, stdlib_t)
        line(f"ProcessExecutor {what}", ours, stdlib_t, "(x: speed vs the stdlib's pool)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
