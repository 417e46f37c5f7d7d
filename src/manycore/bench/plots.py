"""PNG plots of a report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os

from .report import Report


def write_plots(report: Report, directory: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    written: list[str] = []
    for section in report.sections:
        path = os.path.join(directory, f"{section.id}.png")
        fig = None
        if section.id == "seed":
            rows = [r for r in section.rows if r.time_s]
            fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
            ax.barh(
                [r.name for r in rows],
                [r.time_s or 0 for r in rows],
                color=["tab:green" if r.values.get("exact") else "tab:red" for r in rows],
            )
            ax.set_xscale("log")
            ax.invert_yaxis()
            ax.set_xlabel("seconds (log scale); red = wrong result")
            ax.set_title(section.title)
        elif section.id == "overhead" and "crossover" in section.series:
            data = section.series["crossover"]
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for name, values in data["speedup"].items():
                ax.plot(data["task_seconds"], values, marker="o", label=name)
            ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
            ax.set_xscale("log")
            ax.set_xlabel("task duration (s)")
            ax.set_ylabel("speed-up over serial")
            ax.set_title("Crossover: when does handing off a task pay?")
            ax.legend()
        elif section.id == "scaling" and "scaling" in section.series:
            data = section.series["scaling"]
            fig, ax = plt.subplots(figsize=(7, 4.5))
            workers = data["workers"]
            ax.plot(workers, workers, color="grey", linestyle="--", label="ideal")
            for name, values in data["speedup"].items():
                ax.plot(workers, values, marker="o", label=name)
            ax.set_xlabel("workers")
            ax.set_ylabel("speed-up")
            ax.set_title(section.title)
            ax.legend(fontsize=8)
        elif section.id == "memory" and "GB_per_s" in section.series:
            data = section.series["GB_per_s"]
            fig, ax = plt.subplots(figsize=(8, 4))
            ax.barh(list(data), list(data.values()))
            ax.invert_yaxis()
            ax.set_xlabel("GB/s")
            ax.set_title(section.title)
        if fig is not None:
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
            section.plots.append(path)
            written.append(path)
    return written
