"""``manycore bench``: measure every mechanism on this machine, side by side, in one run.

Sections (``--only`` takes these ids)::

    seed      1. sum of squares on every mechanism, exactness checked
    memory    2. memory-bound sum/dot vs copy bandwidth
    overhead  3. hand-off cost per mechanism and the crossover task size
    gil       4. CPU-bound Python and GIL-releasing work on threads, processes, ...
    io        5. sequential vs threads vs asyncio on the local demo API
    scaling   6. speed-up against worker count

then "On this machine" (``verdict``): the winner for each kind of work,
computed from the sections that ran.  Every ratio in the report is between
peers measured in the same run; every sentence is computed from the numbers
(``words``).  A busy machine is detected and warned about (``_busy``);
``retry_noisy`` re-measures sections with noisy rows and keeps the quietest.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from collections.abc import Callable

from . import verdict
from ._busy import BusyProbe
from ._context import BenchContext, cpu_count, cpu_model
from .report import SCHEMA, Report, Section, validate_report

SECTIONS: dict[str, str] = {
    "seed": "sum of squares on every mechanism, exactness checked (the course table, redone)",
    "memory": "memory-bound sum/dot vs copy bandwidth",
    "overhead": "hand-off cost per mechanism and the crossover task size",
    "gil": "CPU-bound Python and GIL-releasing work on threads, processes, subinterpreters",
    "io": "sequential vs threads vs asyncio on a local JSON API",
    "scaling": "speed-up against worker count",
}

__all__ = [
    "SCHEMA",
    "SECTIONS",
    "BenchContext",
    "Report",
    "Section",
    "machine_facts",
    "run",
    "validate_report",
]


def machine_facts() -> dict[str, object]:
    from .. import __version__, _build, native

    build = native.build_info()
    return {
        "cpu_model": cpu_model(),
        "cpus_available": cpu_count(),
        "simd": build["simd"],
        "openmp_at_build": build["openmp"],
        "compiler": build["compiler"],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": _build.describe(),
        "free_threaded_build": _build.free_threaded_build(),
        "gil_enabled": _build.gil_enabled(),
        "platform": platform.platform(),
        "manycore": __version__,
    }


def run(
    only: list[str] | None = None,
    *,
    quick: bool = False,
    tiny: bool = False,
    threads: int | None = None,
    retry_noisy: int = 0,
    say: Callable[[str], None] | None = None,
    on_section: Callable[[Section], None] | None = None,
) -> Report:
    """Run the chosen sections (default: all), then the verdict, and return the report.

    ``retry_noisy``: how many more times a section with noisy rows is measured
    again; the attempt with the fewest noisy rows is kept whole, so the
    ratios inside a section still come from one run.
    """
    chosen = list(SECTIONS) if not only else list(dict.fromkeys(only))
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    if isinstance(retry_noisy, bool) or not isinstance(retry_noisy, int) or retry_noisy < 0:
        raise ValueError(f"retry_noisy must be an int >= 0, got {retry_noisy!r}")
    ctx = BenchContext(quick=quick, tiny=tiny, threads=threads or cpu_count(), say=say or (lambda m: None))
    report = Report(machine=machine_facts(), quick=quick or tiny)
    report.machine["threads_used"] = ctx.threads
    probe = BusyProbe.before(cpu_count())
    for name in chosen:
        section = _measure(name, ctx)
        for attempt in range(2, retry_noisy + 2):
            if not section.noisy_rows():
                break
            ctx.say(f"{name}: re-measuring ({len(section.noisy_rows())} noisy rows)")
            again = _measure(name, ctx)
            again.attempts = attempt
            if len(again.noisy_rows()) < len(section.noisy_rows()):
                section = again
            else:
                section.attempts = attempt
        if section.attempts > 1:
            section.notes.append(
                f"Measured {section.attempts} times for noisy rows (--retry-noisy); the attempt kept has "
                f"{len(section.noisy_rows())} noisy row(s)."
            )
        report.sections.append(section)
        if on_section is not None:
            on_section(section)
    probe.after()
    report.machine.update(probe.facts())
    report.warnings = probe.warnings(report)
    report.sections.append(verdict.build(report))
    if on_section is not None:
        on_section(report.sections[-1])
    return report


def _measure(name: str, ctx: BenchContext) -> Section:
    module = importlib.import_module(f"{__name__}.{name}")
    started = time.perf_counter()
    try:
        section: Section = module.run(ctx)
    except Exception as exc:  # one broken section must not lose the others
        section = Section(name, f"{name}: failed")
        section.notes.append(f"section failed: {type(exc).__name__}: {exc}")
        print(f"manycore bench: section {name!r} failed: {exc!r}", file=sys.stderr)
    section.seconds = time.perf_counter() - started
    return section
