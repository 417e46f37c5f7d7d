"""Where the shared libraries that ctypes and cffi load come from.

The core: the CPython extension ``manycore._native`` is built with the C core
linked in whole and every ``MC_API`` function exported (everything else in the
core has hidden visibility).  Loading that very file with ``ctypes.CDLL`` or
``cffi.FFI().dlopen`` therefore reaches the same code *and the same
process-wide state* as ``manycore.native`` -- one build artefact, no second
copy of the core to keep in step.  The file is located with
``importlib.util.find_spec`` (no import of the extension's Python API: the
bindings do not depend on each other, only on the core).

The seed's ``sum.c`` is a separate plain shared library (``libseed_sum.so``)
installed next to this module, as the unit builds it with ``gcc -shared``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.resources
import importlib.util
import sys

__all__ = ["core_library_path", "seed_library_path"]

_stack = contextlib.ExitStack()
atexit.register(_stack.close)


@functools.cache
def core_library_path() -> str:
    """Path of the shared object that holds the C core (the extension module's file)."""
    spec = importlib.util.find_spec("manycore._native")
    if spec is None or spec.origin is None:
        raise ImportError("manycore._native (the compiled core) is not installed")
    return spec.origin


def _seed_names() -> tuple[str, ...]:
    if sys.platform == "win32":
        return ("seed_sum.dll", "libseed_sum.dll")
    if sys.platform == "darwin":
        return ("libseed_sum.dylib", "libseed_sum.so")
    return ("libseed_sum.so",)


@functools.cache
def seed_library_path() -> str:
    """Path of ``libseed_sum.so`` (the seed's ``sum.c``) installed in ``manycore/ffi``."""
    folder = importlib.resources.files("manycore.ffi")
    for name in _seed_names():
        res = folder.joinpath(name)
        if res.is_file():
            # A real file in a wheel install; a build-tree file in an editable
            # one.  as_file only copies when the resource is not a file at all.
            return str(_stack.enter_context(importlib.resources.as_file(res)))
    raise ImportError(
        f"the seed's sum library ({' or '.join(_seed_names())}) is not installed in manycore/ffi"
    )
