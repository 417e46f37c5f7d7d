/*
 * kernels_reduce.c -- reductions: sum_of_squares_range, sum, sum_of_squares,
 * dot, minmax, histogram.
 *
 * Determinism
 *   Integer results are exact, so the order in which per-worker partials are
 *   combined does not matter.  Float reductions partition [0, n) into blocks
 *   whose size depends only on n (mc__fblock_size); inside a block each
 *   element j goes to lane j % 16 of a double[16] accumulator, lanes are
 *   folded in a fixed tree, and block partials are combined pairwise
 *   (recursive halves) in block order after the parallel region.  No step
 *   depends on the thread count, the schedule or the SIMD clone: the lanes
 *   are explicit, so the vectoriser never reassociates, and the build uses
 *   -ffp-contract=off (no FMA contraction in any clone).
 */
#include "kernels_common.h"

/* ================================================================ sum of squares of 0..n-1 */

/* Fixed blocks of 2^16 indices; block with base b covers i = b + j,
 * j < cnt <= 2^16, and contributes cnt*b^2 + 2*b*s1 + s2 (exact, u128). */
#define SOSR_BLOCK_SHIFT 16
#define SOSR_BLOCK ((uint64_t)1 << SOSR_BLOCK_SHIFT)
#define SOSR_GRAIN_BLOCKS 16

/* s1 = sum_{j<cnt} j and s2 = sum_{j<cnt} j*j, computed term by term.
 * The terms are accumulated in 32 double lanes: every value involved is an
 * integer below 2^48 < 2^53 (j < 2^16, j*j < 2^32, a lane sums <= 2^11 terms),
 * so every double operation is exact and the result is exact.  Doubles are
 * used because x86 has no cheap 64-bit vector multiply: the j*j products
 * become plain vmulpd, 32 lanes hide the add latency, and the loop runs at
 * ~0.07 ns/index with the avx512f clone (vs ~0.18 for uint64 lanes, where gcc
 * emulates a full 64x64 multiply).  cnt comes from the caller at run time
 * (noinline + ifunc), and floating-point adds are never reassociated, so the
 * compiler cannot replace the loop with a closed form. */
#define SOSR_LANES 32

MC_TARGET_CLONES MC_NOINLINE
static void sosr_block(uint32_t cnt, uint64_t *s1_out, uint64_t *s2_out)
{
    double a1[SOSR_LANES], a2[SOSR_LANES], jd[SOSR_LANES];
    for (int l = 0; l < SOSR_LANES; l++) {
        a1[l] = 0.0;
        a2[l] = 0.0;
        jd[l] = (double)l;
    }
    uint32_t j = 0;
    for (; j + SOSR_LANES <= cnt; j += SOSR_LANES) {
        for (int l = 0; l < SOSR_LANES; l++) {
            a1[l] += jd[l];
            a2[l] += jd[l] * jd[l];
            jd[l] += (double)SOSR_LANES;
        }
    }
    uint64_t s1 = 0, s2 = 0;
    for (int l = 0; l < SOSR_LANES; l++) {
        s1 += (uint64_t)a1[l];
        s2 += (uint64_t)a2[l];
    }
    for (; j < cnt; j++) {
        s1 += j;
        s2 += (uint64_t)j * j;
    }
    *s1_out = s1;
    *s2_out = s2;
}

typedef struct {
    uint64_t n;
    mc_u128 *slots;  /* per worker, slot stride mc_slot_size(sizeof(mc_u128)) */
} sosr_ctx;

static void sosr_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const sosr_ctx *c = vctx;
    mc_u128 total = 0;
    for (size_t blk = begin; blk < end; blk++) {
        uint64_t b = (uint64_t)blk << SOSR_BLOCK_SHIFT;
        uint64_t cnt = c->n - b < SOSR_BLOCK ? c->n - b : SOSR_BLOCK;
        uint64_t s1, s2;
        sosr_block((uint32_t)cnt, &s1, &s2);
        /* sum_{j<cnt} (b+j)^2 = cnt*b^2 + 2*b*s1 + s2 (b <= 2^42: < 2^101) */
        mc_u128 bb = (mc_u128)b;
        total += (mc_u128)cnt * bb * bb + 2 * bb * s1 + s2;
    }
    mc_u128 *slot = MC_SLOT(c->slots, sizeof(mc_u128), worker);
    *slot += total;
}

