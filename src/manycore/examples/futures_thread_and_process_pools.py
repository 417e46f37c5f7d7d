# Unit section: Using the concurrent.futures Module for Parallelism > Sample Program: Using ThreadPoolExecutor and ProcessPoolExecutor
# Shows: the same task (a 1-second wait) run five times on a pool of 3 threads with submit() and
#   on a pool of 3 processes with map(); results are collected in submission order either way.
#   5 tasks on 3 workers take 2 rounds, so each pool needs about 2 s, and the total is about 4 s.
# Corrected: nothing (the program has its `__main__` guard); --small scales the wait down by
#   20. Note that this task only waits: threads are the right tool for it, and the process pool
#   merely pays process start-up for nothing. For CPU-bound work the ranking flips (`manycore
#   bench`, sections 3 and 4).
from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

TASK_S = 1.0


# Example function to simulate a task
def task(n: int, seconds: float = 1.0) -> str:
    time.sleep(seconds)  # Simulate a time-consuming task
    return f"Task {n} completed"


# Using ThreadPoolExecutor
def run_with_threads() -> None:
    print("Running with ThreadPoolExecutor...")
    with ThreadPoolExecutor(max_workers=3) as executor:
        futures = [executor.submit(task, i, TASK_S) for i in range(5)]
        for future in futures:
            print(future.result())


# Using ProcessPoolExecutor
def run_with_processes() -> None:
    print("\nRunning with ProcessPoolExecutor...")
    with ProcessPoolExecutor(max_workers=3) as executor:
        results = executor.map(task, range(5), [TASK_S] * 5)
        for result in results:
            print(result)


def main(small: bool = False) -> None:
    global TASK_S
    TASK_S = 0.05 if small else 1.0
    start_time = time.time()
    run_with_threads()
    run_with_processes()
    elapsed = time.time() - start_time
    print(
        f"\nTotal execution time: {elapsed:.2f} seconds ({elapsed / TASK_S:.1f} task lengths: about 4, plus process start-up)"
    )


# Run the program
if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
