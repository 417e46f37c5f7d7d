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

import contextlib
import functools
import os
import pickle
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from . import serialize as _serialize
from ._start import main_script
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

    values: list[Any] | bytes  # bytes: the list pickled on its own (a worker started with packed=True)
    reports: dict[int, FailureReport]  # position -> what its exception was
    wrapped: bool  # some values only cloudpickle could send (see Cloudpickled)


Message = FnMessage | ChunkMessage | StopMessage | ResultMessage
_TYPES: tuple[type[Any], ...] = (FnMessage, ChunkMessage, StopMessage, ResultMessage)
_TAGS = {cls: tag for tag, cls in enumerate(_TYPES)}


def encode(message: Message) -> bytes:
    """A message as it travels: the plain tuple ``(tag, *fields)``, pickled.

    A named tuple pickles as a class reference plus a Python-level call each
    way; a plain tuple of builtins at C speed (measured: 3 us -> 0.5 us).
    """
    return pickle.dumps((_TAGS[type(message)], *message), protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> Any:
    """The message :func:`encode` made."""
    fields = pickle.loads(data)
    return _TYPES[fields[0]]._make(fields[1:])


_HAS_SIGMASK = hasattr(signal, "pthread_sigmask")
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
    main_file = main_script()
    if method in ("forkserver", "spawn") and main_file is not None:
        hint += (
            f" They started with {method} (see manycore._workers: other threads were running), "
            f"which runs the main module {main_file} again in each worker: code that starts "
            'processes there must sit under `if __name__ == "__main__":`'
        )
    return hint


@functools.cache
def preload_owner_watch() -> None:
    """Load the extension that watches a worker's owner (``setup.watch_owner``) here, once.

    A forked worker then inherits it loaded; otherwise every worker would load
    it at start (measured: pmap(processes) of 8 trivial items 10 ms instead of
    7 ms, start and stop included).  Without the extension, nothing to load.
    """
    with contextlib.suppress(ImportError):
        from .. import _native  # noqa: F401


def start_worker(
    ctx: Any, inner_threads: int | None, name: str, *, daemon: bool, **kwargs: Any
) -> tuple[Any, Any]:
    """Start a process running :func:`worker_main` (keyword arguments its own); ``(process, parent end)``."""
    preload_owner_watch()
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=worker_main,
        kwargs=dict(conn=child_conn, inner=inner_threads, owner=os.getpid(), **kwargs),
        name=name,
        daemon=daemon,
    )
    # The child must not get SIGINT before it ignores it (worker_setup): blocked
    # here, the mask is inherited through fork and exec; the child unblocks it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if _HAS_SIGMASK else None
    try:
        with forking(ctx, inner_threads):
            process.start()
    except BaseException as exc:
        parent_conn.close()
        init = kwargs.get("init")
        if init is not None and isinstance(exc, Exception):
            what = init.unpicklable_part()
            if what is not None:
                method = ctx.get_start_method()
                exc.add_note(f"cannot send the {what} to a worker process (start method {method!r})")
        raise
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child_conn.close()  # now: later children must not inherit it, and EOF must reach us when it dies
    return process, parent_conn


#: After SIGTERM (and again after SIGKILL), how long stopping waits for a worker to exit.
ESCALATE_WAIT_S = 5.0


def stop_workers(workers: Sequence[tuple[Any, Any]], grace_s: float) -> None:
    """Stop worker processes ``(process, parent end of its pipe or None)``; every one has exited on return.

    Each gets a :class:`StopMessage` (it exits after its running chunk or
    call); all together get ``grace_s`` seconds; those still alive then get
    SIGTERM, and SIGKILL if that does not end them either.  Their pipes are
    closed; the ``Process`` objects stay readable (``exitcode``, ``pid``).
    """
    for _, conn in workers:
        if conn is not None:
            with contextlib.suppress(OSError):
                send(conn, StopMessage())
    deadline = time.monotonic() + grace_s
    for process, _ in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for how in ("terminate", "kill"):
        alive = [process for process, _ in workers if process.is_alive()]
        for process in alive:
            getattr(process, how)()
        deadline = time.monotonic() + ESCALATE_WAIT_S
        for process in alive:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
    for _, conn in workers:
        if conn is not None:
            conn.close()


