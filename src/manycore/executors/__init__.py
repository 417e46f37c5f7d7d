"""One executor contract over every mechanism (see :mod:`._contract`).

=========== ==================== =============================================
name        class                runs
=========== ==================== =============================================
serial      SerialExecutor       in the calling thread, at submit time
threads     ThreadExecutor       a thread pool (drop-in ThreadPoolExecutor)
processes   ProcessExecutor      a process pool (drop-in ProcessPoolExecutor,
                                 cloudpickle for lambdas and closures)
asyncio     AsyncExecutor        coroutine functions on a private event loop
native      NativeExecutor       C callables on the native pool without the GIL,
                                 Python callables on native threads with it
interpreters InterpreterExecutor subinterpreters, each with its own GIL (3.14,
                                 or 3.13 with ``manycore[interpreters]``)
dask        DaskExecutor         a dask.distributed cluster (``manycore[dask]``)
=========== ==================== =============================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import RemoteTraceback, TaskError, WorkerCrashed
from ._contract import ManycoreExecutor, MapPlan

if TYPE_CHECKING:  # imported on first use at run time (__getattr__ below); typed here
    from .asyncio import AsyncExecutor
    from .dask import DaskExecutor
    from .interpreters import InterpreterExecutor
    from .native import NativeExecutor
    from .process import ProcessExecutor
    from .serial import SerialExecutor
    from .thread import ThreadExecutor

__all__ = [
    "AsyncExecutor",
    "DaskExecutor",
    "InterpreterExecutor",
    "ManycoreExecutor",
    "MapPlan",
    "NativeExecutor",
    "ProcessExecutor",
    "RemoteTraceback",
    "SerialExecutor",
    "TaskError",
    "ThreadExecutor",
    "WorkerCrashed",
    "backends",
    "get_executor",
]

# name -> (module, class); modules are imported on first use so that
# `import manycore` stays fast and optional extras stay optional.
_BACKENDS: dict[str, tuple[str, str]] = {
    "serial": ("serial", "SerialExecutor"),
    "threads": ("thread", "ThreadExecutor"),
    "processes": ("process", "ProcessExecutor"),
    "asyncio": ("asyncio", "AsyncExecutor"),
    "native": ("native", "NativeExecutor"),
    "interpreters": ("interpreters", "InterpreterExecutor"),
    "dask": ("dask", "DaskExecutor"),
}
_ALIASES = {
    "thread": "threads",
    "process": "processes",
    "async": "asyncio",
    "distributed": "dask",
    "interpreter": "interpreters",
    "subinterpreters": "interpreters",
}


def _class_for(name: str) -> type[ManycoreExecutor]:
    module, cls = _BACKENDS[name]
    mod = importlib.import_module(f"{__name__}.{module}")
    result: type[ManycoreExecutor] = getattr(mod, cls)
    return result


def canonical_backend(name: str) -> str:
    """The canonical backend name for ``name`` (aliases accepted), else ``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, not {type(name).__name__}")
    key = _ALIASES.get(name, name)
    if key not in _BACKENDS:
        choices = ", ".join(sorted(_BACKENDS))
        raise ValueError(f"unknown backend {name!r}; choose one of: {choices}")
    return key


def get_executor(name: str, **options: Any) -> ManycoreExecutor:
    """A new executor of backend ``name`` (``"threads"``, ``"processes"``, ...) built with ``options``."""
    return _class_for(canonical_backend(name))(**options)


def backends() -> dict[str, str | None]:
    """Backends usable here: ``{name: None}`` if available, else ``{name: reason}``."""
    status: dict[str, str | None] = {}
    for name in _BACKENDS:
        try:
            cls = _class_for(name)
        except ImportError as exc:
            status[name] = str(exc)
            continue
        reason = getattr(cls, "unavailable_reason", None)
        status[name] = reason() if callable(reason) else None
    return status


def __getattr__(name: str) -> Any:
    for backend, (_module, cls) in _BACKENDS.items():
        if cls == name:
            return _class_for(backend)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