int mc_sum_of_squares_range(const mc_exec *ex, uint64_t n, uint64_t *out_lo, uint64_t *out_hi)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0 || out_lo == NULL || out_hi == NULL)
        return MC_EINVAL;
    if (n > MC_SUM_OF_SQUARES_MAX_N)
        return MC_EOVERFLOW;
    *out_lo = 0;
    *out_hi = 0;
    if (n == 0)
        return MC_OK;

    void *base;
    mc_u128 *slots = mc_scratch_alloc(nt, sizeof(mc_u128), &base);
    if (slots == NULL)
        return MC_ENOMEM;
    sosr_ctx ctx = { n, slots };
    size_t nblocks = (size_t)((n + SOSR_BLOCK - 1) >> SOSR_BLOCK_SHIFT);
    int st = mc_parallel_for(ex, sosr_task, &ctx, nblocks, SOSR_GRAIN_BLOCKS, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        mc_u128 total = 0;
        for (unsigned w = 0; w < nt; w++)
            total += *(mc_u128 *)MC_SLOT(slots, sizeof(mc_u128), w);
        *out_lo = (uint64_t)total;
        *out_hi = (uint64_t)(total >> 64);
    }
    free(base);
    return st;
}

/* ================================================================ float reductions */

#define FBLOCK_MIN 4096u          /* elements per block for n <= 2^28 */
#define FBLOCK_MAX_COUNT 65536u   /* blocks grow (x2) so there are at most this many */
#define FRED_CHUNK_ELEMS ((size_t)1 << 17)  /* ~10-100 us of work per chunk */

/* Block size: a function of n only (the determinism contract). */
static size_t mc__fblock_size(size_t n)
{
    size_t b = FBLOCK_MIN;
    while ((n - 1) / b + 1 > FBLOCK_MAX_COUNT)   /* n >= 1 */
        b <<= 1;
    return b;
}

/* Fixed tree: lanes l and l+8, then l and l+4, l+2, l+1. */
static inline double fold16(double acc[16])
{
    for (int w = 8; w > 0; w >>= 1)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

typedef double (*fblock_fn)(const void *x, const void *y, size_t n);

/* Element j of the block (0-based) is added into lane j % 16. */
#define DEF_FBLOCK(NAME, T, EXPR)                                            \
    MC_TARGET_CLONES                                                         \
    static double NAME(const void *xv, const void *yv, size_t n)             \
    {                                                                        \
        const T *restrict x = xv;                                            \
        const T *restrict y = yv;                                            \
        (void)y;                                                             \
        double acc[16];                                                      \
        for (int l = 0; l < 16; l++)                                         \
            acc[l] = 0.0;                                                    \
        size_t i = 0;                                                        \
        for (; i + 16 <= n; i += 16) {                                       \
            for (int l = 0; l < 16; l++) {                                   \
                size_t j = i + (size_t)l;                                    \
                acc[l] += (EXPR);                                            \
            }                                                                \
        }                                                                    \
        for (; i < n; i++) {                                                 \
            size_t j = i;                                                    \
            acc[i & 15] += (EXPR);                                           \
        }                                                                    \
        return fold16(acc);                                                  \
    }

DEF_FBLOCK(fsum_f32, float, (double)x[j])
DEF_FBLOCK(fsum_f64, double, x[j])
DEF_FBLOCK(fsumsq_f32, float, (double)x[j] * (double)x[j])
DEF_FBLOCK(fsumsq_f64, double, x[j] * x[j])
DEF_FBLOCK(fdot_f32, float, (double)x[j] * (double)y[j])
DEF_FBLOCK(fdot_f64, double, x[j] * y[j])

typedef struct {
    fblock_fn fn;
    const char *x, *y;
    size_t esize, n, block;
    double *partials;
} fred_ctx;

static void fred_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    (void)worker;
    const fred_ctx *c = vctx;
    for (size_t b = begin; b < end; b++) {
        size_t start = b * c->block;
        size_t cnt = c->n - start < c->block ? c->n - start : c->block;
        const char *xp = c->x + start * c->esize;
        const char *yp = c->y ? c->y + start * c->esize : NULL;
        c->partials[b] = c->fn(xp, yp, cnt);
    }
}

