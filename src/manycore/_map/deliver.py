"""Phase 4 of a map: hand results to the consumer, in input order or as they finish.

Batches arrive as ``(indexes, values, failures)``.  In order, a batch that
overtakes a slower one waits in a reorder buffer (bounded: the dispatcher
stops handing out work while :class:`Backlog` is full).  A failure is raised
(``errors="raise"``, with the worker's traceback and a note naming the item)
or delivered as a :class:`~manycore.errors.TaskError` (``errors="collect"``).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .._workers.batches import Batch, Failures
from ..errors import TaskError, attach_traceback


@dataclass
class Backlog:
    limit: int
    size: int = 0

    def has_room(self) -> bool:
        return self.size < self.limit


def deliver(batches: Iterator[Batch], ordered: bool, errors: str, backlog: Backlog) -> Iterator[list[Any]]:
    """Batches in, lists of output values out (in input order if ``ordered``)."""
    reorder = _Reorder()
    try:
        for indexes, values, failures in batches:
            if failures and errors == "collect":
                values, failures = _collected(indexes, values, failures), {}
            if not ordered:
                if failures:
                    first = min(failures)
                    yield values[:first]
                    raise_failure(indexes[first], *failures[first])
                yield values
                continue
            reorder.add(indexes, values, failures)
            yield from reorder.flush()
            backlog.size = reorder.size()
        yield from reorder.leftovers()  # the input ended early (an input error): the rest, in order
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _collected(indexes: Sequence[int], values: list[Any], failures: Failures) -> list[Any]:
    """``errors="collect"``: a :class:`TaskError` in place of each failed value."""
    values = list(values)
    for pos, (exc, tb) in failures.items():
        values[pos] = TaskError(indexes[pos], exc, tb or format_exception(exc))
    return values


def _values_then_failure(first_index: int, values: list[Any], failures: Failures) -> Iterator[list[Any]]:
    """The values of a contiguous run up to its first failure, then that failure raised."""
    if failures:
        first = min(failures)
        yield values[:first]
        raise_failure(first_index + first, *failures[first])
    yield values


class _Reorder:
    """Results that overtook a slower item, waiting for it.

    Contiguous batches wait whole (keyed by their first index), so reordering
    costs nothing per item; only the single-item batches of careful re-runs
    go through a per-item buffer.  The two are kept apart: a value is never
    mistaken for a batch, whatever it is.
    """

    def __init__(self) -> None:
        self.runs: dict[int, tuple[list[Any], Failures]] = {}  # first index -> (values, failures)
        self.singles: dict[
            int, tuple[Any, tuple[BaseException, str] | None]
        ] = {}  # index -> (value, failure)
        self.next_index = 0

    def add(self, indexes: Sequence[int], values: list[Any], failures: Failures) -> None:
        if not len(indexes):
            return
        if _contiguous(indexes):
            self.runs[indexes[0]] = (values, failures)
        else:
            for pos, index in enumerate(indexes):
                self.singles[index] = (values[pos], failures.get(pos))

    def size(self) -> int:
        return len(self.singles) + sum(len(v) for v, _ in self.runs.values())

    def flush(self) -> Iterator[list[Any]]:
        """Everything that is now in order."""
        while True:
            if self.next_index in self.runs:
                values, failures = self.runs.pop(self.next_index)
                yield from _values_then_failure(self.next_index, values, failures)
                self.next_index += len(values)
            elif self.next_index in self.singles:
                yield from self._flush_singles()
            else:
                return

    def _flush_singles(self) -> Iterator[list[Any]]:
        ready: list[Any] = []
        while self.next_index in self.singles:
            value, failure = self.singles.pop(self.next_index)
            if failure is not None:
                if ready:
                    yield ready
                raise_failure(self.next_index, *failure)
            ready.append(value)
            self.next_index += 1
        yield ready

    def leftovers(self) -> Iterator[list[Any]]:
        """What waits behind a gap that will never fill (the input raised), in input order."""
        starts = sorted([*self.runs, *self.singles])
        for index in starts:
            if index in self.runs:
                values, failures = self.runs.pop(index)
                yield from _values_then_failure(index, values, failures)
            else:
                value, failure = self.singles.pop(index)
                if failure is not None:
                    raise_failure(index, *failure)
                yield [value]


def _contiguous(indexes: Sequence[int]) -> bool:
    return isinstance(indexes, range) or indexes[-1] - indexes[0] == len(indexes) - 1


def raise_failure(index: int, exc: BaseException, tb: str) -> None:
    # The worker's traceback text travels as __cause__ even when the exception
    # arrived with a traceback object (tblib, installed by dask, pickles those).
    if tb:
        attach_traceback(exc, tb)
    if hasattr(exc, "add_note"):
        exc.add_note(f"raised by item {index} of pmap")
    raise exc


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
