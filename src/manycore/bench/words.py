"""The report's sentences, each computed from the run's own numbers.

Every function here takes measured values and returns the sentence that
says what they show, including "no speed-up here" and "slower": nothing is
written before the numbers are known.  tests/test_bench_words.py feeds them
synthetic results and checks each case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Ratios within this factor of 1.0 are "no measurable difference": on a shared
#: machine a 10% wobble between two runs of the same code is common.
SAME = 1.1


def times(x: float) -> str:
    """A ratio as people read it: ``1.85x``, ``0.92x``, ``540x``."""
    if not math.isfinite(x):
        return "—"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.2f}x"


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def versus(x: float, what: str = "serial") -> str:
    """``x`` (a speed-up over ``what``) in words."""
    if x >= SAME:
        return f"{times(x)} faster than {what}"
    if x > 1 / SAME:
        return f"no faster than {what} ({times(x)})"
    return f"slower than {what} ({times(x)})"


def thread_scaling(threads: int, memory_x: float, compute_x: float) -> str:
    """Section 2: what ``threads`` threads did for native.sum (memory-bound) and for a compute-bound kernel."""
    if threads < 2:
        return "Only 1 CPU is available: how threads share the memory bus was not measured."
    head = f"{threads} threads ran native.sum (memory-bound) at {times(memory_x)} of 1 thread's speed"
    ref = f"the compute-bound sum of squares of a range at {times(compute_x)}"
    if compute_x < SAME:
        return (
            f"{head} and {ref}: neither scaled, so the cores themselves were not free for this run "
            "(another process using them?), and the section says nothing about memory."
        )
    if memory_x >= compute_x / SAME:
        return (
            f"{head}, about as much as {ref}: at this array size one thread does not saturate the "
            "memory bus on this machine."
        )
    if memory_x >= SAME:
        return f"{head}, less than {ref}: memory bandwidth, not the cores, limits the sum beyond one thread."
    if memory_x > 1 / SAME:
        return (
            f"{head} (no faster), against {ref}: one thread already reads memory as fast as this "
            "machine delivers it, so more threads only queue for the bus."
        )
    return (
        f"{head} (slower), against {ref}: one thread already saturates the memory bus, and more threads "
        "compete for it."
    )


def against_numpy(kernel: str, numpy_name: str, ratio: float) -> str:
    """``ratio``: NumPy's time over the native kernel's (above 1: native is faster)."""
    if ratio >= SAME:
        return f"{kernel} took {1 / ratio:.2f} of {numpy_name}'s time ({times(ratio)} faster)."
    if ratio > 1 / SAME:
        return f"{kernel} and {numpy_name} took about the same time ({kernel} at {times(ratio)})."
    return f"{kernel} was slower than {numpy_name} ({times(1 / ratio)} its time)."


def bandwidth_share(kernel: str, kernel_gbs: float, copy_gbs: float) -> str:
    """A streaming kernel's read rate against np.copyto's (bytes read + written per second)."""
    share = kernel_gbs / copy_gbs if copy_gbs > 0 else math.nan
    head = f"{kernel} read {kernel_gbs:.1f} GB/s; np.copyto moved {copy_gbs:.1f} GB/s (read + written)"
    if share > 1.0:
        return (
            f"{head}: reading alone goes faster than copying (a copy also writes, and the CPU reads "
            "each line it writes first)."
        )
    if share >= 0.7:
        return f"{head}: {kernel} runs at {share:.0%} of the copy rate, close to what memory delivers."
    return (
        f"{head}: {kernel} reaches only {share:.0%} of the copy rate, so something other than memory "
        "(the arithmetic, one core's load rate) limits it."
    )


#: A speed-up must reach this to count as a crossing (the same margin as SAME).
CROSSING = SAME


def crossing(durations: Sequence[float], speedups: Sequence[float]) -> float | None:
    """The task duration from which ``speedups`` stay at or above :data:`CROSSING`, log-interpolated.

    None when the last point is below it (never crossed, or fell back under
    it at the longest tasks measured).
    """
    if not speedups or speedups[-1] < CROSSING:
        return None
    k = len(speedups) - 1
    while k > 0 and speedups[k - 1] >= CROSSING:
        k -= 1
    if k == 0:
        return durations[0]
    (d0, s0), (d1, s1) = (durations[k - 1], speedups[k - 1]), (durations[k], speedups[k])
    frac = (CROSSING - s0) / (s1 - s0) if s1 != s0 else 0.0
    return math.exp(math.log(d0) + frac * (math.log(d1) - math.log(d0)))


def crossover(name: str, durations: Sequence[float], speedups: Sequence[float]) -> str:
    """Section 3: from which task duration ``name`` beats serial, in words."""
    at = ", ".join(f"{times(s)} at {duration(d)}" for d, s in zip(durations, speedups, strict=True))
    span = f"{duration(durations[0])} to {duration(durations[-1])}"
    cross = crossing(durations, speedups)
    if cross is None:
        best = max(range(len(speedups)), key=speedups.__getitem__)
        if speedups[best] >= CROSSING:
            return (
                f"{name}: no steady crossover: it reached {times(speedups[best])} at "
                f"{duration(durations[best])} but {times(speedups[-1])} at the longest tasks measured "
                f"({duration(durations[-1])}), so the gain did not hold (noise, or a busy machine); "
                f"speed-ups {at}."
            )
        return (
            f"{name}: no speed-up here: it did not beat serial by {CROSSING:.1f}x or more at the task "
            f"durations measured ({span}; best {times(speedups[best])} at {duration(durations[best])})."
        )
    if cross == durations[0]:
        return (
            f"{name}: beat serial already at the shortest task measured ({duration(durations[0])}); "
            f"speed-ups {at}."
        )
    return f"{name}: beats serial from a task duration of about {duration(cross)} (speed-ups {at})."


def python_threads(speedup: float, gil_on: bool, threads: int) -> str:
    """Section 4: what threads did for pure-Python CPU work, from the measured speed-up."""
    if threads < 2:
        return "Only 1 CPU is available: threads cannot run anything in parallel here."
    if speedup >= PARALLEL_MIN:
        return (
            f"Threads ran pure-Python CPU work {times(speedup)} faster than serial: they run Python in parallel here"
            + ("." if gil_on else " (GIL off).")
        )
    why = (
        " (the GIL lets one thread run Python at a time)."
        if gil_on
        else " although the GIL is off: the cores were busy, or the work contends."
    )
    short = f" (short of the {PARALLEL_MIN}x that running in parallel shows)" if speedup >= SAME else ""
    return f"Threads ran pure-Python CPU work at {times(speedup)} of serial{short}: no parallel speed-up{why}"


#: A speed-up below this, over a handful of calls, is not parallel execution.
PARALLEL_MIN = 1.3


def threads_verdict(speedup: float, gil_on: bool) -> str:
    """A threads row's label: the verdict comes from ``speedup``, not from the build."""
    if speedup >= PARALLEL_MIN:
        return "ran Python in parallel" + ("" if gil_on else " (GIL off)")
    return "serialised by the GIL" if gil_on else "no parallel speed-up measured (GIL off)"


