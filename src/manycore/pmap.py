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
  stay serial.  Inside a daemonic process (pmap's own workers, Pipeline
  process stages), which may not start processes, it picks threads instead.
  On a free-threaded build with the GIL off (``python3.13t``), CPU-bound work
  goes to threads, which then run Python in parallel; with ``PYTHON_GIL=1``
  it decides as on a GIL build.  The decision is cached per function; ``explain=True`` prints the
  measurements and the reasoning.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import math
import multiprocessing
import operator
import os
import pickle
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import _build
from ._threadprobe import GIL_FREE_MIN, GIL_HELD_MAX, gil_free_fraction, run_on_threads
from .executors import _serialize, canonical_backend
from .executors._batches import Batch, Failures, Input, run_chunk
from .executors._contract import TaskError, attach_traceback

T = TypeVar("T")
R = TypeVar("R")


#: Target wall time of one chunk: long enough to hide hand-off costs, short
#: enough for load balance, progress and cancellation.
TARGET_CHUNK_S = 0.02
#: Below this total serial time a map is not worth any parallel machinery.
TRIVIAL_TOTAL_S = 0.005
#: Below this per-item time, items are too small to ship one by one.
PROBE_BUDGET_S = 0.05
PROBE_MAX_ITEMS = 8
#: Two serial items each at least this long are enough to estimate the cost.
PROBE_ENOUGH_ITEM_S = 0.002
_ERRORS = ("raise", "collect")


# ---------------------------------------------------------------- result object
@dataclass
class _RunState:
    """What the result object may know about its run."""

    may_stream: bool = True  # no progress bar to feed: a serial map may hand out a stream
    stream: Iterator[Any] | None = None  # every result, computed as the consumer iterates
    serial_map: Any = None  # the C iterator in `stream` (its close() stops it)


