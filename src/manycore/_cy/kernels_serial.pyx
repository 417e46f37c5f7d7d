# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, freethreading_compatible=True
"""The kernels of manycore._cy.kernels, compiled without OpenMP.

The same source (_kernels.pxi) built a second time without ``-fopenmp``:
``prange`` becomes a serial loop, ``OPENMP`` is False, and every result is
the same as the OpenMP build's.  It is the build a compiler without OpenMP
(or ``-Dopenmp=disabled``) produces, kept in every build so it is tested.
"""

include "_kernels.pxi"
