# example.pyx -- the unit's "Cython Example: Parallelizing a Loop", corrected.
# Shipped for reading (see cython_prange_compute_sum.py); not compiled when you run the example.
# The prebuilt equivalent is manycore's Cython kernels module (manycore._cy), built with
# OpenMP by the package build.
#
# Corrections (docs/seed-errata.md, E11):
#   - OpenMP flags. `cythonize -i example.pyx` compiles without -fopenmp, and then prange runs
#     on ONE thread, silently. The two `distutils:` lines below ask for OpenMP.
#   - `cdef int i, n`: a C int caps n at 2**31 - 1; a larger n wraps (10**10 becomes
#     1410065408). Py_ssize_t is the index type of the platform, and n is a parameter.
#   - the loop body and `return` were not indented under the function in the text.
#   - `total += i * 0.5` inside prange is right: Cython turns an in-place operator on a
#     variable into a reduction (each thread sums privately, the partial sums are combined).
#     Reading `total` inside the loop would not be allowed. Float partial sums combine in an
#     order that depends on the thread count, so in general the last bits vary from run to
#     run; here every partial sum is a multiple of 0.5 below 2**53, so the result is exact.
#
# distutils: extra_compile_args = -fopenmp
# distutils: extra_link_args = -fopenmp
# cython: language_level=3, boundscheck=False, wraparound=False

from cython.parallel import prange


def compute_sum(Py_ssize_t n=1000000):
    cdef Py_ssize_t i
    cdef double total = 0
    for i in prange(n, nogil=True):  # Parallel loop
        total += i * 0.5
    return total
