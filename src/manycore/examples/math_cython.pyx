# math_cython.pyx -- the unit's fast_square, corrected.
# Shipped for reading (see cython_fast_square.py); not compiled when you run the example.
# The prebuilt equivalents are manycore._cy's fast_square and manycore.native.square.
#
# Correction (docs/seed-errata.md, E13): `def fast_square(int x): return x * x` multiplies in
# C int, so any |x| > 46340 overflows (undefined behaviour; in practice it wraps:
# fast_square(50000) returns -1794967296). Here the product is computed in 64 bits and
# refused when it would not fit; the body is also indented under the function, as it must be.
#
# cython: language_level=3

def fast_square(long long x):
    # 3037000499**2 is the largest square below 2**63.
    if x > 3037000499 or x < -3037000499:
        raise OverflowError(f"fast_square({x}) does not fit a 64-bit signed integer")
    return x * x
