"""Process-side shared state: SharedCounter and a Manager example done right.

``SharedCounter``
    An integer in shared memory (``multiprocessing.Value("q")``) whose every
    read-modify-write happens under the Value's own lock.  ``increment`` and
    ``decrement`` are atomic with respect to every process holding the counter;
    ``value`` is a consistent read.  It is the fix for the lost update that
    ``manycore.patterns.race`` demonstrates: ``v.value += 1`` on a
    synchronised ``Value`` takes the lock twice (once to read, once to write),
    so two processes can still read the same old value.

    The counter is a 64-bit signed integer; going outside that range raises
    ``OverflowError`` and leaves the value unchanged.  Pass it to child
    processes as a ``Process`` argument (it cannot go through a ``Queue`` or
    to a ``Pool``); it works between threads too.

``manager_example``
    The seed's Manager program ("Using Manager") plus what its explanation
    ("a shared list that can be safely updated by multiple processes") leaves
    out: a single proxy call such as ``lst.append(x)`` is atomic, but a
    compound update such as ``d[k] += 1`` is two round trips to the manager
    process (a read, then a write), hence racy, unless guarded by a
    ``Manager().Lock()``; and the order in which workers' items arrive is not
    deterministic.  Every proxy operation is a message to the manager's
    server process and back; ``manycore.patterns.measure.proxy_cost``
    measures what that costs.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from ._checks import check_int
from ._mp import context, new_process

__all__ = ["ManagerExampleResult", "SharedCounter", "manager_example"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class SharedCounter:
    """A process-shared 64-bit integer with atomic increments (``multiprocessing.Value`` + its lock)."""

    def __init__(self, initial: int = 0, *, ctx: BaseContext | None = None) -> None:
        self._check(check_int(initial, "initial"))
        ctx = context(ctx)
        # lock=True (the default) gives a Value with an RLock we can take
        # around a read-modify-write; .value inside it re-enters that RLock.
        self._shared: Any = ctx.Value("q", initial)

    @staticmethod
    def _check(v: int) -> None:
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise OverflowError(f"SharedCounter holds a 64-bit signed integer; {v} is out of range")

    def increment(self, n: int = 1) -> int:
        """Add ``n`` (may be negative) atomically and return the new value."""
        check_int(n, "n")
        with self._shared.get_lock():
            new = int(self._shared.value) + n
            self._check(new)
            self._shared.value = new
            return new

    def decrement(self, n: int = 1) -> int:
        """Subtract ``n`` atomically and return the new value."""
        return self.increment(-n)

    @property
    def value(self) -> int:
        """The current value (read under the lock)."""
        with self._shared.get_lock():
            return int(self._shared.value)

    def get_lock(self) -> Any:
        """The lock guarding the value, for a compound update of your own (an ``RLock``)."""
        return self._shared.get_lock()

    def __repr__(self) -> str:
        return f"<SharedCounter {self.value}>"


@dataclass(frozen=True)
class ManagerExampleResult:
    """What ``manager_example`` collected: ``items`` sorted, ``counts`` per worker."""

    workers: int
    items_per_worker: int
    items: list[tuple[int, int]]
    counts: dict[str, int]


def _manager_worker(
    worker: int,
    items_per_worker: int,
    shared_list: MutableSequence[tuple[int, int]],
    counts: MutableMapping[str, int],
    lock: Any,
) -> None:
    for i in range(items_per_worker):
        shared_list.append((worker, i))  # one round trip; atomic in the manager
        # counts[k] += 1 would be a read round trip and a write round trip:
        # without the lock, two workers can both read n and both write n+1.
        with lock:
            counts["total"] = counts.get("total", 0) + 1
        counts[f"worker-{worker}"] = counts.get(f"worker-{worker}", 0) + 1  # only this worker writes it


def manager_example(
    workers: int = 2, items_per_worker: int = 5, *, ctx: BaseContext | None = None
) -> ManagerExampleResult:
    """Run ``workers`` processes that append to a managed list and count in a managed dict.

    Returns the items (sorted; their arrival order is not deterministic) and the
    counts.  ``counts["total"] == workers * items_per_worker`` always, because
    the shared key is updated under a manager lock.  Raises ``RuntimeError``
    if a worker process fails.
    """
    if workers < 1 or items_per_worker < 0:
        raise ValueError("workers must be >= 1 and items_per_worker >= 0")
    ctx = context(ctx)
    with ctx.Manager() as manager:
        shared_list = manager.list()
        counts = manager.dict()
        lock = manager.Lock()
        procs = [
            new_process(
                ctx,
                _manager_worker,
                (w, items_per_worker, shared_list, counts, lock),
                f"manycore-manager-example-{w}",
            )
            for w in range(workers)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            raise RuntimeError(f"manager example worker(s) failed with exit codes {failed}")
        items = sorted(tuple(x) for x in shared_list)
        return ManagerExampleResult(
            workers=workers,
            items_per_worker=items_per_worker,
            items=[(int(a), int(b)) for a, b in items],
            counts={str(k): int(v) for k, v in counts.items()},
        )
