"""The ``manycore bench`` command (registered by manycore.cli)."""

from __future__ import annotations

import contextlib
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
    with contextlib.ExitStack() as stack:
        if html_path and not plots_dir:  # the HTML embeds them; no directory asked for
            plots_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="manycore-plots-"))
            keep_plots = False
        else:
            keep_plots = True
        _write_files(report, out, json_path, md_path, html_path, plots_dir, keep_plots)
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
    keep_plots: bool,
) -> None:
    from .plots import write_plots

    if plots_dir:
        for path in write_plots(report, plots_dir):
            if keep_plots:
                out.print(f"plot: {path}")
    if html_path:
        from .html import to_html

        with open(html_path, "w", encoding="utf-8") as f:
            f.write(to_html(report))
        out.print(f"html: {html_path}")
    if not keep_plots:
        for section in report.sections:
            section.plots = []
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(report.to_json())
        out.print(f"json: {json_path}")
    if md_path:
        if plots_dir and keep_plots:
            base = os.path.dirname(os.path.abspath(md_path))
            for section in report.sections:
                section.plots = [os.path.relpath(os.path.abspath(p), base) for p in section.plots]
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(report.to_markdown())
        out.print(f"markdown: {md_path}")
