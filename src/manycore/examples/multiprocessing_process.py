# Unit section: Python's multiprocessing Module > 1. Creating and Managing Processes > Using Process
# Shows: a function run in a separate process with multiprocessing.Process; start() begins it,
#   join() waits for it. The child's process id differs from the parent's.
# Corrected: the process is started under `if __name__ == "__main__":`. The unit starts it at
#   module level: under the "spawn" start method (Windows, macOS, Linux from Python 3.14) the child
#   re-imports the file, tries to start a process of its own, fails with "An attempt has been made
#   to start a new process before the current process has finished its bootstrapping phase", and
#   the parent still prints "Process finished!" without any number having been printed.
#   The parent also checks the child's exit code (the unit never looks). See docs/seed-errata.md, E1.
from __future__ import annotations

import os
import sys
from multiprocessing import Process

# The unit's program, verbatim.
UNIT_SOURCE = """\
from multiprocessing import Process

# Function to be executed in a new process

def print_numbers():

    for i in range(5):

        print(f"Number: {i}")

# Create and start a new process

process = Process(target=print_numbers)

process.start()

# Wait for the process to complete
process.join()

print("Process finished!")
"""


# Function to be executed in a new process
def print_numbers(count: int) -> None:
    for i in range(count):
        print(f"Number: {i}", flush=True)  # flush: the child's output must not wait in a buffer
    print(f"(child process id {os.getpid()}, parent {os.getppid()})", flush=True)


def main(small: bool = False) -> None:
    print(f"(parent process id {os.getpid()})", flush=True)
    # Create and start a new process
    process = Process(target=print_numbers, args=(5,))
    process.start()
    # Wait for the process to complete
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"the child process failed with exit code {process.exitcode}")
    print("Process finished!")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