/* Pairwise in index order: (p[0..h) ) + (p[h..n)), h = n / 2. */
static double pairwise(const double *p, size_t n)
{
    if (n == 1)
        return p[0];
    size_t h = n / 2;
    return pairwise(p, h) + pairwise(p + h, n - h);
}

static int float_reduce(const mc_exec *ex, fblock_fn fn, const void *x, const void *y,
                        size_t n, size_t esize, mc_scalar *out)
{
    if (n == 0) {
        mc_scalar_from_double(out, 0.0);
        return MC_OK;
    }
    size_t block = mc__fblock_size(n);
    size_t nblocks = (n - 1) / block + 1;
    double *partials = malloc(nblocks * sizeof(double));
    if (partials == NULL)
        return MC_ENOMEM;
    fred_ctx ctx = { fn, x, y, esize, n, block, partials };
    size_t grain = FRED_CHUNK_ELEMS / block;
    if (grain == 0)
        grain = 1;
    int st = mc_parallel_for(ex, fred_task, &ctx, nblocks, grain, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK)
        mc_scalar_from_double(out, pairwise(partials, nblocks));
    free(partials);
    return st;
}

/* ================================================================ integer reductions */

/* Elements per piece: small types keep int64 partials within a piece.
 * Bounds (piece <= 2^12 elements):
 *   sum, 8/16/32-bit:    |v| <= 2^32           -> |piece sum| <= 2^44
 *   sumsq, 8/16-bit:     v^2 <= 2^32           -> <= 2^44
 *   dot, 8/16-bit:       |x*y| <= 2^32         -> |.| <= 2^44
 * 32-bit squares/products (|t| < 2^64) and 64-bit sums use 64-bit lanes
 * with a carry count (DEF_IPIECE_LANES), exact in 128 bits per piece
 * (2^12 * 2^64 = 2^76); 64-bit squares/products (|t| <= 2^128) go to the
 * 192-bit accumulator (n * 2^128 < 2^189 with n < 2^61). */
#define IPIECE 4096u
#define IRED_GRAIN ((size_t)1 << 17)

typedef void (*ipiece_fn)(const void *x, const void *y, size_t n, mc_acc192 *acc);

#define DEF_IPIECE_I64(NAME, T, U, EXPR)                                     \
    MC_TARGET_CLONES                                                         \
    static void NAME(const void *xv, const void *yv, size_t n, mc_acc192 *acc) \
    {                                                                        \
        const T *restrict x = xv;                                            \
        const U *restrict y = yv;                                            \
        (void)y;                                                             \
        int64_t s = 0;                                                       \
        for (size_t j = 0; j < n; j++)                                       \
            s += (EXPR);                                                     \
        mc_acc192_add_i128(acc, s);                                          \
    }

DEF_IPIECE_I64(isum_i8, int8_t, int8_t, (int64_t)x[j])
DEF_IPIECE_I64(isum_u8, uint8_t, uint8_t, (int64_t)x[j])
DEF_IPIECE_I64(isum_i16, int16_t, int16_t, (int64_t)x[j])
DEF_IPIECE_I64(isum_u16, uint16_t, uint16_t, (int64_t)x[j])
DEF_IPIECE_I64(isum_i32, int32_t, int32_t, (int64_t)x[j])
DEF_IPIECE_I64(isum_u32, uint32_t, uint32_t, (int64_t)x[j])
DEF_IPIECE_I64(isumsq_i8, int8_t, int8_t, (int64_t)((int32_t)x[j] * (int32_t)x[j]))
DEF_IPIECE_I64(isumsq_u8, uint8_t, uint8_t, (int64_t)((int32_t)x[j] * (int32_t)x[j]))
DEF_IPIECE_I64(isumsq_i16, int16_t, int16_t, (int64_t)((int32_t)x[j] * (int32_t)x[j]))
DEF_IPIECE_I64(isumsq_u16, uint16_t, uint16_t, (int64_t)((uint32_t)x[j] * (uint32_t)x[j]))
DEF_IPIECE_I64(idot_i8, int8_t, int8_t, (int64_t)((int32_t)x[j] * (int32_t)y[j]))
DEF_IPIECE_I64(idot_u8, uint8_t, uint8_t, (int64_t)((int32_t)x[j] * (int32_t)y[j]))
DEF_IPIECE_I64(idot_i16, int16_t, int16_t, (int64_t)((int32_t)x[j] * (int32_t)y[j]))
DEF_IPIECE_I64(idot_u16, uint16_t, uint16_t, (int64_t)((uint32_t)x[j] * (uint32_t)y[j]))

