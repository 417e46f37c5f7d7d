"""Every error path of manycore.native: exception type and a message naming the argument.

Also: buffers are held for the whole call (a bytearray cannot be resized under
a running kernel) and released on every exit path.
"""

from __future__ import annotations

import array
import ctypes
import itertools
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from manycore import _kernel_args, _native, native

F64 = np.arange(8, dtype=np.float64)
BIG = np.arange(300_000, dtype=np.float64)  # enough work to run on the pool


# ================================================================ buffer arguments
# (name of the buffer argument, callable taking that argument)
BUFFER_ARGS: list[tuple[str, str, Callable[[Any], object]]] = [
    ("sum", "x", lambda v: native.sum(v)),
    ("sum_of_squares", "x", lambda v: native.sum_of_squares(v)),
    ("dot-x", "x", lambda v: native.dot(v, F64)),
    ("dot-y", "y", lambda v: native.dot(F64, v)),
    ("minmax", "x", lambda v: native.minmax(v)),
    ("histogram-x", "x", lambda v: native.histogram(v, 4, 0.0, 1.0)),
    ("square-x", "x", lambda v: native.square(v)),
]


def _ids(cases: list[tuple[str, str, Callable[[Any], object]]]) -> list[str]:
    return [c[0] for c in cases]


@pytest.mark.parametrize(("case", "arg", "call"), BUFFER_ARGS, ids=_ids(BUFFER_ARGS))
@pytest.mark.parametrize("bad", [[1.0, 2.0], (1, 2), None, "abc", 3.5, {"a": 1}])
def test_non_buffer_is_type_error_naming_the_argument(
    case: str, arg: str, call: Callable[[Any], object], bad: object
) -> None:
    # sum_of_squares also takes an int (the range form), and says so
    either = (
        r" must be an int .* or a buffer of numbers"
        if case == "sum_of_squares"
        else " must support the buffer"
    )
    with pytest.raises(TypeError, match=rf"^{arg}{either}") as ei:
        call(bad)
    assert type(bad).__name__ in str(ei.value)


OUT_ARGS: list[tuple[str, Callable[[Any], object]]] = [
    ("histogram", lambda out: native.histogram(F64, 4, 0.0, 8.0, out=out)),
    ("mandelbrot", lambda out: native.mandelbrot(4, 3, 10, out=out)),
    ("matmul", lambda out: native.matmul(np.ones((2, 3)), np.ones((3, 4)), out=out)),
    ("square", lambda out: native.square(F64, out=out)),
]


@pytest.mark.parametrize(("case", "call"), OUT_ARGS, ids=[c[0] for c in OUT_ARGS])
def test_out_non_buffer(case: str, call: Callable[[Any], object]) -> None:
    with pytest.raises(TypeError, match=r"^out must support the buffer protocol"):
        call([0] * 12)


def test_matmul_inputs_non_buffer() -> None:
    b = np.ones((3, 4))
    with pytest.raises(TypeError, match=r"^a must support the buffer protocol"):
        native.matmul([[1.0, 2.0, 3.0]], b)
    with pytest.raises(TypeError, match=r"^b must support the buffer protocol"):
        native.matmul(np.ones((2, 3)), [[1.0] * 4] * 3)


def test_sum_of_squares_float_scalar_is_not_a_buffer() -> None:
    with pytest.raises(TypeError, match=r"^x must be an int .* or a buffer .*, not float$"):
        native.sum_of_squares(10.0)


@pytest.mark.parametrize(("case", "arg", "call"), BUFFER_ARGS, ids=_ids(BUFFER_ARGS))
@pytest.mark.parametrize("dtype", ["f8", "i4", "u1", "i8"])
def test_non_contiguous_is_value_error(
    case: str, arg: str, call: Callable[[Any], object], dtype: str
) -> None:
    base = np.arange(16, dtype=dtype)
    strided = base[::2]
    if case.startswith("dot"):
        strided = np.arange(16, dtype="f8")[::2]  # same format and length as F64
    with pytest.raises(ValueError, match=rf"^{arg} must be C-contiguous"):
        call(strided)


def test_non_contiguous_outputs_and_matmul_inputs() -> None:
    with pytest.raises(ValueError, match=r"^out must be C-contiguous"):
        native.histogram(F64, 4, 0.0, 8.0, out=np.zeros(8, dtype=np.int64)[::2])
    with pytest.raises(ValueError, match=r"^out must be C-contiguous"):
        native.mandelbrot(4, 3, 10, out=np.zeros((3, 8), dtype=np.uint32)[:, ::2])
    with pytest.raises(ValueError, match=r"^out must be C-contiguous"):
        native.square(F64, out=np.zeros(16)[::2])
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match=r"^a must be C-contiguous"):
        native.matmul(np.asfortranarray(np.arange(12.0).reshape(3, 4)), a)
    with pytest.raises(ValueError, match=r"^b must be C-contiguous"):
        native.matmul(a, np.ones((4, 8))[:, ::2])
    with pytest.raises(ValueError, match=r"^out must be C-contiguous"):
        native.matmul(a, a, out=np.ones((4, 8))[:, ::2])
    with pytest.raises(ValueError, match=r"^a must be C-contiguous"):
        native.matmul(np.ones((8, 4))[::2], a)


