"""Is the machine busy?  Load average, this thread's share of a CPU, and noisy rows.

A benchmark on a machine that other processes use measures them too.  Three
signs, each measured, none guessed:

* the load average before the run (runnable processes, from the kernel),
  against the CPUs available;
* the CPU share of a short pure-Python loop: the CPU time this thread got
  over the wall time it took (1.0 on an idle core; lower when others take
  turns on it), before and after the run;
* rows whose median is far above their best (``report.NOISY``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from .report import NOISY, Report

#: A load average at or above this fraction of the CPUs available, before the
#: run starts, means other work competes for them (where /proc/stat is missing).
LOAD_SHARE_BUSY = 0.5
#: Other processes using at least this share of all CPUs just before the run.
OTHERS_BUSY = 0.25
#: A CPU share below this means another process took turns on our core.
CPU_SHARE_BUSY = 0.85
#: Noisy rows count as a sign when there are at least this many, and this share of all.
NOISY_ROWS_MIN = 3
NOISY_ROWS_SHARE = 0.1


def load_average() -> float | None:
    """The 1-minute load average, None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def others_cpu_use(seconds: float = 0.25) -> float | None:
    """Share of all CPUs busy while this process sleeps ``seconds`` (Linux ``/proc/stat``), else None.

    What other processes use right now; the load average lags by a minute and
    counts a benchmark that just ended, this does not.
    """

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    first = sample()
    time.sleep(seconds)
    second = sample()
    if first is None or second is None or second[1] <= first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1])


def cpu_share(seconds: float = 0.1) -> float:
    """CPU time this thread got per second of wall time while it spun for ``seconds``."""
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    while time.perf_counter() - wall0 < seconds:
        sum(range(1000))
    wall = time.perf_counter() - wall0
    return (time.thread_time() - cpu0) / wall if wall > 0 else 1.0


@dataclass
class BusyProbe:
    """The signs gathered around one run; :meth:`warnings` turns them into sentences."""

    cpus: int
    load_before: float | None = None
    shares: list[float] = field(default_factory=list)
    others_before: float | None = None  # share of all CPUs others used just before the run

    @classmethod
    def before(cls, cpus: int) -> BusyProbe:
        return cls(cpus, load_average(), [cpu_share()], others_cpu_use())

    def after(self) -> None:
        self.shares.append(cpu_share())

    def facts(self) -> dict[str, object]:
        return {
            "load_average_before": None if self.load_before is None else round(self.load_before, 2),
            "cpu_share_probes": [round(s, 2) for s in self.shares],
            "others_cpu_use_before": None if self.others_before is None else round(self.others_before, 2),
        }

    def warnings(self, report: Report) -> list[str]:
        found = []
        if self.others_before is not None:
            if self.others_before >= OTHERS_BUSY:
                found.append(
                    f"other processes used {self.others_before:.0%} of the {self.cpus} CPU(s) before the run"
                )
        elif self.load_before is not None and self.load_before >= LOAD_SHARE_BUSY * self.cpus:
            found.append(f"the load average was {self.load_before:.2f} on {self.cpus} CPU(s) before the run")
        low = [s for s in self.shares if s < CPU_SHARE_BUSY]
        if low:
            found.append(
                f"a single-threaded probe got only {min(low):.0%} of a CPU "
                f"(probes: {', '.join(f'{s:.0%}' for s in self.shares)})"
            )
        rows = [row for section in report.sections for row in section.rows if row.noise is not None]
        noisy = [row for row in rows if row.noisy]
        spread = f"{len(noisy)} of {len(rows)} timed rows had a median more than {NOISY:.0%} above their best (marked ⚠)"
        out = []
        if found:
            out.append(
                "This machine was busy while it was measured: "
                + "; ".join([*found, spread] if noisy else found)
                + ". Other processes took CPU time, so ratios can be off; rerun when it is quiet, or with "
                "--retry-noisy to re-measure the sections with noisy rows."
            )
        elif len(noisy) >= max(
            NOISY_ROWS_MIN, NOISY_ROWS_SHARE * len(rows)
        ):  # a stray row or two: no warning
            out.append(
                f"{spread}: their timings varied between repeats (process starts and hand-offs do, even on "
                "a quiet machine), so their ratios are less certain; --retry-noisy measures those sections "
                "again."
            )
        return out
