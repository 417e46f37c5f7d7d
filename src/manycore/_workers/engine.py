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

Protocol: each worker has one duplex pipe.  The parent sends a chunk to an
idle worker (blocked in ``recv``), so that send cannot deadlock against the
worker's result writes.  Workers whose chunks turn around in under
``AHEAD_BELOW_S`` also get one more chunk sent ahead while they run, so they
do not wait for a round trip through the parent between chunks; only small
chunks are sent ahead (both fit in the pipe's buffer, so that send never
blocks either), and never behind a long chunk, where a queued chunk could
wait for one worker while another sits idle.  Before running an
item the worker writes its index (and, with ``task_timeout``, its start time)
into a shared slot, which is how the parent knows which item a dead or stuck
worker was running.  With ``task_timeout`` results are sent item by item, so
no finished result is lost when a worker is killed.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from typing import Any

from ..errors import WorkerCrashed, describe_exit
from . import serialize as _serialize
from ._start import start_context
from .batches import Batch, Failures, Input
from .protocol import (
    IDLE,
    ChunkMessage,
    FnMessage,
    encode,
    received,
    send,
    start_worker,
    startup_hint,
    stop_workers,
)
from .setup import WorkerInit

_MAX_DEATHS_WITHOUT_PROGRESS = 3
#: The longest the parent blocks in one wait for its workers (see manycore._map.run).
SIGNAL_SLICE_S = 0.25
#: How long closing the engine lets its idle workers exit before ending them.
STOP_GRACE_S = 2.0
#: A worker gets a chunk sent ahead only while its chunks take less than this.
AHEAD_BELOW_S = 0.005


@dataclass
class _Chunk:
    indexes: Sequence[int]
    items: list[Any]
    payload: bytes
    meta: list[Any]
    careful: bool
    segments: list[Any] = field(default_factory=list)
    # positions not reported yet; None for a fast chunk (it reports all at once)
    unreported: set[int] | None = None

    def pending_positions(self) -> list[int]:
        return list(range(len(self.items))) if self.unreported is None else sorted(self.unreported)


@dataclass
class _Worker:
    process: Any
    conn: Any
    slot: int
    start_method: str
    fn_id: int = -1
    chunk: _Chunk | None = None  # the chunk it runs (or ran: its results are being read)
    queued: _Chunk | None = None  # a small fast chunk sent ahead, waiting in its pipe
    started_at: float = 0.0  # when its current chunk was sent (or began, if sent ahead)
    turnaround: float = float("inf")  # seconds its last fast chunk took, send to result
    kill_reason: tuple[int, BaseException] | None = None  # (position, error)
    exitcode: int | None = None  # recorded when the worker is buried


