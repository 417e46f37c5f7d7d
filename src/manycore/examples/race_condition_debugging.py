# Unit section: Challenges and Best Practices in Parallelism with Python > 4.3 Thread Safety and Debugging Parallel Programs
# Shows: the unit's "race condition debugging" program (five threads, `counter += 1` under a
#   Lock: 500000), then the same program without the lock, then manycore's race demonstrator.
# Corrected (docs/seed-errata.md, E14): the unit shows only the fixed program, and removing the
#   lock does not show the bug it fixes: on CPython 3.10-3.12 the unlocked version prints 500000
#   too, practically always, because the interpreter switches threads only at loop back-edges
#   and calls, never between the read and the write of `counter += 1`. A race that never shows
#   cannot be debugged. manycore.patterns.race puts a switch point between the read and the
#   write and forces the worst interleaving with a Barrier: without the lock exactly
#   (workers - 1) * rounds updates are lost, on every run; with it, none.
from __future__ import annotations

import sys
import threading

counter = 0
lock = threading.Lock()


def increment(times: int) -> None:
    global counter
    for _ in range(times):
        with lock:  # Prevent race conditions
            counter += 1


def increment_unlocked(times: int) -> None:
    global counter
    for _ in range(times):
        counter += 1  # read, add, write: three steps another thread may come between


def run(target: object, times: int) -> int:
    global counter
    counter = 0
    threads = [threading.Thread(target=target, args=(times,)) for _ in range(5)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counter


def main(small: bool = False) -> None:
    times = 20_000 if small else 100_000
    print(run(increment, times), f"with the lock (expected {5 * times}): thread-safe, correct result")
    unlocked = run(increment_unlocked, times)
    print(
        unlocked,
        f"without the lock on Python {sys.version_info.major}.{sys.version_info.minor}:",
        "no update lost this time" if unlocked == 5 * times else f"{5 * times - unlocked} updates lost",
    )

    from manycore.patterns import race

    race.demo(workers=5, rounds=200 if small else 1000)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
