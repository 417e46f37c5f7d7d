"""ProcessExecutor: a drop-in ``concurrent.futures.ProcessPoolExecutor``, with the walls removed.

It *is* a ``ProcessPoolExecutor`` (same constructor: ``max_workers``,
``mp_context``, ``initializer``, ``initargs``, ``max_tasks_per_child``; same
``submit``/``map``/``shutdown`` semantics; ``BrokenProcessPool`` when a worker
dies), plus:

* **cloudpickle**: lambdas, closures and interactively defined functions work
  as ``fn`` and as ``initializer``; an argument that cannot be pickled fails
  that future at once with the pickler's exception (as in the stdlib: often a
  ``TypeError``), plus a note naming the argument.  A call that cannot be
  unpickled in the worker fails with ``BrokenProcessPool`` like the stdlib's,
  but only that call: the pool goes on.
* **big NumPy arrays** (>= 1 MiB) travel through shared memory, released when
  the future is done.
* **exceptions that do not survive pickling** (custom ``__init__``, unpicklable
  attributes) come back as :class:`UnpicklableError` carrying the original
  type name, message and traceback, instead of breaking the pool.
* **no oversubscription**: BLAS/OpenMP pools inside workers are limited with
  threadpoolctl to ``cpus // max_workers`` threads (``limit_inner_threads``):
  at start in the ``submit``/``map`` workers, and in ``pmap``'s workers once
  a chunk has run 0.1 s (limiting a forked OpenBLAS pool starts threads that
  spin for tens of milliseconds: a short map would pay more than it saves).
  Libraries a worker loads later get ``OMP_NUM_THREADS`` & co.
* **Ctrl-C**: workers ignore SIGINT (the parent owns the decision); leaving a
  ``with`` block by ``KeyboardInterrupt`` cancels queued work and terminates
  the workers instead of waiting for running tasks.
* ``pmap`` runs on a fault-tolerant engine (per-task timeouts that kill only
  the stuck worker, crash reports per item) with this executor's settings.
* **fork only when it cannot deadlock**: when the default start method is
  ``fork`` (Linux before 3.14) and no ``mp_context`` is given, the workers
  are forked only if no other thread of the caller runs Python when the
  executor is created; otherwise they start with ``forkserver`` (a lock
  another thread held at fork time would stay held in the worker for ever).
  ``mp_context`` tells which one was chosen; ``pmap``'s workers on this
  executor start the same way.
* **fork**: the copy of the executor in a forked child refuses ``submit``
  and ``pmap`` with ``RuntimeError`` (the stdlib pool accepts the call and
  never runs it: its management thread is in the parent), and its
  ``shutdown`` leaves the parent's workers alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .._cpus import available_cpus
from .._workers import serialize as _serialize
from .._workers import start_context
from .._workers.report import portable
from .._workers.setup import WorkerInit, forking, worker_setup
from ..errors import UnpicklableError  # noqa: F401  # its old home: manycore.executors.process.UnpicklableError
from ._contract import ManycoreExecutor, MapPlan, NotifyCancelledOnShutdown, check_max_workers

R = TypeVar("R")

#: How long terminate() waits for the pool to fail the futures its killed workers ran.
_TERMINATE_SETTLE_S = 30.0


def _run_payload(payload: bytes, segments: list[_serialize.Segment]) -> Any:
    try:
        fn, args, kwargs = _serialize.loads_shared(payload, segments)
    except BaseException as exc:  # also SystemExit raised by a __setstate__
        # The stdlib unpickles the call in the worker's main loop, where this
        # kills the worker and breaks the pool (BrokenProcessPool).  Here only
        # this call fails, with the same exception type; the pool goes on.
        raise BrokenProcessPool(
            f"the call could not be unpickled in the worker process ({type(exc).__name__}: {exc}); "
            "the pool is still usable"
        ) from exc
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        travels = portable(exc)
        if travels is exc:
            raise
        raise travels from exc  # the pool formats the chain: the original traceback travels as text


def _release_segments(segments: list[Any]) -> Callable[[Future[Any]], None]:
    def release(_: Future[Any]) -> None:
        _serialize.release(segments)

    return release


class ProcessExecutor(NotifyCancelledOnShutdown, ProcessPoolExecutor, ManycoreExecutor):
    backend_name = "processes"

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        limit_inner_threads: bool = True,
    ) -> None:
        workers = check_max_workers(max_workers, available_cpus())
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._user_initializer = initializer
        self._user_initargs = tuple(initargs)
        self._inner_threads = max(1, available_cpus() // workers) if limit_inner_threads else None
        self._init = WorkerInit(initializer, tuple(initargs)) if initializer is not None else None
        self._engine: Any = None  # the shared engine of pmap, started on first use
        self._engine_in_use = False  # a pmap is running on it
        self._private_engines: set[Any] = set()  # engines of pmaps that overlapped another
        self._engine_lock = threading.Lock()
        self._pid = os.getpid()
        self._submitted: weakref.WeakSet[Future[Any]] = weakref.WeakSet()  # for terminate()
        self._submitted_lock = threading.Lock()
        kwargs: dict[str, Any] = {}
        if max_tasks_per_child is not None:
            kwargs["max_tasks_per_child"] = max_tasks_per_child  # the stdlib checks it with mp_context
        else:
            mp_context = start_context(mp_context, self._init)  # fork only when no thread runs Python
        super().__init__(
            max_workers=workers,
            mp_context=mp_context,
            initializer=worker_setup,
            initargs=(self._init, self._inner_threads),
            **kwargs,
        )

    def _spawn_process(self) -> None:
        # where the stdlib starts each worker (3.9+): see forking()
        with forking(self._mp_context, self._inner_threads):
            super()._spawn_process()  # type: ignore[misc]  # private in the stdlib

    @property
    def max_workers(self) -> int:
        return int(self._max_workers)  # type: ignore[attr-defined]  # set by ProcessPoolExecutor

    def map_plan(self) -> MapPlan:
        """pmap runs on this executor's fault-tolerant process engine (a private one while it is busy)."""
        return MapPlan(workers=self.max_workers, engine=self._claim_engine)

    @property
    def mp_context(self) -> Any:
        return self._mp_context

    def _check_not_forked(self) -> None:
        if self._pid != os.getpid():
            raise RuntimeError(
                "this ProcessExecutor was created before fork(); its worker processes belong to the parent"
            )

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        self._check_not_forked()
        segments: list[Any] = []
        try:
            payload, meta = _serialize.dumps_shared((fn, args, kwargs), segments)
        except Exception as exc:
            _serialize.release(segments)
            if self._shutdown_thread or self._broken:
                return super().submit(fn, *args, **kwargs)  # raises the stdlib's error
            failed: Future[R] = Future()
            failed.set_exception(_pickling_error(fn, args, kwargs, exc))
            self._start_workers_as_submit_does()
            return failed
        try:
            future: Future[R] = super().submit(_run_payload, payload, meta)
        except BaseException:
            _serialize.release(segments)
            raise
        if segments:
            future.add_done_callback(_release_segments(segments))
        self._watch(future)
        with self._submitted_lock:
            self._submitted.add(future)
        return future

    def _start_workers_as_submit_does(self) -> None:
        # A call that could not be pickled fails at once, but the stdlib pool
        # (which pickles in a feeder thread) starts workers for it anyway:
        # keep the same worker processes as it would have.
        with self._shutdown_lock:
            if getattr(self, "_safe_to_dynamically_spawn_children", False):  # 3.11+
                self._adjust_process_count()
            self._start_executor_manager_thread()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._engine_lock:
            engines = [self._engine, *self._private_engines]
            self._engine = None
            self._private_engines.clear()
        if self._pid == os.getpid():
            for engine in engines:
                if engine is not None:
                    engine.close()
        if cancel_futures:
            self._cancelling_on_shutdown = True
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Cancel queued work and kill the workers now (what Ctrl-C in a ``with`` block does).

        On return every future is done: queued ones cancelled, running ones
        failed with ``BrokenProcessPool``.
        """
        processes = list((self._processes or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.kill()
        for p in processes:
            p.join(timeout=5)
        # The pool's manager thread sees the dead workers and fails the running
        # futures (BrokenProcessPool) soon after: wait for that, so that every
        # future is done on return.
        with self._submitted_lock:
            pending = [f for f in self._submitted if not f.done()]
        wait(pending, timeout=_TERMINATE_SETTLE_S)

    def _interrupted_exit(self) -> None:
        self.terminate()  # Ctrl-C in a ``with`` block: running work is killed too

    def _new_engine(self) -> Any:
        from .._workers.engine import ProcessEngine

        return ProcessEngine(
            workers=self.max_workers,
            mp_context=self._mp_context,  # the start method chosen when the executor was created
            init=self._init,
            inner_threads=self._inner_threads,
        )

    def _get_engine(self) -> Any:
        """The fault-tolerant engine that runs ``pmap`` with this executor's settings."""
        self._check_not_forked()
        with self._engine_lock:
            if self._shutdown_thread:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._engine is None:
                self._engine = self._new_engine()
            return self._engine

    @contextlib.contextmanager
    def _claim_engine(self) -> Iterator[Any]:
        """An engine for one pmap: the shared one, or a private one while the shared one is busy.

        An engine's workers serve one map at a time, so a pmap that overlaps
        another (from another thread, or nested in the loop over the first)
        gets workers of its own, closed when it ends.
        """
        engine = self._get_engine()
        with self._engine_lock:
            private = self._engine_in_use
            if private:
                engine = self._new_engine()
                self._private_engines.add(engine)
            else:
                self._engine_in_use = True
        try:
            yield engine
        finally:
            with self._engine_lock:
                if private:
                    self._private_engines.discard(engine)
                else:
                    self._engine_in_use = False
            if private:
                engine.close()


def _pickling_error(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: Exception) -> Exception:
    """The pickler's own exception (as the stdlib pool reports it), noting which part failed."""
    culprit = "the call"
    candidates: list[tuple[str, Any]] = [("fn", fn)]
    candidates += [(f"argument {i}", a) for i, a in enumerate(args)]
    candidates += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for name, value in candidates:
        try:
            _serialize.dumps(value)
        except Exception:
            culprit = name
            break
    exc.add_note(f"cannot send {culprit} to a worker process")
    return exc
