"""The Python face shared by the ctypes, cffi and Cython bindings of the core.

``manycore.native`` validates arguments partly in Python (``native.py`` and
:mod:`manycore._kernel_args`) and partly in C: the rules for buffer arguments
(format, contiguity, alignment, writability, lengths, aliasing) live once in
the core (``mc_check_args``, ``csrc/args.c``) and the extension calls them.
The other bindings reach the same C functions without the extension's layer;
this module gives them the same steps **in the same order**: the shared scalar
checks, then each buffer obtained as a ``memoryview`` and described to
``mc_check_args`` through the binding, then the shared ``manycore._errors``
table for the exception.  Same bad input, same exception type and message.

A binding supplies a small :class:`Backend` (pool handles, one call per
kernel, pointers its own way) and a :class:`PoolBase` subclass; :class:`Face`
turns that into the public functions.  The backends never import each other.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from _ctypes import CFuncPtr as _CFuncPtr
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

from .. import _errors
from .. import _kernel_args as args
from .._extras import require
from .._validate import as_int, check_int, check_threads

__all__ = [
    "GIL_RELEASE_MIN_WORK",
    "POOL_MIN_WORK",
    "SCHEDULES",
    "Backend",
    "Bounds",
    "Buf",
    "BufSpec",
    "CallbackState",
    "CheckResult",
    "Exec",
    "Face",
    "LibBackend",
    "Number",
    "PoolBase",
    "Task",
    "check_buffers",
    "get_view",
    "scalar_of",
    "scalar_value",
]

Number = int | float
Bounds = tuple[float, float, float, float]  # (xmin, xmax, ymin, ymax) of mandelbrot
_T = TypeVar("_T")

# Same thresholds as src/manycore/_native.c (a test checks they agree): below
# GIL_RELEASE_MIN_WORK element operations nobody polls for Ctrl-C, below
# POOL_MIN_WORK a kernel runs serially in the calling thread.  Results never
# depend on either.
GIL_RELEASE_MIN_WORK = 16384.0
POOL_MIN_WORK = 131072.0

SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1
SCHEDULES = {"static": 0, "dynamic": 1}


# ================================================================ buffers
_TP_NAME_OFFSET = object.__basicsize__ + ctypes.sizeof(ctypes.c_ssize_t)  # after PyVarObject_HEAD
_check_buffer = ctypes.pythonapi.PyObject_CheckBuffer
_check_buffer.argtypes = [ctypes.py_object]
_check_buffer.restype = ctypes.c_int


def type_name(tp: type) -> str:
    """``Py_TYPE(obj)->tp_name``, as the C extension puts it in its messages.

    It differs from ``tp.__name__`` for static C types outside builtins
    (``decimal.Decimal``); read from the type object on CPython.
    """
    if sys.implementation.name == "cpython":
        raw = ctypes.c_char_p.from_address(id(tp) + _TP_NAME_OFFSET).value
        if raw:
            return raw.decode("utf-8", "replace")
    return tp.__name__


class BufSpec(NamedTuple):
    """A buffer as ``mc_check_args`` sees it (the fields of ``mc_buf`` a binding fills in)."""

    address: int
    nbytes: int
    itemsize: int
    format: str
    c_contiguous: bool
    readonly: bool


#: What ``Backend.check_args`` returns: ``(code, argument, detail, [(dtype, n) per buffer])``.
CheckResult = tuple[int, str, str, list[tuple[int, int]]]


@dataclass
class Buf:
    """A checked buffer argument, held (exported) while this object lives."""

    view: memoryview  # the exporter's view (shape, format)
    raw: memoryview  # the same memory as 1-D unsigned bytes
    dtype: int
    n: int  # elements
    format: str  # view.format, for messages
    address: int
    readonly: bool

    @property
    def nbytes(self) -> int:
        return self.raw.nbytes


def _address(raw: memoryview) -> int:
    if raw.nbytes == 0:
        return 0
    if not raw.readonly:
        return ctypes.addressof(ctypes.c_char.from_buffer(raw))
    # ctypes takes only writable buffers; NumPy reads a read-only one's address
    np = require("numpy", extra="numpy", feature="a read-only buffer through the ctypes/cffi faces")
    return int(np.frombuffer(raw, dtype=np.uint8).__array_interface__["data"][0])


def get_view(obj: object, name: str) -> memoryview:
    """The buffer of ``obj`` (PyBUF_FULL_RO, like the extension), or the extension's TypeError."""
    try:
        return memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        if _check_buffer(obj):
            raise  # an exporter that failed: its own error, as in the extension
        _errors.raise_argument(_errors.ARG_NOT_BUFFER, name, type_name(type(obj)))


