"""What every worker process manycore starts runs first, and what the parent prepares for it.

* :class:`WorkerInit`: the user's ``initializer(*initargs)`` as workers get
  it (inherited under fork, pickled when the worker is spawned, cloudpickle
  for lambdas and closures);
* :func:`worker_setup`: ignore SIGINT (the parent owns Ctrl-C), cap the
  BLAS/OpenMP pools at ``inner_threads`` (:func:`limit_inner_threads`), run
  the initializer;
* :func:`forking`: around starting workers in the parent, so that a forked
  worker inherits a ready threadpoolctl scan and no scan races a fork;
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_limits

from . import serialize as _serialize
from ._start import fork_only, starting_workers

_limiter: Any = None  # the worker's threadpoolctl limiter, kept alive for its lifetime


# The parent's threadpoolctl view of its loaded BLAS/OpenMP libraries, built
# before forking workers so that a forked worker limits them without importing
# threadpoolctl and scanning its libraries again (5-20 ms per worker start).
_inherited: tuple[int, int, Any] | None = None  # (parent pid, len(sys.modules) then, controller)
_INNER_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


# Our library scan and our forks never overlap: a child forked while another
# thread scans (dl_iterate_phdr holds the dynamic loader's lock) would inherit
# that lock held, and hang at its first dlsym.  threadpoolctl is imported with
# this module, not by a thread racing a fork (a module lock held by another
# thread at fork time is never released in the child either).
_fork_lock = threading.Lock()


def _new_fork_lock() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()  # the child of a fork made under the lock must not inherit it held


os.register_at_fork(after_in_child=_new_fork_lock)


def _prepare_inner_limits(mp_context: Any) -> None:
    """In the parent, before workers fork: (re)build the inherited controller if needed."""
    global _inherited
    method = mp_context.get_start_method() if mp_context is not None else None
    if (method or multiprocessing.get_start_method()) != "fork":
        return  # spawned workers start from scratch and scan for themselves
    if _inherited is not None and _inherited[:2] == (os.getpid(), len(sys.modules)):
        return  # nothing imported since: no new library to know about
    try:
        _inherited = (os.getpid(), len(sys.modules), ThreadpoolController())
    except Exception:  # pragma: no cover - threadpoolctl failing must not stop the map
        _inherited = None


@contextlib.contextmanager
def forking(mp_context: Any, inner_threads: int | None) -> Iterator[None]:
    """Around starting worker processes: their library scan is ready, no scan runs meanwhile."""
    with _fork_lock, starting_workers():
        if inner_threads is not None:
            _prepare_inner_limits(mp_context)
        yield


def limit_inner_threads(inner_threads: int) -> None:
    """Limit the BLAS/OpenMP pools already loaded in this worker to ``inner_threads`` threads.

    Not free in a forked worker: OpenBLAS shuts its threads down at fork,
    and setting its thread count starts them again; they then spin waiting
    for work for tens of milliseconds of CPU.  The engine therefore limits
    only once a chunk has run long enough to make that cost small.
    """
    global _limiter
    if _limiter is not None:
        return
    try:
        if _inherited is not None and _inherited[0] != os.getpid():
            _limiter = _inherited[2].limit(limits=inner_threads)  # forked: the parent's scan
        else:
            _limiter = threadpool_limits(limits=inner_threads)
    except Exception:  # pragma: no cover - threadpoolctl failing must not kill the worker
        _limiter = None


class WorkerInit:
    """The user's ``initializer(*initargs)``, as worker processes receive it.

    As in the stdlib, it travels as an argument of the worker ``Process``:
    inherited as it is under fork, pickled by multiprocessing while it spawns
    a worker otherwise, so multiprocessing queues, locks and semaphores (which
    may only be pickled then) work in ``initargs``.  The initializer itself is
    pickled with cloudpickle when plain pickle cannot take it, so lambdas and
    closures work under spawn and forkserver too.
    """

    def __init__(self, initializer: Callable[..., object], initargs: tuple[Any, ...]) -> None:
        self.initializer = initializer
        self.initargs = initargs

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_init, (_serialize.dumps(self.initializer), self.initargs))

    def __call__(self) -> None:
        self.initializer(*self.initargs)

    def unpicklable_part(self) -> str | None:
        """``"initializer"`` or ``"initargs"``: the one a worker that is not forked cannot get; else None."""
        if fork_only(WorkerInit(self.initializer, ())):
            return "initializer"
        if fork_only(self.initargs):
            return "initargs"
        return None


def _rebuild_init(initializer: bytes, initargs: tuple[Any, ...]) -> WorkerInit:
    return WorkerInit(_serialize.loads(initializer), initargs)


#: A worker's exit status when it ended itself because its owner died.
OWNER_GONE_EXIT = 75
#: How often a worker checks that its owner lives.
OWNER_POLL_MS = 100


def watch_owner(owner: int) -> None:
    """End this worker (``os._exit``) within ``OWNER_POLL_MS`` of its owner's death, SIGKILL included.

    A C thread of the native extension does the polling (it needs no GIL, so
    it acts even while this worker runs a C loop); without the extension, a
    daemon Python thread.
    """
    try:
        from .. import _native

        _native.watch_owner(owner, OWNER_POLL_MS, OWNER_GONE_EXIT)
        return
    except (ImportError, AttributeError, NotImplementedError, OSError):
        pass
    threading.Thread(target=_poll_owner, args=(owner,), name="manycore-owner-watch", daemon=True).start()


def _poll_owner(owner: int) -> None:
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(OWNER_GONE_EXIT)
        except OSError:
            pass  # not ours to signal: still there
        time.sleep(OWNER_POLL_MS / 1000)


def worker_setup(
    init: WorkerInit | None, inner_threads: int | None, *, limit_now: bool = True, owner: int | None = None
) -> None:
    """Runs first in every worker process (ours and the engine's).

    ``owner``: the pid of the process that started this worker; the worker
    ends itself soon after that process dies (:func:`watch_owner`).
    """
    if owner is not None:
        watch_owner(owner)
    # The parent decides what Ctrl-C means; a worker traceback per key press helps nobody.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while we started (start_worker)
    if inner_threads is not None:
        # libraries loaded later in this worker read these when they start
        for name in _INNER_ENV:
            os.environ.setdefault(name, str(inner_threads))
        if limit_now:
            limit_inner_threads(inner_threads)
    if init is not None:
        init()