/* 32-bit squares / products: 64-bit terms, 16 lanes of (uint64 sum, int64
 * carry) so it vectorises: lane value = s + 2^64 * k.  A signed term t adds
 * (uint64)t to s and -1 to k when t < 0 (two's complement), +1 to k on
 * unsigned wrap-around.  |k| <= piece length, so no overflow. */
#define DEF_IPIECE_LANES(NAME, T, TERM_T, EXPR, NEG)                      \
    MC_TARGET_CLONES                                                         \
    static void NAME(const void *xv, const void *yv, size_t n, mc_acc192 *acc) \
    {                                                                        \
        const T *restrict x = xv;                                            \
        const T *restrict y = yv;                                            \
        (void)y;                                                             \
        uint64_t s[16];                                                      \
        int64_t k[16];                                                       \
        for (int l = 0; l < 16; l++) {                                       \
            s[l] = 0;                                                        \
            k[l] = 0;                                                        \
        }                                                                    \
        size_t i = 0;                                                        \
        for (; i + 16 <= n; i += 16) {                                       \
            for (int l = 0; l < 16; l++) {                                   \
                size_t j = i + (size_t)l;                                    \
                TERM_T t = (EXPR);                                           \
                uint64_t u = (uint64_t)t;                                    \
                uint64_t ns = s[l] + u;                                      \
                k[l] += (int64_t)(ns < u) - (int64_t)(NEG);                  \
                s[l] = ns;                                                   \
            }                                                                \
        }                                                                    \
        mc_i128 tot = 0;                                                     \
        for (; i < n; i++) {                                                 \
            size_t j = i;                                                    \
            TERM_T t = (EXPR);                                               \
            tot += (mc_i128)t;                                               \
        }                                                                    \
        for (int l = 0; l < 16; l++)                                         \
            tot += (mc_i128)s[l] + (mc_i128)k[l] * ((mc_i128)1 << 64); \
        mc_acc192_add_i128(acc, tot);                                        \
    }

/* i32 square: |x| as uint32 then 32x32->64 unsigned (<= 2^62). */
DEF_IPIECE_LANES(isumsq_i32, int32_t, uint64_t,
                 (uint64_t)(x[j] < 0 ? 0u - (uint32_t)x[j] : (uint32_t)x[j]) *
                 (uint64_t)(x[j] < 0 ? 0u - (uint32_t)x[j] : (uint32_t)x[j]), 0)
DEF_IPIECE_LANES(isumsq_u32, uint32_t, uint64_t, (uint64_t)x[j] * (uint64_t)x[j], 0)
DEF_IPIECE_LANES(idot_i32, int32_t, int64_t, (int64_t)x[j] * (int64_t)y[j], t < 0)
DEF_IPIECE_LANES(idot_u32, uint32_t, uint64_t, (uint64_t)x[j] * (uint64_t)y[j], 0)

/* 64-bit sums: the same lane scheme with the element itself as the term. */
DEF_IPIECE_LANES(isum_i64, int64_t, int64_t, x[j], t < 0)
DEF_IPIECE_LANES(isum_u64, uint64_t, uint64_t, x[j], 0)

/* 64-bit squares / products: 128-bit terms into the 192-bit accumulator. */
static void isumsq_i64(const void *xv, const void *yv, size_t n, mc_acc192 *acc)
{
    (void)yv;
    const int64_t *x = xv;
    mc_acc192 a = { 0, 0 };
    for (size_t j = 0; j < n; j++) {
        uint64_t u = x[j] < 0 ? 0 - (uint64_t)x[j] : (uint64_t)x[j];
        mc_acc192_add_u128(&a, (mc_u128)u * u);
    }
    mc_acc192_add(acc, &a);
}

