"""Cython modules of manycore, built by the package build (meson + Cython).

- :mod:`manycore._cy.core` -- the C core through ``cdef extern from "manycore.h"``
  (compiled part :mod:`manycore._cy._core`), with the same Python face,
  results and exceptions as ``manycore.native``;
- :mod:`manycore._cy.kernels` -- Cython-native ``prange`` kernels
  (``sum_of_squares`` exact, ``fast_square``, ``mandelbrot``, the unit's
  ``compute_sum`` and ``sum_of_squares_cython``), with OpenMP when the compiler
  has it; :mod:`manycore._cy.kernels_serial` is the same source compiled
  without OpenMP.
"""