class ProcessEngine:
    """Worker processes run one chunk at a time; see the module docstring."""

    def __init__(
        self,
        workers: int,
        mp_context: Any = None,
        init: WorkerInit | None = None,
        inner_threads: int | None = None,
    ) -> None:
        self.workers = workers
        self._requested = mp_context  # each worker's own start: _workers.start_context
        self._ctx = mp_context or multiprocessing.get_context()
        self._init = init
        self._inner = inner_threads
        self._slot_state = self._ctx.RawArray("q", workers)
        self._slot_start = self._ctx.RawArray("d", workers)
        self._pool: list[_Worker | None] = [None] * workers
        self._fn_ids = itertools.count()
        self._closed = False
        self._pid = os.getpid()
        # A map running in one thread while another calls close(): close()
        # pokes the wake-up pipe, the map raises RuntimeError and stops its
        # workers, and close() waits for it before stopping the rest.
        self._runs = 0
        self._runs_done = threading.Condition()
        self._wake_r, self._wake_w = os.pipe()
        # a quarter of a typical socket buffer (212992 bytes): two such chunks
        # plus framing always fit, whatever the worker is doing
        self._ahead_max_bytes = 48 * 1024

    # ------------------------------------------------------------ workers
    def _spawn(self, slot: int) -> _Worker:
        ctx: Any = start_context(self._requested, self._init)  # fork only while no other thread runs Python
        self._slot_state[slot] = IDLE
        process, conn = start_worker(
            ctx,
            self._inner,
            f"manycore-worker-{slot}",
            daemon=True,
            init=self._init,
            slot=slot,
            slot_state=self._slot_state,
            slot_start=self._slot_start,
        )
        worker = _Worker(process, conn, slot, ctx.get_start_method())
        self._pool[slot] = worker
        return worker

    def _discard(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        try:
            worker.process.close()  # its sentinel fd, now rather than at garbage collection
        except ValueError:
            pass  # still running (join timed out): left to the garbage collector
        self._pool[worker.slot] = None

    def close(self) -> None:
        """Stop every worker (idempotent; in a forked child, only marks this copy closed).

        A map running in another thread stops with ``RuntimeError`` first.
        """
        with self._runs_done:
            first = not self._closed
            self._closed = True
        if self._pid != os.getpid():
            return  # the workers and their pipes belong to the parent
        with self._runs_done:
            if self._runs:
                os.write(self._wake_w, b"x")
                self._runs_done.wait_for(lambda: self._runs == 0, timeout=30)
        workers = [w for w in self._pool if w is not None]
        stop_workers([(w.process, w.conn) for w in workers], STOP_GRACE_S)
        for worker in workers:
            self._discard(worker, kill=True)  # releases each process (all have exited)
        if first:
            os.close(self._wake_r)
            os.close(self._wake_w)

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
        source: Input,
        *,
        chunksize: int,
        task_timeout: float | None = None,
        deadline: float | None = None,
        may_dispatch: Callable[[], bool] = lambda: True,
        expected_items: int = -1,
    ) -> Iterator[Batch]:
        """Run ``fn`` over the input; yield batches in completion order.

        The input is read only when a worker is idle, so at most
        ``workers * chunksize`` items are in flight.  ``deadline``
        (``time.monotonic()``) raises ``TimeoutError``.  Closing the
        generator early kills the busy workers.  The caller re-raises
        ``source.error`` once everything read has been yielded.
        ``expected_items`` (the input's length, if known) starts every
        worker that will get a chunk before reading the input: forking them
        in one burst, before the parent touches its data, means the parent's
        pages are copied-on-write once instead of once per fork.

        The loop runs in named phases (see :class:`_MapRun`): hand out chunks,
        wait, collect results, bury dead workers, enforce the timeouts.
        """
        if self._pid != os.getpid():
            raise RuntimeError("this process engine was created before fork(); its workers are in the parent")
        run = _MapRun(self, fn, source, chunksize, task_timeout, deadline, may_dispatch)  # pickles fn
        with self._runs_done:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._runs += 1
        try:
            run.start_workers(expected_items)
            while True:
                if self._closed:
                    raise RuntimeError("the executor was shut down while this pmap was running")
                yield from run.hand_out()
                if not run.busy:
                    if run.input_exhausted():
                        return
                    continue
                ready = run.wait()
                dead = yield from run.collect(ready)
                yield from run.bury(dead)
                run.check_deadline()
                run.kill_overrunning()
        finally:
            run.abort()
            with self._runs_done:
                self._runs -= 1
                self._runs_done.notify_all()

    def _pickle_chunk(
        self, indexes: Sequence[int], items: list[Any], careful: bool
    ) -> tuple[_Chunk | None, Batch | None]:
        segments: list[Any] = []
        try:
            payload, meta = _serialize.dumps_shared(items, segments)
            unreported = set(range(len(items))) if careful else None
            return _Chunk(indexes, items, payload, meta, careful, segments, unreported), None
        except Exception:
            _serialize.release(segments)
        # Find the culprits one by one; send the rest.
        good_idx: list[int] = []
        good: list[Any] = []
        bad_idx: list[int] = []
        failures: Failures = {}
        for pos, item in enumerate(items):
            try:
                _serialize.dumps(item)
                good_idx.append(indexes[pos])
                good.append(item)
            except Exception as exc:  # the pickler's own error, as ProcessExecutor.submit reports it
                exc.add_note(f"item {indexes[pos]} cannot be sent to a worker process")
                failures[len(bad_idx)] = (exc, "")
                bad_idx.append(indexes[pos])
        bad: Batch = (bad_idx, [None] * len(bad_idx), failures)
        if not good:
            return None, bad
        chunk, _ = self._pickle_chunk(good_idx, good, careful)
        return chunk, bad

    def _send_chunk(self, worker: _Worker, chunk: _Chunk, fn_id: int, fn_message: bytes) -> None:
        message = ChunkMessage(chunk.payload, chunk.meta, chunk.indexes, chunk.careful, chunk.careful)
        worker.chunk = chunk
        worker.started_at = time.monotonic()
        worker.kill_reason = None
        try:
            if worker.fn_id != fn_id:
                worker.conn.send_bytes(fn_message)
                worker.fn_id = fn_id
            send(worker.conn, message)
        except OSError:
            # The worker died (its end of the pipe is closed): its sentinel
            # reports that next, and _bury re-runs the chunk it now holds.
            pass

    # Sending ahead: a worker that finished a chunk would otherwise wait a round
    # trip through this (single, maybe descheduled) thread for its next one.
    # A second chunk is sent only while the first runs, only fast ones, and
    # only small enough that both fit in the pipe's buffer: the send cannot
    # block, so this thread never waits on a worker that waits on it.
    # Only chunks that turn around within AHEAD_BELOW_S: there the round trip
    # is a real share of a worker's time, while a chunk queued behind a long
    # one could be waiting for a worker that another idle worker would beat.
    def _may_send_ahead(self, worker: _Worker) -> bool:
        chunk = worker.chunk
        return (
            worker.queued is None
            and chunk is not None
            and worker.turnaround < AHEAD_BELOW_S
            and self._fits_ahead(chunk)
        )

    def _fits_ahead(self, chunk: _Chunk) -> bool:
        return not chunk.careful and len(chunk.payload) <= self._ahead_max_bytes

    def _send_ahead(self, worker: _Worker, chunk: _Chunk) -> None:
        worker.queued = chunk
        try:
            send(worker.conn, ChunkMessage(chunk.payload, chunk.meta, chunk.indexes, False, False))
        except OSError:
            pass  # the worker died: _bury re-queues the chunk (see _send_chunk)

    def _bury(self, worker: _Worker, requeue: deque[_Chunk]) -> tuple[bool, Batch | None]:
        """A busy worker died: blame its current item, re-queue the rest (carefully)."""
        worker.process.join(timeout=5)
        exitcode = worker.exitcode = worker.process.exitcode
        if worker.queued is not None:
            # Sent ahead and not started (a worker reports a chunk before it
            # starts the next): it runs again as it is, on another worker.
            requeue.append(worker.queued)
            worker.queued = None
        chunk = worker.chunk
        blamed = False
        batch: Batch | None = None
        if chunk is not None:
            state = self._slot_state[worker.slot]
            pending = set(chunk.pending_positions())
            if worker.kill_reason is not None:
                pos, error = worker.kill_reason
                pending.discard(pos)
                blamed = True
                batch = ([chunk.indexes[pos]], [None], {0: (error, "")})
            elif state >= 0 and state in pending:
                pending.discard(state)
                blamed = True
                index = chunk.indexes[state]
                crash = WorkerCrashed(
                    f"worker process (pid {worker.process.pid}) {describe_exit(exitcode)} "
                    f"while running item {index}",
                    index=index,
                    pid=worker.process.pid,
                    exitcode=exitcode,
                )
                batch = ([index], [None], {0: (crash, "")})
            rest = sorted(pending)
            if rest:
                # Re-run what was not reported one item at a time, so that if
                # the crash comes back it is pinned on its item.
                indexes = [chunk.indexes[p] for p in rest]
                items = [chunk.items[p] for p in rest]
                again, _ = self._pickle_chunk(indexes, items, careful=True)
                if again is not None:
                    requeue.appendleft(again)
            _serialize.release(chunk.segments)
        self._discard(worker, kill=True)
        return blamed, batch


