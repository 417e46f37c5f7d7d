"""Memory-bound reductions over 800 MB float64 arrays: native.dot/sum against NumPy, one run.

    python benchmarks/memory_bound.py [--mb 800] [--rounds 9]

Issue #20's targets: ``native.dot`` <= 1.0x ``np.dot``'s time, in best-of and
in median; ``native.sum`` >= 2x faster than ``np.sum``.  Every row runs once
per round, in a rotating order, so a noisy neighbour disturbs them alike;
bandwidth is bytes read per second, against ``np.copyto``'s (read + write).

Each row starts after a pause (``--pause``, default 0.25 s): OpenBLAS's threads keep
spinning on their cores for a while after ``np.dot`` returns, and whatever runs next on
2 cores then gets one core (measured here: native.dot right after np.dot 1.07x np.dot's
median, 0.97x with the pause).  ``--pause 0`` shows that back-to-back cost.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from manycore import native


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=800, help="size of each array (default 800 MB)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--pause", type=float, default=0.25, help="seconds of idle before each row (default 0.25)"
    )
    args = parser.parse_args()
    n = args.mb * 10**6 // 8
    rng = np.random.default_rng(0)
    x, y = rng.random(n), rng.random(n)
    dst = np.empty_like(x)
    rows: dict[str, tuple[Callable[[], Any], int]] = {  # name -> (call, bytes moved)
        "np.copyto (read + write)": (lambda: np.copyto(dst, x), 2 * x.nbytes),
        "np.sum": (lambda: np.sum(x), x.nbytes),
        "native.sum": (lambda: native.sum(x), x.nbytes),
        "np.dot (BLAS)": (lambda: np.dot(x, y), 2 * x.nbytes),
        "native.dot": (lambda: native.dot(x, y), 2 * x.nbytes),
        "native.dot, 1 thread": (lambda: native.dot(x, y, threads=1), 2 * x.nbytes),
    }
    names = list(rows)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds + 1):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            time.sleep(args.pause)  # the previous row's threads (OpenBLAS spins) are asleep again
            t0 = time.perf_counter()
            rows[name][0]()
            if r:  # round 0 warms caches and page tables
                samples[name].append(time.perf_counter() - t0)
    best = {name: min(v) for name, v in samples.items()}
    median = {name: statistics.median(v) for name, v in samples.items()}
    print(
        f"memory-bound: float64 arrays of {args.mb} MB, {args.rounds} rounds, {native.default_threads()} threads, "
        f"{args.pause} s pause before each row"
    )
    for name in names:
        gbs = rows[name][1] / best[name] / 1e9
        print(
            f"  {name:28} {best[name] * 1e3:8.2f} ms best {median[name] * 1e3:8.2f} ms median  {gbs:5.1f} GB/s"
        )
    print(
        f"  native.dot / np.dot time: {best['native.dot'] / best['np.dot (BLAS)']:.2f}x best, "
        f"{median['native.dot'] / median['np.dot (BLAS)']:.2f}x median   (target <= 1.0x)"
    )
    print(
        f"  np.sum / native.sum time: {best['np.sum'] / best['native.sum']:.2f}x best, "
        f"{median['np.sum'] / median['native.sum']:.2f}x median   (target >= 2x)"
    )
    print(f"  agreement: dot rel diff {abs(native.dot(x, y) - np.dot(x, y)) / np.dot(x, y):.1e}")


if __name__ == "__main__":
    main()
