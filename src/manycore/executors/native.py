"""NativeExecutor: calls on threads created by the native runtime (C, pthreads).

The workers are ``max_workers`` POSIX threads created by the C extension
(:func:`manycore.native.call_in_threads`, launched from one background
``threading.Thread`` named ``manycore-native-launcher-N`` that waits in C
until they exit).  Each native thread attaches to the interpreter with
``PyGILState_Ensure`` and loops taking work items from a FIFO queue until it
gets a stop sentinel.  ``threading.get_native_id()`` inside a task is the id of
one of those threads (see :attr:`NativeExecutor.native_ids`); to the
``threading`` module they are foreign (``threading.current_thread()`` is a
``_DummyThread``).

Which work runs without the GIL
    * **Python callables** run *with* the GIL, exactly like on a thread pool:
      they overlap only where they release it (I/O, ``time.sleep``, NumPy,
      the ``manycore.native`` kernels).
    * **C callables called through ctypes** -- a function pointer from
      ``ctypes.CDLL`` (or ``CFUNCTYPE(...)(address)``) -- run the foreign
      function itself without the GIL: ctypes releases it for the duration of
      the C call (converting the arguments and the result holds it).  So
      ``max_workers`` such calls run truly in parallel.  Functions from
      ``ctypes.PyDLL`` / ``ctypes.pythonapi`` keep the GIL, and a ctypes
      *callback* (a Python function wrapped by ``CFUNCTYPE``) takes it back for
      its body.  Set ``argtypes``: without it ctypes passes Python ints as C
      ``int`` and silently truncates pointers and ``size_t`` values.
      :func:`is_native_callable` says whether a callable is such a C callable
      (ctypes pointers with ``argtypes`` set, and any object whose
      ``__manycore_native__`` attribute is true, which other binding layers use
      to mark their GIL-releasing functions).
    * :meth:`NativeExecutor.submit_range` runs a C range function
      ``void f(void *context, size_t begin, size_t end)`` through
      :func:`manycore.native.parallel_for` on the native *pool* (not on the
      executor's threads): the whole range runs without the GIL on every pool
      thread, and the executor thread that dispatched it waits in C, also
      without the GIL.  A range function that is really a ctypes/cffi Python
      callback takes the GIL per chunk, so it runs serialised.
    * The executor's own bookkeeping (taking an item, setting the future) holds
      the GIL for a few microseconds per item.

``shutdown(wait=True, *, cancel_futures=False)``
    The stdlib ``ThreadPoolExecutor``'s semantics.  Idempotent; ``submit``
    raises ``RuntimeError`` afterwards.  ``cancel_futures=True`` cancels every
    queued item that no thread has taken (``wait``/``as_completed`` see them
    at once); running calls are never interrupted (a C call cannot be).
    Queued items that are not cancelled still run.  ``wait=True`` returns once
    every native thread has exited and the launcher thread is joined; from a
    task on one of the executor's own threads it behaves like ``wait=False``
    (a thread cannot wait for itself), and it does not wait for a thread
    whose call ``pmap`` abandoned after its ``task_timeout``.  An executor that
    is garbage-collected is shut down with ``wait=False`` (as the stdlib's
    pools: dropping it does not block); one still open at interpreter exit with
    ``wait=True``.  A task that waits for a queued call of the same executor
    runs it inline (see :mod:`manycore.executors._work`).  After ``fork()`` the child has none of the
    threads: its copy refuses ``submit`` with ``RuntimeError``.

If the OS refuses to create a thread, the constructor raises the runtime's
``OSError`` (``errno`` ``EAGAIN``) after the threads that did start have exited.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import threading
import weakref
from _ctypes import FUNCFLAG_PYTHONAPI, CFuncPtr
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

from .. import native
from .._validate import MAX_THREADS, as_int, check_int
from ._contract import ManycoreExecutor, MapPlan, check_max_workers, register_exit_hook
from ._work import OwnFuture, WorkItem, cancel, drain, warn_abandoned

__all__ = ["NativeExecutor", "is_native_callable"]

P = ParamSpec("P")
R = TypeVar("R")

#: A safety net: how long the constructor waits for every native thread to
#: report in.  A failed thread creation is reported at once (the launcher's
#: ``on_start_failure`` stops the threads already started).
STARTUP_TIMEOUT_S = 30.0

_launcher_counter = itertools.count()


def is_native_callable(fn: object) -> bool:
    """True for C callables that run without the GIL when called (see the module documentation)."""
    if getattr(fn, "__manycore_native__", False) is True:
        return True
    if isinstance(fn, CFuncPtr):
        flags = int(getattr(fn, "_flags_", 0))
        return fn.argtypes is not None and not flags & FUNCFLAG_PYTHONAPI
    return False


def function_address(fn: object) -> int:
    """The address of a C function: an int, or a ctypes function pointer."""
    if isinstance(fn, CFuncPtr):
        address = ctypes.cast(fn, ctypes.c_void_p).value
        return 0 if address is None else int(address)
    return as_int(fn, "fn_address")


class _Workers:
    """The native threads and their queue.  Holds no reference to the executor,
    so an executor nobody references is collected and its threads stopped."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.queue: queue.SimpleQueue[WorkItem | None] = queue.SimpleQueue()
        self.cond = threading.Condition()
        self.native_ids: list[int] = []
        self.exited: set[int] = set()  # native ids of the threads that left worker_main (under cond)
        self.abandoned: dict[int, str] = {}  # native id -> the call pmap gave up on (under cond)
        self.launch_error: BaseException | None = None
        self.launcher_done = False
        self.stopped = False
        self.stop_lock = threading.Lock()
        self.pid = os.getpid()
        self.launcher = threading.Thread(
            target=self.launch, name=f"manycore-native-launcher-{next(_launcher_counter)}", daemon=True
        )

    def launch(self) -> None:  # the launcher thread
        try:
            native.call_in_threads(self.worker_main, self.count, on_start_failure=self.start_failed)
        except BaseException as exc:
            self.launch_error = exc
        finally:
            with self.cond:
                self.launcher_done = True
                self.cond.notify_all()

    def start_failed(self, started: int, os_error: int) -> None:  # the launcher, before the join
        # The threads that did start are waiting for work: stop them now, so
        # that the join returns and the constructor raises at once.
        with self.stop_lock:
            self.stopped = True
        for _ in range(started):
            self.queue.put(None)

    def worker_main(self, index: int) -> None:  # a native thread, holding the GIL between items
        with self.cond:
            self.native_ids.append(threading.get_native_id())
            self.cond.notify_all()
        me = threading.get_native_id()
        get = self.queue.get
        try:
            while True:
                item = get()  # blocks with the GIL released
                if item is None:
                    return
                item.run()
                del item
                if me in self.abandoned:  # its call came back late: it serves again
                    with self.cond:
                        self.abandoned.pop(me, None)
        finally:
            with self.cond:
                self.exited.add(me)
                self.cond.notify_all()

    def wait_started(self, timeout_s: float) -> bool:
        with self.cond:
            return (
                self.cond.wait_for(
                    lambda: len(self.native_ids) == self.count or self.launcher_done, timeout=timeout_s
                )
                and len(self.native_ids) == self.count
            )

    def on_worker_thread(self) -> bool:
        return threading.get_native_id() in self.native_ids

    on_own_worker = on_worker_thread  # the Owner of this executor's futures (nested waits run inline)

    def abandon(self, future: Future[Any], what: str) -> None:
        """pmap gave up on ``future``'s running call: nothing waits for its thread until it returns."""
        item = getattr(future, "_item", None)
        thread = item.thread if item is not None else None
        if thread is None or thread.native_id is None:
            return
        with self.cond:
            if thread.native_id not in self.exited:
                self.abandoned[thread.native_id] = what

    def join(self) -> None:
        """Wait for the threads to exit (after stop()); not for abandoned ones, nor the calling one."""
        me = threading.get_native_id()
        with self.cond:
            self.cond.wait_for(
                lambda: all(t in self.exited or t in self.abandoned or t == me for t in self.native_ids)
            )
            abandoned = bool(self.abandoned) or me in self.native_ids
        if not abandoned:
            self.launcher.join()  # every native thread has exited: returns at once

    def warn_abandoned(self) -> None:
        with self.cond:
            left = [what for t, what in self.abandoned.items() if t not in self.exited]
        for what in left:
            warn_abandoned("a native thread", what)

    def stop(self) -> None:
        """Post one stop sentinel per thread (once); queued items ahead of them still run."""
        with self.stop_lock:
            if self.stopped:
                return
            self.stopped = True
        if self.pid != os.getpid():
            return
        for _ in range(self.count):
            self.queue.put(None)

    def cancel_queued(self) -> None:
        drain(self.queue, cancel)


