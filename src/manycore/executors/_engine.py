"""The fault-tolerant process engine behind ``pmap`` on processes.

Why not ``ProcessPoolExecutor``: when one of its workers dies, or has to be
killed because a task hangs, the whole pool breaks and every pending future
fails.  This engine owns its workers one by one, so it can

* kill exactly the worker whose item exceeded ``task_timeout`` (even a C loop
  holding the GIL), record ``TimeoutError`` for that item, start a fresh
  worker and go on;
* name the item a dead worker was running (segfault, ``os._exit``, OOM kill)
  and the signal or exit code, re-run the other unfinished items of its chunk
  on another worker, and go on;
* stop promptly on Ctrl-C or an early exit by the consumer, killing the busy
  workers (never leaving orphans).

Protocol: each worker has one duplex pipe.  The parent sends a chunk only to
an idle worker (blocked in ``recv``), so sends never deadlock against the
worker's result writes; chunks are sized by ``pmap`` to 10-50 ms, so the idle
round trip (tens of microseconds) costs well under 1%.  Before running an
item the worker writes its index (and, with ``task_timeout``, its start time)
into a shared slot, which is how the parent knows which item a dead or stuck
worker was running.  With ``task_timeout`` results are sent item by item, so
no finished result is lost when a worker is killed.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from typing import Any

from . import _serialize
from ._contract import WorkerCrashed
from .process import portable_exception, worker_setup

#: (index, ok, value_or_exception, traceback_text)
Record = tuple[int, bool, Any, str]

_FN, _CHUNK, _STOP = 0, 1, 2
_MAX_DEATHS_WITHOUT_PROGRESS = 3


def _send_records(conn: Any, records: list[Record]) -> None:
    try:
        data = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        data = pickle.dumps([_portable_record(r) for r in records], protocol=pickle.HIGHEST_PROTOCOL)
    conn.send_bytes(data)


def _portable_record(record: Record) -> Record:
    index, ok, value, tb = record
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return record
    except Exception:
        pass
    try:
        _serialize.dumps(value)  # cloudpickle output loads with plain pickle
        return (index, ok, _Cloudpickled(_serialize.dumps(value)), tb)
    except Exception as exc:
        what = "result" if ok else "exception"
        error = pickle.PicklingError(f"the {what} of item {index} could not be pickled: {exc}")
        return (index, False, error, tb)


class _Cloudpickled:
    """A value only cloudpickle could serialise; unwrapped by the parent."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def worker_main(
    conn: Any, slot: int, slot_index: Any, slot_start: Any, init_payload: bytes | None, inner: int | None
) -> None:
    """Body of an engine worker process."""
    worker_setup(init_payload, inner)
    fn: Callable[[Any], Any] | None = None
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == _STOP:
            return
        if kind == _FN:
            fn = _serialize.loads(message[1])
            continue
        _, indexes, payload, stream, timed = message
        items = _serialize.loads(payload)
        assert fn is not None
        out: list[Record] = []
        for index, item in zip(indexes, items, strict=True):
            # Start time first: a parent that sees the new index must not pair
            # it with the previous item's start time.
            if timed:
                slot_start[slot] = time.monotonic()
            slot_index[slot] = index
            try:
                record: Record = (index, True, fn(item), "")
            except BaseException as exc:
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                record = (index, False, portable_exception(exc), tb)
            if stream:
                _send_records(conn, [record])
            else:
                out.append(record)
        slot_index[slot] = -1
        if stream:
            _send_records(conn, [])  # end of chunk
        else:
            _send_records(conn, out)


@dataclass
class _Chunk:
    items: list[tuple[int, Any]]
    payload: bytes
    unreported: set[int] = field(default_factory=set)
    segments: list[Any] = field(default_factory=list)


@dataclass
class _Worker:
    process: Any
    conn: Any
    slot: int
    fn_id: int = -1
    chunk: _Chunk | None = None
    kill_reason: tuple[int, BaseException] | None = None


