"""The ``manycore`` command line."""

from __future__ import annotations

import platform
import sys
from typing import Any, TextIO

import click
from rich.console import Console
from rich.table import Table

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="manycore")
def main() -> None:
    """manycore: every way of running Python in parallel, measured on your machine."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON instead of a table.")
def info(as_json: bool) -> None:
    """Show this machine and build: cores, Python (free-threaded? GIL on?), compiler, OpenMP, SIMD, pool size."""
    from . import _build, native
    from .bench._context import cpu_model

    build = native.build_info()
    facts: dict[str, object] = {
        "manycore": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "python_build": _build.describe(),
        "free_threaded_build": _build.free_threaded_build(),
        "gil_enabled": _build.gil_enabled(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus_available": build["cpu_count"],
        "default_pool_threads": native.default_threads(),
        "compiler": build["compiler"],
        "openmp_at_build": build["openmp"],
        "simd_selected": build["simd"],
        "max_threads": build["max_threads"],
        "ctrl_c_poll_ms": build["poll_interval_ms"],
    }
    if as_json:
        import json

        click.echo(json.dumps(facts, indent=2))
        return
    table = Table(title="manycore info", show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value")
    for key, value in facts.items():
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)


@main.command("fetch")
@click.argument("urls", nargs=-1, metavar="[URL]...")
@click.option(
    "--demo",
    is_flag=True,
    help="Start an embedded JSON API on 127.0.0.1 (a free port; offline) shaped like the seed's "
    "jsonplaceholder example, fetch /todos/1..COUNT from it and upper-case each title (the seed's "
    "process_data). URLs given as well are fetched after the demo ones.",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=100, show_default=True, help="--demo: todos to fetch."
)
@click.option(
    "--demo-latency",
    "demo_latency_s",
    type=click.FloatRange(min=0),
    default=0.05,
    show_default=True,
    help="--demo: seconds the API waits before each answer.",
)
@click.option(
    "--demo-jitter",
    "demo_jitter_s",
    type=click.FloatRange(min=0),
    default=0.05,
    show_default=True,
    help="--demo: up to this many extra random seconds per answer.",
)
@click.option(
    "--demo-fail-rate",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="--demo: fraction of requests answered 503 (to watch the retries work).",
)
@click.option(
    "-i",
    "--input",
    "input_file",
    type=click.File("r"),
    default=None,
    help="Read more URLs from this file ('-' for stdin): one per line, '#' comments allowed.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Requests in flight at most (also the connection pool size).",
)
@click.option(
    "--per-host",
    type=click.IntRange(min=1),
    default=None,
    help="Requests in flight at most per scheme://host:port (default: no extra limit).",
)
@click.option(
    "--deadline",
    "deadline_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds for the whole run; unfinished URLs are then recorded as 'deadline' errors.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds for one request in total (connect, headers, whole body); retried on expiry.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Further attempts after a connection error, timeout, 429 or 5xx (never other 4xx).",
)
@click.option(
    "--backoff",
    "backoff_s",
    type=click.FloatRange(min=0),
    default=0.25,
    show_default=True,
    help="Base seconds of the exponential backoff with jitter; a Retry-After header wins.",
)
@click.option(
    "--parse",
    type=click.Choice(["json", "text", "bytes"]),
    default="json",
    show_default=True,
    help="How to read each body.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=16 * 1024 * 1024,
    show_default=True,
    help="Largest body accepted (after decompression); bigger ones are 'too_large' errors.",
)
@click.option(
    "--process-workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="--demo: run the title upper-casing in a process pool of this many workers "
    "(loop.run_in_executor) instead of on the event loop.",
)
@click.option("--no-process", is_flag=True, help="--demo: keep the todos as fetched (skip process_data).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print every result and the summary as JSON on stdout (no progress bar, no tables).",
)
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar (stderr).")
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Rows of the results table: the first SHOW results and up to SHOW failures.",
)
def fetch(
    urls: tuple[str, ...],
    demo: bool,
    count: int,
    demo_latency_s: float,
    demo_jitter_s: float,
    demo_fail_rate: float,
    input_file: TextIO | None,
    concurrency: int,
    per_host: int | None,
    deadline_s: float | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    parse: str,
    max_bytes: int,
    process_workers: int,
    no_process: bool,
    as_json: bool,
    no_progress: bool,
    show: int,
) -> None:
    """Fetch many URLs concurrently (asyncio + aiohttp) and summarise the run.

    One session, at most --concurrency requests in flight, each bounded by --timeout, the whole
    run by --deadline; connection errors, timeouts, 429 and 5xx are retried with backoff. Every
    URL ends as one record (ok, or why it failed); the summary counts ok / failed / retried,
    p50 / p95 latency and requests per second. Exit status: 0 when every URL succeeded, 1 when
    some failed, 2 for bad usage.

    \b
    Examples:
      manycore fetch --demo
      manycore fetch --demo --count 1000 --concurrency 200 --process-workers 2
      manycore fetch https://example.org/a https://example.org/b --deadline 10 --json
    """
    from .fetch.command import read_url_file, run_fetch

    targets = list(urls)
    if input_file is not None:
        targets += read_url_file(input_file)
    if not targets and not demo:
        raise click.UsageError("give at least one URL (or --input FILE, or --demo)")
    try:
        status = run_fetch(
            urls=targets,
            demo=demo,
            count=count,
            demo_latency_s=demo_latency_s,
            demo_jitter_s=demo_jitter_s,
            demo_fail_rate=demo_fail_rate,
            concurrency=concurrency,
            per_host=per_host,
            deadline_s=deadline_s,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            parse=parse,  # type: ignore[arg-type]  # click.Choice guarantees a valid mode
            max_bytes=max_bytes,
            process_workers=process_workers,
            no_process=no_process,
            as_json=as_json,
            progress=not no_progress,
            show=show,
        )
    except ValueError as exc:  # an argument out of range (concurrency, timeouts): a usage error
        raise click.UsageError(str(exc)) from None
    sys.exit(status)


@main.group("examples")
def examples_group() -> None:
    """The course unit's programs, one per file, runnable and corrected.

    \b
    Examples:
      manycore examples list
      manycore examples show condition_producer_consumer
      manycore examples show threadmodule_start_threads --file threadmodule.c
      manycore examples run data_parallelism_process_pool --small

    What was corrected, and why, is in docs/seed-errata.md.
    """


def _example_or_usage_error(name: str) -> Any:
    from . import examples

    try:
        return examples.get(name)
    except examples.UnknownExample as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None


@examples_group.command("list")
def examples_list() -> None:
    """List the examples, grouped by the unit's sections, in the unit's order."""
    from . import examples

    width = max(len(e.name) for e in examples.EXAMPLES)
    for section, items in examples.by_section().items():
        click.echo(section)
        for e in items:
            extra = f"  [+ {', '.join(e.companions)}]" if e.companions else ""
            click.echo(f"  {e.name:<{width}}  {e.title}{extra}")


@examples_group.command("show")
@click.argument("name")
@click.option(
    "--file",
    "file_name",
    default=None,
    metavar="FILE",
    help="Print this companion file (the C or Cython source an example shows) instead.",
)
def examples_show(name: str, file_name: str | None) -> None:
    """Print an example's source: syntax-highlighted on a terminal, plain otherwise."""
    example = _example_or_usage_error(name)
    try:
        text: str = example.source(file_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--file'") from None
    if sys.stdout.isatty():
        from rich.syntax import Syntax

        shown = file_name or example.file
        lexer = "c" if shown.endswith(".c") else "cython" if shown.endswith(".pyx") else "python"
        Console().print(Syntax(text, lexer, theme="ansi_dark"), soft_wrap=True)
    else:
        click.echo(text, nl=False)


@examples_group.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.option("--small", is_flag=True, help="Small sizes and short sleeps: seconds instead of minutes.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def examples_run(name: str, small: bool, args: tuple[str, ...]) -> None:
    """Run an example in a fresh interpreter; exit with its exit code.

    Extra ARGS are passed to the example.
    """
    from .examples import run

    example = _example_or_usage_error(name)
    sys.exit(run(example.name, small=small, args=args))


def _register_commands() -> None:
    from ._advise_command import advise_command
    from .bench.command import bench

    main.add_command(bench)
    main.add_command(advise_command)


_register_commands()


if __name__ == "__main__":
    main()
