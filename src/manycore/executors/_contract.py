"""The contract every manycore executor keeps.

Every backend is a real :class:`concurrent.futures.Executor`: ``submit``
returns a real :class:`concurrent.futures.Future`, so ``as_completed``,
``wait`` and ``add_done_callback`` work unchanged.  On top of the stdlib
semantics every backend guarantees:

``submit(fn, /, *args, **kwargs)``
    Schedules ``fn(*args, **kwargs)``; raises ``RuntimeError`` after
    ``shutdown`` (``BrokenExecutor`` subclasses once the executor is broken).
    An exception raised by ``fn`` is set on the future unchanged (same type,
    same args); when it was raised in another process its original traceback
    text travels as ``__cause__`` (a :class:`RemoteTraceback`), like the
    stdlib's ``ProcessPoolExecutor``.

``map(fn, *iterables, timeout=None, chunksize=1)``
    The stdlib semantics: results in input order; ``timeout`` counts from
    the call to ``map`` and raises ``TimeoutError`` from ``__next__``.

``shutdown(wait=True, *, cancel_futures=False)``
    Idempotent.  ``cancel_futures=True`` cancels every future that has not
    started.  ``wait=True`` returns when running work has finished and the
    workers are gone.  Leaving a ``with`` block is ``shutdown(wait=True)``,
    except by ``KeyboardInterrupt``: then queued work is cancelled first
    (and processes are killed, coroutines cancelled) so Ctrl-C is prompt.

``pmap(fn, iterable, ...)`` / ``pstarmap(fn, iterable, ...)``
    :func:`manycore.pmap` on this executor (see there for errors, timeouts,
    chunking and progress).

Worker failures are reported as data where the caller asks for it
(:class:`TaskError` with ``errors="collect"``) and as exceptions otherwise;
a dead worker process is a :class:`WorkerCrashed` (a ``BrokenProcessPool``)
that names the item, the pid and the signal or exit code.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co")


class MapResult(Protocol[R_co]):
    """What ``executor.pmap`` returns (a :class:`manycore.PMapResult`), as the executors know it."""

    def __iter__(self) -> Iterator[R_co]: ...

    def __next__(self) -> R_co: ...

    def results(self) -> list[R_co]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MapPlan:
    """How ``pmap`` runs on an executor: what :meth:`ManycoreExecutor.map_plan` tells it.

    ``workers``
        How many items run at once (chunks are sized for that many).
    ``one_by_one``
        Hand items over one at a time (``fn(item)`` per future), not in
        batches: for executors whose calls are coroutines or otherwise cannot
        run a batch as one call.
    ``engine``
        A batch engine to run the whole map on, if the executor has one: a
        callable returning a context manager that yields an object with
        ``run(fn, source, *, chunksize, task_timeout, deadline, may_dispatch,
        expected_items)`` (the process engine of ``manycore._workers``).
        ``None``: pmap submits batches as futures.
    ``abandon``
        ``abandon(future, what)``: pmap gives up on a running call that
        overran its ``task_timeout`` and cannot be killed (``what`` names
        the item).  The executor must then wait for it neither in
        ``shutdown`` nor at interpreter exit.  ``None``: the executor has
        no such calls, or cannot let go of them.
    ``timed_from_start``
        ``task_timeout`` counts from the moment an item's future turns
        running (its call started: a worker that is still starting, such as a
        new subinterpreter, does not eat into it).  ``False`` (the default):
        from ``submit``, for executors whose futures never report running
        (Dask's client cannot see it).
    """

    workers: int
    one_by_one: bool = False
    engine: Callable[[], AbstractContextManager[Any]] | None = None
    abandon: Callable[[Future[Any], str], None] | None = None
    timed_from_start: bool = False


# The map functions behind ManycoreExecutor.pmap/pstarmap, set by manycore.pmap
# when it is imported (it sits above the executors: they never import it).
_map_functions: dict[str, Callable[..., Any]] = {}


def register_map_functions(pmap: Callable[..., Any], pstarmap: Callable[..., Any]) -> None:
    """Called once by :mod:`manycore.pmap`: what ``executor.pmap``/``pstarmap`` run."""
    _map_functions.update(pmap=pmap, pstarmap=pstarmap)


class ManycoreExecutor(Executor):
    """Base of every manycore backend: a ``concurrent.futures.Executor`` plus ``pmap``."""

    #: Name used by :func:`manycore.get_executor` and ``pmap(backend=...)``.
    backend_name: ClassVar[str] = "?"

    @property
    def max_workers(self) -> int:
        """How many calls run at once."""
        return int(getattr(self, "_max_workers", 1))

    def map_plan(self) -> MapPlan:
        """The one thing ``pmap`` asks an executor: how to run a map on it (see :class:`MapPlan`).

        Default: batches submitted as futures, ``max_workers`` at once.
        """
        return MapPlan(workers=self.max_workers)

    def pmap(self, fn: Callable[[T], R], iterable: Iterable[T], **options: Any) -> MapResult[R]:
        """:func:`manycore.pmap` on this executor (a :class:`manycore.PMapResult`)."""
        result: MapResult[R] = _map_functions["pmap"](fn, iterable, executor=self, **options)
        return result

    def pstarmap(
        self, fn: Callable[..., R], iterable: Iterable[Iterable[Any]], **options: Any
    ) -> MapResult[R]:
        """:func:`manycore.pstarmap` on this executor (a :class:`manycore.PMapResult`)."""
        result: MapResult[R] = _map_functions["pstarmap"](fn, iterable, executor=self, **options)
        return result

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> bool | None:
        """Leaving ``with`` is ``shutdown(wait=True)``, except by Ctrl-C: see :meth:`_interrupted_exit`."""
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self._interrupted_exit()
            return False
        return super().__exit__(exc_type, exc_val, exc_tb)

    def _interrupted_exit(self) -> None:
        """Ctrl-C left the ``with`` block: the user wants out, not the rest of the queue.

        The stdlib's ``__exit__`` runs every queued call before the
        ``KeyboardInterrupt`` gets through; here queued work is cancelled and
        only the calls already running are waited for (threads cannot be
        interrupted).  Backends that can stop running work do more.
        """
        self.shutdown(wait=True, cancel_futures=True)


class NotifyCancelledOnShutdown:
    """Mixin for the stdlib pools: futures cancelled by ``shutdown(cancel_futures=True)`` notify waiters.

    The stdlib cancels queued futures with ``Future.cancel()`` only, which
    leaves them in the internal ``CANCELLED`` state: ``wait()`` keeps them in
    ``not_done`` and ``as_completed()`` never yields them, so code waiting on
    them hangs until its timeout.  Moving them to ``CANCELLED_AND_NOTIFIED``
    (what the stdlib does when a cancelled future reaches a worker) wakes them.
    Only cancellations made by shutdown are touched: a future cancelled by the
    user earlier is still notified by the pool itself, as in the stdlib.
    """

    _cancelling_on_shutdown = False

    def _watch(self, future: Future[Any]) -> None:
        # A weak reference: a future (or a map() iterator) kept by the caller
        # must not keep the executor alive, or dropping the executor without
        # shutdown() would never stop its workers (the stdlib's do stop).
        executor = weakref.ref(self)

        def notify_if_cancelled(f: Future[Any]) -> None:
            me = executor()
            if me is not None and me._cancelling_on_shutdown and getattr(f, "_state", None) == "CANCELLED":
                f.set_running_or_notify_cancel()

        future.add_done_callback(notify_if_cancelled)


def register_exit_hook(hook: Callable[[], object]) -> None:
    """Run ``hook`` when the main thread ends, before the stdlib's thread pools stop.

    ``threading._register_atexit`` hooks run at the start of interpreter
    shutdown, in reverse order of registration, before non-daemon threads are
    joined and before ``atexit`` handlers.  ``concurrent.futures.thread``
    registers one that makes every ``ThreadPoolExecutor`` (also those inside
    asyncio and Dask) refuse new work; importing it first puts ``hook`` ahead
    of it, so work finishing at exit can still use those pools.  Ctrl-C
    while ``hook`` waits ends the process (:func:`exit_interruptibly`).
    """
    import concurrent.futures.thread  # noqa: F401  # its hook must be registered before ours

    def interruptible() -> None:
        exit_interruptibly(hook)

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - CPython < 3.9 or another interpreter
        atexit.register(interruptible)
    else:
        register(interruptible)


def exit_interruptibly(wait: Callable[[], object]) -> None:
    """Run an exit hook's ``wait``; Ctrl-C during it ends the process by ``SIGINT``, at once.

    CPython prints a ``KeyboardInterrupt`` raised by an exit hook, ignores it
    and exits with status 0, as if the program had succeeded.  A user who
    presses Ctrl-C while the interpreter waits for running calls at exit
    wants out, and a shell or CI job must see that it was interrupted: the
    process ends the way an interrupted C program does (killed by SIGINT,
    status 130 in a shell), after flushing what it printed.
    """
    try:
        wait()
    except KeyboardInterrupt:
        import signal
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except (ValueError, OSError, AttributeError):  # not the main thread, or no such signal here
            pass
        os._exit(130)


def check_max_workers(max_workers: int | None, default: int) -> int:
    """The stdlib's validation: ``None`` means ``default``; 0 or negative is ``ValueError``."""
    if max_workers is None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int or None, not {type(max_workers).__name__}")
    if max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    return max_workers