class Cloudpickled:
    """A value only cloudpickle could serialise; unwrapped by the parent."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def portable_value(value: Any, what: str, as_raised: bool = False) -> tuple[bool, Any]:
    """``(True, value)`` if it pickles, or a cloudpickled wrapper if only cloudpickle can; else ``(False, error)``.

    The error: a ``PicklingError`` naming ``what``; with ``as_raised``, the
    pickler's own exception with a note (as the stdlib's pool reports it).
    """
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return True, value
    except Exception:
        pass
    try:
        return True, Cloudpickled(_serialize.dumps(value))
    except Exception as exc:
        if as_raised:
            exc.add_note(f"cannot send the {what} back to the parent process")
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
    """Parent side: the batch a pickled :class:`ResultMessage` for ``indexes`` carries (see :func:`unpack`)."""
    try:
        reply: ResultMessage = decode(data)
    except Exception as exc:
        return _all_failed(exc, indexes)
    return unpack(reply, indexes)


def unpack(reply: ResultMessage, indexes: Sequence[int]) -> Batch:
    """Parent side: the batch of ``reply``, a result for ``indexes``.

    Values only cloudpickle could send are unwrapped; what cannot be rebuilt
    here (say, a value of a class only the worker has) fails its item.
    """
    try:
        values = pickle.loads(reply.values) if isinstance(reply.values, bytes) else reply.values
        failures: Failures = {pos: (r.exception(), r.tb_text) for pos, r in reply.reports.items()}
    except Exception as exc:
        return _all_failed(exc, indexes)
    if reply.wrapped:
        for pos, value in enumerate(values):
            if isinstance(value, Cloudpickled):
                try:
                    values[pos] = pickle.loads(value.data)
                except Exception as error:
                    values[pos] = None
                    failures[pos] = (unpicklable_reply(error, [indexes[pos]]), "")
    return indexes, values, failures


def _all_failed(exc: Exception, indexes: Sequence[int]) -> Batch:
    error = unpicklable_reply(exc, indexes)
    return indexes, [None] * len(indexes), dict.fromkeys(range(len(indexes)), (error, ""))


def send(conn: Any, message: Message) -> None:
    conn.send_bytes(encode(message))


def send_chunk_result(
    conn: Any,
    values: list[Any],
    failures: Failures,
    indexes: Sequence[int],
    as_raised: bool = False,
    packed: bool = False,
) -> None:
    """Results as they are, failures as :class:`FailureReport` s (which always pickle).

    ``packed``: the values go as one pickle of their own, which a parent can
    forward to the next worker as a chunk's payload without unpickling them.
    ``as_raised``: a value that cannot be pickled fails with the pickler's own
    exception (else a ``PicklingError`` naming its item).
    """
    reports = {pos: FailureReport.of(exc, tb) for pos, (exc, tb) in failures.items()}
    try:
        if packed:
            send(conn, ResultMessage(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL), reports, False))
        else:
            send(conn, ResultMessage(values, reports, False))
        return
    except Exception:
        pass
    # some value does not pickle: find it, name its item, send the rest
    for pos, value in enumerate(values):
        if pos in reports:
            continue
        what = "result" if as_raised else f"result of item {indexes[pos]}"
        ok, portable = portable_value(value, what, as_raised)
        if ok:
            values[pos] = portable
        else:
            reports[pos] = FailureReport.of(portable, "")
            values[pos] = None
    send(conn, ResultMessage(values, reports, True))


def _load_failed(conn: Any, message: ChunkMessage, exc: BaseException, calls: bool) -> None:
    """The chunk could not be unpickled here: its items fail, this worker goes on."""
    what = "the call" if calls else "the function or the item(s)"
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
    packed: bool = False,
    owner: int | None = None,
) -> None:
    """Body of every worker process manycore starts.

    ``slot_state``/``slot_start`` (shared arrays, pmap's engine): where this
    worker writes the position (and start time) of the item it runs.
    ``calls``: a pool worker (its items are calls; its BLAS/OpenMP pools are
    limited at once).  ``max_tasks``: exit after that many chunks.
    ``owner``: the starting process's pid; this worker ends itself soon after
    that process dies (``setup.watch_owner``), whatever it is doing.
    ``packed``: results go packed (see :func:`send_chunk_result`).  A
    function that cannot be unpickled here fails every item sent to it.
    """
    worker_setup(init, inner, limit_now=calls, owner=owner)
    state = slot_state if slot_state is not None else [IDLE]
    starts = slot_start if slot_start is not None else [0.0]
    unlimited = inner is not None and not calls  # BLAS/OpenMP pools not limited yet (see limit_inner_threads)
    fn: Callable[[Any], Any] | None = call if calls else None
    fn_error: BaseException | None = None
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = decode(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if isinstance(message, StopMessage):
            return
        if isinstance(message, FnMessage):
            try:
                fn, fn_error = _serialize.loads(message.fn), None
            except BaseException as exc:  # also SystemExit raised by a __setstate__
                fn, fn_error = None, exc
            continue
        assert isinstance(message, ChunkMessage), type(message)
        done += 1
        indexes, careful, timed = message.indexes, message.careful, message.timed
        try:
            if fn_error is not None:
                raise fn_error
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
            send_chunk_result(conn, values, failures, indexes, calls or packed, packed)
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
            send_chunk_result(conn, values, failures, [indexes[pos]], calls or packed, packed)
            if unlimited and time.monotonic() - started >= LIMIT_INNER_AFTER_S:
                assert inner is not None
                limit_inner_threads(inner)
                unlimited = False