BAD_FORMATS = {
    "bool": np.zeros(8, dtype=np.bool_),
    "complex": np.zeros(8, dtype=np.complex128),
    "big-endian f8": np.zeros(8, dtype=">f8"),
    "big-endian i4": np.zeros(8, dtype=">i4"),
    "structured": np.zeros(8, dtype=[("a", "f8"), ("b", "i4")]),
    "float16": np.zeros(8, dtype=np.float16),
    "object": np.zeros(8, dtype=object),
    "char": memoryview(b"abcdefgh").cast("c"),
    "ctypes bool": (ctypes.c_bool * 8)(),
}


@pytest.mark.parametrize(("case", "arg", "call"), BUFFER_ARGS, ids=_ids(BUFFER_ARGS))
@pytest.mark.parametrize("bad", list(BAD_FORMATS), ids=list(BAD_FORMATS))
def test_unsupported_format_is_type_error(
    case: str, arg: str, call: Callable[[Any], object], bad: str
) -> None:
    fmt = memoryview(BAD_FORMATS[bad]).format
    with pytest.raises(TypeError, match=rf"^{arg} has unsupported element format") as ei:
        call(BAD_FORMATS[bad])
    assert repr(fmt) in str(ei.value)


def test_supported_formats_are_listed_in_the_message() -> None:
    with pytest.raises(TypeError, match="supported formats: b B h H i I l L q Q f d"):
        native.sum(np.zeros(3, dtype=np.bool_))


def test_misaligned_buffer_is_value_error() -> None:
    m = memoryview(bytearray(8 * 4 + 1))[1:].cast("d")
    with pytest.raises(ValueError, match=r"^x is not aligned to its item size \(8 bytes\)"):
        native.sum(m)
    with pytest.raises(ValueError, match=r"^y is not aligned"):
        native.dot(np.zeros(4), m)


