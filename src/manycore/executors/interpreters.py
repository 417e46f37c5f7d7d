"""InterpreterExecutor: calls in subinterpreters, each with its own GIL (PEP 684, PEP 734).

Subinterpreters run in one process, each isolated (its own modules, its own
GIL), so pure-Python CPU work runs in parallel without starting processes.
CPython 3.14 has them as :mod:`concurrent.interpreters`; on 3.13 install
``manycore[interpreters]`` (the ``interpreters-pep-734`` backport).
:func:`manycore.backends` says why the backend is unavailable elsewhere.

The executor keeps the contract of :mod:`manycore.executors._contract` and
the constructor of ``ThreadPoolExecutor``/``InterpreterPoolExecutor``
(``max_workers``, ``thread_name_prefix``, ``initializer``, ``initargs``):

* ``max_workers`` threads (default: the CPUs this process may use), each
  owning one subinterpreter, created when the thread starts and reused for
  every call it runs (a call pays no interpreter start); ``initializer(*initargs)``
  runs once inside each new subinterpreter, and one that fails breaks the
  executor (``BrokenThreadPool`` for every pending and later call);
* what crosses is pickled: ``fn``, its arguments and its result (lambdas,
  closures and functions of the caller's ``__main__`` go by value, with
  cloudpickle; others by name, imported in the subinterpreter, whose
  ``sys.path`` is the caller's at the time the worker starts).  Something
  that does not pickle is a ``TypeError`` at ``submit`` naming it; a result
  that does not pickle fails that future.  A ``memoryview`` in the arguments
  is not pickled but shared: the subinterpreter sees (and writes) the
  caller's memory, no copy, until the call returns;
* an exception raised by ``fn`` is set on the future as itself when it
  pickles, else as a :class:`~manycore.errors.RemoteError` naming its type;
  either way with the subinterpreter's traceback as ``__cause__`` (a
  :class:`~manycore.errors.RemoteTraceback`), as for processes;
* ``cancel``/``shutdown(cancel_futures=True)`` stop calls that have not
  started; a running call cannot be interrupted (as with threads), so Ctrl-C
  in a ``with`` block cancels the queue and waits for the running calls only,
  and ``pmap``'s ``task_timeout`` abandons an overrunning call: its thread
  and subinterpreter are left to finish it, and nothing waits for them;
* a thread's subinterpreter is closed when the thread exits (shutdown, the
  executor collected, interpreter exit).

Extension modules must support subinterpreters to be imported there
(``manycore._native`` does, so ``manycore.native`` kernels run there; NumPy
2.x does not yet).
"""

from __future__ import annotations

import functools
import itertools
import marshal
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import ModuleType
from typing import Any, TypeVar

from .._cpus import available_cpus
from .._workers import serialize
from . import _interp_driver
from ._interp_api import interpreters_module
from ._interp_driver import HEADER
from ._threadpool import ThreadPool
from .thread import Initializer, ThreadExecutor

R = TypeVar("R")

_names = itertools.count()
#: One subinterpreter starts (is created and imports manycore) at a time, and no fork() and no
#: shutdown of an executor returns while one starts: on CPython 3.13.0 a process started during
#: a subinterpreter's start aborted the whole process now and then (a free() of a bad pointer).
_starting = threading.Lock()
_starts = threading.Condition()
_starts_in_progress = 0
_worker = threading.local()  # .state: the _Worker of this worker thread


class InterpreterExecutor(ThreadExecutor):
    """Calls in subinterpreters, one per worker thread (see the module docstring).

    A ``ThreadExecutor`` whose threads each own a subinterpreter, as the
    stdlib's ``InterpreterPoolExecutor`` is a ``ThreadPoolExecutor``.
    """

    backend_name = "interpreters"

    @classmethod
    def _default_workers(cls) -> int:
        return available_cpus()

    def _make_pool(self, count: int, prefix: str, init: Initializer, initargs: tuple[Any, ...]) -> ThreadPool:
        api = interpreters_module()
        setup = None if init is None else _payload(init, tuple(initargs), {}, "initializer")
        prefix = prefix or f"InterpreterExecutor-{next(_names)}"
        return ThreadPool(count, prefix, _start_worker, (api, setup), finalizer=_close_worker)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why subinterpreters cannot be used here, or ``None`` when they can."""
        try:
            interpreters_module()
        except ImportError as exc:
            return str(exc)
        return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``ThreadPoolExecutor.shutdown``; even with ``wait=False`` it returns only once no
        subinterpreter of any executor is still starting (see ``_starting``)."""
        super().shutdown(wait, cancel_futures=cancel_futures)
        _wait_for_starts()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        future: Future[R] = self._pool.submit(_run, _payload(fn, args, kwargs, "fn"), {})
        return future


Payload = tuple[bytes, tuple[memoryview, ...]]  # pickled (fn, args, kwargs), the memoryviews shared


