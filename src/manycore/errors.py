"""What failures look like, wherever the work ran: one set for pmap, the executors and the patterns.

* :class:`TaskError` -- a failed item in place of its result (``errors="collect"``).
* :class:`WorkerCrashed` -- a worker process died (signal, ``os._exit``, OOM kill)
  while running an item; a ``BrokenProcessPool``, so also a ``RuntimeError``.
  ``WorkerDied`` (the patterns' old name) is the same class.
* :class:`RemoteTraceback` -- the traceback text of an exception raised in a
  worker, chained as ``__cause__`` of the exception the caller sees (the
  stdlib's convention).
* :class:`RemoteError` -- stands in for an exception that could not be sent
  back as itself (it could not be pickled, or rebuilt); names its type.
  ``UnpicklableError`` (the executors' old name) is the same class.
* :class:`Closed` -- a buffer or queue was closed (``queue.ShutDown`` on 3.13+).

Depends on the standard library only, so every layer may raise these.
"""

from __future__ import annotations

import queue
import signal
import sys
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Closed",
    "RemoteError",
    "RemoteTraceback",
    "TaskError",
    "UnpicklableError",
    "WorkerCrashed",
    "WorkerDied",
    "attach_traceback",
    "describe_exit",
]


@dataclass(frozen=True)
class TaskError:
    """A failed item, in place of its result when ``errors="collect"``.

    ``index`` is the item's position in the input, ``exception`` the exception
    it raised (``TimeoutError`` for ``task_timeout``, :class:`WorkerCrashed`
    for a dead worker) and ``traceback`` its formatted traceback text.
    """

    index: int
    exception: BaseException
    traceback: str = ""

    def __repr__(self) -> str:
        return f"TaskError(index={self.index}, exception={self.exception!r})"


def describe_exit(exitcode: int | None) -> str:
    """``"was killed by SIGSEGV"``, ``"exited with code 3"``: how a process ended."""
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        return f"was killed by {_signal_name(-exitcode)}"
    return f"exited with code {exitcode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerCrashed(BrokenProcessPool):
    """A worker process died (signal, ``os._exit``, OOM kill) while running an item.

    ``index`` is the item it ran (when known), ``pid`` the process and
    ``exitcode`` as in ``multiprocessing`` (negative: killed by that signal).
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        pid: int | None = None,
        exitcode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.pid = pid
        self.exitcode = exitcode

    @property
    def signal_name(self) -> str | None:
        """``"SIGSEGV"`` and so on when the worker was killed by a signal."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        return _signal_name(-self.exitcode)

    describe_exit = staticmethod(describe_exit)


#: The patterns' name for :class:`WorkerCrashed`.
WorkerDied = WorkerCrashed


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process or thread.

    Chained as ``__cause__`` of the re-raised exception (like the stdlib's
    ``concurrent.futures.process._RemoteTraceback``), so the caller's
    traceback ends with the worker-side frames as text.  ``tb_text`` is that
    text; ``tb`` the same framed in triple quotes, as the stdlib's has it.
    """

    def __init__(self, tb_text: str) -> None:
        super().__init__(tb_text)
        self.tb_text = tb_text

    @property
    def tb(self) -> str:
        return f'\n"""\n{self.tb_text.rstrip()}\n"""'

    def __str__(self) -> str:
        return self.tb


def attach_traceback(exc: BaseException, tb_text: str) -> BaseException:
    """Chain ``tb_text`` to ``exc`` as its ``__cause__`` (unless it has one)."""
    if tb_text and exc.__cause__ is None:
        exc.__cause__ = RemoteTraceback(tb_text)
    return exc


class RemoteError(RuntimeError):
    """An exception raised in a worker that could not come back as itself.

    Raised in its place when the original cannot be pickled, or cannot be
    rebuilt here (a custom ``__init__``, a class only the worker has).
    ``exc_type`` names the original class (module and qualified name),
    ``message`` is its ``str()`` and ``tb`` its worker-side traceback text
    (also chained as ``__cause__`` where the caller sees it).
    """

    def __init__(self, exc_type: str, message: str, tb: str = "") -> None:
        super().__init__(exc_type, message, tb)
        self.exc_type = exc_type
        self.message = message
        self.tb = tb

    @property
    def type_name(self) -> str:
        """The executors' old name for :attr:`exc_type`."""
        return self.exc_type

    def __str__(self) -> str:
        head = f"{self.exc_type}: {self.message}" if self.message else self.exc_type
        return f"{head} (the original exception could not be sent back from the worker)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exc_type, self.message, self.tb), self.__dict__)  # notes too


#: The executors' name for :class:`RemoteError`.
UnpicklableError = RemoteError


if sys.version_info >= (3, 13):
    _ClosedBase = queue.ShutDown
else:

    class _ClosedBase(Exception):
        """Stand-in for ``queue.ShutDown`` before Python 3.13."""


class Closed(_ClosedBase):
    """The buffer was closed: ``put()`` after ``close()``, or ``get()`` once it is closed and drained.

    On Python 3.13+ it *is* a ``queue.ShutDown``, so ``except queue.ShutDown``
    also catches a closed buffer.
    """
