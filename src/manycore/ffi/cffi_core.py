"""The C core through cffi (ABI mode): same kernels, results and exceptions as ``manycore.native``.

ABI mode needs no C compiler at run time: ``ffi.cdef`` reads the
declarations -- here the installed ``manycore.h`` itself, with its
preprocessor lines removed (:func:`manycore.ffi._header.cdef_source`) -- and
``ffi.dlopen`` loads the extension module's own shared object, so this module,
``manycore.ffi.ctypes_core`` and ``manycore.native`` all run one copy of the
core.

What cffi costs: a call converts arguments from the parsed C types and
releases the GIL around the foreign call, usually a little cheaper than
ctypes.  Buffers are passed with ``ffi.from_buffer`` (no copy; the buffer stays
exported while the pointer lives).  Callbacks made with ``ffi.callback`` take the
GIL per call; an exception in one is printed and the declared error value
returned -- :func:`parallel_for` captures the first one (``onerror``) and
re-raises it after the region.

Ctrl-C: while a kernel runs, the calling thread polls every 20 ms through an
``ffi.callback``; entering it runs Python's signal handlers, and the exception
they raise (``KeyboardInterrupt``) cancels the region and is re-raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .. import _errors, _extras
from . import _face, _header
from ._face import Bounds, Buf, CallbackState, Exec, LibBackend, Number, PoolBase, Task, scalar_of
from ._library import core_library_path

cffi = _extras.require("cffi", extra="cffi", feature="manycore.ffi.cffi_core")

__all__ = [
    "COUNT_PRIMES_MAX_N",
    "SUM_OF_SQUARES_MAX_N",
    "Pool",
    "bench_dispatch",
    "count_primes",
    "default_pool",
    "dot",
    "ffi",
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
]

ffi = cffi.FFI()
ffi.cdef(_header.cdef_source())
lib: Any = ffi.dlopen(core_library_path())
"""``lib``: the core as a cffi library (every MC_API function and constant)."""

SUM_OF_SQUARES_MAX_N: int = lib.MC_SUM_OF_SQUARES_MAX_N
COUNT_PRIMES_MAX_N: int = lib.MC_COUNT_PRIMES_MAX_N
_TASK_CTYPE = ffi.typeof("mc_task_fn")


class _Poll:
    """A poll callback that records the exception raised by a signal handler."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.callback = ffi.callback("mc_poll_fn", self._poll, error=1, onerror=self._onerror)

    @staticmethod
    def _poll(_ctx: Any) -> int:
        return 0  # entering this function is what runs the pending signal handlers

    def _onerror(
        self, _tp: type[BaseException] | None, value: BaseException | None, _tb: TracebackType | None
    ) -> int:
        if self.error is None:
            self.error = value
        return 1  # cancel the region


class _Call:
    """The mc_exec of one call, and its poll callback kept alive for the call."""

    __slots__ = ("ex", "poll")

    def __init__(self, ex: Exec) -> None:
        self.ex = ffi.new("mc_exec *")
        self.ex.pool = ffi.NULL if ex.handle is None else ex.handle
        self.ex.nthreads = ex.nthreads
        self.poll = _Poll() if ex.poll else None
        if self.poll is not None:
            self.ex.poll = self.poll.callback

    def done(self, status: int) -> int:
        """``status``, or the exception of a signal handler that cancelled the region."""
        if status == _errors.ECANCELED and self.poll is not None and self.poll.error is not None:
            raise self.poll.error
        return int(status)


def _ptr(b: Buf, ctype: str = "void *") -> Any:
    if b.nbytes == 0:
        return ffi.NULL
    p = ffi.from_buffer(b.raw)
    return p if ctype == "void *" else ffi.cast(ctype, p)


