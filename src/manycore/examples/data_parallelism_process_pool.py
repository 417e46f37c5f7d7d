# Unit section: Introduction to Parallelism in Python > Types of Parallelism > 1. Data Parallelism
# Shows: the same operation (squaring) applied to every element of a dataset by a pool of worker
#   processes. The unit's way: ProcessPoolExecutor.map. The manycore way: manycore.pmap, which
#   measures the work first and picks the backend (for nine squarings: serial, because shipping
#   nine numbers to processes costs far more than squaring them; `explain=True` prints why).
# Corrected: the pool is created under `if __name__ == "__main__":` (inside main()). The unit
#   creates it at module level, which works only with the "fork" start method; under "spawn"
#   (Windows, macOS, and Linux from Python 3.14 on) each worker re-imports the file, tries to start
#   a pool of its own and the map fails with BrokenProcessPool. See docs/seed-errata.md, E1.
from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

# The unit's program, verbatim: everything at module level, no `__main__` guard.
UNIT_SOURCE = """\
from concurrent.futures import ProcessPoolExecutor

# Function to square a number

def square_number(number):

    return number * number

# Data: List of numbers

data = [1, 2, 3, 4, 5, 6, 7, 8, 9]

# Using ProcessPoolExecutor for parallel processing

with ProcessPoolExecutor() as executor:

    # Distributing the square_number function across the data

    results = list(executor.map(square_number, data))

print("Original Data:", data)

print("Squared Data:", results)
"""


# Function to square a number
def square_number(number: int) -> int:
    return number * number


def main(small: bool = False) -> None:
    # Data: List of numbers (already tiny; --small changes nothing but the pool size)
    data = [1, 2, 3, 4, 5, 6, 7, 8, 9]

    # The unit's way: distribute square_number across the data with a process pool
    with ProcessPoolExecutor(max_workers=2 if small else None) as executor:
        results = list(executor.map(square_number, data))
    print("Original Data:", data)
    print("Squared Data:", results)

    # The manycore way: pmap chooses serial / threads / processes / native by measuring
    import manycore

    squared = manycore.pmap(square_number, data, explain=True).results()
    print("manycore.pmap:", squared)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
