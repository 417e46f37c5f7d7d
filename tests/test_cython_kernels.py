"""Cython-native prange kernels (manycore._cy.kernels) vs the C core, with and without OpenMP.

manycore._cy.kernels_serial is the same source compiled without OpenMP (the
build a compiler without OpenMP, or -Dopenmp=disabled, produces): every test
runs on both modules and checks they agree with manycore.native bit for bit.
"""

from __future__ import annotations

import threading
from types import ModuleType

import numpy as np
import pytest

from ffi_support import FORMATS, random_array, same
from manycore import native
from manycore._cy import kernels, kernels_serial

BUILDS = {"openmp": kernels, "serial": kernels_serial}


@pytest.fixture(params=list(BUILDS))
def k(request: pytest.FixtureRequest) -> ModuleType:
    return BUILDS[request.param]


def test_openmp_detection() -> None:
    assert kernels_serial.OPENMP is False
    # The OpenMP build has OpenMP only if meson found it (build_info reports
    # that detection; -Dopenmp=disabled turns it off for the kernels alone).
    if kernels.OPENMP:
        assert native.build_info()["openmp"] is True


def test_thread_count_comes_from_one_place(k: ModuleType) -> None:
    assert k.resolve_threads(None) == k.default_threads() >= 1
    assert k.resolve_threads(3) == 3
    assert k.threads_used(3) == (3 if k.OPENMP else 1)
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024, got 0"):
        k.resolve_threads(0)
    with pytest.raises(TypeError, match=r"^threads must be an int"):
        k.sum_of_squares(10, threads="2")


def test_prange_really_uses_threads() -> None:
    """With OpenMP, prange(num_threads=k) runs on k threads; without, on the caller alone."""
    assert kernels.team_size(2) == (2 if kernels.OPENMP else 1)
    assert kernels.team_size(1) == 1
    assert kernels_serial.team_size(2) == 1
    before = set(threading.enumerate())
    assert kernels.sum_of_squares(10**7, threads=2) == native.sum_of_squares(10**7)
    assert set(threading.enumerate()) == before  # OpenMP's threads are not Python threads


@pytest.mark.parametrize(
    "n", [0, 1, 2, 100, 65535, 65536, 65537, 16 * 65536 + 1, 1_000_003, 10**7, 3 * 10**7 + 1]
)
def test_sum_of_squares_exact(k: ModuleType, n: int) -> None:
    want = _sos(n)
    for threads in (1, 2, 3):
        got = k.sum_of_squares(n, threads=threads)
        assert got == want == native.sum_of_squares(n)
        assert type(got) is int


def _sos(n: int) -> int:
    return (n - 1) * n * (2 * n - 1) // 6 if n else 0


