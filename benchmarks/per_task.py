"""Per-task cost of batched process maps, and CPU-bound pmap(auto), against multiprocessing.Pool.

    python benchmarks/per_task.py [--quick] [--rounds N]

Issue #20's targets, every peer measured round-robin in the same run:
* per task, trivial tasks on warm workers: ``pmap`` on processes <= 1.0x
  ``Pool(2).map(fn, xs, chunksize=25000)``;
* CPU-bound pure Python: ``pmap(auto)``'s speed-up over serial >= 1.0x the
  speed-up of ``Pool(2).map`` -- with the Pool's start counted, as pmap's own
  start (and probe, and decision) is, and against a warm Pool.

Two blocks per round.  The rows that start their own workers (serial, a Pool
started per call, ``pmap`` with its start) run while no other thread of this
process runs Python, as in a plain script: manycore forks its workers only
then.  The warm rows run while a Pool and a ProcessExecutor are open (started
for the block, warmed, closed after it); a ``pmap`` that starts workers beside
the Pool's threads would have to use forkserver, which the last row shows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import manycore
from manycore import pmap


def trivial(x: int) -> int:
    return x + 1


def cpu_task(n: int) -> int:
    total = 0
    for i in range(n):
        total += i % 7
    return total


def _pool_map_started(cpus: int, work: list[int]) -> list[int]:
    with multiprocessing.get_context().Pool(cpus) as fresh:
        return fresh.map(cpu_task, work, chunksize=1)


def _rotated(rows: dict[str, Callable[[], Any]], r: int) -> list[tuple[str, Callable[[], Any]]]:
    order = list(rows.items())
    return order[r % len(order) :] + order[: r % len(order)]  # no row always first


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    cpus = 2
    big = list(range(200_000 if args.quick else 1_000_000))
    work = [300_000] * 8  # 8 tasks of ~10-20 ms
    want_big = [x + 1 for x in big]
    want_work = [cpu_task(n) for n in work]

    started_rows: dict[str, Callable[[], Any]] = {
        "pmap(backend='processes'), start included": lambda: list(pmap(trivial, big, backend="processes")),
        "serial": lambda: [cpu_task(n) for n in work],
        "Pool(2).map, start included": lambda: _pool_map_started(cpus, work),
        "pmap(auto), start and probe included": lambda: list(pmap(cpu_task, work)),
    }
    assert list(pmap(cpu_task, work)) == want_work  # auto's decision is made (and cached) once, here
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, fn in _rotated(started_rows, r):
            samples.setdefault(name, []).append(timed(fn))
        with multiprocessing.get_context().Pool(cpus) as pool, manycore.ProcessExecutor(cpus) as executor:
            pool.map(trivial, range(100))
            list(executor.pmap(trivial, range(100)))
            warm_rows: dict[str, Callable[[], Any]] = {
                "Pool(2).map(chunksize=25000), warm": lambda: pool.map(trivial, big, chunksize=25_000),
                "ProcessExecutor(2).pmap, warm": lambda: list(executor.pmap(trivial, big)),
                "Pool(2).map, warm": lambda: pool.map(cpu_task, work, chunksize=1),
                "ProcessExecutor(2).pmap (CPU-bound), warm": lambda: list(executor.pmap(cpu_task, work)),
                "pmap(auto) beside the warm Pool's threads (forkserver)": lambda: list(pmap(cpu_task, work)),
            }
            if r == 0:
                assert pool.map(trivial, big, chunksize=25_000) == want_big
            for name, fn in _rotated(warm_rows, r):
                samples.setdefault(name, []).append(timed(fn))
    trivial_rows = [
        "Pool(2).map(chunksize=25000), warm",
        "ProcessExecutor(2).pmap, warm",
        "pmap(backend='processes'), start included",
    ]
    cpu_rows = [
        "serial",
        "Pool(2).map, warm",
        "Pool(2).map, start included",
        "pmap(auto), start and probe included",
        "ProcessExecutor(2).pmap (CPU-bound), warm",
        "pmap(auto) beside the warm Pool's threads (forkserver)",
    ]
    best = {name: min(v) for name, v in samples.items()}
    median = {name: statistics.median(v) for name, v in samples.items()}
    print(
        f"per task: {len(big):,} trivial tasks, {cpus} workers, {rounds} rounds; Python {sys.version.split()[0]}"
    )
    for name in trivial_rows:
        print(
            f"  {name:44} {best[name] / len(big) * 1e6:6.3f} us/task best, "
            f"{median[name] / len(big) * 1e6:6.3f} median"
        )
    pool_name = "Pool(2).map(chunksize=25000), warm"
    for name in trivial_rows[1:]:
        print(
            f"  {name} / Pool: {best[name] / best[pool_name]:.2f}x best, "
            f"{median[name] / median[pool_name]:.2f}x median   (target <= 1.0x)"
        )
    print(f"\nCPU-bound: {len(work)} pure-Python tasks of cpu_task({work[0]:,})")
    for name in cpu_rows:
        print(
            f"  {name:44} {best[name] * 1e3:7.1f} ms best ({best['serial'] / best[name]:.2f}x serial), "
            f"{median[name] * 1e3:7.1f} ms median ({median['serial'] / median[name]:.2f}x)"
        )
    auto = "pmap(auto), start and probe included"
    for pool_cpu in ("Pool(2).map, start included", "Pool(2).map, warm"):
        print(
            f"  pmap(auto) speed-up / {pool_cpu} speed-up: {best[pool_cpu] / best[auto]:.2f}x best, "
            f"{median[pool_cpu] / median[auto]:.2f}x median   (target >= 1.0x)"
        )


if __name__ == "__main__":
    main()
