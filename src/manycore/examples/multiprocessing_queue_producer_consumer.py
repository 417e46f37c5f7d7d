# Unit section: Python's multiprocessing Module > 2. Inter-Process Communication > Using Queue
# Shows: a producer process and a consumer process connected by a multiprocessing.Queue; the
#   producer ends the stream with a sentinel (None). The manycore way: a two-stage
#   manycore.patterns.Pipeline (process workers, bounded buffers, ordered results, clean shutdown
#   and error propagation built in).
# Corrected: the processes are started under `if __name__ == "__main__":` (see E1 in
#   docs/seed-errata.md), and the exit codes are checked. One sentinel stops one consumer: with
#   N consumers, put N sentinels (or use Pipeline, which does it for you).
from __future__ import annotations

import sys
from multiprocessing import Process, Queue
from typing import Any


# Function to put data into the queue
def producer(q: Queue[Any], count: int) -> None:
    for i in range(count):
        q.put(i)
    q.put(None)  # Signal the consumer to stop


# Function to get data from the queue
def consumer(q: Queue[Any]) -> None:
    while True:
        item = q.get()
        if item is None:  # Stop when producer signals
            break
        print(f"Consumed: {item}", flush=True)


def double(x: int) -> int:
    return 2 * x


def main(small: bool = False) -> None:
    # Create a shared queue
    q: Queue[Any] = Queue()

    # Create and start producer and consumer processes
    producer_process = Process(target=producer, args=(q, 5))
    consumer_process = Process(target=consumer, args=(q,))
    producer_process.start()
    consumer_process.start()

    # Wait for both processes to finish
    producer_process.join()
    consumer_process.join()
    codes = (producer_process.exitcode, consumer_process.exitcode)
    if codes != (0, 0):
        raise SystemExit(f"a process failed: exit codes {codes}")

    # The manycore way: a pipeline of process workers joined by bounded buffers
    from manycore.patterns import Pipeline

    pipeline = Pipeline(double, workers=2, kind="process")
    with pipeline.run(range(5), ordered=True, maxsize=4) as results:
        print("manycore Pipeline (x2 in 2 processes):", list(results))


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
