"""Section 2: memory-bound work — why threads barely help when the limit is memory."""

from __future__ import annotations

from ._context import BenchContext
from ._timing import time_interleaved
from .report import Section


def run(ctx: BenchContext) -> Section:
    import numpy as np

    from .. import native

    n = ctx.size(100_000_000, 25_000_000, 200_000)
    mb = n * 8 / 1e6
    section = Section("memory", f"2. Memory-bound: sum and dot over float64 arrays of {mb:,.0f} MB")
    rng = np.random.default_rng(0)
    x = rng.random(n)
    y = rng.random(n)
    dst = np.empty_like(x)
    t = ctx.threads
    ctx.say("memory: bandwidth, sum, dot")
    peers = {
        "np.copyto (read + write)": lambda: np.copyto(dst, x),
        "np.sum": lambda: np.sum(x),
        "native.sum, 1 thread": lambda: native.sum(x, threads=1),
        f"native.sum, {t} threads": lambda: native.sum(x, threads=t),
        "np.dot (BLAS)": lambda: np.dot(x, y),
        "native.dot, 1 thread": lambda: native.dot(x, y, threads=1),
        f"native.dot, {t} threads": lambda: native.dot(x, y, threads=t),
    }
    timings = time_interleaved(peers, repeats=ctx.repeats)
    streamed = {name: (2 if "copyto" in name or "dot" in name else 1) * n * 8 for name in peers}
    for name, timing in timings.items():
        section.add(name, timing, GB_per_s=streamed[name] / timing.best_s / 1e9)
    one = timings["native.sum, 1 thread"].best_s
    many = timings[f"native.sum, {t} threads"].best_s
    # compute-bound reference: the same thread counts on sum of squares of a range
    m = ctx.size(10**8, 3 * 10**7, 10**6)
    compute = time_interleaved(
        {"1": lambda: native.sum_of_squares(m, threads=1), "t": lambda: native.sum_of_squares(m, threads=t)},
        repeats=ctx.repeats,
    )
    cscale = compute["1"].best_s / compute["t"].best_s
    section.notes.append(
        f"{t} threads speed native.sum up {one / many:.2f}x (memory-bound) versus {cscale:.2f}x for the "
        "compute-bound sum of squares of a range: once the memory bus is saturated, more threads "
        "only queue for it."
    )
    section.notes.append(
        f"native.sum vs np.sum: {timings['np.sum'].best_s / many:.2f}x; native.dot vs np.dot: "
        f"{timings['np.dot (BLAS)'].best_s / timings[f'native.dot, {t} threads'].best_s:.2f}x."
    )
    section.series["GB_per_s"] = {r.name: r.values["GB_per_s"] for r in section.rows}
    return section
