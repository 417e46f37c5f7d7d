# Unit section: Python's threading Module > 2. Synchronization Mechanisms > c) Semaphore
# Shows: five threads share a resource that at most two may use at a time: Semaphore(2). Each
#   thread "works" for a while; the program records how many were inside at once.
# Corrected: nothing in the logic (the start loop and the join loop are separate, as they must
#   be; the second set's version nests them: threading_semaphore_join_loop.py, E5). We measure
#   the peak number of threads inside, to show the limit holds (peak == 2), and --small shortens
#   the 2-second work. The manycore way: manycore.patterns.Limiter, a *bounded* semaphore that
#   counts active and peak users for you and refuses a release without an acquire.
from __future__ import annotations

import sys
import threading
import time

semaphore = threading.Semaphore(2)  # Allow 2 threads at a time
_inside = 0
_peak = 0
_count_lock = threading.Lock()


def task(name: str, work_s: float) -> None:
    global _inside, _peak
    with semaphore:  # Acquire semaphore
        with _count_lock:
            _inside += 1
            _peak = max(_peak, _inside)
        print(f"{name} is working...")
        time.sleep(work_s)  # Simulate work
        print(f"{name} is done!")
        with _count_lock:
            _inside -= 1


def main(small: bool = False) -> None:
    work_s = 0.05 if small else 2.0
    # Create threads
    threads = [threading.Thread(target=task, args=(f"Thread-{i}", work_s)) for i in range(5)]
    # Start and join threads
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("Most threads inside at once:", _peak)

    # The manycore way
    from manycore.patterns import Limiter

    limiter = Limiter(2)

    @limiter
    def work(i: int) -> int:
        time.sleep(work_s / 2)
        return i

    workers = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print("manycore Limiter(2): peak", limiter.peak)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
