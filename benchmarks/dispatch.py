"""Dispatch from Python against OpenMP's empty parallel region, timed in C, in the same run.

    python benchmarks/dispatch.py [--quick] [--rounds N]

Issue #20's target: an empty ``native.parallel_for`` region called from a
Python loop costs <= 1.0x an empty ``#pragma omp parallel`` region timed in C
(gcc -O3 -fopenmp, every CPU), and a kernel call with a small input stays
under 0.5 us.  The OpenMP reference is compiled here, into a temporary
directory, and run as a child process in every round, interleaved with the
Python measurements, so both see the same machine.  Printed: best and median
per region over the rounds, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from manycore import _native, native

OPENMP_REFERENCE = r"""
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long regions = argc > 1 ? atol(argv[1]) : 100000;
    int threads = argc > 2 ? atoi(argv[2]) : omp_get_num_procs();
    volatile int sink = 0;
    for (long i = 0; i < 1000; i++) {       /* start the team, warm it */
        #pragma omp parallel num_threads(threads)
        { if (omp_get_thread_num() == 0) sink++; }
    }
    double t0 = now();
    for (long i = 0; i < regions; i++) {
        #pragma omp parallel num_threads(threads)
        { if (omp_get_thread_num() == 0) sink++; }
    }
    printf("%.9f\n", (now() - t0) / regions);
    return 0;
}
"""


def build_reference(directory: str) -> str:
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        sys.exit("dispatch.py: no C compiler (gcc) to build the OpenMP reference")
    source = os.path.join(directory, "omp_region.c")
    binary = os.path.join(directory, "omp_region")
    with open(source, "w", encoding="utf-8") as f:
        f.write(OPENMP_REFERENCE)
    subprocess.run([compiler, "-O3", "-fopenmp", source, "-o", binary], check=True)
    return binary


def per_call(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 9)
    regions = 20_000 if args.quick else 100_000
    cpus = native.default_threads()
    noop = _native.noop_address()
    pool = native.default_pool()

    import numpy as np

    small = np.ones(16)
    samples: dict[str, list[float]] = {
        "OpenMP empty region (C loop)": [],
        "native pool empty region (C loop)": [],
        "native.parallel_for(noop, n=cpus, grain=1) from Python": [],
        "native.sum(16 float64) from Python": [],
        "native.dot(16, 16 float64) from Python": [],
        "native.sum_of_squares(16) from Python": [],
        "native.minmax(16 float64) from Python": [],
        "native.count_primes(100) from Python": [],
        "native.monte_carlo_pi(16) from Python": [],
    }
    with tempfile.TemporaryDirectory(prefix="manycore-omp-") as tmp:
        binary = build_reference(tmp)
        env = {**os.environ, "OMP_NUM_THREADS": str(cpus)}
        native.parallel_for(noop, cpus, 0, 1)  # warm the pool
        for _ in range(rounds):
            out = subprocess.run(
                [binary, str(regions), str(cpus)], capture_output=True, text=True, env=env, check=True
            )
            samples["OpenMP empty region (C loop)"].append(float(out.stdout))
            samples["native pool empty region (C loop)"].append(native.bench_dispatch(regions, pool=pool))
            samples["native.parallel_for(noop, n=cpus, grain=1) from Python"].append(
                per_call(lambda: native.parallel_for(noop, cpus, 0, 1), regions)
            )
            samples["native.sum(16 float64) from Python"].append(per_call(lambda: native.sum(small), regions))
            samples["native.dot(16, 16 float64) from Python"].append(
                per_call(lambda: native.dot(small, small), regions)
            )
            samples["native.sum_of_squares(16) from Python"].append(
                per_call(lambda: native.sum_of_squares(16), regions)
            )
            samples["native.minmax(16 float64) from Python"].append(
                per_call(lambda: native.minmax(small), regions)
            )
            samples["native.count_primes(100) from Python"].append(
                per_call(lambda: native.count_primes(100), regions)
            )
            samples["native.monte_carlo_pi(16) from Python"].append(
                per_call(lambda: native.monte_carlo_pi(16), regions)
            )

    print(
        f"dispatch: {cpus} participants, {rounds} rounds of {regions:,} calls, Python {sys.version.split()[0]}"
    )
    print(f"  {'':56} {'best':>9} {'median':>9}")
    best = {name: min(v) for name, v in samples.items()}
    median = {name: statistics.median(v) for name, v in samples.items()}
    for name in samples:
        print(f"  {name:56} {best[name] * 1e6:7.3f}us {median[name] * 1e6:7.3f}us")
    omp = "OpenMP empty region (C loop)"
    py = "native.parallel_for(noop, n=cpus, grain=1) from Python"
    # the Python loop's own cost (a lambda call) is included in the Python rows: the ratio is conservative
    print(
        f"  parallel_for from Python / OpenMP region: {best[py] / best[omp]:.2f}x best, "
        f"{median[py] / median[omp]:.2f}x median   (target <= 1.0x)"
    )
    for name in list(samples)[3:]:
        print(f"  {name}: {best[name] * 1e6:.3f} us best   (target < 0.5 us)")


if __name__ == "__main__":
    main()
