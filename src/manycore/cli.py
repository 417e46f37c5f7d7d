"""The ``manycore`` command line."""

from __future__ import annotations

import platform
import sys

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
    """Show this machine and build: cores, Python, compiler, OpenMP, SIMD level, pool size."""
    from . import native

    build = native.build_info()
    facts: dict[str, object] = {
        "manycore": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
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


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
