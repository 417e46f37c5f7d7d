# Unit section: Using the concurrent.futures Module > 1.1 Implementing Parallelism with ThreadPoolExecutor and ProcessPoolExecutor > Example: ThreadPoolExecutor
# Shows: an I/O-bound function (a simulated 2-second download) mapped over three URLs by three
#   threads: the waits overlap, so the three take about as long as one.
# Corrected: nothing; --small scales the delay down by 20, and the elapsed time is printed to
#   show the overlap. The manycore way: manycore.pmap with backend="threads".
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

DELAY_S = 2.0


def fetch_data(url: str) -> str:
    time.sleep(DELAY_S)  # Simulate I/O-bound delay
    return f"Data fetched from {url}"


def main(small: bool = False) -> None:
    global DELAY_S
    DELAY_S = 0.1 if small else 2.0
    urls = ["http://example1.com", "http://example2.com", "http://example3.com"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3) as executor:
        results = executor.map(fetch_data, urls)
    print(list(results))
    print(f"3 fetches took {(time.perf_counter() - started) / DELAY_S:.1f} x one fetch (about 1)")

    import manycore

    print("manycore.pmap threads:", manycore.pmap(fetch_data, urls, backend="threads", workers=3).results())


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