class _CffiBackend(LibBackend):
    name = "cffi"

    # ------------------------------------------------------------ plumbing
    @staticmethod
    def _call(ex: Exec) -> _Call:
        return _Call(ex)

    def pool_create(self, threads: int) -> tuple[int, Any, int]:
        handle = ffi.new("mc_pool **")
        os_error = ffi.new("int *")
        status = lib.mc_pool_create(handle, threads, os_error)
        return int(status), handle[0] if status == _errors.OK else None, int(os_error[0])

    def check_args(
        self, kernel: str, bufs: Sequence[_face.BufSpec], dims: tuple[int, ...]
    ) -> _face.CheckResult:
        descs = ffi.new("mc_buf[]", len(bufs))
        formats = [ffi.new("char[]", b.format.encode("utf-8", "replace")) for b in bufs]
        for d, b, fmt in zip(descs, bufs, formats, strict=True):
            d.data = ffi.cast("const void *", b.address)
            d.nbytes = b.nbytes
            d.itemsize = b.itemsize
            d.format = fmt
            d.c_contiguous = b.c_contiguous
            d.readonly = b.readonly
        sizes = ffi.new("uint64_t[]", list(dims) or [0])
        problem = ffi.new("mc_arg_problem *")
        kernel_id = getattr(lib, f"MC_K_{kernel.upper()}")
        code = int(lib.mc_check_args(kernel_id, descs, len(bufs), sizes, len(dims), problem))
        arg = ffi.string(problem.arg).decode() if problem.arg != ffi.NULL else ""
        detail = ffi.string(problem.detail).decode("utf-8", "replace")
        return code, arg, detail, [(int(d.dtype), int(d.n)) for d in descs]

    # ------------------------------------------------------------ kernels
    def sum_of_squares_range(self, ex: Exec, n: int) -> tuple[int, int]:
        out = ffi.new("uint64_t[2]")
        c = self._call(ex)
        st = lib.mc_sum_of_squares_range(c.ex, n, out, out + 1)
        return c.done(st), (int(out[1]) << 64) | int(out[0])

    def reduce(self, kind: str, ex: Exec, x: Buf) -> tuple[int, Number]:
        fn = lib.mc_sum if kind == "sum" else lib.mc_sum_of_squares
        out = ffi.new("mc_scalar *")
        c = self._call(ex)
        st = fn(c.ex, _ptr(x), x.n, x.dtype, out)
        return c.done(st), scalar_of(out)

    def dot(self, ex: Exec, x: Buf, y: Buf) -> tuple[int, Number]:
        out = ffi.new("mc_scalar *")
        c = self._call(ex)
        st = lib.mc_dot(c.ex, _ptr(x), _ptr(y), x.n, x.dtype, out)
        return c.done(st), scalar_of(out)

    def minmax(self, ex: Exec, x: Buf) -> tuple[int, tuple[Number, Number]]:
        out = ffi.new("mc_scalar[2]")
        c = self._call(ex)
        st = lib.mc_minmax(c.ex, _ptr(x), x.n, x.dtype, out, out + 1)
        return c.done(st), (scalar_of(out[0]), scalar_of(out[1]))

    def histogram(self, ex: Exec, x: Buf, bins: int, lo: float, hi: float, out: Buf) -> int:
        c = self._call(ex)
        st = lib.mc_histogram(c.ex, _ptr(x), x.n, x.dtype, bins, lo, hi, _ptr(out, "int64_t *"))
        return c.done(st)

    def count_primes(self, ex: Exec, n: int) -> tuple[int, int]:
        out = ffi.new("uint64_t *")
        c = self._call(ex)
        st = lib.mc_count_primes(c.ex, n, out)
        return c.done(st), int(out[0])

    def monte_carlo_pi(self, ex: Exec, samples: int, seed: int) -> tuple[int, int]:
        hits = ffi.new("uint64_t *")
        c = self._call(ex)
        st = lib.mc_monte_carlo_pi(c.ex, samples, seed, hits)
        return c.done(st), int(hits[0])

    def mandelbrot(self, ex: Exec, width: int, height: int, max_iter: int, bounds: Bounds, out: Buf) -> int:
        c = self._call(ex)
        st = lib.mc_mandelbrot(c.ex, width, height, max_iter, *bounds, _ptr(out, "uint32_t *"))
        return c.done(st)

    def matmul(self, ex: Exec, a: Buf, b: Buf, out: Buf, m: int, k: int, n: int) -> int:
        pa, pb, pc = (_ptr(v, "double *") for v in (a, b, out))
        c = self._call(ex)
        st = lib.mc_matmul_f64(c.ex, pa, pb, pc, m, k, n)
        return c.done(st)

    def square(self, ex: Exec, x: Buf, out: Buf) -> int:
        c = self._call(ex)
        st = lib.mc_square(c.ex, _ptr(x), x.dtype, _ptr(out), out.dtype, x.n)
        return c.done(st)

    # ------------------------------------------------------------ parallel_for
    def task(self, fn: object) -> Task | None:
        if not isinstance(fn, ffi.CData):
            return None
        tp = ffi.typeof(fn)  # cffi's kind "function" is a function *pointer* type
        want = _TASK_CTYPE
        if tp.kind != "function":
            raise TypeError(f"a cffi body must be a function pointer of type mc_task_fn, not {tp.cname}")
        if [a.cname for a in tp.args] != [a.cname for a in want.args] or tp.result.cname != "void":
            raise TypeError(
                "a cffi body must have the signature void(void *, size_t, size_t, unsigned int) "
                f"(mc_task_fn), not {tp.cname}"
            )
        address = int(ffi.cast("uintptr_t", fn))
        if address == 0:
            raise ValueError("fn is a NULL cffi function pointer")
        return Task(address, fn, None, "cffi")

    def python_task(self, state: CallbackState) -> Task:
        def body(_ctx: Any, begin: int, end: int, worker: int) -> None:
            state(begin, end, worker)

        def onerror(_tp: Any, value: BaseException | None, _tb: Any) -> None:
            state.record(value)  # e.g. KeyboardInterrupt raised on entry, before state's own try

        cb = ffi.callback("mc_task_fn", body, onerror=onerror)
        return Task(int(ffi.cast("uintptr_t", cb)), cb, state, "python")

    def context(self, obj: object) -> tuple[int, object] | None:
        if isinstance(obj, ffi.CData):
            return int(ffi.cast("uintptr_t", obj)), obj
        return None

    def parallel_for(self, ex: Exec, task: Task, context: int, n: int, grain: int, schedule: int) -> int:
        fn = ffi.cast("mc_task_fn", task.address)
        c = self._call(ex)
        st = lib.mc_parallel_for(c.ex, fn, ffi.cast("void *", context), n, grain, schedule)
        return c.done(st)

    def bench_dispatch(self, ex: Exec, iterations: int) -> tuple[int, float]:
        per = ffi.new("double *")
        c = self._call(ex)
        st = lib.mc_bench_dispatch(c.ex, iterations, per)
        return c.done(st), float(per[0])


class Pool(PoolBase):
    """A persistent pool of native worker threads, created and driven through cffi."""

    _backend = _CffiBackend(lib)
    _qualname = "manycore.ffi.cffi_core.Pool"


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


def task_callback(fn: Any) -> Any:
    """An ``ffi.callback("mc_task_fn")`` around Python ``fn(ctx, begin, end, worker)``.

    cffi prints and ignores exceptions raised by ``fn``; prefer passing the
    Python callable ``fn(begin, end, worker)`` to :func:`parallel_for`, which
    re-raises them.  Keep the returned object alive while C may call it.
    """
    return ffi.callback("mc_task_fn", fn)
