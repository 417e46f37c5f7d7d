"""The one failure report every worker process sends back: :class:`FailureReport`.

An exception raised in a worker must reach the parent even when it cannot
travel as itself: its class may not pickle (a local class), may not rebuild
(a custom ``__init__``), or may exist only in the worker.  The report always
carries the type name, the message and the worker-side traceback text, and
the exception itself pickled when it survives a round trip in the worker.
The parent gets the original back when it can rebuild it, else a
:class:`~manycore.errors.RemoteError` naming the type; either way with the
traceback text as ``__cause__`` (a :class:`~manycore.errors.RemoteTraceback`).

pmap's process engine and ``Pipeline``'s process stages send it;
``ProcessExecutor`` (on the stdlib's pool for now) sends :func:`portable`
exceptions the same way.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import Any

import cloudpickle

from ..errors import RemoteError, RemoteTraceback

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def type_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@dataclass(frozen=True)
class FailureReport:
    """An exception as it travels from a worker to its parent (always picklable)."""

    type_name: str
    message: str
    tb_text: str
    pickled: bytes | None  # the exception, if it survived pickle.loads(pickle.dumps(exc)) in the worker

    @classmethod
    def of(cls, exc: BaseException, tb_text: str | None = None) -> FailureReport:
        """Worker side: the report of ``exc`` (``tb_text``: its traceback, if already formatted)."""
        try:
            message = str(exc)
        except Exception:
            message = "<str() failed>"
        return cls(
            type_name(exc), message, traceback_text(exc) if tb_text is None else tb_text, _pickled(exc)
        )

    def exception(self) -> BaseException:
        """Parent side: the original exception if it rebuilds here, else a :class:`RemoteError`.

        Its ``__cause__`` is the worker-side traceback text.
        """
        exc: BaseException | None = None
        if self.pickled is not None:
            try:  # a class that exists only in the worker fails here
                loaded = pickle.loads(self.pickled)
            except Exception:
                loaded = None
            if isinstance(loaded, BaseException):
                exc = loaded
        if exc is None:
            exc = RemoteError(self.type_name, self.message, self.tb_text)
        if self.tb_text:
            exc.__cause__ = RemoteTraceback(self.tb_text)
        return exc


def _pickled(exc: BaseException) -> bytes | None:
    """``exc`` pickled, if it survives a round trip here: plain pickle, else cloudpickle (by value).

    cloudpickle carries classes made by value (those of a ``__main__`` with no
    file, sent to the worker by value): the parent maps them back to its own.
    A custom ``__init__`` pickles and cannot be rebuilt: found out here.
    """
    for dumps in (pickle.dumps, cloudpickle.dumps):
        try:
            data: bytes = dumps(exc, _PROTOCOL)
            pickle.loads(data)
        except Exception:
            continue
        return data
    return None


class ByValue(Exception):
    """Raised in a worker in place of an exception only cloudpickle can send.

    It pickles as a call that returns the original, so the parent gets the
    original exception (its class mapped back by cloudpickle).
    """

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (pickle.loads, (self.data,))


def portable(exc: BaseException) -> BaseException:
    """What a worker raises for ``exc`` so that the stdlib's pool can send it back.

    ``exc`` itself if plain pickle carries it; a :class:`ByValue` if only
    cloudpickle does; else the :class:`RemoteError` that stands in for it.
    """
    try:
        pickle.loads(pickle.dumps(exc, _PROTOCOL))
        return exc
    except Exception:
        pass
    report = FailureReport.of(exc)
    if report.pickled is not None:
        return ByValue(report.pickled)
    return RemoteError(report.type_name, report.message, report.tb_text)
