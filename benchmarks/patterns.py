"""What communication between workers costs, measured side by side in one run.

    python benchmarks/patterns.py [--quick] [--repeat N] [--start-method spawn] [--json FILE]

Sections
  1. Pipe ping-pong: round-trip latency of a 64-byte message between two processes.
  2. One-way throughput, one producer to one consumer, 64-byte and 64 KiB payloads:
     queue.Queue (threads) vs multiprocessing.Queue vs SimpleQueue vs Pipe.
  3. Cost per operation: a plain list vs a shared-memory Value vs Manager proxies.

Every number comes from manycore.patterns.measure (the functions ``manycore bench``
calls); each is the fastest of ``--repeat`` runs.  Only ratios within this run mean
anything; nothing is compared with numbers from elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import sys

from manycore.patterns import measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the default counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    parser.add_argument("--start-method", choices=multiprocessing.get_all_start_methods(), default=None)
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    args = parser.parse_args(argv)

    ctx = multiprocessing.get_context(args.start_method)
    scale = 0.1 if args.quick else 1.0
    print(
        f"manycore patterns benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"start method {ctx.get_start_method()}, fastest of {args.repeat}\n"
    )

    report = measure.measure_all(scale=scale, repeat=args.repeat, ctx=ctx)
    print(report.format())

    big = 64 * 1024
    n_big = max(1, int(2_000 * scale))
    big_rows = [
        min(
            (measure.queue_throughput(ch, n_big, big, ctx=ctx) for _ in range(args.repeat)),
            key=lambda r: r.seconds,
        )
        for ch in measure.CHANNELS
    ]
    print(f"\nOne-way throughput with {big // 1024} KiB payloads ({n_big} messages)")
    print(f"  {'channel':<30} {'messages/s':>12} {'us/message':>11} {'MB/s':>8}")
    for r in big_rows:
        print(
            f"  {r.channel:<30} {r.messages_per_s:12,.0f} {r.us_per_message:11.2f} {r.megabytes_per_s:8.1f}"
        )
    print(
        "  (queue.Queue passes a reference between threads: nothing is copied, so its MB/s is not a bandwidth)"
    )

    pp = report.ping_pong
    fastest_mp = min((t for t in report.throughput if t.channel != "queue.Queue"), key=lambda t: t.seconds)
    local = report.proxy_costs[0].ns_per_op
    proxy = next(c for c in report.proxy_costs if c.operation.startswith("Manager list.append"))
    print(
        "\nIn one line: a Pipe round trip costs "
        f"{pp.latency_us:.0f} us; the fastest process channel moves {fastest_mp.messages_per_s:,.0f} small "
        f"messages/s ({fastest_mp.channel}); a Manager list.append costs {proxy.ns_per_op / local:,.0f}x "
        "a local one."
    )

    if args.json:
        raw = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "start_method": ctx.get_start_method(),
            "repeat": args.repeat,
            "ping_pong": dataclasses.asdict(report.ping_pong) | {"latency_us": pp.latency_us},
            "throughput": [
                dataclasses.asdict(t) | {"messages_per_s": t.messages_per_s}
                for t in (*report.throughput, *big_rows)
            ],
            "proxy_costs": [dataclasses.asdict(c) | {"ns_per_op": c.ns_per_op} for c in report.proxy_costs],
        }
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
