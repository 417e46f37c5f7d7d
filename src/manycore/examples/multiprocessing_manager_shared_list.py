# Unit section: Python's multiprocessing Module > 3. Synchronization and Shared State > Using Manager
# Shows: two processes appending to one list held by a Manager (a server process; the list
#   they get is a proxy, and every call on it is a message to that server and back).
# Corrected:
#   - the processes are started under `if __name__ == "__main__":` (docs/seed-errata.md, E1);
#   - the processes are joined and the list is read *inside* the `with Manager()` block. As laid
#     out in the unit, the joins and the print follow the block: by then the manager has shut
#     down, the workers' appends fail, and printing the proxy raises (E2);
#   - the two processes' appends interleave in no fixed order, so we print the list sorted as well.
# The manycore way: manycore.patterns.manager_example, which also shows that `d[k] += 1` on a
#   proxy is two round trips (racy) unless done under a Manager lock.
from __future__ import annotations

import sys
from multiprocessing import Manager, Process
from typing import Any

# The unit's program, verbatim as laid out: the joins and the print come after the `with` block.
UNIT_SOURCE = """\
from multiprocessing import Process, Manager

# Function to update a shared list
def update_shared_list(shared_list):
    for i in range(5):
        shared_list.append(i)

# Create a manager to manage shared data
with Manager() as manager:
    shared_list = manager.list() # Shared list

    process1 = Process(target=update_shared_list, args=(shared_list,))
    process2 = Process(target=update_shared_list, args=(shared_list,))

    # Start and join processes
    process1.start()
    process2.start()

process1.join()

process2.join()

print("Shared List:", shared_list)
"""


# Function to update a shared list
def update_shared_list(shared_list: Any) -> None:
    for i in range(5):
        shared_list.append(i)


def main(small: bool = False) -> None:
    # Create a manager to manage shared data
    with Manager() as manager:
        shared_list = manager.list()  # Shared list

        process1 = Process(target=update_shared_list, args=(shared_list,))
        process2 = Process(target=update_shared_list, args=(shared_list,))

        # Start and join processes (joined while the manager is still running)
        process1.start()
        process2.start()
        process1.join()
        process2.join()
        if (process1.exitcode, process2.exitcode) != (0, 0):
            raise SystemExit(f"a process failed: exit codes {(process1.exitcode, process2.exitcode)}")

        items = list(shared_list)  # one round trip: a plain list copy of the proxy's contents
    print("Shared List:", items)
    print("Shared List, sorted:", sorted(items))

    # The manycore way
    from manycore.patterns import manager_example

    result = manager_example(workers=2, items_per_worker=5)
    print("manycore manager_example counts:", dict(sorted(result.counts.items())))


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
