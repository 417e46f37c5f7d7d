"""What manycore's worker processes and their parents say to each other, and the worker's body.

One protocol for every process manycore starts: pmap's engine
(:mod:`manycore._workers.engine`) and ``ProcessExecutor``'s pool
(:mod:`manycore._workers.pool`).  Each worker owns one duplex pipe; the
parent sends it

* :class:`FnMessage`: the function the next chunks run (once per map);
* :class:`ChunkMessage`: items to run, pickled (big buffers in shared memory);
* :class:`StopMessage`: exit;

and the worker answers each chunk (or, for a careful chunk, each item) with
a :class:`ResultMessage`: the values, and a
:class:`~manycore._workers.report.FailureReport` for every item that raised.
A pool's worker runs *calls*: its function is :func:`call`, each item a
``(fn, args, kwargs)`` triple.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from . import serialize as _serialize
from .batches import Batch, Failures, run_chunk
from .report import FailureReport
from .setup import WorkerInit, forking, limit_inner_threads, worker_setup


class FnMessage(NamedTuple):
    """Parent -> worker: the function the next chunks run (sent once per map and worker)."""

    fn: bytes  # serialize.dumps(fn)


class ChunkMessage(NamedTuple):
    """Parent -> worker: items to run, pickled (big buffers in shared-memory ``segments``)."""

    payload: bytes
    segments: list[Any]
    indexes: Sequence[int]
    careful: bool  # one item at a time, its position in the shared slot, each result sent at once
    timed: bool  # also its start time (task_timeout)


class StopMessage(NamedTuple):
    """Parent -> worker: exit."""


class ResultMessage(NamedTuple):
    """Worker -> parent: the results of a chunk (or of one item of a careful chunk)."""

    values: list[Any]
    reports: dict[int, FailureReport]  # position -> what its exception was
    wrapped: bool  # some values only cloudpickle could send (see Cloudpickled)


IDLE, FAST = -1, -2  # a worker's slot values besides an item position
#: A worker limits its BLAS/OpenMP pools after the first chunk (or item) that
#: ran this long: short maps never pay the cost (see limit_inner_threads).
LIMIT_INNER_AFTER_S = 0.1


def call(triple: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> Any:
    """A pool worker's function: each of its items is one ``submit(fn, *args, **kwargs)``."""
    fn, args, kwargs = triple
    return fn(*args, **kwargs)


def startup_hint(method: str) -> str:
    """What usually kills workers before their first item, for the start method they had."""
    hint = "is the initializer failing?"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if method in ("forkserver", "spawn") and main_file is not None:
        hint += (
            f" They started with {method} (see manycore._workers: other threads were running), "
            f"which runs the main module {main_file} again in each worker: code that starts "
            'processes there must sit under `if __name__ == "__main__":`'
        )
    return hint


def start_worker(
    ctx: Any, inner_threads: int | None, name: str, *, daemon: bool, **kwargs: Any
) -> tuple[Any, Any]:
    """Start a process running :func:`worker_main` (keyword arguments its own); ``(process, parent end)``."""
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=worker_main,
        kwargs=dict(conn=child_conn, inner=inner_threads, **kwargs),
        name=name,
        daemon=daemon,
    )
    try:
        with forking(ctx, inner_threads):
            process.start()
    except BaseException:
        parent_conn.close()
        raise
    finally:
        child_conn.close()
    return process, parent_conn


