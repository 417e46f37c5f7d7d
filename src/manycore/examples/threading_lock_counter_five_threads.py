# Unit section: Python's threading Module (second set) > 2. Synchronization Mechanisms > a) Lock
# Shows: five threads each incrementing a shared counter 1000 times under a Lock: 5000.
# Corrected: nothing in the code. As with the first set's Lock program, removing the lock would
#   not change the printed value on CPython 3.10-3.12 (E14 in docs/seed-errata.md); the manycore
#   way, manycore.patterns.race, makes the lost updates visible with 5 workers and the lock fix them.
from __future__ import annotations

import sys
import threading

counter = 0  # Shared resource
lock = threading.Lock()


# Function to increment the counter
def increment() -> None:
    global counter
    for _ in range(1000):
        with lock:  # Acquire lock
            counter += 1


def main(small: bool = False) -> None:
    # Create threads
    threads = [threading.Thread(target=increment) for _ in range(5)]
    # Start threads
    for thread in threads:
        thread.start()
    # Wait for threads to complete
    for thread in threads:
        thread.join()
    print("Final Counter Value:", counter)

    # The manycore way
    from manycore.patterns import race

    race.demo(workers=5, rounds=100 if small else 1000)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
