"""The process pool behind ``ProcessExecutor``: futures served by worker processes manycore owns.

Its workers speak :mod:`manycore._workers.protocol` (each call is a chunk of
one item for :func:`~manycore._workers.protocol.call`) and are started the
way every manycore worker is.  Semantics are ``ProcessPoolExecutor``'s:

* a call waits in ``pending`` until a worker takes it; its future turns
  *running* only then (so ``cancel()`` works until that moment);
* one manager thread per pool sends calls, reads results, and watches every
  worker's sentinel: a worker that dies breaks the pool, as in the stdlib (its
  running and pending futures fail with ``BrokenProcessPool``, and so does
  every later ``submit``);
* workers start on demand, one per call that finds no idle worker, up to
  ``workers``, whatever the start method.  Under the default ``fork``, a
  worker forks only while the manager thread sits in its wait (holding no
  lock, running no callback) and no other thread runs Python; otherwise that
  worker starts with forkserver;
* ``max_tasks``: a worker exits after that many calls and is replaced;
* ``shutdown`` lets the queue drain, then stops the workers; the manager
  thread ends with them.  Interpreter exit does the same
  (:func:`stop_all_at_exit`, called by the executors' exit hook).

The manager thread never blocks on a worker that waits for it: a call goes
to an idle worker (blocked reading its pipe), and only a small call is sent
ahead to a busy one (it fits in the pipe's buffer).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from typing import Any

from ..errors import describe_exit
from ._start import fork_only, other_python_threads, start_context
from .protocol import ChunkMessage, encode, received, start_worker, startup_hint, stop_workers
from .setup import WorkerInit

#: Calls at most this big (pickled) may wait in a busy worker's pipe...
AHEAD_MAX_BYTES = 48 * 1024
#: ... of a worker whose last call took less than this (never behind a long call,
#: where it could wait while another worker is free).
AHEAD_BELOW_S = 0.005
#: How long stopping waits for an idle worker to exit before killing it.
STOP_WAIT_S = 5.0

_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()
_pool_ids = itertools.count(1)
_exiting = False


@dataclass
class _Call:
    future: Future[Any]
    message: bytes  # the pickled ChunkMessage


@dataclass
class _Worker:
    process: Any
    conn: Any
    calls: deque[_Call] = field(default_factory=deque)  # the first runs, a second may wait in the pipe
    tasks: int = 0  # calls sent to it
    pid: int = 0
    started_at: float = 0.0  # when its running call started (was sent, or its predecessor ended)
    turnaround: float = float("inf")  # how long its last call took, send to result


class WorkerPool:
    """Worker processes serving futures; see the module docstring."""

    def __init__(
        self,
        workers: int,
        mp_context: Any,
        init: WorkerInit | None,
        inner_threads: int | None,
        max_tasks: int | None,
        auto_fork: bool = False,
    ) -> None:
        """``auto_fork``: ``mp_context`` is the default context, not one the caller chose."""
        self.workers = workers
        self.mp_context = mp_context
        self._init = init
        self._inner = inner_threads
        self._max_tasks = max_tasks
        self._method = mp_context.get_start_method()
        # the default context, and it is fork: each worker's start decides fork or forkserver
        self._auto_fork = auto_fork and self._method == "fork"
        self._lock = threading.Lock()
        self._quiet = threading.RLock()  # held by the manager thread except while it waits
        self._manager_name = f"manycore-pool-manager-{next(_pool_ids)}"
        self._spawn_lock = threading.Lock()
        self._pending: deque[_Call] = deque()
        self._workers: dict[Any, _Worker] = {}  # conn -> worker
        #: pid -> Process of every live worker (what the stdlib calls ``_processes``)
        self.processes: dict[int, Any] = {}
        self.broken: str | None = None
        self._closing = False
        self._terminating = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)  # a full pipe already says "wake up"
        self._stopped = False  # the manager stopped the workers: a worker started later stops at once
        self._pid = os.getpid()
        _pools.add(self)

    # ---------------------------------------------------------- caller side
    def submit(self, future: Future[Any], payload: bytes, meta: list[Any]) -> None:
        """Queue one call (``payload``/``meta`` from ``serialize.dumps_shared((fn, args, kwargs))``)."""
        data = encode(ChunkMessage(payload, meta, [0], False, False))
        with self._lock:
            self.check_open()
            self._pending.append(_Call(future, data))
        self.grow(raise_errors=True)
        self._start_thread()
        self._wake()

    def check_open(self) -> None:
        """Raise what ``submit`` raises on a pool that takes no more work."""
        if self.broken is not None:
            raise BrokenProcessPool(self.broken)
        if _exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._closing:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def grow(self, raise_errors: bool = False) -> None:
        """Start the workers the queue needs: one per call no idle worker can take, up to ``workers``.

        A start that fails with no worker running breaks the pool; with
        ``raise_errors`` (``submit``, as the stdlib's) its exception is raised
        too (a ``TypeError`` for initargs that do not pickle, with a note).
        """
        with self._spawn_lock:
            while True:
                with self._lock:
                    idle = sum(1 for w in self._workers.values() if not w.calls)
                    if self.broken is not None or len(self._workers) >= self.workers:
                        return
                    if len(self._pending) <= idle:
                        return
                try:
                    process, conn = self._start_one()
                except Exception as exc:
                    with self._lock:
                        if self._workers:
                            return  # the workers there are serve the queue
                    self._break(f"a worker process could not be started ({type(exc).__name__}: {exc})")
                    if raise_errors:
                        raise
                    return
                with self._lock:
                    late = self._stopped
                    if not late:
                        self._workers[conn] = _Worker(process, conn, pid=process.pid)
                        self.processes[process.pid] = process
                if late:  # the pool stopped while this one started
                    self._stop([_Worker(process, conn, pid=process.pid)])
                    return

    def _start_one(self) -> tuple[Any, Any]:
        """Start a worker; under the default ``fork``, by fork only while nothing can deadlock the child.

        The manager thread is held in its wait (``_quiet``) while a worker
        forks, so it holds no lock then and runs no callback; any other
        thread inside Python code makes this worker start with forkserver
        (see :mod:`manycore._workers._start`).
        """
        ctx = self.mp_context
        with self._quiet:
            if self._auto_fork:
                others = [name for name in other_python_threads() if name != self._manager_name]
                if others and not fork_only(self._init):
                    ctx = start_context(None, self._init)  # forkserver: a thread runs Python now
            return start_worker(
                ctx,
                self._inner,
                "manycore-pool-worker",
                daemon=False,  # as in the stdlib: a worker may start processes of its own
                init=self._init,
                calls=True,
                max_tasks=self._max_tasks,
            )

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        """No more calls; drain the queue (or cancel it), then stop the workers."""
        if self._pid != os.getpid():
            return  # a forked copy: the workers belong to the parent
        with self._lock:
            self._closing = True
            cancelled = list(self._pending) if cancel_futures else []
            if cancel_futures:
                self._pending.clear()
            thread = self._thread
            idle_start = thread is None and bool(self._pending or self._workers)
        for queued in cancelled:
            if queued.future.cancel():
                queued.future.set_running_or_notify_cancel()  # wakes wait() and as_completed()
        if idle_start:
            self._start_thread()  # a call queued as shutdown came in: the manager runs it, then stops
            thread = self._thread
        if thread is None:
            self._stop_workers()
            self._close_pipe()
            return
        self._wake()
        if wait and thread is not threading.current_thread():
            thread.join()

    def terminate(self, how: str = "kill", wait: bool = True) -> None:
        """Cancel the queue, end the workers (``how``: ``"terminate"`` or ``"kill"``).

        Their running calls fail with ``BrokenProcessPool``; with ``wait``,
        every future is done on return.
        """
        if how not in ("terminate", "kill"):
            raise ValueError(f"how must be 'terminate' or 'kill', not {how!r}")
        if self._pid != os.getpid():
            return
        self._terminating = True
        self.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            processes = list(self.processes.values())
            thread = self._thread
        for process in processes:
            if process.is_alive():
                getattr(process, how)()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    # ---------------------------------------------------------- manager thread
    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped:
                return
            self._thread = threading.Thread(target=self._manage, name=self._manager_name, daemon=True)
            self._thread.start()

    def _wake(self) -> None:
        with self._lock:  # the descriptor is closed under this lock: never write to a reused number
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # full: the manager has enough to wake up for

    def _manage(self) -> None:
        self._quiet.acquire()
        try:
            while self._step():
                pass
        except BaseException as exc:  # pragma: no cover - a bug here must not leave futures waiting
            self._break(f"the pool's manager thread failed ({type(exc).__name__}: {exc})")
            raise
        finally:
            self._stop_workers()
            self._close_pipe()
            self._quiet.release()

    def _step(self) -> bool:
        """One round: hand out calls, wait, read results, bury the dead.  False: the pool is done."""
        for worker, call in self._hand_out():
            try:
                worker.conn.send_bytes(call.message)
            except OSError:
                pass  # it died: its sentinel says so next
        with self._lock:
            busy = [w for w in self._workers.values() if w.calls]
            if self.broken is not None:
                return False
            if self._closing and not self._pending and not busy:
                return False
            watched = [
                self._wake_r,
                *(w.conn for w in busy),
                *(w.process.sentinel for w in self._workers.values()),
            ]
            by_sentinel = {w.process.sentinel: w for w in self._workers.values()}
        self._quiet.release()  # a worker may fork now (see _start_one)
        try:
            ready = mp_wait(watched)
        finally:
            self._quiet.acquire()
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        for obj in ready:
            reader = self._workers.get(obj)
            if reader is not None and reader.calls:
                self._read_result(reader)
        left = [by_sentinel[obj] for obj in ready if obj in by_sentinel]
        for worker in left:
            self._bury(worker)
        if left and self.broken is None:
            # Replaces workers that left after max_tasks; locks in grow's order (_spawn_lock,
            # then _quiet).  Only then: submit() starts the workers new calls need, and a
            # start from this thread while the caller runs Python must use forkserver.
            self._quiet.release()
            try:
                self.grow()
            finally:
                self._quiet.acquire()
        return True

    def _hand_out(self) -> list[tuple[_Worker, _Call]]:
        """Under the lock: the next running call for every idle worker, then one ahead for each busy one."""
        sends: list[tuple[_Worker, _Call]] = []
        now = time.monotonic()
        with self._lock:
            for ahead in (False, True):
                if ahead and (self._max_tasks is not None or len(self._workers) < self.workers):
                    break  # a worker may exit with a call in its pipe; a new worker may be starting
                for worker in self._workers.values():
                    if len(worker.calls) != int(ahead):
                        continue
                    if ahead and worker.turnaround >= AHEAD_BELOW_S:
                        continue
                    if self._max_tasks is not None and worker.tasks >= self._max_tasks:
                        continue
                    while self._pending:
                        if ahead and len(self._pending[0].message) > AHEAD_MAX_BYTES:
                            break
                        call = self._pending.popleft()
                        if call.future.set_running_or_notify_cancel():
                            if not worker.calls:
                                worker.started_at = now
                            worker.calls.append(call)
                            worker.tasks += 1
                            sends.append((worker, call))
                            break
        return sends

    def _read_result(self, worker: _Worker) -> bool:
        """Complete ``worker``'s running call with what it sent; False if it sent nothing (it died)."""
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            return False  # its sentinel says so
        _, values, failures = received(data, [0])
        now = time.monotonic()
        with self._lock:
            call = worker.calls.popleft()
            worker.turnaround, worker.started_at = now - worker.started_at, now
        try:
            if failures:
                call.future.set_exception(failures[0][0])
            else:
                call.future.set_result(values[0])
        except InvalidStateError:  # pragma: no cover - failed by terminate() meanwhile
            pass
        return True

    def _bury(self, worker: _Worker) -> None:
        """A worker's process ended: expected after ``max_tasks`` calls, else the pool breaks."""
        while worker.calls and worker.conn.poll() and self._read_result(worker):
            pass  # results written just before it exited
        worker.process.join(timeout=STOP_WAIT_S)
        exitcode = worker.process.exitcode
        with self._lock:
            self._workers.pop(worker.conn, None)
            self.processes.pop(worker.pid, None)
        worker.conn.close()
        expected = self._max_tasks is not None and worker.tasks >= self._max_tasks and not worker.calls
        if expected and not self._terminating:
            return
        if self._terminating:
            reason = "the pool was ended (terminate(), terminate_workers(), kill_workers() or Ctrl-C in its with block)"
        else:
            reason = f"a worker process (pid {worker.pid}) {describe_exit(exitcode)}"
            if worker.calls:
                reason += " while running a call"
            elif worker.tasks == 0:
                reason += f" before its first call ({startup_hint(self._method)})"
        self._break(f"{reason}; the pool is not usable anymore", worker)

    def _break(self, reason: str, dead: _Worker | None = None) -> None:
        """Fail every running and pending call with ``BrokenProcessPool``; kill the other workers."""
        with self._lock:
            if self.broken is None:
                self.broken = reason
            workers = [*self._workers.values(), *([dead] if dead is not None else [])]
            calls = [c for w in workers for c in w.calls] + list(self._pending)
            self._pending.clear()
            for w in workers:
                w.calls.clear()
            processes = list(self.processes.values())
        for process in processes:
            if process.is_alive():
                process.kill()
        for call in calls:
            error = BrokenProcessPool(f"{reason} (this call was running or pending)")
            try:
                call.future.set_exception(error)
            except InvalidStateError:
                pass  # cancelled by its owner meanwhile

    def _stop_workers(self) -> None:
        with self._lock:
            self._stopped = True
            workers = list(self._workers.values())
            self._workers.clear()
        self._stop(workers)

    def _stop(self, workers: list[_Worker]) -> None:
        stop_workers([(w.process, w.conn) for w in workers], STOP_WAIT_S)
        with self._lock:
            for worker in workers:
                self.processes.pop(worker.pid, None)

    def _close_pipe(self) -> None:
        with self._lock:
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


def stop_all_at_exit() -> None:
    """Interpreter exit: every pool finishes its queue and stops (as the stdlib's pools do)."""
    global _exiting
    _exiting = True
    pools = list(_pools)
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=False)
    for pool in pools:
        thread = pool._thread
        if thread is not None and pool._pid == os.getpid():
            thread.join()
