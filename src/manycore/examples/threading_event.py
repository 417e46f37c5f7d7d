# Unit section: Python's threading Module > 2. Synchronization Mechanisms > d) Event
# Shows: a thread waits on an Event until the main thread, after some work, sets it.
# Corrected: nothing in the logic. --small shortens the simulated 2-second work. The manycore
#   way: manycore.patterns.Gate (an Event with open/close) releasing several waiting threads at
#   once, and Countdown (a latch) to know they all got through.
from __future__ import annotations

import sys
import threading
import time

event = threading.Event()


def wait_for_event() -> None:
    print("Thread waiting for event...")
    event.wait()  # Wait until event is set
    print("Event occurred!")


def main(small: bool = False) -> None:
    # Create a thread
    thread = threading.Thread(target=wait_for_event)
    thread.start()
    # Simulate some work and then trigger the event
    time.sleep(0.1 if small else 2.0)
    event.set()  # Trigger the event
    thread.join()

    # The manycore way: one gate releases three workers; a countdown reports when all passed
    from manycore.patterns import Countdown, Gate

    gate, passed = Gate(), Countdown(3)

    def worker() -> None:
        gate.wait()
        passed.count_down()

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for t in workers:
        t.start()
    gate.open()
    print("manycore Gate: all 3 workers passed:", passed.wait(timeout=10))
    for t in workers:
        t.join()


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
