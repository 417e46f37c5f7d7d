"""Argument handling that every Python face of the kernels shares.

``manycore.native`` (the extension) and ``manycore.ffi`` (ctypes, cffi,
Cython) check and normalise the scalar arguments, and allocate default
outputs, in exactly the same way; the buffer checks then happen in C
(``mc_check_args``, reached by every face).  NumPy is imported only to
allocate a default output array: the kernels themselves take any buffer, so
``manycore.native`` imports and runs where NumPy cannot be loaded (in a
subinterpreter, for one).
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence
from typing import Any

from . import _errors
from ._extras import require
from ._validate import buffer_view, check_int, check_range, format_char

# The kernels' input limits, as in csrc/manycore.h (a test checks they agree
# with the extension's and the header's).
SUM_OF_SQUARES_MAX_N = 2**42
COUNT_PRIMES_MAX_N = 2**48

#: Default output format of ``square`` per input format: integers widen to 64 bits.
SQUARE_OUT = {c: ("q" if c in "bhilq" else "Q") for c in "bBhHiIlLqQ"} | {"f": "f", "d": "d"}


def _empty(shape: int | tuple[int, ...], dtype: str) -> Any:
    """A new NumPy array (NumPy imported here, on first need)."""
    numpy = sys.modules.get("numpy")  # loaded: skip the import machinery (0.6 us of a 1 us call)
    if numpy is None:
        numpy = require(
            "numpy", extra="numpy", feature="a default output array (or pass out=, any writable buffer)"
        )
    return numpy.empty(shape, dtype=dtype)


_SUM_OF_SQUARES_TYPE = (
    "x must be an int (the sum of i*i for i in range(x)) or a buffer of numbers (bytes, bytearray, "
    "array.array, memoryview, numpy.ndarray), not {}"
)


def sum_of_squares_x(x: Any) -> int | None:
    """``sum_of_squares(x)``: the checked ``n`` of the range form, or ``None`` for a buffer."""
    if isinstance(x, bool):
        raise TypeError(_SUM_OF_SQUARES_TYPE.format("bool"))
    try:
        n = operator.index(x)  # ints, NumPy integer scalars; never arrays of ndim >= 1
    except TypeError:
        try:
            memoryview(x).release()
        except TypeError:
            raise TypeError(_SUM_OF_SQUARES_TYPE.format(type(x).__name__)) from None
        return None
    return check_int(n, "x", minimum=0, maximum=SUM_OF_SQUARES_MAX_N, too_big=OverflowError)


def count_primes_n(n: Any) -> int:
    return check_int(n, "n", minimum=0, maximum=COUNT_PRIMES_MAX_N)


def monte_carlo_args(samples: Any, seed: Any) -> tuple[int, int]:
    s = check_int(samples, "samples", minimum=1, maximum=2**62)
    return s, check_int(seed, "seed", minimum=0, maximum=2**64 - 1)


def histogram_args(bins: Any, lo: Any, hi: Any) -> tuple[int, float, float]:
    nbins = check_int(bins, "bins", minimum=1)
    a, b = check_range(lo, hi)
    return nbins, a, b


def histogram_out(nbins: int, out: Any) -> Any:
    return _empty(nbins, "int64") if out is None else out


def mandelbrot_args(
    width: Any, height: Any, max_iter: Any, bounds: Sequence[float]
) -> tuple[int, int, int, tuple[float, float, float, float]]:
    w = check_int(width, "width", minimum=0)
    h = check_int(height, "height", minimum=0)
    it = check_int(max_iter, "max_iter", minimum=0, maximum=2**32 - 1)
    try:
        xmin, xmax, ymin, ymax = bounds
    except (TypeError, ValueError):
        raise ValueError("bounds must be (xmin, xmax, ymin, ymax)") from None
    x0, x1 = check_range(xmin, xmax, "xmin", "xmax")
    y0, y1 = check_range(ymin, ymax, "ymin", "ymax")
    return w, h, it, (x0, x1, y0, y1)


def mandelbrot_out(width: int, height: int, out: Any) -> Any:
    return _empty((height, width), "uint32") if out is None else out


def matmul_shape(a: Any, b: Any) -> tuple[int, int, int]:
    """``(m, k, n)`` of ``a @ b`` for two 2-D buffers, or the error naming the bad one."""
    va, vb = buffer_view(a, "a"), buffer_view(b, "b")
    for name, v in (("a", va), ("b", vb)):
        if v.ndim != 2:
            _errors.raise_argument(_errors.ARG_NDIM, name, f"expected 2 dimensions, got {v.ndim}")
    m, k = va.shape  # type: ignore[misc]
    k2, n = vb.shape  # type: ignore[misc]
    if k != k2:
        _errors.raise_argument(
            _errors.ARG_NDIM,
            "b",
            f"a is {m}x{k} and b is {k2}x{n}; a's columns ({k}) must equal b's rows ({k2})",
        )
    return m, k, n


def matmul_out(m: int, n: int, out: Any) -> Any:
    return _empty((m, n), "float64") if out is None else out


def square_out(x: Any, out: Any) -> Any:
    if out is not None:
        return out
    view = buffer_view(x, "x")
    return _empty(tuple(view.shape or ()), SQUARE_OUT[format_char(view, "x")])