static void isumsq_u64(const void *xv, const void *yv, size_t n, mc_acc192 *acc)
{
    (void)yv;
    const uint64_t *x = xv;
    mc_acc192 a = { 0, 0 };
    for (size_t j = 0; j < n; j++)
        mc_acc192_add_u128(&a, (mc_u128)x[j] * x[j]);
    mc_acc192_add(acc, &a);
}

static void idot_i64(const void *xv, const void *yv, size_t n, mc_acc192 *acc)
{
    const int64_t *x = xv, *y = yv;
    mc_acc192 a = { 0, 0 };
    for (size_t j = 0; j < n; j++)
        mc_acc192_add_i128(&a, (mc_i128)x[j] * y[j]);   /* |x*y| <= 2^126 */
    mc_acc192_add(acc, &a);
}

static void idot_u64(const void *xv, const void *yv, size_t n, mc_acc192 *acc)
{
    const uint64_t *x = xv, *y = yv;
    mc_acc192 a = { 0, 0 };
    for (size_t j = 0; j < n; j++)
        mc_acc192_add_u128(&a, (mc_u128)x[j] * y[j]);
    mc_acc192_add(acc, &a);
}

typedef struct {
    ipiece_fn fn;
    const char *x, *y;
    size_t esize;
    mc_acc192 *slots;
} ired_ctx;

static void ired_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const ired_ctx *c = vctx;
    mc_acc192 local = { 0, 0 };
    for (size_t i = begin; i < end; i += IPIECE) {
        size_t cnt = end - i < IPIECE ? end - i : IPIECE;
        c->fn(c->x + i * c->esize, c->y ? c->y + i * c->esize : NULL, cnt, &local);
    }
    mc_acc192_add(MC_SLOT(c->slots, sizeof(mc_acc192), worker), &local);
}

static int int_reduce(const mc_exec *ex, unsigned nt, ipiece_fn fn, const void *x,
                      const void *y, size_t n, size_t esize, mc_scalar *out)
{
    mc_acc192 total = { 0, 0 };
    if (n == 0) {
        mc_scalar_from_acc192(out, &total);
        return MC_OK;
    }
    void *base;
    mc_acc192 *slots = mc_scratch_alloc(nt, sizeof(mc_acc192), &base);
    if (slots == NULL)
        return MC_ENOMEM;
    ired_ctx ctx = { fn, x, y, esize, slots };
    int st = mc_parallel_for(ex, ired_task, &ctx, n, IRED_GRAIN, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        for (unsigned w = 0; w < nt; w++)
            mc_acc192_add(&total, MC_SLOT(slots, sizeof(mc_acc192), w));
        mc_scalar_from_acc192(out, &total);
    }
    free(base);
    return st;
}

/* ================================================================ public reductions */

enum { OP_SUM = 0, OP_SUMSQ = 1, OP_DOT = 2 };

static const ipiece_fn int_table[3][8] = {
    { isum_i8, isum_u8, isum_i16, isum_u16, isum_i32, isum_u32, isum_i64, isum_u64 },
    { isumsq_i8, isumsq_u8, isumsq_i16, isumsq_u16, isumsq_i32, isumsq_u32, isumsq_i64, isumsq_u64 },
    { idot_i8, idot_u8, idot_i16, idot_u16, idot_i32, idot_u32, idot_i64, idot_u64 },
};

static const fblock_fn float_table[3][2] = {
    { fsum_f32, fsum_f64 },
    { fsumsq_f32, fsumsq_f64 },
    { fdot_f32, fdot_f64 },
};

static int reduce(const mc_exec *ex, int op, const void *x, const void *y, size_t n,
                  int dtype, mc_scalar *out)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0 || out == NULL)
        return MC_EINVAL;
    if (!mc_dtype_valid(dtype))
        return MC_EDTYPE;
    size_t es = mc_dtype_size(dtype);
    if (!mc_buffer_ok(x, n, es))
        return MC_EINVAL;
    if (op == OP_DOT && !mc_buffer_ok(y, n, es))
        return MC_EINVAL;
    if (mc_dtype_is_int(dtype))
        return int_reduce(ex, nt, int_table[op][dtype], x, op == OP_DOT ? y : NULL, n, es, out);
    return float_reduce(ex, float_table[op][dtype - MC_F32], x, op == OP_DOT ? y : NULL, n, es, out);
}

