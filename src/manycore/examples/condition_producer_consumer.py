# Unit section: Python's threading Module > 2. Synchronization Mechanisms > e) Condition
# Shows: a producer and a consumer thread handing items over through a shared list guarded by a
#   Condition, then the same with manycore.patterns.BoundedBuffer.
# Corrected (docs/seed-errata.md, E6): the unit's consumer calls condition.wait() with no
#   predicate, and its producer notifies before anyone may be waiting. A notify() with no waiter
#   is lost, so the program works only if the consumer happens to be waiting first. When the
#   producer runs first (what usually happens: it is started first) both threads end up in
#   wait() and the program hangs forever. It also has no shutdown signal: the consumer stops
#   when it finds the list empty after a wake-up, which is not the same thing as "no more items".
#   The corrected version waits for a *state*, not for a notification
#   (`condition.wait_for(lambda: shared_data or done)`, a `while` loop around wait()), so a
#   notification sent early, a spurious wake-up or an extra notify_all() cannot hurt, and the
#   producer says "done" explicitly. This program runs the unit's version both ways round
#   (deadlock detected with a timeout, the stuck threads then released) and the fixed one.
from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The unit's functions, verbatim (the driver code that starts and joins the threads is below).
UNIT_SOURCE = """\
import threading

condition = threading.Condition()
shared_data = []

def producer():
    with condition:
        for i in range(5):
            shared_data.append(i)
            print(f"Produced: {i}")
            condition.notify() # Notify a waiting thread
            condition.wait() # Wait for the consumer to consume
            condition.notify_all() # Notify all threads when done

def consumer():
    with condition:
        while True:
            condition.wait() # Wait for the producer
            if not shared_data:
                break
            item = shared_data.pop(0)
            print(f"Consumed: {item}")
            condition.notify() # Notify producer
"""


# ---------------------------------------------------------------- the corrected program
def run_corrected(count: int = 5, first: str = "producer") -> list[int]:
    """Producer and consumer with predicate waits and an explicit end; returns what was consumed.

    ``first`` ("producer" or "consumer") is started first and given a head start; the result
    does not depend on it.
    """
    condition = threading.Condition()
    shared_data: list[int] = []
    done = False
    consumed: list[int] = []

    def producer() -> None:
        nonlocal done
        with condition:
            for i in range(count):
                # Hand over one item at a time, as the unit intends: wait until the last one was taken.
                condition.wait_for(lambda: not shared_data)
                shared_data.append(i)
                print(f"Produced: {i}")
                condition.notify_all()  # all: producer and consumer wait on the same condition
            done = True  # the shutdown signal the unit's version lacks
            condition.notify_all()

    def consumer() -> None:
        with condition:
            while True:
                condition.wait_for(lambda: bool(shared_data) or done)  # a while loop around wait()
                if not shared_data:  # done and drained
                    break
                item = shared_data.pop(0)
                consumed.append(item)
                print(f"Consumed: {item}")
                condition.notify_all()

    start_threads_in_order(producer, consumer, first)
    return consumed


def start_threads_in_order(
    producer: Callable[[], None], consumer: Callable[[], None], first: str, head_start_s: float = 0.02
) -> None:
    """Run ``producer`` and ``consumer`` in two threads, ``first`` started first; join both."""
    threads = {"producer": threading.Thread(target=producer), "consumer": threading.Thread(target=consumer)}
    second = "consumer" if first == "producer" else "producer"
    threads[first].start()
    time.sleep(head_start_s)
    threads[second].start()
    for t in threads.values():
        t.join()


# ---------------------------------------------------------------- running the unit's version safely
class Aborted(Exception):
    """Raised inside a waiting thread to release it after a detected deadlock."""


