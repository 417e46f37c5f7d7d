/*
 * seed_sum.c -- the unit's sum.c ("3.1 Using the ctypes Library to Interface
 * with C Code"), built by meson as a plain shared library (the seed's
 * `gcc -shared -o sum.so -fPIC sum.c`) and installed as
 * manycore/ffi/libseed_sum.so.
 *
 * `add` is the seed's function unchanged: int + int in C, where a sum outside
 * the int range is undefined behaviour.  The Python wrappers
 * (manycore.ffi.add, manycore.ffi.add_cffi) check that the operands and the
 * result fit a C int before calling, so this code never overflows; called
 * directly through ctypes, `lib.add(2**31 - 1, 1)` is exactly as broken as
 * the seed's version.
 */
#if defined(_WIN32)
#  define SEED_API __declspec(dllexport)
#else
#  define SEED_API __attribute__((visibility("default")))
#endif

SEED_API int add(int a, int b);

SEED_API int add(int a, int b)
{
    return a + b;
}
