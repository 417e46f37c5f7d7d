"""Work in batches: how ``pmap`` reads its input and runs a chunk, at C speed where possible.

A *batch* is ``(indexes, values, failures)``: the input positions of a chunk,
one value per position (``None`` where the item failed) and
``{position_in_batch: (exception, traceback_text)}``.  Keeping results in
lists lets every layer hand a whole chunk on at once, and lets the consumer
iterate them with ``itertools.chain`` (no Python frame per item).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FunctionType

# Run from its code inside each subinterpreter of an InterpreterExecutor (executors/_interp_driver.py),
# where every import is paid again at each start: typing only for type checkers (which read a name
# TYPE_CHECKING as the constant), traceback only when a chunk fails.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Failures = dict[int, tuple[BaseException, str]]
Batch = tuple[Sequence[int], "list[Any]", Failures]


def format_tb(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def run_chunk(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    catch: type[BaseException] = Exception,
    with_traceback_text: bool = False,
    into: tuple[list[Any], Failures] | None = None,
) -> tuple[list[Any], Failures]:
    """``[fn(x) for x in items]`` with failures recorded, not raised.

    The values are appended to a list, so when ``fn`` raises, ``len(values)``
    is the failed position; the run then resumes after it.  ``into``: the
    ``(values, failures)`` of an earlier run to go on appending to (its
    positions continue).
    """
    values, failures = into if into is not None else ([], {})
    it = iter(items)
    # A Python function is called from a Python loop: CPython 3.11+ runs such a
    # call inside the same evaluation loop (no C-level call), as a list
    # comprehension does.  Anything else goes through C-level map: no bytecode
    # per item at all.
    loop = _python_loop if isinstance(fn, FunctionType) else _c_loop
    while True:
        try:
            loop(fn, it, values)
            return values, failures
        except catch as exc:
            failures[len(values)] = (exc, format_tb(exc) if with_traceback_text else "")
            values.append(None)


def _python_loop(fn: Callable[[Any], Any], it: Iterator[Any], values: list[Any]) -> None:
    for item in it:
        values.append(fn(item))


def _c_loop(fn: Callable[[Any], Any], it: Iterator[Any], values: list[Any]) -> None:
    values.extend(map(fn, it))  # extend keeps what it appended before an exception


class Input:
    """The lazily read input of a map: contiguous chunks, and the error that ended it."""

    def __init__(self, iterator: Iterator[Any], *, safe: bool = False) -> None:
        self._it = iterator
        self._safe = safe  # iterating cannot raise (a list, tuple or range)
        self.position = 0
        self.done = False
        self.error: BaseException | None = None

    def take_rest(self) -> tuple[range, Iterator[Any]] | None:
        """All remaining items as an iterator, when iterating them cannot raise (else None).

        Lets a serial run go straight over a list without copying it in chunks.
        """
        if not self._safe or self.done:
            return None
        self.done = True
        start = self.position
        remaining = getattr(self._it, "__length_hint__", lambda: 0)()
        self.position += remaining
        return range(start, self.position), self._it

    def take(self, n: int) -> tuple[range, list[Any]]:
        """Up to ``n`` next items.  If the input raises, the items read before are kept."""
        chunk: list[Any] = []
        if not self.done:
            try:
                chunk.extend(itertools.islice(self._it, n))  # extend keeps what it got before an error
            except Exception as exc:
                self.error = exc
                self.done = True
            if len(chunk) < n:
                self.done = True
        start = self.position
        self.position += len(chunk)
        return range(start, self.position), chunk
