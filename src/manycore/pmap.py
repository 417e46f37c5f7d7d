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
  ``task_timeout`` bounds each item's own run, counted from when its call
  starts (time spent queued or waiting for a worker to start does not count;
  on Dask, which cannot see a task start, from when it was submitted): on
  processes the stuck worker is killed
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
  shipping an item to a process costs, and picks serial, threads, processes,
  subinterpreters (where they exist and start faster than processes) or
  native with a chunk size aiming at ~20 ms per chunk.  Trivial functions
  stay serial.  Inside a daemonic process (pmap's own workers, Pipeline
  process stages), which may not start processes, it picks threads instead.
  On a free-threaded build with the GIL off (``python3.13t``), CPU-bound work
  goes to threads, which then run Python in parallel; with ``PYTHON_GIL=1``
  it decides as on a GIL build.  The decision is cached per function; ``explain=True`` prints the
  measurements and the reasoning.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sized
from concurrent.futures import Executor
from typing import Any, Generic, Literal, TypeVar, overload

from ._map import MapRequest, RunState, run_map, with_progress
from ._validate import check_int
from ._workers.batches import Input
from .errors import TaskError
from .executors import canonical_backend
from .executors._contract import register_map_functions

T = TypeVar("T")
R = TypeVar("R")

_ERRORS = ("raise", "collect")


# ---------------------------------------------------------------- result object
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

    ``len()`` is the input's length when it has one (a list, tuple, range,
    ...: one result per item, with ``errors="collect"`` too), without waiting;
    over an iterator or generator it raises ``TypeError`` (use
    ``len(result.results())``).
    """

    def __init__(
        self, batches: Iterator[list[R]], state: RunState | None = None, size: int | None = None
    ) -> None:
        self._batches = batches
        self._state = state
        self._size = size
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

    def __len__(self) -> int:
        if self._all is not None:
            return len(self._all)
        if self._size is None:
            raise TypeError(
                "len() of a PMapResult needs an input of known length (a list, tuple, range, ...); "
                "this one maps an iterator: use len(result.results())"
            )
        return self._size

    def __bool__(self) -> bool:
        return len(self) > 0 if self._all is not None or self._size is not None else True

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
    return None if workers is None else check_int(workers, "workers", minimum=1)


def _check_chunksize(chunksize: Any) -> int | None:
    if chunksize == "auto":
        return None
    if isinstance(chunksize, str):
        raise TypeError(f"chunksize must be 'auto' or an int, not {chunksize!r}")
    return check_int(chunksize, "chunksize", minimum=1)


# ---------------------------------------------------------------- public API
# The element type: what fn returns (awaited, for a coroutine function), and
# TaskError too with errors="collect" (or any errors= not known to be "raise").
@overload
def pmap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    iterable: Iterable[T],
    *,
    backend: str = ...,
    workers: int | None = ...,
    chunksize: int | str = ...,
    ordered: bool = ...,
    timeout: float | None = ...,
    task_timeout: float | None = ...,
    errors: Literal["raise"] = ...,
    progress: bool = ...,
    explain: bool = ...,
    executor: Executor | None = ...,
) -> PMapResult[R]: ...
@overload
def pmap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    backend: str = ...,
    workers: int | None = ...,
    chunksize: int | str = ...,
    ordered: bool = ...,
    timeout: float | None = ...,
    task_timeout: float | None = ...,
    errors: Literal["raise"] = ...,
    progress: bool = ...,
    explain: bool = ...,
    executor: Executor | None = ...,
) -> PMapResult[R]: ...
@overload
def pmap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    iterable: Iterable[T],
    *,
    backend: str = ...,
    workers: int | None = ...,
    chunksize: int | str = ...,
    ordered: bool = ...,
    timeout: float | None = ...,
    task_timeout: float | None = ...,
    errors: str,
    progress: bool = ...,
    explain: bool = ...,
    executor: Executor | None = ...,
) -> PMapResult[R | TaskError]: ...
@overload
def pmap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    backend: str = ...,
    workers: int | None = ...,
    chunksize: int | str = ...,
    ordered: bool = ...,
    timeout: float | None = ...,
    task_timeout: float | None = ...,
    errors: str,
    progress: bool = ...,
    explain: bool = ...,
    executor: Executor | None = ...,
) -> PMapResult[R | TaskError]: ...
def pmap(
    fn: Callable[[T], Any],
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

    request = MapRequest(
        fn=fn,
        length=length,
        backend=chosen,
        workers=n_workers,
        chunksize=fixed_chunk,
        ordered=ordered,
        deadline=time.monotonic() + timeout_s if timeout_s is not None else None,
        task_timeout=task_timeout_s,
        errors=errors,
        explain=explain,
        executor=executor,
    )
    state = RunState(may_stream=not progress)
    batches = run_map(request, Input(iterator, safe=isinstance(iterable, (list, tuple, range))), state)
    if progress:
        batches = with_progress(batches, length)
    size = len(iterable) if isinstance(iterable, Sized) else None
    return PMapResult(batches, state, size)


def _star(fn: Callable[..., R], args: Iterable[Any]) -> R:
    return fn(*args)


@overload
def pstarmap(
    fn: Callable[..., R], iterable: Iterable[Iterable[Any]], *, errors: Literal["raise"] = ..., **options: Any
) -> PMapResult[R]: ...
@overload
def pstarmap(
    fn: Callable[..., R], iterable: Iterable[Iterable[Any]], *, errors: str, **options: Any
) -> PMapResult[R | TaskError]: ...
def pstarmap(
    fn: Callable[..., Any], iterable: Iterable[Iterable[Any]], *, errors: str = "raise", **options: Any
) -> PMapResult[Any]:
    """:func:`pmap` with each item unpacked as arguments: ``fn(*item)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    return pmap(functools.partial(_star, fn), iterable, errors=errors, **options)


register_map_functions(pmap, pstarmap)  # what ManycoreExecutor.pmap / pstarmap run
