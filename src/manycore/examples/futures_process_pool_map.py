# Unit section: Using the concurrent.futures Module > 1.2 Handling Parallel Tasks Using submit() and map() Functions > Example: map()
# Shows: ProcessPoolExecutor.map applies a function to every input in worker processes and
#   yields the results in input order. The manycore way: manycore.pmap on processes.
# Corrected: the pool is created under `if __name__ == "__main__":`; under the "spawn" start
#   method the unit's module-level pool fails with BrokenProcessPool (docs/seed-errata.md, E1).
from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor


def cube(n: int) -> int:
    return n**3


def main(small: bool = False) -> None:
    with ProcessPoolExecutor(max_workers=2) as executor:
        results = executor.map(cube, range(5))
        print(list(results))

    import manycore

    print("manycore.pmap processes:", manycore.pmap(cube, range(5), backend="processes", workers=2).results())


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
