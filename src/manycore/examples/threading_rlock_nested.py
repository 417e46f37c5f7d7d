# Unit section: Python's threading Module (second set) > 2. Synchronization Mechanisms > b) RLock (Reentrant Lock)
# Shows: a recursive function taking the same RLock at every level, down to 0: the lock is held
#   four times at the deepest point and released on the way back up.
# Corrected: nothing (this version is laid out correctly). At the end we check that the lock
#   is free again: each release undid one acquire.
from __future__ import annotations

import sys
import threading

rlock = threading.RLock()


def recursive_task(n: int) -> None:
    with rlock:
        print(f"Task {n} acquired the lock")
        if n > 0:
            recursive_task(n - 1)
        print(f"Task {n} released the lock")


def main(small: bool = False) -> None:
    # Start a thread
    thread = threading.Thread(target=recursive_task, args=(3,))
    thread.start()
    thread.join()
    print("RLock free again:", rlock.acquire(blocking=False))
    rlock.release()


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
