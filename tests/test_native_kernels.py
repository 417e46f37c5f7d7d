"""Kernel results of manycore.native against pure-Python references.

Integer results must be exact; float results must be bit-identical to a Python
transcription of the operation order documented in csrc/kernels_*.c (and close
to math.fsum / NumPy as a sanity check of those formulas themselves).
"""

from __future__ import annotations

import array
import ctypes
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import native_reference as ref
from manycore import native
from native_support import KINDS, as_kind

# Sizes around the kernels' block sizes (16 lanes, 4096-element float blocks,
# 2**15 / 2**16 / 2**17 grains) and the work needed to use the pool (2**17).
SIZES = (0, 1, 2, 3, 15, 16, 17, 4095, 4096, 4097, 65537, 100003, 131073, 262147)
SMALL_SIZES = tuple(n for n in SIZES if n <= 4097)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def int_data(fmt: str, n: int, seed: int) -> np.ndarray:
    """Random integers over the whole range of `fmt`, with both extremes present."""
    lo, hi = ref.int_limits(fmt)
    rng = np.random.default_rng(seed)
    a = rng.integers(lo, hi, size=n, endpoint=True, dtype=np.dtype(fmt)).astype(fmt)
    for pos, v in ((0, lo), (n - 1, hi), (n // 2, lo), (n // 3, hi)):
        if 0 <= pos < n:
            a[pos] = v
    assert memoryview(a).format == fmt
    return a


def float_data(fmt: str, n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * scale * np.exp(rng.uniform(-8, 8, n))).astype(fmt)
    assert memoryview(a).format == fmt
    return a


def assert_same_float(got: float, want: float) -> None:
    assert isinstance(got, float)
    assert ref.same_float(got, want), f"{got!r} ({float(got).hex()}) != {want!r} ({float(want).hex()})"


# ================================================================ sum_of_squares(range)
KNOWN_10_7 = 333333283333335000000


def test_sum_of_squares_10_7_exact() -> None:
    r = native.sum_of_squares(10**7)
    assert type(r) is int
    assert r == KNOWN_10_7
    assert r == sum(i * i for i in range(10**7))  # the unit's own definition
    assert r > 2**63  # the seed's long long wraps here


@pytest.mark.parametrize(
    "n",
    [
        *(0, 1, 2, 3, 5, 7, 13, 97, 4095, 4097, 65535, 65536, 65537, 100003, 131071, 131072, 131073),
        *(1_000_003, 2**20 + 7, 10**7 + 19, 2**31 - 1, 2**32 + 3),
    ],
)
def test_sum_of_squares_range_closed_form(n: int) -> None:
    assert native.sum_of_squares(n) == ref.sum_of_squares_range(n)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 4097, 65537])
def test_sum_of_squares_range_small_by_loop(n: int) -> None:
    assert native.sum_of_squares(n) == sum(i * i for i in range(n))


@pytest.mark.parametrize("n", [2**33 + 65537, 2**35 + 3])
def test_sum_of_squares_range_large(n: int) -> None:
    # ~0.3-1.2 s: block bases near 2**35, so b*b ~ 2**70 needs the 128-bit accumulator
    assert native.sum_of_squares(n) == ref.sum_of_squares_range(n)


def test_sum_of_squares_range_accepts_index_types() -> None:
    assert native.sum_of_squares(np.int64(1000)) == ref.sum_of_squares_range(1000)
    assert native.sum_of_squares(np.uint32(4097)) == ref.sum_of_squares_range(4097)


def test_sum_of_squares_limit() -> None:
    assert native.SUM_OF_SQUARES_MAX_N == 2**42
    for n in (native.SUM_OF_SQUARES_MAX_N + 1, 2**63, 2**64, 10**30):
        with pytest.raises(OverflowError, match=r"^x must be <="):
            native.sum_of_squares(n)


# ================================================================ integer reductions
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("fmt", ref.INT_FORMATS)
def test_int_reductions_exact(fmt: str, n: int) -> None:
    x = int_data(fmt, n, seed=n * 31 + ord(fmt))
    y = int_data(fmt, n, seed=n * 17 + ord(fmt) + 1)[::-1].copy()
    xs, ys = x.tolist(), y.tolist()
    for got, want in (
        (native.sum(x), ref.isum_ref(xs)),
        (native.sum_of_squares(x), ref.isumsq_ref(xs)),
        (native.dot(x, y), ref.idot_ref(xs, ys)),
    ):
        assert type(got) is int
        assert got == want