class PMapResult(Iterator[R], Generic[R]):
    """Results of :func:`pmap`: an iterator that can also be used as a list.

    Iterate (``for``, ``next``, ``list(...)``) to stream the results with
    bounded memory.  ``results()``, indexing and ``==`` with a list or tuple
    wait for every result (so the input must be finite) and keep them; once
    kept, iterating goes over them like over a list.  A map that was partly
    iterated cannot be materialised any more (``RuntimeError``).

    The map starts when iteration starts (``iter()``, ``next()``,
    ``results()``) and runs until the first batch of results is ready (a
    serial map over a list computes nothing ahead of the consumer).
    """

    def __init__(self, batches: Iterator[list[R]], state: _RunState | None = None) -> None:
        self._batches = batches
        self._state = state
        self._stream: Iterator[R] | None = None
        self._all: list[R] | None = None
        self._started = False

    def _open(self) -> Iterator[R]:
        if self._stream is None:
            self._stream = self._first_stream()
        return self._stream

    def _first_stream(self) -> Iterator[R]:
        # Results flow batch by batch through C-level chaining: no Python frame
        # per item between the workers and the consumer.  Starting the run
        # decides the backend; a serial map over a list yields no batch and
        # leaves a C iterator the consumer then uses directly.
        batches = self._batches
        try:
            first = next(batches)
        except StopIteration:
            stream = self._state.stream if self._state is not None else None
            return stream if stream is not None else iter(())
        return itertools.chain(first, itertools.chain.from_iterable(batches))

    def __iter__(self) -> Iterator[R]:
        if self._all is not None:
            return iter(self._all)
        self._started = True
        return self._open()

    def __next__(self) -> R:
        self._started = True
        return next(self._open())

    def __length_hint__(self) -> int:
        # list() asks the object it was given (after iter()): a serial map
        # over a list knows its length by then, and the copy is sized once
        if self._all is not None:
            return len(self._all)
        return operator.length_hint(self._stream) if self._stream is not None else 0

    def results(self) -> list[R]:
        """Every result, waiting for the map to finish."""
        if self._all is None:
            if self._started:
                raise RuntimeError("cannot materialise a PMapResult after iterating over part of it")
            self._all = list(self._open())
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
        return "<PMapResult streaming>"

    def close(self) -> None:
        """Stop the map early: cancel pending work and stop busy workers."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        if self._state is not None and self._state.serial_map is not None:
            self._state.serial_map.close()  # a serial stream computes no further item


# ---------------------------------------------------------------- decisions
@dataclass
class Decision:
    backend: str
    chunksize: int
    workers: int
    reason: str
    measurements: dict[str, float] = field(default_factory=dict)
    gil: bool = field(default_factory=_build.gil_enabled)  # the GIL's state when it was decided

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
    state = _RunState(may_stream=not progress)
    batches = _run(
        fn,
        Input(iterator, safe=isinstance(iterable, (list, tuple, range))),
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
        state=state,
    )
    if progress:
        batches = _with_progress(batches, length)
    return PMapResult(batches, state)


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
    source: Input,
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
    state: _RunState,
) -> Iterator[list[Any]]:
    probed: Batch | None = None
    decision: Decision
    if executor is not None:
        name = getattr(executor, "backend_name", "executor")
        n = int(getattr(executor, "_max_workers", 0) or _cpu_count())
        decision = Decision(name, chunksize or _default_chunk(length, n), n, "explicit executor")
    elif backend == "auto":
        decision, probed = _decide(fn, source, length, workers, chunksize)
    else:
        n = workers or (1 if backend == "serial" else _cpu_count())
        decision = Decision(backend, chunksize or _default_chunk(length, n), n, "requested")
    if explain:
        print(decision.explain(), file=sys.stderr)

    # Ordered output buffers results that overtake a slow item; stop handing
    # out work while that buffer is full, so memory stays bounded.
    backlog = _Backlog(limit=max(16, decision.workers * decision.chunksize))
    # serial runs read ahead only what was asked for (chunksize), else 1024 items
    serial_batch = chunksize or 1024
    expected = length - source.position if length > 0 else -1  # what is left after a probe
    streamable = state.may_stream and deadline is None and serial_batch >= 1024
    if executor is None and decision.backend == "serial" and streamable:
        state.serial_map = _serial_stream(fn, source, probed, errors)
        if state.serial_map is not None:
            # the consumer iterates the stream itself, after the probe's results
            state.stream = itertools.chain(probed[1], state.serial_map) if probed else state.serial_map
            return
    batches = _batches(
        fn,
        source,
        decision,
        executor,
        deadline,
        task_timeout,
        backlog.has_room,
        serial_batch,
        expected,
        probed,
    )
    yield from _deliver(batches, ordered, errors, backlog)
    if source.error is not None:
        raise source.error


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


def _deliver(batches: Iterator[Batch], ordered: bool, errors: str, backlog: _Backlog) -> Iterator[list[Any]]:
    """Batches in, lists of output values out (in input order if ``ordered``).

    Contiguous batches that arrive early wait whole (keyed by their first
    index), so reordering costs nothing per item; only the single-item
    batches of careful re-runs go through a per-item buffer.
    """
    runs: dict[int, tuple[list[Any], Failures]] = {}  # first index -> (values, failures)
    singles: dict[int, tuple[Any, tuple[BaseException, str] | None]] = {}
    next_index = 0
    try:
        for indexes, values, failures in batches:
            if failures and errors == "collect":
                values = list(values)
                for pos, (exc, tb) in failures.items():
                    values[pos] = TaskError(indexes[pos], exc, tb or _format(exc))
                failures = {}
            if not ordered:
                if failures:
                    first = min(failures)
                    yield values[:first]
                    _raise_failure(indexes[first], *failures[first])
                yield values
                continue
            if not len(indexes):
                continue
            if _contiguous(indexes):
                runs[indexes[0]] = (values, failures)
            else:
                for pos, index in enumerate(indexes):
                    singles[index] = (values[pos], failures.get(pos))
            # flush everything that is now in order
            while True:
                if next_index in runs:
                    values, failures = runs.pop(next_index)
                    if failures:
                        first = min(failures)
                        yield values[:first]
                        _raise_failure(next_index + first, *failures[first])
                    next_index += len(values)
                    yield values
                elif next_index in singles:
                    ready: list[Any] = []
                    while next_index in singles:
                        value, failure = singles.pop(next_index)
                        if failure is not None:
                            if ready:
                                yield ready
                            _raise_failure(next_index, *failure)
                        ready.append(value)
                        next_index += 1
                    yield ready
                else:
                    break
            backlog.size = len(singles) + sum(len(v) for v, _ in runs.values())
        # the input ended early (an input error): deliver what is left in order
        leftovers = sorted([*((i, v) for i, (v, _) in singles.items()), *((i, r) for i, r in runs.items())])
        for index, item in leftovers:
            if isinstance(item, tuple):
                values, failures = item
                if failures:
                    first = min(failures)
                    yield values[:first]
                    _raise_failure(index + first, *failures[first])
                yield values
            else:
                yield [item]
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _contiguous(indexes: Sequence[int]) -> bool:
    return isinstance(indexes, range) or indexes[-1] - indexes[0] == len(indexes) - 1


def _raise_failure(index: int, exc: BaseException, tb: str) -> None:
    # The worker's traceback text travels as __cause__ even when the exception
    # arrived with a traceback object (tblib, installed by dask, pickles those).
    if tb:
        attach_traceback(exc, tb)
    if hasattr(exc, "add_note"):
        exc.add_note(f"raised by item {index} of pmap")
    raise exc


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _batches(
    fn: Callable[[Any], Any],
    source: Input,
    decision: Decision,
    executor: Executor | None,
    deadline: float | None,
    task_timeout: float | None,
    may_dispatch: Callable[[], bool],
    serial_batch: int,
    expected_items: int,
    probed: Batch | None,
) -> Iterator[Batch]:
    if executor is None and decision.backend == "serial":
        yield from _run_serial(fn, source, deadline, serial_batch, probed)
        return
    if probed is not None:
        yield probed
    engine_scope: contextlib.AbstractContextManager[Any] | None = None
    if executor is None and decision.backend == "processes":
        engine_scope = _private_engine(decision.workers)
    elif executor is not None and hasattr(executor, "_claim_engine"):
        engine_scope = executor._claim_engine()  # the executor's engine, or a private one if busy
    if engine_scope is not None:
        with engine_scope as engine:
            yield from engine.run(
                fn,
                source,
                chunksize=decision.chunksize,
                task_timeout=task_timeout,
                deadline=deadline,
                may_dispatch=may_dispatch,
                expected_items=expected_items,
            )
        return
    own = executor is None
    if own:
        from .executors import get_executor

        executor = get_executor(decision.backend, max_workers=decision.workers)
    assert executor is not None
    try:
        yield from _run_executor(fn, source, executor, decision, deadline, task_timeout, may_dispatch)
    finally:
        if own:
            executor.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def _private_engine(workers: int) -> Iterator[Any]:
    """A process engine for one map, closed (its workers stopped) when the map ends."""
    from .executors._engine import ProcessEngine
    from .executors.process import default_workers

    engine = ProcessEngine(workers=workers, inner_threads=max(1, default_workers() // workers))
    try:
        yield engine
    finally:
        engine.close()


def _serial_stream(fn: Callable[[Any], Any], source: Input, probed: Batch | None, errors: str) -> Any:
    """A serial map over a list, tuple or range as one C-level iterator, or None.

    ``fn`` runs as the consumer pulls (C-level calls, as in ``map``), each
    result goes straight to the consumer, and a failed item is handed to
    ``_raise_item`` / ``_collect_item`` with its input position.
    """
    if probed is not None and probed[2]:
        return None  # a probe item failed: the batch path delivers it in order
    from . import _native

    rest = source.take_rest()
    if rest is None:
        return None
    indexes, items = rest
    on_error = _collect_item if errors == "collect" else _raise_item
    return _native.serial_map(fn, items, indexes.start, on_error)


def _raise_item(index: int, exc: Exception) -> Any:
    _raise_failure(index, exc, "")


def _collect_item(index: int, exc: Exception) -> TaskError:
    return TaskError(index, exc, _format(exc))


def _run_serial(
    fn: Callable[[Any], Any], source: Input, deadline: float | None, chunksize: int, probed: Batch | None
) -> Iterator[Batch]:
    rest = source.take_rest() if deadline is None and chunksize >= 1024 else None
    if rest is not None:
        # a list, tuple or range: one pass over it, no chunk copies, appended
        # to the probe's results (which are the items just before it)
        rest_indexes, rest_items = rest
        indexes, values, failures = probed if probed is not None else ((), [], {})
        if indexes and indexes[0] + len(values) == rest_indexes.start:
            run_chunk(fn, rest_items, into=(values, failures))
            yield range(indexes[0], rest_indexes.stop), values, failures
        else:
            values, failures = run_chunk(fn, rest_items)
            yield rest_indexes, values, failures
        return
    if probed is not None:
        yield probed
    size = chunksize
    while not source.done:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError("pmap did not finish within its timeout")
        indexes, items = source.take(size)
        if items:
            values, failures = run_chunk(fn, items)
            yield indexes, values, failures


def _run_executor(
    fn: Callable[[Any], Any],
    source: Input,
    executor: Executor,
    decision: Decision,
    deadline: float | None,
    task_timeout: float | None,
    may_dispatch: Callable[[], bool],
) -> Iterator[Batch]:
    per_item = getattr(executor, "backend_name", "") == "asyncio" or task_timeout is not None
    chunksize = 1 if per_item else decision.chunksize
    limit = decision.workers if task_timeout is not None else 2 * decision.workers
    in_flight: dict[Future[Any], tuple[range, float]] = {}
    try:
        while True:
            while not source.done and len(in_flight) < limit and (not in_flight or may_dispatch()):
                indexes, items = source.take(chunksize)
                if not items:
                    break
                if per_item:
                    future = executor.submit(fn, items[0])
                else:
                    future = executor.submit(run_chunk, fn, items, with_traceback_text=True)
                in_flight[future] = (indexes, time.monotonic())
            if not in_flight:
                return
            wait_s: float | None = None
            if deadline is not None:
                wait_s = max(0.0, deadline - time.monotonic())
            if task_timeout is not None:
                wait_s = 0.05 if wait_s is None else min(wait_s, 0.05)
            done, _ = wait(list(in_flight), timeout=wait_s, return_when=FIRST_COMPLETED)
            for future in done:
                indexes, _started = in_flight.pop(future)
                yield _future_batch(future, indexes, per_item)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("pmap did not finish within its timeout")
            if task_timeout is not None:
                now = time.monotonic()
                for future, (indexes, started) in list(in_flight.items()):
                    if now - started > task_timeout:
                        future.cancel()
                        del in_flight[future]
                        error = TimeoutError(
                            f"item {indexes[0]} exceeded task_timeout={task_timeout:g}s "
                            f"(its {decision.backend} worker cannot be killed; it was abandoned)"
                        )
                        yield indexes, [None], {0: (error, "")}
    finally:
        for future in in_flight:
            future.cancel()


def _future_batch(future: Future[Any], indexes: range, per_item: bool) -> Batch:
    try:
        value = future.result()
    except BaseException as exc:  # the chunk as a whole failed (pickling, broken pool, ...)
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = _format(exc)
        return indexes, [None] * len(indexes), dict.fromkeys(range(len(indexes)), (exc, tb))
    if per_item:
        return indexes, [value], {}
    values, failures = value
    return indexes, values, failures


# ---------------------------------------------------------------- auto
def _decide(
    fn: Callable[[Any], Any],
    source: Input,
    length: int,
    workers: int | None,
    chunksize: int | None,
) -> tuple[Decision, Batch | None]:
    n_workers = workers or _cpu_count()
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
            chunksize or _default_chunk(length, n_workers),
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
    while not source.done:
        idx, items = source.take(1)
        if not items:
            break
        w0, c0 = time.perf_counter(), time.thread_time()
        v, f = run_chunk(fn, items)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.thread_time() - c0)
        if f:
            failures[len(values)] = f[0]
        indexes.append(idx[0])
        values.extend(v)
        if len(sample_items) < 2:
            sample_items.append(items[0])
        if len(values) >= PROBE_MAX_ITEMS or time.perf_counter() - started > PROBE_BUDGET_S:
            break
        if len(values) >= 2 and min(walls) >= PROBE_ENOUGH_ITEM_S:
            break  # items this long are timed well: keep the rest for the chosen backend
    probed: Batch = (indexes, values, failures)
    if not values:
        return Decision("serial", 1, 1, "empty input"), None
    per_item = sorted(walls)[len(walls) // 2]
    cpu_ratio = (sum(cpus) / sum(walls)) if sum(walls) > 0 else 1.0
    remaining = max(0, length - len(values)) if length >= 0 else None
    m: dict[str, float] = {"probe_items": len(values), "item_wall_s": per_item, "cpu_to_wall": cpu_ratio}
    chunk = chunksize or max(1, min(50_000, int(TARGET_CHUNK_S / max(per_item, 1e-9))))
    if remaining is not None:
        m["remaining_items"] = remaining
        chunk = min(chunk, max(1, math.ceil(remaining / n_workers)))

    def decided(backend: str, reason: str) -> tuple[Decision, Batch | None]:
        d = Decision(backend, chunk, 1 if backend == "serial" else n_workers, reason, m)
        with _decisions_lock:
            try:
                _decisions[key] = d
            except TypeError:
                pass
        return d, probed

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
    gil_free = _threads_speedup(fn, source, probed, n_workers, per_item, m)
    if gil_free:
        return decided("threads", "CPU-bound but releases the GIL: threads scale without process costs")
    if ship == math.inf:
        return decided(
            "threads", "items or fn cannot be pickled; processes impossible, threads overlap what they can"
        )
    if per_item < 4 * ship:
        return decided("serial", "shipping an item to a process costs more than running it")
    if not _can_start_processes():
        return decided("threads", _NO_PROCESSES_REASON)
    return decided("processes", "CPU-bound Python that holds the GIL: processes run it in parallel")


_NO_PROCESSES_REASON = (
    "CPU-bound, but this is a daemonic process (a pmap or Pipeline worker), which may not start "
    "worker processes: threads"
)


def _can_start_processes() -> bool:
    """False in a daemonic process (pmap's own workers): multiprocessing forbids it to have children."""
    return not multiprocessing.current_process().daemon


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
) -> bool:
    """Does ``fn`` release the GIL?  Probe items run on threads; their results join ``probed``.

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

    index, one = source.take(1)
    if not one:
        return False
    outcome, _, share = gil_free_fraction(functools.partial(run_chunk, fn, one))
    keep(index[0], outcome)
    m["gil_free_share"] = share
    if share > GIL_FREE_MIN:
        return True
    if share < GIL_HELD_MAX:
        return False  # the watcher hardly ran: fn holds the GIL
    indexes, items = source.take(n_workers)
    calls = [functools.partial(run_chunk, fn, items[k : k + 1]) for k in range(len(items))]
    results, parallelism, wall = run_on_threads(calls)
    for k, result in enumerate(results):
        keep(indexes[k], result)
    if len(items) < 2:
        return False
    m["threads_cpu_parallelism"] = parallelism
    m["threads_speedup"] = (per_item * len(items)) / wall if wall > 0 else 1.0
    return parallelism > 1.2  # GIL-holding threads cannot exceed 1.0


# ---------------------------------------------------------------- progress
def _with_progress(batches: Iterator[list[Any]], length: int) -> Iterator[list[Any]]:
    if not sys.stderr.isatty():
        yield from batches
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
        for batch in batches:
            done += len(batch)
            elapsed = time.monotonic() - started
            bar.update(task, advance=len(batch), rate=f"{done / elapsed:,.0f}/s" if elapsed > 0 else "")
            yield batch
