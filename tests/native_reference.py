"""Pure-Python references for the kernels of manycore.native.

Each function follows the formula documented in the C sources (csrc/kernels_*.c)
operation by operation, so float results can be compared bit for bit.  Python
floats are IEEE binary64 and Python never fuses a multiply and an add, which
is exactly the arithmetic the kernels promise (-ffp-contract=off).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np

U64 = (1 << 64) - 1

INT_FORMATS = "bBhHiIlLqQ"
FLOAT_FORMATS = "fd"
ALL_FORMATS = INT_FORMATS + FLOAT_FORMATS


# ---------------------------------------------------------------- helpers
def values(x: object) -> list:
    """The elements of a buffer as Python ints / floats (float32 converted exactly)."""
    mv = memoryview(x)  # type: ignore[arg-type]
    if mv.ndim != 1:
        mv = mv.cast("B").cast(mv.format)
    return mv.tolist()


def bits(v: float) -> bytes:
    """The exact bits of a float (distinguishes -0.0 from 0.0 and NaN payloads)."""
    return struct.pack("<d", v)


def same_float(a: float, b: float) -> bool:
    """Bit-identical, or both NaN (NaN payloads are not part of the contract)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return bits(a) == bits(b)


def int_limits(fmt: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(fmt))
    return int(info.min), int(info.max)


# ---------------------------------------------------------------- sum of squares of range(n)
def sum_of_squares_range(n: int) -> int:
    """sum(i*i for i in range(n)), closed form."""
    return (n - 1) * n * (2 * n - 1) // 6 if n > 0 else 0


# ---------------------------------------------------------------- float reductions
FBLOCK_MIN = 4096
FBLOCK_MAX_COUNT = 65536


def fblock_size(n: int) -> int:
    b = FBLOCK_MIN
    while (n - 1) // b + 1 > FBLOCK_MAX_COUNT:
        b <<= 1
    return b


def _fold16(acc: list[float]) -> float:
    acc = list(acc)
    w = 8
    while w > 0:
        for lane in range(w):
            acc[lane] += acc[lane + w]
        w >>= 1
    return acc[0]


def _pairwise(p: Sequence[float]) -> float:
    if len(p) == 1:
        return p[0]
    h = len(p) // 2
    return _pairwise(p[:h]) + _pairwise(p[h:])


def float_reduce(terms: Sequence[float]) -> float:
    """The kernels' float summation of already-formed terms (x, x*x or x*y in double).

    Blocks of fblock_size(n) terms; term j of a block goes to lane j % 16,
    lanes are folded 8/4/2/1, block partials are combined pairwise in order.
    """
    n = len(terms)
    if n == 0:
        return 0.0
    block = fblock_size(n)
    partials = []
    for start in range(0, n, block):
        acc = [0.0] * 16
        for j, t in enumerate(terms[start : start + block]):
            acc[j & 15] += t
        partials.append(_fold16(acc))
    return _pairwise(partials)


def fsum_ref(xs: Sequence[float]) -> float:
    return float_reduce([float(v) for v in xs])


def fsumsq_ref(xs: Sequence[float]) -> float:
    return float_reduce([float(v) * float(v) for v in xs])


def fdot_ref(xs: Sequence[float], ys: Sequence[float]) -> float:
    return float_reduce([float(a) * float(b) for a, b in zip(xs, ys, strict=True)])


# ---------------------------------------------------------------- exact integer reductions
def isum_ref(xs: Sequence[int]) -> int:
    return sum(xs)


def isumsq_ref(xs: Sequence[int]) -> int:
    return sum(v * v for v in xs)


def idot_ref(xs: Sequence[int], ys: Sequence[int]) -> int:
    return sum(a * b for a, b in zip(xs, ys, strict=True))


def reduce_ref(op: str, fmt: str, xs: Sequence, ys: Sequence | None = None):
    if fmt in FLOAT_FORMATS:
        if op == "sum":
            return fsum_ref(xs)
        if op == "sum_of_squares":
            return fsumsq_ref(xs)
        return fdot_ref(xs, ys or [])
    if op == "sum":
        return isum_ref(xs)
    if op == "sum_of_squares":
        return isumsq_ref(xs)
    return idot_ref(xs, ys or [])


