"""The native POSIX-thread runtime, from Python.

Every kernel here runs in C on a persistent pool of native threads with the
GIL released (for inputs large enough to pay for it), over a fixed partition
of the index space: results are bit-identical whatever ``threads`` is.

Where kernels run
    ``threads=None, pool=None``  the default pool (one thread per available CPU)
    ``threads=k``                k participants of the default pool (a larger
                                 pool is created once if k exceeds it; k=1 runs
                                 serially in the calling thread)
    ``pool=Pool(...)``           that pool (``threads`` may ask for fewer)

Ctrl-C interrupts a long kernel: the waiting thread wakes every
``MC_POLL_INTERVAL_MS`` (20 ms), runs the signal handlers, and if they raise
(``KeyboardInterrupt``) the workers stop between blocks; the pool stays usable.

Buffers are any C-contiguous buffer-protocol object (NumPy arrays,
``array.array``, ``bytes``, ``bytearray``, ``memoryview``) of format
``b B h H i I l L q Q f d``.  Integer reductions are exact (Python ints);
float reductions accumulate in float64 with a fixed summation order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import _kernel_args as args
from . import _native
from ._validate import (
    MAX_THREADS,
    check_int,
    check_threads,
)

__all__ = [
    "COUNT_PRIMES_MAX_N",
    "MAX_THREADS",
    "SUM_OF_SQUARES_MAX_N",
    "Pool",
    "ThreadRecord",
    "bench_dispatch",
    "build_info",
    "call_in_threads",
    "count_primes",
    "default_pool",
    "dot",
    "histogram",
    "mandelbrot",
    "matmul",
    "minmax",
    "monte_carlo_pi",
    "parallel_for",
    "square",
    "start_threads",
    "sum",
    "sum_of_squares",
]

T = TypeVar("T")
Number = int | float

SUM_OF_SQUARES_MAX_N: int = _native.SUM_OF_SQUARES_MAX_N
COUNT_PRIMES_MAX_N: int = _native.COUNT_PRIMES_MAX_N


class Pool:
    """A persistent pool of native worker threads.

    ``threads`` counts participants: ``threads - 1`` worker threads plus the
    thread that calls a kernel.  The workers are created once and reused; a
    dispatch wakes them (about a microsecond when they are warm).  Use as a
    context manager or call :meth:`close` to join the workers; closing while
    kernels run defers the join until they finish.  A pool created before
    ``fork()`` cannot be used in the child (``RuntimeError``).
    """

    __slots__ = ("__weakref__", "_handle")

    def __init__(self, threads: int | None = None) -> None:
        n = default_threads() if threads is None else check_threads(threads)
        self._handle = _native.Pool(n)

    @property
    def threads(self) -> int:
        return int(self._handle.threads)

    @property
    def closed(self) -> bool:
        return bool(self._handle.closed)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<manycore.native.Pool threads={self.threads} {state}>"


def default_threads() -> int:
    """CPUs this process may run on (affinity-aware), at least 1."""
    return max(1, int(_native.build_info()["cpu_count"]))


_pools_lock = threading.Lock()
_pools: dict[int, Pool] = {}  # size -> pool; pools live for the process
_pool_for: dict[int | None, Pool] = {}  # requested threads -> chosen pool (lock-free fast path)


def default_pool(threads: int | None = None) -> Pool:
    """The shared pool with at least ``threads`` participants (default: one per CPU).

    Pools are created lazily and kept for the life of the process, so a
    handle obtained by one thread is never closed under another.
    """
    cached = _pool_for.get(threads) if threads is None or type(threads) is int else None
    if cached is not None:
        return cached
    want = default_threads() if threads is None else check_threads(threads)
    with _pools_lock:
        fits = [p for size, p in _pools.items() if size >= want]
        if fits:
            pool = min(fits, key=lambda p: p.threads)
        else:
            pool = Pool(max(want, default_threads()))
            _pools[pool.threads] = pool
        _pool_for[want if threads is not None else None] = pool
        return pool


def _forget_pools_after_fork() -> None:
    # The child has none of the parent's worker threads; new pools are made lazily.
    global _pools_lock
    _pools_lock = threading.Lock()
    _pools.clear()
    _pool_for.clear()
    _native._forget_default_pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _resolve(threads: int | None, pool: Pool | None) -> tuple[Any, int]:
    """(native pool handle or None, participant count or 0 for all)."""
    if pool is not None:
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a manycore.native.Pool or None, not {type(pool).__name__}")
        if threads is None:
            return pool._handle, 0
        t = check_threads(threads)
        if t > pool.threads:
            raise ValueError(f"threads={t} is more than the pool's {pool.threads} threads")
        return pool._handle, t
    if threads is None:
        return default_pool()._handle, 0
    t = check_threads(threads)
    if t == 1:
        return None, 1
    return default_pool(t)._handle, t


_native._set_resolver(_resolve)  # parallel_for (in C) resolves threads/pool with it


# ---------------------------------------------------------------- reductions
if TYPE_CHECKING:

    def sum_of_squares(x: Any, *, threads: int | None = None, pool: Pool | None = None) -> Number:
        """``sum(i*i for i in range(x))`` for an int ``x``; ``sum(v*v for v in x)`` for a buffer."""

    def sum(x: Any, *, threads: int | None = None, pool: Pool | None = None) -> Number:
        """Sum of the elements of buffer ``x``: exact int for integer formats, float otherwise."""

    def dot(x: Any, y: Any, *, threads: int | None = None, pool: Pool | None = None) -> Number:
        """``sum(a*b for a, b in zip(x, y))`` over two buffers of the same format and length."""

    def minmax(x: Any, *, threads: int | None = None, pool: Pool | None = None) -> tuple[Number, Number]:
        """``(min(x), max(x))`` of a non-empty buffer; any NaN makes both NaN."""

    def count_primes(n: int, *, threads: int | None = None, pool: Pool | None = None) -> int:
        """Number of primes ``p < n`` (segmented sieve of Eratosthenes)."""

    def square(x: Any, *, out: Any = None, threads: int | None = None, pool: Pool | None = None) -> Any:
        """Elementwise ``x * x``.

        By default the result is a NumPy array of the same float type, or int64 /
        uint64 for integer input.  ``out`` may have the input's format, float64,
        or (integer input) int64/uint64; an integer square that does not fit
        raises ``OverflowError`` (never wraps silently).
        """

    def monte_carlo_pi(
        samples: int, seed: int = 0, *, threads: int | None = None, pool: Pool | None = None
    ) -> float:
        """Estimate pi from ``samples`` points of a counter-based generator seeded with ``seed``.

        The estimate depends only on ``(samples, seed)``, never on the thread count.
        """

else:
    # C functions (docstrings there): every argument is checked in C, the same
    # rules and messages as the other faces, and a call runs no Python frame.
    sum_of_squares = _native.sum_of_squares
    sum = _native.sum
    dot = _native.dot
    minmax = _native.minmax
    count_primes = _native.count_primes
    monte_carlo_pi = _native.monte_carlo_pi
    square = _native.square


def histogram(
    x: Any,
    bins: int,
    lo: float,
    hi: float,
    *,
    out: Any = None,
    threads: int | None = None,
    pool: Pool | None = None,
) -> Any:
    """Counts of ``x`` in ``bins`` equal-width bins over ``[lo, hi]``.

    Element ``v`` goes to bin ``floor(((v - lo) * bins) / (hi - lo))`` (IEEE double,
    in that order; scaled by a power of two when ``(hi - lo) * bins`` would overflow); ``v == hi``
    goes to the last bin; values outside ``[lo, hi]`` and NaN are not counted.
    Returns an int64 NumPy array (or fills ``out``, an int64 buffer of length ``bins``).
    """
    nbins, a, b = args.histogram_args(bins, lo, hi)
    handle, t = _resolve(threads, pool)
    result = args.histogram_out(nbins, out)
    _native.histogram(x, nbins, a, b, result, handle, t)
    return result


def mandelbrot(
    width: int,
    height: int,
    max_iter: int = 256,
    bounds: Sequence[float] = (-2.0, 1.0, -1.5, 1.5),
    *,
    out: Any = None,
    threads: int | None = None,
    pool: Pool | None = None,
) -> Any:
    """Escape-time counts of the Mandelbrot set on a ``height x width`` grid.

    ``bounds = (xmin, xmax, ymin, ymax)``; pixel ``(row, col)`` samples its
    centre.  Returns a ``(height, width)`` uint32 NumPy array (or fills ``out``,
    a 32-bit integer buffer of ``width * height`` elements).
    """
    w, h, it, (x0, x1, y0, y1) = args.mandelbrot_args(width, height, max_iter, bounds)
    handle, t = _resolve(threads, pool)
    result = args.mandelbrot_out(w, h, out)
    _native.mandelbrot(w, h, it, x0, x1, y0, y1, result, handle, t)
    return result


def matmul(a: Any, b: Any, *, out: Any = None, threads: int | None = None, pool: Pool | None = None) -> Any:
    """``a @ b`` for C-contiguous 2-D float64 buffers (blocked, deterministic)."""
    m, k, n = args.matmul_shape(a, b)
    handle, t = _resolve(threads, pool)
    result = args.matmul_out(m, n, out)
    _native.matmul(a, b, result, m, k, n, handle, t)
    return result


# ---------------------------------------------------------------- threads
@dataclass(frozen=True)
class ThreadRecord:
    """What one native thread of :func:`start_threads` did."""

    index: int
    native_id: int  # OS thread id (gettid), comparable with threading.get_native_id()
    cpu: int  # CPU it started on, -1 if unknown
    items: int  # loop iterations done
    start_s: float  # seconds since the call started
    end_s: float
    partial: int  # its exact share of the sum of squares

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def start_threads(n: int, work: int = 10_000_000) -> list[ThreadRecord]:
    """The unit's ``threadmodule.start_threads(n)``, done right.

    Creates ``n`` POSIX threads that each sum ``i*i`` over their share of
    ``range(work)`` with the GIL released, add their partial into a shared
    total under a mutex, and are all joined.  Every ``pthread_create`` is
    checked; if one fails, the threads already started are joined and
    ``OSError`` is raised.  ``sum(r.partial for r in records)`` equals
    ``sum_of_squares(work)``; overlapping ``[start_s, end_s]`` intervals show
    the threads ran in parallel.
    """
    count = check_int(n, "n", minimum=1, maximum=MAX_THREADS)
    w = check_int(work, "work", minimum=0, maximum=SUM_OF_SQUARES_MAX_N, too_big=OverflowError)
    records, _total = _native.start_threads(count, w)
    return [ThreadRecord(*r) for r in records]


def call_in_threads(
    fn: Callable[[int], T], n: int, *, on_start_failure: Callable[[int, int], object] | None = None
) -> list[T]:
    """Call ``fn(i)`` on ``n`` new native threads, each taking the GIL with ``PyGILState_Ensure``.

    Returns the results in index order.  If calls raise, the exception of the
    lowest index is re-raised with its original traceback (a note counts the
    others).  Pure-Python work does not run in parallel here — the GIL
    serialises it — which is the point this function demonstrates; work that
    releases the GIL (I/O, NumPy, native kernels) does.
    Ctrl-C is handled after every thread has returned.

    If the OS refuses a thread, the ones already started are joined and
    ``OSError`` is raised; ``on_start_failure(started, errno)`` is called
    first (on the calling thread), so that bodies waiting for work can be
    told to finish — otherwise that join would wait for them forever.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    if on_start_failure is not None and not callable(on_start_failure):
        raise TypeError(f"on_start_failure must be callable or None, not {type(on_start_failure).__name__}")
    count = check_int(n, "n", minimum=1, maximum=MAX_THREADS)
    outcomes = _native.call_in_threads(fn, count, on_start_failure)
    failures = [(i, v) for i, (ok, v) in enumerate(outcomes) if not ok]
    if failures:
        index, exc = failures[0]
        exc.add_note(f"raised by fn({index}) on native thread {index} of {count}")
        if len(failures) > 1:
            exc.add_note(f"{len(failures) - 1} other call(s) also raised")
        raise exc
    return [v for _, v in outcomes]


if TYPE_CHECKING:

    def parallel_for(
        fn_address: int,
        n: int,
        context: int | None = 0,
        grain: int = 0,
        *,
        schedule: str = "static",
        threads: int | None = None,
        pool: Pool | None = None,
    ) -> None:
        """Run the C function at ``fn_address`` over ``[0, n)`` on the pool, without the GIL.

        (The function is ``_native.parallel_for``, written in C with its docstring there:
        every argument is checked in C, so a call from Python runs no Python frame.)
        """

else:
    parallel_for = _native.parallel_for


def bench_dispatch(
    iterations: int = 100_000, *, threads: int | None = None, pool: Pool | None = None
) -> float:
    """Mean seconds per empty parallel region (wake, run, join), measured in C."""
    its = check_int(iterations, "iterations", minimum=1)
    handle, t = _resolve(threads, pool)
    return float(_native.bench_dispatch(handle, t, its))


def build_info() -> dict[str, Any]:
    """Compiler, OpenMP, SIMD level selected at run time, CPU count and limits."""
    info: dict[str, Any] = dict(_native.build_info())
    return info
