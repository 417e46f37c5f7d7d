"""Pipeline: stages of workers (threads or processes) connected by bounded buffers.

>>> p = Pipeline(parse, workers=2).then(score, workers=4, kind="process").then(str)
>>> with p.run(lines, ordered=True, maxsize=32) as results:   # doctest: +SKIP
...     for r in results:
...         print(r)

What a run guarantees
    * **Every item exactly once.**  Each item taken from ``source`` passes
      through every stage once (``fn(item)`` is called once per stage) and is
      yielded once, unless the run stops early (error, ``close()``, Ctrl-C).
      Each stage maps one item to one result.
    * **Order.**  ``ordered=True`` (the default) yields results in source
      order; ``ordered=False`` yields each result as soon as the last stage
      produces it.
    * **Backpressure.**  At most ``maxsize`` items are *in flight*: taken from
      the source but not yet yielded to the caller (whether they sit in a
      buffer, in a worker, or in the reorder buffer of an ordered run).  The
      source is asked for its next item only when fewer than ``maxsize`` are
      in flight, so a slow stage or a slow caller slows the producer instead
      of growing memory; every buffer between stages therefore holds at most
      ``maxsize`` items.  Default ``maxsize``: twice the total number of
      workers, at least 4.  An ordered run needs the oldest item to progress:
      a slow item can hold up to ``maxsize - 1`` finished ones.
    * **Clean shutdown.**  When the source is exhausted, sentinels flow down
      the stages; each worker exits after its stage has seen them; process
      workers are joined.  The iterator then raises ``StopIteration``.
    * **Errors.**  The first exception raised by a stage function or by the
      source stops the whole run: no new item is taken from the source,
      buffered items are dropped, idle workers exit, and the exception is
      re-raised from the iterator once all workers have stopped.  From a
      thread stage it is the original exception object, with its traceback.
      From a process stage it is the original exception (unpickled), with the
      worker-side traceback text attached as ``__cause__``
      (``RemoteTraceback``, as ``concurrent.futures`` does); if it cannot be
      pickled, a ``RemoteError`` naming its type.  A ``StopIteration`` from a
      stage becomes a ``RuntimeError`` (as in generators, PEP 479), so that it
      cannot pass for the end of the results.  On Python 3.11+ a note
      names the stage and the item's position.  A process worker that dies
      without answering (crash, ``os._exit``, signal) raises ``WorkerDied``.
    * **Stopping early.**  ``close()``, leaving the ``with`` block, breaking
      out of the ``for`` loop (the iterator is then garbage-collected, which
      closes it), an exception in the caller or Ctrl-C (``KeyboardInterrupt``
      while the caller waits for the next result) all stop the run the same
      way and return only when every worker thread has exited and every
      worker process has been joined.  Calls already running in *thread*
      stages are waited for (Python cannot interrupt a thread); a call running
      in a *process* stage gets ``PROCESS_STOP_GRACE_S`` seconds to finish,
      then its process is terminated.  A ``next()`` call on the source that is
      already running is waited for.  If the run stops before the source is
      exhausted and the source has a ``close()`` method (a generator), it is
      called, so the generator's ``finally`` blocks run.

Threads or processes
    ``kind="thread"`` runs ``fn`` in threads of this process: right for I/O
    and for functions that release the GIL (NumPy, the native kernels).
    ``kind="process"`` runs it in worker processes, one per worker, each fed
    through its own ``Pipe`` by a thread of this process.  Functions, items
    and results must be picklable: ``fn`` must be a module-level function (or
    a ``functools.partial`` of one), checked when the stage is created, so a
    pipeline that works under ``fork`` also works under ``spawn`` and
    ``forkserver``.  Between two process stages, results are forwarded as
    pickled bytes without being unpickled in this process.  Worker processes
    ignore SIGINT (Ctrl-C is handled once, here) and are daemonic, so a
    process stage cannot start processes of its own.  Pass ``mp_context`` to
    ``run`` to choose the start method.  Worker processes are started before
    the run's own threads, and the default ``fork`` is used only while no
    other thread of your program runs Python (a lock one of them held would
    be copied held): otherwise they start with ``forkserver``.  A context you
    pass is used as given.

A run is an iterator for one consuming thread; ``close()`` may be called from
any thread.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import multiprocessing.connection
import pickle
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from .._workers import serialize as _serialize
from .._workers.protocol import (
    ChunkMessage,
    FnMessage,
    ResultMessage,
    decode,
    received,
    send,
    start_worker,
    stop_workers,
    unpack,
)
from ..errors import Closed, RemoteError, RemoteTraceback, WorkerDied, describe_exit
from ._checks import check_int
from ._mp import context
from .buffer import BoundedBuffer

__all__ = [
    "PROCESS_STOP_GRACE_S",
    "Pipeline",
    "PipelineRun",
    "RemoteError",
    "RemoteTraceback",
    "Stage",
    "WorkerDied",
]

InT = TypeVar("InT")
OutT = TypeVar("OutT")
NewT = TypeVar("NewT")
T = TypeVar("T")

Kind = Literal["thread", "process"]

#: Seconds a process worker busy with an item may take to finish it when the
#: run stops early, before it is terminated.
PROCESS_STOP_GRACE_S = 1.0

_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
_run_ids = itertools.count(1)


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_SENTINEL = _Marker("<end of stage input>")
_END = _Marker("<end of output>")


@dataclass(frozen=True)
class Stage:
    """One stage: ``fn`` applied to every item by ``workers`` threads or processes.

    ``name`` defaults to ``fn.__name__`` (of the wrapped function for a ``functools.partial``).  For ``kind="process"``, ``fn`` must
    be picklable (a module-level function or a ``functools.partial`` of one);
    otherwise ``TypeError`` is raised here rather than in a worker.
    """

    fn: Callable[[Any], Any]
    workers: int = 1
    kind: Kind = "thread"
    name: str = ""
    _fn_bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"stage function must be callable, not {type(self.fn).__name__}")
        check_int(self.workers, "workers", minimum=1)
        if self.kind not in ("thread", "process"):
            raise ValueError(f"kind must be 'thread' or 'process', got {self.kind!r}")
        if not self.name:
            inner = self.fn
            while isinstance(inner, functools.partial):
                inner = inner.func
            object.__setattr__(self, "name", getattr(inner, "__name__", type(inner).__name__))
        if self.kind == "process":
            try:
                fn_bytes = pickle.dumps(self.fn, _PICKLE_PROTOCOL)
            except Exception as e:
                raise TypeError(
                    f"a process stage needs a picklable function (module-level def or functools.partial "
                    f"of one), so that it works under every start method; {self.fn!r} is not: {e}"
                ) from e
            object.__setattr__(self, "_fn_bytes", fn_bytes)


class Pipeline(Generic[InT, OutT]):
    """A chain of stages; ``InT`` is what the source yields, ``OutT`` what the run yields.

    ``Pipeline(fn, ...)`` makes a one-stage pipeline; ``.then(fn, ...)`` returns
    a new pipeline with one more stage (pipelines are immutable and reusable:
    each ``run`` starts its own workers).  See the module docstring for what a
    run guarantees.
    """

    _stages: tuple[Stage, ...]

    def __init__(
        self, fn: Callable[[InT], OutT], *, workers: int = 1, kind: Kind = "thread", name: str = ""
    ) -> None:
        self._stages = (Stage(fn, workers, kind, name),)

    @classmethod
    def from_stages(cls, stages: Iterable[Stage]) -> Pipeline[Any, Any]:
        """A pipeline from prepared ``Stage`` objects (at least one)."""
        stages = tuple(stages)
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"expected Stage, got {type(s).__name__}")
        p: Pipeline[Any, Any] = Pipeline.__new__(Pipeline)
        p._stages = stages
        return p

    def then(
        self, fn: Callable[[OutT], NewT], *, workers: int = 1, kind: Kind = "thread", name: str = ""
    ) -> Pipeline[InT, NewT]:
        """A new pipeline: this one followed by a stage applying ``fn``."""
        p: Pipeline[InT, NewT] = Pipeline.__new__(Pipeline)
        p._stages = (*self._stages, Stage(fn, workers, kind, name))
        return p

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages, first to last."""
        return self._stages

    def run(
        self,
        source: Iterable[InT],
        *,
        ordered: bool = True,
        maxsize: int | None = None,
        mp_context: BaseContext | None = None,
    ) -> PipelineRun[OutT]:
        """Start workers and return the iterator of results.

        The source is consumed by a feeder thread from this moment, ``maxsize``
        items ahead of the caller at most.  Raises ``ValueError`` for a
        ``maxsize`` below 1.  Use as ``with pipeline.run(src) as results:`` or
        ``for r in pipeline.run(src):``.
        """
        if maxsize is None:
            maxsize = max(4, 2 * sum(s.workers for s in self._stages))
        state = _RunState(self._stages, check_int(maxsize, "maxsize", minimum=1), mp_context)
        state.start(iter(source))
        return PipelineRun(state, ordered)

    def __repr__(self) -> str:
        plural = {"thread": "threads", "process": "processes"}
        parts = [f"{s.name}[{s.workers} {plural[s.kind] if s.workers > 1 else s.kind}]" for s in self._stages]
        return f"<Pipeline {' -> '.join(parts)}>"