def test_output_formats() -> None:
    for dt in (np.int32, np.uint64, np.float64, np.int16):
        with pytest.raises(TypeError, match=r"^out has unsupported element format"):
            native.histogram(F64, 4, 0.0, 8.0, out=np.zeros(4, dtype=dt))
    for dt in (np.float32, np.int64, np.uint16, np.uint8):
        with pytest.raises(TypeError, match=r"^out has unsupported element format"):
            native.mandelbrot(4, 3, 10, out=np.zeros((3, 4), dtype=dt))
    with pytest.raises(TypeError, match=r"^out has unsupported element format"):
        native.matmul(np.ones((2, 2)), np.ones((2, 2)), out=np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(TypeError, match=r"^a has unsupported element format"):
        native.matmul(np.ones((2, 2), dtype=np.float32), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"^b has unsupported element format"):
        native.matmul(np.ones((2, 2)), np.ones((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match=r"^x has unsupported element format"):
        native.square(np.zeros(3, dtype=np.bool_))
    with pytest.raises(TypeError, match=r"^out has unsupported element format"):
        native.square(F64, out=np.zeros(8, dtype=np.complex64))


@pytest.mark.parametrize(
    ("x_dtype", "out_dtype"),
    [
        (np.float64, np.float32),
        (np.float64, np.int64),
        (np.float32, np.int32),
        (np.float32, np.uint64),
        (np.int16, np.int32),
        (np.int16, np.float32),
        (np.uint8, np.uint16),
        (np.int64, np.int32),
        (np.uint32, np.int32),
    ],
)
def test_square_disallowed_out_dtype(x_dtype: type, out_dtype: type) -> None:
    # out may be the input's format, float64 or (integer input) int64 / uint64
    with pytest.raises(TypeError):
        native.square(np.ones(5, dtype=x_dtype), out=np.zeros(5, dtype=out_dtype))
    with pytest.raises(TypeError):
        native.square(np.ones(200_000, dtype=x_dtype), out=np.zeros(200_000, dtype=out_dtype))


def test_lengths() -> None:
    with pytest.raises(ValueError, match=r"^y has the wrong length: 7 elements, expected 8"):
        native.dot(F64, np.zeros(7))
    with pytest.raises(ValueError, match=r"^y has the wrong length"):
        native.dot(np.zeros(0), np.zeros(1))
    with pytest.raises(ValueError, match=r"^out has the wrong length: 3 elements, expected 4"):
        native.histogram(F64, 4, 0.0, 8.0, out=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"^out has the wrong length"):
        native.histogram(F64, 4, 0.0, 8.0, out=np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match=r"^out has the wrong length"):
        native.mandelbrot(4, 3, 10, out=np.zeros(11, dtype=np.uint32))
    with pytest.raises(ValueError, match=r"^out has the wrong length"):
        native.square(F64, out=np.zeros(9))
    with pytest.raises(ValueError, match=r"^out has the wrong length"):
        native.matmul(np.ones((2, 3)), np.ones((3, 4)), out=np.zeros((2, 3)))


def test_dot_format_mismatch_is_type_error() -> None:
    for other in (np.zeros(8, dtype=np.float32), np.zeros(8, dtype=np.int64), bytes(8)):
        with pytest.raises(TypeError, match="element formats differ") as ei:
            native.dot(F64, other)
        msg = str(ei.value)
        assert "x is 'd'" in msg
        assert "y is" in msg


def test_matmul_shapes() -> None:
    with pytest.raises(ValueError, match=r"^a has the wrong shape: expected 2 dimensions, got 1"):
        native.matmul(np.ones(4), np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"^b has the wrong shape: expected 2 dimensions, got 3"):
        native.matmul(np.ones((4, 4)), np.ones((4, 4, 1)))
    with pytest.raises(ValueError, match=r"^b has the wrong shape: a is 2x3 and b is 4x2"):
        native.matmul(np.ones((2, 3)), np.ones((4, 2)))


def test_minmax_of_empty_is_value_error() -> None:
    for empty in (np.zeros(0), np.zeros(0, dtype=np.int8), b"", array.array("q")):
        with pytest.raises(ValueError, match="minmax"):
            native.minmax(empty)


def test_output_aliasing_an_input_is_value_error() -> None:
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="out must not share memory"):
        native.matmul(a, a, out=a)
    with pytest.raises(ValueError, match="out must not share memory"):
        native.matmul(np.ones((3, 3)), a, out=a)
    b = np.ones(10)
    with pytest.raises(ValueError, match="out must not share memory"):
        native.square(b[:9], out=b[1:])
    c = np.arange(10.0)
    native.square(c, out=c)  # exactly in place is allowed
    assert c.tolist() == [v * v for v in range(10)]


_A = np.ones((3, 3))
_B = np.ones(10)


@pytest.mark.parametrize(
    ("call", "exc", "arg"),
    [
        (lambda: native.minmax(np.zeros(0)), ValueError, "x"),
        (lambda: native.square(np.ones(5, np.int16), out=np.zeros(5, np.float32)), TypeError, "out"),
        (lambda: native.matmul(_A, _A, out=_A), ValueError, "out"),
        (lambda: native.square(_B[:9], out=_B[1:]), ValueError, "out"),
    ],
    ids=["minmax-empty", "square-out-dtype", "matmul-out-aliases-a", "square-out-overlaps-x"],
)
def test_errors_found_by_the_core_name_the_argument(
    call: Callable[[], object], exc: type[Exception], arg: str
) -> None:
    # README: "Bad input raises TypeError/ValueError/OverflowError naming the argument."
    with pytest.raises(exc, match=rf"\b{arg}\b"):
        call()


@pytest.mark.parametrize(
    ("case", "call"),
    [
        ("histogram-np", lambda: native.histogram(F64, 4, 0.0, 8.0, out=_readonly(np.zeros(4, np.int64)))),
        ("histogram-bytes", lambda: native.histogram(F64, 4, 0.0, 8.0, out=bytes(32))),
        ("mandelbrot-np", lambda: native.mandelbrot(4, 3, 10, out=_readonly(np.zeros((3, 4), np.uint32)))),
        ("mandelbrot-bytes", lambda: native.mandelbrot(2, 2, 10, out=memoryview(bytes(16)).cast("I"))),
        ("matmul", lambda: native.matmul(np.ones((2, 2)), np.ones((2, 2)), out=_readonly(np.zeros((2, 2))))),
        ("square-np", lambda: native.square(F64, out=_readonly(np.zeros(8)))),
        ("square-bytes", lambda: native.square(bytes(8), out=bytes(8))),
    ],
)
def test_read_only_out_is_value_error(case: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^out is read-only"):
        call()


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def test_read_only_inputs_are_fine() -> None:
    x = _readonly(np.arange(10.0))
    assert native.sum(x) == 45.0
    assert native.square(x).tolist() == [v * v for v in range(10)]
    assert native.sum(bytes([1, 2, 3])) == 6


# ================================================================ scalar arguments
@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        (lambda: native.sum_of_squares(-1), ValueError, r"^x must be >= 0, got -1"),
        (lambda: native.sum_of_squares(True), TypeError, r"^x must be an int \(the sum of i\*i .* not bool$"),
        (
            lambda: native.sum_of_squares(3.0),
            TypeError,
            r"^x must be an int .* or a buffer of numbers .* not float$",
        ),
        (lambda: native.count_primes(-1), ValueError, r"^n must be >= 0"),
        (lambda: native.count_primes(10.0), TypeError, r"^n must be an int, not float"),
        (lambda: native.count_primes("10"), TypeError, r"^n must be an int, not str"),
        (lambda: native.monte_carlo_pi(0), ValueError, r"^samples must be >= 1"),
        (lambda: native.monte_carlo_pi(-5), ValueError, r"^samples must be >= 1"),
        (lambda: native.monte_carlo_pi(2**62 + 1), ValueError, r"^samples must be <="),
        (lambda: native.monte_carlo_pi(10, seed=-1), ValueError, r"^seed must be >= 0"),
        (lambda: native.monte_carlo_pi(10, seed=2**64), ValueError, r"^seed must be <="),
        (lambda: native.monte_carlo_pi(10.5), TypeError, r"^samples must be an int"),
        (lambda: native.mandelbrot(-1, 4), ValueError, r"^width must be >= 0"),
        (lambda: native.mandelbrot(4, -1), ValueError, r"^height must be >= 0"),
        (lambda: native.mandelbrot(4, 4, -1), ValueError, r"^max_iter must be >= 0"),
        (lambda: native.mandelbrot(4, 4, 2**32), ValueError, r"^max_iter must be <="),
        (lambda: native.mandelbrot(4.0, 4), TypeError, r"^width must be an int"),
        (lambda: native.mandelbrot(4, 4, 10, (0.0, 1.0, 0.0)), ValueError, r"^bounds must be"),
        (lambda: native.mandelbrot(4, 4, 10, 5), ValueError, r"^bounds must be"),
        (lambda: native.mandelbrot(4, 4, 10, (1.0, 1.0, 0.0, 1.0)), ValueError, r"^xmin must be < xmax"),
        (lambda: native.mandelbrot(4, 4, 10, (0.0, 1.0, 2.0, 1.0)), ValueError, r"^ymin must be < ymax"),
        (lambda: native.mandelbrot(4, 4, 10, (math.nan, 1.0, 0.0, 1.0)), ValueError, r"^xmin must be finite"),
        (lambda: native.mandelbrot(4, 4, 10, (0.0, math.inf, 0.0, 1.0)), ValueError, r"^xmax must be finite"),
        (
            lambda: native.mandelbrot(4, 4, 10, (0.0, 1.0, "a", 1.0)),
            TypeError,
            r"^ymin must be a real number",
        ),
        (lambda: native.start_threads(0), ValueError, r"^n must be >= 1"),
        (lambda: native.start_threads(1025), ValueError, r"^n must be <= 1024"),
        (lambda: native.start_threads("2"), TypeError, r"^n must be an int"),
        (lambda: native.start_threads(2, -1), ValueError, r"^work must be >= 0"),
        (lambda: native.start_threads(2, 2**42 + 1), OverflowError, r"^work must be <="),
        (lambda: native.call_in_threads(print, 0), ValueError, r"^n must be >= 1"),
        (lambda: native.call_in_threads(print, 1025), ValueError, r"^n must be <= 1024"),
        (lambda: native.call_in_threads(42, 2), TypeError, r"^fn must be callable, not int"),
        (lambda: native.call_in_threads(None, 2), TypeError, r"^fn must be callable"),
        (lambda: native.bench_dispatch(0), ValueError, r"^iterations must be >= 1"),
    ],
)
def test_scalar_argument_errors(call: Callable[[], object], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("bins", [0, -1, -(2**70)])
def test_histogram_bins_must_be_positive(bins: int) -> None:
    with pytest.raises(ValueError, match=r"^bins must be >= 1"):
        native.histogram(F64, bins, 0.0, 1.0)


@pytest.mark.parametrize("bins", ["3", 3.0, None, True])
def test_histogram_bins_must_be_int(bins: object) -> None:
    with pytest.raises(TypeError, match=r"^bins must be an int"):
        native.histogram(F64, bins, 0.0, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lo", "hi", "exc", "pattern"),
    [
        (1.0, 1.0, ValueError, r"^lo must be < hi"),
        (2.0, 1.0, ValueError, r"^lo must be < hi"),
        (-0.0, 0.0, ValueError, r"^lo must be < hi"),
        (math.nan, 1.0, ValueError, r"^lo must be finite"),
        (0.0, math.nan, ValueError, r"^hi must be finite"),
        (-math.inf, 1.0, ValueError, r"^lo must be finite"),
        (0.0, math.inf, ValueError, r"^hi must be finite"),
        ("0", 1.0, TypeError, r"^lo must be a real number"),
        (0.0, None, TypeError, r"^hi must be a real number"),
        (False, 1.0, TypeError, r"^lo must be a real number"),
    ],
)
def test_histogram_bounds(lo: object, hi: object, exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        native.histogram(F64, 4, lo, hi)  # type: ignore[arg-type]


# every public entry point that takes threads=
THREADED: list[tuple[str, Callable[..., object]]] = [
    ("sum_of_squares-range", lambda **kw: native.sum_of_squares(10, **kw)),
    ("sum_of_squares-buffer", lambda **kw: native.sum_of_squares(F64, **kw)),
    ("sum", lambda **kw: native.sum(F64, **kw)),
    ("dot", lambda **kw: native.dot(F64, F64, **kw)),
    ("minmax", lambda **kw: native.minmax(F64, **kw)),
    ("histogram", lambda **kw: native.histogram(F64, 4, 0.0, 8.0, **kw)),
    ("count_primes", lambda **kw: native.count_primes(100, **kw)),
    ("monte_carlo_pi", lambda **kw: native.monte_carlo_pi(100, **kw)),
    ("mandelbrot", lambda **kw: native.mandelbrot(4, 4, 10, **kw)),
    ("matmul", lambda **kw: native.matmul(np.ones((2, 2)), np.ones((2, 2)), **kw)),
    ("square", lambda **kw: native.square(F64, **kw)),
    ("parallel_for", lambda **kw: native.parallel_for(_native.noop_address(), 10, **kw)),
    ("bench_dispatch", lambda **kw: native.bench_dispatch(1, **kw)),
]
THREADED_IDS = [c[0] for c in THREADED]


@pytest.mark.parametrize(("case", "call"), THREADED, ids=THREADED_IDS)
@pytest.mark.parametrize("threads", [0, -1, 1025, 10**6])
def test_threads_out_of_range(case: str, call: Callable[..., object], threads: int) -> None:
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024"):
        call(threads=threads)


@pytest.mark.parametrize(("case", "call"), THREADED, ids=THREADED_IDS)
@pytest.mark.parametrize("threads", ["2", 2.0, True, [2]])
def test_threads_wrong_type(case: str, call: Callable[..., object], threads: object) -> None:
    with pytest.raises(TypeError, match=r"^threads must be an int"):
        call(threads=threads)


@pytest.mark.parametrize(("case", "call"), THREADED, ids=THREADED_IDS)
def test_threads_above_explicit_pool(case: str, call: Callable[..., object]) -> None:
    with native.Pool(2) as p:
        with pytest.raises(ValueError, match=r"^threads=3 is more than the pool's 2 threads"):
            call(pool=p, threads=3)
        call(pool=p, threads=2)
        call(pool=p, threads=1)


@pytest.mark.parametrize(("case", "call"), THREADED, ids=THREADED_IDS)
def test_pool_wrong_type(case: str, call: Callable[..., object]) -> None:
    with pytest.raises(TypeError, match=r"^pool must be a manycore.native.Pool or None, not int"):
        call(pool=3)
    with pytest.raises(TypeError, match=r"^pool must be a manycore.native.Pool"):
        call(pool=_native.Pool(2))  # the low-level handle is not a Pool


@pytest.mark.parametrize(("case", "call"), THREADED, ids=THREADED_IDS)
def test_closed_pool_is_runtime_error(case: str, call: Callable[..., object]) -> None:
    p = native.Pool(2)
    p.close()
    for kw in ({}, {"threads": 1}, {"threads": 2}):
        with pytest.raises(RuntimeError, match="closed Pool"):
            call(pool=p, **kw)


def test_closed_pool_large_work_is_runtime_error() -> None:
    p = native.Pool(3)
    p.close()
    with pytest.raises(RuntimeError, match="closed Pool"):
        native.sum(BIG, pool=p)
    with pytest.raises(RuntimeError, match="closed Pool"):
        native.sum_of_squares(10**8, pool=p)


@pytest.mark.parametrize(
    ("threads", "exc"),
    [(0, ValueError), (-1, ValueError), (1025, ValueError), ("2", TypeError), (2.5, TypeError)],
)
def test_pool_constructor_errors(threads: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=r"^threads must"):
        native.Pool(threads)  # type: ignore[arg-type]
    with pytest.raises(exc, match=r"^threads must"):
        native.default_pool(threads)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "exc", "pattern"),
    [
        ({"fn_address": 0}, ValueError, r"^fn_address must be a nonzero function address"),
        ({"fn_address": -8}, ValueError, r"^fn_address must be a nonzero"),
        ({"fn_address": "0x10"}, TypeError, r"^fn_address must be an int"),
        ({"fn_address": None}, TypeError, r"^fn_address must be an int"),
        ({"n": -1}, ValueError, r"^n must be >= 0"),
        ({"n": 2.0}, TypeError, r"^n must be an int"),
        ({"grain": -1}, ValueError, r"^grain must be >= 0"),
        ({"context": -1}, ValueError, r"^context must be >= 0"),
        ({"schedule": "guided"}, ValueError, r"^schedule must be 'static' or 'dynamic', got 'guided'"),
        ({"schedule": None}, ValueError, r"^schedule must be"),
        # the whole message, as the Python face wrote it before the checks moved into C
        ({"fn_address": True}, TypeError, r"^fn_address must be an int, not bool$"),
        ({"fn_address": 1.5}, TypeError, r"^fn_address must be an int, not float$"),
        ({"fn_address": 0}, ValueError, r"^fn_address must be a nonzero function address, got 0$"),
        ({"n": -3}, ValueError, r"^n must be >= 0, got -3$"),
        ({"n": "3"}, TypeError, r"^n must be an int, not str$"),
        ({"n": 2**70}, OverflowError, r"size_t"),
        ({"n": -(2**70)}, ValueError, r"^n must be >= 0, got -1180591620717411303424$"),
        ({"grain": False}, TypeError, r"^grain must be an int, not bool$"),
        ({"context": 2.0}, TypeError, r"^context must be an int, not float$"),
        ({"schedule": 1}, ValueError, r"^schedule must be 'static' or 'dynamic', got 1$"),
        ({"threads": 0}, ValueError, r"^threads must be between 1 and 1024, got 0$"),
        ({"threads": "2"}, TypeError, r"^threads must be an int, not str$"),
        ({"pool": "p"}, TypeError, r"^pool must be a manycore.native.Pool or None, not str$"),
        ({"chunks": 4}, TypeError, r"unexpected keyword argument 'chunks'"),
    ],
)
def test_parallel_for_errors(kw: dict[str, object], exc: type[Exception], pattern: str) -> None:
    args: dict[str, Any] = {"fn_address": _native.noop_address(), "n": 10}
    args.update(kw)
    with pytest.raises(exc, match=pattern):
        native.parallel_for(**args)


def test_parallel_for_takes_what_the_python_face_took() -> None:
    """Anything with __index__ (NumPy integers), context None, keywords in any order, a pool."""
    np = pytest.importorskip("numpy")
    noop = _native.noop_address()
    assert native.parallel_for(noop, np.int64(10), None, np.uint8(2), schedule="dynamic") is None
    assert native.parallel_for(n=10, fn_address=noop, grain=0, threads=1) is None
    with native.Pool(2) as pool:
        assert native.parallel_for(noop, 10, pool=pool, threads=2) is None
        with pytest.raises(ValueError, match=r"^threads=3 is more than the pool's 2 threads$"):
            native.parallel_for(noop, 10, pool=pool, threads=3)
    with pytest.raises(TypeError, match=r"takes from 2 to 4 positional arguments but 5 were given"):
        native.parallel_for(noop, 10, 0, 0, "static")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"missing required argument 'n'"):
        native.parallel_for(noop)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"multiple values for argument 'n'"):
        native.parallel_for(noop, 10, n=3)  # type: ignore[misc]


