"""Which implementation of PEP 734 (``interpreters``) this Python has, if any.

CPython 3.14 ships it as :mod:`concurrent.interpreters`.  On 3.13 the
``interpreters-pep-734`` package (``pip install 'manycore[interpreters]'``)
provides the same API as ``interpreters_backport.interpreters``, on top of
3.13's private ``_interpreters`` module.  3.12's private module lacks what
that package needs, and 3.11 has no per-interpreter GIL at all.  The GIL build
of 3.13.0 is refused: it aborted in manycore's tests (docs/executors.md).

Only the public API is used: ``create()``, ``Interpreter.exec/prepare_main/close``
and ``ExecutionFailed`` (calls and replies: :mod:`._interp_driver`).
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
from types import ModuleType

EXTRA_HINT = "pip install 'manycore[interpreters]' (the interpreters-pep-734 backport)"


def interpreters_module() -> ModuleType:
    """The ``interpreters`` module; ``ImportError`` saying why there is none."""
    version = tuple(sys.version_info[:2])  # (not narrowed by type checkers: every branch is checked)
    if version >= (3, 14):
        return importlib.import_module("concurrent.interpreters")
    if version < (3, 13):
        raise ImportError(
            "subinterpreters as a backend need CPython 3.13 (with the interpreters-pep-734 backport) "
            f"or 3.14+; this is {version[0]}.{version[1]}"
        )
    if tuple(sys.version_info[:3]) == (3, 13, 0) and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        raise ImportError(
            "subinterpreters are disabled on CPython 3.13.0 (GIL build): there a process aborted now and "
            "then while subinterpreters started and other threads ran Python (manycore's own tests, "
            "docs/executors.md); use a later 3.13 release or 3.14"
        )
    try:
        module = importlib.import_module("interpreters_backport.interpreters")
    except ImportError as exc:
        raise ImportError(
            f"subinterpreters on CPython 3.13 need the backport: {EXTRA_HINT} ({exc})"
        ) from None
    return module
