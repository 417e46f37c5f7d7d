# Unit section: Integration of C or Cython into Python Code > 3.2 Compiling and Using Cython Extensions
# Shows: the unit's Cython function fast_square(10) -> 100, with no compiler at run time: the
#   prebuilt Cython version from manycore._cy (when in this build) and manycore.native.square,
#   which squares a whole array in C and refuses results that do not fit instead of wrapping.
#   The corrected Cython source ships next to this file:
#   `manycore examples show cython_fast_square --file math_cython.pyx`.
# Corrected (docs/seed-errata.md, E13): `def fast_square(int x): return x * x` multiplies in C
#   int: for |x| > 46340 the product overflows (undefined behaviour; in practice it wraps, and
#   fast_square(50000) returns -1794967296). The corrected .pyx multiplies in 64 bits and raises
#   OverflowError past that; the unit's function body was also not indented.
from __future__ import annotations

import ctypes
import importlib
import sys
from typing import Any

# The unit's math_cython.pyx, verbatim: the body is not indented under the function.
UNIT_PYX = """\
def fast_square(int x):

return x * x
"""
# ... and as it was surely meant, indented: the version whose C int overflow E13 is about.
UNIT_PYX_INDENTED = """\
def fast_square(int x):
    return x * x
"""


def optional(module: str, attr: str) -> Any | None:
    """``module.attr`` if this build has it, else None."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def fast_square_python(x: int) -> int:
    return x * x


def main(small: bool = False) -> None:
    print("fast_square(10) in Python:", fast_square_python(10))  # Output: 100

    fast_square = optional("manycore._cy.kernels", "fast_square")
    if fast_square is not None:
        print("manycore._cy fast_square(10):", fast_square(10))
    else:
        print("manycore._cy fast_square: not in this build yet (arrives with manycore._cy)")

    print("the unit's C int version, fast_square(50000):", ctypes.c_int32(50000 * 50000).value, "(wrapped)")
    print("exact 50000 * 50000:", fast_square_python(50000))

    import numpy as np

    from manycore import native

    xs = np.array([10, 50000, -46341], dtype=np.int32)
    print("manycore.native.square(int32 [10, 50000, -46341]) ->", native.square(xs).tolist(), "(int64 out)")
    try:
        native.square(np.array([2**32], dtype=np.int64))
    except OverflowError as exc:
        print("manycore.native.square(int64 [2**32]) -> OverflowError:", exc)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
