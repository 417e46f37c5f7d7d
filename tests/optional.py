"""Optional dependencies in the tests: import one, or skip saying which extra installs it.

cffi and Numba cannot be installed on free-threaded CPython 3.13 (see the test
extra in pyproject.toml); there their tests skip with that reason.  CI checks
that no test skips for any other reason (tests/conftest.py, MANYCORE_ALLOWED_SKIPS).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NoReturn

import pytest

from manycore import _extras


def import_or_skip(module: str, extra: str, feature: str) -> ModuleType:
    try:
        return _extras.require(module, extra=extra, feature=feature)
    except _extras.MissingExtraError as exc:
        pytest.skip(str(exc), allow_module_level=True)


class SkipOnUse:
    """Stands in for a module that could not be imported: any use skips the test using it."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def skip(self) -> NoReturn:
        pytest.skip(self._reason)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self.skip()


def cffi_core_or_stand_in() -> Any:
    """``manycore.ffi.cffi_core``, or a :class:`SkipOnUse` naming the missing extra."""
    try:
        from manycore.ffi import cffi_core
    except _extras.MissingExtraError as exc:
        return SkipOnUse(str(exc))
    return cffi_core


def missing(module: str, extra: str, feature: str) -> str | None:
    """Why ``module`` cannot be imported (the extra to install), or None when it can."""
    try:
        _extras.require(module, extra=extra, feature=feature)
    except _extras.MissingExtraError as exc:
        return str(exc)
    return None


CFFI_MISSING = missing("cffi", "cffi", "this test")


def needs_cffi(*values: Any) -> Any:
    """A parametrize value (one per name) that uses cffi: skipped, saying why, where cffi is missing."""
    return pytest.param(*values, marks=pytest.mark.skipif(CFFI_MISSING is not None, reason=str(CFFI_MISSING)))
