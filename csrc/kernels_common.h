/*
 * kernels_common.h -- internal helpers shared by csrc/kernels*.c (not public).
 *
 * Build requirements (see the file comments of kernels_reduce.c):
 *   - gcc or clang (unsigned __int128, __builtin_* overflow helpers);
 *   - -ffp-contract=off (the default of gcc in -std=c11 mode).  The avx512f
 *     clone implies FMA; without this flag a*b+c could be contracted in one
 *     clone and not in another, breaking bit-identical float results.
 */
#ifndef MANYCORE_KERNELS_COMMON_H
#define MANYCORE_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manycore.h"

#if !defined(__SIZEOF_INT128__)
#  error "manycore kernels need a compiler with unsigned __int128 (gcc or clang, 64-bit target)"
#endif

typedef unsigned __int128 mc_u128;
typedef __int128 mc_i128;

/* Runtime SIMD dispatch.  target_clones needs ifunc support: ELF + glibc
 * (musl has no ifunc), gcc on x86-64.  Everywhere else the kernels are
 * compiled once for the baseline ISA (the code is written so the compiler
 * auto-vectorises it with whatever the baseline offers). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__ELF__) && defined(__GLIBC__) && !defined(MC_NO_TARGET_CLONES)
#  define MC_HAVE_TARGET_CLONES 1
#  define MC_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#  define MC_HAVE_TARGET_CLONES 0
#  define MC_TARGET_CLONES
#endif

#if defined(__GNUC__)
#  define MC_NOINLINE __attribute__((noinline))
#else
#  define MC_NOINLINE
#endif

/* ---------------------------------------------------------------- 192-bit
 * Two's-complement 192-bit accumulator: value = hi * 2^128 + lo (hi signed
 * in the two's-complement sense).  Additions are exact modulo 2^192, and
 * every sum computed by the kernels is far below 2^191 in magnitude. */
typedef struct mc_acc192 {
    mc_u128 lo;
    uint64_t hi;
} mc_acc192;

static inline void mc_acc192_add_u128(mc_acc192 *a, mc_u128 v)
{
    mc_u128 s = a->lo + v;
    a->hi += (uint64_t)(s < v);
    a->lo = s;
}

static inline void mc_acc192_add_i128(mc_acc192 *a, mc_i128 v)
{
    mc_acc192_add_u128(a, (mc_u128)v);
    if (v < 0)
        a->hi -= 1;   /* sign extension of v into the top word */
}

static inline void mc_acc192_add(mc_acc192 *a, const mc_acc192 *b)
{
    mc_acc192_add_u128(a, b->lo);
    a->hi += b->hi;
}

static inline void mc_scalar_from_acc192(mc_scalar *out, const mc_acc192 *a)
{
    memset(out, 0, sizeof *out);
    out->is_int = 1;
    out->words[0] = (uint64_t)a->lo;
    out->words[1] = (uint64_t)(a->lo >> 64);
    out->words[2] = a->hi;
    out->f = 0.0;
}

static inline void mc_scalar_from_i128(mc_scalar *out, mc_i128 v)
{
    mc_acc192 a = { (mc_u128)v, v < 0 ? UINT64_MAX : 0 };
    mc_scalar_from_acc192(out, &a);
}

static inline void mc_scalar_from_double(mc_scalar *out, double f)
{
    memset(out, 0, sizeof *out);
    out->is_int = 0;
    out->f = f;
}

/* ---------------------------------------------------------------- scratch
 * Per-worker scratch: `count` slots of `size` bytes, each rounded up to a
 * multiple of 64 bytes and 64-byte aligned (no false sharing).  Zeroed.
 * Returns the aligned pointer and stores the pointer to free in *base;
 * NULL on overflow or allocation failure. */
#define MC_CACHE_LINE 64

static inline size_t mc_slot_size(size_t size)
{
    return (size + MC_CACHE_LINE - 1) / MC_CACHE_LINE * MC_CACHE_LINE;
}

static inline void *mc_scratch_alloc(size_t count, size_t size, void **base)
{
    size_t slot = mc_slot_size(size);
    *base = NULL;
    if (slot == 0 || count == 0 || count > (SIZE_MAX - MC_CACHE_LINE) / slot)
        return NULL;
    void *p = calloc(1, count * slot + MC_CACHE_LINE);
    if (p == NULL)
        return NULL;
    *base = p;
    uintptr_t u = (uintptr_t)p;
    u = (u + MC_CACHE_LINE - 1) & ~(uintptr_t)(MC_CACHE_LINE - 1);
    return (void *)u;
}

#define MC_SLOT(ptr, size, i) ((void *)((char *)(ptr) + (size_t)(i) * mc_slot_size(size)))

/* ---------------------------------------------------------------- checks */
/* Finite (not inf, not NaN) without libm: x - x is NaN for inf and NaN. */
static inline int mc_isfinite(double x)
{
    return x - x == 0.0;
}

static inline int mc_dtype_valid(int dtype)
{
    return dtype >= 0 && dtype < MC_DTYPE_COUNT;
}

static inline int mc_dtype_is_int(int dtype)
{
    return dtype >= MC_I8 && dtype <= MC_U64;
}

static inline int mc_dtype_is_signed(int dtype)
{
    return dtype == MC_I8 || dtype == MC_I16 || dtype == MC_I32 || dtype == MC_I64;
}

/* A buffer of n elements of `size` bytes: NULL only if n == 0, item-aligned,
 * and n * size representable. */
static inline int mc_buffer_ok(const void *p, size_t n, size_t size)
{
    if (n == 0)
        return 1;
    if (p == NULL || size == 0)
        return 0;
    if (n > SIZE_MAX / size)
        return 0;
    if ((uintptr_t)p % size != 0)
        return 0;
    return 1;
}

/* Number of participants, or 0 if ex is NULL / invalid. */
static inline unsigned mc_kernel_threads(const mc_exec *ex)
{
    if (ex == NULL)
        return 0;
    return mc_exec_threads(ex);
}

#endif