class _MapRun:
    """The state of one :meth:`ProcessEngine.run`, and its phases."""

    def __init__(
        self,
        engine: ProcessEngine,
        fn: Callable[[Any], Any],
        source: Input,
        chunksize: int,
        task_timeout: float | None,
        deadline: float | None,
        may_dispatch: Callable[[], bool],
    ) -> None:
        self.engine = engine
        self.source = source
        self.chunksize = chunksize
        self.task_timeout = task_timeout
        self.deadline = deadline
        self.may_dispatch = may_dispatch
        self.careful = task_timeout is not None
        self.fn_id = next(engine._fn_ids)
        try:
            fn_bytes = _serialize.dumps(fn)
        except Exception as exc:  # the pickler's own exception, naming what could not travel
            exc.add_note(f"cannot send fn ({fn!r}) to a worker process")
            raise
        self.fn_message = encode(FnMessage(fn_bytes))
        self.requeue: deque[_Chunk] = deque()  # chunks to run again (their worker died) or not sent yet
        self.busy: dict[Any, _Worker] = {}  # conn -> worker running (or holding) one of our chunks
        self.deaths_without_progress = 0
        self.sentinels: dict[Any, _Worker] = {}  # process sentinel -> busy worker, as of the last wait

    # -- phase 0: start
    def start_workers(self, expected_items: int) -> None:
        """Fork every worker that will get a chunk, in one burst (see ``run``)."""
        engine = self.engine
        if expected_items > 0:
            for slot in range(min(engine.workers, -(-expected_items // self.chunksize))):
                if engine._pool[slot] is None:
                    engine._spawn(slot)

    def input_exhausted(self) -> bool:
        return self.source.done and not self.requeue

    # -- phase 1: hand out
    def hand_out(self) -> Iterator[Batch]:
        """A chunk for every idle worker, then one sent ahead to each fast busy one.

        Yields the items that could not be pickled (they fail; the map goes on).
        """
        engine = self.engine
        for slot in itertools.chain(range(engine.workers), range(engine.workers)):
            worker = engine._pool[slot]
            ahead = worker is not None and worker.chunk is not None
            if worker is not None and ahead and not engine._may_send_ahead(worker):
                continue
            chunk = None
            if self.requeue:
                if ahead and not engine._fits_ahead(self.requeue[0]):
                    continue
                chunk = self.requeue.popleft()
            elif not self.source.done and not (self.busy and not self.may_dispatch()):
                # Backpressure from the consumer applies only while something
                # runs: with nothing busy, the item it waits for is unread.
                indexes, items = self.source.take(self.chunksize)
                if items:
                    chunk, bad = engine._pickle_chunk(indexes, items, self.careful)
                    if bad is not None:
                        yield bad
                    if chunk is not None and ahead and not engine._fits_ahead(chunk):
                        self.requeue.appendleft(chunk)  # for the next idle worker
                        continue
            if chunk is None:
                if self.requeue or not self.source.done:
                    continue
                break
            if worker is None:
                try:
                    worker = engine._spawn(slot)
                except BaseException:
                    self.requeue.appendleft(chunk)  # released by abort()
                    raise
            if ahead:
                engine._send_ahead(worker, chunk)
            else:
                engine._send_chunk(worker, chunk, self.fn_id, self.fn_message)
            self.busy[worker.conn] = worker

    # -- phase 2: wait
    def wait(self) -> list[Any]:
        """Results, dead workers, or a poke from close(); wakes up in time for the timeouts."""
        timeout = SIGNAL_SLICE_S  # a signal landing just before the wait is seen within a slice
        if self.deadline is not None:
            timeout = min(timeout, max(0.0, self.deadline - time.monotonic()))
        if self.task_timeout is not None:
            timeout = min(timeout, 0.05, self.task_timeout / 4)
        self.sentinels = {w.process.sentinel: w for w in self.busy.values()}
        ready: list[Any] = mp_wait([*self.busy, *self.sentinels, self.engine._wake_r], timeout)
        if self.engine._wake_r in ready:
            raise RuntimeError("the executor was shut down while this pmap was running")
        return ready

    # -- phase 3: collect
    def collect(self, ready: list[Any]) -> Generator[Batch, None, list[_Worker]]:
        """Yield the results that arrived; return the workers found dead."""
        dead: list[_Worker] = []
        for obj in ready:
            if obj in self.sentinels:
                if self.sentinels[obj] not in dead:
                    dead.append(self.sentinels[obj])
                continue
            worker = self.busy[obj]
            try:
                data = worker.conn.recv_bytes()
            except (EOFError, OSError):
                if worker not in dead:
                    dead.append(worker)
                continue
            self.deaths_without_progress = 0
            yield self._received(worker, data)
        return dead

    def _received(self, worker: _Worker, data: bytes) -> Batch:
        """One result message of ``worker``: its batch, and the worker's books updated."""
        chunk = worker.chunk
        assert chunk is not None
        careful = chunk.unreported is not None
        sent: Sequence[int] = (
            [chunk.indexes[min(chunk.unreported)]] if chunk.unreported is not None else chunk.indexes
        )
        # values only cloudpickle could send unwrapped; what cannot be rebuilt here fails its item
        batch = received(data, sent)
        if careful:  # one item per message, in chunk order
            assert chunk.unreported is not None
            chunk.unreported.discard(min(chunk.unreported))
        else:
            chunk.unreported = set()
        if not chunk.unreported:
            _serialize.release(chunk.segments)
            now = time.monotonic()
            if not chunk.careful:
                worker.turnaround = now - worker.started_at
            worker.chunk, worker.queued = worker.queued, None  # it runs that one now
            worker.started_at = now
            if worker.chunk is None:
                del self.busy[worker.conn]
        return batch

    # -- phase 4: bury
    def bury(self, dead: list[_Worker]) -> Iterator[Batch]:
        """Fail the item each dead worker ran, requeue the rest of its chunk; give up on a crash loop."""
        for worker in dead:
            self.busy.pop(worker.conn, None)
            blamed, batch = self.engine._bury(worker, self.requeue)
            if batch is not None:
                yield batch
            self.deaths_without_progress = 0 if blamed else self.deaths_without_progress + 1
            if self.deaths_without_progress >= _MAX_DEATHS_WITHOUT_PROGRESS:
                raise BrokenProcessPool(
                    f"worker processes keep dying before running any item "
                    f"(last one {describe_exit(worker.exitcode)}); "
                    f"{startup_hint(worker.start_method)}"
                )

    # -- phase 5: timeouts
    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeoutError("pmap did not finish within its timeout")

    def kill_overrunning(self) -> None:
        """Kill the worker of every item past ``task_timeout`` (the next bury fails the item)."""
        if self.task_timeout is None:
            return
        engine, now = self.engine, time.monotonic()
        for worker in list(self.busy.values()):
            pos = engine._slot_state[worker.slot]
            chunk = worker.chunk
            if chunk is None or chunk.unreported is None or pos not in chunk.unreported:
                continue
            if now - engine._slot_start[worker.slot] > self.task_timeout:
                error = TimeoutError(
                    f"item {chunk.indexes[pos]} exceeded task_timeout={self.task_timeout:g}s; its "
                    f"worker (pid {worker.process.pid}) was killed and replaced"
                )
                worker.kill_reason = (pos, error)
                worker.process.kill()

    # -- the end
    def abort(self) -> None:
        """Normal end: nothing is busy.  Early exit (error, Ctrl-C, consumer gone): kill our busy workers."""
        for worker in list(self.busy.values()):
            for held in (worker.chunk, worker.queued):
                if held is not None:
                    _serialize.release(held.segments)
            worker.chunk = worker.queued = None
            self.engine._discard(worker, kill=True)
        for chunk in self.requeue:
            _serialize.release(chunk.segments)