int mc_sum(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out)
{
    return reduce(ex, OP_SUM, x, NULL, n, dtype, out);
}

int mc_sum_of_squares(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out)
{
    return reduce(ex, OP_SUMSQ, x, NULL, n, dtype, out);
}

int mc_dot(const mc_exec *ex, const void *x, const void *y, size_t n, int dtype, mc_scalar *out)
{
    return reduce(ex, OP_DOT, x, y, n, dtype, out);
}

/* ================================================================ minmax */

/* Floats are compared through an order-preserving integer key:
 * key(bits) = bits ^ ((bits >> 63) & 0x7fff...), a total order with
 * -NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN.  Min and max of keys
 * are order-independent (so -0.0 is the minimum of {-0.0, +0.0} whatever the
 * thread count), and a NaN is present iff max key > key(+inf) or min key <
 * key(-inf).  Then both results are that NaN (the one with the largest key
 * if a positive-sign NaN exists, else the smallest key). */
static inline int64_t key64(int64_t b)
{
    return b ^ (int64_t)((uint64_t)(b >> 63) >> 1);
}

static inline int32_t key32(int32_t b)
{
    return b ^ (int32_t)((uint32_t)(b >> 31) >> 1);
}

typedef struct {
    mc_i128 mn, mx;
    int seen;
} mm_slot;

typedef void (*mm_fn)(const void *x, size_t n, mc_i128 *mn, mc_i128 *mx);

#define DEF_MM(NAME, T)                                                      \
    MC_TARGET_CLONES                                                         \
    static void NAME(const void *xv, size_t n, mc_i128 *mn_out, mc_i128 *mx_out) \
    {                                                                        \
        const T *restrict x = xv;                                            \
        T mn = x[0], mx = x[0];                                              \
        for (size_t j = 1; j < n; j++) {                                     \
            T v = x[j];                                                      \
            mn = v < mn ? v : mn;                                            \
            mx = v > mx ? v : mx;                                            \
        }                                                                    \
        *mn_out = (mc_i128)mn;                                               \
        *mx_out = (mc_i128)mx;                                               \
    }

DEF_MM(mm_i8, int8_t)
DEF_MM(mm_u8, uint8_t)
DEF_MM(mm_i16, int16_t)
DEF_MM(mm_u16, uint16_t)
DEF_MM(mm_i32, int32_t)
DEF_MM(mm_u32, uint32_t)
DEF_MM(mm_i64, int64_t)
DEF_MM(mm_u64, uint64_t)

MC_TARGET_CLONES
static void mm_f32(const void *xv, size_t n, mc_i128 *mn_out, mc_i128 *mx_out)
{
    const float *restrict x = xv;
    int32_t b0;
    memcpy(&b0, &x[0], sizeof b0);
    int32_t mn = key32(b0), mx = mn;
    for (size_t j = 1; j < n; j++) {
        int32_t b;
        memcpy(&b, &x[j], sizeof b);
        int32_t k = key32(b);
        mn = k < mn ? k : mn;
        mx = k > mx ? k : mx;
    }
    *mn_out = mn;
    *mx_out = mx;
}

MC_TARGET_CLONES
static void mm_f64(const void *xv, size_t n, mc_i128 *mn_out, mc_i128 *mx_out)
{
    const double *restrict x = xv;
    int64_t b0;
    memcpy(&b0, &x[0], sizeof b0);
    int64_t mn = key64(b0), mx = mn;
    for (size_t j = 1; j < n; j++) {
        int64_t b;
        memcpy(&b, &x[j], sizeof b);
        int64_t k = key64(b);
        mn = k < mn ? k : mn;
        mx = k > mx ? k : mx;
    }
    *mn_out = mn;
    *mx_out = mx;
}

static const mm_fn mm_table[MC_DTYPE_COUNT] = {
    mm_i8, mm_u8, mm_i16, mm_u16, mm_i32, mm_u32, mm_i64, mm_u64, mm_f32, mm_f64
};

typedef struct {
    mm_fn fn;
    const char *x;
    size_t esize;
    mm_slot *slots;
} mm_ctx;

