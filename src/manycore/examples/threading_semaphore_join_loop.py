# Unit section: Python's threading Module (second set) > 2. Synchronization Mechanisms > c) Semaphore
# Shows: Semaphore(2) lets at most two of five threads work at once.
# Corrected (docs/seed-errata.md, E5):
#   - the join loop is nested inside the start loop in the unit. After starting Thread-0 it joins
#     all five threads, and joining Thread-1, which has not been started yet, raises
#     "RuntimeError: cannot join thread before it is started". The two loops are separate here;
#   - `args=(f"Thread-{i},))` misses its closing quote (a SyntaxError), and `f"\{name} started."`
#     prints a backslash before the name (and warns about an invalid escape sequence);
#   - --small shortens the 2-second work.
from __future__ import annotations

import sys
import threading
import time

# The unit's start/join loops, verbatim apart from the missing quote (E5).
UNIT_LOOPS = """\
for thread in threads:

    thread.start()

    for thread in threads:

        thread.join()
"""

semaphore = threading.Semaphore(2)  # Allow 2 threads at a time


def task(name: str, work_s: float = 2.0) -> None:
    with semaphore:
        print(f"{name} started.")
        time.sleep(work_s)
        print(f"{name} finished.")


def main(small: bool = False) -> None:
    work_s = 0.05 if small else 2.0
    # Create threads
    threads = [threading.Thread(target=task, args=(f"Thread-{i}", work_s)) for i in range(5)]

    # Start and join threads: two separate loops
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    # 5 tasks, 2 at a time: 3 rounds of work_s
    print(f"5 tasks of {work_s:g} s, 2 at a time: {elapsed / work_s:.1f} x the work time (about 3)")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
