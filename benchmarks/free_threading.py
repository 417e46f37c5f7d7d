"""Pure-Python CPU-bound work on every mechanism, measured side by side in one run.

    python benchmarks/free_threading.py [--quick] [--workers N]

Meant for the free-threaded build (``python3.13t``, GIL off), where threads run
Python in parallel; it runs on any build and says which one it measured.

Work: count the primes below ``N`` by trial division, in pure Python, split into
chunks.

Rows run interleaved, in a rotating order, for several rounds; each prints its
best and median time.  Ratios: best-of against best-of, and the median of the
per-round ratios (the paired view: both sides of a round saw the same load).

- serial: a list comprehension over the chunks;
- ``ThreadPoolExecutor(workers).map``, pool start included (as commonly written);
- ``pmap(fn, chunks)`` (auto): warm, i.e. with its decision cached, as on every
  call after the first; and its first call, whose probe is included;
- ``pmap(fn, chunks, backend="processes")``, pool start included;
- ``multiprocessing.Pool(workers).map``, pool start included.

Targets on 3.13t with the GIL off, 2 cores: pmap(auto) >= 1.7x serial,
>= 1.0x ThreadPoolExecutor.map and >= 1.0x pmap(processes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from manycore import _build, pmap


def count_primes(bounds: tuple[int, int]) -> int:
    """Primes in [lo, hi) by trial division: pure Python, holds the GIL where there is one."""
    lo, hi = bounds
    found = 0
    for n in range(max(lo, 2), hi):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            found += 1
    return found


def chunks(limit: int, parts: int) -> list[tuple[int, int]]:
    # later ranges cost more (longer trial division): interleave sizes a little
    edges = [limit * k // parts for k in range(parts + 1)]
    return list(itertools.pairwise(edges))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller input, fewer repeats")
    parser.add_argument("--workers", type=int, default=2, help="workers for every parallel row (default 2)")
    parser.add_argument("--repeats", type=int, default=0, help="rounds (default 7, quick 3)")
    args = parser.parse_args(argv)
    limit = 200_000 if args.quick else 400_000
    parts = 16 if args.quick else 32
    repeats = args.repeats or (3 if args.quick else 7)
    w = args.workers
    work = chunks(limit, parts)
    expected = sum(count_primes(c) for c in work)

    print(f"interpreter: {_build.describe()}")
    print(f"work: primes below {limit:,} in {parts} chunks, {w} workers, best (median) of {repeats}\n")

    def serial() -> list[int]:
        return [count_primes(c) for c in work]

    def thread_pool() -> list[int]:
        with ThreadPoolExecutor(w) as ex:
            return list(ex.map(count_primes, work))

    def pmap_auto() -> list[int]:
        return list(pmap(count_primes, work, workers=w))

    def pmap_processes() -> list[int]:
        return list(pmap(count_primes, work, backend="processes", workers=w))

    def mp_pool() -> list[int]:
        with multiprocessing.get_context().Pool(w) as pool:
            return pool.map(count_primes, work)

    # the first pmap call decides (its probe is timed here); later calls reuse the decision
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        first = list(pmap(count_primes, work, workers=w, explain=True))
    first_s = time.perf_counter() - t0
    assert sum(first) == expected
    decision = err.getvalue().strip()

    rows: dict[str, Callable[[], list[int]]] = {
        "serial (list comprehension)": serial,
        f"ThreadPoolExecutor({w}).map, start included": thread_pool,
        "pmap(auto), decision cached": pmap_auto,
        f"pmap(backend='processes'), {w} workers, start included": pmap_processes,
        f"multiprocessing.Pool({w}).map, start included": mp_pool,
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(repeats):  # interleaved, in a rotating order: a change of load hits every row alike
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = rows[name]
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            if sum(out) != expected:
                raise AssertionError(f"{name}: wrong result {sum(out)} != {expected}")

    best = {name: min(ts) for name, ts in times.items()}
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = best["serial (list comprehension)"]
    for name in rows:
        print(
            f"  {name:<55} {best[name] * 1e3:9.1f} ms ({med[name] * 1e3:7.1f})  {base / best[name]:5.2f}x serial"
        )
    print(f"  {'pmap(auto), first call (probe included)':<55} {first_s * 1e3:9.1f} ms            "
          f"{base / first_s:5.2f}x serial")  # fmt: skip
    print("\npmap's decision:\n  " + decision.replace("\n", "\n  "))

    auto = "pmap(auto), decision cached"
    peers = [
        ("pmap(auto) / serial", "serial (list comprehension)", 1.7),
        (f"pmap(auto) / ThreadPoolExecutor({w}).map", f"ThreadPoolExecutor({w}).map, start included", 1.0),
        ("pmap(auto) / pmap(processes)", f"pmap(backend='processes'), {w} workers, start included", 1.0),
    ]
    print(
        "\nratios (speed, higher is better): best-of against best-of, and the median of the"
        "\nper-round ratios (each round runs every row once, so a load change hits both sides)"
    )
    gil_off = not _build.gil_enabled()
    for label, peer, target in peers:
        value = best[peer] / best[auto]
        paired = statistics.median(p / a for p, a in zip(times[peer], times[auto], strict=True))
        verdict = ("met" if value >= target else "NOT met") if gil_off else "target is for the GIL-off build"
        print(f"  {label:<45} {value:5.2f}x (per round {paired:4.2f}x)  target >= {target:.1f}x: {verdict}")
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