static void mm_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const mm_ctx *c = vctx;
    mc_i128 mn, mx;
    c->fn(c->x + begin * c->esize, end - begin, &mn, &mx);
    mm_slot *s = MC_SLOT(c->slots, sizeof(mm_slot), worker);
    if (!s->seen) {
        s->mn = mn;
        s->mx = mx;
        s->seen = 1;
    } else {
        if (mn < s->mn)
            s->mn = mn;
        if (mx > s->mx)
            s->mx = mx;
    }
}

int mc_minmax(const mc_exec *ex, const void *x, size_t n, int dtype,
              mc_scalar *min_out, mc_scalar *max_out)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0 || min_out == NULL || max_out == NULL)
        return MC_EINVAL;
    if (!mc_dtype_valid(dtype))
        return MC_EDTYPE;
    size_t es = mc_dtype_size(dtype);
    if (n == 0 || !mc_buffer_ok(x, n, es))
        return MC_EINVAL;

    void *base;
    mm_slot *slots = mc_scratch_alloc(nt, sizeof(mm_slot), &base);
    if (slots == NULL)
        return MC_ENOMEM;
    mm_ctx ctx = { mm_table[dtype], x, es, slots };
    int st = mc_parallel_for(ex, mm_task, &ctx, n, (size_t)1 << 18, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        mc_i128 mn = 0, mx = 0;
        int seen = 0;
        for (unsigned w = 0; w < nt; w++) {
            mm_slot *s = MC_SLOT(slots, sizeof(mm_slot), w);
            if (!s->seen)
                continue;
            if (!seen || s->mn < mn)
                mn = s->mn;
            if (!seen || s->mx > mx)
                mx = s->mx;
            seen = 1;
        }
        if (mc_dtype_is_int(dtype)) {
            mc_scalar_from_i128(min_out, mn);
            mc_scalar_from_i128(max_out, mx);
        } else if (dtype == MC_F64) {
            int64_t kinf = key64(0x7ff0000000000000LL);
            int64_t kninf = key64((int64_t)0xfff0000000000000ULL);
            int64_t kmn = (int64_t)mn, kmx = (int64_t)mx;
            if (kmx > kinf)
                kmn = kmx;               /* positive-sign NaN */
            else if (kmn < kninf)
                kmx = kmn;               /* negative-sign NaN */
            int64_t bmn = key64(kmn), bmx = key64(kmx);   /* key64 is an involution */
            double dmn, dmx;
            memcpy(&dmn, &bmn, sizeof dmn);
            memcpy(&dmx, &bmx, sizeof dmx);
            mc_scalar_from_double(min_out, dmn);
            mc_scalar_from_double(max_out, dmx);
        } else {
            int32_t kinf = key32(0x7f800000);
            int32_t kninf = key32((int32_t)0xff800000u);
            int32_t kmn = (int32_t)mn, kmx = (int32_t)mx;
            if (kmx > kinf)
                kmn = kmx;
            else if (kmn < kninf)
                kmx = kmn;
            int32_t bmn = key32(kmn), bmx = key32(kmx);
            float fmn, fmx;
            memcpy(&fmn, &bmn, sizeof fmn);
            memcpy(&fmx, &bmx, sizeof fmx);
            mc_scalar_from_double(min_out, (double)fmn);
            mc_scalar_from_double(max_out, (double)fmx);
        }
    }
    free(base);
    return st;
}

/* ================================================================ histogram */

/* Bin index of v (after conversion to double), for lo <= v <= hi:
 *     t   = ((v * S - lo * S) * (double)bins) / (hi * S - lo * S)
 *     idx = min((size_t)t, bins - 1)          (t >= 0, so the cast is floor)
 * evaluated left to right in IEEE double.  S = 1 (so t is literally
 * ((v - lo) * bins) / (hi - lo)) unless (hi - lo) * bins overflows; then S
 * is the largest power of two 2^-e (e >= 1) for which (hi*S - lo*S) * bins is
 * finite.  v < lo, v > hi and NaN are skipped; t >= bins (v == hi, or
 * rounding) goes to the last bin. */
typedef struct {
    const char *x;
    int dtype;
    size_t esize, bins;
    double lo, hi, S, loS, rangeS, binsd;
    int64_t *local;   /* nt * bins */
} hist_ctx;

