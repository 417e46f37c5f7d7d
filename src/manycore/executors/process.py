"""ProcessExecutor: a drop-in ``concurrent.futures.ProcessPoolExecutor``, with the walls removed.

Same constructor (``max_workers``, ``mp_context``, ``initializer``,
``initargs``, ``max_tasks_per_child``), same ``submit``/``map``/``shutdown``
semantics and errors (``BrokenProcessPool`` for every running and pending
call when a worker dies, then for every ``submit``; ``RuntimeError`` after
``shutdown``), futures that work with ``wait`` and ``as_completed``; queued
work still runs at interpreter exit.  Its worker processes are manycore's own
(:mod:`manycore._workers.pool`: no private member of the stdlib's pool is
used), which gives:

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
  executor start the same way.  As in the stdlib, ``max_tasks_per_child``
  without ``mp_context`` starts workers with ``spawn``.
* **fork**: the copy of the executor in a forked child refuses ``submit``
  and ``pmap`` with ``RuntimeError`` (the stdlib pool accepts the call and
  never runs it: its management thread is in the parent), and its
  ``shutdown`` leaves the parent's workers alone.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from .._cpus import available_cpus
from .._workers import serialize as _serialize
from .._workers import start_context
from .._workers.pool import WorkerPool, stop_all_at_exit
from .._workers.setup import WorkerInit
from ..errors import UnpicklableError  # noqa: F401  # its old home: manycore.executors.process.UnpicklableError
from ._contract import ManycoreExecutor, MapPlan, check_max_workers, register_exit_hook

R = TypeVar("R")

#: The most worker processes one executor starts (a larger max_workers is capped, with a warning).
MAX_WORKERS = max(64, 32 * available_cpus())


def _release_segments(segments: list[Any]) -> Callable[[Future[Any]], None]:
    def release(_: Future[Any]) -> None:
        _serialize.release(segments)

    return release


def _check_max_tasks(max_tasks_per_child: Any, mp_context: Any) -> None:
    """The stdlib's checks, in its words."""
    if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
        raise TypeError("max_tasks_per_child must be an integer")
    if max_tasks_per_child <= 0:
        raise ValueError("max_tasks_per_child must be >= 1")
    if mp_context.get_start_method(allow_none=False) == "fork":
        raise ValueError(
            "max_tasks_per_child is incompatible with the 'fork' multiprocessing start method; "
            "supply a different mp_context."
        )


def _run_calls(fn: Callable[..., Any], chunk: tuple[tuple[Any, ...], ...]) -> list[Any]:
    """In a worker: one chunk of ``map`` (the stdlib sends ``map`` in chunks too)."""
    return [fn(*args) for args in chunk]


def _chunks(iterables: tuple[Iterable[Any], ...], size: int) -> Iterator[tuple[tuple[Any, ...], ...]]:
    arguments = zip(*iterables, strict=False)  # the shortest input ends map, as in the stdlib
    while chunk := tuple(itertools.islice(arguments, size)):
        yield chunk


def _flatten(chunks: Iterator[list[Any]]) -> Iterator[Any]:
    try:
        for chunk in chunks:
            yield from chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # early exit: the stdlib's map cancels what has not run


class ProcessExecutor(ManycoreExecutor):
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
        if workers > MAX_WORKERS:
            warnings.warn(
                f"max_workers={workers} is more processes than this machine can run usefully; "
                f"capped at {MAX_WORKERS} (workers start on demand, never more than calls waiting)",
                RuntimeWarning,
                stacklevel=2,
            )
            workers = MAX_WORKERS
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._init = WorkerInit(initializer, tuple(initargs)) if initializer is not None else None
        auto_fork = mp_context is None and max_tasks_per_child is None
        if max_tasks_per_child is not None:
            mp_context = mp_context or multiprocessing.get_context("spawn")
            _check_max_tasks(max_tasks_per_child, mp_context)
        else:
            mp_context = start_context(mp_context, self._init)  # fork only when no thread runs Python
        self._max_workers = workers
        self._mp_context = mp_context
        self._inner_threads = max(1, available_cpus() // workers) if limit_inner_threads else None
        self._pool = WorkerPool(
            workers, mp_context, self._init, self._inner_threads, max_tasks_per_child, auto_fork
        )
        # dropped without shutdown(): the queue drains and the workers stop (as the stdlib's do)
        weakref.finalize(self, self._pool.shutdown, False, False)
        self._engine: Any = None  # the shared engine of pmap, started on first use
        self._engine_in_use = False  # a pmap is running on it
        self._private_engines: set[Any] = set()  # engines of pmaps that overlapped another
        self._engine_lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def map_plan(self) -> MapPlan:
        """pmap runs on this executor's fault-tolerant process engine (a private one while it is busy)."""
        return MapPlan(workers=self.max_workers, engine=self._claim_engine)

    @property
    def mp_context(self) -> Any:
        return self._mp_context

    @property
    def _processes(self) -> dict[int, Any]:
        """``{pid: Process}`` of the live workers (the stdlib pool's attribute of that name)."""
        return self._pool.processes

    def _check_not_forked(self) -> None:
        if self._pid != os.getpid():
            raise RuntimeError(
                "this ProcessExecutor was created before fork(); its worker processes belong to the parent"
            )

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        self._check_not_forked()
        self._pool.check_open()
        segments: list[Any] = []
        future: Future[R] = Future()
        try:
            payload, meta = _serialize.dumps_shared([(fn, args, kwargs)], segments)
        except Exception as exc:
            _serialize.release(segments)
            future.set_exception(_pickling_error(fn, args, kwargs, exc))
            return future
        if segments:
            future.add_done_callback(_release_segments(segments))
        try:
            self._pool.submit(future, payload, meta)
        except BaseException:
            _serialize.release(segments)
            raise
        return future

    def map(  # the stdlib's signature (buffersize= on 3.14 passes through)
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        **kwargs: Any,
    ) -> Iterator[R]:
        """``Executor.map``, sent to the workers ``chunksize`` calls at a time (as the stdlib does)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        chunks = super().map(
            functools.partial(_run_calls, fn), _chunks(iterables, chunksize), timeout=timeout, **kwargs
        )
        return _flatten(chunks)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._engine_lock:
            engines = [self._engine, *self._private_engines]
            self._engine = None
            self._private_engines.clear()
        if self._pid == os.getpid():
            for engine in engines:
                if engine is not None:
                    engine.close()
        self._pool.shutdown(wait, cancel_futures)

    def terminate(self) -> None:
        """Cancel queued work and kill the workers now (what Ctrl-C in a ``with`` block does).

        On return every future is done: queued ones cancelled, running ones
        failed with ``BrokenProcessPool``.
        """
        self.shutdown(wait=False, cancel_futures=True)
        self._pool.terminate("kill")

    def terminate_workers(self) -> None:
        """CPython 3.14's API, on every version: cancel queued work, ``SIGTERM`` every worker.

        Like ``shutdown(wait=False, cancel_futures=True)`` plus
        ``Process.terminate()`` on each live worker; running calls then fail
        with ``BrokenProcessPool``.  Returns without waiting.
        """
        self.shutdown(wait=False, cancel_futures=True)
        self._pool.terminate("terminate", wait=False)

    def kill_workers(self) -> None:
        """As :meth:`terminate_workers`, with ``SIGKILL`` (``Process.kill()``)."""
        self.shutdown(wait=False, cancel_futures=True)
        self._pool.terminate("kill", wait=False)

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
            self._pool.check_open()
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


register_exit_hook(stop_all_at_exit)  # queued calls run before the interpreter exits
