"""PNG plots of a report (matplotlib, Agg backend: no display needed).

One plot per section that has something to compare; each title says what
was measured, each speed-up axis has its 1.0 (serial) line labelled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import words
from .report import Report, Section


def write_plots(report: Report, directory: str) -> list[str]:
    """Write the plots of every section that has them into ``directory``; their paths, in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    written: list[str] = []
    for section in report.sections:
        draw = _DRAW.get(section.id)
        if draw is None:
            continue
        fig = draw(plt, section, report)
        if fig is None:
            continue
        path = os.path.join(directory, f"{section.id}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        section.plots.append(path)
        written.append(path)
    return written


def _serial_line(ax: Any, vertical: bool = False) -> None:
    """The 1.0 reference, labelled: above it a mechanism beats serial, below it loses."""
    if vertical:
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 = as fast as serial")
    else:
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 = as fast as serial")


def _seed(plt: Any, section: Section, report: Report) -> Any:
    rows = [r for r in section.rows if r.time_s]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    ax.barh(
        [r.name for r in rows],
        [r.time_s or 0 for r in rows],
        color=["tab:green" if r.values.get("exact") else "tab:red" for r in rows],
    )
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("seconds per call, best of the repeats (log scale); green = exact, red = wrong result")
    ax.set_title(section.title.split(". ", 1)[-1], fontsize=10)
    return fig


def _crossover(plt: Any, section: Section, report: Report) -> Any:
    data = section.series.get("crossover")
    if not data:
        return None
    durations = data["task_seconds"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, values in data["speedup"].items():
        (line,) = ax.plot(durations, values, marker="o", label=name)
        cross = words.crossing(durations, values)
        if cross is not None and cross > durations[0]:
            ax.axvline(cross, color=line.get_color(), linestyle=":", linewidth=1)
            ax.annotate(
                f"pays from ~{words.duration(cross)}",
                (cross, words.CROSSING),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
                color=line.get_color(),
            )
    _serial_line(ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("duration of one task (s, log scale)")
    ax.set_ylabel("speed-up over running the tasks serially (log)")
    workers = report.machine.get("threads_used", "?")
    ax.set_title(f"When does handing off a CPU-bound Python task pay? ({workers} workers)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _scaling(plt: Any, section: Section, report: Report) -> Any:
    from matplotlib.ticker import MaxNLocator

    data = section.series.get("scaling")
    if not data:
        return None
    workers = data["workers"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    cpus = data.get("cpus", max(workers))
    ideal = [min(w, cpus) for w in workers]
    ax.plot(workers, ideal, color="grey", linestyle="--", label=f"ideal (flat past the {cpus} CPUs)")
    for name, values in data["speedup"].items():
        ax.plot(workers, values, marker="o", label=name)
    ax.axvline(cpus, color="grey", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("workers (threads or processes)")
    ax.set_ylabel("speed-up over 1 worker")
    ax.set_title(f"Speed-up against worker count on {cpus} CPUs", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _memory(plt: Any, section: Section, report: Report) -> Any:
    data = section.series.get("GB_per_s")
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(data) + 1.6))
    ax.barh(list(data), list(data.values()), color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("GB/s streamed from memory (higher is better)")
    ax.set_title(section.title.split(". ", 1)[-1], fontsize=10)
    return fig


def _speedup_bars(ax: Any, data: dict[str, float], color: str) -> None:
    names = list(data)
    ax.barh(names, [data[n] for n in names], color=color)
    for y, name in enumerate(names):
        ax.annotate(
            words.times(data[name]), (data[name], y), xytext=(3, -3), textcoords="offset points", fontsize=8
        )
    _serial_line(ax, vertical=True)
    ax.invert_yaxis()


def _gil(plt: Any, section: Section, report: Report) -> Any:
    cpu, released = section.series.get("cpu_python"), section.series.get("gil_releasing")
    if not cpu or not released:
        return None
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 0.45 * (len(cpu) + len(released)) + 2.8), height_ratios=[len(cpu), len(released)]
    )
    _speedup_bars(top, cpu, "tab:orange")
    top.set_title("CPU-bound pure Python: speed-up over serial", fontsize=10)
    top.legend(fontsize=8, loc="lower right")
    _speedup_bars(bottom, released, "tab:green")
    bottom.set_title("GIL-releasing work (NumPy, C): speed-up over one thread", fontsize=10)
    bottom.set_xlabel("speed-up (1.0 = serial)")
    return fig


def _io(plt: Any, section: Section, report: Report) -> Any:
    data = section.series.get("speedup")
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(data) + 1.8))
    _speedup_bars(ax, data, "tab:purple")
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over sequential requests (log scale)")
    ax.set_title(section.title.split(". ", 1)[-1], fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


_DRAW: dict[str, Callable[[Any, Section, Report], Any]] = {
    "seed": _seed,
    "memory": _memory,
    "overhead": _crossover,
    "gil": _gil,
    "io": _io,
    "scaling": _scaling,
}
