# Unit section: Using the concurrent.futures Module > 1.2 Handling Parallel Tasks Using submit() and map() Functions > Example: submit()
# Shows: one submit() per task returns one Future each; result() waits for it. Results are
#   collected in submission order. as_completed() gives them in completion order instead.
# Corrected: nothing.
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor, as_completed


def square(n: int) -> int:
    return n * n


def main(small: bool = False) -> None:
    with ThreadPoolExecutor() as executor:
        futures = [executor.submit(square, i) for i in range(5)]
        results = [f.result() for f in futures]
    print(results)

    with ThreadPoolExecutor() as executor:
        futures = [executor.submit(square, i) for i in range(5)]
        as_they_finish = sorted(f.result() for f in as_completed(futures))
    print("as_completed (sorted):", as_they_finish)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
