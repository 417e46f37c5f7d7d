# Unit section: Python's threading Module (second set) > 2. Synchronization Mechanisms > e) Condition
# Shows: the second set's Condition program, which the unit prints twice with different
#   indentation, run both ways round, and a corrected version.
# Corrected (docs/seed-errata.md, E7): the consumer's loop condition `len(shared_data) < 5` counts
#   the items *waiting in the list*, not the items consumed, and the consumer waits before looking
#   at the list. Every run of either printed copy fails:
#     copy A (producer waits once, after the loop): producer first -> the consumer sees 5 items,
#       skips its loop, consumes nothing and leaves the producer waiting forever; consumer first ->
#       it consumes 0 and 1, then waits forever.
#     copy B (producer waits after every item): producer first -> both wait forever; consumer
#       first -> it consumes all five, is woken once more by the final notify_all(), and pops from
#       an empty list: IndexError.
#   The fix waits for a state with a while loop (`wait_for(lambda: shared_data or done)`) and
#   ends on an explicit `done` flag, exactly as in condition_producer_consumer.py.
from __future__ import annotations

import sys
import threading

from manycore.examples.condition_producer_consumer import run_unit_version, start_threads_in_order

# Copy A: the first printing ("e) Condition" of the second threading section), verbatim.
UNIT_SOURCE_A = """\
import threading

condition = threading.Condition()

shared_data = []

def producer():

    with condition:

        for i in range(5):

            shared_data.append(i)

            print(f"Produced: {i}")

            condition.notify() # Notify the consumer

        condition.wait() # Wait for consumer to consume

        condition.notify_all() # Notify when done

def consumer():
    with condition:
        while len(shared_data) < 5:
            condition.wait() # Wait for producer
            item = shared_data.pop(0)
            print(f"Consumed: {item}")
            condition.notify() # Notify producer
"""

# Copy B: the repeated printing that follows it, verbatim.
UNIT_SOURCE_B = """\
import threading

condition = threading.Condition()
shared_data = []

def producer():
    with condition:
        for i in range(5):
            shared_data.append(i)
            print(f"Produced: {i}")
            condition.notify() # Notify the consumer
            condition.wait() # Wait for consumer to consume
            condition.notify_all() # Notify when done

def consumer():
    with condition:
        while len(shared_data) < 5:
            condition.wait() # Wait for producer
            item = shared_data.pop(0)
            print(f"Consumed: {item}")
            condition.notify() # Notify producer
"""


def run_corrected(count: int = 5, first: str = "producer") -> list[int]:
    """The second set's shape (the producer appends everything, the consumer takes it), fixed."""
    condition = threading.Condition()
    shared_data: list[int] = []
    done = False
    consumed: list[int] = []

    def producer() -> None:
        nonlocal done
        with condition:
            for i in range(count):
                shared_data.append(i)
                print(f"Produced: {i}")
                condition.notify()  # Notify the consumer (harmless if it is not waiting yet)
            done = True
            condition.notify()

    def consumer() -> None:
        with condition:
            while True:
                condition.wait_for(lambda: bool(shared_data) or done)  # state, not notification
                while shared_data:
                    item = shared_data.pop(0)
                    consumed.append(item)
                    print(f"Consumed: {item}")
                if done:
                    break

    start_threads_in_order(producer, consumer, first)
    return consumed


def main(small: bool = False) -> None:
    timeout_s = 0.3 if small else 1.0
    for label, source in (("copy A", UNIT_SOURCE_A), ("copy B", UNIT_SOURCE_B)):
        print(f"The unit's version, {label}:")
        for first in ("consumer", "producer"):
            print("  " + run_unit_version(source, first, timeout_s).describe())
    print("Corrected version:")
    print("Consumed in order:", run_corrected(5))


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
