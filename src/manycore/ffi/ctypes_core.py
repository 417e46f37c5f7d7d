"""The C core through ctypes: same kernels, results and exceptions as ``manycore.native``.

The library is the extension module's own shared object (see
:mod:`manycore.ffi._library`), so this module and ``manycore.native`` share one
copy of the core.  Every prototype (``argtypes``/``restype``), struct and
callback type is generated from the installed ``manycore.h``
(:mod:`manycore.ffi._header`): nothing here repeats a C declaration.

What ctypes costs: each call converts its arguments from Python objects by
the declared ``argtypes`` and releases the GIL around the foreign call (about
1 us per call, against ~50 ns for a C-API function); a kernel of any real
size does not notice.  ctypes callbacks (``CFUNCTYPE`` around a Python
function) take the GIL on every call and *print and ignore* exceptions raised
in them: :func:`parallel_for` wraps Python bodies so the first exception is
re-raised after the region.

Ctrl-C: while a kernel runs, the calling thread polls every 20 ms through the
C-API function ``PyOS_InterruptOccurred`` (called directly as the poll
function pointer, so no Python code runs in between); a pending SIGINT cancels
the region and raises ``KeyboardInterrupt``.  This needs Python's default
SIGINT handler; with a custom handler the kernel finishes before the handler
runs.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Sequence
from typing import Any

from .. import _errors
from . import _face, _header
from ._face import Bounds, Buf, CallbackState, Exec, LibBackend, Number, PoolBase, Task, scalar_of
from ._library import core_library_path

__all__ = [
    "COUNT_PRIMES_MAX_N",
    "SUM_OF_SQUARES_MAX_N",
    "Pool",
    "bench_dispatch",
    "count_primes",
    "default_pool",
    "dot",
    "histogram",
    "lib",
    "mandelbrot",
    "matmul",
    "minmax",
    "monte_carlo_pi",
    "parallel_for",
    "square",
    "sum",
    "sum_of_squares",
    "types",
]

# ================================================================ from the header
_SCALARS: dict[str, Any] = {
    "void": None,
    "char": ctypes.c_char,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "size_t": ctypes.c_size_t,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "uint32_t": ctypes.c_uint32,
    "double": ctypes.c_double,
}


class _TypeBuilder:
    """ctypes types for the C types of manycore.h, built in header order."""

    def __init__(self, decls: _header.Declarations) -> None:
        self.decls = decls
        self.types: dict[str, Any] = {}
        for kind, name in decls.order:
            if kind == "struct":
                struct = decls.structs[name]
                if struct.fields:  # opaque structs (mc_pool) are only used through pointers
                    fields = [(f.name, self.field_type(f)) for f in struct.fields]
                    self.types[name] = type(name, (ctypes.Structure,), {"_fields_": fields})
            elif kind == "callback":
                cb = decls.callbacks[name]
                self.types[name] = ctypes.CFUNCTYPE(
                    self.of(cb.restype), *(self.of(p.ctype) for p in cb.params)
                )
            elif kind == "enum":
                self.types[name] = ctypes.c_int

    def field_type(self, f: _header.Param) -> Any:
        t = self.of(f.ctype)
        return t * f.array if f.array else t

    def of(self, ctype: str) -> Any:
        t = ctype.replace("const ", "").strip()
        if t.endswith("*"):
            base = t[:-1].strip()
            if base == "void":
                return ctypes.c_void_p
            if base == "char":
                return ctypes.c_char_p
            if base in self.decls.structs and not self.decls.structs[base].fields:
                return ctypes.c_void_p  # pointer to an opaque struct
            return ctypes.POINTER(self.of(base))
        if t in self.types:
            return self.types[t]
        if t in self.decls.enums:
            return ctypes.c_int
        if t in _SCALARS:
            return _SCALARS[t]
        raise TypeError(f"manycore.h: no ctypes mapping for C type {ctype!r}")


def _load() -> tuple[ctypes.CDLL, dict[str, Any], dict[str, int]]:
    decls = _header.declarations()
    builder = _TypeBuilder(decls)
    library = ctypes.CDLL(core_library_path())
    for fn in decls.functions.values():
        f = getattr(library, fn.name)
        f.argtypes = [builder.of(p.ctype) for p in fn.params]
        f.restype = builder.of(fn.restype)
    return library, builder.types, dict(decls.constants)


lib, types, constants = _load()
"""``lib``: the core as a ``ctypes.CDLL`` with every prototype set; ``types``: its
structs (``mc_scalar``, ``mc_exec``, ...) and callback types (``mc_task_fn``, ...)."""

SUM_OF_SQUARES_MAX_N: int = constants["MC_SUM_OF_SQUARES_MAX_N"]
COUNT_PRIMES_MAX_N: int = constants["MC_COUNT_PRIMES_MAX_N"]

_Exec = types["mc_exec"]
_Scalar = types["mc_scalar"]
_BufDesc = types["mc_buf"]
_Problem = types["mc_arg_problem"]
_PollFn = types["mc_poll_fn"]
_TaskFn = types["mc_task_fn"]
_u64 = ctypes.c_uint64
_f64p = ctypes.POINTER(ctypes.c_double)
_u32p = ctypes.POINTER(ctypes.c_uint32)
_i64p = ctypes.POINTER(ctypes.c_int64)

# The poll function is the C-API function PyOS_InterruptOccurred itself,
# called through the callback thunk with no Python frame in between: a pending
# SIGINT is consumed here (not by the eval loop) and reported as "cancel".  A
# PYFUNCTYPE prototype keeps the GIL for the call; the poll_ctx argument is
# ignored by the no-argument C function.
_interrupt_occurred = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(
    ("PyOS_InterruptOccurred", ctypes.pythonapi)
)
_POLL = _PollFn(_interrupt_occurred)


class _CtypesBackend(LibBackend):
    name = "ctypes"

    # ------------------------------------------------------------ plumbing
    def _exec(self, ex: Exec) -> Any:
        e = _Exec()
        e.pool = ex.handle
        e.nthreads = ex.nthreads
        if ex.poll and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            e.poll = _POLL
        return e

    @staticmethod
    def _done(status: int) -> int:
        if status == _errors.ECANCELED:
            raise KeyboardInterrupt
        return status

    def pool_create(self, threads: int) -> tuple[int, Any, int]:
        handle = ctypes.c_void_p()
        os_error = ctypes.c_int(0)
        status = lib.mc_pool_create(ctypes.byref(handle), threads, ctypes.byref(os_error))
        return status, handle.value, os_error.value

    def check_args(
        self, kernel: str, bufs: Sequence[_face.BufSpec], dims: tuple[int, ...]
    ) -> _face.CheckResult:
        descs = (_BufDesc * len(bufs))()
        for d, b in zip(descs, bufs, strict=True):
            d.data = b.address or None
            d.nbytes = b.nbytes
            d.itemsize = b.itemsize
            d.format = b.format.encode("utf-8", "replace")  # the struct keeps the bytes alive
            d.c_contiguous = b.c_contiguous
            d.readonly = b.readonly
        sizes = (_u64 * max(1, len(dims)))(*dims)
        problem = _Problem()
        code = lib.mc_check_args(
            constants[f"MC_K_{kernel.upper()}"], descs, len(bufs), sizes, len(dims), ctypes.byref(problem)
        )
        arg = (problem.arg or b"").decode()
        return code, arg, problem.detail.decode("utf-8", "replace"), [(d.dtype, d.n) for d in descs]

    # ------------------------------------------------------------ kernels
    def sum_of_squares_range(self, ex: Exec, n: int) -> tuple[int, int]:
        lo, hi = _u64(0), _u64(0)
        st = lib.mc_sum_of_squares_range(ctypes.byref(self._exec(ex)), n, ctypes.byref(lo), ctypes.byref(hi))
        return self._done(st), (hi.value << 64) | lo.value

    def reduce(self, kind: str, ex: Exec, x: Buf) -> tuple[int, Number]:
        fn = lib.mc_sum if kind == "sum" else lib.mc_sum_of_squares
        out = _Scalar()
        st = fn(ctypes.byref(self._exec(ex)), x.address, x.n, x.dtype, ctypes.byref(out))
        return self._done(st), scalar_of(out)

    def dot(self, ex: Exec, x: Buf, y: Buf) -> tuple[int, Number]:
        out = _Scalar()
        st = lib.mc_dot(ctypes.byref(self._exec(ex)), x.address, y.address, x.n, x.dtype, ctypes.byref(out))
        return self._done(st), scalar_of(out)

    def minmax(self, ex: Exec, x: Buf) -> tuple[int, tuple[Number, Number]]:
        lo, hi = _Scalar(), _Scalar()
        st = lib.mc_minmax(
            ctypes.byref(self._exec(ex)), x.address, x.n, x.dtype, ctypes.byref(lo), ctypes.byref(hi)
        )
        return self._done(st), (scalar_of(lo), scalar_of(hi))

    def histogram(self, ex: Exec, x: Buf, bins: int, lo: float, hi: float, out: Buf) -> int:
        counts = ctypes.cast(out.address, _i64p)
        st = lib.mc_histogram(ctypes.byref(self._exec(ex)), x.address, x.n, x.dtype, bins, lo, hi, counts)
        return self._done(st)

    def count_primes(self, ex: Exec, n: int) -> tuple[int, int]:
        out = _u64(0)
        st = lib.mc_count_primes(ctypes.byref(self._exec(ex)), n, ctypes.byref(out))
        return self._done(st), out.value

    def monte_carlo_pi(self, ex: Exec, samples: int, seed: int) -> tuple[int, int]:
        hits = _u64(0)
        st = lib.mc_monte_carlo_pi(ctypes.byref(self._exec(ex)), samples, seed, ctypes.byref(hits))
        return self._done(st), hits.value

    def mandelbrot(self, ex: Exec, width: int, height: int, max_iter: int, bounds: Bounds, out: Buf) -> int:
        ptr = ctypes.cast(out.address, _u32p)
        st = lib.mc_mandelbrot(ctypes.byref(self._exec(ex)), width, height, max_iter, *bounds, ptr)
        return self._done(st)

    def matmul(self, ex: Exec, a: Buf, b: Buf, out: Buf, m: int, k: int, n: int) -> int:
        pa, pb, pc = (ctypes.cast(v.address, _f64p) for v in (a, b, out))
        st = lib.mc_matmul_f64(ctypes.byref(self._exec(ex)), pa, pb, pc, m, k, n)
        return self._done(st)

    def square(self, ex: Exec, x: Buf, out: Buf) -> int:
        st = lib.mc_square(ctypes.byref(self._exec(ex)), x.address, x.dtype, out.address, out.dtype, x.n)
        return self._done(st)

    # ------------------------------------------------------------ parallel_for
    def task(self, fn: object) -> Task | None:
        return None  # ctypes function pointers are handled by the shared face

    def python_task(self, state: CallbackState) -> Task:
        def body(_ctx: int | None, begin: int, end: int, worker: int) -> None:
            state(begin, end, worker)

        thunk = _TaskFn(body)
        return Task(ctypes.cast(thunk, ctypes.c_void_p).value or 0, thunk, state, "python")

    def context(self, obj: object) -> tuple[int, object] | None:
        return None

    def parallel_for(self, ex: Exec, task: Task, context: int, n: int, grain: int, schedule: int) -> int:
        fn = ctypes.cast(task.address, _TaskFn)
        st = lib.mc_parallel_for(ctypes.byref(self._exec(ex)), fn, context or None, n, grain, schedule)
        return self._done(st)

    def bench_dispatch(self, ex: Exec, iterations: int) -> tuple[int, float]:
        per = ctypes.c_double(0.0)
        st = lib.mc_bench_dispatch(ctypes.byref(self._exec(ex)), iterations, ctypes.byref(per))
        return self._done(st), per.value


class Pool(PoolBase):
    """A persistent pool of native worker threads, created and driven through ctypes."""

    _backend = _CtypesBackend(lib)
    _qualname = "manycore.ffi.ctypes_core.Pool"


_the_face = _face.Face(Pool._backend, Pool)

default_pool = _the_face.default_pool
sum_of_squares = _the_face.sum_of_squares
sum = _the_face.sum
dot = _the_face.dot
minmax = _the_face.minmax
histogram = _the_face.histogram
count_primes = _the_face.count_primes
monte_carlo_pi = _the_face.monte_carlo_pi
mandelbrot = _the_face.mandelbrot
matmul = _the_face.matmul
square = _the_face.square
parallel_for = _the_face.parallel_for
bench_dispatch = _the_face.bench_dispatch


def task_function(fn: Any) -> Any:
    """A ctypes ``mc_task_fn`` (``CFUNCTYPE``) around Python ``fn(ctx, begin, end, worker)``.

    Exceptions raised by ``fn`` are printed and ignored by ctypes; prefer
    passing the Python callable ``fn(begin, end, worker)`` to :func:`parallel_for`,
    which re-raises them.
    """
    return _TaskFn(fn)