class TracingCondition(threading.Condition):
    """A Condition that counts its waiters and can release them all by raising ``Aborted``."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0  # threads inside wait(); changed only with the condition's lock held
        self.calls = 0  # wait() calls so far
        self.aborted = False

    def wait(self, timeout: float | None = None) -> bool:
        if self.aborted:
            raise Aborted
        self.calls += 1
        self.waiting += 1
        try:
            result = super().wait(timeout)
        finally:
            self.waiting -= 1
        if self.aborted:
            raise Aborted
        return result

    def abort(self) -> None:
        with self:
            self.aborted = True
            self.notify_all()


@dataclass
class Outcome:
    """What happened to one run of the unit's producer/consumer."""

    first: str
    deadlocked: bool
    errors: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def consumed(self) -> list[int]:
        return [int(line.split(": ")[1]) for line in self.output if line.startswith("Consumed: ")]

    @property
    def verdict(self) -> str:
        if self.errors:
            return "CRASHED: " + "; ".join(self.errors)
        return "DEADLOCK (a thread waits forever)" if self.deadlocked else "finished"

    def describe(self, how: str = "") -> str:
        return f"{self.first} starts first{how}: {self.verdict}; consumed {self.consumed}"


def _wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.001)


def run_unit_version(source: str, first: str, timeout_s: float = 1.0, spurious: bool = False) -> Outcome:
    """Run the unit's ``producer``/``consumer`` from ``source`` with ``first`` ("producer" or
    "consumer") started first and already waiting when the other starts. With ``spurious``,
    one extra ``notify_all()`` reaches the waiting thread before the other starts (a stand-in
    for a spurious wake-up, or for a notification meant for someone else).

    A run still going after ``timeout_s`` is a deadlock: its threads are then released by
    raising ``Aborted`` in their wait(), so nothing is left hanging.
    """
    namespace: dict[str, Any] = {}
    exec(compile(source, "<unit>", "exec"), namespace)
    condition = TracingCondition()
    namespace["condition"] = condition  # the functions look the name up when they run
    errors: list[str] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Aborted:
                pass
            except Exception as exc:
                errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")

        return run

    order = ["producer", "consumer"] if first == "producer" else ["consumer", "producer"]
    threads = {name: threading.Thread(target=guarded(namespace[name]), daemon=True) for name in order}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        threads[order[0]].start()
        # Let the first thread run until it waits, so the order is what we say it is.
        _wait_until(lambda: condition.waiting > 0 or not threads[order[0]].is_alive(), timeout_s)
        if spurious:
            calls = condition.calls
            with condition:
                condition.notify_all()
            # Until the woken thread has acted on it: waits again, or has left.
            _wait_until(lambda: condition.calls > calls or not threads[order[0]].is_alive(), timeout_s)
        threads[order[1]].start()
        for t in threads.values():
            t.join(timeout_s)
        deadlocked = any(t.is_alive() for t in threads.values())
        if deadlocked:
            condition.abort()
            for t in threads.values():
                t.join(timeout_s)
    return Outcome(first, deadlocked, errors, buffer.getvalue().splitlines())


def main(small: bool = False) -> None:
    timeout_s = 0.3 if small else 1.0
    print("The unit's version:")
    for first in ("consumer", "producer"):
        print("  " + run_unit_version(UNIT_SOURCE, first, timeout_s).describe())
    spurious = run_unit_version(UNIT_SOURCE, "consumer", timeout_s, spurious=True)
    print("  " + spurious.describe(", plus one extra notify_all()"))

    print("Corrected version:")
    consumed = run_corrected(5)
    print("Consumed in order:", consumed)

    # The manycore way: a bounded buffer with close(); iteration ends when it is closed and drained
    from manycore.patterns import BoundedBuffer

    buffer: BoundedBuffer[int] = BoundedBuffer(maxsize=1)

    def produce() -> None:
        for i in range(5):
            buffer.put(i)
        buffer.close()  # the shutdown signal: every waiting consumer sees it

    producer_thread = threading.Thread(target=produce)
    producer_thread.start()
    print("manycore BoundedBuffer consumed:", list(buffer))
    producer_thread.join()


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
