# Unit section: Extensions in C or Cython to Leverage Low-level Parallelism Features > 2.1 Writing Parallelized Code in C or Cython for Performance
# Shows: the unit's Cython prange loop `compute_sum` (total of i * 0.5 for i < n), computed three
#   ways with no compiler at run time: plain Python (the reference), manycore's prebuilt Cython
#   kernels (manycore._cy, when in this build: the same prange loop built with OpenMP, and built
#   without it, where it runs on one thread) and manycore's native pool (a GIL-free parallel
#   float64 sum). The corrected Cython source ships next to this file:
#   `manycore examples show cython_prange_compute_sum --file example.pyx`.
# Corrected (docs/seed-errata.md, E11): `cythonize -i example.pyx` builds without OpenMP, so
#   the prange loop runs on one thread, silently; `cdef int i, n` caps n at 2**31 - 1 (C int);
#   the loop body was not indented. `total += i * 0.5` inside prange is a correct reduction.
from __future__ import annotations

import ctypes
import importlib
import sys
import time
from typing import Any

# The unit's example.pyx, verbatim: the loop body and the return are not indented.
UNIT_PYX = """\
# Save as "example.pyx"
from cython.parallel import prange

def compute_sum():

    cdef int i, n = 1000000
    cdef double total = 0

    for i in prange(n, nogil=True): # Parallel loop

total += i * 0.5

return total
"""
# ... and indented as meant. Built with `cythonize -i example.pyx`, i.e. without -fopenmp.
UNIT_PYX_INDENTED = """\
from cython.parallel import prange

def compute_sum():
    cdef int i, n = 1000000
    cdef double total = 0
    for i in prange(n, nogil=True): # Parallel loop
        total += i * 0.5
    return total
"""


def optional(module: str, attr: str) -> Any | None:
    """``module.attr`` if this build has it, else None."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def compute_sum_python(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += i * 0.5
    return total


def main(small: bool = False) -> None:
    n = 100_000 if small else 1_000_000
    print(f"n = {n}; exact answer 0.5 * n * (n - 1) / 2 = {0.5 * n * (n - 1) / 2}")

    started = time.perf_counter()
    print("pure Python loop:", compute_sum_python(n), f"({time.perf_counter() - started:.3f} s)")

    for module in ("manycore._cy.kernels", "manycore._cy.kernels_serial"):
        compute_sum = optional(module, "compute_sum")
        threads_used = optional(module, "threads_used")
        if compute_sum is None or threads_used is None:
            print(f"{module}.compute_sum: not in this build yet (arrives with manycore._cy)")
            continue
        print(
            f"{module}.compute_sum (Cython prange, prebuilt): {compute_sum(n)}"
            f" on {threads_used()} thread(s), OpenMP {optional(module, 'OPENMP')}"
        )

    import numpy as np

    from manycore import native

    halves = np.arange(n, dtype=np.float64) * 0.5
    started = time.perf_counter()
    total = native.sum(halves)
    print("manycore.native.sum (C, all cores, no GIL):", total, f"({time.perf_counter() - started:.4f} s)")

    print(
        "what `cdef int n = 10**10` would hold:",
        ctypes.c_int(10**10).value,
        "(a C int wraps; use Py_ssize_t)",
    )


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
