# Unit section: Python's threading Module (second set) > 1. Thread-Based Parallelism > Creating and Managing Threads Using Thread
# Shows: two threads running the same function with different arguments (Thread(target, args)),
#   started, then both joined.
# Corrected: nothing. The two greetings may appear in either order: the threads run
#   concurrently and nothing orders them.
from __future__ import annotations

import sys
import threading


# Function to be executed in a thread
def greet(name: str) -> None:
    print(f"Hello, {name}!")


def main(small: bool = False) -> None:
    # Create threads
    thread1 = threading.Thread(target=greet, args=("Alice",))
    thread2 = threading.Thread(target=greet, args=("Bob",))
    # Start threads
    thread1.start()
    thread2.start()
    # Wait for threads to complete
    thread1.join()
    thread2.join()
    print("All threads have finished.")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
