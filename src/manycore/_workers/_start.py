"""Which start method a worker process gets: fork only when nothing can deadlock it.

``fork()`` copies the calling thread only.  A lock that another thread held
at that moment (a ``threading.Lock`` the tasks need, a logging handler's
lock, an allocator's lock on the free-threaded build) stays held for ever in
the child, which then hangs at its first use.  CPython 3.12 warns about fork
with threads running, and 3.14 made ``forkserver`` the default on Linux.

The rule manycore follows for every process it starts (pmap's engine,
``ProcessExecutor``, ``Pipeline`` process stages):

* a context the caller passed (``mp_context``) is used as it is, as in the
  stdlib: queues and locks made with a fork context work only in forked
  workers, so a caller who made them must get fork;
* the default context, when its start method is ``fork`` (Linux before
  3.14, or ``set_start_method("fork")``), is used only while the calling
  process runs no other Python thread: it is the fast start (no re-import,
  everything inherited);
* unless what the worker must carry (its initializer and ``initargs``)
  can reach it only by fork: queues or locks made with the default fork
  context (the stdlib refuses to send them to any other worker), or
  anything that does not pickle (a ``threading.Lock``); such a worker is
  forked anyway, as before;
* otherwise the worker starts with ``forkserver``: a server process started
  once (by fork and exec, so from a clean single-threaded state) forks each
  worker from itself; ``spawn`` where forkserver does not exist.

Threads outside Python code (the native pool's workers, BLAS threads) are
not counted: they hold no lock a child uses, and the libraries that own them
reset their state at fork (``pthread_atfork``).

A worker that does not fork runs the caller's main script again (as
``__mp_main__``, what multiprocessing does for spawn and forkserver).  When
that script is not a file (``python - < script.py`` names it ``<stdin>``),
multiprocessing would fail every such worker with FileNotFoundError; the
workers manycore starts then skip that step (:func:`starting_workers`), and
functions of that ``__main__`` reach them by value (``serialize``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.spawn
import os
import sys
import threading
from collections.abc import Iterator
from multiprocessing.context import BaseContext, set_spawning_popen
from multiprocessing.reduction import ForkingPickler
from typing import Any


def other_python_threads() -> list[str]:
    """Names of the threads besides the calling one that are inside Python code now.

    ``sys._current_frames()`` (documented in :mod:`sys`) lists every thread
    with a Python frame: running, or blocked in a call made from Python (a
    lock, a sleep), both of which may hold a lock.  A foreign thread that ran
    Python once and went back to C (the native pool's workers after a
    ``NativeExecutor`` task) has no frame and is not counted.
    """
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    return [names.get(ident, f"thread {ident}") for ident in sys._current_frames() if ident != me]


def start_context(requested: BaseContext | None = None, carried: Any = ()) -> BaseContext:
    """The context to start a worker process with now; see the module docstring.

    ``carried``: what travels with the worker's start (its initializer and ``initargs``).
    """
    ctx = requested if requested is not None else multiprocessing.get_context()
    if (
        requested is None
        and ctx.get_start_method() == "fork"
        and other_python_threads()
        and not fork_only(carried)
    ):
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        _preload_in_forkserver()
    return ctx


#: What a worker imports first: loaded once in the forkserver, every worker it forks has it.
WORKER_MODULE = "manycore._workers.protocol"


def _preload_in_forkserver() -> None:
    """Have the forkserver import manycore's worker module once, before it forks any worker.

    Without it, each worker it forks imports manycore itself (measured: a
    2-worker ProcessExecutor's start to first results 120-200 ms with
    forkserver, 8 ms with fork; with the preload, a fork of the server plus
    the worker's own setup).  ``multiprocessing.set_forkserver_preload`` is
    documented for this ("a performance enhancement to avoid repeated work
    in every process"); it takes effect when the server starts, so it is set
    before the first forkserver start, and what the caller preloads already
    (the server's list, ``_preload_modules``: the same from 3.4 to 3.14) is
    kept.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    current = list(getattr(server, "_preload_modules", None) or ["__main__"])
    if WORKER_MODULE not in current:
        multiprocessing.set_forkserver_preload([*current, WORKER_MODULE])


class _ProbePopen:
    """Stands in for a starting process while :func:`fork_only` pickles (file descriptors are not sent)."""

    @staticmethod
    def duplicate_for_child(fd: int) -> int:
        return fd

    @staticmethod
    def DupFd(fd: int) -> int:
        return fd


def fork_only(carried: Any) -> bool:
    """Whether ``carried`` can reach a new worker only by fork (inherited, not pickled).

    Pickles it as multiprocessing does for a process that is not forked: a
    lock or queue made with a fork context refuses with ``RuntimeError``,
    and anything else that does not pickle fails its own way.
    Uses ``multiprocessing.context.set_spawning_popen`` (undocumented, the
    same from 3.4 to 3.14; tests/test_workers.py checks it on every
    interpreter in CI).
    """
    if carried is None or carried == ():
        return False
    set_spawning_popen(_ProbePopen())  # type: ignore[arg-type]  # duck-typed: DupFd, duplicate_for_child
    try:
        ForkingPickler.dumps(carried)
    except Exception:
        return True
    finally:
        set_spawning_popen(None)
    return False


_starting = threading.local()
_stdlib_preparation_data = multiprocessing.spawn.get_preparation_data


def main_script() -> str | None:
    """The file of the caller's main script, or None when it has none a worker could run again.

    ``__main__.__file__`` is missing in a REPL and with ``python -c``, and
    names no file with ``python - < script.py`` (``<stdin>``).
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not isinstance(path, str):
        return None
    found = _is_file.get(path)
    if found is None:
        found = _is_file[path] = os.path.isfile(path)
    return path if found else None


_is_file: dict[str, bool] = {}  # a main script does not come and go: one stat per path


def _preparation_data(name: str) -> dict[str, Any]:
    """``multiprocessing.spawn.get_preparation_data``, without a main script that is not a file.

    Only for the worker starts of this thread inside :func:`starting_workers`;
    every other caller gets the stdlib's answer unchanged.
    """
    data: dict[str, Any] = _stdlib_preparation_data(name)
    if getattr(_starting, "active", False) and "init_main_from_path" in data and main_script() is None:
        del data["init_main_from_path"]
    return data


@contextlib.contextmanager
def starting_workers() -> Iterator[None]:
    """Around starting worker processes in this thread: see the module docstring's last paragraph.

    The popen modules of multiprocessing (spawn, forkserver) look the
    function up as ``spawn.get_preparation_data`` at each start (3.8 to 3.14),
    so the wrapper is installed once and acts only inside this block.
    """
    if multiprocessing.spawn.get_preparation_data is _stdlib_preparation_data:
        multiprocessing.spawn.get_preparation_data = _preparation_data
    _starting.active = True
    try:
        yield
    finally:
        _starting.active = False