@pytest.mark.parametrize("n", [1, 4097, 262147])
@pytest.mark.parametrize("fmt", ref.INT_FORMATS)
def test_int_reductions_extreme_values_do_not_overflow(fmt: str, n: int) -> None:
    lo, hi = ref.int_limits(fmt)
    for v in (lo, hi):
        x = np.full(n, v, dtype=fmt)
        assert native.sum(x) == n * v
        assert native.sum_of_squares(x) == n * v * v
        assert native.dot(x, x) == n * v * v
    x = np.full(n, lo, dtype=fmt)
    y = np.full(n, hi, dtype=fmt)
    assert native.dot(x, y) == n * lo * hi
    alt = np.array([lo, hi] * (n // 2) + [lo] * (n % 2), dtype=fmt)
    assert native.sum(alt) == (n // 2) * (lo + hi) + (n % 2) * lo


def test_int64_uint64_extremes_exact() -> None:
    i64 = np.array([-(2**63), 2**63 - 1, -(2**63), -(2**63)], dtype=np.int64)
    assert native.sum(i64) == -(2**63) + 2**63 - 1 - 2**64
    assert native.sum_of_squares(i64) == 3 * 2**126 + (2**63 - 1) ** 2
    u64 = np.full(5, 2**64 - 1, dtype=np.uint64)
    assert native.sum(u64) == 5 * (2**64 - 1)
    assert native.sum_of_squares(u64) == 5 * (2**64 - 1) ** 2
    assert native.dot(u64, u64) == 5 * (2**64 - 1) ** 2


# ================================================================ float reductions
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("fmt", ref.FLOAT_FORMATS)
def test_float_reductions_bit_exact(fmt: str, n: int) -> None:
    x = float_data(fmt, n, seed=n + 1)
    y = float_data(fmt, n, seed=n + 2)
    xs, ys = x.tolist(), y.tolist()
    assert_same_float(native.sum(x), ref.fsum_ref(xs))
    assert_same_float(native.sum_of_squares(x), ref.fsumsq_ref(xs))
    assert_same_float(native.dot(x, y), ref.fdot_ref(xs, ys))


@pytest.mark.parametrize("n", [1, 17, 4097, 100003, 262147])
@pytest.mark.parametrize("fmt", ref.FLOAT_FORMATS)
def test_float_reductions_close_to_fsum(fmt: str, n: int) -> None:
    x = float_data(fmt, n, seed=3 * n)
    y = float_data(fmt, n, seed=3 * n + 1)
    xs, ys = x.tolist(), y.tolist()
    cases = (
        (native.sum(x), xs),
        (native.sum_of_squares(x), [v * v for v in xs]),
        (native.dot(x, y), [a * b for a, b in zip(xs, ys, strict=True)]),
    )
    for got, terms in cases:
        exact = math.fsum(terms)
        scale = math.fsum(abs(t) for t in terms)
        assert abs(got - exact) <= 1e-12 * scale
    # positive data: a relative bound on the result itself
    p = np.abs(x)
    assert native.sum(p) == pytest.approx(math.fsum(p.tolist()), rel=1e-12, abs=0)


def test_float_reductions_empty_and_types() -> None:
    for fmt in ref.FLOAT_FORMATS:
        e = np.zeros(0, dtype=fmt)
        for r in (native.sum(e), native.sum_of_squares(e), native.dot(e, e)):
            assert type(r) is float
            assert r == 0.0
    for fmt in ref.INT_FORMATS:
        e = np.zeros(0, dtype=fmt)
        for r in (native.sum(e), native.sum_of_squares(e), native.dot(e, e)):
            assert type(r) is int
            assert r == 0


def test_float_sum_special_values() -> None:
    assert native.sum(np.array([1.0, math.inf, 2.0])) == math.inf
    assert math.isnan(native.sum(np.array([1.0, math.inf, -math.inf])))
    assert math.isnan(native.sum(np.array([1.0, math.nan] + [0.0] * 200000)))
    big = np.full(262147, 1e308)
    assert native.sum(big) == math.inf
    assert native.sum(np.array([0.1] * 10)) == ref.fsum_ref([0.1] * 10)


def test_float32_is_accumulated_in_float64() -> None:
    # 2**24 + 1 is not a float32, but the float64 accumulator holds it.
    x = np.ones(2**24 + 1, dtype=np.float32)
    assert native.sum(x) == float(2**24 + 1)
    # float32 squares are formed in double: 3e20**2 overflows float32, not float64
    y = np.array([3e20], dtype=np.float32)
    assert native.sum_of_squares(y) == float(np.float32(3e20)) ** 2


# ================================================================ buffer kinds
@pytest.mark.parametrize("kind", ["array", "memoryview", "bytes", "bytearray"])
@pytest.mark.parametrize("fmt", ref.ALL_FORMATS)
def test_buffer_kinds(fmt: str, kind: str) -> None:
    n = 4097
    a = int_data(fmt, n, seed=5) if fmt in ref.INT_FORMATS else float_data(fmt, n, seed=5)
    x = as_kind(a, kind)
    xs = ref.values(x)
    assert xs == a.tolist()
    assert native.sum(x) == ref.reduce_ref("sum", fmt, xs)
    assert native.sum_of_squares(x) == ref.reduce_ref("sum_of_squares", fmt, xs)
    assert native.dot(x, x) == ref.reduce_ref("dot", fmt, xs, xs)
    assert native.minmax(x) == ref.minmax_ref(xs)


@pytest.mark.parametrize("fmt", ref.ALL_FORMATS)
def test_array_array_every_typecode(fmt: str) -> None:
    vals = [1, 2, 3, 100, 7] if fmt in ref.INT_FORMATS else [0.5, -1.25, 3.0, 1e10, 2.0]
    x = array.array(fmt, vals * 40000)  # 200000 elements: runs on the pool
    assert native.sum(x) == ref.reduce_ref("sum", fmt, x.tolist())
    assert native.dot(x, x) == ref.reduce_ref("dot", fmt, x.tolist(), x.tolist())


@pytest.mark.parametrize(
    ("ctype", "fmt"),
    [
        (ctypes.c_int8, "b"),
        (ctypes.c_uint16, "H"),
        (ctypes.c_int32, "i"),
        (ctypes.c_long, "l"),
        (ctypes.c_uint64, "Q"),
        (ctypes.c_float, "f"),
        (ctypes.c_double, "d"),
    ],
)
def test_ctypes_arrays(ctype: type, fmt: str) -> None:
    n = 200_003
    a = int_data(fmt, n, seed=2) if fmt in ref.INT_FORMATS else float_data(fmt, n, seed=2)
    c = (ctype * n)()
    ctypes.memmove(c, a.ctypes.data, a.nbytes)
    xs = a.tolist()
    assert native.sum(c) == ref.reduce_ref("sum", fmt, xs)
    assert native.dot(c, a) == ref.reduce_ref("dot", fmt, xs, xs)
    assert native.minmax(c) == ref.minmax_ref(xs)


def test_bytes_and_bytearray_are_unsigned_bytes() -> None:
    data = bytes(range(256)) * 1000
    want = sum(data)
    assert native.sum(data) == want
    assert native.sum(bytearray(data)) == want
    assert native.sum(memoryview(data)) == want
    assert native.sum_of_squares(data) == sum(v * v for v in data)
    assert native.minmax(data) == (0, 255)


def test_multidimensional_c_contiguous_buffers_are_flat() -> None:
    a = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    assert native.sum(a) == sum(range(120))
    assert native.dot(a, a) == sum(i * i for i in range(120))
    assert native.minmax(a) == (0, 119)


def test_explicit_little_endian_formats_are_accepted() -> None:
    x = memoryview(struct.pack("<3q", -5, 7, 11)).cast("B").cast("q")
    assert native.sum(x) == 13
    a = np.arange(10, dtype="<f8")
    assert native.sum(a) == 45.0


# ================================================================ minmax
@pytest.mark.parametrize("n", [1, 2, 17, 4097, 131073, 262147])
@pytest.mark.parametrize("fmt", ref.INT_FORMATS)
def test_minmax_int_exact(fmt: str, n: int) -> None:
    x = int_data(fmt, n, seed=n)
    got = native.minmax(x)
    assert got == ref.minmax_ref(x.tolist())
    assert all(type(v) is int for v in got)
    # extremes absent: the true min / max of a narrower range
    lo, hi = ref.int_limits(fmt)
    y = np.clip(x, lo + 1, hi - 1).astype(fmt)
    if n > 2:
        y[n // 5] = lo + 1
    assert native.minmax(y) == ref.minmax_ref(y.tolist())


@pytest.mark.parametrize("n", [1, 2, 17, 4097, 131073, 262147])
@pytest.mark.parametrize("fmt", ref.FLOAT_FORMATS)
def test_minmax_float(fmt: str, n: int) -> None:
    x = float_data(fmt, n, seed=n)
    got = native.minmax(x)
    assert all(type(v) is float for v in got)
    want = ref.minmax_ref(x.tolist())
    assert ref.same_float(got[0], want[0])
    assert ref.same_float(got[1], want[1])


@pytest.mark.parametrize("fmt", ref.FLOAT_FORMATS)
def test_minmax_infinities_and_signed_zero(fmt: str) -> None:
    x = np.array([0.0, 3.0, -math.inf, math.inf, -2.0], dtype=fmt)
    assert native.minmax(x) == (-math.inf, math.inf)
    for data in ([0.0, -0.0], [-0.0, 0.0], [0.0, -0.0] * 100000):
        lo, hi = native.minmax(np.array(data, dtype=fmt))
        assert ref.bits(lo) == ref.bits(-0.0)
        assert ref.bits(hi) == ref.bits(0.0)


@pytest.mark.parametrize("n", [1, 2, 17, 4097, 262147])
@pytest.mark.parametrize("fmt", ref.FLOAT_FORMATS)
def test_minmax_nan_propagates_to_both(fmt: str, n: int) -> None:
    for pos in {0, n // 2, n - 1}:
        for nan in (math.nan, -math.nan):
            x = float_data(fmt, n, seed=pos)
            if n > 2:
                x[1] = -math.inf
                x[-2] = math.inf
            x[pos] = nan
            lo, hi = native.minmax(x)
            assert math.isnan(lo), (pos, lo)
            assert math.isnan(hi), (pos, hi)


# ================================================================ histogram
def check_histogram(x: object, bins: int, lo: float, hi: float, **kw: object) -> np.ndarray:
    got = native.histogram(x, bins, lo, hi, **kw)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.int64
    assert got.shape == (bins,)
    assert got.tolist() == ref.histogram_ref(ref.values(x), bins, lo, hi)
    return got


@pytest.mark.parametrize("n", [0, 1, 17, 4097, 100003, 262147])
@pytest.mark.parametrize("bins", [1, 3, 10, 1000])
def test_histogram_float64(n: int, bins: int) -> None:
    rng = np.random.default_rng(n + bins)
    lo, hi = -1.5, 2.25
    x = rng.uniform(lo - 0.5, hi + 0.5, n)
    specials = [lo, hi, math.nan, math.inf, -math.inf, np.nextafter(hi, 3), np.nextafter(lo, -3)]
    for i, v in enumerate(specials):
        if i < n:
            x[(i * 7919) % n] = v
    counts = check_histogram(x, bins, lo, hi)
    inside = np.count_nonzero((x >= lo) & (x <= hi))
    assert int(counts.sum()) == inside


@pytest.mark.parametrize("fmt", ref.ALL_FORMATS)
def test_histogram_every_format(fmt: str) -> None:
    n = 131073
    if fmt in ref.INT_FORMATS:
        x = int_data(fmt, n, seed=11)
        lo, hi = ref.int_limits(fmt)
        check_histogram(x, 7, float(lo), float(hi))
        check_histogram(x, 5, float(lo) / 3, float(hi) / 2)
        check_histogram(x, 13, 0.0, 100.0)
    else:
        x = float_data(fmt, n, seed=11)
        check_histogram(x, 64, -3.0, 3.0)
        check_histogram(x, 1, -1e-3, 1e-3)


def test_histogram_edges() -> None:
    x = np.arange(0, 11, dtype=np.float64)  # 0..10
    counts = native.histogram(x, 10, 0.0, 10.0)
    assert counts.tolist() == [1] * 9 + [2]  # 10.0 == hi goes to the last bin
    counts = native.histogram(np.array([-1e-300, 0.0, 10.0, 10.000000000000002]), 10, 0.0, 10.0)
    assert counts.tolist() == [1] + [0] * 8 + [1]
    counts = native.histogram(np.array([math.nan, math.inf, -math.inf]), 4, -1.0, 1.0)
    assert counts.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("lo", "hi", "bins"), [(0.0, 1.0, 10), (2.997981525223281, 9.931705082446975, 245), (-7.3, 0.1, 1000)]
)
def test_histogram_values_on_bin_edges(lo: float, hi: float, bins: int) -> None:
    # Values at (and one ulp around) every bin edge: where floor() is decided by
    # the last rounding, so only the kernel's exact operation order matches.
    edges = [lo + i * (hi - lo) / bins for i in range(bins + 1)]
    vals = [v for e in edges for v in (math.nextafter(e, -math.inf), e, math.nextafter(e, math.inf))]
    x = np.array(vals * 50)  # > 2**17 elements for bins=1000: also on the pool
    check_histogram(x, bins, lo, hi)
    check_histogram(x.astype(np.float32), bins, lo, hi)


def test_histogram_huge_range_scales() -> None:
    # (hi - lo) * bins overflows a double: the kernel scales by a power of two
    dmax = np.finfo(np.float64).max
    x = np.array([-dmax, -1e308, -1.0, 0.0, 1.0, 1e308, dmax, math.inf, math.nan] * 20000)
    check_histogram(x, 7, float(-dmax), float(dmax))
    check_histogram(x, 1000, -1e308, 1.5e308)
    check_histogram(x, 3, float(-dmax), 0.0)


def test_histogram_uint64_rounding() -> None:
    # (double)x of large uint64 values rounds to nearest; 2**64 - 1 becomes 2**64 == hi
    x = np.array([2**64 - 1, 2**63, 2**53 + 1, 0, 1], dtype=np.uint64)
    check_histogram(x, 4, 0.0, float(2**64))
    check_histogram(x, 4, 0.0, float(2**63))


def test_histogram_out_is_overwritten_and_returned() -> None:
    x = np.linspace(0.0, 1.0, 200001)
    out = np.full(9, 123456789, dtype=np.int64)
    got = native.histogram(x, 9, 0.0, 1.0, out=out)
    assert got is out
    assert out.tolist() == ref.histogram_ref(x.tolist(), 9, 0.0, 1.0)
    buf = bytearray(8 * 9)
    mv = memoryview(buf).cast("q")
    assert native.histogram(x, 9, 0.0, 1.0, out=mv) is mv
    assert mv.tolist() == out.tolist()
    arr = array.array("q", [7] * 9)
    native.histogram(x[:10], 9, 0.0, 1.0, out=arr)
    assert arr.tolist() == ref.histogram_ref(x[:10].tolist(), 9, 0.0, 1.0)


def test_histogram_integer_bounds_and_numpy_scalars() -> None:
    x = np.arange(100, dtype=np.int16)
    assert native.histogram(x, 4, 0, 100).tolist() == [25, 25, 25, 25]
    assert native.histogram(x, np.int64(4), np.float32(0), np.float64(100)).tolist() == [25, 25, 25, 25]


# ================================================================ count_primes
def test_count_primes_small_all() -> None:
    sieve_to = 1000
    want = [ref.count_primes_ref(n) for n in range(sieve_to)]
    assert [native.count_primes(n) for n in range(sieve_to)] == want


@pytest.mark.parametrize(
    "n",
    [
        *(65535, 65536, 65537, 65538, 65539, 131071, 131072, 131073, 131074, 196609, 262147),
        *(1009**2, 1009**2 + 1, 65521 * 3, 999983, 10**6, 10**6 + 3),
    ],
)
def test_count_primes_vs_sieve(n: int) -> None:
    assert native.count_primes(n) == ref.count_primes_ref(n)


@pytest.mark.parametrize(("n", "pi"), [(10**7, 664579), (10**8, 5761455), (10**9, 50847534)])
def test_count_primes_known_values(n: int, pi: int) -> None:
    assert native.count_primes(n) == pi


def test_count_primes_limit() -> None:
    assert native.COUNT_PRIMES_MAX_N == 2**48
    with pytest.raises(ValueError, match=r"\bn\b"):
        native.count_primes(native.COUNT_PRIMES_MAX_N + 1)


# ================================================================ monte_carlo_pi
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63, 2**64 - 1])
@pytest.mark.parametrize("samples", [1, 2, 3, 7, 1000, 4097])
def test_monte_carlo_pi_bit_exact_small(samples: int, seed: int) -> None:
    hits = ref.monte_carlo_hits_ref(samples, seed)
    got = native.monte_carlo_pi(samples, seed)
    assert type(got) is float
    assert ref.bits(got) == ref.bits(4.0 * hits / samples)


@pytest.mark.parametrize(("samples", "seed"), [(65537, 7), (100003, 2**64 - 1)])
def test_monte_carlo_pi_bit_exact_on_the_pool(samples: int, seed: int) -> None:
    hits = ref.monte_carlo_hits_ref(samples, seed)
    assert ref.bits(native.monte_carlo_pi(samples, seed)) == ref.bits(4.0 * hits / samples)


def test_monte_carlo_pi_estimate() -> None:
    est = native.monte_carlo_pi(10**6)
    assert abs(est - math.pi) < 0.01  # ~6 standard deviations for 10**6 samples
    assert native.monte_carlo_pi(10**6) == est  # same (samples, seed), same value
    assert native.monte_carlo_pi(10**6, seed=1) != est
    assert native.monte_carlo_pi(10**6, 0) == native.monte_carlo_pi(10**6)


# ================================================================ mandelbrot
def check_mandelbrot(
    w: int, h: int, it: int, bounds: tuple[float, float, float, float], **kw: object
) -> None:
    got = native.mandelbrot(w, h, it, bounds, **kw)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.uint32
    assert got.shape == (h, w)
    assert got.tolist() == ref.mandelbrot_ref(w, h, it, *bounds)


DEFAULT_BOUNDS = (-2.0, 1.0, -1.5, 1.5)


@pytest.mark.parametrize(
    ("w", "h", "it"),
    [
        (1, 1, 10),
        (8, 8, 30),
        (9, 7, 50),
        (17, 5, 100),
        (31, 3, 77),
        (32, 4, 9),
        (33, 21, 64),
        (65, 2, 300),
        (3, 40, 20),
    ],
)
def test_mandelbrot_bit_exact_default_bounds(w: int, h: int, it: int) -> None:
    check_mandelbrot(w, h, it, DEFAULT_BOUNDS)


@pytest.mark.parametrize(
    "bounds",
    [(-0.75, -0.73, 0.1, 0.12), (-1.8, -1.7, -0.05, 0.05), (0.25, 0.26, -0.01, 0.01), (-2.5, 2.5, -2.0, 0.0)],
)
def test_mandelbrot_bit_exact_custom_bounds(bounds: tuple[float, float, float, float]) -> None:
    check_mandelbrot(13, 11, 200, bounds)


def test_mandelbrot_bit_exact_on_the_pool() -> None:
    # width * height * max_iter / 4 >= 2**17: runs on the default pool
    check_mandelbrot(64, 48, 256, DEFAULT_BOUNDS)


def test_mandelbrot_degenerate() -> None:
    assert native.mandelbrot(5, 4, 0).tolist() == [[0] * 5] * 4
    assert native.mandelbrot(0, 4).shape == (4, 0)
    assert native.mandelbrot(4, 0).shape == (0, 4)
    assert native.mandelbrot(1, 1, 1000, (-0.1, 0.1, -0.1, 0.1)).tolist() == [[1000]]


def test_mandelbrot_default_arguments() -> None:
    got = native.mandelbrot(12, 10)
    assert got.tolist() == ref.mandelbrot_ref(12, 10, 256, *DEFAULT_BOUNDS)


def test_mandelbrot_out_buffers() -> None:
    want = ref.mandelbrot_ref(10, 6, 40, *DEFAULT_BOUNDS)
    flat = [v for row in want for v in row]
    out = np.full((6, 10), 99, dtype=np.uint32)
    assert native.mandelbrot(10, 6, 40, out=out) is out
    assert out.tolist() == want
    out32 = np.zeros(60, dtype=np.int32)
    native.mandelbrot(10, 6, 40, out=out32)
    assert out32.tolist() == flat
    arr = array.array("I", [0] * 60)
    native.mandelbrot(10, 6, 40, out=arr)
    assert arr.tolist() == flat


# ================================================================ matmul
@pytest.mark.parametrize(
    ("m", "k", "n"),
    [(1, 1, 1), (3, 5, 7), (4, 4, 4), (5, 130, 3), (13, 20, 600), (17, 129, 9), (2, 257, 5)],
)
def test_matmul_bit_exact_vs_naive_loop(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    c = native.matmul(a, b)
    assert c.dtype == np.float64
    assert c.shape == (m, n)
    want = ref.matmul_ref(a, b)
    got = c.tolist()
    assert all(
        ref.bits(g) == ref.bits(w)
        for gr, wr in zip(got, want, strict=True)
        for g, w in zip(gr, wr, strict=True)
    )


@pytest.mark.parametrize(
    ("m", "k", "n"), [(64, 64, 64), (130, 257, 129), (101, 31, 77), (7, 1000, 3), (1, 600, 600)]
)
def test_matmul_vs_numpy(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    np.testing.assert_allclose(native.matmul(a, b), a @ b, rtol=1e-11, atol=1e-11 * k)


@pytest.mark.parametrize(("m", "k", "n"), [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_matmul_empty_dimensions(m: int, k: int, n: int) -> None:
    a = np.ones((m, k))
    b = np.ones((k, n))
    out = np.full((m, n), np.nan)
    got = native.matmul(a, b, out=out)
    assert got is out
    np.testing.assert_array_equal(out, np.zeros((m, n)))


def test_matmul_out_overwritten_and_same_input_twice() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((70, 70))
    out = np.full((70, 70), 1e300)
    native.matmul(a, a, out=out)
    np.testing.assert_allclose(out, a @ a, rtol=1e-12, atol=1e-12)
    flat = np.empty(70 * 70)  # any float64 buffer of m*n elements
    native.matmul(a, a, out=flat)
    np.testing.assert_array_equal(flat.reshape(70, 70), out)


# ================================================================ square
@pytest.mark.parametrize("n", [0, 1, 17, 4097, 131073])
@pytest.mark.parametrize("fmt", ref.ALL_FORMATS)
def test_square_default_out(fmt: str, n: int) -> None:
    if fmt in ref.INT_FORMATS:
        x = int_data(fmt, n, seed=n)
        if fmt in "lLqQ":  # keep squares within 64 bits
            x = (x // (2**32)).astype(fmt)
        want_dtype = np.dtype(np.int64 if fmt in "bhilq" else np.uint64)
    else:
        x = float_data(fmt, n, seed=n)
        want_dtype = np.dtype(fmt)
    got = native.square(x)
    assert got.dtype == want_dtype
    assert got.shape == x.shape
    if fmt in ref.INT_FORMATS:
        assert got.tolist() == [v * v for v in x.tolist()]
    else:
        np.testing.assert_array_equal(got.view(np.uint8), (x * x).view(np.uint8))


@pytest.mark.parametrize("fmt", ref.INT_FORMATS)
def test_square_explicit_int_outputs(fmt: str) -> None:
    lo, _ = ref.int_limits(fmt)
    small = np.array([0, 1, 2, 3, 5, 7, 11], dtype=fmt)
    if lo < 0:
        small = np.concatenate([small, -small]).astype(fmt)
    want = [v * v for v in small.tolist()]
    same = np.empty_like(small)
    native.square(small, out=same)
    assert same.tolist() == want
    for out_dtype in (np.int64, np.uint64):
        out = np.empty(small.shape, dtype=out_dtype)
        native.square(small, out=out)
        assert out.tolist() == want
    f = np.empty(small.shape, dtype=np.float64)
    native.square(small, out=f)
    assert f.tolist() == [float(v) * float(v) for v in small.tolist()]


def test_square_float_outputs() -> None:
    x32 = float_data("f", 4097, seed=3)
    o64 = np.empty(x32.shape, dtype=np.float64)
    native.square(x32, out=o64)
    np.testing.assert_array_equal(o64, x32.astype(np.float64) * x32.astype(np.float64))
    o32 = np.empty_like(x32)
    native.square(x32, out=o32)
    np.testing.assert_array_equal(o32.view(np.uint32), (x32 * x32).view(np.uint32))
    big = np.array([2**63 - 1, -(2**63)], dtype=np.int64)
    o = np.empty(2)
    native.square(big, out=o)
    assert o.tolist() == [float(2**63 - 1) ** 2, float(2**63) ** 2]


@pytest.mark.parametrize(
    ("fmt", "out_fmt", "fits", "overflows"),
    [
        ("b", "b", [11, -11], [12, -12, -128]),
        ("B", "B", [15], [16, 255]),
        ("h", "h", [181, -181], [182, -32768]),
        ("H", "H", [255], [256]),
        ("i", "i", [46340, -46340], [46341, -(2**31)]),
        ("I", "I", [65535], [65536]),
        ("q", "q", [3037000499, -3037000499], [3037000500, -(2**63), 2**63 - 1]),
        ("l", "l", [3037000499], [-3037000500]),
        ("Q", "Q", [2**32 - 1], [2**32, 2**64 - 1]),
        ("L", "L", [2**32 - 1], [2**32]),
        ("q", "Q", [2**32 - 1, -(2**32 - 1)], [2**32, -(2**32), -(2**63)]),
        ("Q", "q", [3037000499], [3037000500, 2**64 - 1]),
        ("i", "q", [-(2**31), 2**31 - 1], []),
        ("I", "Q", [2**32 - 1], []),
    ],
)
def test_square_overflow_boundaries(fmt: str, out_fmt: str, fits: list[int], overflows: list[int]) -> None:
    for v in fits:
        x = np.array([0, v, 1], dtype=fmt)
        out = np.zeros(3, dtype=out_fmt)
        native.square(x, out=out)
        assert out.tolist() == [0, v * v, 1]
    for v in overflows:
        for n in (3, 131073):  # serial and pool paths
            x = np.zeros(n, dtype=fmt)
            x[n // 2] = v
            with pytest.raises(OverflowError):
                native.square(x, out=np.zeros(n, dtype=out_fmt))


def test_square_default_out_overflow() -> None:
    with pytest.raises(OverflowError):
        native.square(np.array([1, 3037000500], dtype=np.int64))
    with pytest.raises(OverflowError):
        native.square(np.array([2**32], dtype=np.uint64))
    assert native.square(np.array([3037000499], dtype=np.int64)).tolist() == [3037000499**2]
    assert native.square(np.array([2**32 - 1], dtype=np.uint64)).tolist() == [(2**32 - 1) ** 2]


@pytest.mark.parametrize("fmt", ref.ALL_FORMATS)
def test_square_in_place(fmt: str) -> None:
    n = 131073
    x = (
        np.arange(n, dtype=np.int64) % 11 - (5 if fmt in "bhilq" else 0)
        if fmt in ref.INT_FORMATS
        else float_data("d", n, seed=1)
    ).astype(fmt)
    want = x * x
    native.square(x, out=x)
    np.testing.assert_array_equal(x, want)


def test_square_in_place_through_a_view() -> None:
    x = np.array([-3, 4, -(2**31), 2**32 - 1] * 50000, dtype=np.int64)
    out = x.view(np.uint64)  # same memory, same item size, other format
    native.square(x, out=out)
    assert out[:4].tolist() == [9, 16, 2**62, (2**32 - 1) ** 2]
    assert out.tolist() == [9, 16, 2**62, (2**32 - 1) ** 2] * 50000


def test_square_2d_keeps_shape() -> None:
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    got = native.square(x)
    assert got.shape == (3, 4)
    assert got.tolist() == (x.astype(np.int64) ** 2).tolist()


# ================================================================ hypothesis
FORMATS = st.sampled_from(ref.ALL_FORMATS)
THREADS = st.integers(1, 8)


@st.composite
def buffers(draw: st.DrawFn, fmt: str | None = None, allow_nan: bool = True) -> tuple[str, np.ndarray]:
    """(format, 1-D array): small arrays with hypothesis elements, or large seeded ones."""
    fmt = fmt or draw(FORMATS)
    if draw(st.integers(0, 4)) == 0:
        n = draw(st.sampled_from([4095, 4097, 65537, 131073]))
        seed = draw(st.integers(0, 2**32 - 1))
        a = int_data(fmt, n, seed) if fmt in ref.INT_FORMATS else float_data(fmt, n, seed)
    else:
        n = draw(st.integers(0, 80))
        if fmt in ref.INT_FORMATS:
            elements = None
        else:
            elements = st.floats(width=32 if fmt == "f" else 64, allow_nan=allow_nan)
        a = draw(hnp.arrays(np.dtype(fmt), n, elements=elements)).astype(fmt)
    return fmt, a


@SETTINGS
@given(data=buffers(), kind=st.sampled_from(KINDS), threads=THREADS)
def test_property_reductions(data: tuple[str, np.ndarray], kind: str, threads: int) -> None:
    fmt, a = data
    x = as_kind(a, kind)
    xs = ref.values(x)
    for op, got in (
        ("sum", native.sum(x, threads=threads)),
        ("sum_of_squares", native.sum_of_squares(x, threads=threads)),
        ("dot", native.dot(x, x, threads=threads)),
    ):
        want = ref.reduce_ref(op, fmt, xs, xs)
        if fmt in ref.INT_FORMATS:
            assert type(got) is int
            assert got == want
        else:
            assert_same_float(got, want)
    if xs:
        got_mm = native.minmax(x, threads=threads)
        want_mm = ref.minmax_ref(xs)
        if fmt in ref.INT_FORMATS:
            assert got_mm == want_mm
        else:
            assert ref.same_float(got_mm[0], want_mm[0])
            assert ref.same_float(got_mm[1], want_mm[1])


@SETTINGS
@given(
    data=buffers(),
    bins=st.integers(1, 40),
    lo=st.floats(-1e6, 1e6),
    width=st.floats(1e-6, 1e7),
    threads=THREADS,
)
def test_property_histogram(
    data: tuple[str, np.ndarray], bins: int, lo: float, width: float, threads: int
) -> None:
    _fmt, a = data
    hi = lo + width
    if not lo < hi:
        hi = math.nextafter(lo, math.inf)
    got = native.histogram(a, bins, lo, hi, threads=threads)
    assert got.tolist() == ref.histogram_ref(a.tolist(), bins, lo, hi)


@SETTINGS
@given(data=buffers(), threads=THREADS)
def test_property_dot_with_second_array(data: tuple[str, np.ndarray], threads: int) -> None:
    fmt, a = data
    b = a[::-1].copy()
    got = native.dot(a, b, threads=threads)
    want = ref.reduce_ref("dot", fmt, a.tolist(), b.tolist())
    if fmt in ref.INT_FORMATS:
        assert got == want
    else:
        assert_same_float(got, want)


@SETTINGS
@given(fmt=st.sampled_from(ref.INT_FORMATS), data=st.data(), threads=THREADS)
def test_property_square_int_exact_or_overflow(fmt: str, data: st.DataObject, threads: int) -> None:
    a = data.draw(hnp.arrays(np.dtype(fmt), st.integers(0, 50))).astype(fmt)
    out_fmt = data.draw(st.sampled_from([fmt, "q", "Q"]))
    out = np.zeros(a.shape, dtype=out_fmt)
    _, ohi = ref.int_limits(out_fmt)
    squares = [v * v for v in a.tolist()]
    if all(s <= ohi for s in squares):
        native.square(a, out=out, threads=threads)
        assert out.tolist() == squares
    else:
        with pytest.raises(OverflowError):
            native.square(a, out=out, threads=threads)


@SETTINGS
@given(samples=st.integers(1, 300), seed=st.integers(0, 2**64 - 1), threads=THREADS)
def test_property_monte_carlo_pi(samples: int, seed: int, threads: int) -> None:
    hits = ref.monte_carlo_hits_ref(samples, seed)
    assert ref.bits(native.monte_carlo_pi(samples, seed, threads=threads)) == ref.bits(4.0 * hits / samples)


@SETTINGS
@given(
    w=st.integers(0, 40),
    h=st.integers(0, 4),
    it=st.integers(0, 60),
    x0=st.floats(-2.5, 1.0),
    dx=st.floats(1e-9, 3.0),
    y0=st.floats(-1.5, 1.5),
    dy=st.floats(1e-9, 3.0),
    threads=THREADS,
)
def test_property_mandelbrot(
    w: int, h: int, it: int, x0: float, dx: float, y0: float, dy: float, threads: int
) -> None:
    bounds = (x0, x0 + dx, y0, y0 + dy)
    got = native.mandelbrot(w, h, it, bounds, threads=threads)
    assert got.tolist() == ref.mandelbrot_ref(w, h, it, *bounds)


@SETTINGS
@given(
    m=st.integers(0, 6),
    k=st.integers(0, 6),
    n=st.integers(0, 6),
    seed=st.integers(0, 2**32 - 1),
    threads=THREADS,
)
def test_property_matmul(m: int, k: int, n: int, seed: int, threads: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)) * 10.0 ** rng.integers(-5, 5)
    b = rng.standard_normal((k, n))
    got = native.matmul(a, b, threads=threads).tolist()
    want = ref.matmul_ref(a, b)
    assert [[ref.bits(v) for v in r] for r in got] == [[ref.bits(v) for v in r] for r in want]


@SETTINGS
@given(n=st.integers(0, 20000), threads=THREADS)
def test_property_count_primes(n: int, threads: int) -> None:
    assert native.count_primes(n, threads=threads) == ref.count_primes_ref(n)


@SETTINGS
@given(n=st.integers(0, 3_000_000), threads=THREADS)
def test_property_sum_of_squares_range(n: int, threads: int) -> None:
    assert native.sum_of_squares(n, threads=threads) == ref.sum_of_squares_range(n)