def _payload(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> Payload:
    """``(fn, args, kwargs)`` for a subinterpreter, or a ``TypeError`` naming what cannot cross.

    Pickled, except memoryviews (anywhere in it): those are shared, not copied."""
    try:
        return serialize.dumps_sharing_views((fn, args, kwargs))
    except Exception as exc:
        first = exc
    parts: list[tuple[str, object]] = [(what, fn)]
    parts += [(f"{what} argument {i}", a) for i, a in enumerate(args)]
    parts += [(f"{what} keyword argument {k!r}", v) for k, v in kwargs.items()]
    culprit = "the call"
    for name, obj in parts:
        try:
            serialize.dumps_sharing_views(obj)
        except Exception:
            culprit = name
            break
    raise TypeError(
        f"{culprit} cannot be sent to a subinterpreter (everything that crosses is pickled, "
        f"memoryviews aside): {type(first).__name__}: {first}"
    ) from first


def _start_worker(api: ModuleType, setup: Payload | None) -> None:
    """Worker thread: create this thread's subinterpreter, ready to run calls (then the initializer)."""
    global _starts_in_progress
    with _starts:
        _starts_in_progress += 1
    try:
        with _starting:
            interp = api.create()
            try:
                reply = memoryview(bytearray(_REPLY_BYTES))
                driver, preload = _driver()
                # the caller's import path, as multiprocessing gives a spawned child: fn's module is found
                interp.prepare_main(
                    _manycore_sys_path=tuple(sys.path),
                    _manycore_driver=driver,
                    _manycore_preload_modules=preload,
                )
                interp.exec(_START)
                interp.prepare_main(_manycore_reply=reply)  # memoryviews cross once _interpreters is loaded
            except BaseException:
                interp.close()
                raise
    finally:
        with _starts:
            _starts_in_progress -= 1
            _starts.notify_all()
    _worker.state = _Worker(interp, reply)
    try:
        if setup is not None:
            _run(*setup)
    except BaseException:
        _close_worker()
        raise


#: Run in a new subinterpreter: the caller's import path, then the driver (executed, not imported:
#: see _interp_driver), which loads the chunk loop of pmap from its code.
_START = """\
import _interpreters
import marshal
exec(marshal.loads(_manycore_driver))
_manycore_setup(_manycore_sys_path, _manycore_preload_modules)
del _manycore_sys_path, _manycore_driver, _manycore_preload_modules, marshal
"""
_SERVE = "_manycore_serve()"
_FLUSH = "_manycore_flush()"
_REPLY_BYTES = 1 << 16  # a reply buffer's size to start with, and to go back to after a very long reply
_KEEP_REPLY_BYTES = 1 << 22  # a buffer grown up to this size is kept (replies of that size stay cheap)


class _Worker:
    """A worker thread's subinterpreter and the buffer its replies are written to."""

    def __init__(self, interp: Any, reply: memoryview) -> None:
        self.interp = interp
        self.reply = reply


@functools.cache
def _driver() -> tuple[bytes, tuple[tuple[str, str, bytes], ...]]:
    """The driver's code, and the modules it loads from their code: marshalled code objects of
    this interpreter (from sources or from .pyc files alike)."""
    from .._workers import batches

    return _code_of(_interp_driver), ((batches.__name__, batches.__file__ or "", _code_of(batches)),)


def _code_of(module: ModuleType) -> bytes:
    loader = module.__spec__.loader if module.__spec__ is not None else None
    get_code = getattr(loader, "get_code", None)
    code = get_code(module.__name__) if get_code is not None else None
    if code is None:
        raise ImportError(f"no code object for {module.__name__} (its loader is {loader!r})")
    return marshal.dumps(code)


def _wait_for_starts() -> None:
    """Until no subinterpreter is starting (each start takes milliseconds)."""
    with _starts:
        _starts.wait_for(lambda: _starts_in_progress == 0)


def _close_worker() -> None:
    """Worker thread, as it exits: close its subinterpreter."""
    state: _Worker | None = getattr(_worker, "state", None)
    if state is None:
        return
    _worker.state = None
    state.interp.close()


def _run(payload: bytes, views: tuple[memoryview, ...]) -> Any:
    state: _Worker = _worker.state
    interp = state.interp
    interp.prepare_main(_manycore_payload=payload, _manycore_views=views)
    interp.exec(_SERVE)  # an exception of fn comes back as a reply; this raises only if the driver failed
    size = int.from_bytes(state.reply[:HEADER], "little")
    if HEADER + size > len(state.reply):  # kept there: bind a buffer it fits in, once
        _bind_reply(state, memoryview(bytearray(HEADER + size)))
        interp.exec(_FLUSH)
    try:
        with state.reply[HEADER : HEADER + size] as data:
            ok, value = serialize.loads(data)  # pickle copies what it reads out of the buffer
    finally:
        if len(state.reply) > _KEEP_REPLY_BYTES:
            _bind_reply(state, memoryview(bytearray(_REPLY_BYTES)))  # a very long reply's memory is not kept
    if ok:
        return value
    raise value.exception()


def _bind_reply(state: _Worker, reply: memoryview) -> None:
    state.interp.prepare_main(_manycore_reply=reply)  # the old buffer is freed once no view holds it
    state.reply = reply


def _before_fork() -> None:
    _starting.acquire()  # the lock of now: a forked child replaces it (below)


def _after_fork_in_parent() -> None:
    _starting.release()


def _reset_after_fork() -> None:
    """In a forked child: no subinterpreter of the parent's starts here (the held lock stays behind)."""
    global _starting, _starts, _starts_in_progress
    _starting, _starts, _starts_in_progress = threading.Lock(), threading.Condition(), 0


if hasattr(os, "register_at_fork"):
    # no fork() while a subinterpreter starts (see _starting)
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_reset_after_fork
    )
