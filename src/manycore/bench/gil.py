"""Section 4: data vs task parallelism and the GIL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .. import _build
from ..executors import backends, get_executor
from ..executors.process import ProcessExecutor
from . import words
from ._context import BenchContext, busy
from ._timing import time_call, time_interleaved
from .report import Section


def run(ctx: BenchContext) -> Section:
    import numpy as np

    from .. import native

    section = Section(
        "gil", "4. The GIL: CPU-bound Python and GIL-releasing work on threads, processes, subinterpreters"
    )
    t = ctx.threads
    iterations = ctx.size(2_000_000, 1_000_000, 20_000)
    items = [iterations] * t
    ctx.say("gil: CPU-bound Python on threads / processes / native threads")
    with ThreadPoolExecutor(t) as tp, ProcessExecutor(t) as pp:
        list(pp.map(busy, [1] * t))  # start every worker outside the timing
        timings = time_interleaved(
            {
                "serial": lambda: [busy(i) for i in items],
                "threads": lambda: list(tp.map(busy, items)),
                "processes": lambda: list(pp.map(busy, items)),
                "native": lambda: native.call_in_threads(lambda i: busy(items[i]), t),
            },
            repeats=2 if ctx.tiny else 3,
            warmup=0,
        )
    # Subinterpreters on their own, against serial again: no process starts while they live
    # (CPython 3.13.0 could abort doing that: docs/executors.md).
    interpreters_missing = backends()["interpreters"]
    interpreters_x = None
    if interpreters_missing is None:
        ctx.say("gil: CPU-bound Python on subinterpreters")
        with get_executor("interpreters", max_workers=t) as ip:
            list(ip.map(busy, [1] * t))  # start the subinterpreters outside the timing
            paired = time_interleaved(
                {
                    "serial": lambda: [busy(i) for i in items],
                    "interpreters": lambda: list(ip.map(busy, items)),
                },
                repeats=2 if ctx.tiny else 3,
                warmup=0,
            )
        timings["interpreters"] = paired["interpreters"]
        interpreters_x = paired["serial"].best_s / paired["interpreters"].best_s
    base = timings["serial"].best_s
    gil_on = _build.gil_enabled()
    section.add(f"serial: {t} calls of a pure-Python loop", timings["serial"], speedup=1.0)
    threads_x = base / timings["threads"].best_s
    section.add(
        f"threads ({t}): {words.threads_verdict(threads_x, gil_on)}", timings["threads"], speedup=threads_x
    )
    section.add(
        f"processes ({t}): one interpreter each",
        timings["processes"],
        speedup=base / timings["processes"].best_s,
    )
    if interpreters_x is not None:
        section.add(
            f"subinterpreters ({t}): one GIL each, in this process",
            timings["interpreters"],
            speedup=interpreters_x,
        )
    else:
        section.add(f"subinterpreters ({t})", note=f"not available: {interpreters_missing}")
    native_x = base / timings["native"].best_s
    section.add(
        f"native pthreads ({t}) calling Python: {words.threads_verdict(native_x, gil_on)}",
        timings["native"],
        speedup=native_x,
    )

    ctx.say("gil: GIL-releasing work on threads")
    n = ctx.size(4_000_000, 2_000_000, 50_000)
    arrays = [np.random.default_rng(k).random(n) for k in range(t)]
    one = time_call(lambda: [np.sort(a) for a in arrays], repeats=ctx.repeats)
    section.add(f"serial: {t} x np.sort({n:,})", one, speedup=1.0)
    with ThreadPoolExecutor(t) as tp:
        timing = time_call(lambda: list(tp.map(np.sort, arrays)), repeats=ctx.repeats)
        section.add(f"threads ({t}): np.sort releases the GIL", timing, speedup=one.best_s / timing.best_s)
    m = ctx.size(10**8, 3 * 10**7, 10**6)
    k1 = time_call(lambda: native.sum_of_squares(m, threads=1), repeats=ctx.repeats)
    section.add(f"native kernel, 1 thread: sum of squares {m:,}", k1, speedup=1.0)
    kt = time_call(lambda: native.sum_of_squares(m, threads=t), repeats=ctx.repeats)
    section.add(f"native kernel, {t} threads, GIL released", kt, speedup=k1.best_s / kt.best_s)
    section.notes.append(f"Interpreter: {_build.describe()}.")
    section.notes.append(words.python_threads(threads_x, gil_on, t))
    cpu_python = {
        "threads": threads_x,
        "processes": base / timings["processes"].best_s,
        "native threads": native_x,
    }
    if interpreters_x is not None:
        cpu_python["subinterpreters"] = interpreters_x
        section.notes.append(
            f"Subinterpreters ran it {words.versus(interpreters_x)} and processes "
            f"{words.versus(cpu_python['processes'])}, each measured beside serial in the same rounds."
        )
    section.series["cpu_python"] = cpu_python
    section.series["gil_releasing"] = {
        f"threads ({t}): np.sort": one.best_s / timing.best_s,
        f"native kernel ({t} threads)": k1.best_s / kt.best_s,
    }
    return section