def _raw(view: memoryview) -> memoryview:
    if view.nbytes == 0 or not view.c_contiguous:
        return memoryview(bytearray())  # (a view with a 0 in its shape, or strided, cannot be cast)
    if view.ndim != 1 or view.format != "B":
        return view.cast("B")
    return view


def check_buffers(
    backend: Backend, kernel: str, named: Sequence[tuple[str, object]], dims: Sequence[int] = ()
) -> list[Buf]:
    """Obtain the buffers of one call of ``kernel`` (in the order of manycore.h) and check them
    with the core's rules, ``mc_check_args``; raise what the extension raises for the same input."""
    views = [get_view(obj, name) for name, obj in named]
    raws = [_raw(v) for v in views]
    specs = [
        BufSpec(_address(r), v.nbytes, v.itemsize, v.format, v.c_contiguous, v.readonly)
        for v, r in zip(views, raws, strict=True)
    ]
    code, arg, detail, filled = backend.check_args(kernel, specs, tuple(dims))
    if code < 0:
        _errors.raise_status(code, "argument check")
    if code != _errors.OK:
        del views, raws
        _errors.raise_argument(code, arg, detail)
    return [
        Buf(v, r, dtype, n, v.format, spec.address, v.readonly)
        for v, r, spec, (dtype, n) in zip(views, raws, specs, filled, strict=True)
    ]


def _as_size(value: int) -> int:
    """Port of conv_size (PyLong_AsSize_t) for an int already known to be >= 0."""
    if value > SIZE_MAX:
        raise OverflowError("Python int too large to convert to C size_t")
    return value


def scalar_value(is_int: int, w0: int, w1: int, w2: int, f: float) -> Number:
    """An ``mc_scalar`` as a Python number (192-bit two's complement when is_int)."""
    if not is_int:
        return f
    top = w2 - (1 << 64) if w2 >> 63 else w2
    return (top << 128) + (w1 << 64) + w0


def scalar_of(s: Any) -> Number:
    """:func:`scalar_value` of an ``mc_scalar`` struct (a ctypes ``Structure`` or a cffi cdata)."""
    return scalar_value(s.is_int, s.words[0], s.words[1], s.words[2], s.f)


# ================================================================ callbacks
class CallbackState:
    """Runs a Python chunk body from C; keeps the first exception instead of losing it.

    ctypes prints an exception raised in a callback and returns 0; cffi prints
    it and returns the declared error value.  Either way the caller would never
    see it.  The bindings wrap Python bodies in this object: the first
    exception is stored (later chunks return at once) and re-raised by
    ``parallel_for`` after the region.
    """

    __slots__ = ("_lock", "error", "fn")

    def __init__(self, fn: Callable[[int, int, int], object]) -> None:
        self.fn = fn
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, begin: int, end: int, worker: int) -> None:
        if self.error is not None:
            return
        try:
            self.fn(begin, end, worker)
        except BaseException as exc:
            self.record(exc)

    def record(self, exc: BaseException | None) -> None:
        """Keep ``exc`` if it is the first exception of the region."""
        with self._lock:
            if self.error is None and exc is not None:
                self.error = exc


