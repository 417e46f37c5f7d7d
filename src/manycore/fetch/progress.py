"""A rich progress bar fed one :class:`FetchResult` at a time (``progress=True`` and the CLI)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .result import FetchResult


class FetchProgress:
    """A progress bar with running ok / failed / retried counts.

    Use it as a context manager and pass :meth:`update` as ``on_result``::

        with FetchProgress(len(urls)) as bar:
            results = fetch_all(urls, on_result=bar.update)
    """

    def __init__(self, total: int, *, console: Console | None = None, description: str = "fetch") -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self.retried = 0
        self._description = description
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/] "
                "[yellow]{task.fields[retried]} retried[/]"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console if console is not None else Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, ok=0, failed=0, retried=0)

    def update(self, result: FetchResult) -> None:
        """Count one finished URL (call from the event loop's thread)."""
        if result.ok:
            self.ok += 1
        else:
            self.failed += 1
        if result.retried:
            self.retried += 1
        self._progress.update(self._task, advance=1, ok=self.ok, failed=self.failed, retried=self.retried)

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def __enter__(self) -> FetchProgress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