class Cloudpickled:
    """A value only cloudpickle could serialise; unwrapped by the parent."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def portable_value(value: Any, what: str, calls: bool = False) -> tuple[bool, Any]:
    """``(True, value)`` if it pickles, or a cloudpickled wrapper if only cloudpickle can; else ``(False, error)``.

    The error: a ``PicklingError`` naming ``what``; for a pool's call
    (``calls``), the pickler's own exception, as the stdlib's pool reports it.
    """
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return True, value
    except Exception:
        pass
    try:
        return True, Cloudpickled(_serialize.dumps(value))
    except Exception as exc:
        if calls:
            exc.add_note("cannot send the call's result back to the parent process")
            return False, exc
        return False, pickle.PicklingError(f"the {what} could not be pickled: {exc}")


def unpicklable_reply(exc: BaseException, indexes: Sequence[int]) -> pickle.UnpicklingError:
    """What items fail with when their results or exceptions pickled in the worker but cannot be loaded here."""
    items = f"item {indexes[0]}" if len(indexes) == 1 else f"items {indexes[0]}-{indexes[-1]}"
    error = pickle.UnpicklingError(
        f"the result or exception of {items} could not be unpickled in the parent process: "
        f"{type(exc).__name__}: {exc}"
    )
    # Without its traceback: the parent's frames would keep the workers (and
    # their pipes) alive for as long as the caller keeps the error.
    error.__cause__ = exc.with_traceback(None)
    return error


def received(data: bytes, indexes: Sequence[int]) -> Batch:
    """Parent side: the batch a :class:`ResultMessage` for ``indexes`` carries.

    Values only cloudpickle could send are unwrapped; what cannot be rebuilt
    here (say, a value of a class only the worker has) fails its item.
    """
    try:
        reply: ResultMessage = pickle.loads(data)
        values = reply.values
        failures: Failures = {pos: (r.exception(), r.tb_text) for pos, r in reply.reports.items()}
    except Exception as exc:
        error = unpicklable_reply(exc, indexes)
        return indexes, [None] * len(indexes), dict.fromkeys(range(len(indexes)), (error, ""))
    if reply.wrapped:
        for pos, value in enumerate(values):
            if isinstance(value, Cloudpickled):
                try:
                    values[pos] = pickle.loads(value.data)
                except Exception as error:
                    values[pos] = None
                    failures[pos] = (unpicklable_reply(error, [indexes[pos]]), "")
    return indexes, values, failures


def send(conn: Any, message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def send_chunk_result(
    conn: Any, values: list[Any], failures: Failures, indexes: Sequence[int], calls: bool = False
) -> None:
    """Results as they are, failures as :class:`FailureReport` s (which always pickle)."""
    reports = {pos: FailureReport.of(exc, tb) for pos, (exc, tb) in failures.items()}
    try:
        send(conn, ResultMessage(values, reports, False))
        return
    except Exception:
        pass
    # some value does not pickle: find it, name its item, send the rest
    for pos, value in enumerate(values):
        if pos in reports:
            continue
        ok, portable = portable_value(value, f"result of item {indexes[pos]}", calls)
        if ok:
            values[pos] = portable
        else:
            reports[pos] = FailureReport.of(portable, "")
            values[pos] = None
    send(conn, ResultMessage(values, reports, True))


def _load_failed(conn: Any, message: ChunkMessage, exc: BaseException, calls: bool) -> None:
    """The chunk could not be unpickled here: its items fail, this worker goes on."""
    what = "the call" if calls else "the item(s)"
    text = f"{what} could not be unpickled in the worker process ({type(exc).__name__}: {exc})"
    # a pool's call fails as the stdlib's does (BrokenProcessPool), but only that call
    error: Exception = (
        BrokenProcessPool(f"{text}; the pool is still usable") if calls else pickle.UnpicklingError(text)
    )
    report = FailureReport.of(error, "")
    n = len(message.indexes)
    if message.careful:  # the parent expects one reply per item
        for _ in range(n):
            send(conn, ResultMessage([None], {0: report}, False))
    else:
        send(conn, ResultMessage([None] * n, dict.fromkeys(range(n), report), False))


def worker_main(
    conn: Any,
    inner: int | None,
    init: WorkerInit | None = None,
    slot: int = 0,
    slot_state: Any = None,
    slot_start: Any = None,
    *,
    calls: bool = False,
    max_tasks: int | None = None,
) -> None:
    """Body of every worker process manycore starts.

    ``slot_state``/``slot_start`` (shared arrays, pmap's engine): where this
    worker writes the position (and start time) of the item it runs.
    ``calls``: a pool worker (its items are calls; its BLAS/OpenMP pools are
    limited at once).  ``max_tasks``: exit after that many chunks.
    """
    worker_setup(init, inner, limit_now=calls)
    state = slot_state if slot_state is not None else [IDLE]
    starts = slot_start if slot_start is not None else [0.0]
    unlimited = inner is not None and not calls  # BLAS/OpenMP pools not limited yet (see limit_inner_threads)
    fn: Callable[[Any], Any] | None = call if calls else None
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if isinstance(message, StopMessage):
            return
        if isinstance(message, FnMessage):
            fn = _serialize.loads(message.fn)
            continue
        assert isinstance(message, ChunkMessage), type(message)
        done += 1
        indexes, careful, timed = message.indexes, message.careful, message.timed
        try:
            items = _serialize.loads_shared(message.payload, message.segments)
        except BaseException as exc:  # also SystemExit raised by a __setstate__
            _load_failed(conn, message, exc, calls)
            continue
        assert fn is not None
        if not careful:
            # Fast path: the whole chunk in C-level map; if this worker dies
            # now the parent re-runs the chunk carefully to find the item.
            state[slot] = FAST
            started = time.monotonic()
            values, failures = run_chunk(fn, items, catch=BaseException, with_traceback_text=True)
            state[slot] = IDLE
            send_chunk_result(conn, values, failures, indexes, calls)
            if unlimited and time.monotonic() - started >= LIMIT_INNER_AFTER_S:
                assert inner is not None
                limit_inner_threads(inner)
                unlimited = False
            continue
        # Careful path (task_timeout, or a re-run after a crash): one item at
        # a time, position (and start time) in the shared slot, each result
        # sent as soon as it exists.
        for pos, item in enumerate(items):
            if timed:
                # start time first: a parent that sees the new position must
                # not pair it with the previous item's start time
                starts[slot] = time.monotonic()
            state[slot] = pos
            started = time.monotonic()
            values, failures = run_chunk(fn, (item,), catch=BaseException, with_traceback_text=True)
            state[slot] = IDLE
            send_chunk_result(conn, values, failures, [indexes[pos]], calls)
            if unlimited and time.monotonic() - started >= LIMIT_INNER_AFTER_S:
                assert inner is not None
                limit_inner_threads(inner)
                unlimited = False
