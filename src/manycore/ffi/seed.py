"""The unit's ``sum.c`` ``add``, loaded the way the unit loads it -- and made safe to call.

The seed::

    gcc -shared -o sum.so -fPIC sum.c          # int add(int a, int b) { return a + b; }
    lib = ctypes.CDLL('./sum.so'); print(lib.add(5, 10))   # 15

The package builds the same file (``manycore/ffi/seed_sum.c``) into
``manycore/ffi/libseed_sum.so``.  What the seed does not show: with no
``argtypes``, ctypes converts Python ints to C ``int`` silently modulo 2**32
(``lib.add(2**32 + 5, 10) == 15``), and an ``int`` sum past 2**31 - 1 is
undefined behaviour in C.  :func:`add` declares the prototype and checks
operands and result before the call, raising ``OverflowError`` instead.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from .. import _extras
from .._validate import as_int
from ._library import seed_library_path

__all__ = ["INT_MAX", "INT_MIN", "add", "add_cffi", "seed_library"]

INT_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_int) - 1) - 1
INT_MIN = -INT_MAX - 1


@functools.cache
def seed_library() -> ctypes.CDLL:
    """``libseed_sum.so`` as a ``ctypes.CDLL`` with ``add``'s prototype declared."""
    lib = ctypes.CDLL(seed_library_path())
    lib.add.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.add.restype = ctypes.c_int
    return lib


@functools.cache
def _cffi_library() -> Any:
    cffi = _extras.require("cffi", extra="cffi", feature="manycore.ffi.add_cffi")
    ffi = cffi.FFI()
    ffi.cdef("int add(int a, int b);")
    return ffi.dlopen(seed_library_path())


def _operands(a: Any, b: Any) -> tuple[int, int]:
    x, y = as_int(a, "a"), as_int(b, "b")
    for name, v in (("a", x), ("b", y)):
        if not INT_MIN <= v <= INT_MAX:
            raise OverflowError(f"{name} must fit a C int ({INT_MIN}..{INT_MAX}), got {v}")
    if not INT_MIN <= x + y <= INT_MAX:
        raise OverflowError(f"add({x}, {y}) = {x + y} does not fit a C int: the C sum would overflow")
    return x, y


def add(a: int, b: int) -> int:
    """The seed's ``add(a, b)`` from ``sum.c``, called through ctypes: ``add(5, 10) == 15``."""
    x, y = _operands(a, b)
    return int(seed_library().add(x, y))


def add_cffi(a: int, b: int) -> int:
    """The same C ``add`` through cffi (ABI mode)."""
    x, y = _operands(a, b)
    return int(_cffi_library().add(x, y))
