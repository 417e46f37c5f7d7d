/*
 * sum.c -- the unit's C code for "3.1 Using the ctypes Library to Interface with C Code",
 * unchanged (shipped for reading; see ctypes_sum_add.py).
 *
 * It is not compiled when you run the example: the package build compiles this same
 * function as manycore/ffi/libseed_sum.so (manycore.ffi.add / manycore.ffi.add_cffi), the
 * unit's `gcc -shared -o sum.so -fPIC sum.c` done once, at install time.
 *
 * The C is fine as C. What needs care is the Python side (docs/seed-errata.md, E12):
 *   - declare the prototype (argtypes/restype) instead of letting ctypes guess;
 *   - `int + int` outside the int range is undefined behaviour in C (in practice it wraps:
 *     add(2147483647, 1) gives -2147483648), so check the range before calling;
 *   - load the library by a path relative to the Python file, not to the current directory
 *     ('./sum.so' only works when you run from the folder that holds it).
 */
int add(int a, int b) {
    return a + b;
}
