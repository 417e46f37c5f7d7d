# Body of manycore._cy.kernels (compiled with OpenMP when the compiler has it)
# and manycore._cy.kernels_serial (always compiled without): one source, two
# builds.  Without OpenMP, Cython's prange compiles to a plain serial loop and
# the results are the same.
#
# Written the way the unit teaches (typed variables, typed memoryviews,
# prange/nogil), with the corrections the unit needs:
#   - sum_of_squares is exact: the seed's `cdef long long total` wraps past
#     2**63 already at N = 10**7;
#   - the prange loops have a fixed partition or exact (integer) reductions,
#     so results do not depend on the thread count;
#   - an error found inside a prange body raises a Python exception (`with
#     gil: raise ...`), which Cython re-raises after the parallel loop.

from cython.parallel import prange, threadid
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

import operator


import numpy as np

from manycore import _errors
from manycore._cpus import available_cpus
from manycore._validate import check_int, check_range, check_threads

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MC_CY_OPENMP 1
    #else
    #define MC_CY_OPENMP 0
    #endif
    """
    const int MC_CY_OPENMP

OPENMP = bool(MC_CY_OPENMP)
"""True when this module was compiled with OpenMP (its prange loops run in parallel)."""

SUM_OF_SQUARES_MAX_N = 2**42
cdef enum:
    BLOCK_SHIFT = 16           # same blocks as the core's mc_sum_of_squares_range
    BLOCK = 65536
    GRAIN_BLOCKS = 16
cdef uint64_t M32 = 0xFFFFFFFF
cdef uint64_t M15 = 0x7FFF
cdef int64_t I64_SQRT_MAX = 3037000499       # largest |v| with v*v <= INT64_MAX
cdef uint64_t U64_SQRT_MAX = 0xFFFFFFFF      # largest v with v*v <= UINT64_MAX


cdef struct block_sums:
    uint64_t s1
    uint64_t s2


# ---------------------------------------------------------------- threads
def noop():
    """Do nothing: what calling a compiled Cython function from Python costs (manycore bench)."""


def default_threads():
    """CPUs this process may run on (affinity-aware), at least 1."""
    return available_cpus()


def resolve_threads(threads=None):
    """The one place the thread count of every prange loop here comes from.

    ``threads=None``: one per available CPU; an int: that many (1..1024), the
    same convention as ``manycore.native``.  The value becomes OpenMP's
    ``num_threads`` for the loop (so ``OMP_NUM_THREADS`` does not apply);
    without OpenMP every loop runs serially whatever it is.
    """
    return default_threads() if threads is None else check_threads(threads)


def threads_used(threads=None):
    """Threads a prange loop here actually uses for ``threads`` (1 without OpenMP)."""
    return resolve_threads(threads) if MC_CY_OPENMP else 1


def team_size(threads=None):
    """How many distinct threads a ``prange`` loop with ``threads`` really ran on."""
    cdef int nt = resolve_threads(threads)
    cdef Py_ssize_t n = 64 * nt, i
    seen = np.zeros(n, dtype=np.int32)
    cdef int[::1] s = seen
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        s[i] = threadid()
    return len(set(seen.tolist()))


# ---------------------------------------------------------------- sum of squares
cdef inline block_sums _block_sums(uint64_t cnt) noexcept nogil:
    # s1 = sum j, s2 = sum j*j for j < cnt <= 2**16: every term is really added.
    cdef block_sums r
    cdef uint64_t j
    r.s1 = 0
    r.s2 = 0
    for j in range(cnt):
        r.s1 = r.s1 + j
        r.s2 = r.s2 + j * j
    return r


def sum_of_squares(x, *, threads=None):
    """``sum(i*i for i in range(x))``, exact for every ``x`` up to 2**42, with ``prange``.

    The int form of :func:`manycore.native.sum_of_squares` (same argument name,
    same errors).

    Same block scheme as the C core: blocks of 2**16 indices, 16 blocks per
    dynamic chunk.  Block ``B`` (``b = B * 2**16``, ``cnt`` indices) adds
    ``cnt*b*b + 2*b*s1 + s2`` with ``s1``, ``s2`` its 64-bit sums of ``j`` and
    ``j*j``.  That value needs up to 101 bits, so it is split into 32-bit
    limbs, and three ``uint64`` reduction variables sum the limbs: each limb
    is below 2**37 and there are at most 2**26 blocks, so no sum can wrap.
    OpenMP's reduction adds integers, so the result is exact and independent
    of the thread count.
    """
    if isinstance(x, bool):
        raise TypeError("x must be an int, not bool")
    cdef uint64_t N = check_int(x, "x", minimum=0, maximum=SUM_OF_SQUARES_MAX_N, too_big=OverflowError)
    return _sum_of_squares_blocks(N, 0, resolve_threads(threads))


def sum_of_squares_tail(n, start, *, threads=None):
    """``sum(i*i for i in range(start, n))`` for ``start`` a multiple of 2**16 (same blocks).

    Runs the blocks of :func:`sum_of_squares` from ``start // 2**16`` on: a
    test can check the limb arithmetic on the largest block indices (near
    2**26) without summing 2**42 squares.
    """
    cdef uint64_t N = check_int(n, "n", minimum=0, maximum=SUM_OF_SQUARES_MAX_N, too_big=OverflowError)
    cdef uint64_t first = check_int(start, "start", minimum=0, maximum=N)
    if first % BLOCK:
        raise ValueError(f"start must be a multiple of {BLOCK}, got {first}")
    return _sum_of_squares_blocks(N, <Py_ssize_t>(first >> BLOCK_SHIFT), resolve_threads(threads))


cdef object _sum_of_squares_blocks(uint64_t N, Py_ssize_t first_block, int nt):
    cdef Py_ssize_t nblocks = <Py_ssize_t>((N + BLOCK - 1) >> BLOCK_SHIFT)
    cdef Py_ssize_t blk
    cdef uint64_t l0 = 0, l1 = 0, l2 = 0
    cdef uint64_t B, cnt, s1, s2, P, X, Y, Q, Qb
    cdef block_sums bs
    for blk in prange(first_block, nblocks, nogil=True, schedule="dynamic", chunksize=GRAIN_BLOCKS,
                      num_threads=nt):
        B = <uint64_t>blk
        cnt = N - (B << BLOCK_SHIFT)
        if cnt > BLOCK:
            cnt = BLOCK
        bs = _block_sums(cnt)
        s1 = bs.s1
        s2 = bs.s2
        # value = cnt*B*B*2**32 + s1*B*2**17 + s2
        P = B * B                      # < 2**52
        X = cnt * (P & M32)            # < 2**48, weight 2**32
        Y = cnt * (P >> 32)            # < 2**36, weight 2**64
        Q = s1 * B                     # < 2**58, weight 2**17
        Qb = Q >> 15                   # < 2**43, weight 2**32
        l0 += (s2 & M32) + ((Q & M15) << 17)
        l1 += (s2 >> 32) + (X & M32) + (Qb & M32)
        l2 += (X >> 32) + Y + (Qb >> 32)
    return <object>l0 + (<object>l1 << 32) + (<object>l2 << 64)


def seed_sum_of_squares(long long n):
    """The unit's ``sum_of_squares_cython`` ("Evaluating the Effectiveness of Cython"), callable.

    As in the seed: one thread, ``long long`` total.  The seed declares it
    ``cdef`` (so ``from sum_of_squares import sum_of_squares_cython`` fails)
    and its total overflows ``long long`` from ``n = 3_037_000_500`` squares
    on -- already at the seed's own ``N = 10**7`` (the true sum is about
    3.3e20 > 2**63).  Signed overflow is undefined in C; here the sum is done
    in ``unsigned long long`` and returned as the ``long long`` it wraps to, so
    the wrong answer the seed would print is reproduced without undefined
    behaviour.
    """
    cdef unsigned long long total = 0
    cdef unsigned long long i
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    with nogil:
        for i in range(<unsigned long long>n):
            total += i * i
    return <long long>total


def compute_sum(n=1_000_000, *, threads=None):
    """The unit's ``example.pyx``: ``total += i * 0.5`` over ``prange(n)``.

    A float reduction: OpenMP adds the per-thread partials in an unspecified
    order, which in general makes the result depend on the thread count.  Here
    every partial is a multiple of 0.5 below 2**53, so each addition is exact
    and the result is ``n*(n-1)/4`` whatever the order (up to n ~ 1.3e8).
    """
    cdef Py_ssize_t count = check_int(n, "n", minimum=0, maximum=2**31 - 1)
    cdef int nt = resolve_threads(threads)
    cdef Py_ssize_t i
    cdef double total = 0
    for i in prange(count, nogil=True, num_threads=nt):
        total += i * 0.5
    return total


# ---------------------------------------------------------------- fast_square
ctypedef fused signed_t:
    int8_t
    int16_t
    int32_t
    int64_t

ctypedef fused unsigned_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

ctypedef fused float_t:
    float
    double


cdef object _overflow():
    return _errors.status_exception(_errors.EOVERFLOW, "square")


cdef int _square_signed(const signed_t[::1] x, int64_t[::1] out, int nt) except -1:
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int64_t v
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        v = x[i]
        if signed_t is int64_t:
            if v > I64_SQRT_MAX or v < -I64_SQRT_MAX:
                # An exception inside a prange body: raised with the GIL,
                # Cython stops handing out iterations and re-raises it after
                # the loop.
                with gil:
                    raise _overflow()
        out[i] = v * v
    return 0


cdef int _square_unsigned(const unsigned_t[::1] x, uint64_t[::1] out, int nt) except -1:
    cdef Py_ssize_t i, n = x.shape[0]
    cdef uint64_t v
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        v = x[i]
        if unsigned_t is uint64_t:
            if v > U64_SQRT_MAX:
                with gil:
                    raise _overflow()
        out[i] = v * v
    return 0


cdef int _square_float(const float_t[::1] x, float_t[::1] out, int nt) except -1:
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        out[i] = x[i] * x[i]
    return 0


_CANONICAL = {"b": "b", "h": "h", "i": "i", "q": "q", "B": "B", "H": "H", "I": "I", "Q": "Q", "f": "f", "d": "d"}


def fast_square(x, *, threads=None):
    """The unit's ``fast_square``, for one int or elementwise over a buffer.

    ``fast_square(10) == 100``: an int that fits a C ``int`` (else
    ``OverflowError``), squared exactly in 64 bits (the seed's ``int * int``
    overflows from 46341 on).

    For a C-contiguous buffer of format ``b B h H i I l L q Q f d``: a new
    NumPy array of ``x * x`` -- int64 for signed, uint64 for unsigned integer
    input, the same float type for float input, exactly what
    ``manycore.native.square(x)`` returns -- computed over a typed memoryview
    in a ``prange`` loop without the GIL.  A square that does not fit raises
    ``OverflowError`` from inside the loop.
    """
    try:
        v = operator.index(x)
    except TypeError:
        pass
    else:
        return _fast_square_int(v)
    cdef int nt = resolve_threads(threads)
    view = memoryview(x)
    if not view.c_contiguous:
        _errors.raise_argument(_errors.ARG_NOT_CONTIGUOUS, "x", None)
    fmt = view.format[1:] if view.format[:1] in "@=<" and len(view.format) == 2 else view.format
    if fmt in ("l", "L"):
        fmt = {("l", 8): "q", ("l", 4): "i", ("L", 8): "Q", ("L", 4): "I"}[(fmt, view.itemsize)]
    if fmt not in _CANONICAL:
        _errors.raise_argument(_errors.ARG_FORMAT, "x", _errors.format_detail(view.format))
    flat = view.cast("B").cast(fmt)
    if fmt in "bhiq":
        out = np.empty(view.shape, dtype=np.int64)
        if fmt == "b":
            _square_signed[int8_t](flat, out.reshape(-1), nt)
        elif fmt == "h":
            _square_signed[int16_t](flat, out.reshape(-1), nt)
        elif fmt == "i":
            _square_signed[int32_t](flat, out.reshape(-1), nt)
        else:
            _square_signed[int64_t](flat, out.reshape(-1), nt)
    elif fmt in "BHIQ":
        out = np.empty(view.shape, dtype=np.uint64)
        if fmt == "B":
            _square_unsigned[uint8_t](flat, out.reshape(-1), nt)
        elif fmt == "H":
            _square_unsigned[uint16_t](flat, out.reshape(-1), nt)
        elif fmt == "I":
            _square_unsigned[uint32_t](flat, out.reshape(-1), nt)
        else:
            _square_unsigned[uint64_t](flat, out.reshape(-1), nt)
    elif fmt == "f":
        out = np.empty(view.shape, dtype=np.float32)
        _square_float[float](flat, out.reshape(-1), nt)
    else:
        out = np.empty(view.shape, dtype=np.float64)
        _square_float[double](flat, out.reshape(-1), nt)
    return out


def _fast_square_int(int x):
    return <long long>x * x


# ---------------------------------------------------------------- mandelbrot
def mandelbrot(width, height, max_iter=256, bounds=(-2.0, 1.0, -1.5, 1.5), *, threads=None):
    """Escape-time Mandelbrot with ``prange`` over rows; bit-identical to ``manycore.native.mandelbrot``.

    Per pixel, in IEEE double and in exactly the core's order (no FMA: built
    with ``-ffp-contract=off`` like the core)::

        cr = xmin + ((col + 0.5) * (xmax - xmin)) / width
        ci = ymin + ((row + 0.5) * (ymax - ymin)) / height
        zr = zi = 0; it = 0
        while it < max_iter:
            zr2 = zr*zr; zi2 = zi*zi
            if zr2 + zi2 > 4: break
            zi = (2*zr)*zi + ci; zr = (zr2 - zi2) + cr; it += 1

    The core runs 2-8 pixels in SIMD lanes; every lane does this scalar
    sequence, so the counts agree bit for bit.  Returns a ``(height, width)``
    uint32 array.
    """
    cdef Py_ssize_t w = check_int(width, "width", minimum=0)
    cdef Py_ssize_t h = check_int(height, "height", minimum=0)
    cdef uint32_t it_max = check_int(max_iter, "max_iter", minimum=0, maximum=2**32 - 1)
    try:
        bx0, bx1, by0, by1 = bounds
    except (TypeError, ValueError):
        raise ValueError("bounds must be (xmin, xmax, ymin, ymax)") from None
    x0, x1 = check_range(bx0, bx1, "xmin", "xmax")
    y0, y1 = check_range(by0, by1, "ymin", "ymax")
    cdef int nt = resolve_threads(threads)
    out = np.empty((h, w), dtype=np.uint32)
    cdef uint32_t[::1] o = out.reshape(-1)
    cdef double xmin = x0, dx = x1 - x0, wd = <double>w
    cdef double ymin = y0, dy = y1 - y0, hd = <double>h
    cdef Py_ssize_t row, col
    cdef double ci, cr, zr, zi, zr2, zi2
    cdef uint32_t it
    for row in prange(h, nogil=True, schedule="dynamic", num_threads=nt):
        ci = ymin + ((<double>row + 0.5) * dy) / hd
        for col in range(w):
            cr = xmin + ((<double>col + 0.5) * dx) / wd
            zr = 0.0
            zi = 0.0
            it = 0
            while it < it_max:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = (2.0 * zr) * zi + ci
                zr = (zr2 - zi2) + cr
                it = it + 1
            o[row * w + col] = it
    return out
