"""The ``manycore advise`` command (registered by manycore.cli)."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command("advise")
@click.argument("function", metavar="MODULE:FUNCTION")
@click.option(
    "--sample-args",
    "sample_args",
    metavar="JSON",
    help='Sample input as a JSON list; each element is one argument, e.g. "[100000, 200000]".',
)
@click.option(
    "--sample-module",
    "sample_module",
    metavar="MODULE:ATTR",
    help="Sample input from Python: an iterable, or a callable returning one.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Workers to try (default: every available CPU).")
def advise_command(
    function: str, sample_args: str | None, sample_module: str | None, workers: int | None
) -> None:
    """Profile FUNCTION on sample input and recommend how to parallelise it.

    Shows the cProfile hotspots, classifies the function (CPU-bound Python,
    GIL-releasing, I/O-bound) from measured CPU vs wall time and a threads
    trial, times the candidate backends through pmap, and prints the
    recommendation with its measured speed-up and the code to use.
    """
    from .advise import advise, load_function

    if (sample_args is None) == (sample_module is None):
        raise click.UsageError("give exactly one of --sample-args or --sample-module")
    try:
        fn = load_function(function)
    except (ValueError, ImportError, AttributeError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="MODULE:FUNCTION") from exc
    sample: Any
    if sample_args is not None:
        try:
            sample = json.loads(sample_args)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--sample-args") from exc
        if not isinstance(sample, list):
            raise click.BadParameter("must be a JSON list", param_hint="--sample-args")
    else:
        assert sample_module is not None
        try:
            source = load_function(sample_module) if ":" in sample_module else None
        except TypeError:
            module_name, _, attr = sample_module.partition(":")
            import importlib

            source = getattr(importlib.import_module(module_name), attr)
        except (ValueError, ImportError, AttributeError) as exc:
            raise click.BadParameter(str(exc), param_hint="--sample-module") from exc
        if source is None:
            raise click.BadParameter("expected MODULE:ATTR", param_hint="--sample-module")
        sample = list(source() if callable(source) else source)
    try:
        result = advise(fn, sample, workers=workers, name=function)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(result.report())