def test_kernel_faces_in_c_check_their_arguments_as_python_would() -> None:
    """sum, dot and sum_of_squares are C functions: their argument shapes fail as a def's would."""
    x = np.ones(4)
    with pytest.raises(TypeError, match=r"^sum\(\) takes 1 positional argument but 2 were given$"):
        native.sum(x, 2)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^dot\(\) missing required argument 'y'$"):
        native.dot(x)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^sum_of_squares\(\) got an unexpected keyword argument 'n'$"):
        native.sum_of_squares(x, n=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024, got 0$"):
        native.dot(x, x, threads=0)
    with pytest.raises(TypeError, match=r"^pool must be a manycore.native.Pool or None, not int$"):
        native.sum(x, pool=3)  # type: ignore[arg-type]
    assert native.sum(x=x, threads=1) == 4.0
    assert native.dot(y=x, x=x) == 4.0
    assert native.sum_of_squares(np.int16(4)) == 14
    assert native.sum_of_squares(np.array(4)) == 14  # a 0-d array has __index__: the range form
    assert native.sum_of_squares(np.array([4])) == 16  # a 1-d array is a buffer


@pytest.mark.parametrize(
    ("call", "python_check"),
    [
        (lambda v: native.count_primes(v), lambda v: _kernel_args.count_primes_n(v)),
        (lambda v: native.monte_carlo_pi(v), lambda v: _kernel_args.monte_carlo_args(v, 0)),
        (lambda v: native.monte_carlo_pi(10, v), lambda v: _kernel_args.monte_carlo_args(10, v)),
        (lambda v: native.monte_carlo_pi(10, seed=v), lambda v: _kernel_args.monte_carlo_args(10, v)),
    ],
    ids=["count_primes-n", "monte_carlo_pi-samples", "monte_carlo_pi-seed", "monte_carlo_pi-seed-keyword"],
)
def test_scalar_kernel_faces_in_c_fail_exactly_as_the_shared_python_checks(
    call: Callable[[Any], Any], python_check: Callable[[Any], Any]
) -> None:
    """count_primes and monte_carlo_pi check their ints in C; the ffi faces use _kernel_args:
    every value the Python check refuses, the C face refuses with the same exception and the
    whole same message (values both accept are not run: 2**62 samples would take hours)."""
    values = [
        -1,
        0,
        2**48,
        2**48 + 1,
        2**62,
        2**62 + 1,
        2**64 - 1,
        2**64,
        2**70,
        -(2**70),
        True,
        2.0,
        "7",
        None,
    ]
    refused = 0
    for value in values:
        try:
            python_check(value)
            continue
        except (TypeError, ValueError, OverflowError) as exc:
            expected = exc
        with pytest.raises(type(expected)) as info:
            call(value)
        assert str(info.value) == str(expected), value
        refused += 1
    assert refused >= 8


def test_scalar_kernel_faces_in_c_take_what_the_python_faces_took() -> None:
    assert native.count_primes(np.int64(100)) == 25
    assert native.count_primes(n=100, threads=1) == 25
    assert native.monte_carlo_pi(1000, np.uint64(3)) == native.monte_carlo_pi(samples=1000, seed=3, threads=1)
    assert isinstance(native.monte_carlo_pi(10), float)
    lo, hi = native.minmax(x=np.array([3.0, -1.0, 2.0]), threads=1)
    assert (lo, hi) == (-1.0, 3.0)
    with pytest.raises(TypeError, match=r"^count_primes\(\) takes 1 positional argument but 2 were given$"):
        native.count_primes(10, 2)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^monte_carlo_pi\(\) takes from 1 to 2 positional arguments but 3"):
        native.monte_carlo_pi(10, 1, 2)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^minmax\(\) missing required argument 'x'$"):
        native.minmax()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"^threads must be between 1 and 1024, got 0$"):
        native.count_primes(10, threads=0)
    with pytest.raises(TypeError, match=r"^pool must be a manycore.native.Pool or None, not str$"):
        native.minmax(np.ones(3), pool="p")  # type: ignore[arg-type]


