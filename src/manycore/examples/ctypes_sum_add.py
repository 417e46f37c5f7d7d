# Unit section: Integration of C or Cython into Python Code > 3.1 Using the ctypes Library to Interface with C Code
# Shows: calling a C function from Python with ctypes. The unit compiles sum.c
#   (`int add(int a, int b)`) with gcc and loads './sum.so'; here no compiler is needed: the
#   package build compiled the same function (manycore.ffi.add / add_cffi). The example also
#   calls a function of manycore's own prebuilt C core through ctypes, with its prototype
#   declared, and shows what ctypes does with an int that does not fit a C int.
#   The C source is shipped next to this file: `manycore examples show ctypes_sum_add --file sum.c`.
# Corrected (docs/seed-errata.md, E12): declare argtypes/restype instead of letting ctypes guess
#   (it guesses int, and a float argument fails); check the range, because ctypes silently
#   truncates a Python int to 32 bits and C's int + int overflow is undefined; load the library
#   by a path relative to the code, not './sum.so' relative to wherever you happen to run from.
from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import sys
from typing import Any

# The unit's Python side, verbatim (it needs ./sum.so built by `gcc -shared -o sum.so -fPIC sum.c`).
UNIT_SOURCE = """\
import ctypes

lib = ctypes.CDLL('./sum.so')

print(lib.add(5, 10)) # Output: 15
"""


C_INT_BITS = 8 * ctypes.sizeof(ctypes.c_int)
C_INT_MIN, C_INT_MAX = -(2 ** (C_INT_BITS - 1)), 2 ** (C_INT_BITS - 1) - 1


def load_sum_library(path: str | os.PathLike[str]) -> ctypes.CDLL:
    """Load a build of sum.c from an explicit path (e.g. next to your .py file:
    ``Path(__file__).with_name("sum.so")``), with ``add``'s prototype declared."""
    lib = ctypes.CDLL(os.fspath(path))
    lib.add.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.add.restype = ctypes.c_int
    return lib


def checked_add(lib: ctypes.CDLL, a: int, b: int) -> int:
    """``lib.add(a, b)``, refusing what a C int cannot hold instead of truncating or overflowing."""
    for label, value in (("a", a), ("b", b), ("a + b", a + b)):
        if not C_INT_MIN <= value <= C_INT_MAX:
            raise OverflowError(f"{label} = {value} does not fit a C int")
    return int(lib.add(a, b))


def optional(module: str, attr: str) -> Any | None:
    """``module.attr`` if this build has it, else None."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def main(small: bool = False) -> None:
    add = optional("manycore.ffi", "add")
    add_cffi = optional("manycore.ffi", "add_cffi")
    if add is not None:
        print("manycore.ffi.add(5, 10) =", add(5, 10))
        if add_cffi is not None:
            try:
                print("manycore.ffi.add_cffi(5, 10) =", add_cffi(5, 10))
            except ImportError as exc:  # cffi is optional
                print("manycore.ffi.add_cffi: unavailable:", exc)
        try:
            add(2**31 - 1, 1)
        except OverflowError as exc:
            print("manycore.ffi.add(2**31 - 1, 1) -> OverflowError:", exc)
    else:
        print("manycore.ffi.add: not in this build yet (the prebuilt sum.c arrives with manycore.ffi)")

    # ctypes on C code that ships prebuilt with manycore: the native extension exports its C API.
    from manycore import _native

    core = ctypes.CDLL(_native.__file__)
    core.mc_cpu_count.argtypes = []
    core.mc_cpu_count.restype = ctypes.c_uint
    print("ctypes -> mc_cpu_count() in manycore's prebuilt core:", core.mc_cpu_count())

    # What ctypes does with a prototype but no range check (libc's int abs(int)):
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.abs.argtypes = [ctypes.c_int]
    libc.abs.restype = ctypes.c_int
    print(
        "abs(2**32 - 5) through ctypes c_int:", libc.abs(2**32 - 5), "(the int was silently cut to 32 bits)"
    )


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