class _Pickled:
    """A result still pickled, as its worker packed it (a one-item list): the next process stage's payload."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def load(self) -> Any:
        return pickle.loads(self.data)[0]


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        with contextlib.suppress(Exception):
            add_note(note)


class _RunState:
    """Everything the worker threads of one run share.  Deliberately holds no
    reference to the ``PipelineRun`` handle, so that dropping the handle
    (``break`` out of a ``for`` loop) lets it be collected and closes the run."""

    def __init__(self, stages: tuple[Stage, ...], maxsize: int, mp_context: BaseContext | None) -> None:
        self.stages = stages
        self.maxsize = maxsize
        self.run_id = next(_run_ids)
        # Input buffer of each stage, then the output buffer.  In-flight items
        # never exceed maxsize, so with room for the sentinels no put blocks.
        self.buffers: list[BoundedBuffer[Any]] = [BoundedBuffer(maxsize + s.workers) for s in stages]
        self.buffers.append(BoundedBuffer(maxsize + 1))
        self.admit = threading.Semaphore(maxsize)
        self.lock = threading.Lock()
        self.stopped = False
        self.error: BaseException | None = None
        self.done_counts = [0] * len(stages)
        self.threads: list[threading.Thread] = []
        self.feeder: threading.Thread | None = None
        self.procs: list[Any] = []
        self.items_in = 0
        self.closed = False
        self.ctx: BaseContext | None = None
        self.wakeup_r: Any = None
        self.wakeup_w: Any = None
        if any(s.kind == "process" for s in stages):
            self.ctx = context(mp_context)  # fork only while no other thread runs Python
            # Written once on stop and never read: stays readable, so every
            # process-stage thread waiting for a result wakes up.
            self.wakeup_r, self.wakeup_w = self.ctx.Pipe(duplex=False)

    # -- lifecycle ---------------------------------------------------------

    def start(self, source: Iterator[Any]) -> None:
        workers: list[tuple[Any, Any]] = []
        try:
            workers = self._start_processes()
            for i, stage in enumerate(self.stages):
                for w in range(stage.workers):
                    name = f"manycore-pipeline-{self.run_id}-{stage.name}-{w}"
                    if stage.kind == "thread":
                        t = threading.Thread(target=_thread_worker, args=(self, i), name=name, daemon=True)
                    else:
                        proc, conn = workers.pop(0)
                        t = threading.Thread(
                            target=_process_worker, args=(self, i, proc, conn), name=name, daemon=True
                        )
                    self.threads.append(t)
                    t.start()
            self.feeder = threading.Thread(
                target=_feed, args=(self, source), name=f"manycore-pipeline-{self.run_id}-feeder", daemon=True
            )
            self.feeder.start()
        except BaseException:
            self.close()
            for proc, conn in workers:  # processes whose feeding thread never started
                _stop_child(proc, conn, 0.0)
            raise

    def _start_processes(self) -> list[tuple[Any, Any]]:
        """Start every worker process before any thread (fork copies only the calling thread)."""
        started: list[tuple[Any, Any]] = []
        if self.ctx is None:
            return started
        ctx = self.ctx
        try:
            for stage in self.stages:
                if stage.kind != "process":
                    continue
                for w in range(stage.workers):
                    # results packed: between process stages they travel without being unpickled here
                    proc, conn = start_worker(
                        ctx,
                        None,
                        f"manycore-pipeline-{self.run_id}-{stage.name}-{w}",
                        daemon=True,
                        packed=True,
                    )
                    started.append((proc, conn))
                    self.procs.append(proc)
        except BaseException:
            for proc, conn in started:
                _stop_child(proc, conn, 0.0)
            raise
        return started

    def stop(self) -> None:
        """Stop taking items, drop buffered ones, wake every waiting thread.  Idempotent, non-blocking."""
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
        self.admit.release()  # the feeder may be waiting for a slot
        for b in self.buffers:
            b.close(immediate=True)
        if self.wakeup_w is not None:
            with contextlib.suppress(OSError):
                self.wakeup_w.send_bytes(b"!")

    def fail(self, exc: BaseException) -> None:
        """Record the first error and stop the run."""
        if isinstance(exc, StopIteration):
            # Re-raised from __next__ it would read as a normal end (the PEP 479 trap).
            wrapped = RuntimeError(f"a pipeline stage raised StopIteration: {exc!r}")
            wrapped.__cause__ = exc
            for note in getattr(exc, "__notes__", ()):
                _add_note(wrapped, note)
            exc = wrapped
        with self.lock:
            if self.error is None and not self.stopped:
                self.error = exc
        self.stop()

    def close(self) -> None:
        """Stop and wait for every worker thread and process.  Idempotent."""
        self.stop()
        me = threading.current_thread()
        for t in [self.feeder, *self.threads]:
            if t is not None and t is not me and t.ident is not None:
                t.join()
        with self.lock:
            if self.closed:
                return
            self.closed = True
        in_run_thread = me is self.feeder or me in self.threads
        for proc in self.procs:  # normally already joined by their threads
            if proc.pid is not None and proc.is_alive():
                _stop_child(proc, None, 0.0)
            # Release the process's pipes now, not when the Process object is
            # collected (a caller keeping the run's exception keeps the run);
            # not from a run thread, whose own process may still be in use.
            if not in_run_thread:
                with contextlib.suppress(ValueError):
                    proc.close()
        for conn in (self.wakeup_r, self.wakeup_w):
            if conn is not None:
                conn.close()

    # -- bookkeeping used by the workers -----------------------------------

    def stage_done(self, i: int) -> None:
        """A worker of stage ``i`` saw its sentinel; the last one passes sentinels on."""
        with self.lock:
            self.done_counts[i] += 1
            last = self.done_counts[i] == self.stages[i].workers
        if not last:
            return
        nxt = self.buffers[i + 1]
        if i + 1 < len(self.stages):
            for _ in range(self.stages[i + 1].workers):
                nxt.put(_SENTINEL)
        else:
            nxt.put(_END)

    def annotate(self, exc: BaseException, i: int, seq: int) -> BaseException:
        stage = self.stages[i]
        _add_note(
            exc,
            f"raised in manycore Pipeline stage {i + 1}/{len(self.stages)} {stage.name!r} "
            f"({stage.kind}) while processing item #{seq} of the source",
        )
        return exc


# -- the threads of a run ------------------------------------------------------


def _feed(state: _RunState, source: Iterator[Any]) -> None:
    """Take items from the source into stage 1, at most ``maxsize`` in flight."""
    exhausted = False
    try:
        seq = 0
        while True:
            state.admit.acquire()
            if state.stopped:
                return
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                break
            state.items_in += 1
            state.buffers[0].put((seq, item))
            seq += 1
        for _ in range(state.stages[0].workers):
            state.buffers[0].put(_SENTINEL)
    except Closed:
        return
    except BaseException as e:
        _add_note(e, "raised by the source iterator of a manycore Pipeline")
        state.fail(e)
    finally:
        close = getattr(source, "close", None)
        if not exhausted and close is not None:  # stopped early: let a generator run its finally blocks
            try:
                close()
            except BaseException as e:
                state.fail(e)


def _inputs(state: _RunState, i: int) -> Iterator[tuple[int, Any]]:
    """The ``(seq, value)`` items of stage ``i``'s input until its end marker, which marks the stage done."""
    inbuf = state.buffers[i]
    while True:
        msg = inbuf.get()
        if msg is _SENTINEL:
            state.stage_done(i)
            return
        yield msg


