"""pmap on a Dask cluster (batches) against client.map of single tasks, on the same cluster.

    python benchmarks/dask_cluster.py [--items 10000] [--rounds 5]

Issue #20's target: 10,000 trivial tasks finish >= 3x faster through
``pmap(fn, items, executor=DaskExecutor(address=...))`` than through
``client.gather(client.map(fn, items))``.  The cluster is started here from
the ``dask`` command line (a scheduler and two single-threaded workers, as
separate processes on 127.0.0.1, as they would run on separate machines),
both ways are timed round-robin on it, and everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from manycore import pmap
from manycore.executors import DaskExecutor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], **quiet
        )
    ]
    worker = [
        dask,
        "worker",
        address,
        "--nthreads",
        "1",
        "--no-nanny",
        "--no-dashboard",
        "--host",
        "127.0.0.1",
    ]
    processes += [subprocess.Popen(worker, **quiet) for _ in range(2)]
    try:
        for _ in range(300):
            try:
                executor = DaskExecutor(address=address)
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit("the scheduler did not start")
        with executor:
            client = executor.client
            client.wait_for_workers(2, timeout=120)
            items = list(range(args.items))
            want = [abs(x) for x in items]
            samples: dict[str, list[float]] = {"pmap (batches)": [], "client.map (one task per item)": []}
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                assert list(pmap(abs, items, executor=executor)) == want
                samples["pmap (batches)"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert client.gather(client.map(abs, items, pure=False)) == want
                samples["client.map (one task per item)"].append(time.perf_counter() - t0)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    print(
        f"{args.items:,} trivial tasks on a CLI-started cluster (scheduler + 2 workers), {args.rounds} rounds"
    )
    best = {name: min(v) for name, v in samples.items()}
    median = {name: statistics.median(v) for name, v in samples.items()}
    for name in samples:
        print(f"  {name:34} best {best[name] * 1e3:9.1f} ms   median {median[name] * 1e3:9.1f} ms")
    a, b = "client.map (one task per item)", "pmap (batches)"
    print(
        f"  pmap is {best[a] / best[b]:.1f}x faster (best), {median[a] / median[b]:.1f}x (median)   (target >= 3x)"
    )


if __name__ == "__main__":
    main()
