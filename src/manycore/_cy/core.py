"""The C core through Cython (``cdef extern from "manycore.h"``): same results and exceptions.

:mod:`manycore._cy._core` is the compiled part: one ``def`` per core function,
each calling C with the GIL released (``with nogil``).  This module gives it the
same Python face as ``manycore.native``, ``manycore.ffi.ctypes_core`` and
``manycore.ffi.cffi_core`` (argument checks, pools, ``threads=``/``pool=``),
shared through :mod:`manycore.ffi._face`, so bad input raises the same
exception with the same message.

What a Cython binding costs: a ``def`` function called from Python parses its
arguments in generated C (``~50-100 ns``), about what the hand-written
extension costs and well below ctypes/cffi.  Unlike them it must be compiled
with the package.  The module links the core statically: same code as the
extension, its own copy of the process-wide state (its own pools).

Ctrl-C: the poll function runs ``PyErr_CheckSignals`` every 20 ms in the
calling thread, exactly as the extension does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ffi import _face
from ..ffi._face import Bounds, Buf, BufSpec, CallbackState, CheckResult, Exec, Number, PoolBase, Task
from . import _core

__all__ = [
    "Pool",
    "bench_dispatch",
    "count_primes",
    "default_pool",
    "dot",
    "dtype_size",
    "histogram",
    "mandelbrot",
    "matmul",
    "minmax",
    "monte_carlo_pi",
    "parallel_for",
    "square",
    "sum",
    "sum_of_squares",
]

dtype_size = _core.dtype_size


def _h(ex: Exec) -> tuple[int, int, bool]:
    return (0 if ex.handle is None else int(ex.handle)), ex.nthreads, ex.poll


class _CythonBackend:
    name = "cython"

    def cpu_count(self) -> int:
        return int(_core.cpu_count())

    def pool_create(self, threads: int) -> tuple[int, Any, int]:
        status, handle, os_error = _core.pool_create(threads)
        return int(status), handle if status == 0 else None, int(os_error)

    def pool_destroy(self, handle: Any) -> None:
        _core.pool_destroy(int(handle))

    def pool_check(self, handle: Any) -> int:
        return int(_core.pool_check(int(handle)))

    def check_args(self, kernel: str, bufs: Sequence[BufSpec], dims: tuple[int, ...]) -> CheckResult:
        code, arg, detail, filled = _core.check_args(_core.KERNELS[kernel], list(bufs), dims)
        return int(code), arg, detail, filled

    def sum_of_squares_range(self, ex: Exec, n: int) -> tuple[int, int]:
        return _core.sum_of_squares_range(*_h(ex), n)

    def reduce(self, kind: str, ex: Exec, x: Buf) -> tuple[int, Number]:
        return _core.reduce(kind == "sum", *_h(ex), x.raw, x.n, x.dtype)

    def dot(self, ex: Exec, x: Buf, y: Buf) -> tuple[int, Number]:
        return _core.dot(*_h(ex), x.raw, y.raw, x.n, x.dtype)

    def minmax(self, ex: Exec, x: Buf) -> tuple[int, tuple[Number, Number]]:
        return _core.minmax(*_h(ex), x.raw, x.n, x.dtype)

    def histogram(self, ex: Exec, x: Buf, bins: int, lo: float, hi: float, out: Buf) -> int:
        return _core.histogram(*_h(ex), x.raw, x.n, x.dtype, bins, lo, hi, out.raw)

    def count_primes(self, ex: Exec, n: int) -> tuple[int, int]:
        return _core.count_primes(*_h(ex), n)

    def monte_carlo_pi(self, ex: Exec, samples: int, seed: int) -> tuple[int, int]:
        return _core.monte_carlo_pi(*_h(ex), samples, seed)

    def mandelbrot(self, ex: Exec, width: int, height: int, max_iter: int, bounds: Bounds, out: Buf) -> int:
        return _core.mandelbrot(*_h(ex), width, height, max_iter, *bounds, out.raw)

    def matmul(self, ex: Exec, a: Buf, b: Buf, out: Buf, m: int, k: int, n: int) -> int:
        return _core.matmul(*_h(ex), a.raw, b.raw, out.raw, m, k, n)

    def square(self, ex: Exec, x: Buf, out: Buf) -> int:
        return _core.square(*_h(ex), x.raw, x.dtype, out.raw, out.dtype, x.n)

    def task(self, fn: object) -> Task | None:
        return None

    def python_task(self, state: CallbackState) -> Task:
        # The compiled trampoline takes the GIL per chunk and calls the state
        # (passed as the context pointer, kept alive by the Task).
        return Task(_core.python_task_address(), state, state, "python")

    def context(self, obj: object) -> tuple[int, object] | None:
        return None

    def parallel_for(self, ex: Exec, task: Task, context: int, n: int, grain: int, schedule: int) -> int:
        if task.kind == "python":
            context = id(task.state)
        return _core.parallel_for(*_h(ex), task.address, context, n, grain, schedule)

    def bench_dispatch(self, ex: Exec, iterations: int) -> tuple[int, float]:
        handle, nthreads, _poll = _h(ex)
        return _core.bench_dispatch(handle, nthreads, iterations)


class Pool(PoolBase):
    """A persistent pool of native worker threads, created and driven through Cython."""

    _backend = _CythonBackend()
    _qualname = "manycore._cy.core.Pool"


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
