"""Section 2: memory-bound work — why threads barely help when the limit is memory."""

from __future__ import annotations

from . import words
from ._context import BenchContext
from ._timing import time_interleaved
from .report import Section


def run(ctx: BenchContext) -> Section:
    import numpy as np

    from .. import native

    n = ctx.size(100_000_000, 25_000_000, 200_000)
    mb = n * 8 / 1e6
    section = Section(
        "memory", f"2. Memory-bound: sum and dot over float64 arrays of {mb:,.0f} MB, GB/s per mechanism"
    )
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
    section.notes.append(words.thread_scaling(t, one / many, cscale))
    fastest_sum = min(one, many)
    section.notes.append(words.against_numpy("native.sum", "np.sum", timings["np.sum"].best_s / fastest_sum))
    fastest_dot = min(timings["native.dot, 1 thread"].best_s, timings[f"native.dot, {t} threads"].best_s)
    section.notes.append(
        words.against_numpy("native.dot", "np.dot (BLAS)", timings["np.dot (BLAS)"].best_s / fastest_dot)
    )
    gbs = {r.name: r.values["GB_per_s"] for r in section.rows}
    section.notes.append(
        words.bandwidth_share(
            "native.sum",
            max(gbs["native.sum, 1 thread"], gbs[f"native.sum, {t} threads"]),
            gbs["np.copyto (read + write)"],
        )
    )
    section.series["GB_per_s"] = gbs
    section.series["sum_seconds"] = {
        name: timings[name].best_s for name in ("np.sum", "native.sum, 1 thread", f"native.sum, {t} threads")
    }
    return section
