"""Phase 1 of ``backend="auto"``: measure the function on the first items and choose.

:func:`decide` times a few items serially in the calling thread (their
results are kept), reads their CPU-to-wall ratio, asks whether the work
lets another thread run Python (:mod:`manycore._threadprobe`), tries two
threads on a sample when that is unclear, estimates what shipping an item to
a process costs, and picks serial, threads, processes or native with a chunk
size aiming at :data:`TARGET_CHUNK_S` per chunk (:data:`THREAD_CHUNK_S` on
threads).  The decision is cached per
function (weakly) and says why (``explain=True``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import multiprocessing
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .. import _build
from .._cpus import available_cpus
from .._threadprobe import GIL_FREE_MIN, GIL_HELD_MAX, gil_free_fraction, run_on_threads, unfinished
from .._workers import serialize as _serialize
from .._workers.batches import Batch, Failures, Input, run_chunk
from .bounded import MAP_TIMEOUT_MESSAGE, Helper, abandon, fn_name, overrun_error, run_one

#: Target wall time of one chunk: long enough to hide hand-off costs, short
#: enough for load balance, progress and cancellation.
TARGET_CHUNK_S = 0.02
#: The same on threads, where a hand-off costs microseconds, not a pickle and a
#: pipe: chunks this short keep the workers balanced when items differ in cost
#: (the probe times only the first items).
THREAD_CHUNK_S = 0.002
#: Below this total serial time a map is not worth any parallel machinery.
TRIVIAL_TOTAL_S = 0.005
#: Below this per-item time, items are too small to ship one by one.
PROBE_BUDGET_S = 0.05
PROBE_MAX_ITEMS = 8
#: Two serial items each at least this long are enough to estimate the cost.
PROBE_ENOUGH_ITEM_S = 0.002


# ---------------------------------------------------------------- decisions
@dataclass
class Decision:
    backend: str
    chunksize: int
    workers: int
    reason: str
    measurements: dict[str, float] = field(default_factory=dict)
    gil: bool = field(default_factory=_build.gil_enabled)  # the GIL's state when it was decided
    # an executor the probe started and the map goes on with (never cached)
    warm: Executor | None = field(default=None, repr=False, compare=False)

    def explain(self) -> str:
        lines = [f"pmap: backend={self.backend} workers={self.workers} chunksize={self.chunksize}"]
        lines.append(f"  why: {self.reason}")
        lines.append(f"  interpreter: {_build.describe()}")
        for key, value in self.measurements.items():
            lines.append(f"  {key} = {value:.6g}")
        return "\n".join(lines)


_decisions: weakref.WeakKeyDictionary[Any, Decision] = weakref.WeakKeyDictionary()
_decisions_lock = threading.Lock()


def _cache_key(fn: Any) -> Any:
    # The function object itself: weakly referenced, so a decision dies with it.
    return fn


def _is_native_callable(fn: Any) -> bool:
    return isinstance(fn, ctypes._CFuncPtr)  # type: ignore[attr-defined]


def default_chunk(length: int, workers: int) -> int:
    if length <= 0:
        return 1
    # about four chunks per worker for balance; capped so progress keeps moving
    return max(1, min(10_000, math.ceil(length / (workers * 4))))


# ---------------------------------------------------------------- auto
def decide(
    fn: Callable[[Any], Any],
    source: Input,
    length: int,
    workers: int | None,
    chunksize: int | None,
    task_timeout: float | None = None,
    deadline: float | None = None,
) -> tuple[Decision, Batch | None]:
    """Choose; ``task_timeout`` and ``deadline`` (``time.monotonic()``) bound the probe's items too."""
    n_workers = workers or available_cpus()
    key = _cache_key(fn)
    with _decisions_lock:
        try:
            cached = _decisions.get(key)
        except TypeError:
            cached = None
    if cached is not None and cached.gil != _build.gil_enabled():
        cached = None  # decided before an import turned the GIL on (or off): decide again
    if cached is not None:
        backend, reason = cached.backend, "cached: " + cached.reason
        if backend == "processes" and not _can_start_processes():
            backend, reason = "threads", _NO_PROCESSES_REASON  # a decision inherited through fork()
        d = Decision(
            backend,
            chunksize or cached.chunksize,
            n_workers if backend != "serial" else 1,
            reason,
            cached.measurements,
        )
        return d, None

    if _is_native_callable(fn):
        d = Decision(
            "native",
            chunksize or default_chunk(length, n_workers),
            n_workers,
            "fn is a C function pointer: run on native threads without the GIL",
        )
        return d, None

    # 1. time a few items serially, in this thread (their results are kept)
    indexes: list[int] = []
    values: list[Any] = []
    failures: Failures = {}
    walls: list[float] = []
    cpus: list[float] = []
    sample_items: list[Any] = []
    started = time.perf_counter()
    # bounded: on a helper thread, abandoned past task_timeout (see .bounded)
    helper = Helper("manycore-probe") if task_timeout is not None or deadline is not None else None
    overran = False
    try:
        while not source.done:
            idx, items = source.take(1)
            if not items:
                break
            v, f, wall, cpu, overran = run_one(fn, items[0], idx[0], task_timeout, deadline, helper)
            walls.append(wall)
            cpus.append(cpu)
            if f:
                failures[len(values)] = f[0]
            indexes.append(idx[0])
            values.extend(v)
            if overran:
                break
            if len(sample_items) < 2:
                sample_items.append(items[0])
            if len(values) >= PROBE_MAX_ITEMS or time.perf_counter() - started > PROBE_BUDGET_S:
                break
            if len(values) >= 2 and min(walls) >= PROBE_ENOUGH_ITEM_S:
                break  # items this long are timed well: keep the rest for the chosen backend
    finally:
        if helper is not None:
            helper.close()
    probed: Batch = (indexes, values, failures)
    if not values:
        return Decision("serial", 1, 1, "empty input"), None
    if overran:
        return _after_overrun(chunksize, n_workers, len(values)), probed
    per_item = sorted(walls)[len(walls) // 2]
    cpu_ratio = (sum(cpus) / sum(walls)) if sum(walls) > 0 else 1.0
    remaining = max(0, length - len(values)) if length >= 0 else None
    m: dict[str, float] = {"probe_items": len(values), "item_wall_s": per_item, "cpu_to_wall": cpu_ratio}
    if remaining is not None:
        m["remaining_items"] = remaining

    def chunk_for(backend: str) -> int:
        target = THREAD_CHUNK_S if backend == "threads" else TARGET_CHUNK_S
        chunk = chunksize or max(1, min(50_000, int(target / max(per_item, 1e-9))))
        return chunk if remaining is None else min(chunk, max(1, math.ceil(remaining / n_workers)))

    def decided(backend: str, reason: str, warm: Executor | None = None) -> tuple[Decision, Batch | None]:
        d = Decision(backend, chunk_for(backend), 1 if backend == "serial" else n_workers, reason, m)
        with _decisions_lock:
            try:
                _decisions[key] = d
            except TypeError:
                pass
        return dataclasses.replace(d, warm=warm), probed

    if remaining == 0 or source.done:
        return Decision("serial", 1, 1, "the probe consumed the whole input", m), probed
    if n_workers == 1:
        return decided("serial", "only one worker available")
    total = per_item * remaining if remaining is not None else math.inf
    if total < TRIVIAL_TOTAL_S or per_item < 20e-6:
        return decided("serial", "items are too cheap for any parallel hand-off to pay")

    # 2. what would shipping an item to a process cost?
    ship = _shipping_cost(fn, sample_items, [v for pos, v in enumerate(values) if pos not in failures][:2])
    m["ship_item_s"] = ship
    if cpu_ratio < 0.3:
        return decided("threads", "items mostly wait (I/O, sleep or GIL-free work): threads overlap them")

    # 3. CPU-bound.  With the GIL off, threads run Python in parallel: no
    # pickling, shared objects, no process start.
    if not _build.gil_enabled():
        return decided(
            "threads", "CPU-bound on a free-threaded build with the GIL off: threads run Python in parallel"
        )
    # With the GIL on: does fn release it?  Run a sample on threads.
    limits = (task_timeout, deadline)
    gil_free = _threads_speedup(fn, source, probed, n_workers, per_item, m, limits)
    if gil_free is None:  # a sample item overran task_timeout
        return _after_overrun(chunksize, n_workers, len(probed[1])), probed
    if gil_free:
        return decided("threads", "CPU-bound but releases the GIL: threads scale without process costs")
    if ship == math.inf:
        return decided(
            "threads", "items or fn cannot be pickled; processes impossible, threads overlap what they can"
        )
    if per_item < 4 * ship:
        return decided("serial", "shipping an item to a process costs more than running it")
    # 4. Processes, or subinterpreters (one GIL each) where they exist and start faster.
    can_fork = _can_start_processes()
    why_not = ""
    if task_timeout is None and deadline is None:  # else processes: a stuck worker can be killed
        verdict = _try_interpreters(fn, source, probed, n_workers, per_item, can_fork, m)
        if isinstance(verdict, tuple):
            return decided("interpreters", *verdict)
        why_not = verdict
    if not can_fork:
        return decided("threads", _NO_PROCESSES_REASON + why_not)
    return decided("processes", "CPU-bound Python that holds the GIL: processes run it in parallel" + why_not)


def _after_overrun(chunksize: int | None, n_workers: int, probed: int) -> Decision:
    """An item overran ``task_timeout`` while probing: the rest run on threads, bounded the same way.

    Not processes: the probe's abandoned thread still runs Python, so new
    workers could not be forked (see :mod:`manycore._workers._start`) and
    forkserver would re-import a ``__main__`` that may not be guarded.  Pass
    ``backend="processes"`` for work that can spin for ever: there a stuck
    worker is killed.  Not cached: it says nothing about ``fn``'s speed.
    """
    reason = "an item overran task_timeout while probing: threads, where a stuck call is abandoned"
    return Decision("threads", chunksize or 1, n_workers, reason, {"probe_items": float(probed)})


_NO_PROCESSES_REASON = (
    "CPU-bound, but this is a daemonic process (a pmap or Pipeline worker), which may not start "
    "worker processes: threads"
)


def _can_start_processes() -> bool:
    """False in a daemonic process (pmap's own workers): multiprocessing forbids it to have children."""
    return not multiprocessing.current_process().daemon


_process_starts: dict[int, float] = {}  # pid -> seconds from a process executor's start to its first result


def _process_start_s() -> float:
    """What starting worker processes costs here: a one-worker ``ProcessExecutor`` to its first
    result (fork or forkserver, as the engine would start them), measured once per process."""
    pid = os.getpid()
    if pid not in _process_starts:
        from ..executors.process import ProcessExecutor

        t0 = time.perf_counter()
        with ProcessExecutor(max_workers=1) as executor:
            executor.submit(int).result()
            _process_starts[pid] = time.perf_counter() - t0
    return _process_starts[pid]


def _try_interpreters(
    fn: Callable[[Any], Any],
    source: Input,
    probed: Batch,
    n_workers: int,
    per_item: float,
    can_fork: bool,
    m: dict[str, float],
) -> tuple[str, Executor] | str:
    """Run one item in a new subinterpreter: ``(reason, the executor to go on with)`` when that
    started faster than processes do (or processes cannot start), else why not (for the reason).

    Subinterpreters exist only on CPython 3.14 (3.13 with ``manycore[interpreters]``); where they
    do not, nothing is tried.  The item's result joins ``probed``.
    """
    from ..executors.interpreters import InterpreterExecutor

    if not _build.gil_enabled() or InterpreterExecutor.unavailable_reason() is not None:
        return ""
    process_start = _process_start_s() if can_fork else math.inf  # before any subinterpreter starts
    index, one = source.take(1)
    if not one:
        return ""
    probe_indexes, probe_values, probe_failures = probed
    assert isinstance(probe_indexes, list)
    executor = InterpreterExecutor(max_workers=n_workers)
    t0 = time.perf_counter()
    problem: BaseException | None
    try:
        values, failures = executor.submit(run_chunk, fn, one, with_traceback_text=True).result()
        problem = next((exc for exc, _ in failures.values() if isinstance(exc, ImportError)), None)
    except Exception as exc:  # fn or the item cannot cross, or the subinterpreter broke
        problem = exc
    wall = time.perf_counter() - t0
    if problem is not None:
        executor.shutdown(wait=True)
        values, failures = run_chunk(fn, one)  # the item runs here instead
    for pos, failure in failures.items():
        probe_failures[len(probe_values) + pos] = failure
    probe_indexes.append(index[0])
    probe_values.extend(values)
    if problem is not None:
        lines = [line for line in str(problem).splitlines() if line.strip()] or [""]
        return f" (subinterpreters cannot run it: {type(problem).__name__}: {lines[-1].strip()[:200]})"
    m["interpreter_start_s"] = start = max(0.0, wall - per_item)
    if process_start == math.inf:
        return (
            "CPU-bound Python that holds the GIL, in a process that may not start processes: subinterpreters",
            executor,
        )
    m["process_start_s"] = process_start
    if start <= process_start:
        return (
            "CPU-bound Python that holds the GIL: subinterpreters (one GIL each) start faster than processes",
            executor,
        )
    executor.shutdown(wait=True)
    return " (a subinterpreter started slower than a process here)"


def _shipping_cost(fn: Callable[[Any], Any], items: list[Any], results: list[Any]) -> float:
    try:
        t0 = time.perf_counter()
        _serialize.dumps(fn)
        fn_cost = time.perf_counter() - t0
        t0 = time.perf_counter()
        for item in items:
            pickle.loads(_serialize.dumps(item))
        for value in results:
            pickle.loads(pickle.dumps(value))
        per = (time.perf_counter() - t0) / max(1, len(items))
        return per + fn_cost / 1000  # fn travels once per worker, not per item
    except Exception:
        return math.inf


def _threads_speedup(
    fn: Callable[[Any], Any],
    source: Input,
    probed: Batch,
    n_workers: int,
    per_item: float,
    m: dict[str, float],
    limits: tuple[float | None, float | None] = (None, None),
) -> bool | None:
    """Does ``fn`` release the GIL?  Probe items run on threads; their results join ``probed``.

    ``limits``: ``(task_timeout, deadline)``; None if an item overran the
    first (it failed with ``TimeoutError``, its thread abandoned).

    First one item on a thread while this thread watches whether it can still
    run Python (:func:`manycore._threadprobe.gil_free_fraction`: robust on a
    busy machine).  Only when that is not clear-cut, ``n_workers`` items at
    once on threads, judged by summed thread CPU time over wall time.
    """
    probe_indexes, probe_values, probe_failures = probed
    assert isinstance(probe_indexes, list)

    def keep(index: int, outcome: tuple[list[Any], Failures] | None) -> None:
        v, f = (
            outcome if outcome is not None else ([None], {0: (RuntimeError("the probe thread failed"), "")})
        )
        if f:
            probe_failures[len(probe_values)] = f[0]
        probe_indexes.append(index)
        probe_values.extend(v)

    task_timeout, deadline = limits

    def limit() -> float | None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(MAP_TIMEOUT_MESSAGE)
        left = [x for x in (task_timeout, None if deadline is None else deadline - time.monotonic()) if x]
        return min(left) if left else None

    def overran(indexes: Sequence[int]) -> bool:
        """The calls of the last run still running: their items fail, their threads are abandoned."""
        stuck = unfinished()
        if not stuck:
            return False
        if task_timeout is None:  # the deadline passed
            raise TimeoutError(MAP_TIMEOUT_MESSAGE)
        for k, thread in stuck:
            abandon(thread, f"item {indexes[k]} of pmap({fn_name(fn)}, ...)")
            probe_failures[len(probe_values)] = (overrun_error(indexes[k], task_timeout), "")
            probe_indexes.append(indexes[k])
            probe_values.append(None)
        return True

    index, one = source.take(1)
    if not one:
        return False
    outcome, _, share = gil_free_fraction(functools.partial(run_chunk, fn, one), limit())
    if overran([index[0]]):
        return None
    keep(index[0], outcome)
    m["gil_free_share"] = share
    if share > GIL_FREE_MIN:
        return True
    if share < GIL_HELD_MAX:
        return False  # the watcher hardly ran: fn holds the GIL
    indexes, items = source.take(n_workers)
    calls = [functools.partial(run_chunk, fn, items[k : k + 1]) for k in range(len(items))]
    results, parallelism, wall = run_on_threads(calls, limit())
    stuck = {k for k, _ in unfinished()}
    for k, result in enumerate(results):
        if k not in stuck:
            keep(indexes[k], result)
    if overran(list(indexes)):
        return None
    if len(items) < 2:
        return False
    m["threads_cpu_parallelism"] = parallelism
    m["threads_speedup"] = (per_item * len(items)) / wall if wall > 0 else 1.0
    return parallelism > 1.2  # GIL-holding threads cannot exceed 1.0
