# Unit section: Python's threading Module > 2. Synchronization Mechanisms > a) Lock
# Shows: two threads incrementing a shared counter 100000 times each, every `counter += 1`
#   under a Lock, so the final value is exactly 200000.
# Corrected: nothing in the code. What the program cannot show on CPython 3.10-3.12 is why the
#   lock is needed: without it the result is still 200000 almost always, because the interpreter
#   only switches threads at loop back-edges and calls, never inside `counter += 1` (E14 in
#   docs/seed-errata.md). The manycore way, manycore.patterns.race, forces the bad interleaving
#   so the lost updates appear on every run, and shows the lock removing them.
from __future__ import annotations

import sys
import threading

counter = 0  # Shared resource
lock = threading.Lock()


# Function to increment the counter
def increment(times: int) -> None:
    global counter
    for _ in range(times):
        with lock:  # Acquire and release the lock
            counter += 1


def main(small: bool = False) -> None:
    times = 10_000 if small else 100_000
    # Create threads
    thread1 = threading.Thread(target=increment, args=(times,))
    thread2 = threading.Thread(target=increment, args=(times,))
    # Start threads
    thread1.start()
    thread2.start()
    # Wait for threads to complete
    thread1.join()
    thread2.join()
    print("Final Counter:", counter, f"(expected {2 * times})")

    # The manycore way: make the race visible, then fix it
    from manycore.patterns import race

    race.demo(workers=2, rounds=100 if small else 1000)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
