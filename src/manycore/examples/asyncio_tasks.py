# Unit section: Python's asyncio Module > 2. Tasks and Event Loop > Tasks
# Shows: two coroutines wrapped in Tasks (asyncio.create_task) run concurrently on one event
#   loop: task 2 (1 s) finishes before task 1 (2 s), and the whole run takes about 2 s, not 3.
# Corrected: nothing in the logic; we print the total time to show the overlap, and --small
#   scales the sleeps down by 20.
from __future__ import annotations

import asyncio
import sys
import time

SCALE = 1.0


async def task1() -> None:
    print("Task 1 started")
    await asyncio.sleep(2 * SCALE)
    print("Task 1 finished")


async def task2() -> None:
    print("Task 2 started")
    await asyncio.sleep(1 * SCALE)
    print("Task 2 finished")


async def main_async() -> None:
    # Schedule tasks concurrently
    task_1 = asyncio.create_task(task1())
    task_2 = asyncio.create_task(task2())
    print("Both tasks running concurrently...")
    await task_1
    await task_2


def main(small: bool = False) -> None:
    global SCALE
    SCALE = 0.05 if small else 1.0
    started = time.perf_counter()
    asyncio.run(main_async())
    elapsed = time.perf_counter() - started
    print(f"Total: {elapsed / SCALE:.1f} time units for 2 + 1 units of sleeping (concurrent, about 2)")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
