# Unit section: Evaluating the Effectiveness of Cython for CPU-bound Optimizations
# Shows: the unit's benchmark, sum of i*i for i < N = 10**7: the pure-Python function, what the
#   unit's `long long` Cython version returns, and manycore.native.sum_of_squares (prebuilt C on
#   all cores, exact), each timed. No compiler at run time; the corrected Cython source ships
#   next to this file: `manycore examples show sum_of_squares_evaluation --file sum_of_squares.pyx`.
# Corrected (docs/seed-errata.md, E15): the exact answer, 333333283333335000000, is about 36
#   times 2**63: the unit's `cdef long long total` wraps and returns 1291890006563070912, a wrong
#   number that looks right (NumPy's int64 arithmetic, run below, wraps to the same value).
#   `cdef` makes the function invisible to Python (run.py's import fails). The "40-50x faster"
#   claim is measured by `manycore bench` (section 1); here we print the ratio on this machine.
from __future__ import annotations

import importlib
import sys
import time
from typing import Any

# The unit's Cython file sum_of_squares.pyx, verbatim (indentation restored across the page break).
UNIT_PYX = """\
# Enable static typing

cdef long long sum_of_squares_cython(long long n):

    cdef long long total = 0

    cdef long long i

    for i in range(n):
        total += i * i

    return total
"""


def sum_of_squares(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def optional(module: str, attr: str) -> Any | None:
    """``module.attr`` if this build has it, else None."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def as_int64(value: int) -> int:
    """What a wrapping two's-complement 64-bit integer holds for ``value``."""
    return (value + 2**63) % 2**64 - 2**63


def main(small: bool = False) -> None:
    import numpy as np

    from manycore import native

    n_full = 10**7  # the unit's N
    n_python = 10**6 if small else n_full  # pure Python is slow: time a smaller N with --small

    started = time.perf_counter()
    pure = sum_of_squares(n_python)
    python_s = time.perf_counter() - started
    print(f"pure Python sum_of_squares({n_python}) = {pure}  ({python_s:.3f} s)")

    started = time.perf_counter()
    exact = int(native.sum_of_squares(n_full))
    native_s = time.perf_counter() - started
    print(f"manycore.native.sum_of_squares({n_full}) = {exact}  ({native_s:.4f} s, exact)")

    print(f"the unit's `long long` Cython version returns {as_int64(exact)}  (wrapped modulo 2**64)")
    seed_version = optional("manycore._cy.kernels", "seed_sum_of_squares")
    cython_exact = optional("manycore._cy.kernels", "sum_of_squares")
    if seed_version is not None and cython_exact is not None:
        started = time.perf_counter()
        wrapped = seed_version(n_full)
        seed_s = time.perf_counter() - started
        print(
            f"  ... and run for real (prebuilt manycore._cy.kernels.seed_sum_of_squares): {wrapped}  ({seed_s:.4f} s)"
        )
        started = time.perf_counter()
        print(
            f"manycore._cy.kernels.sum_of_squares (Cython prange, exact): {cython_exact(n_full)}"
            f"  ({time.perf_counter() - started:.4f} s)"
        )
    else:
        print("manycore._cy kernels: not in this build yet")
    values = np.arange(n_full, dtype=np.int64)
    print(f"NumPy int64, same 64-bit arithmetic: {int(values @ values)}")
    print("exact value fits in 64 bits:", exact < 2**63)

    per_item_python = python_s / n_python
    per_item_native = native_s / n_full
    print(
        f"native vs pure Python on this machine: {per_item_python / per_item_native:.0f}x per element "
        "(the unit claims 40-50x for single-threaded Cython; `manycore bench` section 1 measures it)"
    )


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
