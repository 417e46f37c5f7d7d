# Unit section: Using the concurrent.futures Module > 1.3 Futures and Result Collection in Parallel Execution
# Shows: a Future tracks a task's state (pending, running, finished) and holds its result or
#   its exception; result() blocks until it is available and re-raises the task's exception.
# Corrected: the pool is created under `if __name__ == "__main__":` (docs/seed-errata.md, E1).
#   We also print the future's state before and after, and show an exception travelling back
#   from the worker process through result().
from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor


def add(a: int, b: int) -> int:
    return a + b


def main(small: bool = False) -> None:
    with ProcessPoolExecutor(max_workers=1) as executor:
        future = executor.submit(add, 5, 10)
        print(future.result())  # Blocks until result is available
        print("done:", future.done(), "| exception:", future.exception())

        failing = executor.submit(add, 5, "ten")  # type: ignore[arg-type]  # on purpose: fails in the worker
        try:
            failing.result()
        except TypeError as exc:
            print("the worker's TypeError came back through result():", exc)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