@dataclass
class Task:
    """A chunk body ready for mc_parallel_for: its address and what must stay alive."""

    address: int
    keepalive: object
    state: CallbackState | None  # set for Python bodies wrapped by the binding
    kind: str  # "python", "ctypes", "cffi", "numba", "address"


# ================================================================ backend contract
@dataclass(frozen=True)
class Exec:
    """How a kernel runs: pool handle (None: serially), participants (0: all), poll for Ctrl-C."""

    handle: Any
    nthreads: int
    poll: bool


class Backend(Protocol):
    """One way of calling the core (ctypes, cffi, Cython).  Every kernel returns a status.

    When ``ex.poll`` is set the backend passes a poll function that cancels
    the region on Ctrl-C; after MC_ECANCELED caused by it, the backend raises
    the exception itself (KeyboardInterrupt).
    """

    name: str

    def cpu_count(self) -> int: ...
    def pool_create(self, threads: int) -> tuple[int, Any, int]: ...
    def pool_destroy(self, handle: Any) -> None: ...
    def pool_check(self, handle: Any) -> int: ...
    def check_args(self, kernel: str, bufs: Sequence[BufSpec], dims: tuple[int, ...]) -> CheckResult: ...
    def sum_of_squares_range(self, ex: Exec, n: int) -> tuple[int, int]: ...
    def reduce(self, kind: str, ex: Exec, x: Buf) -> tuple[int, Number]: ...
    def dot(self, ex: Exec, x: Buf, y: Buf) -> tuple[int, Number]: ...
    def minmax(self, ex: Exec, x: Buf) -> tuple[int, tuple[Number, Number]]: ...
    def histogram(self, ex: Exec, x: Buf, bins: int, lo: float, hi: float, out: Buf) -> int: ...
    def count_primes(self, ex: Exec, n: int) -> tuple[int, int]: ...
    def monte_carlo_pi(self, ex: Exec, samples: int, seed: int) -> tuple[int, int]: ...
    def mandelbrot(
        self, ex: Exec, width: int, height: int, max_iter: int, bounds: Bounds, out: Buf
    ) -> int: ...
    def matmul(self, ex: Exec, a: Buf, b: Buf, out: Buf, m: int, k: int, n: int) -> int: ...
    def square(self, ex: Exec, x: Buf, out: Buf) -> int: ...
    def task(self, fn: object) -> Task | None: ...
    def python_task(self, state: CallbackState) -> Task: ...
    def context(self, obj: object) -> tuple[int, object] | None: ...
    def parallel_for(self, ex: Exec, task: Task, context: int, n: int, grain: int, schedule: int) -> int: ...
    def bench_dispatch(self, ex: Exec, iterations: int) -> tuple[int, float]: ...


