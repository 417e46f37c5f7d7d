# sum_of_squares.pyx -- the unit's "Evaluating the Effectiveness of Cython" function, corrected.
# Shipped for reading (see sum_of_squares_evaluation.py); not compiled when you run the example.
# The prebuilt equivalent is manycore.native.sum_of_squares (C, exact, on all cores).
#
# Corrections (docs/seed-errata.md, E15):
#   - `cdef long long sum_of_squares_cython(...)`: a cdef function is visible only to C and
#     Cython code, so the unit's run.py (`from sum_of_squares import sum_of_squares_cython`)
#     fails with ImportError. It must be `def` or `cpdef`.
#   - `long long total` overflows: the sum of squares below 10**7 is 333333283333335000000,
#     about 36 times 2**63. The unit's version returns 1291890006563070912 (the exact value
#     modulo 2**64), a wrong number that looks plausible. Here the total is kept in two 64-bit
#     words (lo, hi) with an explicit carry, and each i*i fits in 64 bits because n <= 2**32.
#   - the build command is `python setup.py build_ext --inplace` (two dashes), and the
#     boundscheck/wraparound directives do nothing here (there is no indexing).
#   - "nogil for multi-threading": releasing the GIL alone runs nothing in parallel; it
#     lets other threads run. Parallelism needs prange (or manycore's pool).
#
# cython: language_level=3

def sum_of_squares_cython(unsigned long long n):
    if n > 2**32:
        raise OverflowError("n must be <= 2**32 so that every i*i fits in 64 bits")
    cdef unsigned long long i, square
    cdef unsigned long long lo = 0, hi = 0
    with nogil:
        for i in range(n):
            square = i * i
            lo += square          # unsigned overflow is defined in C: it wraps...
            if lo < square:       # ...and a wrap means a carry into the high word
                hi += 1
    return (int(hi) << 64) + lo   # Python ints from here on: exact
