"""Optional dependencies: import one, or say which ``manycore[extra]`` installs it."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from . import _build

#: Extras that cannot be installed on a free-threaded CPython 3.13 (no release
#: of the library supports that interpreter), with what to use instead.
_NOT_ON_FREE_THREADED_313 = {
    "cffi": "cffi supports free-threaded CPython only from 3.14; use manycore.ffi.ctypes_core here",
    "numba": "Numba does not support free-threaded CPython 3.13",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def missing_reason(module: str, extra: str, feature: str) -> str:
    """Why ``module`` is missing, in words that say what to install (or why it cannot be)."""
    text = f"{feature} needs {module}, which is not installed: pip install 'manycore[{extra}]'"
    if (
        _build.free_threaded_build()
        and sys.version_info[:2] == (3, 13)
        and extra in _NOT_ON_FREE_THREADED_313
    ):
        text += f" ({_NOT_ON_FREE_THREADED_313[extra]})"
    return text


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``; a missing one raises :class:`MissingExtraError` naming ``manycore[extra]``."""
    try:
        return importlib.import_module(module)
    except MissingExtraError:
        raise  # already says what to install
    except ImportError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(exc.name + "."):
            raise  # the module exists but something it imports is broken: show that
        raise MissingExtraError(missing_reason(module, extra, feature)) from exc