def test_count_primes_small_inputs_agree_with_a_plain_sieve() -> None:
    """Inputs up to 2 * 32768 + 1 are sieved in one segment on the caller's stack; just past
    that, the pool's segmented path takes over: both agree with a plain sieve at the edges."""

    def plain(n: int) -> int:
        if n < 3:
            return 0
        sieve = bytearray([1]) * n
        sieve[0] = sieve[1] = 0
        for i in range(2, int(n**0.5) + 1):
            if sieve[i]:
                sieve[i * i :: i] = bytearray(len(range(i * i, n, i)))
        return sum(sieve)

    for n in [*range(0, 300), 65535, 65536, 65537, 65538, 65539, 65540, 131075]:
        expected = plain(n)
        assert native.count_primes(n) == expected, n
        assert native.count_primes(n, threads=1) == expected, n
        assert native.count_primes(n, threads=3) == expected, n


def test_parallel_for_runs_the_function_over_every_index_in_c() -> None:
    """A ctypes callback records its ranges: the C face covers [0, n) exactly once, any schedule."""
    import ctypes

    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)

    def record(ctx: int, begin: int, end: int) -> None:
        with lock:
            seen.append((begin, end))

    fn = proto(record)
    address = ctypes.cast(fn, ctypes.c_void_p).value
    assert address is not None
    for schedule in ("static", "dynamic"):
        seen.clear()
        native.parallel_for(address, 1000, 0, 7, schedule=schedule, threads=2)
        covered = sorted(seen)
        assert covered[0][0] == 0
        assert covered[-1][1] == 1000
        assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
        assert all(end - begin <= 7 for begin, end in covered)


