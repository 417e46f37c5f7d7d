"""Subinterpreters (``InterpreterExecutor``) against their peers, measured side by side in one run.

    python benchmarks/interpreters.py [--quick] [--workers N] [--repeats N]

Needs subinterpreters: CPython 3.14, or 3.13 with ``pip install 'manycore[interpreters]'``
(this machine's 3.13.0 GIL build is refused, see docs/executors.md; run it on 3.13t, with
``PYTHON_GIL=1`` for a GIL build's view, where threads cannot run Python in parallel but each
subinterpreter has a GIL of its own).

Three sections, each a set of rows run interleaved in a rotating order for several rounds
(best and median time per row; ratios best-of against best-of, and the median of the per-round
ratios, whose two sides saw the same load):

1. hand-off: ``N`` trivial tasks (``abs``) through ``pmap(backend="interpreters")`` on a warm
   ``InterpreterExecutor`` (batched) and through the stdlib's ``InterpreterPoolExecutor(w).map``,
   also warm (one call per item).  Target: pmap <= 0.2x the pool's time.
2. CPU-bound pure Python (primes by trial division, in chunks): serial; ``pmap`` on a warm
   ``InterpreterExecutor``; ``pmap(backend="interpreters")`` with its start; ``pmap(backend=
   "processes")`` with its start.  Targets: warm >= 1.7x serial and >= 1.0x processes.
3. start plus first result: ``InterpreterExecutor(w)`` against a forkserver ``ProcessExecutor(w)``
   (each created, one trivial call, its result, shut down).  Target: <= 1.0x.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from free_threading import count_primes  # this directory: the same work as the free-threading benchmark
from manycore import InterpreterExecutor, ProcessExecutor, _build, backends, pmap


def stdlib_pool_type() -> Any:
    """``InterpreterPoolExecutor``: the stdlib's on 3.14, the backport's on 3.13."""
    try:
        from concurrent.futures import InterpreterPoolExecutor  # type: ignore[attr-defined]
    except ImportError:
        from interpreters_backport.concurrent.futures import InterpreterPoolExecutor
    return InterpreterPoolExecutor


def measure(
    rows: dict[str, Callable[[], object]], repeats: int, check: Callable[[str, object], None]
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(repeats):  # interleaved, rotating: a change of load hits every row alike
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            out = rows[name]()
            times[name].append(time.perf_counter() - t0)
            check(name, out)
    return times


def report(times: dict[str, list[float]], base: str | None = None) -> None:
    for name, ts in times.items():
        line = f"  {name:<62} {min(ts) * 1e3:9.1f} ms ({statistics.median(ts) * 1e3:8.1f})"
        if base is not None:
            line += f"  {min(times[base]) / min(ts):5.2f}x {base.split(' ')[0]}"
        print(line)


def ratio(
    times: dict[str, list[float]], label: str, ours: str, peer: str, target: float, higher: bool
) -> None:
    """``higher``: a speed ratio (peer time / ours) that must reach ``target``; else a time
    ratio (ours / peer) that must stay at or below it."""
    if higher:
        value = min(times[peer]) / min(times[ours])
        paired = statistics.median(p / o for p, o in zip(times[peer], times[ours], strict=True))
        met = value >= target
        goal = f">= {target:.1f}x"
    else:
        value = min(times[ours]) / min(times[peer])
        paired = statistics.median(o / p for p, o in zip(times[peer], times[ours], strict=True))
        met = value <= target
        goal = f"<= {target:.1f}x"
    print(
        f"  {label:<58} {value:6.3f}x (per round {paired:6.3f}x)  target {goal}: {'met' if met else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer rounds")
    parser.add_argument("--workers", type=int, default=2, help="workers for every parallel row (default 2)")
    parser.add_argument("--repeats", type=int, default=0, help="rounds (default 5, quick 3)")
    parser.add_argument("--tasks", type=int, default=0, help="trivial tasks in section 1 (default 100,000)")
    args = parser.parse_args(argv)
    reason = backends()["interpreters"]
    if reason is not None:
        print(f"subinterpreters are not available here: {reason}", file=sys.stderr)
        return 2
    w = args.workers
    repeats = args.repeats or (3 if args.quick else 5)
    n_tasks = args.tasks or (20_000 if args.quick else 100_000)
    limit, parts = (200_000, 16) if args.quick else (400_000, 32)
    print(f"interpreter: {_build.describe()}")
    print(f"{w} workers, best (median) of {repeats} rounds\n")

    # 1. hand-off
    xs = list(range(-n_tasks // 2, n_tasks - n_tasks // 2))
    expected_abs = [abs(x) for x in xs]
    pool_type = stdlib_pool_type()
    with InterpreterExecutor(w) as ours, pool_type(w) as theirs:
        list(pmap(abs, xs[:1000], executor=ours))  # warm: every subinterpreter started
        list(theirs.map(abs, xs[: 4 * w]))
        hand_off = {
            f"pmap(abs, {n_tasks:,} items) on a warm InterpreterExecutor({w})": lambda: list(
                pmap(abs, xs, executor=ours)
            ),
            f"InterpreterPoolExecutor({w}).map(abs, {n_tasks:,} items), warm": lambda: list(
                theirs.map(abs, xs)
            ),
        }

        def same_abs(name: str, out: object) -> None:
            if out != expected_abs:
                raise AssertionError(f"{name}: wrong results")

        t_hand = measure(hand_off, repeats, same_abs)
    print(f"1. hand-off, {n_tasks:,} trivial tasks")
    report(t_hand)

    # 2. CPU-bound
    work = list(itertools.pairwise([limit * k // parts for k in range(parts + 1)]))
    expected = sum(count_primes(c) for c in work)
    with InterpreterExecutor(w) as warm:
        list(pmap(count_primes, work[:w], executor=warm, chunksize=1))  # started, fn imported there
        cpu = {
            "serial (list comprehension)": lambda: [count_primes(c) for c in work],
            f"pmap on a warm InterpreterExecutor({w})": lambda: list(pmap(count_primes, work, executor=warm)),
            f"pmap(backend='interpreters', workers={w}), start included": lambda: list(
                pmap(count_primes, work, backend="interpreters", workers=w)
            ),
            f"pmap(backend='processes', workers={w}), start included": lambda: list(
                pmap(count_primes, work, backend="processes", workers=w)
            ),
        }

        def same_total(name: str, out: object) -> None:
            if sum(out) != expected:  # type: ignore[call-overload]
                raise AssertionError(f"{name}: wrong result")

        t_cpu = measure(cpu, repeats, same_total)
    print(f"\n2. CPU-bound: primes below {limit:,} in {parts} chunks")
    report(t_cpu, base="serial (list comprehension)")

    # 3. start plus first result
    forkserver = multiprocessing.get_context("forkserver")

    def interpreters_start() -> int:
        with InterpreterExecutor(w) as ex:
            return int(ex.submit(abs, -1).result())

    def forkserver_start() -> int:
        with ProcessExecutor(w, mp_context=forkserver) as ex:
            return int(ex.submit(abs, -1).result())

    start_rows = {
        f"InterpreterExecutor({w}): start, one call, its result, shutdown": interpreters_start,
        f"ProcessExecutor({w}, forkserver): the same": forkserver_start,
    }

    def is_one(name: str, out: object) -> None:
        if out != 1:
            raise AssertionError(f"{name}: wrong result")

    t_start = measure(start_rows, repeats, is_one)
    print("\n3. start plus first result")
    report(t_start)

    names_hand, names_cpu, names_start = list(t_hand), list(t_cpu), list(t_start)
    print("\nratios: best-of against best-of, and the median of the per-round ratios")
    ratio(
        t_hand, "pmap / InterpreterPoolExecutor.map (time)", names_hand[0], names_hand[1], 0.2, higher=False
    )
    ratio(t_cpu, "warm pmap / serial (speed)", names_cpu[1], names_cpu[0], 1.7, higher=True)
    ratio(
        t_cpu,
        "warm pmap / pmap(processes) with its start (speed)",
        names_cpu[1],
        names_cpu[3],
        1.0,
        higher=True,
    )
    ratio(t_cpu, "pmap(interpreters) / pmap(processes), both started (speed)", names_cpu[2], names_cpu[3], 1.0,
          higher=True)  # fmt: skip
    ratio(t_start, "InterpreterExecutor / forkserver ProcessExecutor (time)", names_start[0], names_start[1], 1.0,
          higher=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
