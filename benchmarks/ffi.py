"""ctypes, cffi and Cython on the same native core, measured side by side in one run.

    python benchmarks/ffi.py [--quick] [--json FILE]

Sections
  1. per-call overhead of a trivial C call: extension (METH_O) / ctypes / cffi / Cython def.
  2. sum_of_squares(10**7) through each binding of the core (the kernel dominates: the
     bindings should agree within a few percent), and each result's exactness.
  3. the unit's "Evaluating Cython" table: pure Python vs the seed's Cython function
     (one thread, long long) vs the Cython prange kernel on 1 and 2 threads vs the core:
     the claimed "40-50x" against what is measured here, and whether each result is exact.
  4. the seed's compute_sum and mandelbrot with prange: 1 vs 2 threads, OpenMP vs serial build.
  5. parallel_for: a Python callback (GIL per call) vs a compiled Numba @cfunc, 1 vs 2 threads.

Only ratios measured within this run are reported.  Timings are min (and median) of repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from manycore import _native, native
from manycore._cy import _core as cy_low
from manycore._cy import core as cy_core
from manycore._cy import kernels, kernels_serial
from manycore.ffi import cffi_core, ctypes_core


def measure(fn: Callable[[], Any], repeat: int, number: int = 1) -> tuple[float, float]:
    """(min, median) seconds per call over `repeat` batches of `number` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times), statistics.median(times)


def row(name: str, best: float, median: float, extra: str = "", unit: str = "ms") -> None:
    scale = {"ms": 1e3, "ns": 1e9, "s": 1.0}[unit]
    print(f"  {name:<52} {best * scale:>10.3f} {unit}  (median {median * scale:9.3f})  {extra}")


