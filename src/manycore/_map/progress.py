"""A rich progress bar over a map's batches (``progress=True``), on a terminal only."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any


def with_progress(batches: Iterator[list[Any]], length: int) -> Iterator[list[Any]]:
    if not sys.stderr.isatty():
        yield from batches
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("pmap"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("pmap", total=length if length >= 0 else None, rate="")
        started = time.monotonic()
        done = 0
        for batch in batches:
            done += len(batch)
            elapsed = time.monotonic() - started
            bar.update(task, advance=len(batch), rate=f"{done / elapsed:,.0f}/s" if elapsed > 0 else "")
            yield batch