def _thread_worker(state: _RunState, i: int) -> None:
    fn = state.stages[i].fn
    outbuf = state.buffers[i + 1]
    try:
        for seq, value in _inputs(state, i):
            try:
                result = fn(value)
            except BaseException as e:
                state.fail(state.annotate(e, i, seq))
                return
            outbuf.put((seq, result))
    except Closed:
        return
    except BaseException as e:  # a bug here must not pass silently
        state.fail(e)


def _process_worker(state: _RunState, i: int, proc: Any, conn: Any) -> None:
    """Feed one worker process through its pipe, one item at a time, and collect its results."""
    stage = state.stages[i]
    forward_pickled = i + 1 < len(state.stages) and state.stages[i + 1].kind == "process"
    outbuf = state.buffers[i + 1]
    busy = False
    seq = -1
    try:
        assert stage._fn_bytes is not None
        send(conn, FnMessage(stage._fn_bytes))
        for seq, value in _inputs(state, i):
            segments: list[Any] = []
            try:
                if isinstance(value, _Pickled):
                    message = ChunkMessage(value.data, [], [seq], False, False)
                else:
                    payload, meta = _serialize.dumps_shared([value], segments)
                    message = ChunkMessage(payload, meta, [seq], False, False)
            except Exception as e:
                _serialize.release(segments)
                state.fail(state.annotate(e, i, seq))
                return
            try:
                send(conn, message)
                busy = True
                ready = multiprocessing.connection.wait([conn, state.wakeup_r])
                if conn not in ready:  # stopping
                    return
                data = conn.recv_bytes()
                busy = False
            finally:
                _serialize.release(segments)
            try:
                reply: ResultMessage | None = decode(data)
            except Exception:
                reply = None  # unpack() names the failure
            if (
                forward_pickled
                and reply is not None
                and not reply.reports
                and isinstance(reply.values, bytes)
            ):
                outbuf.put((seq, _Pickled(reply.values)))
                continue
            if reply is None:
                _, values, failures = received(data, [seq])
            else:
                _, values, failures = unpack(reply, [seq])
            if failures:
                state.fail(state.annotate(failures[0][0], i, seq))
                return
            outbuf.put((seq, values[0]))
    except Closed:
        return
    except (EOFError, OSError) as e:
        if not state.stopped:
            proc.join(timeout=5.0)
            how = describe_exit(proc.exitcode)
            died = WorkerDied(
                f"worker process {proc.name} (pid {proc.pid}) of pipeline stage {stage.name!r} {how} "
                f"while processing item #{seq}"
            )
            died.__cause__ = e
            state.fail(died)
    except BaseException as e:
        state.fail(state.annotate(e, i, seq))
    finally:
        _stop_child(proc, conn, PROCESS_STOP_GRACE_S if busy else 5.0)


