"""Section 1: the unit's table, redone — sum of squares for N = 10**7 on every mechanism."""

from __future__ import annotations

import functools
import importlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..executors.process import ProcessExecutor
from . import words
from ._context import BenchContext, python_range_sum_of_squares, python_sum_of_squares, split
from ._timing import time_call
from .report import Section

SEED_CLAIM = (40, 50)


def exact_sum_of_squares(n: int) -> int:
    return (n - 1) * n * (2 * n - 1) // 6


def wrapped_int64(value: int) -> int:
    """What a C ``long long`` accumulator holds after silently wrapping."""
    v = value % 2**64
    return v - 2**64 if v >= 2**63 else v


def claim_sentence(measured: float, long_long_wrong: bool) -> str:
    """The course text's 40-50x claim for Cython against what compiled code on one thread measured."""
    lo, hi = SEED_CLAIM
    verdict = "understates" if measured > hi else ("overstates" if measured < lo else "matches")
    return (
        f"The course text claims Cython is {lo}-{hi}x faster than the loop; compiled code on one thread "
        f"measured {words.times(measured)} here, so the claim {verdict} the gain"
        + (" (and its `long long` result is wrong for this N)." if long_long_wrong else ".")
    )


def _numpy_square_sum(a: Any) -> Any:
    return (a * a).sum()


def run(ctx: BenchContext) -> Section:
    import numpy as np

    from .. import native

    n = ctx.size(10**7, 10**7, 10**5)
    exact = exact_sum_of_squares(n)
    section = Section(
        "seed", f"1. Sum of squares of 0..N-1, N = {n:,}: time and exactness on every mechanism"
    )
    rep = ctx.repeats
    ctx.say("seed: pure Python loop")
    loop_values: list[int] = []
    loop = time_call(lambda: loop_values.append(python_sum_of_squares(n)), repeats=1, warmup=0)
    base = loop.best_s

    def add(name: str, timing: Any, value: Any, note: str = "") -> None:
        ok = value == exact
        section.add(
            name,
            timing,
            speedup=base / timing.best_s if timing.best_s else None,
            exact=ok,
            note=note or ("" if ok else f"got {value}"),
        )

    add("pure Python loop", loop, loop_values[0])

    ctx.say("seed: NumPy")
    for dtype, note in (("int64", "int64 wraps past 2**63"), ("float64", "float64 keeps 53 bits")):
        square_sum = functools.partial(_numpy_square_sum, np.arange(n, dtype=dtype))
        add(f"NumPy {dtype} (a*a).sum()", time_call(square_sum, repeats=rep), int(square_sum()), note)

    parts = split(n, ctx.threads)
    ctx.say("seed: thread pool")
    with ThreadPoolExecutor(ctx.threads) as tp:
        value = sum(tp.map(python_range_sum_of_squares, parts))
        t = time_call(lambda: sum(tp.map(python_range_sum_of_squares, parts)), repeats=1, warmup=0)
        add(f"thread pool, {ctx.threads} threads (GIL)", t, value)
    ctx.say("seed: process pool")
    with ProcessExecutor(ctx.threads) as pp:
        value = sum(pp.map(python_range_sum_of_squares, parts))
        t = time_call(lambda: sum(pp.map(python_range_sum_of_squares, parts)), repeats=1, warmup=0)
        add(f"process pool, {ctx.threads} processes", t, value)

    native.sum_of_squares(n)  # create and warm the pool
    for k in sorted({1, ctx.threads}):
        ctx.say(f"seed: native, {k} threads")
        add(
            f"native extension, {k} thread(s)",
            time_call(functools.partial(native.sum_of_squares, n, threads=k), repeats=rep * 4),
            native.sum_of_squares(n, threads=k),
        )

    for label, module, attr in (
        ("ctypes on the core", "manycore.ffi.ctypes_core", "sum_of_squares"),
        ("cffi on the core", "manycore.ffi.cffi_core", "sum_of_squares"),
        ("Cython, serial", "manycore._cy.kernels_serial", "sum_of_squares"),  # built without OpenMP
        ("Cython, prange", "manycore._cy.kernels", "sum_of_squares"),
    ):
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            section.add(label, None, note=f"not available: {exc}")
            continue
        ctx.say(f"seed: {label}")
        add(label, time_call(functools.partial(fn, n), repeats=rep * 4), fn(n))

    wrapped = wrapped_int64(exact)
    section.notes.append(
        f"The exact answer is {exact:,}; a C/Cython `long long` accumulator wraps to {wrapped:,} "
        f"({'wrong' if wrapped != exact else 'right'} for this N)."
    )
    one = next((r for r in section.rows if r.name.startswith("native extension, 1")), None)
    if one is not None and one.time_s:
        section.notes.append(claim_sentence(base / one.time_s, wrapped != exact))
        many = next((r for r in section.rows if r.name == f"native extension, {ctx.threads} thread(s)"), None)
        if many is not None and many is not one and many.time_s:
            section.notes.append(
                words.more_threads("the native kernel", one.time_s, many.time_s, ctx.threads)
            )
    section.series["speedup"] = {r.name: r.values.get("speedup") for r in section.rows}
    return section