# ---------------------------------------------------------------- minmax
def minmax_ref(xs: Sequence) -> tuple:
    """(min, max); for floats any NaN makes both NaN, and -0.0 < +0.0."""
    if not xs:
        raise ValueError("empty")
    if isinstance(xs[0], int):
        return min(xs), max(xs)
    if any(math.isnan(v) for v in xs):
        return math.nan, math.nan

    def key(v: float) -> tuple[float, int]:
        return (v, 1 if math.copysign(1.0, v) > 0 else 0)

    return min(xs, key=key), max(xs, key=key)


# ---------------------------------------------------------------- histogram
def histogram_ref(xs: Sequence, bins: int, lo: float, hi: float) -> list[int]:
    """Counts with the kernel's exact bin formula (csrc/kernels_reduce.c).

    t = ((v*S - lo*S) * bins) / (hi*S - lo*S), idx = min(floor(t), bins - 1),
    S = 1 unless (hi - lo) * bins overflows (then the largest 2**-e that fits).
    v outside [lo, hi] and NaN are skipped.
    """
    binsd = float(bins)
    s = 1.0
    while not math.isfinite((hi * s - lo * s) * binsd):
        s *= 0.5
    los = lo * s
    ranges = hi * s - lo * s
    counts = [0] * bins
    for x in xs:
        v = float(x)  # the C conversion (double)x: round to nearest, like Python
        if not (v >= lo and v <= hi):
            continue
        t = ((v * s - los) * binsd) / ranges
        idx = bins - 1 if t >= binsd else int(t)
        idx = min(idx, bins - 1)
        counts[idx] += 1
    return counts


# ---------------------------------------------------------------- count_primes
def count_primes_ref(n: int) -> int:
    """Number of primes p < n (plain sieve of Eratosthenes)."""
    if n <= 2:
        return 0
    sieve = bytearray([1]) * n
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(n - 1) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, n, p)))
    return sum(sieve)


# ---------------------------------------------------------------- monte_carlo_pi
SM_GAMMA = 0x9E3779B97F4A7C15
SM_M1 = 0xBF58476D1CE4E5B9
SM_M2 = 0x94D049BB133111EB


def splitmix_point(seed: int, i: int) -> tuple[int, int]:
    z = (seed + (i + 1) * SM_GAMMA) & U64
    z = ((z ^ (z >> 30)) * SM_M1) & U64
    z = ((z ^ (z >> 27)) * SM_M2) & U64
    z ^= z >> 31
    return z >> 32, z & 0xFFFFFFFF


def monte_carlo_hits_ref(samples: int, seed: int) -> int:
    hits = 0
    limit = 1 << 64
    for i in range(samples):
        x, y = splitmix_point(seed, i)
        if x * x + y * y < limit:
            hits += 1
    return hits


# ---------------------------------------------------------------- mandelbrot
def mandelbrot_ref(
    width: int, height: int, max_iter: int, xmin: float, xmax: float, ymin: float, ymax: float
) -> list[list[int]]:
    """Escape counts, operation for operation as documented in kernels_compute.c."""
    out = []
    for row in range(height):
        ci = ymin + ((float(row) + 0.5) * (ymax - ymin)) / float(height)
        line = []
        for col in range(width):
            cr = xmin + ((float(col) + 0.5) * (xmax - xmin)) / float(width)
            zr = zi = 0.0
            it = 0
            while it < max_iter:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = (2.0 * zr) * zi + ci
                zr = (zr2 - zi2) + cr
                it += 1
            line.append(it)
        out.append(line)
    return out


# ---------------------------------------------------------------- matmul
def matmul_ref(a: np.ndarray, b: np.ndarray) -> list[list[float]]:
    """The naive triple loop: c[i][j] = sum over kk in increasing order from 0.0."""
    m, k = a.shape
    n = b.shape[1]
    a = a.tolist()
    b = b.tolist()
    c = []
    for i in range(m):
        row = []
        for j in range(n):
            acc = 0.0
            for kk in range(k):
                acc += a[i][kk] * b[kk][j]
            row.append(acc)
        c.append(row)
    return c