def more_threads(kernel: str, one_s: float, many_s: float, threads: int) -> str:
    """Section 1: a native kernel on 1 thread and on ``threads``."""
    x = one_s / many_s
    if threads < 2:
        return f"{kernel} ran on the 1 CPU available."
    if x >= SAME:
        return f"{threads} threads took {kernel} from {duration(one_s)} to {duration(many_s)} ({times(x)})."
    return (
        f"{threads} threads did not make {kernel} faster at this size ({duration(one_s)} on 1 thread, "
        f"{duration(many_s)} on {threads}): a call this short leaves little to share; section 6 shows "
        "the same kernel on a larger input."
    )


def scaling(label: str, workers: Sequence[int], speedups: Sequence[float], cpus: int) -> str:
    """Section 6: one curve in words: the best speed-up, where it was reached, and past the CPU count."""
    best = max(range(len(speedups)), key=speedups.__getitem__)
    text = f"{label}: best {times(speedups[best])} with {workers[best]} worker(s)"
    at_cpus = [s for w, s in zip(workers, speedups, strict=True) if w == cpus]
    if at_cpus and cpus > 1:
        text += f"; {times(at_cpus[0])} at {cpus} workers ({at_cpus[0] / cpus:.0%} of ideal)"
    beyond = [s for w, s in zip(workers, speedups, strict=True) if w > cpus]
    if beyond and at_cpus:
        text += f"; more workers than the {cpus} CPUs: {times(max(beyond))}, " + (
            "no further gain" if max(beyond) < at_cpus[0] * SAME else "still gaining"
        )
    if speedups[best] < SAME:
        text += ": no speed-up here"
    return text + "."


def io_summary(rows: dict[str, float]) -> str:
    """Section 5: ``rows`` maps mechanism to speed-up over sequential requests."""
    if not rows:
        return "No I/O mechanism was measured."
    best = max(rows, key=rows.__getitem__)
    threads = {k: v for k, v in rows.items() if k.startswith("thread")}
    aio = {k: v for k, v in rows.items() if k.startswith("asyncio")}
    text = f"Fastest: {best}, {versus(rows[best], 'sequential requests')}."
    if threads and aio:
        t_best = max(threads, key=threads.__getitem__)
        a_best = max(aio, key=aio.__getitem__)
        ratio = aio[a_best] / threads[t_best]
        if ratio >= SAME:
            text += f" {a_best} beat the best thread pool ({t_best}) by {times(ratio)}, on one thread."
        elif ratio > 1 / SAME:
            text += (
                f" {a_best} and the best thread pool ({t_best}) were as fast as each other: "
                "both hide the latency; asyncio does it on one thread."
            )
        else:
            text += f" The best thread pool ({t_best}) beat {a_best} by {times(1 / ratio)}."
    return text
