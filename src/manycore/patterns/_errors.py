"""Exceptions shared by the patterns.

``Closed`` mirrors ``queue.ShutDown`` (Python 3.13+): on those versions it *is*
a subclass of it, so ``except queue.ShutDown`` also catches a closed buffer.
"""

from __future__ import annotations

import queue
import sys

__all__ = ["Closed", "RemoteError", "RemoteTraceback", "WorkerDied"]

if sys.version_info >= (3, 13):
    _ClosedBase = queue.ShutDown
else:

    class _ClosedBase(Exception):
        """Stand-in for ``queue.ShutDown`` before Python 3.13."""


class Closed(_ClosedBase):
    """The buffer was closed: ``put()`` after ``close()``, or ``get()`` once it is closed and drained."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process.

    Attached as ``__cause__`` of the re-raised exception (like
    ``concurrent.futures.process._RemoteTraceback``), so the caller's traceback
    ends with the worker-side frames as text.
    """

    def __init__(self, tb_text: str) -> None:
        super().__init__(tb_text)
        self.tb_text = tb_text

    def __str__(self) -> str:
        return f'\n"""\n{self.tb_text}"""'


class WorkerDied(RuntimeError):
    """A worker process exited without reporting a result (crash, ``os._exit``, a signal)."""


class RemoteError(RuntimeError):
    """An exception raised in a worker process that could not be sent back as itself.

    Raised in its place when the original cannot be pickled (or unpickled);
    ``exc_type`` names the original class and ``__cause__`` carries its
    traceback text as a ``RemoteTraceback``.
    """

    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(f"{exc_type}: {message}" if message else exc_type)
        self.exc_type = exc_type
