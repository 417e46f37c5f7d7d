"""How one map runs: choose, dispatch, deliver (the phases of :func:`run_map`).

``run_map`` is the generator behind every :class:`manycore.PMapResult`:

1. **choose**: the executor given (its :meth:`map_plan`), the backend asked
   for, or :func:`manycore._map.decide.decide` measuring for ``"auto"``;
2. **stream** a serial map over a known input straight to the consumer (no
   batches at all), when nothing needs watching;
3. **dispatch** batches: serially here, on a process engine (pmap's own or
   the executor's), or as futures on an executor;
4. **deliver** them in input order or as they finish (:mod:`.deliver`).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Any

from .._cpus import available_cpus
from .._workers.batches import Batch, Input, run_chunk
from ..errors import TaskError
from ..executors import ManycoreExecutor, MapPlan, get_executor
from ._serial import serial_map
from .bounded import MAP_TIMEOUT_MESSAGE, Helper, fn_name, run_one
from .decide import Decision, decide, default_chunk
from .deliver import Backlog, deliver, format_exception, raise_failure

#: The longest the calling thread blocks in one wait.  A signal that lands just
#: before a lock wait begins is handled only when the wait ends (seen as a
#: 60 s late Ctrl-C on free-threaded 3.13), so waits are cut into slices.
SIGNAL_SLICE_S = 0.25


@dataclass
class RunState:
    """What the result object may know about its run."""

    may_stream: bool = True  # no progress bar to feed: a serial map may hand out a stream
    stream: Iterator[Any] | None = None  # every result, computed as the consumer iterates
    serial_map: Any = None  # the C iterator in `stream` (its close() stops it)


@dataclass(frozen=True)
class MapRequest:
    """One pmap call, its arguments checked: what the machinery runs."""

    fn: Callable[[Any], Any]
    length: int  # the input's length when known, else -1
    backend: str  # "auto" or a canonical backend name
    workers: int | None
    chunksize: int | None
    ordered: bool
    deadline: float | None  # time.monotonic() by which the whole map must end
    task_timeout: float | None
    errors: str  # "raise" or "collect"
    explain: bool
    executor: Executor | None


def plan_for(executor: Executor) -> MapPlan:
    """The executor's own plan; for a plain ``concurrent.futures`` pool, batches on its workers.

    A stdlib ``ThreadPoolExecutor``/``ProcessPoolExecutor`` says its size only
    in ``_max_workers`` (the same from 3.2 to 3.14; tests/test_pmap.py checks
    it on every interpreter in CI); any other executor counts as one worker
    per CPU.
    """
    if isinstance(executor, ManycoreExecutor):
        return executor.map_plan()
    size = getattr(executor, "_max_workers", None)
    workers = size if isinstance(size, int) and size > 0 else available_cpus()
    # The stdlib's pools mark a future running when its call starts (the
    # process pool: when the call goes to its call queue, a worker free).
    stdlib = isinstance(executor, (ThreadPoolExecutor, ProcessPoolExecutor))
    return MapPlan(workers=workers, timed_from_start=stdlib)


def run_map(request: MapRequest, source: Input, state: RunState) -> Iterator[list[Any]]:
    """The results of ``request``, batch by batch; see the module docstring for the phases."""
    decision, probed = _choose(request, source)
    if request.explain:
        print(decision.explain(), file=sys.stderr)
    if _stream_serially(request, decision, source, probed, state):
        return
    # Ordered output buffers results that overtake a slow item; stop handing
    # out work while that buffer is full, so memory stays bounded.
    backlog = Backlog(limit=max(16, decision.workers * decision.chunksize))
    batches = dispatch(request, source, decision, probed, backlog.has_room)
    yield from deliver(batches, request.ordered, request.errors, backlog)
    if source.error is not None:
        raise source.error


def _choose(request: MapRequest, source: Input) -> tuple[Decision, Batch | None]:
    """Phase 1: the backend, worker count and chunk size (and the items a probe already ran)."""
    chunk = request.chunksize
    if request.executor is not None:
        n = plan_for(request.executor).workers
        name = getattr(request.executor, "backend_name", type(request.executor).__name__)
        return Decision(name, chunk or default_chunk(request.length, n), n, "explicit executor"), None
    if request.backend == "auto":
        return decide(
            request.fn,
            source,
            request.length,
            request.workers,
            chunk,
            task_timeout=request.task_timeout,
            deadline=request.deadline,
        )
    n = request.workers or (1 if request.backend == "serial" else available_cpus())
    return Decision(request.backend, chunk or default_chunk(request.length, n), n, "requested"), None


def _stream_serially(
    request: MapRequest, decision: Decision, source: Input, probed: Batch | None, state: RunState
) -> bool:
    """Phase 2: a serial map that nothing watches hands the consumer one C-level stream."""
    serial_batch = request.chunksize or 1024  # serial runs read ahead only what was asked for
    streamable = (
        state.may_stream
        and request.deadline is None
        and request.task_timeout is None
        and serial_batch >= 1024
    )
    if request.executor is not None or decision.backend != "serial" or not streamable:
        return False
    state.serial_map = _serial_stream(request.fn, source, probed, request.errors)
    if state.serial_map is None:
        return False
    # the consumer iterates the stream itself, after the probe's results
    state.stream = itertools.chain(probed[1], state.serial_map) if probed else state.serial_map
    return True


def dispatch(
    request: MapRequest,
    source: Input,
    decision: Decision,
    probed: Batch | None,
    may_dispatch: Callable[[], bool],
) -> Iterator[Batch]:
    """Phase 3: run the items, batch by batch, where the decision says."""
    fn, deadline = request.fn, request.deadline
    if request.executor is None and decision.backend == "serial":
        if request.task_timeout is not None:
            yield from _run_serial_bounded(fn, source, request.task_timeout, deadline, probed)
        else:
            yield from _run_serial(fn, source, deadline, request.chunksize or 1024, probed)
        return
    if probed is not None:
        yield probed
    expected = request.length - source.position if request.length > 0 else -1  # left after a probe
    if request.executor is None and decision.backend == "processes":
        yield from _on_engine(
            _private_engine(decision.workers), request, source, decision, may_dispatch, expected
        )
        return
    executor = (
        request.executor or decision.warm or get_executor(decision.backend, max_workers=decision.workers)
    )
    plan = plan_for(executor)
    try:
        if plan.engine is not None:  # the executor's engine, or a private one while it is busy
            yield from _on_engine(plan.engine(), request, source, decision, may_dispatch, expected)
        else:
            yield from _run_executor(request, source, executor, decision, plan, may_dispatch)
    finally:
        if request.executor is None:
            executor.shutdown(wait=False, cancel_futures=True)


def _on_engine(
    scope: contextlib.AbstractContextManager[Any],
    request: MapRequest,
    source: Input,
    decision: Decision,
    may_dispatch: Callable[[], bool],
    expected: int,
) -> Iterator[Batch]:
    with scope as engine:
        yield from engine.run(
            request.fn,
            source,
            chunksize=decision.chunksize,
            task_timeout=request.task_timeout,
            deadline=request.deadline,
            may_dispatch=may_dispatch,
            expected_items=expected,
        )


@contextlib.contextmanager
def _private_engine(workers: int) -> Iterator[Any]:
    """A process engine for one map, closed (its workers stopped) when the map ends."""
    from .._workers.engine import ProcessEngine

    engine = ProcessEngine(workers=workers, inner_threads=max(1, available_cpus() // workers))
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
    rest = source.take_rest()
    if rest is None:
        return None
    indexes, items = rest
    on_error = _collect_item if errors == "collect" else _raise_item
    return serial_map(fn, items, indexes.start, on_error)


def _raise_item(index: int, exc: Exception) -> Any:
    raise_failure(index, exc, "")


def _collect_item(index: int, exc: Exception) -> TaskError:
    return TaskError(index, exc, format_exception(exc))


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
            raise TimeoutError(MAP_TIMEOUT_MESSAGE)
        indexes, items = source.take(size)
        if items:
            values, failures = run_chunk(fn, items)
            yield indexes, values, failures


def _run_serial_bounded(
    fn: Callable[[Any], Any], source: Input, task_timeout: float, deadline: float | None, probed: Batch | None
) -> Iterator[Batch]:
    """Serial with ``task_timeout``: one item at a time on a helper thread (see :mod:`.bounded`)."""
    if probed is not None:
        yield probed
    helper = Helper("manycore-serial-item")
    try:
        while not source.done:
            indexes, items = source.take(1)
            if items:
                values, failures, _, _, _ = run_one(fn, items[0], indexes[0], task_timeout, deadline, helper)
                yield indexes, values, failures
    finally:
        helper.close()


def _run_executor(
    request: MapRequest,
    source: Input,
    executor: Executor,
    decision: Decision,
    plan: MapPlan,
    may_dispatch: Callable[[], bool],
) -> Iterator[Batch]:
    """Batches (or single items) as futures on ``executor``, at most a few per worker in flight."""
    per_item = plan.one_by_one or request.task_timeout is not None
    flight = _Flight(request, executor, decision, per_item, plan.abandon, plan.timed_from_start)
    try:
        while True:
            flight.fill(source, may_dispatch)
            if not flight.futures:
                return
            yield from flight.finished()
            yield from flight.overran()
    finally:
        flight.cancel_all()


class _Flight:
    """The futures of one map in flight on an executor: submit, collect, time out."""

    def __init__(
        self,
        request: MapRequest,
        executor: Executor,
        decision: Decision,
        per_item: bool,
        abandon: Callable[[Future[Any], str], None] | None,
        timed_from_start: bool = False,
    ) -> None:
        self.request = request
        self.abandon = abandon
        self.executor = executor
        self.backend = decision.backend
        self.per_item = per_item
        self.chunksize = 1 if per_item else decision.chunksize
        self.limit = decision.workers if request.task_timeout is not None else 2 * decision.workers
        self.timed_from_start = timed_from_start
        # future -> [its indexes, when its task_timeout clock starts, whether it started]
        self.futures: dict[Future[Any], list[Any]] = {}

    def fill(self, source: Input, may_dispatch: Callable[[], bool]) -> None:
        fn = self.request.fn
        while not source.done and len(self.futures) < self.limit and (not self.futures or may_dispatch()):
            indexes, items = source.take(self.chunksize)
            if not items:
                break
            if self.per_item:
                future = self.executor.submit(fn, items[0])
            else:
                future = self.executor.submit(run_chunk, fn, items, with_traceback_text=True)
            self.futures[future] = [indexes, time.monotonic(), not self.timed_from_start]

    def finished(self) -> Iterator[Batch]:
        """Wait for the first future to finish (or the next timeout check) and yield what is done."""
        deadline, task_timeout = self.request.deadline, self.request.task_timeout
        wait_s = SIGNAL_SLICE_S  # never one long lock wait: Ctrl-C is seen within a slice
        if deadline is not None:
            wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
        if task_timeout is not None:
            wait_s = min(wait_s, 0.05)
        done, _ = wait(list(self.futures), timeout=wait_s, return_when=FIRST_COMPLETED)
        for future in done:
            indexes = self.futures.pop(future)[0]
            yield _future_batch(future, indexes, self.per_item)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(MAP_TIMEOUT_MESSAGE)

    def overran(self) -> Iterator[Batch]:
        """Items past ``task_timeout`` fail with ``TimeoutError``; their calls are abandoned."""
        task_timeout = self.request.task_timeout
        if task_timeout is None:
            return
        now = time.monotonic()
        for future, entry in list(self.futures.items()):
            indexes, since, started = entry
            if not started:
                # The clock starts when the call does: until its future turns
                # running, ``since`` moves on with each check (so it is the
                # last moment the call was seen not started, at most one
                # check, 50 ms, before it started: never later).
                if future.running() or future.done():
                    entry[2] = True
                else:
                    entry[1] = now
                continue
            if now - since > task_timeout:
                del self.futures[future]
                if not future.cancel() and self.abandon is not None:
                    self.abandon(future, f"item {indexes[0]} of pmap({fn_name(self.request.fn)}, ...)")
                error = TimeoutError(
                    f"item {indexes[0]} exceeded task_timeout={task_timeout:g}s "
                    f"(its {self.backend} worker cannot be killed; it was abandoned)"
                )
                yield indexes, [None], {0: (error, "")}

    def cancel_all(self) -> None:
        for future in self.futures:
            future.cancel()


def _future_batch(future: Future[Any], indexes: range, per_item: bool) -> Batch:
    try:
        value = future.result()
    except BaseException as exc:  # the chunk as a whole failed (pickling, broken pool, ...)
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = format_exception(exc)
        return indexes, [None] * len(indexes), dict.fromkeys(range(len(indexes)), (exc, tb))
    if per_item:
        return indexes, [value], {}
    values, failures = value
    return indexes, values, failures