# ================================================================ buffers are held / released
def assert_resizable(ba: bytearray) -> None:
    n = len(ba)
    ba.append(1)  # BufferError if anything still holds an export of ba
    ba.pop()
    assert len(ba) == n


def test_bytearray_is_held_while_the_kernel_runs() -> None:
    """A signal handler runs inside the kernel (the Ctrl-C poll runs signal
    handlers every 20 ms); there, resizing the bytearray under the kernel must
    fail with BufferError.  The handler then raises to cancel the kernel."""

    class Stop(Exception):
        pass

    ba = bytearray(64 * 2**20)
    ba.append(0)  # spare capacity: the handler's append/pop below does not reallocate
    ba.pop()
    observed: list[str] = []

    def handler(signum: int, frame: object) -> None:
        try:
            ba.append(0)
        except BufferError:
            observed.append("held")
            raise Stop from None
        ba.pop()
        observed.append("free")

    main = threading.get_ident()
    done = threading.Event()

    def pester() -> None:
        while not done.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.002)

    old = signal.signal(signal.SIGUSR1, handler)
    sender = threading.Thread(target=pester)
    sender.start()
    stopped = False
    try:
        for _ in range(40):  # each call takes > 100 ms: the first one is normally enough
            try:
                native.histogram(ba, 16, 0.0, 255.0, threads=1)
            except Stop:
                stopped = True
                break
    finally:
        done.set()
        sender.join(timeout=30)
        signal.signal(signal.SIGUSR1, old)
    assert stopped, f"the handler never saw the buffer held during a kernel ({observed[-5:]})"
    assert "held" in observed
    assert len(ba) == 64 * 2**20
    assert_resizable(ba)  # released after the cancelled call


