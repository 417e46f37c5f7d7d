"""Does a function hold the GIL?  Run calls on threads at once and compare CPU time with wall time.

Threads that hold the GIL take turns, so their summed CPU time cannot exceed
the wall time (ratio <= 1); GIL-free threads accumulate CPU time in parallel
(ratio up to the thread count).  Unlike a speed-up, this ratio does not
depend on how loaded the machine was while some earlier serial run was timed.
Used by ``pmap``'s auto backend and by ``manycore advise``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_threads(
    calls: Sequence[Callable[[], T]], timeout: float | None = None
) -> tuple[list[T | None], float, float]:
    """Start one thread per call, join them; ``(results, cpu_parallelism, wall_s)``.

    ``cpu_parallelism`` is the threads' summed CPU time over the wall time (1.0
    when the wall time is zero).  A call that raises leaves ``None`` as its
    result (the exception goes to ``threading.excepthook``, as for any thread).
    ``timeout``: stop waiting after that long; the threads (daemon threads)
    still running are left to finish alone (:func:`unfinished` lists them).
    """
    results: list[T | None] = [None] * len(calls)
    cpu = [0.0] * len(calls)

    def run(k: int) -> None:
        c0 = time.thread_time()
        try:
            results[k] = calls[k]()
        finally:
            cpu[k] = time.thread_time() - c0

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(len(calls))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(None if timeout is None else max(0.0, timeout - (time.perf_counter() - t0)))
    wall = time.perf_counter() - t0
    _last_unfinished.threads = [(k, t) for k, t in enumerate(threads) if t.is_alive()]
    return results, (sum(cpu) / wall if wall > 0 else 1.0), wall


_last_unfinished = threading.local()


def unfinished() -> list[tuple[int, threading.Thread]]:
    """``(call position, thread)`` of the calls the calling thread's last :func:`run_on_threads`
    or :func:`gil_free_fraction` stopped waiting for (its ``timeout`` passed)."""
    return list(getattr(_last_unfinished, "threads", []))


#: Share of a call's time during which another thread can run Python, above
#: which the call counts as GIL-releasing (Amdahl: 2 threads then give >= 1.33x).
GIL_FREE_MIN = 0.5
#: At or below this share the call clearly holds the GIL (the watcher gets it
#: once per switch interval for microseconds: about 0.00-0.01).
GIL_HELD_MAX = 0.1

#: A pause longer than this in the watching thread means it could not run:
#: far above one uncontended GIL hand-off (microseconds), far below the GIL's
#: switch interval (5 ms), the wait a GIL-holding thread imposes.
_GAP_S = 0.001


def gil_free_fraction(
    call: Callable[[], T], timeout: float | None = None
) -> tuple[T | None, BaseException | None, float]:
    """Run ``call`` on a thread while this thread watches whether it can still run Python.

    Returns ``(result, exception, fraction)``: the share of ``call``'s wall
    time during which this thread kept running.  A call that holds the GIL
    lets it in only once per switch interval (fraction near 0); one that
    releases it (NumPy, native kernels, I/O) leaves it running (near 1 on an
    idle CPU).  Unlike summed CPU time, this does not need a free core per
    thread, so a busy machine lowers the fraction of a GIL-free call but
    cannot raise that of a GIL-holding one.  ``call`` should run for a few
    switch intervals (milliseconds) for the fraction to mean much.
    ``timeout``: stop watching after that long (see :func:`unfinished`).
    """
    outcome: dict[str, Any] = {}
    started = threading.Event()
    done = threading.Event()

    def run() -> None:
        outcome["t0"] = time.perf_counter()
        started.set()
        try:
            outcome["result"] = call()
        except BaseException as exc:  # reported to the caller, not to threading.excepthook
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="manycore-gil-probe", daemon=True)
    thread.start()
    started.wait()
    give_up = None if timeout is None else time.perf_counter() + timeout
    ran = 0.0
    # The window starts when the call starts, not when this thread got back
    # from started.wait(): time the call ran before this thread could watch
    # (it held the GIL, or the machine was busy) counts as a gap.
    begin = last = outcome["t0"]
    while not done.is_set():
        time.sleep(0)  # drop the GIL: a GIL-holding call keeps it for a switch interval
        now = time.perf_counter()
        if now - last < _GAP_S:
            ran += now - last
        last = now
        if give_up is not None and now >= give_up:
            break
    if done.is_set():
        thread.join()
    _last_unfinished.threads = [] if done.is_set() else [(0, thread)]
    if last == begin:  # done before this thread watched at all: all of it was a gap
        last = time.perf_counter()
    wall = last - begin
    return outcome.get("result"), outcome.get("error"), (ran / wall if wall > 0 else 0.0)
