"""Section 6: speed-up against thread / process count, 1..cores."""

from __future__ import annotations

from ..pmap import pmap
from . import words
from ._context import BenchContext, busy
from ._timing import time_call
from .report import Section


def run(ctx: BenchContext) -> Section:
    from .. import native

    # past the CPU count too: what oversubscribing does is part of the answer
    counts = [*ctx.thread_counts(), *range(ctx.threads + 1, 2 * ctx.threads + 1)][
        : len(ctx.thread_counts()) + 2
    ]
    section = Section(
        "scaling",
        f"6. Scaling: speed-up over 1 worker for 1..{counts[-1]} workers ({ctx.threads} CPUs available)",
    )
    n = ctx.size(2 * 10**8, 5 * 10**7, 10**6)
    p = ctx.size(2 * 10**8, 5 * 10**7, 10**6)
    items = [ctx.size(300_000, 150_000, 5_000)] * ctx.size(64, 32, 8)
    curves: dict[str, list[float]] = {}
    for label, make in (
        (f"native sum_of_squares({n:,})", lambda k: lambda: native.sum_of_squares(n, threads=k)),
        (f"native count_primes({p:,})", lambda k: lambda: native.count_primes(p, threads=k)),
        (
            f"pmap processes, {len(items)} pure-Python tasks",
            lambda k: lambda: list(pmap(busy, items, backend="processes", workers=k)),
        ),
    ):
        ctx.say(f"scaling: {label}")
        base = None
        curve = []
        for k in counts:
            timing = time_call(make(k), repeats=2 if "pmap" in label else ctx.repeats)
            base = base or timing.best_s
            speedup = base / timing.best_s
            curve.append(speedup)
            section.add(f"{label}, {k} worker(s)", timing, speedup=speedup, efficiency=speedup / k)
        curves[label] = curve
        section.notes.append(words.scaling(label, counts, curve, ctx.threads))
    section.series["scaling"] = {"workers": counts, "speedup": curves, "cpus": ctx.threads}
    return section
