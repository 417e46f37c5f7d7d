# Unit section: Python's multiprocessing Module > 1. Creating and Managing Processes > Using Pool
# Shows: a pool of 3 worker processes mapping a function over a list (Pool.map), and the same
#   map with manycore.pmap on the process backend (cloudpickle, so lambdas work too; a crashed
#   worker is reported instead of hanging the map).
# Corrected: the pool is created under `if __name__ == "__main__":`. Without it, under "spawn",
#   every worker re-imports the file and tries to create a pool; multiprocessing.Pool keeps
#   replacing the workers that die that way, so the parent's map() never returns (a hang, not an
#   error). See docs/seed-errata.md, E1.
from __future__ import annotations

import sys
from multiprocessing import Pool


# Function to square a number
def square(num: int) -> int:
    return num * num


def main(small: bool = False) -> None:
    # List of numbers
    data = [1, 2, 3, 4, 5]

    # The unit's way: create a pool of workers and map the task
    with Pool(processes=3) as pool:
        results = pool.map(square, data)
    print("Squared results:", results)

    # The manycore way: the process backend of pmap (same result, same order)
    import manycore

    print("manycore.pmap processes:", manycore.pmap(square, data, backend="processes", workers=2).results())


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