def seed_python_sum_of_squares(n: int) -> int:
    """The unit's pure-Python implementation."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def section_overhead(quick: bool, results: dict[str, Any]) -> None:
    print("\n1. Per-call overhead of a trivial C call (one int argument)")
    number = 20_000 if quick else 200_000
    repeat = 5 if quick else 9
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("extension: _native._debug_fail_thread_create(-1)", lambda: _native._debug_fail_thread_create(-1)),
        ("ctypes:    lib.mc_dtype_size(0)", lambda: ctypes_core.lib.mc_dtype_size(0)),
        ("cffi:      lib.mc_dtype_size(0)", lambda: cffi_core.lib.mc_dtype_size(0)),
        ("Cython:    _core.dtype_size(0)", lambda: cy_low.dtype_size(0)),
        ("(Python:   a lambda returning 8)", lambda: 8),
    ]
    # The loop and lambda cost is in every line; the last line measures it alone.
    out = {}
    for name, fn in calls:
        best, med = measure(fn, repeat, number)
        row(name, best, med, unit="ns")
        out[name] = best
    results["overhead_s"] = out


def section_bindings(quick: bool, results: dict[str, Any]) -> None:
    n = 10**7
    exact = (n - 1) * n * (2 * n - 1) // 6
    print(f"\n2. sum_of_squares({n:_}) through each binding of the core (all threads)")
    repeat = 7 if quick else 21
    out: dict[str, Any] = {}
    for name, fn in [
        ("extension (manycore.native)", native.sum_of_squares),
        ("ctypes (manycore.ffi.ctypes_core)", ctypes_core.sum_of_squares),
        ("cffi (manycore.ffi.cffi_core)", cffi_core.sum_of_squares),
        ("Cython cdef extern (manycore._cy.core)", cy_core.sum_of_squares),
    ]:
        fn(n)  # warm: pool created, library loaded
        best, med = measure(lambda fn=fn: fn(n), repeat)
        ok = fn(n) == exact
        out[name] = {"best_s": best, "median_s": med, "exact": ok}
    ref = out["extension (manycore.native)"]["best_s"]
    for name, v in out.items():
        row(name, v["best_s"], v["median_s"], f"x{v['best_s'] / ref:5.2f} of ext   exact={v['exact']}")
    results["bindings"] = out


def section_seed_claim(quick: bool, results: dict[str, Any]) -> None:
    n = 10**7
    exact = (n - 1) * n * (2 * n - 1) // 6
    print(
        f"\n3. The unit's Cython table, N = {n:_}: claimed 'Cython ~0.2 s, 40-50x faster than ~8-10 s Python'"
    )
    rows: list[tuple[str, Callable[[], int], int]] = [
        ("pure Python (the seed's loop)", lambda: seed_python_sum_of_squares(n), 1 if quick else 3),
        ("seed Cython: cdef long long loop, 1 thread", lambda: kernels.seed_sum_of_squares(n), 5),
        ("Cython prange exact, 1 thread", lambda: kernels.sum_of_squares(n, threads=1), 7),
        ("Cython prange exact, 2 threads", lambda: kernels.sum_of_squares(n, threads=2), 7),
        ("Cython prange exact, serial build (no OpenMP)", lambda: kernels_serial.sum_of_squares(n), 7),
        ("C core (manycore.native), 1 thread", lambda: native.sum_of_squares(n, threads=1), 7),
        ("C core (manycore.native), all threads", lambda: native.sum_of_squares(n), 7),
    ]
    out: dict[str, Any] = {}
    python_best = None
    for name, fn, repeat in rows:
        value = fn()
        best, med = measure(fn, repeat)
        python_best = python_best or best
        speedup = python_best / best
        wrapped = "" if value == exact else f"  WRONG: {value} (wrapped past 2**63)"
        row(name, best, med, f"x{speedup:8.1f} vs Python   exact={value == exact}{wrapped}")
        out[name] = {
            "best_s": best,
            "speedup_vs_python": speedup,
            "exact": value == exact,
            "value": str(value),
        }
    results["seed_claim"] = out
    seed = out["seed Cython: cdef long long loop, 1 thread"]
    print(
        f"  -> claimed 40-50x; measured {seed['speedup_vs_python']:.0f}x for the seed's own Cython loop"
        f" (which is not exact), {out['Cython prange exact, 2 threads']['speedup_vs_python']:.0f}x for the exact"
        f" prange kernel on 2 threads, {out['C core (manycore.native), all threads']['speedup_vs_python']:.0f}x"
        " for the C core."
    )


def section_prange(quick: bool, results: dict[str, Any]) -> None:
    print("\n4. Cython prange kernels: 1 vs 2 threads, OpenMP build vs serial build")
    out: dict[str, Any] = {}
    repeat = 5 if quick else 9
    w, h, it = (800, 600, 256)
    ref = native.mandelbrot(w, h, it)
    cases: list[tuple[str, Callable[[int], Any], Callable[[], Any]]] = [
        ("sum_of_squares(10**8)", lambda t: kernels.sum_of_squares(10**8, threads=t),
         lambda: kernels_serial.sum_of_squares(10**8)),
        (f"mandelbrot({w}x{h}, {it})", lambda t: kernels.mandelbrot(w, h, it, threads=t),
         lambda: kernels_serial.mandelbrot(w, h, it)),
        ("fast_square(10**7 float64)", lambda t: kernels.fast_square(_X, threads=t),
         lambda: kernels_serial.fast_square(_X)),
        ("compute_sum(10**7) (the unit's example.pyx)", lambda t: kernels.compute_sum(10**7, threads=t),
         lambda: kernels_serial.compute_sum(10**7)),
    ]  # fmt: skip
    for name, par, ser in cases:
        b1, m1 = measure(lambda par=par: par(1), repeat)
        b2, m2 = measure(lambda par=par: par(2), repeat)
        bs, ms = measure(ser, repeat)
        row(f"{name}, 1 thread", b1, m1)
        row(f"{name}, 2 threads", b2, m2, f"speed-up x{b1 / b2:4.2f}")
        row(f"{name}, serial build", bs, ms)
        out[name] = {"t1_s": b1, "t2_s": b2, "serial_s": bs, "speedup_2": b1 / b2}
    identical = bool((kernels.mandelbrot(w, h, it, threads=2) == ref).all())
    print(f"  mandelbrot bit-identical to the C core: {identical}")
    out["mandelbrot_identical"] = identical
    results["prange"] = out


_X = np.random.default_rng(0).standard_normal(10**7)


def section_callbacks(quick: bool, results: dict[str, Any]) -> None:
    print("\n5. parallel_for: Python callback (GIL per call) vs compiled Numba @cfunc, 1 vs 2 threads")
    out: dict[str, Any] = {}
    n_py = 200_000 if quick else 1_000_000

    def py_body(begin: int, end: int, worker: int) -> None:
        s = 0.0
        for i in range(begin, end):
            s += math.sqrt(i)

    for t in (1, 2):
        best, med = measure(lambda t=t: ctypes_core.parallel_for(py_body, n_py, grain=10_000, threads=t), 3)
        row(f"Python body via ctypes, n={n_py:_}, {t} thread(s)", best, med)
        out[f"python_{t}"] = best
    print(
        f"  -> Python bodies: 2 threads / 1 thread = x{out['python_1'] / out['python_2']:.2f} (the GIL serialises)"
    )
    try:
        import numba
        from numba import types
    except ImportError:
        print("  numba is not installed (pip install 'manycore[numba]'): compiled-body rows skipped")
        results["callbacks"] = out
        return

    @numba.cfunc(types.void(types.voidptr, types.uintp, types.uintp, types.uint32), nopython=True)
    def nb_body(ctx, begin, end, worker):  # type: ignore[no-untyped-def]
        acc = numba.carray(ctx, 64, np.float64)
        s = 0.0
        for i in range(begin, end):
            s += math.sqrt(i)
        acc[worker * 8] += s

    n_nb = 10**8 if not quick else 2 * 10**7
    acc = np.zeros(64)
    for t in (1, 2):
        best, med = measure(
            lambda t=t: ctypes_core.parallel_for(nb_body, n_nb, acc, grain=1 << 16, threads=t), 5
        )
        row(f"Numba cfunc via ctypes, n={n_nb:_}, {t} thread(s)", best, med)
        out[f"numba_{t}"] = best
    print(f"  -> compiled bodies: 2 threads / 1 thread = x{out['numba_1'] / out['numba_2']:.2f}")
    per_py = out["python_1"] / n_py
    per_nb = out["numba_1"] / n_nb
    print(
        f"  -> per index: Python {per_py * 1e9:.1f} ns, compiled {per_nb * 1e9:.2f} ns (x{per_py / per_nb:.0f})"
    )
    results["callbacks"] = out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller inputs")
    parser.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    args = parser.parse_args(argv)
    info = native.build_info()
    print(
        f"manycore ffi benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{info['compiler']}, SIMD {info['simd']}, Cython kernels OpenMP={kernels.OPENMP}"
    )
    results: dict[str, Any] = {"build": info}
    for section in (
        section_overhead,
        section_bindings,
        section_seed_claim,
        section_prange,
        section_callbacks,
    ):
        section(args.quick, results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
