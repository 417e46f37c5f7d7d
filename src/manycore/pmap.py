"""``pmap``: map a function over an iterable on the backend that measures best.

What ``pmap`` guarantees (each point is tested):

* **Lazy, bounded input.**  The iterable is read as work is handed out: at
  most a few chunks per worker are in flight, so generators (even infinite
  ones, consumed with ``itertools.islice`` or ``break``) keep memory bounded.
  If the input iterator raises, the results of the items read before it are
  delivered and then that exception is raised.
* **Results** come back in input order (``ordered=True``) or as they finish
  (``ordered=False``), as a :class:`PMapResult`: an iterator that also acts as
  a list (``len``, indexing, ``==``) once you ask for it as one.
* **Errors.**  ``errors="raise"`` raises the first failure met in output
  order, with the worker's traceback attached (``__cause__``) and a note
  naming the item's index; the rest of the map is cancelled.
  ``errors="collect"`` puts a :class:`TaskError` ``(index, exception,
  traceback)`` in place of each failed item and goes on.
* **Timeouts.**  ``timeout`` bounds the whole map (``TimeoutError``).
  ``task_timeout`` bounds each item: on processes the stuck worker is killed
  (even inside a C loop holding the GIL) and replaced, and the item fails with
  ``TimeoutError``; threads cannot be killed, so there the item fails with
  ``TimeoutError`` and its thread is abandoned to finish in the background.
* **Crashes.**  A worker process that dies (segfault, ``os._exit``, OOM kill)
  fails the item it was running with :class:`WorkerCrashed` (index, pid,
  signal or exit code); other items are re-run on a new worker.  Never a hang.
* **Ctrl-C** cancels pending work, kills busy worker processes and raises
  ``KeyboardInterrupt`` promptly; no worker process outlives the call.
* **backend="auto"** times a few items serially in the calling thread, checks
  their CPU-to-wall ratio (waiting or GIL-releasing work runs well on threads),
  tries threads on a sample when the work is CPU-bound, estimates what
  shipping an item to a process costs, and picks serial, threads, processes
  or native with a chunk size aiming at ~20 ms per chunk.  Trivial functions
  stay serial.  The decision is cached per function; ``explain=True`` prints
  the measurements and the reasoning.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import operator
import os
import pickle
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .executors import _serialize, canonical_backend
from .executors._contract import TaskError, attach_traceback

T = TypeVar("T")
R = TypeVar("R")

Record = tuple[int, bool, Any, str]

#: Target wall time of one chunk: long enough to hide hand-off costs, short
#: enough for load balance, progress and cancellation.
TARGET_CHUNK_S = 0.02
#: Below this total serial time a map is not worth any parallel machinery.
TRIVIAL_TOTAL_S = 0.005
#: Below this per-item time, items are too small to ship one by one.
PROBE_BUDGET_S = 0.05
PROBE_MAX_ITEMS = 8
_ERRORS = ("raise", "collect")


# ---------------------------------------------------------------- result object
class PMapResult(Iterator[R], Generic[R]):
    """Results of :func:`pmap`: an iterator that can also be used as a list.

    Iterate (``for``, ``next``, ``list(...)``) to stream the results with
    bounded memory.  ``results()``, indexing and ``==`` with a list or tuple
    wait for every result (so the input must be finite) and keep them;
    iterating afterwards goes over the kept results.  A map that was partly
    iterated cannot be materialised any more (``RuntimeError``).
    """

    def __init__(self, source: Iterator[R]) -> None:
        self._source = source
        self._all: list[R] | None = None
        self._pos = 0

    def __iter__(self) -> PMapResult[R]:
        return self

    def __next__(self) -> R:
        if self._all is not None:
            if self._pos >= len(self._all):
                raise StopIteration
            self._pos += 1
            return self._all[self._pos - 1]
        value = next(self._source)
        self._pos += 1
        return value

    def results(self) -> list[R]:
        """Every result, waiting for the map to finish."""
        if self._all is None:
            if self._pos:
                raise RuntimeError("cannot materialise a PMapResult after iterating over part of it")
            self._all = list(self._source)
        return self._all

    def __getitem__(self, index: Any) -> Any:
        return self.results()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PMapResult):
            return self.results() == other.results()
        if isinstance(other, (list, tuple)):
            return self.results() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._all is not None:
            return f"PMapResult({self._all!r})"
        return f"<PMapResult streaming, {self._pos} taken>"

    def close(self) -> None:
        """Stop the map early: cancel pending work and stop busy workers."""
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------- decisions
@dataclass
class Decision:
    backend: str
    chunksize: int
    workers: int
    reason: str
    measurements: dict[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        lines = [f"pmap: backend={self.backend} workers={self.workers} chunksize={self.chunksize}"]
        lines.append(f"  why: {self.reason}")
        for key, value in self.measurements.items():
            lines.append(f"  {key} = {value:.6g}")
        return "\n".join(lines)


_decisions: weakref.WeakKeyDictionary[Any, Decision] = weakref.WeakKeyDictionary()
_decisions_lock = threading.Lock()


def _cache_key(fn: Any) -> Any:
    # The function object itself: weakly referenced, so a decision dies with it.
    return fn


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover
        return os.cpu_count() or 1


def _is_native_callable(fn: Any) -> bool:
    return isinstance(fn, ctypes._CFuncPtr)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- validation
def _check_positive(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if not value > 0 or math.isnan(value):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int or None, not {type(workers).__name__}")
    if workers <= 0:
        raise ValueError(f"workers must be greater than 0, got {workers}")
    return workers


def _check_chunksize(chunksize: Any) -> int | None:
    if chunksize == "auto":
        return None
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError(f"chunksize must be 'auto' or an int, not {chunksize!r}")
    if chunksize <= 0:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    return chunksize


# ---------------------------------------------------------------- public API
def pmap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    backend: str = "auto",
    workers: int | None = None,
    chunksize: int | str = "auto",
    ordered: bool = True,
    timeout: float | None = None,
    task_timeout: float | None = None,
    errors: str = "raise",
    progress: bool = False,
    explain: bool = False,
    executor: Executor | None = None,
) -> PMapResult[Any]:
    """Apply ``fn`` to every item of ``iterable`` in parallel; see the module docstring.

    ``backend``: ``"auto"`` (measure and choose), ``"serial"``, ``"threads"``,
    ``"processes"``, ``"asyncio"`` (``fn`` a coroutine function), ``"native"``
    or ``"dask"``.  ``executor``: run on this executor instead (its backend;
    ``workers`` is then ignored).  ``progress``: a rich progress bar on a TTY.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    try:
        iterator = iter(iterable)
    except TypeError:
        raise TypeError(f"iterable must be iterable, not {type(iterable).__name__}") from None
    if errors not in _ERRORS:
        raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
    if not isinstance(ordered, bool):
        raise TypeError("ordered must be a bool")
    n_workers = _check_workers(workers)
    fixed_chunk = _check_chunksize(chunksize)
    timeout_s = _check_positive(timeout, "timeout")
    task_timeout_s = _check_positive(task_timeout, "task_timeout")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, not {type(executor).__name__}")
    chosen = "auto" if backend == "auto" else canonical_backend(backend)
    try:
        length = operator.length_hint(iterable, -1) if not isinstance(iterable, Iterator) else -1
    except Exception:
        length = -1

    deadline = time.monotonic() + timeout_s if timeout_s is not None else None
    source = _run(
        fn,
        enumerate(iterator),
        length=length,
        backend=chosen,
        workers=n_workers,
        chunksize=fixed_chunk,
        ordered=ordered,
        deadline=deadline,
        task_timeout=task_timeout_s,
        errors=errors,
        explain=explain,
        executor=executor,
    )
    if progress:
        source = _with_progress(source, length)
    return PMapResult(source)


