"""The ``manycore bench`` command (registered by manycore.cli)."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import click

from . import SECTIONS
from ._busy import OTHERS_BUSY, others_cpu_use
from ._context import cpu_count
from .report import Report


@click.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer repeats: under a minute on 2 cores.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(list(SECTIONS)),
    help="Run only this section (repeatable): " + ", ".join(f"{k} ({v})" for k, v in SECTIONS.items()) + ".",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, writable=True), help="Write the report as JSON."
)
@click.option(
    "--markdown",
    "md_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report as Markdown.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report as one self-contained HTML file (tables, verdict and plots embedded).",
)
@click.option(
    "--plots", "plots_dir", type=click.Path(file_okay=False), help="Write PNG plots into this directory."
)
@click.option(
    "--retry-noisy",
    is_flag=True,
    help="Measure a section again (up to 2 more times) when some of its rows were noisy "
    "(the machine was busy), keeping the quietest attempt.",
)
@click.option("--threads", type=click.IntRange(min=1), help="Workers to use (default: every available CPU).")
@click.option("--tiny", is_flag=True, hidden=True, help="Test mode: the smallest sizes.")
def bench(
    quick: bool,
    only: tuple[str, ...],
    json_path: str | None,
    md_path: str | None,
    html_path: str | None,
    plots_dir: str | None,
    retry_noisy: bool,
    threads: int | None,
    tiny: bool,
) -> None:
    """Measure every way of running Python in parallel on this machine, side by side.

    Prints one table per section with best and median times, the noise
    (median vs best; ⚠ marks a row the machine disturbed) and ratios between
    peers measured in the same run, then "On this machine": the mechanism
    that won for each kind of work, by how much, and from which task size.
    A busy machine is detected and warned about.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .._extras import MissingExtraError, require

    try:  # the bench extra: a clear error before anything runs, not an ImportError halfway
        for module in ("numpy", "aiohttp", *(["matplotlib"] if plots_dir or html_path else [])):
            require(module, extra="bench", feature="manycore bench")
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from None

    from . import run

    out = Console()
    err = Console(stderr=True)

    def show(section: object) -> None:
        from .report import Section

        assert isinstance(section, Section)
        table = Table(title=f"{section.title}  [dim]({section.seconds:.1f} s)[/dim]", title_justify="left")
        for i, head in enumerate(section.head()):
            table.add_column(head.replace("_", " "), justify="left" if i == 0 else "right")
        for row in section.rows:
            table.add_row(*section.cells(row))
        out.print(table)
        for note in section.notes:
            out.print(f"  • {note}")
        out.print()

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("starting", total=None)
        others = others_cpu_use()
        if others is not None and others >= OTHERS_BUSY:
            err.print(
                f"[yellow]warning:[/yellow] other processes use {others:.0%} of the {cpu_count()} CPU(s): "
                "the numbers will show it."
            )
        report = run(
            list(only) or None,
            quick=quick,
            tiny=tiny,
            threads=threads,
            retry_noisy=2 if retry_noisy else 0,
            say=lambda message: progress.update(task, description=message),
            on_section=show,
        )
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")
    _write_files(report, out, json_path, md_path, html_path, plots_dir)
    failed = [s.id for s in report.sections if any(n.startswith("section failed") for n in s.notes)]
    if failed:
        raise click.ClickException(f"section(s) failed: {', '.join(failed)}")


def _write_files(
    report: Report,
    out: Any,
    json_path: str | None,
    md_path: str | None,
    html_path: str | None,
    plots_dir: str | None,
) -> None:
    from .html import to_html
    from .plots import write_plots

    def write(path: str, text: str, kind: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out.print(f"{kind}: {path}")

    if html_path and not plots_dir:  # the page embeds its plots; nobody asked for the files
        with tempfile.TemporaryDirectory(prefix="manycore-plots-") as tmp:
            write_plots(report, tmp)
            write(html_path, to_html(report), "html")
        for section in report.sections:
            section.plots = []
    else:
        if plots_dir:
            for path in write_plots(report, plots_dir):
                out.print(f"plot: {path}")
        if html_path:
            write(html_path, to_html(report), "html")
    if json_path:
        write(json_path, report.to_json(), "json")
    if md_path:
        base = os.path.dirname(os.path.abspath(md_path))
        for section in report.sections:  # the Markdown links its plots relative to itself
            section.plots = [os.path.relpath(os.path.abspath(p), base) for p in section.plots]
        write(md_path, report.to_markdown(), "markdown")
