# Unit section: Python's threading Module (second set) > 2. Synchronization Mechanisms > d) Event
# Shows: a thread waits until the main thread sets an Event, and reports how long it waited.
# Corrected: nothing in the logic; --small shortens the 2-second delay. A wait with a timeout
#   (event.wait(timeout) returns False if it expires) keeps a thread from waiting forever when
#   the setter fails; shown at the end.
from __future__ import annotations

import sys
import threading
import time

event = threading.Event()


def wait_for_event() -> None:
    print("Thread is waiting for the event to be set.")
    started = time.perf_counter()
    event.wait()  # Wait until the event is set
    print(f"Event received, thread is proceeding (waited {time.perf_counter() - started:.2f} s).")


def main(small: bool = False) -> None:
    # Start a thread
    thread = threading.Thread(target=wait_for_event)
    thread.start()
    # Simulate some delay, then set the event
    time.sleep(0.1 if small else 2.0)
    print("Event is set.")
    event.set()
    thread.join()

    never = threading.Event()
    print("Waiting 0.1 s on an event nobody sets returns:", never.wait(timeout=0.1))


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