@pytest.mark.parametrize("blocks", [1, 17, 100])
def test_sum_of_squares_limb_arithmetic_near_the_top(k: ModuleType, blocks: int) -> None:
    """The limb split is exact for the largest block indices (B close to 2**26)."""
    top = 2**42
    for n in (top, top - 12345):
        start = (n // 2**16 - blocks) * 2**16
        assert k.sum_of_squares_tail(n, start, threads=2) == _sos(n) - _sos(start)
    with pytest.raises(ValueError, match="start must be a multiple of 65536"):
        k.sum_of_squares_tail(100, 3)


def test_sum_of_squares_errors_match_native(k: ModuleType) -> None:
    for bad, exc in ((-1, ValueError), (2**42 + 1, OverflowError)):
        with pytest.raises(exc) as ours:
            k.sum_of_squares(bad)
        with pytest.raises(exc) as theirs:
            native.sum_of_squares(bad)
        assert str(ours.value) == str(theirs.value)
    # int only here (native.sum_of_squares also takes buffers, and says so)
    with pytest.raises(TypeError, match=r"^x must be an int, not bool$"):
        k.sum_of_squares(True)
    with pytest.raises(TypeError, match=r"^x must be an int, not float"):
        k.sum_of_squares(1.5)


def test_seed_sum_of_squares_wraps_like_the_seed() -> None:
    n = 10**7
    exact = native.sum_of_squares(n)
    wrapped = exact % 2**64
    wrapped -= 2**64 if wrapped >= 2**63 else 0
    assert kernels.seed_sum_of_squares(n) == wrapped != exact
    assert kernels.seed_sum_of_squares(1000) == native.sum_of_squares(1000)


def test_compute_sum_is_the_seed_example(k: ModuleType) -> None:
    for threads in (1, 2):
        assert k.compute_sum(threads=threads) == 1_000_000 * 999_999 / 4
    assert k.compute_sum(0) == 0.0


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_fast_square_matches_native_square(k: ModuleType, fmt: str) -> None:
    x = random_array(fmt, 100_003, seed=ord(fmt))
    if np.dtype(fmt).kind in "iu" and np.dtype(fmt).itemsize == 8:
        x = x >> 33  # squares that fit
    for threads in (1, 2):
        assert same(k.fast_square(x, threads=threads), native.square(x))
    two_d = x[:100_000].reshape(100, 1000)
    assert same(k.fast_square(two_d), native.square(two_d))
    assert same(k.fast_square(x[:0]), native.square(x[:0]))


def test_fast_square_scalar_is_the_seeds_function(k: ModuleType) -> None:
    assert k.fast_square(10) == 100  # the unit's "Output: 100"
    assert k.fast_square(-46341) == 46341**2  # C int * int would overflow here
    assert k.fast_square(2**31 - 1) == (2**31 - 1) ** 2
    with pytest.raises(OverflowError):
        k.fast_square(2**31)


@pytest.mark.parametrize(("dtype", "bad"), [(np.int64, -(2**32)), (np.int64, 3037000500), (np.uint64, 2**32)])
def test_exception_inside_prange_surfaces(k: ModuleType, dtype: type, bad: int) -> None:
    """An OverflowError raised (with gil) inside a prange body is re-raised after the loop."""
    x = np.arange(200_000, dtype=dtype) % 1000
    x[123_457] = bad
    for threads in (1, 2):
        with pytest.raises(OverflowError, match=r"^square: result does not fit its type$"):
            k.fast_square(x, threads=threads)
        with pytest.raises(OverflowError, match=r"^square: result does not fit its type$"):
            native.square(x)  # same exception, same message as the core
    x[123_457] = 7
    assert same(k.fast_square(x), native.square(x))  # and the module is fine afterwards


def test_fast_square_buffer_errors(k: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^x must be C-contiguous"):
        k.fast_square(np.arange(10.0)[::2])
    with pytest.raises(TypeError, match=r"^x has unsupported element format"):
        k.fast_square(np.zeros(3, dtype=np.complex128))
    with pytest.raises(TypeError):
        k.fast_square("abc")


@pytest.mark.parametrize(
    ("w", "h", "it", "bounds"),
    [
        (0, 3, 10, (-2.0, 1.0, -1.5, 1.5)),
        (3, 0, 10, (-2.0, 1.0, -1.5, 1.5)),
        (1, 1, 0, (-2.0, 1.0, -1.5, 1.5)),
        (101, 67, 256, (-2.0, 1.0, -1.5, 1.5)),
        (640, 360, 100, (-0.7453, -0.7443, 0.1127, 0.1137)),
        (31, 17, 10_000, (-1.25, -1.2, 0.01, 0.02)),
        (5, 3, 10, (-1e-300, 1e-300, -1e-300, 1e-300)),
    ],
)
def test_mandelbrot_bit_identical(k: ModuleType, w: int, h: int, it: int, bounds: tuple[float, ...]) -> None:
    ref = native.mandelbrot(w, h, it, bounds)
    for threads in (1, 2, 3):
        assert same(k.mandelbrot(w, h, it, bounds, threads=threads), ref)


def test_mandelbrot_errors_match_native(k: ModuleType) -> None:
    cases = [
        (-1, 4, 10, None),
        (4, 4, 2**32, None),
        (4, 4, 10, (0.0, 1.0, 0.0)),
        (4, 4, 10, (1.0, 1.0, 0.0, 1.0)),
    ]
    for w, h, it, bounds in cases:
        args = (w, h, it) if bounds is None else (w, h, it, bounds)
        with pytest.raises(ValueError, match=r"must be") as ours:
            k.mandelbrot(*args)
        with pytest.raises(ValueError, match=r"must be") as theirs:
            native.mandelbrot(*args)
        assert str(ours.value) == str(theirs.value)


def test_core_failed_reduction_returns_zero_not_stack_garbage() -> None:
    """The core writes an mc_scalar result only on success; _core zeroes it before the call.

    Found by scripts/sanitize.sh valgrind: a failed reduce/dot/minmax converted
    its uninitialised result ("Conditional jump ... depends on uninitialised
    value(s)" in _scalar).  A successful call first leaves large values in the
    stack slot the failing call then reuses, so without the zeroing the
    failing call returns them (minmax did: (590295950809488258656, 0.0)).
    """
    from manycore import _errors
    from manycore._cy import _core
    from manycore.ffi import _header

    U64 = _header.declarations().constants["MC_U64"]

    x = memoryview(np.array([2**62, 2**62, 2**62, 5], dtype=np.uint64).tobytes())
    bad_dtype = 99
    edtype = _errors.EDTYPE
    assert _core.reduce(True, 0, 1, False, x, 4, U64) == (0, 3 * 2**62 + 5)
    assert _core.reduce(True, 0, 1, False, x, 4, bad_dtype) == (edtype, 0.0)
    assert _core.dot(0, 1, False, x, x, 4, U64) == (0, 3 * 2**124 + 25)
    assert _core.dot(0, 1, False, x, x, 4, bad_dtype) == (edtype, 0.0)
    assert _core.minmax(0, 1, False, x, 4, U64) == (0, (5, 2**62))
    assert _core.minmax(0, 1, False, x, 4, bad_dtype) == (edtype, (0.0, 0.0))