class LibBackend:
    """The calls that ctypes and cffi make the same way on the core library ``lib`` they loaded."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def cpu_count(self) -> int:
        return int(self.lib.mc_cpu_count())

    def pool_destroy(self, handle: Any) -> None:
        self.lib.mc_pool_destroy(handle)

    def pool_check(self, handle: Any) -> int:
        return int(self.lib.mc_pool_check(handle))


# ================================================================ pools
class PoolBase:
    """A persistent pool of native worker threads, created through one binding.

    Same contract as ``manycore.native.Pool``: ``threads`` participants
    (``threads - 1`` workers plus the calling thread), reused across calls;
    :meth:`close` joins the workers now, or after the kernels using the pool
    finish; a pool from before ``fork()`` raises ``RuntimeError`` in the child.
    """

    _backend: ClassVar[Backend]
    _qualname: ClassVar[str]

    def __init__(self, threads: int | None = None) -> None:
        self._handle: Any = None
        n = _default_threads(self._backend) if threads is None else check_threads(threads)
        status, handle, os_error = self._backend.pool_create(n)
        if status != _errors.OK:
            _errors.raise_status(status, "Pool", os_error)
        self._handle = handle
        self._threads = n
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closing

    def _acquire(self) -> Any:
        with self._lock:
            ok = not self._closing and self._handle is not None
            if ok:
                self._users += 1
        if not ok:
            raise RuntimeError("cannot use a closed Pool")
        return self._handle

    def _release(self) -> None:
        to_destroy = None
        with self._lock:
            self._users -= 1
            if self._closing and self._users == 0:
                to_destroy, self._handle = self._handle, None
        if to_destroy is not None:
            self._backend.pool_destroy(to_destroy)

    def close(self) -> None:
        """Join the worker threads (now, or after running kernels finish). Idempotent."""
        to_destroy = None
        with self._lock:
            self._closing = True
            if self._users == 0:
                to_destroy, self._handle = self._handle, None
        if to_destroy is not None:
            self._backend.pool_destroy(to_destroy)

    def __enter__(self) -> PoolBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            try:
                self._backend.pool_destroy(handle)
            except Exception:
                pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{self._qualname} threads={self.threads} {state}>"


def _default_threads(backend: Backend) -> int:
    return max(1, int(backend.cpu_count()))


def _on_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


# ================================================================ the face
class Face:
    """The public functions of one binding, over its backend and pool class."""

    def __init__(self, backend: Backend, pool_cls: type[PoolBase]) -> None:
        self.backend = backend
        self.pool_cls = pool_cls
        self._pools_lock = threading.Lock()
        self._pools: dict[int, PoolBase] = {}
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_pools_after_fork)

    # ------------------------------------------------------------ pools
    def default_threads(self) -> int:
        """CPUs this process may run on (affinity-aware, from the core), at least 1."""
        return _default_threads(self.backend)

    def default_pool(self, threads: int | None = None) -> PoolBase:
        """The binding's shared pool with at least ``threads`` participants (default: one per CPU)."""
        want = self.default_threads() if threads is None else check_threads(threads)
        with self._pools_lock:
            fits = [p for size, p in self._pools.items() if size >= want]
            if fits:
                return min(fits, key=lambda p: p.threads)
            pool = self.pool_cls(max(want, self.default_threads()))
            self._pools[pool.threads] = pool
            return pool

    def _forget_pools_after_fork(self) -> None:
        self._pools_lock = threading.Lock()
        for pool in self._pools.values():
            pool._handle = None  # its threads exist only in the parent: never join them here
        self._pools.clear()

    def _resolve(self, threads: int | None, pool: PoolBase | None) -> tuple[PoolBase | None, int]:
        """Port of native._resolve: (pool or None for serial, participants or 0 for all)."""
        if pool is not None:
            if not isinstance(pool, self.pool_cls):
                raise TypeError(
                    f"pool must be a {self.pool_cls._qualname} or None, not {type(pool).__name__}"
                )
            if threads is None:
                return pool, 0
            t = check_threads(threads)
            if t > pool.threads:
                raise ValueError(f"threads={t} is more than the pool's {pool.threads} threads")
            return pool, t
        if threads is None:
            return self.default_pool(), 0
        t = check_threads(threads)
        if t == 1:
            return None, 1
        return self.default_pool(t), t

    def _begin(self, pool: PoolBase | None, threads: int, work: float) -> Exec:
        """Port of kcall_begin: claim the pool (released by :meth:`_end`) and choose the exec."""
        handle = None
        if pool is not None:
            handle = pool._acquire()
            try:
                stale = self.backend.pool_check(handle)
                if stale != _errors.OK:
                    _errors.raise_status(stale, "Pool")
                if threads > pool.threads:
                    raise ValueError(f"threads={threads} is more than the pool's {pool.threads} threads")
            except BaseException:
                pool._release()
                raise
        poll = work >= GIL_RELEASE_MIN_WORK and _on_main_thread()
        if work >= POOL_MIN_WORK and pool is not None and threads != 1:
            return Exec(handle, threads, poll)
        return Exec(None, 0, poll)

    def _run(
        self,
        pool: PoolBase | None,
        threads: int,
        work: float,
        context: str,
        kernel: Callable[[Exec], tuple[int, _T]],
    ) -> _T:
        """Port of kcall_begin / the kernel / kcall_end: ``kernel(exec)`` returns ``(status, value)``.

        The pool is released whatever happens; a bad status raises (named by
        ``context``), else ``value`` is returned.
        """
        ex = self._begin(pool, threads, work)
        status = _errors.OK
        try:
            status, value = kernel(ex)
        finally:
            if pool is not None:
                pool._release()
            if status != _errors.OK:
                _errors.raise_status(status, context)
        return value

    # ------------------------------------------------------------ reductions
    def sum_of_squares(self, x: Any, *, threads: int | None = None, pool: PoolBase | None = None) -> Number:
        """``sum(i*i for i in range(x))`` for an int (exact up to 2**42), or of the squares of a buffer."""
        n = args.sum_of_squares_x(x)
        if n is None:
            p, t = self._resolve(threads, pool)
            return self._reduce("sum_of_squares", x, p, t)
        p, t = self._resolve(threads, pool)
        return self._run(
            p, t, float(n), "sum_of_squares", lambda ex: self.backend.sum_of_squares_range(ex, n)
        )

    def _reduce(self, kind: str, x: Any, p: PoolBase | None, t: int) -> Number:
        (xb,) = check_buffers(self.backend, kind, [("x", x)])
        return self._run(p, t, float(xb.n), kind, lambda ex: self.backend.reduce(kind, ex, xb))

    def sum(self, x: Any, *, threads: int | None = None, pool: PoolBase | None = None) -> Number:
        """Sum of the elements of buffer ``x``: exact int for integer formats, float otherwise."""
        p, t = self._resolve(threads, pool)
        return self._reduce("sum", x, p, t)

    def dot(self, x: Any, y: Any, *, threads: int | None = None, pool: PoolBase | None = None) -> Number:
        """``sum(a*b for a, b in zip(x, y))`` over two buffers of the same format and length."""
        p, t = self._resolve(threads, pool)
        xb, yb = check_buffers(self.backend, "dot", [("x", x), ("y", y)])
        return self._run(p, t, 2.0 * xb.n, "dot", lambda ex: self.backend.dot(ex, xb, yb))

    def minmax(
        self, x: Any, *, threads: int | None = None, pool: PoolBase | None = None
    ) -> tuple[Number, Number]:
        """``(min(x), max(x))`` of a non-empty buffer; any NaN makes both NaN."""
        p, t = self._resolve(threads, pool)
        (xb,) = check_buffers(self.backend, "minmax", [("x", x)])
        return self._run(p, t, float(xb.n), "minmax", lambda ex: self.backend.minmax(ex, xb))

    def histogram(
        self,
        x: Any,
        bins: int,
        lo: float,
        hi: float,
        *,
        out: Any = None,
        threads: int | None = None,
        pool: PoolBase | None = None,
    ) -> Any:
        """Counts of ``x`` in ``bins`` equal-width bins over ``[lo, hi]`` (see manycore.native.histogram)."""
        nbins, a, b = args.histogram_args(bins, lo, hi)
        p, t = self._resolve(threads, pool)
        result = args.histogram_out(nbins, out)
        _as_size(nbins)
        xb, ob = check_buffers(self.backend, "histogram", [("x", x), ("out", result)], [nbins])
        return self._run(
            p,
            t,
            float(xb.n),
            "histogram",
            lambda ex: (self.backend.histogram(ex, xb, nbins, a, b, ob), result),
        )

    # ------------------------------------------------------------ compute
    def count_primes(self, n: int, *, threads: int | None = None, pool: PoolBase | None = None) -> int:
        """Number of primes ``p < n`` (segmented sieve)."""
        v = args.count_primes_n(n)
        p, t = self._resolve(threads, pool)
        return self._run(p, t, float(v), "count_primes", lambda ex: self.backend.count_primes(ex, v))

    def monte_carlo_pi(
        self, samples: int, seed: int = 0, *, threads: int | None = None, pool: PoolBase | None = None
    ) -> float:
        """Estimate pi from ``samples`` counter-based points; depends only on ``(samples, seed)``."""
        s, sd = args.monte_carlo_args(samples, seed)
        p, t = self._resolve(threads, pool)
        hits = self._run(p, t, 4.0 * s, "monte_carlo_pi", lambda ex: self.backend.monte_carlo_pi(ex, s, sd))
        return 4.0 * hits / s

    def mandelbrot(
        self,
        width: int,
        height: int,
        max_iter: int = 256,
        bounds: Sequence[float] = (-2.0, 1.0, -1.5, 1.5),
        *,
        out: Any = None,
        threads: int | None = None,
        pool: PoolBase | None = None,
    ) -> Any:
        """Escape-time counts on a ``height x width`` grid; a ``(height, width)`` uint32 array."""
        w, h, it, box = args.mandelbrot_args(width, height, max_iter, bounds)
        p, t = self._resolve(threads, pool)
        result = args.mandelbrot_out(w, h, out)
        _as_size(w)
        _as_size(h)
        (ob,) = check_buffers(self.backend, "mandelbrot", [("out", result)], [w, h])
        work = float(w) * float(h) * (it if it else 1) / 4.0
        return self._run(
            p,
            t,
            work,
            "mandelbrot",
            lambda ex: (self.backend.mandelbrot(ex, w, h, it, box, ob), result),
        )

    def matmul(
        self, a: Any, b: Any, *, out: Any = None, threads: int | None = None, pool: PoolBase | None = None
    ) -> Any:
        """``a @ b`` for C-contiguous 2-D float64 buffers (blocked, deterministic)."""
        m, k, n = args.matmul_shape(a, b)
        p, t = self._resolve(threads, pool)
        result = args.matmul_out(m, n, out)
        ab, bb, cb = check_buffers(self.backend, "matmul", [("a", a), ("b", b), ("out", result)], [m, k, n])
        work = float(m) * float(k) * float(n)
        return self._run(
            p, t, work, "matmul", lambda ex: (self.backend.matmul(ex, ab, bb, cb, m, k, n), result)
        )

    def square(
        self, x: Any, *, out: Any = None, threads: int | None = None, pool: PoolBase | None = None
    ) -> Any:
        """Elementwise ``x * x``; integer squares that do not fit raise ``OverflowError``."""
        p, t = self._resolve(threads, pool)
        out = args.square_out(x, out)
        xb, ob = check_buffers(self.backend, "square", [("x", x), ("out", out)])
        return self._run(p, t, float(xb.n), "square", lambda ex: (self.backend.square(ex, xb, ob), out))

    # ------------------------------------------------------------ parallel_for
    def _context(self, context: object) -> tuple[int, object]:
        if context is None:
            return 0, None
        handled = self.backend.context(context)
        if handled is not None:
            return handled
        if isinstance(context, int) and not isinstance(context, bool):
            return check_int(context, "context", minimum=0), None
        try:
            return ctypes.addressof(context), context  # type: ignore[arg-type]
        except TypeError:
            pass
        try:
            view = get_view(context, "context")
        except TypeError:
            raise TypeError(
                "context must be None, an int address, a ctypes object, a cffi pointer or a "
                f"buffer (numpy array, bytearray, ...), not {type(context).__name__}"
            ) from None
        if not view.c_contiguous:
            _errors.raise_argument(_errors.ARG_NOT_CONTIGUOUS, "context", None)
        raw = _raw(view)
        return _address(raw), (view, raw)

    def parallel_for(
        self,
        fn: Any,
        n: int,
        context: object = None,
        grain: int = 0,
        *,
        schedule: str = "static",
        threads: int | None = None,
        pool: PoolBase | None = None,
    ) -> None:
        """Run ``fn`` over ``[0, n)`` in chunks on the native pool (see manycore.ffi.parallel_for)."""
        count = check_int(n, "n", minimum=0)
        g = check_int(grain, "grain", minimum=0)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be 'static' or 'dynamic', got {schedule!r}")
        task = self._task(fn)
        ctx, ctx_keepalive = self._context(context)
        p, t = self._resolve(threads, pool)
        # Always on the pool with the GIL released, as in the extension: a
        # Python body needs the GIL itself.
        ex = self._begin(p, t, POOL_MIN_WORK)
        status = _errors.OK
        try:
            status = self.backend.parallel_for(ex, task, ctx, count, g, SCHEDULES[schedule])
        finally:
            if p is not None:
                p._release()
        del ctx_keepalive
        if task.state is not None and task.state.error is not None:
            error, task.state.error = task.state.error, None
            raise error
        if status != _errors.OK:
            _errors.raise_status(status, "parallel_for")

    def _task(self, fn: object) -> Task:
        task = self.backend.task(fn)  # the binding's own function pointers (cffi cdata)
        if task is None:
            task = _generic_task(fn)  # int addresses, ctypes function pointers, Numba cfuncs
        if task is None:
            if not callable(fn):
                raise TypeError(
                    "fn must be a Python callable fn(begin, end, worker), a ctypes or cffi function "
                    "pointer of type mc_task_fn, a Numba @cfunc or an int address, "
                    f"not {type(fn).__name__}"
                )
            task = self.backend.python_task(CallbackState(fn))
        return task

    def bench_dispatch(
        self, iterations: int = 100_000, *, threads: int | None = None, pool: PoolBase | None = None
    ) -> float:
        """Mean seconds per empty parallel region (wake, run, join), measured in C."""
        its = check_int(iterations, "iterations", minimum=1)
        p, t = self._resolve(threads, pool)
        return self._run(
            p,
            t,
            POOL_MIN_WORK,
            "bench_dispatch",
            # no Ctrl-C poll: measure dispatch alone
            lambda ex: self.backend.bench_dispatch(Exec(ex.handle, ex.nthreads, False), its),
        )