class ProcessEngine:
    """Worker processes run one chunk at a time; see the module docstring."""

    def __init__(
        self,
        workers: int,
        mp_context: Any = None,
        init_payload: bytes | None = None,
        inner_threads: int | None = None,
    ) -> None:
        self.workers = workers
        self._ctx = mp_context or multiprocessing.get_context()
        self._init_payload = init_payload
        self._inner = inner_threads
        self._slot_index = self._ctx.RawArray("q", workers)
        self._slot_start = self._ctx.RawArray("d", workers)
        self._pool: list[_Worker | None] = [None] * workers
        self._fn_ids = itertools.count()
        self._closed = False

    # ------------------------------------------------------------ workers
    def _spawn(self, slot: int) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        self._slot_index[slot] = -1
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, slot, self._slot_index, self._slot_start, self._init_payload, self._inner),
            name=f"manycore-worker-{slot}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn, slot)
        self._pool[slot] = worker
        return worker

    def _discard(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self._pool[worker.slot] = None

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        self._closed = True
        for worker in self._pool:
            if worker is None:
                continue
            try:
                worker.conn.send_bytes(pickle.dumps((_STOP,)))
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for worker in self._pool:
            if worker is None:
                continue
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._discard(worker, kill=True)

    def __del__(self) -> None:  # pragma: no cover - best effort
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass

    # ------------------------------------------------------------ running
    def run(
        self,
        fn: Callable[[Any], Any],
        items: Iterator[tuple[int, Any]],
        *,
        chunksize: int,
        task_timeout: float | None = None,
        deadline: float | None = None,
        may_dispatch: Callable[[], bool] = lambda: True,
    ) -> Iterator[Record]:
        """Run ``fn`` over ``(index, item)`` pairs; yield records in completion order.

        The input is read only when a worker is idle, so at most
        ``workers * chunksize`` items are in flight.  An exception raised by
        the input iterator is re-raised after the items read before it have
        been yielded.  ``deadline`` (``time.monotonic()`` value) raises
        ``TimeoutError``.  Closing the generator early kills busy workers.
        """
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        fn_id = next(self._fn_ids)
        fn_payload = pickle.dumps((_FN, _serialize.dumps(fn)))
        requeue: deque[list[tuple[int, Any]]] = deque()
        input_error: BaseException | None = None
        input_done = False
        deaths_without_progress = 0
        stream = task_timeout is not None
        busy: dict[Any, _Worker] = {}  # conn -> worker

        def next_chunk() -> list[tuple[int, Any]] | None:
            nonlocal input_done, input_error
            if requeue:
                return requeue.popleft()
            if input_done:
                return None
            chunk: list[tuple[int, Any]] = []
            try:
                for pair in itertools.islice(items, chunksize):
                    chunk.append(pair)
            except Exception as exc:
                input_error = exc
                input_done = True
            if len(chunk) < chunksize:
                input_done = True
            return chunk or None

        try:
            while True:
                # Hand chunks to idle workers.
                failed_pickles: list[Record] = []
                for slot in range(self.workers):
                    worker = self._pool[slot]
                    if worker is not None and worker.chunk is not None:
                        continue
                    # Backpressure from the consumer applies only while something
                    # runs: with nothing busy, the item it waits for is unread.
                    if not requeue and (input_done or (busy and not may_dispatch())):
                        break
                    pairs = next_chunk()
                    if pairs is None:
                        break
                    chunk, bad = self._pickle_chunk(pairs)
                    failed_pickles.extend(bad)
                    if chunk is None:
                        continue
                    if worker is None:
                        worker = self._spawn(slot)
                    self._send_chunk(worker, chunk, fn_id, fn_payload, stream)
                    busy[worker.conn] = worker
                yield from failed_pickles

                if not busy:
                    if input_done and not requeue:
                        break
                    continue

                timeout = None
                now = time.monotonic()
                if deadline is not None:
                    timeout = max(0.0, deadline - now)
                if task_timeout is not None:
                    poll = min(0.05, task_timeout / 4)
                    timeout = poll if timeout is None else min(timeout, poll)
                sentinels = {w.process.sentinel: w for w in busy.values()}
                ready = mp_wait([*busy, *sentinels], timeout)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("pmap did not finish within its timeout")

                dead: list[_Worker] = []
                for obj in ready:
                    if obj in sentinels:
                        if sentinels[obj] not in dead:
                            dead.append(sentinels[obj])
                        continue
                    worker = busy[obj]
                    try:
                        records = pickle.loads(worker.conn.recv_bytes())
                    except (EOFError, OSError):
                        if worker not in dead:
                            dead.append(worker)
                        continue
                    chunk = worker.chunk
                    assert chunk is not None
                    for record in records:
                        chunk.unreported.discard(record[0])
                        yield self._unwrap(record)
                    deaths_without_progress = 0
                    if not stream or not records:
                        # the whole chunk answered (stream mode: empty end marker)
                        _serialize.release(chunk.segments)
                        worker.chunk = None
                        del busy[worker.conn]

                for worker in dead:
                    busy.pop(worker.conn, None)
                    blamed = yield from self._bury(worker, requeue)
                    deaths_without_progress = 0 if blamed else deaths_without_progress + 1
                    if deaths_without_progress >= _MAX_DEATHS_WITHOUT_PROGRESS:
                        exitcode = worker.process.exitcode
                        raise BrokenProcessPool(
                            f"worker processes keep dying before running any item "
                            f"(last one {WorkerCrashed.describe_exit(exitcode)}); "
                            "is the initializer failing?"
                        )

                if task_timeout is not None:
                    now = time.monotonic()
                    for worker in list(busy.values()):
                        index = self._slot_index[worker.slot]
                        chunk = worker.chunk
                        if chunk is None or index not in chunk.unreported:
                            continue
                        started = self._slot_start[worker.slot]
                        if now - started > task_timeout:
                            error = TimeoutError(
                                f"item {index} exceeded task_timeout={task_timeout:g}s; its worker "
                                f"(pid {worker.process.pid}) was killed and replaced"
                            )
                            worker.kill_reason = (index, error)
                            worker.process.kill()
            if input_error is not None:
                raise input_error
        finally:
            # Normal end: nothing is busy.  Early exit (error, Ctrl-C, consumer
            # stopped): kill the workers still running our chunks.
            for worker in list(busy.values()):
                if worker.chunk is not None:
                    _serialize.release(worker.chunk.segments)
                self._discard(worker, kill=True)

    def _pickle_chunk(self, pairs: list[tuple[int, Any]]) -> tuple[_Chunk | None, list[Record]]:
        segments: list[Any] = []
        try:
            payload = _serialize.dumps([item for _, item in pairs], segments)
            return _Chunk(pairs, payload, {i for i, _ in pairs}, segments), []
        except Exception:
            _serialize.release(segments)
        # Find the culprits one by one; send the rest.
        good: list[tuple[int, Any]] = []
        bad: list[Record] = []
        for index, item in pairs:
            try:
                _serialize.dumps(item)
                good.append((index, item))
            except Exception as exc:
                error = pickle.PicklingError(f"item {index} cannot be sent to a worker process: {exc}")
                bad.append((index, False, error, ""))
        if not good:
            return None, bad
        chunk, more_bad = self._pickle_chunk(good)
        return chunk, bad + more_bad

    def _send_chunk(
        self, worker: _Worker, chunk: _Chunk, fn_id: int, fn_payload: bytes, stream: bool
    ) -> None:
        if worker.fn_id != fn_id:
            worker.conn.send_bytes(fn_payload)
            worker.fn_id = fn_id
        indexes = [i for i, _ in chunk.items]
        message = (_CHUNK, indexes, chunk.payload, stream, stream)
        worker.chunk = chunk
        worker.kill_reason = None
        worker.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    @staticmethod
    def _unwrap(record: Record) -> Record:
        value = record[2]
        if isinstance(value, _Cloudpickled):
            return (record[0], record[1], pickle.loads(value.data), record[3])
        return record

    def _bury(self, worker: _Worker, requeue: deque[list[tuple[int, Any]]]) -> Generator[Record, None, bool]:
        """A busy worker died: blame its current item, re-queue the rest.  Returns whether an item was blamed."""
        worker.process.join(timeout=5)
        exitcode = worker.process.exitcode
        chunk = worker.chunk
        blamed = False
        if chunk is not None:
            current = self._slot_index[worker.slot]
            if worker.kill_reason is not None:
                index, error = worker.kill_reason
                chunk.unreported.discard(index)
                blamed = True
                yield (index, False, error, "")
            elif current in chunk.unreported:
                chunk.unreported.discard(current)
                blamed = True
                error = WorkerCrashed(
                    f"worker process (pid {worker.process.pid}) {WorkerCrashed.describe_exit(exitcode)} "
                    f"while running item {current}",
                    index=current,
                    pid=worker.process.pid,
                    exitcode=exitcode,
                )
                yield (current, False, error, "")
            rest = [(i, item) for i, item in chunk.items if i in chunk.unreported]
            if rest:
                requeue.appendleft(rest)
            _serialize.release(chunk.segments)
        self._discard(worker, kill=True)
        return blamed
