"""The report's last section, "On this machine": which mechanism won for each kind of work.

Computed from the other sections' ``series`` (the numbers behind their rows),
never from their row labels: for CPU-bound pure Python, GIL-releasing C and
NumPy, memory-bound work, I/O-bound work and tiny tasks, the mechanism that
won, by how much, the runner-up, and from which task duration it pays.
A kind of work whose section did not run says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import words
from .report import Report, Section

#: Which crossover curve (section 3) tells when a CPU-bound winner starts to pay.
_CROSSOVER_OF = {
    "processes": "pmap processes (batched)",
    "threads": "threads (submit)",
}


def _series(report: Report, section_id: str, key: str) -> Any:
    for section in report.sections:
        if section.id == section_id:
            return section.series.get(key)
    return None


def _winner(speedups: Mapping[str, float]) -> tuple[str, float, str]:
    """(winner, its speed-up, the runner-up in words); "serial" when nothing beat it by words.SAME."""
    ranked = sorted(speedups.items(), key=lambda kv: kv[1], reverse=True)
    best, x = ranked[0]
    if x < words.SAME:
        return "serial", 1.0, f"best parallel: {best} at {words.times(x)}"
    runner = f"{ranked[1][0]} at {words.times(ranked[1][1])}" if len(ranked) > 1 else "—"
    return best, x, runner


def _crossover_of(report: Report, name: str) -> float | None:
    data = _series(report, "overhead", "crossover")
    if not data or name not in data["speedup"]:
        return None
    return words.crossing(data["task_seconds"], data["speedup"][name])


def build(report: Report) -> Section:
    section = Section(
        "verdict", "On this machine: what to use for each kind of work", first_column="kind of work"
    )
    cpus = report.machine.get("threads_used", 1)

    def missing(kind: str, section_id: str) -> None:
        section.add(kind, winner="not measured", note=f"section {section_id!r} did not run")

    cpu = _series(report, "gil", "cpu_python")
    kind = "CPU-bound pure Python"
    if cpu:
        winner, x, runner = _winner(cpu)
        cross = _crossover_of(report, _CROSSOVER_OF.get(winner, ""))
        section.add(
            kind,
            winner=winner,
            speedup=x,
            over="serial",
            runner_up=runner,
            pays_from=words.duration(cross) if cross else "",
        )
        if winner == "serial":
            section.notes.append(
                f"{kind}: nothing parallel paid off here ({runner}): with {cpus} worker(s), keep it serial "
                "or move the loop into compiled code."
            )
        else:
            section.notes.append(
                f"{kind}: {winner}, {words.versus(x)} with {cpus} workers (runner-up: {runner})"
                + (f"; it pays from tasks of about {words.duration(cross)}." if cross else ".")
            )
    else:
        missing(kind, "gil")

    released = _series(report, "gil", "gil_releasing")
    kind = "GIL-releasing C / NumPy"
    if released:
        winner, x, runner = _winner(released)
        section.add(kind, winner=winner, speedup=x, over="one thread", runner_up=runner)
        section.notes.append(
            f"{kind}: "
            + (
                f"{winner}, {words.versus(x, 'one thread')}: code that releases the GIL runs in parallel on threads."
                if winner != "serial"
                else f"no parallel speed-up measured ({runner}): the CPUs were not free, or the work is memory-bound."
            )
        )
    else:
        missing(kind, "gil")

    sums = _series(report, "memory", "sum_seconds")
    kind = "Memory-bound (sum of a large array)"
    if sums:
        base = sums.get("np.sum") or min(sums.values())
        fastest = min(sums, key=sums.__getitem__)
        x = base / sums[fastest]
        others = ", ".join(f"{n} at {words.times(base / t)}" for n, t in sums.items() if n != fastest)
        section.add(kind, winner=fastest, speedup=x, over="np.sum", runner_up=others or "—")
        if x >= words.SAME:
            section.notes.append(
                f"{kind}: {fastest}, {words.versus(x, 'np.sum')}; section 2 shows how close each comes to "
                "the memory bandwidth."
            )
        else:
            section.notes.append(
                f"{kind}: a tie within the noise ({fastest} fastest, at {words.times(x)} np.sum's speed; "
                f"{others}): all stream at about the memory bandwidth (section 2), so more threads or "
                "compiled code gain little here."
            )
    else:
        missing(kind, "memory")

    io = _series(report, "io", "speedup")
    kind = "I/O-bound (HTTP requests)"
    if io:
        winner, x, runner = _winner(io)
        section.add(kind, winner=winner, speedup=x, over="sequential", runner_up=runner)
        section.notes.append(f"{kind}: {winner}, {words.versus(x, 'sequential requests')}.")
    else:
        missing(kind, "io")

    data = _series(report, "overhead", "crossover")
    kind = "Tiny tasks (hand-off cost)"
    if data:
        durations, curves = data["task_seconds"], data["speedup"]
        at_shortest = {name: values[0] for name, values in curves.items()}
        winner, x, runner = _winner(at_shortest)
        pays = {name: words.crossing(durations, values) for name, values in curves.items()}
        paying = {name: d for name, d in pays.items() if d is not None}
        first = min(paying, key=paying.__getitem__) if paying else None
        section.add(
            kind,
            winner=winner,
            speedup=x,
            over="serial",
            runner_up=runner,
            pays_from=f"{words.duration(paying[first])} ({first})" if first else "never measured",
        )
        shortest = words.duration(durations[0])
        best_name = max(curves, key=lambda name: max(curves[name]))
        best_x = max(curves[best_name])
        if first is None and best_x >= words.CROSSING:
            at = durations[curves[best_name].index(best_x)]
            section.notes.append(
                f"{kind}: no steady crossover measured: {best_name} reached {words.times(best_x)} at "
                f"{words.duration(at)} per task but fell back at longer tasks (a busy machine?); "
                f"at {shortest} per task, {winner} wins."
            )
        elif first is None:
            section.notes.append(
                f"{kind}: no mechanism beat serial at any task duration measured "
                f"({shortest} to {words.duration(durations[-1])}; best {words.times(best_x)})."
            )
        else:
            section.notes.append(
                f"{kind}: at {shortest} per task, {winner if winner != 'serial' else 'serial'} wins"
                f"{'' if winner == 'serial' else ' (' + words.times(x) + ')'}; handing tasks off pays from about "
                f"{words.duration(paying[first])} per task with {first}"
                + "".join(
                    f", {words.duration(d)} with {name}"
                    for name, d in sorted(paying.items(), key=lambda kv: kv[1])[1:]
                )
                + "."
            )
    else:
        missing(kind, "overhead")
    return section
