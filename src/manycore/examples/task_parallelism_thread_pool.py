# Unit section: Introduction to Parallelism in Python > Types of Parallelism > 2. Task Parallelism
# Shows: two different tasks (square and cube of the same number) submitted to a thread pool
#   with submit(), their results collected from the futures. The manycore way runs the same two
#   tasks on manycore's ThreadExecutor (a drop-in ThreadPoolExecutor with the same contract as
#   every other manycore backend).
# Corrected: nothing in the code. The unit says the two tasks "are executed simultaneously": on
#   a thread pool, pure-Python work like this takes turns under the GIL (CPython before 3.13t);
#   threads run simultaneously only while the work releases the GIL (I/O, NumPy, C kernels).
#   `manycore bench` section 4 measures this. See docs/seed-errata.md, notes.
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor


# Function to square a number
def square_number(number: int) -> str:
    return f"Square of {number}: {number * number}"


# Function to cube a number
def cube_number(number: int) -> str:
    return f"Cube of {number}: {number * number * number}"


def main(small: bool = False) -> None:
    number = 4  # Input number

    # The unit's way: two different tasks submitted for parallel execution
    with ThreadPoolExecutor() as executor:
        future_square = executor.submit(square_number, number)
        future_cube = executor.submit(cube_number, number)
        # Retrieving results
        result_square = future_square.result()
        result_cube = future_cube.result()
    print(result_square)
    print(result_cube)

    # The manycore way: the same contract on every backend ("threads" here; "processes",
    # "native", ... take the same calls)
    import manycore

    with manycore.get_executor("threads", max_workers=2) as ex:
        futures = [ex.submit(square_number, number), ex.submit(cube_number, number)]
        print("manycore threads:", [f.result() for f in futures])


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