_TASK_SIZES = [ctypes.sizeof(t) for t in (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint)]
_TASK_SIGNATURE = "void (*)(void *ctx, size_t begin, size_t end, unsigned worker)  (mc_task_fn)"


def _ctypes_signature_ok(argtypes: Any, restype: Any) -> bool:
    got = list(argtypes or [])
    if len(got) != 4 or restype is not None:
        return False
    if [ctypes.sizeof(a) for a in got] != _TASK_SIZES:
        return False
    return got[0] in (ctypes.c_void_p, ctypes.c_char_p) or hasattr(got[0], "contents")


def _generic_task(fn: object) -> Task | None:
    """Compiled bodies every binding accepts: int address, ctypes function pointer, Numba @cfunc."""
    if isinstance(fn, int) and not isinstance(fn, bool):
        addr = as_int(fn, "fn")
        if addr <= 0:
            raise ValueError(f"fn must be a nonzero function address, got {addr}")
        return Task(addr, None, None, "address")
    if isinstance(fn, _CFuncPtr):
        if not _ctypes_signature_ok(fn.argtypes, fn.restype):
            raise TypeError(f"a ctypes function pointer body must have the signature {_TASK_SIGNATURE}")
        address = ctypes.cast(fn, ctypes.c_void_p).value
        if not address:
            raise ValueError("fn is a NULL ctypes function pointer")
        return Task(address, fn, None, "ctypes")
    address = getattr(fn, "address", None)
    cfn = getattr(fn, "ctypes", None)
    if isinstance(address, int) and cfn is not None and hasattr(fn, "native_name"):
        # A Numba cfunc (duck-typed: numba is an optional extra, never imported here).
        if not _ctypes_signature_ok(getattr(cfn, "argtypes", None), getattr(cfn, "restype", None)):
            raise TypeError(
                "a Numba cfunc body must have the signature void(voidptr, uintp, uintp, uint32) "
                "(mc_task_fn: ctx, begin, end, worker)"
            )
        return Task(address, fn, None, "numba")
    return None
