"""Raw POSIX threads from Python: the unit's ``pthread_create`` through ctypes, corrected; and via cffi.

The seed program ("Sample Program: Thread Creation Using ctypes") has five
bugs; each is fixed here:

1. ``CFUNCTYPE(ctypes.c_void_p)`` declares a start routine with *no*
   argument; ``pthread_create`` calls ``void *(*)(void *)``.  Here the type is
   ``CFUNCTYPE(c_void_p, c_void_p)`` and the argument carries the value in.
2. ``thread_func`` is a local of ``start_thread``: when the function returns,
   the ctypes thunk can be freed while the thread is still about to call it
   (a crash, or worse).  Here the thunk is owned by the :class:`PosixThread`
   until the thread has been joined.
3. The thread is never joined: the program can exit before it runs, and its
   resources leak.  :meth:`PosixThread.join` calls ``pthread_join``; threads
   nobody joined are joined at interpreter exit.
4. The return code of ``pthread_create`` is ignored.  It is checked here and
   raised as ``OSError`` (errno in ``.errno``), through the same table as the
   rest of manycore.
5. ``libpthread.so.0`` is hard-coded (gone as a separate library since glibc
   2.34 merged it into libc).  The symbols are looked up in the running
   process, which always has them.

Also: ``os.getpid()`` is the same in every thread; the thread's own id is
``threading.get_native_id()``.  And the thread body is Python, so it takes the
GIL (ctypes/cffi do ``PyGILState_Ensure`` per call): raw pthreads running
Python code do not run it in parallel -- see :mod:`manycore.native` for
native threads that run C with the GIL released.

The value goes in as the ``void *`` argument and comes out as the ``void *``
that ``pthread_join`` stores: the body returns its argument, ``join``
checks it got the same pointer back, and returns ``fn(arg)`` -- or raises the
exception ``fn`` raised (ctypes and cffi would otherwise print it and lose it).
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from .. import _errors, _extras
from .._validate import check_int

__all__ = ["PosixThread", "run_in_thread", "start_thread"]

T = TypeVar("T")
Backend = Literal["ctypes", "cffi"]

# pthread_t is unsigned long on Linux (glibc, musl) and a pointer on macOS;
# both are passed in one integer register.
_PTHREAD_T: Any = ctypes.c_void_p if sys.platform == "darwin" else ctypes.c_ulong
_PTHREAD_T_C = "void *" if sys.platform == "darwin" else "unsigned long"
_ATTR_BYTES = 256  # >= sizeof(pthread_attr_t) on every ABI (56 on x86-64 glibc, 64 on arm64)


def _create(
    lib: Any,
    tid: Any,
    start: Any,
    arg: Any,
    stack_size: int | None,
    new_attr: Callable[[], Any],
    null: Any = None,
) -> int:
    """``pthread_create(tid, attr, start, arg)`` through ``lib`` (ctypes or cffi): the first nonzero return code.

    ``attr`` is ``null`` (default attributes) without a ``stack_size``, else
    ``new_attr()`` storage set up by ``pthread_attr_init`` /
    ``pthread_attr_setstacksize`` and destroyed after the call.
    """
    if stack_size is None:
        return int(lib.pthread_create(tid, null, start, arg))
    attr = new_attr()
    rc = lib.pthread_attr_init(attr)
    if rc == 0:
        rc = lib.pthread_attr_setstacksize(attr, stack_size)
        if rc == 0:
            rc = lib.pthread_create(tid, attr, start, arg)
        destroy_rc = lib.pthread_attr_destroy(attr)
        rc = rc or destroy_rc
    return int(rc)


class _Slot:
    """What one thread needs alive until it is joined, and what it hands back."""

    __slots__ = ("arg", "error", "fn", "keepalive", "native_id", "result")

    def __init__(self, fn: Callable[[Any], Any], arg: Any) -> None:
        self.fn = fn
        self.arg = arg
        self.result: Any = None
        self.error: BaseException | None = None
        self.native_id = 0
        self.keepalive: list[object] = []

    def run(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            self.result = self.fn(self.arg)
        except BaseException as exc:
            self.error = exc


# ================================================================ ctypes
class _CtypesPthreads:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None)  # the running process: pthread_* are always there
        self.start_type = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)  # void *(*)(void *)
        prototypes = {
            "pthread_create": [ctypes.POINTER(_PTHREAD_T), ctypes.c_void_p, self.start_type, ctypes.c_void_p],
            "pthread_join": [_PTHREAD_T, ctypes.POINTER(ctypes.c_void_p)],
            "pthread_attr_init": [ctypes.c_void_p],
            "pthread_attr_destroy": [ctypes.c_void_p],
            "pthread_attr_setstacksize": [ctypes.c_void_p, ctypes.c_size_t],
        }
        for name, argtypes in prototypes.items():
            fn = getattr(libc, name)  # the CDLL keeps this object: later lookups get the prototype
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
        self.lib = libc
        self._tokens = itertools.count(1)
        self._live: dict[int, _Slot] = {}  # token -> slot, until joined
        self._lock = threading.Lock()

    def _main(self, arg: int | None) -> int | None:
        # Runs on the new thread; ctypes took the GIL for it.
        slot = self._live.get(arg or 0)
        if slot is not None:
            slot.run()
        return arg  # out through pthread_join's void **

    def start(self, slot: _Slot, stack_size: int | None) -> tuple[int, int]:
        token = next(self._tokens)
        thunk = self.start_type(self._main)
        slot.keepalive.append(thunk)  # fix 2: alive until joined
        with self._lock:
            self._live[token] = slot
        tid = _PTHREAD_T()
        try:
            rc = _create(
                self.lib, ctypes.byref(tid), thunk, token, stack_size, (ctypes.c_uint64 * (_ATTR_BYTES // 8))
            )
        except BaseException:
            self._forget(token)
            raise
        if rc != 0:  # fix 4
            self._forget(token)
            raise _errors.status_exception(_errors.ETHREAD, "pthread_create", rc)
        return int(tid.value or 0), token

    def wait(self, tid: int, token: int) -> int:
        out = ctypes.c_void_p()
        rc = self.lib.pthread_join(tid, ctypes.byref(out))  # GIL released while waiting
        if rc != 0:
            raise OSError(rc, f"pthread_join: {_strerror(rc)}")
        self._forget(token)
        return int(out.value or 0)

    def _forget(self, token: int) -> None:
        with self._lock:
            self._live.pop(token, None)


# ================================================================ cffi
class _CffiPthreads:
    def __init__(self) -> None:
        cffi = _extras.require("cffi", extra="cffi", feature='manycore.ffi.posix backend="cffi"')
        self.ffi = ffi = cffi.FFI()
        ffi.cdef(
            f"""
            typedef {_PTHREAD_T_C} pthread_t;
            int pthread_create(pthread_t *thread, const void *attr, void *(*start)(void *), void *arg);
            int pthread_join(pthread_t thread, void **retval);
            int pthread_attr_init(void *attr);
            int pthread_attr_destroy(void *attr);
            int pthread_attr_setstacksize(void *attr, size_t stacksize);
            """
        )
        self.lib: Any = ffi.dlopen(None)

    def start(self, slot: _Slot, stack_size: int | None) -> tuple[Any, Any]:
        ffi, lib = self.ffi, self.lib
        handle = ffi.new_handle(slot)  # the value in: a void * that maps back to the slot

        def main(arg: Any) -> Any:
            ffi.from_handle(arg).run()
            return arg

        callback = ffi.callback("void *(void *)", main)
        slot.keepalive += [handle, callback]
        tid = ffi.new("pthread_t *")
        rc = _create(
            lib, tid, callback, handle, stack_size, lambda: ffi.new(f"char[{_ATTR_BYTES}]"), ffi.NULL
        )
        if rc != 0:
            raise _errors.status_exception(_errors.ETHREAD, "pthread_create", rc)
        return tid[0], handle

    def wait(self, tid: Any, handle: Any) -> Any:
        out = self.ffi.new("void **")
        rc = self.lib.pthread_join(tid, out)
        if rc != 0:
            raise OSError(rc, f"pthread_join: {_strerror(rc)}")
        return out[0]


def _strerror(code: int) -> str:
    import os

    return os.strerror(code)


_impl_lock = threading.Lock()
_impls: dict[str, Any] = {}


def _impl(backend: str) -> Any:
    with _impl_lock:
        if backend not in _impls:
            if backend == "ctypes":
                _impls[backend] = _CtypesPthreads()
            elif backend == "cffi":
                _impls[backend] = _CffiPthreads()
            else:
                raise ValueError(f"backend must be 'ctypes' or 'cffi', got {backend!r}")
        return _impls[backend]


# ================================================================ public
_unjoined: set[PosixThread[Any]] = set()
_unjoined_lock = threading.Lock()


class PosixThread(Generic[T]):
    """A thread made by ``pthread_create`` through ctypes or cffi, running ``fn(arg)``.

    Create with :func:`start_thread`; :meth:`join` waits with
    ``pthread_join`` (the GIL released) and returns ``fn(arg)`` or raises what
    it raised.  ``native_id`` is the thread's OS id once it has started.
    """

    def __init__(self, fn: Callable[[Any], T], arg: Any, backend: Backend, stack_size: int | None) -> None:
        self._slot = _Slot(fn, arg)
        self._impl = _impl(backend)
        self.backend = backend
        self._join_lock = threading.Lock()
        self._joined = False
        self._tid, self._token = self._impl.start(self._slot, stack_size)
        with _unjoined_lock:
            _unjoined.add(self)

    @property
    def native_id(self) -> int:
        return self._slot.native_id

    @property
    def joined(self) -> bool:
        return self._joined

    def join(self) -> T:
        """``pthread_join`` the thread, then return ``fn(arg)`` (or raise its exception).

        Joining twice is an error in C (undefined behaviour); here the second
        call returns the same outcome without calling ``pthread_join``.
        """
        with self._join_lock:
            if not self._joined:
                out = self._impl.wait(self._tid, self._token)
                self._joined = True
                with _unjoined_lock:
                    _unjoined.discard(self)
                if out != self._token:  # the void * that came back through pthread_join
                    raise RuntimeError("pthread_join returned a different value than the thread's")
                self._slot.keepalive.clear()  # fix 2: only now may the thunk go
        if self._slot.error is not None:
            raise self._slot.error
        return self._slot.result  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "joined" if self._joined else "running"
        return f"<PosixThread {self.backend} native_id={self.native_id} {state}>"


def start_thread(
    fn: Callable[[Any], T], arg: Any = None, *, backend: Backend = "ctypes", stack_size: int | None = None
) -> PosixThread[T]:
    """Start ``fn(arg)`` on a new POSIX thread created with ``pthread_create`` via ``backend``.

    ``stack_size`` (bytes) goes through ``pthread_attr_setstacksize``.  If the
    thread cannot be created, ``OSError`` carries ``pthread_create``'s error
    number (``EAGAIN`` when the system is out of threads or memory).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    if stack_size is not None:
        stack_size = check_int(stack_size, "stack_size", minimum=16384)
    return PosixThread(fn, arg, backend, stack_size)


def run_in_thread(fn: Callable[[Any], T], arg: Any = None, *, backend: Backend = "ctypes") -> T:
    """Run ``fn(arg)`` on a new POSIX thread, join it, and return its result."""
    return start_thread(fn, arg, backend=backend).join()


@atexit.register
def _join_leftovers() -> None:
    # Fix 3 for threads whose owner never joined them: wait for them here,
    # while the interpreter can still run their Python code.
    with _unjoined_lock:
        left = list(_unjoined)
    for t in left:
        try:
            t.join()
        except BaseException:
            pass