def _stop_child(proc: Any, conn: Any, grace_s: float) -> None:
    """Ask a worker process to exit, then end it if it does not within ``grace_s`` (see stop_workers)."""
    stop_workers([(proc, conn)], grace_s)


# -- the caller's side ---------------------------------------------------------


class PipelineRun(Generic[T]):
    """The iterator of a running pipeline; also a context manager that closes it.

    ``next()`` returns the next result, raises ``StopIteration`` when all items
    are through (or after ``close()``), or re-raises the first error of the
    run once every worker has stopped.  Iterate from one thread only.
    """

    def __init__(self, state: _RunState, ordered: bool) -> None:
        self._state = state
        self._ordered = ordered
        self._next_seq = 0
        self._pending: dict[int, Any] = {}
        self._finished = False
        self._items_out = 0
        self._finalizer = weakref.finalize(self, state.close)

    @property
    def ordered(self) -> bool:
        """Whether results come in source order."""
        return self._ordered

    @property
    def maxsize(self) -> int:
        """The in-flight bound of this run."""
        return self._state.maxsize

    @property
    def items_in(self) -> int:
        """Items taken from the source so far (a snapshot)."""
        return self._state.items_in

    @property
    def items_out(self) -> int:
        """Results yielded to the caller so far."""
        return self._items_out

    def __iter__(self) -> PipelineRun[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        try:
            value: T = self._next()
            return value
        except BaseException:
            # StopIteration (all done), the run's error, KeyboardInterrupt while
            # waiting: in every case stop and join everything before leaving.
            self._finished = True
            self._finalizer()
            raise

    def _deliver(self, value: Any) -> Any:
        self._items_out += 1
        self._state.admit.release()
        return value

    def _next(self) -> Any:
        state = self._state
        out = state.buffers[-1]
        while True:
            if self._ordered and self._next_seq in self._pending:
                value = self._pending.pop(self._next_seq)
                self._next_seq += 1
                return self._deliver(value)
            try:
                msg = out.get()
            except Closed:
                msg = _END
            if msg is _END and state.stopped:
                # Join before raising: the run has fully stopped when the caller sees the error.
                # (Raised outside the except block so that Closed is not chained to it.)
                self._finalizer()
                if state.error is not None:
                    raise state.error
                raise StopIteration
            if msg is _END:
                raise StopIteration
            seq, value = msg
            if isinstance(value, _Pickled):
                value = value.load()
            if not self._ordered:
                return self._deliver(value)
            if seq == self._next_seq:
                self._next_seq += 1
                return self._deliver(value)
            self._pending[seq] = value

    def close(self) -> None:
        """Stop the run and wait until every worker has stopped.  Idempotent; callable from any thread."""
        self._finished = True
        self._finalizer()

    def __enter__(self) -> PipelineRun[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "finished" if self._finished else "running"
        return (
            f"<PipelineRun {state}: {self.items_in} in, {self._items_out} out, maxsize {self._state.maxsize}>"
        )
