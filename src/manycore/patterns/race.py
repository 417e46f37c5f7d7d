"""A race condition you can see every time: lost updates, and the locked fix.

The seed's "Example of Race Condition Debugging" only shows the *fixed*
program, and its unlocked ``counter += 1`` rarely misbehaves on CPython 3.11
(the interpreter seldom switches threads inside those few bytecodes), so a
learner who removes the lock usually sees the right answer and concludes the
lock was unnecessary.

Here the read and the write of the shared counter are separated by an
explicit *switch point*, and the unlocked run forces the worst interleaving
with a ``Barrier``: in every round, all ``workers`` read the counter before
any of them writes it back.  Each round therefore adds 1 instead of
``workers``, so the unlocked count is **exactly** ``rounds`` — on every run,
every machine, for threads and for processes:

    expected = workers * rounds
    unlocked = rounds                 (workers - 1) * rounds updates lost
    locked   = workers * rounds

The locked run holds the lock across read, switch point and write.  It cannot
use the Barrier as its switch point (the other workers cannot reach it while
the lock is held: that is exactly what the lock guarantees, and the Barrier
would deadlock), so it yields with ``time.sleep(0)`` instead; no update is lost.

``backend="processes"`` runs the same program on a ``multiprocessing.Value``.
That Value is *synchronised* — each ``.value`` access takes its lock — and
updates are still lost, because ``v.value += 1`` is a locked read followed by
a separately locked write.  The fix holds ``v.get_lock()`` around both (what
``manycore.patterns.SharedCounter`` does).

Run ``python -m manycore.patterns.race`` (``--backend processes``) to see it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, Literal, TextIO

from ._mp import context, new_process

__all__ = ["RaceResult", "demo", "main", "run_race"]

Backend = Literal["threads", "processes"]

# A worker that dies mid-round would leave the others waiting on the Barrier;
# this bound turns that into BrokenBarrierError instead of a hang.
_BARRIER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RaceResult:
    """Counts from one ``run_race``: ``expected`` increments, and what was left without and with a lock."""

    backend: Backend
    workers: int
    rounds: int
    expected: int
    unlocked: int
    locked: int

    @property
    def lost_updates(self) -> int:
        """Increments that vanished in the unlocked run (``expected - unlocked``)."""
        return self.expected - self.unlocked

    def __str__(self) -> str:
        w = len(str(self.expected))
        return "\n".join(
            [
                f"lost updates, made visible: {self.workers} {self.backend} x {self.rounds} increments each",
                f"  expected (workers x rounds)  {self.expected:>{w}}",
                f"  without a lock               {self.unlocked:>{w}}   <- {self.lost_updates} updates lost",
                f"  with a lock                  {self.locked:>{w}}",
            ]
        )


class _Box:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _unlocked_rounds(box: Any, barrier: Any, rounds: int) -> None:
    """Read, wait for everyone to have read (the switch point), write back read+1."""
    try:
        for _ in range(rounds):
            seen = box.value
            barrier.wait()  # every worker now holds the same stale value
            box.value = seen + 1
            barrier.wait()  # every write landed before anyone reads for the next round
    except BaseException:
        barrier.abort()  # release the others instead of leaving them waiting
        raise


def _locked_rounds(box: Any, lock: Any, rounds: int) -> None:
    """The same read / switch point / write, with the lock held across all three."""
    for _ in range(rounds):
        with lock:
            seen = box.value
            time.sleep(0)  # the switch point: other workers may run, but not in here
            box.value = seen + 1


def _run_threads(workers: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, name=f"manycore-race-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _run_processes(
    ctx: BaseContext, workers: int, target: Callable[..., None], args: tuple[Any, ...]
) -> None:
    procs = [new_process(ctx, target, args, f"manycore-race-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    codes = [p.exitcode for p in procs]
    if any(c != 0 for c in codes):
        raise RuntimeError(f"race worker process(es) failed, exit codes {codes}")


def run_race(
    workers: int = 4,
    rounds: int = 1000,
    *,
    backend: Backend = "threads",
    ctx: BaseContext | None = None,
) -> RaceResult:
    """Run the unlocked and the locked counter; return both counts and the expected value.

    Guarantees (see the module docstring for why): ``unlocked == rounds`` and
    ``locked == expected == workers * rounds``.  ``workers`` must be >= 2 (one
    worker cannot race) and ``rounds`` >= 1.  ``ctx`` picks the
    ``multiprocessing`` start method for ``backend="processes"``.
    """
    if backend not in ("threads", "processes"):
        raise ValueError(f"backend must be 'threads' or 'processes', got {backend!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 2:
        raise ValueError(f"workers must be an int >= 2, got {workers!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")

    if backend == "threads":
        box: Any = _Box()
        _run_threads(
            workers, _unlocked_rounds, (box, threading.Barrier(workers, timeout=_BARRIER_TIMEOUT_S), rounds)
        )
        unlocked = box.value
        box = _Box()
        _run_threads(workers, _locked_rounds, (box, threading.Lock(), rounds))
        locked = box.value
    else:
        ctx = context(ctx)
        value: Any = ctx.Value("q", 0)  # synchronised: each .value access is locked, the += is not
        _run_processes(
            ctx, workers, _unlocked_rounds, (value, ctx.Barrier(workers, timeout=_BARRIER_TIMEOUT_S), rounds)
        )
        unlocked = int(value.value)
        value = ctx.Value("q", 0)
        _run_processes(ctx, workers, _locked_rounds, (value, value.get_lock(), rounds))
        locked = int(value.value)

    return RaceResult(
        backend=backend,
        workers=workers,
        rounds=rounds,
        expected=workers * rounds,
        unlocked=int(unlocked),
        locked=int(locked),
    )


def demo(
    workers: int = 4,
    rounds: int = 1000,
    *,
    backend: Backend = "threads",
    ctx: BaseContext | None = None,
    file: TextIO | None = None,
) -> RaceResult:
    """Run ``run_race`` and print the three counts with a one-paragraph explanation; return the result."""
    result = run_race(workers, rounds, backend=backend, ctx=ctx)
    out = file if file is not None else sys.stdout
    print(result, file=out)
    print(
        f"Each round, all {workers} workers read the counter before any writes it back (a Barrier\n"
        f"forces that interleaving), so a round adds 1 instead of {workers}. Holding a lock from the\n"
        "read to the write makes the interleaving impossible, and nothing is lost.",
        file=out,
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m manycore.patterns.race [--workers N] [--rounds R] [--backend threads|processes]``."""
    parser = argparse.ArgumentParser(prog="python -m manycore.patterns.race", description=demo.__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=None, help="default: 1000 (threads), 200 (processes)")
    parser.add_argument("--backend", choices=["threads", "processes"], default="threads")
    parser.add_argument("--start-method", choices=multiprocessing.get_all_start_methods(), default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1000 if args.backend == "threads" else 200)
    ctx = multiprocessing.get_context(args.start_method) if args.start_method else None
    demo(args.workers, rounds, backend=args.backend, ctx=ctx)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
