"""Bad input raises the same exception type with the same message through every binding.

manycore.native checks arguments partly in C (_native.c); ctypes_core,
cffi_core and the Cython binding share a Python port of those checks
(manycore/ffi/_face.py) and the one status -> exception table
(manycore/_errors.py).  Each case below is run through all four bindings and
the outcomes compared verbatim.
"""

from __future__ import annotations

import array
import ctypes
import decimal
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ffi_support import BINDINGS, FFI_BINDINGS, outcome

F64 = np.arange(8, dtype=np.float64)
BIG = np.arange(300_000, dtype=np.float64)


def _readonly(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    a.flags.writeable = False
    return a


_MISALIGNED = memoryview(bytearray(8 * 4 + 1))[1:].cast("d")
_A = np.ones((3, 3))
_B = np.ones(10)

Case = Callable[[ModuleType], object]

CASES: dict[str, Case] = {
    # ---- not a buffer (the type name is tp_name, as the C extension prints it)
    "sum-list": lambda m: m.sum([1.0, 2.0]),
    "sum-none": lambda m: m.sum(None),
    "sum-str": lambda m: m.sum("abc"),
    "sum-decimal": lambda m: m.sum(decimal.Decimal(1)),
    "sum_of_squares-float": lambda m: m.sum_of_squares(10.0),
    "sum_of_squares-bool": lambda m: m.sum_of_squares(True),
    "dot-x": lambda m: m.dot((1, 2), F64),
    "dot-y": lambda m: m.dot(F64, {"a": 1}),
    "minmax-none": lambda m: m.minmax(None),
    "histogram-x": lambda m: m.histogram(3.5, 4, 0.0, 1.0),
    "square-x": lambda m: m.square([1, 2]),
    "histogram-out": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=[0] * 4),
    "mandelbrot-out": lambda m: m.mandelbrot(4, 3, 10, out=[0] * 12),
    "matmul-a": lambda m: m.matmul([[1.0, 2.0, 3.0]], np.ones((3, 4))),
    "matmul-out": lambda m: m.matmul(np.ones((2, 3)), np.ones((3, 4)), out=[0] * 8),
    "square-out": lambda m: m.square(F64, out=[0] * 8),
    # ---- strided, formats, alignment, read-only
    "sum-strided": lambda m: m.sum(np.arange(16.0)[::2]),
    "dot-strided-y": lambda m: m.dot(F64, np.arange(16.0)[::2]),
    # every buffer is obtained before the rules run: a later argument that is no buffer comes first
    "dot-strided-x-list-y": lambda m: m.dot(np.arange(16.0)[::2], [1.0]),
    "matmul-int64": lambda m: m.matmul(np.ones((2, 3), np.int64), np.ones((3, 2))),
    "square-out-readonly": lambda m: m.square(F64, out=_readonly(np.zeros(8))),
    "histogram-out-strided": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=np.zeros(8, dtype=np.int64)[::2]),
    "mandelbrot-out-strided": lambda m: m.mandelbrot(4, 3, 10, out=np.zeros((3, 8), dtype=np.uint32)[:, ::2]),
    "matmul-fortran": lambda m: m.matmul(np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.ones((4, 4))),
    "sum-bool": lambda m: m.sum(np.zeros(8, dtype=np.bool_)),
    "sum-complex": lambda m: m.sum(np.zeros(8, dtype=np.complex128)),
    "sum-big-endian": lambda m: m.sum(np.zeros(8, dtype=">f8")),
    "sum-structured": lambda m: m.sum(np.zeros(8, dtype=[("a", "f8"), ("b", "i4")])),
    "sum-float16": lambda m: m.sum(np.zeros(8, dtype=np.float16)),
    "sum-char": lambda m: m.sum(memoryview(b"abcdefgh").cast("c")),
    "sum-ctypes-bool": lambda m: m.sum((ctypes.c_bool * 8)()),
    "square-bool": lambda m: m.square(np.zeros(3, dtype=np.bool_)),
    "sum-misaligned": lambda m: m.sum(_MISALIGNED),
    "dot-misaligned-y": lambda m: m.dot(np.zeros(4), _MISALIGNED),
    "histogram-out-int32": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=np.zeros(4, dtype=np.int32)),
    "mandelbrot-out-float": lambda m: m.mandelbrot(4, 3, 10, out=np.zeros((3, 4), dtype=np.float32)),
    "matmul-out-f32": lambda m: m.matmul(np.ones((2, 2)), np.ones((2, 2)), out=np.zeros((2, 2), np.float32)),
    "matmul-b-int": lambda m: m.matmul(np.ones((2, 2)), np.ones((2, 2), dtype=np.int64)),
    "square-out-complex": lambda m: m.square(F64, out=np.zeros(8, dtype=np.complex64)),
    "square-out-f32-for-f64": lambda m: m.square(F64, out=np.zeros(8, dtype=np.float32)),
    "square-out-i32-for-i16": lambda m: m.square(np.ones(5, np.int16), out=np.zeros(5, np.int32)),
    "square-out-big": lambda m: m.square(np.ones(200_000, np.uint8), out=np.zeros(200_000, np.uint16)),
    "histogram-out-readonly": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=_readonly(np.zeros(4, np.int64))),
    "histogram-out-bytes": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=bytes(32)),
    "mandelbrot-out-bytes": lambda m: m.mandelbrot(2, 2, 10, out=memoryview(bytes(16)).cast("I")),
    "square-out-bytes": lambda m: m.square(bytes(8), out=bytes(8)),
    # ---- lengths, shapes, aliasing
    "dot-length": lambda m: m.dot(F64, np.zeros(7)),
    "dot-empty-length": lambda m: m.dot(np.zeros(0), np.zeros(1)),
    "dot-formats": lambda m: m.dot(F64, np.zeros(8, dtype=np.float32)),
    "dot-bytes": lambda m: m.dot(F64, bytes(8)),
    "histogram-out-length": lambda m: m.histogram(F64, 4, 0.0, 8.0, out=np.zeros(3, dtype=np.int64)),
    "mandelbrot-out-length": lambda m: m.mandelbrot(4, 3, 10, out=np.zeros(11, dtype=np.uint32)),
    "square-out-length": lambda m: m.square(F64, out=np.zeros(9)),
    "matmul-out-length": lambda m: m.matmul(np.ones((2, 3)), np.ones((3, 4)), out=np.zeros((2, 3))),
    "matmul-ndim": lambda m: m.matmul(np.ones(4), np.ones((4, 4))),
    "matmul-ndim-b": lambda m: m.matmul(np.ones((4, 4)), np.ones((4, 4, 1))),
    "matmul-shapes": lambda m: m.matmul(np.ones((2, 3)), np.ones((4, 2))),
    "minmax-empty": lambda m: m.minmax(np.zeros(0)),
    "minmax-empty-bytes": lambda m: m.minmax(b""),
    "minmax-empty-array": lambda m: m.minmax(array.array("q")),
    "matmul-aliases": lambda m: m.matmul(_A, _A, out=_A),
    "square-partial-overlap": lambda m: m.square(_B[:9], out=_B[1:]),
    # ---- errors found by the core, status codes through the shared table
    "square-overflow-i64": lambda m: m.square(np.array([2**40], dtype=np.int64)),
    "square-overflow-same-type": lambda m: m.square(np.array([300], np.int16), out=np.zeros(1, np.int16)),
    "square-overflow-big": lambda m: m.square(np.full(300_000, 2**33, dtype=np.uint64)),
    "sum_of_squares-too-big": lambda m: m.sum_of_squares(2**42 + 1),
    # ---- scalar arguments
    "sum_of_squares-negative": lambda m: m.sum_of_squares(-1),
    "count_primes-negative": lambda m: m.count_primes(-1),
    "count_primes-float": lambda m: m.count_primes(10.0),
    "count_primes-str": lambda m: m.count_primes("10"),
    "count_primes-too-big": lambda m: m.count_primes(2**48 + 1),
    "monte_carlo_pi-zero": lambda m: m.monte_carlo_pi(0),
    "monte_carlo_pi-too-big": lambda m: m.monte_carlo_pi(2**62 + 1),
    "monte_carlo_pi-seed": lambda m: m.monte_carlo_pi(10, seed=-1),
    "monte_carlo_pi-seed-big": lambda m: m.monte_carlo_pi(10, seed=2**64),
    "monte_carlo_pi-float": lambda m: m.monte_carlo_pi(10.5),
    "mandelbrot-width": lambda m: m.mandelbrot(-1, 4),
    "mandelbrot-max_iter": lambda m: m.mandelbrot(4, 4, 2**32),
    "mandelbrot-width-float": lambda m: m.mandelbrot(4.0, 4),
    "mandelbrot-bounds": lambda m: m.mandelbrot(4, 4, 10, (0.0, 1.0, 0.0)),
    "mandelbrot-bounds-int": lambda m: m.mandelbrot(4, 4, 10, 5),
    "mandelbrot-xrange": lambda m: m.mandelbrot(4, 4, 10, (1.0, 1.0, 0.0, 1.0)),
    "mandelbrot-nan": lambda m: m.mandelbrot(4, 4, 10, (math.nan, 1.0, 0.0, 1.0)),
    "mandelbrot-str": lambda m: m.mandelbrot(4, 4, 10, (0.0, 1.0, "a", 1.0)),
    "mandelbrot-huge": lambda m: m.mandelbrot(2**65, 1, out=np.zeros(1, np.uint32)),
    "mandelbrot-product": lambda m: m.mandelbrot(2**40, 2**40, out=np.zeros(1, np.uint32)),
    "histogram-bins": lambda m: m.histogram(F64, 0, 0.0, 1.0),
    "histogram-bins-str": lambda m: m.histogram(F64, "3", 0.0, 1.0),
    "histogram-bins-huge": lambda m: m.histogram(F64, 2**65, 0.0, 1.0, out=np.zeros(1, np.int64)),
    "histogram-range": lambda m: m.histogram(F64, 4, 1.0, 1.0),
    "histogram-lo-nan": lambda m: m.histogram(F64, 4, math.nan, 1.0),
    "histogram-hi-none": lambda m: m.histogram(F64, 4, 0.0, None),
    "bench_dispatch-zero": lambda m: m.bench_dispatch(0),
    # ---- threads= and pool=
    "threads-zero": lambda m: m.sum(F64, threads=0),
    "threads-big": lambda m: m.sum_of_squares(10, threads=1025),
    "threads-str": lambda m: m.count_primes(100, threads="2"),
    "threads-bool": lambda m: m.mandelbrot(4, 4, 10, threads=True),
    "pool-constructor-zero": lambda m: m.Pool(0),
    "pool-constructor-float": lambda m: m.Pool(2.5),
    "default_pool-zero": lambda m: m.default_pool(0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_exception_and_message(case: str) -> None:
    call = CASES[case]
    outcomes = {name: outcome(lambda m=m: call(m)) for name, m in BINDINGS.items()}  # type: ignore[misc]
    kind, _detail = outcomes["native"]
    assert kind == "raise", f"manycore.native accepted the bad input of {case!r}"
    for name, got in outcomes.items():
        assert got == outcomes["native"], f"{name}: {got} != native: {outcomes['native']}"


PER_POOL: dict[str, Case] = {
    "sum_of_squares": lambda m: m.sum_of_squares(10),
    "sum": lambda m: m.sum(F64),
    "dot": lambda m: m.dot(F64, F64),
    "minmax": lambda m: m.minmax(F64),
    "histogram": lambda m: m.histogram(F64, 4, 0.0, 8.0),
    "count_primes": lambda m: m.count_primes(100),
    "monte_carlo_pi": lambda m: m.monte_carlo_pi(100),
    "mandelbrot": lambda m: m.mandelbrot(4, 4, 10),
    "matmul": lambda m: m.matmul(np.ones((2, 2)), np.ones((2, 2))),
    "square": lambda m: m.square(F64),
    "big-sum": lambda m: m.sum(BIG),
    "bench_dispatch": lambda m: m.bench_dispatch(1),
}


@pytest.mark.parametrize("case", list(PER_POOL))
def test_pool_errors_are_the_same(case: str) -> None:
    """Closed pool, threads above the pool, a pool of the wrong type (message names the class)."""
    call = PER_POOL[case]
    seen: dict[str, list[tuple[str, object]]] = {}
    for name, m in BINDINGS.items():
        results = []
        with m.Pool(2) as p:
            results.append(outcome(lambda m=m, p=p: call(_with(m, p, threads=3))))
            results.append(outcome(lambda m=m, p=p: call(_with(m, p, threads=2))))
        results.append(outcome(lambda m=m, p=p: call(_with(m, p))))  # closed now
        results.append(outcome(lambda m=m, p=p: call(_with(m, p, threads=1))))
        results.append(outcome(lambda m=m: call(_with(m, 3))))
        qualname = f"{m.Pool.__module__}.Pool" if m is not BINDINGS["native"] else "manycore.native.Pool"
        seen[name] = [_normalise(r, qualname) for r in results]
    for name, got in seen.items():
        assert _kinds(got) == _kinds(seen["native"]), name
        assert [r for r in got if r[0] == "raise"] == [r for r in seen["native"] if r[0] == "raise"], name


def _with(m: ModuleType, pool: object, **kw: object) -> ModuleType:
    class Bound:
        def __getattr__(self, attr: str) -> Any:
            fn = getattr(m, attr)
            return lambda *a, **k: fn(*a, pool=pool, **kw, **k)

    return Bound()  # type: ignore[return-value]


def _normalise(r: tuple[str, object], qualname: str) -> tuple[str, object]:
    if r[0] == "raise":
        tp, msg = r[1]  # type: ignore[misc]
        return "raise", (tp, str(msg).replace(qualname, "<Pool>"))
    return r


def _kinds(rs: list[tuple[str, object]]) -> list[str]:
    return [r[0] for r in rs]


@pytest.mark.parametrize("name", list(FFI_BINDINGS))
def test_pool_type_message_names_the_binding_pool(name: str) -> None:
    m = FFI_BINDINGS[name]
    with pytest.raises(TypeError, match=rf"^pool must be a {m.Pool._qualname} or None, not int$"):
        m.sum(F64, pool=3)
    assert m.Pool._qualname == f"{m.__name__}.Pool"


def test_pools_of_other_bindings_are_rejected() -> None:
    from manycore import native

    with (
        native.Pool(2) as p,
        pytest.raises(TypeError, match=r"pool must be a manycore\.ffi\.ctypes_core\.Pool"),
    ):
        FFI_BINDINGS["ctypes"].sum(F64, pool=p)