#define DEF_HIST(NAME, T)                                                    \
    static void NAME(const hist_ctx *c, const T *x, size_t n, int64_t *cnt)  \
    {                                                                        \
        const double lo = c->lo, hi = c->hi, S = c->S, loS = c->loS;         \
        const double rangeS = c->rangeS, binsd = c->binsd;                   \
        const size_t last = c->bins - 1;                                     \
        for (size_t j = 0; j < n; j++) {                                     \
            double v = (double)x[j];                                         \
            if (!(v >= lo && v <= hi))                                       \
                continue;                                                    \
            double t = ((v * S - loS) * binsd) / rangeS;                     \
            size_t idx = t >= binsd ? last : (size_t)t;                      \
            if (idx > last)                                                  \
                idx = last;                                                  \
            cnt[idx]++;                                                      \
        }                                                                    \
    }

DEF_HIST(hist_i8, int8_t)
DEF_HIST(hist_u8, uint8_t)
DEF_HIST(hist_i16, int16_t)
DEF_HIST(hist_u16, uint16_t)
DEF_HIST(hist_i32, int32_t)
DEF_HIST(hist_u32, uint32_t)
DEF_HIST(hist_i64, int64_t)
DEF_HIST(hist_u64, uint64_t)
DEF_HIST(hist_f32, float)
DEF_HIST(hist_f64, double)

static void hist_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const hist_ctx *c = vctx;
    int64_t *cnt = c->local + (size_t)worker * c->bins;
    const void *p = c->x + begin * c->esize;
    size_t n = end - begin;
    switch (c->dtype) {
    case MC_I8: hist_i8(c, p, n, cnt); break;
    case MC_U8: hist_u8(c, p, n, cnt); break;
    case MC_I16: hist_i16(c, p, n, cnt); break;
    case MC_U16: hist_u16(c, p, n, cnt); break;
    case MC_I32: hist_i32(c, p, n, cnt); break;
    case MC_U32: hist_u32(c, p, n, cnt); break;
    case MC_I64: hist_i64(c, p, n, cnt); break;
    case MC_U64: hist_u64(c, p, n, cnt); break;
    case MC_F32: hist_f32(c, p, n, cnt); break;
    default: hist_f64(c, p, n, cnt); break;
    }
}

typedef struct {
    const int64_t *local;
    size_t bins;
    unsigned nt;
    int64_t *counts;
} hist_merge_ctx;

static void hist_merge_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    (void)worker;
    const hist_merge_ctx *c = vctx;
    for (size_t b = begin; b < end; b++) {
        int64_t s = 0;
        for (unsigned w = 0; w < c->nt; w++)
            s += c->local[(size_t)w * c->bins + b];
        c->counts[b] = s;
    }
}

int mc_histogram(const mc_exec *ex, const void *x, size_t n, int dtype,
                 size_t bins, double lo, double hi, int64_t *counts)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0)
        return MC_EINVAL;
    if (!mc_dtype_valid(dtype))
        return MC_EDTYPE;
    size_t es = mc_dtype_size(dtype);
    if (!mc_buffer_ok(x, n, es))
        return MC_EINVAL;
    if (bins == 0 || counts == NULL || !mc_isfinite(lo) || !mc_isfinite(hi) || !(lo < hi))
        return MC_EINVAL;
    if (bins > SIZE_MAX / sizeof(int64_t) || (size_t)nt > SIZE_MAX / sizeof(int64_t) / bins)
        return MC_ENOMEM;

    double binsd = (double)bins;
    double S = 1.0;
    while (!mc_isfinite((hi * S - lo * S) * binsd))
        S *= 0.5;

    int64_t *local = calloc((size_t)nt * bins, sizeof(int64_t));
    if (local == NULL)
        return MC_ENOMEM;
    hist_ctx ctx = { x, dtype, es, bins, lo, hi, S, lo * S, hi * S - lo * S, binsd, local };
    int st = MC_OK;
    if (n > 0)
        st = mc_parallel_for(ex, hist_task, &ctx, n, (size_t)1 << 15, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        hist_merge_ctx m = { local, bins, nt, counts };
        st = mc_parallel_for(ex, hist_merge_task, &m, bins, (size_t)1 << 14, MC_SCHEDULE_STATIC);
    }
    free(local);
    return st;
}