def _star(fn: Callable[..., R], args: Iterable[Any]) -> R:
    return fn(*args)


def pstarmap(fn: Callable[..., R], iterable: Iterable[Iterable[Any]], **options: Any) -> PMapResult[Any]:
    """:func:`pmap` with each item unpacked as arguments: ``fn(*item)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    return pmap(functools.partial(_star, fn), iterable, **options)


# ---------------------------------------------------------------- the run
def _run(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[int, Any]],
    *,
    length: int,
    backend: str,
    workers: int | None,
    chunksize: int | None,
    ordered: bool,
    deadline: float | None,
    task_timeout: float | None,
    errors: str,
    explain: bool,
    executor: Executor | None,
) -> Iterator[Any]:
    probed: list[Record] = []
    decision: Decision
    if executor is not None:
        name = getattr(executor, "backend_name", "executor")
        n = int(getattr(executor, "_max_workers", 0) or _cpu_count())
        decision = Decision(name, chunksize or _default_chunk(length, n), n, "explicit executor")
    elif backend == "auto":
        decision, probed, pairs = _decide(fn, pairs, length, workers, chunksize)
    else:
        n = workers or (1 if backend == "serial" else _cpu_count())
        decision = Decision(backend, chunksize or _default_chunk(length, n), n, "requested")
    if explain:
        print(decision.explain(), file=sys.stderr)

    # Ordered output buffers results that overtake a slow item; stop handing
    # out work while that buffer is full, so memory stays bounded.
    backlog = _Backlog(limit=max(16, decision.workers * decision.chunksize))
    records = _records(fn, pairs, decision, executor, deadline, task_timeout, backlog.has_room)
    if probed:
        records = itertools.chain(iter(probed), records)
    yield from _deliver(records, ordered, errors, backlog)


@dataclass
class _Backlog:
    limit: int
    size: int = 0

    def has_room(self) -> bool:
        return self.size < self.limit


def _default_chunk(length: int, workers: int) -> int:
    if length <= 0:
        return 1
    # about four chunks per worker for balance; capped so progress keeps moving
    return max(1, min(10_000, math.ceil(length / (workers * 4))))


def _deliver(records: Iterator[Record], ordered: bool, errors: str, backlog: _Backlog) -> Iterator[Any]:
    pending: dict[int, Record] = {}
    next_index = 0
    try:
        for record in records:
            if not ordered:
                yield _outcome(record, errors)
                continue
            pending[record[0]] = record
            while next_index in pending:
                backlog.size = len(pending) - 1
                yield _outcome(pending.pop(next_index), errors)
                next_index += 1
            backlog.size = len(pending)
        # the input ended: whatever is left is in index order already
        for index in sorted(pending):
            yield _outcome(pending.pop(index), errors)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def _outcome(record: Record, errors: str) -> Any:
    index, ok, value, tb = record
    if ok:
        return value
    exc: BaseException = value
    if not tb and exc.__traceback__ is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if errors == "collect":
        return TaskError(index, exc, tb)
    if exc.__traceback__ is None:
        attach_traceback(exc, tb)
    if hasattr(exc, "add_note"):
        exc.add_note(f"raised by item {index} of pmap")
    raise exc


def _records(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[int, Any]],
    decision: Decision,
    executor: Executor | None,
    deadline: float | None,
    task_timeout: float | None,
    may_dispatch: Callable[[], bool],
) -> Iterator[Record]:
    if executor is None and decision.backend == "serial":
        yield from _run_serial(fn, pairs, deadline)
        return
    engine_owner = executor
    if executor is None and decision.backend == "processes":
        from .executors._engine import ProcessEngine
        from .executors.process import default_workers

        engine = ProcessEngine(
            workers=decision.workers, inner_threads=max(1, default_workers() // decision.workers)
        )
        try:
            yield from engine.run(
                fn,
                pairs,
                chunksize=decision.chunksize,
                task_timeout=task_timeout,
                deadline=deadline,
                may_dispatch=may_dispatch,
            )
        finally:
            engine.close()
        return
    if engine_owner is not None and hasattr(engine_owner, "_get_engine"):
        engine = engine_owner._get_engine()
        yield from engine.run(
            fn, pairs, chunksize=decision.chunksize, task_timeout=task_timeout, deadline=deadline
        )
        return
    own = executor is None
    if own:
        from .executors import get_executor

        executor = get_executor(decision.backend, max_workers=decision.workers)
    assert executor is not None
    try:
        yield from _run_executor(fn, pairs, executor, decision, deadline, task_timeout, may_dispatch)
    finally:
        if own:
            executor.shutdown(wait=False, cancel_futures=True)


def _run_serial(
    fn: Callable[[Any], Any], pairs: Iterator[tuple[int, Any]], deadline: float | None
) -> Iterator[Record]:
    for index, item in pairs:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError("pmap did not finish within its timeout")
        yield _call(fn, index, item)


def _call(fn: Callable[[Any], Any], index: int, item: Any) -> Record:
    try:
        return (index, True, fn(item), "")
    except Exception as exc:
        return (index, False, exc, "")


def _call_chunk(fn: Callable[[Any], Any], chunk: list[tuple[int, Any]]) -> list[Record]:
    """Runs in the worker: one record per item, tracebacks as text."""
    out: list[Record] = []
    for index, item in chunk:
        try:
            out.append((index, True, fn(item), ""))
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            out.append((index, False, exc, tb))
    return out


def _run_executor(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[int, Any]],
    executor: Executor,
    decision: Decision,
    deadline: float | None,
    task_timeout: float | None,
    may_dispatch: Callable[[], bool],
) -> Iterator[Record]:
    per_item = getattr(executor, "backend_name", "") == "asyncio" or task_timeout is not None
    chunksize = 1 if per_item else decision.chunksize
    limit = decision.workers if task_timeout is not None else 2 * decision.workers
    in_flight: dict[Future[Any], tuple[list[tuple[int, Any]], float]] = {}
    input_error: BaseException | None = None
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < limit and (not in_flight or may_dispatch()):
                chunk: list[tuple[int, Any]] = []
                try:
                    for pair in itertools.islice(pairs, chunksize):
                        chunk.append(pair)
                except Exception as exc:
                    input_error, exhausted = exc, True
                if len(chunk) < chunksize:
                    exhausted = True
                if not chunk:
                    break
                if per_item:
                    future = executor.submit(fn, chunk[0][1])
                else:
                    future = executor.submit(_call_chunk, fn, chunk)
                in_flight[future] = (chunk, time.monotonic())
            if not in_flight:
                break
            wait_s: float | None = None
            if deadline is not None:
                wait_s = max(0.0, deadline - time.monotonic())
            if task_timeout is not None:
                wait_s = 0.05 if wait_s is None else min(wait_s, 0.05)
            done, _ = wait(list(in_flight), timeout=wait_s, return_when=FIRST_COMPLETED)
            for future in done:
                chunk, _started = in_flight.pop(future)
                yield from _future_records(future, chunk, per_item)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("pmap did not finish within its timeout")
            if task_timeout is not None:
                now = time.monotonic()
                for future, (chunk, started) in list(in_flight.items()):
                    if now - started > task_timeout:
                        future.cancel()
                        del in_flight[future]
                        index = chunk[0][0]
                        error = TimeoutError(
                            f"item {index} exceeded task_timeout={task_timeout:g}s "
                            f"(its {decision.backend} worker cannot be killed; it was abandoned)"
                        )
                        yield (index, False, error, "")
        if input_error is not None:
            raise input_error
    finally:
        for future in in_flight:
            future.cancel()


def _future_records(future: Future[Any], chunk: list[tuple[int, Any]], per_item: bool) -> Iterator[Record]:
    try:
        value = future.result()
    except BaseException as exc:  # the chunk as a whole failed (pickling, broken pool, ...)
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        for index, _ in chunk:
            yield (index, False, exc, tb)
        return
    if per_item:
        yield (chunk[0][0], True, value, "")
    else:
        yield from value


# ---------------------------------------------------------------- auto
def _decide(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[int, Any]],
    length: int,
    workers: int | None,
    chunksize: int | None,
) -> tuple[Decision, list[Record], Iterator[tuple[int, Any]]]:
    n_workers = workers or _cpu_count()
    key = _cache_key(fn)
    with _decisions_lock:
        try:
            cached = _decisions.get(key)
        except TypeError:
            cached = None
    if cached is not None:
        d = Decision(
            cached.backend,
            chunksize or cached.chunksize,
            n_workers,
            "cached: " + cached.reason,
            cached.measurements,
        )
        return d, [], pairs

    if _is_native_callable(fn):
        d = Decision(
            "native",
            chunksize or _default_chunk(length, n_workers),
            n_workers,
            "fn is a C function pointer: run on native threads without the GIL",
        )
        return d, [], pairs

    # 1. time a few items serially, in this thread
    probed: list[Record] = []
    walls: list[float] = []
    cpus: list[float] = []
    sample_items: list[Any] = []
    started = time.perf_counter()
    for index, item in pairs:
        w0, c0 = time.perf_counter(), time.thread_time()
        probed.append(_call(fn, index, item))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.thread_time() - c0)
        if len(sample_items) < 2:
            sample_items.append(item)
        if len(probed) >= PROBE_MAX_ITEMS or time.perf_counter() - started > PROBE_BUDGET_S:
            break
    if not probed:
        return Decision("serial", 1, 1, "empty input"), [], pairs
    per_item = sorted(walls)[len(walls) // 2]
    cpu_ratio = (sum(cpus) / sum(walls)) if sum(walls) > 0 else 1.0
    remaining = max(0, length - len(probed)) if length >= 0 else None
    m: dict[str, float] = {"probe_items": len(probed), "item_wall_s": per_item, "cpu_to_wall": cpu_ratio}
    chunk = chunksize or max(1, min(50_000, int(TARGET_CHUNK_S / max(per_item, 1e-9))))
    if remaining is not None:
        m["remaining_items"] = remaining
        chunk = min(chunk, max(1, math.ceil(remaining / n_workers)))

    def decided(backend: str, reason: str) -> tuple[Decision, list[Record], Iterator[tuple[int, Any]]]:
        d = Decision(backend, chunk, 1 if backend == "serial" else n_workers, reason, m)
        with _decisions_lock:
            try:
                _decisions[key] = d
            except TypeError:
                pass
        return d, probed, pairs

    if remaining == 0:
        return Decision("serial", 1, 1, "the probe consumed the whole input", m), probed, pairs
    if n_workers == 1:
        return decided("serial", "only one worker available")
    total = per_item * remaining if remaining is not None else math.inf
    if total < TRIVIAL_TOTAL_S or per_item < 20e-6:
        return decided("serial", "items are too cheap for any parallel hand-off to pay")

    # 2. what would shipping an item to a process cost?
    ship = _shipping_cost(fn, sample_items, probed)
    m["ship_item_s"] = ship
    if cpu_ratio < 0.3:
        return decided("threads", "items mostly wait (I/O, sleep or GIL-free work): threads overlap them")

    # 3. CPU-bound: does it release the GIL?  Run a sample on threads.
    gil_free = _threads_speedup(fn, pairs, probed, n_workers, per_item, m)
    if gil_free:
        return decided("threads", "CPU-bound but releases the GIL: threads scale without process costs")
    if ship == math.inf:
        return decided(
            "threads", "items or fn cannot be pickled; processes impossible, threads overlap what they can"
        )
    if per_item < 4 * ship:
        return decided("serial", "shipping an item to a process costs more than running it")
    return decided("processes", "CPU-bound Python that holds the GIL: processes run it in parallel")


def _shipping_cost(fn: Callable[[Any], Any], items: list[Any], probed: list[Record]) -> float:
    try:
        t0 = time.perf_counter()
        _serialize.dumps(fn)
        fn_cost = time.perf_counter() - t0
        t0 = time.perf_counter()
        for item in items:
            pickle.loads(_serialize.dumps(item))
        results = [r[2] for r in probed[: len(items)] if r[1]]
        for value in results:
            pickle.loads(pickle.dumps(value))
        per = (time.perf_counter() - t0) / max(1, len(items))
        return per + fn_cost / 1000  # fn travels once per worker, not per item
    except Exception:
        return math.inf


def _threads_speedup(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[int, Any]],
    probed: list[Record],
    n_workers: int,
    per_item: float,
    m: dict[str, float],
) -> bool:
    """Run ``n_workers`` more items at once on threads (keeping their results).

    The GIL test is CPU time over wall time: threads that hold the GIL take
    turns, so their summed CPU time cannot exceed the wall time (ratio <= 1);
    GIL-free threads accumulate CPU time in parallel (ratio up to the thread
    count).  Unlike a speed-up, this ratio does not depend on how loaded the
    machine was while the serial probe ran.
    """
    sample = list(itertools.islice(pairs, n_workers))
    if len(sample) < 2:
        probed.extend(_call(fn, i, x) for i, x in sample)
        return False
    results: list[Record | None] = [None] * len(sample)
    cpu = [0.0] * len(sample)

    def run(k: int) -> None:
        c0 = time.thread_time()
        results[k] = _call(fn, *sample[k])
        cpu[k] = time.thread_time() - c0

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(sample))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    probed.extend(r for r in results if r is not None)
    parallelism = sum(cpu) / wall if wall > 0 else 1.0
    m["threads_cpu_parallelism"] = parallelism
    m["threads_speedup"] = (per_item * len(sample)) / wall if wall > 0 else 1.0
    return parallelism > 1.3


# ---------------------------------------------------------------- progress
def _with_progress(source: Iterator[Any], length: int) -> Iterator[Any]:
    if not sys.stderr.isatty():
        yield from source
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("pmap"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("pmap", total=length if length >= 0 else None, rate="")
        started = time.monotonic()
        done = 0
        for value in source:
            done += 1
            elapsed = time.monotonic() - started
            bar.update(task, advance=1, rate=f"{done / elapsed:,.0f}/s" if elapsed > 0 else "")
            yield value
