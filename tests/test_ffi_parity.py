"""Same inputs, bit-identical results: extension vs ctypes vs cffi vs Cython (cdef extern).

Every kernel, every buffer format, buffer kinds other than NumPy, edge sizes
(empty, 1, primes, around the block sizes), serial and pooled runs (the pool
is used from 131072 elements on), explicit pools and thread counts.
"""

from __future__ import annotations

import array
import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from ffi_support import BINDINGS, FFI_BINDINGS, FORMATS, random_array, same
from manycore import _errors, _kernel_args, _native, native
from manycore.ffi import _face, _header, ctypes_core
from native_support import KINDS, as_kind
from optional import import_or_skip

SIZES = [0, 1, 7, 4097, 65537, 131_101]  # 131_101: prime, above the pool threshold


def _all_same(call: Callable[[ModuleType], object]) -> object:
    ref = call(native)
    for name, m in FFI_BINDINGS.items():
        got = call(m)
        assert same(got, ref), f"{name}: {got!r} != native {ref!r}"
    return ref


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("n", SIZES)
def test_reductions_every_format(fmt: str, n: int) -> None:
    x = random_array(fmt, n, seed=n * 31 + ord(fmt))
    y = random_array(fmt, n, seed=n * 17 + ord(fmt) + 1)
    _all_same(lambda m: m.sum(x))
    _all_same(lambda m: m.sum_of_squares(x))
    _all_same(lambda m: m.dot(x, y))
    if n:
        _all_same(lambda m: m.minmax(x))
    _all_same(lambda m: m.histogram(x, 13, -500.0, 700.0))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_square_every_format_and_output(fmt: str) -> None:
    x = random_array(fmt, 1031, seed=ord(fmt))
    if np.dtype(fmt).kind in "iu" and np.dtype(fmt).itemsize == 8:
        x = x // (2**33)  # squares that fit
    outs = [None, fmt, "d"] + (["q", "Q"] if np.dtype(fmt).kind in "iu" else [])
    for out_fmt in outs:

        def call(m: ModuleType, out_fmt: str | None = out_fmt) -> object:
            out = None if out_fmt is None else np.zeros(x.shape, dtype=out_fmt)
            try:
                return m.square(x, out=out)
            except OverflowError as exc:
                return str(exc)

        _all_same(call)


@pytest.mark.parametrize("kind", KINDS)
def test_buffer_kinds(kind: str) -> None:
    for fmt in "Bdqi":
        arr = random_array(fmt, 257, seed=3)
        x = as_kind(arr, kind)
        _all_same(lambda m, x=x: m.sum(x))
        _all_same(lambda m, x=x: m.sum_of_squares(x))
        _all_same(lambda m, x=x: m.minmax(x))


def test_other_exporters() -> None:
    for x in (array.array("h", range(-50, 50)), bytearray(range(256)), np.arange(24.0).reshape(2, 3, 4)):
        _all_same(lambda m, x=x: m.sum(x))
        _all_same(lambda m, x=x: m.square(x))
    scalar = np.float64(2.5)  # a 0-d buffer
    _all_same(lambda m: m.sum(scalar))


def test_float_specials() -> None:
    x = np.array([1.0, math.inf, -math.inf, 0.0, -0.0, math.nan, 1e308, 5e-324], dtype=np.float64)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    for v in (x, x[:5], x[5:], x32):
        _all_same(lambda m, v=v: m.sum(v))
        _all_same(lambda m, v=v: m.minmax(v))
        _all_same(lambda m, v=v: m.square(v))
        _all_same(lambda m, v=v: m.histogram(v, 3, -1.0, 2.0))


@pytest.mark.parametrize("n", [0, 1, 2, 65535, 65536, 65537, 1_048_573, 10**7 + 3])
def test_sum_of_squares_range(n: int) -> None:
    ref = _all_same(lambda m: m.sum_of_squares(n))
    assert ref == (n - 1) * n * (2 * n - 1) // 6


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_and_pools(threads: int) -> None:
    x = random_array("d", 300_007, seed=threads)
    _all_same(lambda m: m.sum(x, threads=threads))
    _all_same(lambda m: m.dot(x, x, threads=threads))
    _all_same(lambda m: m.count_primes(1_000_003, threads=threads))
    _all_same(lambda m: m.monte_carlo_pi(300_001, seed=threads, threads=threads))
    _all_same(lambda m: m.sum_of_squares(3_000_017, threads=threads))

    def with_pool(m: ModuleType) -> object:
        with m.Pool(threads) as p:
            return (m.sum(x, pool=p), m.minmax(x, pool=p), m.sum_of_squares(10**6, pool=p, threads=1))

    _all_same(with_pool)


