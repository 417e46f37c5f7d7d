# Unit section: Python's threading Module > 2. Synchronization Mechanisms > b) RLock (Reentrant Lock)
# Shows: a recursive function that takes the same RLock at every level of the recursion; an
#   RLock counts how often its owner acquired it, so the nested acquisitions do not deadlock.
#   To show what the R is for, the same recursion is then tried with a plain Lock (with a short
#   timeout instead of a real deadlock).
# Corrected: in the unit, `print(f"Lock released for {n}")` is laid out after the code block, at
#   column 0, outside the function: taken literally it runs once at module level and raises
#   NameError (there is no `n` there). Here it is inside the `with` block, so the messages nest:
#   acquired 3, 2, 1, then released 1, 2, 3. See docs/seed-errata.md, E4.
from __future__ import annotations

import sys
import threading

# The unit's program as laid out on the page: the last print of the first block's function
# continues in the next block at column 0.
UNIT_SOURCE = """\
import threading


rlock = threading.RLock()


def recursive_task(n):

    if n > 0:

        with rlock: # Acquire RLock

            print(f"Lock acquired for {n}")

            recursive_task(n - 1) # Recursive call

print(f"Lock released for {n}")

# Start a thread

thread = threading.Thread(target=recursive_task, args=(3,))

thread.start()

thread.join()
"""

rlock = threading.RLock()


def recursive_task(n: int) -> None:
    if n > 0:
        with rlock:  # Acquire RLock (again, if this thread already holds it)
            print(f"Lock acquired for {n}")
            recursive_task(n - 1)  # Recursive call
            print(f"Lock released for {n}")


def recursive_task_plain_lock(n: int, lock: threading.Lock) -> bool:
    """The same recursion with a non-reentrant Lock: the second acquire can never succeed."""
    if n == 0:
        return True
    if not lock.acquire(timeout=0.2):  # a plain `with lock:` would wait forever here
        print(f"plain Lock: level {n} cannot acquire the lock its own thread holds (would deadlock)")
        return False
    try:
        return recursive_task_plain_lock(n - 1, lock)
    finally:
        lock.release()


def main(small: bool = False) -> None:
    # Start a thread
    thread = threading.Thread(target=recursive_task, args=(3,))
    thread.start()
    thread.join()

    ok = recursive_task_plain_lock(3, threading.Lock())
    print("plain Lock recursion completed:", ok)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