def _stop_and_join(workers: _Workers) -> None:
    # Executor collected without shutdown, or still open at interpreter exit.
    workers.stop()
    if workers.pid == os.getpid() and workers.launcher.is_alive():
        workers.join()


_live_workers: weakref.WeakSet[_Workers] = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    # When the main thread ends, as the stdlib's ThreadPoolExecutor does: queued
    # items still run, then the threads exit, before atexit handlers (which can
    # then no longer submit: RuntimeError).
    for workers in list(_live_workers):
        _stop_and_join(workers)
        workers.warn_abandoned()


register_exit_hook(_stop_all_at_exit)
if hasattr(os, "register_at_fork"):
    # A forked child has none of the threads (its copies refuse submit).
    os.register_at_fork(after_in_child=_live_workers.clear)


class NativeExecutor(ManycoreExecutor):
    """Run callables on native threads of the C runtime (see the module documentation).

    ``max_workers`` threads (default: one per available CPU, at most
    ``manycore.native.MAX_THREADS``) are created at construction.  ``pool``
    is the :class:`manycore.native.Pool` that :meth:`submit_range` dispatches
    on (default: the process-wide default pool).
    """

    backend_name = "native"

    def __init__(self, max_workers: int | None = None, *, pool: native.Pool | None = None) -> None:
        count = check_max_workers(max_workers, native.default_threads())
        if count > MAX_THREADS:
            raise ValueError(f"max_workers must be at most {MAX_THREADS}, got {count}")
        if pool is not None and not isinstance(pool, native.Pool):
            raise TypeError(f"pool must be a manycore.native.Pool or None, not {type(pool).__name__}")
        self._max_workers = count
        self._pool = pool
        self._lock = threading.Lock()
        self._shutdown = False
        workers = _Workers(count)
        workers.launcher.start()
        if not workers.wait_started(STARTUP_TIMEOUT_S):
            workers.stop()  # the threads that did start exit
            workers.launcher.join()
            if workers.launch_error is not None:
                raise workers.launch_error
            raise OSError(f"the native threads did not start within {STARTUP_TIMEOUT_S} s")
        self._workers = workers
        self._finalizer = weakref.finalize(self, workers.stop)  # as the stdlib: dropping it does not wait
        _live_workers.add(workers)

    @property
    def max_workers(self) -> int:
        """Number of native worker threads."""
        return self._max_workers

    @property
    def native_ids(self) -> tuple[int, ...]:
        """OS thread ids (``threading.get_native_id()``) of the executor's native threads."""
        return tuple(self._workers.native_ids)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` on one of the native threads."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        future: OwnFuture[R] = OwnFuture(self._workers)
        with self._lock:
            if self._workers.pid != os.getpid():
                raise RuntimeError(
                    "this NativeExecutor was created before fork(); its threads are in the parent"
                )
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._workers.stopped:  # stopped by the exit hook (atexit handlers run after it)
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            self._workers.queue.put(WorkItem(future, fn, args, kwargs))
        return future

    def submit_range(
        self,
        fn_address: int | CFuncPtr,
        n: int,
        context: int = 0,
        grain: int = 0,
        *,
        schedule: str = "static",
        threads: int | None = None,
    ) -> Future[None]:
        """Run the C function ``void f(void *context, size_t begin, size_t end)`` over ``[0, n)``.

        ``fn_address`` is an address (``ctypes.cast(f, ctypes.c_void_p).value``,
        cffi, Numba ``cfunc``) or a ctypes function pointer.  The range is run by
        :func:`manycore.native.parallel_for` on the executor's ``pool`` (default:
        the shared pool) without the GIL, in chunks of ``grain`` indices; the
        returned future completes when every chunk has returned.  Arguments are
        checked here (``ValueError``/``TypeError``); ``schedule`` and
        ``threads`` are :func:`manycore.native.parallel_for`'s.  Dispatches from
        several executor threads onto one pool are serialised by the pool.
        """
        address = function_address(fn_address)
        if address <= 0:
            raise ValueError(f"fn_address must be a nonzero function address, got {address}")
        count = check_int(n, "n", minimum=0)
        ctx = check_int(context, "context", minimum=0)
        chunk = check_int(grain, "grain", minimum=0)
        if schedule not in ("static", "dynamic"):
            raise ValueError(f"schedule must be 'static' or 'dynamic', got {schedule!r}")
        return self.submit(
            native.parallel_for,
            address,
            count,
            ctx,
            chunk,
            schedule=schedule,
            threads=threads,
            pool=self._pool,
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; see the module documentation for the exact semantics."""
        workers = self._workers
        with self._lock:
            self._shutdown = True
            if workers.pid != os.getpid():
                return
            if cancel_futures:
                workers.cancel_queued()
            workers.stop()
        if wait:
            workers.join()

    def map_plan(self) -> MapPlan:
        """Batches on ``max_workers`` native threads; a call that overran ``task_timeout`` is abandoned."""
        return MapPlan(workers=self.max_workers, abandon=self._workers.abandon, timed_from_start=True)
