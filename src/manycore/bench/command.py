"""The ``manycore bench`` command (registered by manycore.cli)."""

from __future__ import annotations

import os
import sys

import click

from . import SECTIONS


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
    "--plots", "plots_dir", type=click.Path(file_okay=False), help="Write PNG plots into this directory."
)
@click.option("--threads", type=click.IntRange(min=1), help="Workers to use (default: every available CPU).")
@click.option("--tiny", is_flag=True, hidden=True, help="Test mode: the smallest sizes.")
def bench(
    quick: bool,
    only: tuple[str, ...],
    json_path: str | None,
    md_path: str | None,
    plots_dir: str | None,
    threads: int | None,
    tiny: bool,
) -> None:
    """Measure every way of running Python in parallel on this machine, side by side.

    Prints one table per section with best and median times, the noise
    (median vs best) and ratios between peers measured in the same run.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .._extras import MissingExtraError, require

    try:  # the bench extra: a clear error before anything runs, not an ImportError halfway
        for module in ("numpy", "aiohttp", *(["matplotlib"] if plots_dir else [])):
            require(module, extra="bench", feature="manycore bench")
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from None

    from . import run
    from .plots import write_plots
    from .report import fmt_noise, fmt_seconds, fmt_value

    out = Console()
    err = Console(stderr=True)

    def show(section: object) -> None:
        from .report import Section

        assert isinstance(section, Section)
        table = Table(title=f"{section.title}  [dim]({section.seconds:.1f} s)[/dim]", title_justify="left")
        table.add_column("mechanism")
        for head in ("time", "median", "noise", *section.columns):
            table.add_column(head.replace("_", " "), justify="right")
        for row in section.rows:
            cells = [fmt_seconds(row.time_s), fmt_seconds(row.median_s), fmt_noise(row.noise)]
            cells += [fmt_value(row.values.get(c)) for c in section.columns]
            table.add_row(row.name, *cells)
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
        report = run(
            list(only) or None,
            quick=quick,
            tiny=tiny,
            threads=threads,
            say=lambda message: progress.update(task, description=message),
            on_section=show,
        )
    if plots_dir:
        for path in write_plots(report, plots_dir):
            out.print(f"plot: {path}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(report.to_json())
        out.print(f"json: {json_path}")
    if md_path:
        if plots_dir:
            base = os.path.dirname(os.path.abspath(md_path))
            for section in report.sections:
                section.plots = [os.path.relpath(os.path.abspath(p), base) for p in section.plots]
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(report.to_markdown())
        out.print(f"markdown: {md_path}")
    failed = [s.id for s in report.sections if any(n.startswith("section failed") for n in s.notes)]
    if failed:
        raise click.ClickException(f"section(s) failed: {', '.join(failed)}")
