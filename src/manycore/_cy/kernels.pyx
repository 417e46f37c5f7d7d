# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, freethreading_compatible=True
"""Cython-native prange kernels, compiled with OpenMP when the compiler has it.

See manycore._cy.kernels_serial for the same kernels always compiled without
OpenMP, and ``OPENMP`` here for what this build got.
"""

include "_kernels.pxi"