@pytest.mark.parametrize(
    ("w", "h", "it", "bounds"),
    [
        (0, 5, 10, (-2.0, 1.0, -1.5, 1.5)),
        (1, 1, 0, (-2.0, 1.0, -1.5, 1.5)),
        (97, 61, 300, (-2.0, 1.0, -1.5, 1.5)),
        (640, 480, 64, (-0.75, -0.74, 0.1, 0.11)),
        (33, 7, 5000, (-1.8, -1.7, -0.01, 0.01)),
    ],
)
def test_mandelbrot(w: int, h: int, it: int, bounds: tuple[float, ...]) -> None:
    _all_same(lambda m: m.mandelbrot(w, h, it, bounds))
    out = np.zeros((h, w), dtype=np.int32)
    _all_same(lambda m: m.mandelbrot(w, h, it, bounds, out=out.copy()))


def test_matmul() -> None:
    rng = np.random.default_rng(5)
    for m_, k, n in [(0, 3, 4), (1, 1, 1), (17, 31, 13), (70, 80, 90)]:
        a = rng.standard_normal((m_, k))
        b = rng.standard_normal((k, n))
        _all_same(lambda m, a=a, b=b: m.matmul(a, b))


def test_in_place_square() -> None:
    def call(m: ModuleType) -> object:
        c = np.arange(300_000.0)
        m.square(c, out=c)
        return c

    _all_same(call)


def test_bench_dispatch_runs_everywhere() -> None:
    for m in BINDINGS.values():
        assert 0.0 < m.bench_dispatch(50, threads=2) < 1.0


# ---------------------------------------------------------------- one core, one table
def test_thresholds_match_the_extension() -> None:
    assert _native.GIL_RELEASE_MIN_WORK == _face.GIL_RELEASE_MIN_WORK
    assert _native.POOL_MIN_WORK == _face.POOL_MIN_WORK
    # the limits the shared argument checks use (manycore._kernel_args) are the C core's
    assert (
        _native.SUM_OF_SQUARES_MAX_N == _kernel_args.SUM_OF_SQUARES_MAX_N == ctypes_core.SUM_OF_SQUARES_MAX_N
    )
    assert _native.COUNT_PRIMES_MAX_N == _kernel_args.COUNT_PRIMES_MAX_N == ctypes_core.COUNT_PRIMES_MAX_N
    assert _header.declarations().constants["MC_SCHEDULE_DYNAMIC"] == _face.SCHEDULES["dynamic"]


def test_status_codes_are_the_errors_table() -> None:
    consts = _header.declarations().constants
    for name in ("OK", "EINVAL", "ENOMEM", "ETHREAD", "ECANCELED", "EOVERFLOW", "ESTALE", "EDTYPE"):
        assert consts[f"MC_{name}"] == getattr(_errors, name)


def test_ctypes_and_cffi_share_the_extension_core() -> None:
    """ctypes and cffi load the extension's own file: one copy of the core's code and state."""
    cffi_core = import_or_skip("manycore.ffi.cffi_core", "cffi", "the cffi half of this test")

    noop = _native.noop_address()
    assert ctypes_core.lib.mc_noop_range.__class__  # resolved
    import ctypes

    assert ctypes.cast(ctypes_core.lib.mc_noop_range, ctypes.c_void_p).value == noop
    assert (
        int(cffi_core.ffi.cast("uintptr_t", cffi_core.ffi.addressof(cffi_core.lib, "mc_noop_range"))) == noop
    )
    # Process-wide state is shared: the thread-creation failure hook armed
    # through ctypes fails the extension's next thread creation.
    ctypes_core.lib.mc_debug_fail_thread_create(0)
    try:
        with pytest.raises(OSError, match="could not create an OS thread"):
            native.start_threads(1, 10)
    finally:
        ctypes_core.lib.mc_debug_fail_thread_create(-1)


def test_pool_lifecycle_through_each_binding() -> None:
    for m in FFI_BINDINGS.values():
        p = m.Pool(3)
        assert p.threads == 3
        assert not p.closed
        assert "threads=3 open" in repr(p)
        assert m.sum(np.ones(200_000), pool=p) == 200_000.0
        p.close()
        p.close()
        assert p.closed
        assert "closed" in repr(p)
        assert m.default_pool() is m.default_pool()
