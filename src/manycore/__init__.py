"""manycore: every way of running Python in parallel, real, fast and correct.

The public face::

    manycore.pmap / pstarmap          map on the backend that measures best
    manycore.get_executor(name)       one executor contract over every mechanism
    manycore.backends()               which backends are usable here
    manycore.SerialExecutor, ThreadExecutor, ProcessExecutor, AsyncExecutor,
    NativeExecutor, InterpreterExecutor,
    DaskExecutor                      the executors themselves
    manycore.TaskError, WorkerCrashed, RemoteError, RemoteTraceback
                                      what failures look like (manycore.errors)

Subpackages: ``manycore.native`` (the native POSIX-thread runtime),
``manycore.executors``, ``manycore.cli`` (the ``manycore`` command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import RemoteError, RemoteTraceback, TaskError, WorkerCrashed
from .executors import ManycoreExecutor, backends, get_executor
from .pmap import PMapResult, pmap, pstarmap

if TYPE_CHECKING:  # imported on first use at run time (__getattr__ below); typed here
    from .executors import (
        AsyncExecutor,
        DaskExecutor,
        InterpreterExecutor,
        NativeExecutor,
        ProcessExecutor,
        SerialExecutor,
        ThreadExecutor,
    )

__version__ = "0.1.0"

__all__ = [
    "AsyncExecutor",
    "DaskExecutor",
    "InterpreterExecutor",
    "ManycoreExecutor",
    "NativeExecutor",
    "PMapResult",
    "ProcessExecutor",
    "RemoteError",
    "RemoteTraceback",
    "SerialExecutor",
    "TaskError",
    "ThreadExecutor",
    "WorkerCrashed",
    "__version__",
    "backends",
    "get_executor",
    "pmap",
    "pstarmap",
]

_EXECUTORS = {
    "SerialExecutor",
    "ThreadExecutor",
    "ProcessExecutor",
    "AsyncExecutor",
    "NativeExecutor",
    "InterpreterExecutor",
    "DaskExecutor",
}


def __getattr__(name: str) -> Any:
    # Executors are imported on first use: optional extras stay optional.
    if name in _EXECUTORS:
        from . import executors

        return getattr(executors, name)
    raise AttributeError(f"module 'manycore' has no attribute {name!r}")
