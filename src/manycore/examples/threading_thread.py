# Unit section: Python's threading Module > 1. Creating and Managing Threads > Using Thread
# Shows: a function run in a separate thread; start() begins it, join() waits for it. Unlike a
#   process (multiprocessing_process.py), the thread has the same process id as the main thread
#   and its own thread id.
# Corrected: nothing; the thread ids are printed to make the difference with processes visible.
from __future__ import annotations

import os
import sys
import threading


# Function to be run in a thread
def print_numbers() -> None:
    for i in range(5):
        print(f"Number: {i}")
    print(f"(thread: process id {os.getpid()}, native thread id {threading.get_native_id()})")


def main(small: bool = False) -> None:
    print(f"(main:   process id {os.getpid()}, native thread id {threading.get_native_id()})")
    # Create a thread
    thread = threading.Thread(target=print_numbers)
    # Start the thread
    thread.start()
    # Wait for the thread to complete
    thread.join()
    print("Thread execution finished!")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