def _closed_pool() -> native.Pool:
    p = native.Pool(2)
    p.close()
    return p


@pytest.mark.parametrize(
    ("case", "call", "exc"),
    [
        ("sum", lambda ba: native.sum(ba), None),
        ("sum-pool", lambda ba: native.sum(ba, threads=2), None),
        ("sum_of_squares", lambda ba: native.sum_of_squares(ba), None),
        ("dot", lambda ba: native.dot(ba, ba), None),
        ("dot-length", lambda ba: native.dot(ba, bytearray(len(ba) - 1)), ValueError),
        ("dot-format", lambda ba: native.dot(ba, memoryview(bytearray(len(ba))).cast("q")), TypeError),
        ("dot-y-not-buffer", lambda ba: native.dot(ba, [1]), TypeError),
        ("minmax", lambda ba: native.minmax(ba), None),
        ("histogram", lambda ba: native.histogram(ba, 4, 0.0, 255.0), None),
        (
            "histogram-out-format",
            lambda ba: native.histogram(ba, 4, 0.0, 255.0, out=bytearray(32)),
            TypeError,
        ),
        (
            "histogram-out-length",
            lambda ba: native.histogram(ba, 4, 0.0, 9.0, out=np.zeros(3, np.int64)),
            ValueError,
        ),
        ("histogram-out-readonly", lambda ba: native.histogram(ba, 4, 0.0, 9.0, out=bytes(32)), ValueError),
        ("square", lambda ba: native.square(ba), None),
        ("square-overflow", lambda ba: native.square(ba, out=bytearray(len(ba))), OverflowError),
        ("square-out-length", lambda ba: native.square(ba, out=np.zeros(3, np.uint64)), ValueError),
        ("square-out-dtype", lambda ba: native.square(ba, out=np.zeros(len(ba), np.float32)), TypeError),
        ("closed-pool", lambda ba: native.sum(ba, pool=_closed_pool()), RuntimeError),
        ("threads-above-pool", lambda ba: native.sum(ba, pool=native.Pool(2), threads=3), ValueError),
    ],
)
@pytest.mark.parametrize("size", [1000, 300_000])
def test_buffers_are_released_on_every_exit(
    case: str, call: Callable[[bytearray], object], exc: type[Exception] | None, size: int
) -> None:
    ba = bytearray(range(256)) * (size // 256 + 1)
    if exc is None:
        call(ba)
    else:
        with pytest.raises(exc):
            call(ba)
    assert_resizable(ba)


def test_output_buffers_released() -> None:
    out = bytearray(4 * 12)
    with pytest.raises(TypeError):  # format "B" is not a 32-bit integer buffer
        native.mandelbrot(4, 3, 10, out=out)
    assert_resizable(out)
    view = memoryview(out).cast("I")
    native.mandelbrot(4, 3, 10, out=view)
    with pytest.raises(ValueError, match="wrong length"):
        native.mandelbrot(5, 3, 10, out=view)
    view.release()  # BufferError if a call still held an export of the view
    assert_resizable(out)
    hist = bytearray(8 * 4)
    hview = memoryview(hist).cast("q")
    native.histogram(F64, 4, 0.0, 8.0, out=hview)
    with pytest.raises(ValueError, match="wrong length"):
        native.histogram(F64, 3, 0.0, 8.0, out=hview)
    hview.release()
    assert_resizable(hist)


# ================================================================ the wording users read (issue 19)
def test_a_fortran_ordered_array_is_called_what_it_is() -> None:
    with pytest.raises(ValueError, match=r"^x must be C-contiguous") as ei:
        native.sum(np.asfortranarray(np.ones((3, 3))))
    assert "a Fortran-ordered array or a strided view" in str(ei.value)
    assert "numpy.ascontiguousarray()" in str(ei.value)


def test_matmul_shapes_say_which_dimensions_disagree() -> None:
    with pytest.raises(ValueError, match=r"^b has the wrong shape: a is 2x3 and b is 2x3; a's columns \(3\) "
                       r"must equal b's rows \(2\)$"):  # fmt: skip
        native.matmul(np.ones((2, 3)), np.ones((2, 3)))


def test_format_errors_say_what_this_argument_takes() -> None:
    with pytest.raises(
        TypeError, match=r"^a has unsupported element format '[lq]'; matmul takes float64 \('d'\) only$"
    ):
        native.matmul(np.ones((2, 2), dtype=np.int64), np.ones((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match=r"^out has unsupported element format 'd'; out must be int64 "):
        native.histogram(np.arange(8.0), 4, 0.0, 8.0, out=np.zeros(4))
    with pytest.raises(
        TypeError, match=r"^out has unsupported element format 'f'; out must be uint32 or int32"
    ):
        native.mandelbrot(4, 3, 10, out=np.zeros((3, 4), dtype=np.float32))


def test_square_in_c_allocates_its_default_output_as_the_python_face_did() -> None:
    """square is a C face: NumPy arrays of the documented format by default (NumPy imported on
    first need, as before), out= of any writable buffer without NumPy at all."""
    import subprocess
    import sys

    code = (
        "import array, sys\n"
        "from manycore import native\n"
        "out = array.array('d', [0.0, 0.0])\n"
        "assert native.square(array.array('d', [3.0, -2.0]), out=out) is out\n"
        "print(list(out), 'numpy' in sys.modules)\n"
        "r = native.square(array.array('h', [3, -200]))\n"
        "print(type(r).__name__, r.dtype, r.tolist(), 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[9.0, 4.0] False", "ndarray int64 [9, 40000] True"]
    for x, dtype in [
        (np.arange(6, dtype=np.uint8).reshape(2, 3), np.uint64),
        (np.ones(3, np.float32), np.float32),
    ]:
        r = native.square(x)
        assert r.dtype == dtype
        assert r.shape == x.shape
        assert r.tolist() == (x.astype(dtype) * x.astype(dtype)).tolist()
    with pytest.raises(TypeError, match=r"^square\(\) takes 1 positional argument but 2 were given$"):
        native.square(np.ones(2), np.ones(2))  # type: ignore[misc]
