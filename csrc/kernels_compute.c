/*
 * kernels_compute.c -- compute kernels: count_primes, monte_carlo_pi,
 * mandelbrot, matmul_f64, square; plus mc_dtype_size and mc_simd_level.
 *
 * Every kernel's result is independent of the thread count and schedule:
 * counts are exact integers, and float outputs (mandelbrot, matmul, square)
 * are computed element by element with an operation order that does not
 * depend on the partition.
 */
#include "kernels_common.h"

/* ================================================================ info */

size_t mc_dtype_size(int dtype)
{
    switch (dtype) {
    case MC_I8: case MC_U8: return 1;
    case MC_I16: case MC_U16: return 2;
    case MC_I32: case MC_U32: case MC_F32: return 4;
    case MC_I64: case MC_U64: case MC_F64: return 8;
    default: return 0;
    }
}

/* Mirrors the ifunc resolver of target_clones("avx512f", "avx2", "default"):
 * the highest-priority supported target wins. */
const char *mc_simd_level(void)
{
#if MC_HAVE_TARGET_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return "avx512";
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
#endif
    return "baseline";
}

/* ================================================================ count_primes */

/* Odd-only segmented sieve.  Odd index k stands for the number 2k + 1; the
 * odd numbers below n are k in [0, K), K = n / 2 (k = 0 is 1, not
 * prime).  Segments of PSEG indices (2*PSEG numbers) form the parallel index
 * space; each worker sieves into its own byte buffer (0 = candidate). */
#define PSEG 32768u

typedef struct {
    uint64_t count;
    uint8_t buf[PSEG];
} prime_slot;

typedef struct {
    uint64_t K;
    const uint32_t *primes;   /* odd primes p with p*p < n, increasing */
    size_t nprimes;
    prime_slot *slots;
} prime_ctx;

MC_TARGET_CLONES
static uint64_t count_zero_bytes(const uint8_t *buf, size_t len)
{
    uint64_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += buf[i];
    return (uint64_t)len - s;
}

static void prime_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const prime_ctx *c = vctx;
    prime_slot *slot = MC_SLOT(c->slots, sizeof(prime_slot), worker);
    uint8_t *buf = slot->buf;
    uint64_t found = 0;
    for (size_t s = begin; s < end; s++) {
        uint64_t klo = (uint64_t)s * PSEG;
        uint64_t khi = c->K - klo < PSEG ? c->K : klo + PSEG;
        size_t len = (size_t)(khi - klo);
        memset(buf, 0, len);
        for (size_t i = 0; i < c->nprimes; i++) {
            uint64_t p = c->primes[i];
            uint64_t k0 = (p * p - 1) / 2;   /* first odd multiple worth marking: p*p */
            if (k0 >= khi)
                break;
            uint64_t st;
            if (k0 >= klo) {
                st = k0 - klo;
            } else {
                uint64_t r = (klo - k0) % p;
                st = r ? p - r : 0;
            }
            for (uint64_t j = st; j < len; j += p)
                buf[j] = 1;
        }
        found += count_zero_bytes(buf, len);
        if (klo == 0)
            found -= 1;   /* k = 0 is the number 1 */
    }
    slot->count += found;
}

/* floor(sqrt(m)) for m < 2^64, bit by bit (no libm). */
static uint64_t isqrt_u64(uint64_t m)
{
    uint64_t r = 0;
    for (uint64_t bit = (uint64_t)1 << 31; bit != 0; bit >>= 1) {
        uint64_t t = r + bit;
        if (t <= m / t)   /* t*t <= m without overflow */
            r = t;
    }
    return r;
}

/* Marks the odd composites <= r in comp[] (r + 1 bytes, zeroed here); returns how
 * many odd primes p, 3 <= p <= r, there are. */
static size_t sieve_base(uint64_t r, uint8_t *comp)
{
    memset(comp, 0, (size_t)r + 1);
    size_t np = 0;
    for (uint64_t i = 3; i <= r; i += 2) {
        if (comp[i])
            continue;
        np++;
        for (uint64_t j = i * i; j <= r; j += 2 * i)
            comp[j] = 1;
    }
    return np;
}

/* The odd primes <= r of a sieve_base()d comp[], in order. */
static void collect_base(uint64_t r, const uint8_t *comp, uint32_t *primes)
{
    size_t np = 0;
    for (uint64_t i = 3; i <= r; i += 2)
        if (!comp[i])
            primes[np++] = (uint32_t)i;
}

int mc_count_primes(const mc_exec *ex, uint64_t n, uint64_t *out)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0 || out == NULL || n > MC_COUNT_PRIMES_MAX_N)
        return MC_EINVAL;
    *out = 0;
    if (n <= 2)
        return MC_OK;

    uint64_t K = n / 2;   /* 2k + 1 < n  <=>  k < n / 2 */
    uint64_t nseg64 = (K + PSEG - 1) / PSEG;
    if (nseg64 > SIZE_MAX)
        return MC_EINVAL;   /* only reachable with a 32-bit size_t */

    /* Base primes: odd p <= r = isqrt(n - 1), so p*p < n.  r <= 2^24. */
    uint64_t r = isqrt_u64(n - 1);
    if (nseg64 == 1) {
        /* n <= 2 * PSEG + 1, so r <= 256: one segment, sieved in this thread on the stack,
         * with no allocation and no pool hand-off (a small call costs what its sieve does). */
        uint8_t small_comp[257];
        uint32_t small_primes[128];   /* the odd numbers 3..255 */
        size_t small_np = sieve_base(r, small_comp);
        collect_base(r, small_comp, small_primes);
        prime_slot one;
        one.count = 0;
        prime_ctx small = { K, small_primes, small_np, &one };
        prime_task(&small, 0, 1, 0);
        *out = 1 + one.count;   /* and the prime 2 (n > 2) */
        return MC_OK;
    }
    uint8_t *comp = malloc((size_t)r + 1);
    if (comp == NULL)
        return MC_ENOMEM;
    size_t np = sieve_base(r, comp);
    uint32_t *primes = malloc((np ? np : 1) * sizeof(uint32_t));
    if (primes == NULL) {
        free(comp);
        return MC_ENOMEM;
    }
    collect_base(r, comp, primes);
    free(comp);

    void *base;
    prime_slot *slots = mc_scratch_alloc(nt, sizeof(prime_slot), &base);
    if (slots == NULL) {
        free(primes);
        return MC_ENOMEM;
    }
    prime_ctx ctx = { K, primes, np, slots };
    int st = mc_parallel_for(ex, prime_task, &ctx, (size_t)nseg64, 2, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        uint64_t total = 1;   /* the prime 2 (n > 2) */
        for (unsigned w = 0; w < nt; w++)
            total += ((prime_slot *)MC_SLOT(slots, sizeof(prime_slot), w))->count;
        *out = total;
    }
    free(base);
    free(primes);
    return st;
}

/* ================================================================ monte_carlo_pi */

/* Point i (0-based, i < samples) is the i-th output of splitmix64 seeded
 * with `seed` (all arithmetic mod 2^64):
 *     z = seed + (i + 1) * 0x9E3779B97F4A7C15
 *     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *     z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *     z =  z ^ (z >> 31)
 *     x = z >> 32, y = z & 0xFFFFFFFF
 * and it is a hit iff x*x + y*y < 2^64 (exact integers).  pi ~ 4*hits/samples. */
#define SM_GAMMA 0x9E3779B97F4A7C15ULL
#define SM_M1 0xBF58476D1CE4E5B9ULL
#define SM_M2 0x94D049BB133111EBULL

MC_TARGET_CLONES
static uint64_t mcpi_chunk(uint64_t seed, uint64_t begin, uint64_t n)
{
    uint64_t hits = 0;
    uint64_t state = seed + begin * SM_GAMMA;   /* additive induction, no multiply */
    for (uint64_t j = 0; j < n; j++) {
        state += SM_GAMMA;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * SM_M1;
        z = (z ^ (z >> 27)) * SM_M2;
        z ^= z >> 31;
        uint64_t x = z >> 32, y = z & 0xFFFFFFFFu;
        uint64_t a = x * x, b = y * y;   /* each < 2^64 */
        hits += (uint64_t)(a + b >= a);  /* no wrap-around <=> a + b < 2^64 */
    }
    return hits;
}

typedef struct {
    uint64_t seed;
    uint64_t *slots;
} mcpi_ctx;

static void mcpi_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const mcpi_ctx *c = vctx;
    uint64_t h = mcpi_chunk(c->seed, (uint64_t)begin, (uint64_t)(end - begin));
    *(uint64_t *)MC_SLOT(c->slots, sizeof(uint64_t), worker) += h;
}

int mc_monte_carlo_pi(const mc_exec *ex, uint64_t samples, uint64_t seed, uint64_t *hits)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0 || hits == NULL)
        return MC_EINVAL;
    if (samples > SIZE_MAX)
        return MC_EINVAL;   /* only with a 32-bit size_t */
    *hits = 0;
    if (samples == 0)
        return MC_OK;
    void *base;
    uint64_t *slots = mc_scratch_alloc(nt, sizeof(uint64_t), &base);
    if (slots == NULL)
        return MC_ENOMEM;
    mcpi_ctx ctx = { seed, slots };
    int st = mc_parallel_for(ex, mcpi_task, &ctx, (size_t)samples, (size_t)1 << 16,
                             MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        uint64_t total = 0;
        for (unsigned w = 0; w < nt; w++)
            total += *(uint64_t *)MC_SLOT(slots, sizeof(uint64_t), w);
        *hits = total;
    }
    free(base);
    return st;
}

/* ================================================================ mandelbrot */

/* Per pixel (row, col), in IEEE double, evaluated exactly in this order:
 *     cr = xmin + ((col + 0.5) * (xmax - xmin)) / width
 *     ci = ymin + ((row + 0.5) * (ymax - ymin)) / height
 *     zr = zi = 0.0; it = 0
 *     while it < max_iter:
 *         zr2 = zr * zr; zi2 = zi * zi
 *         if zr2 + zi2 > 4.0: break
 *         zi = (2.0 * zr) * zi + ci
 *         zr = (zr2 - zi2) + cr
 *         it += 1
 *     out = it
 * (col, row, width, height converted to double; no FMA.)  8 pixels run in
 * lock-step lanes; an escaped lane keeps its z and count (its z stays
 * escaped), so each lane's count is exactly that of the scalar loop above. */
/* mandel_row is written with GNU vector extensions (one vector = LANES
 * doubles, VECS independent vectors in flight to hide the ~13-cycle
 * dependency chain of one iteration).  The best vector width differs per ISA
 * and gcc lowers over-wide generic vectors badly, so instead of
 * target_clones there are three explicit variants, selected with the same
 * __builtin_cpu_supports tests (and the same availability condition) as the
 * ifunc resolvers and mc_simd_level(). */
#define MB_BATCH 8   /* iterations between "all lanes escaped?" checks */
typedef void (*mandel_row_fn)(size_t width, uint32_t max_iter, double xmin, double dx,
                              double wd, double ci, uint32_t *out);

#define MB_NAME mandel_row_base
#define MB_ATTR
#define MB_LANES 2
#define MB_VECS 2
#include "kernels_mandel.h"

#if MC_HAVE_TARGET_CLONES
#  define MB_NAME mandel_row_avx2
#  define MB_ATTR __attribute__((target("avx2")))
#  define MB_LANES 4
#  define MB_VECS 4
#  include "kernels_mandel.h"

#  define MB_NAME mandel_row_avx512
#  define MB_ATTR __attribute__((target("avx512f")))
#  define MB_LANES 8
#  define MB_VECS 4
#  include "kernels_mandel.h"
#endif

static mandel_row_fn mandel_select(void)
{
#if MC_HAVE_TARGET_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return mandel_row_avx512;
    if (__builtin_cpu_supports("avx2"))
        return mandel_row_avx2;
#endif
    return mandel_row_base;
}

typedef struct {
    mandel_row_fn row_fn;
    size_t width;
    uint32_t max_iter;
    double xmin, dx, wd, ymin, dy, hd;
    uint32_t *out;
} mandel_ctx;

static void mandel_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    (void)worker;
    const mandel_ctx *c = vctx;
    for (size_t row = begin; row < end; row++) {
        double ci = c->ymin + (((double)row + 0.5) * c->dy) / c->hd;
        c->row_fn(c->width, c->max_iter, c->xmin, c->dx, c->wd, ci, c->out + row * c->width);
    }
}

int mc_mandelbrot(const mc_exec *ex, size_t width, size_t height, uint32_t max_iter,
                  double xmin, double xmax, double ymin, double ymax, uint32_t *out)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0)
        return MC_EINVAL;
    if (width != 0 && height > SIZE_MAX / width)
        return MC_EINVAL;
    size_t npix = width * height;
    if (npix == 0)
        return MC_OK;
    if (!mc_buffer_ok(out, npix, sizeof(uint32_t)))
        return MC_EINVAL;
    mandel_ctx ctx = { mandel_select(), width, max_iter, xmin, xmax - xmin, (double)width,
                       ymin, ymax - ymin, (double)height, out };
    size_t grain = 4096 / width;
    if (grain == 0)
        grain = 1;
    return mc_parallel_for(ex, mandel_task, &ctx, height, grain, MC_SCHEDULE_DYNAMIC);
}

/* ================================================================ matmul_f64 */

/* c[i][j] = sum over kk = 0..k-1, in increasing kk, of a[i][kk] * b[kk][j],
 * starting from 0.0: exactly the naive triple loop's rounding sequence
 * (no FMA), whatever the tiling or the row partition.  Tiles: MM_KB rows of
 * b by MM_JB columns (i-k-j order inside a tile, the j loop vectorises). */
#define MM_KB 128
#define MM_JB 512

MC_TARGET_CLONES
static void mm_tile(const double *restrict a, const double *restrict b, double *restrict c,
                    size_t i0, size_t i1, size_t k0, size_t k1, size_t j0, size_t j1,
                    size_t k, size_t n)
{
    size_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        double *c0 = c + i * n, *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
        const double *a0 = a + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
        for (size_t kk = k0; kk < k1; kk++) {
            const double *brow = b + kk * n;
            double x0 = a0[kk], x1 = a1[kk], x2 = a2[kk], x3 = a3[kk];
            for (size_t j = j0; j < j1; j++) {
                double bj = brow[j];
                c0[j] += x0 * bj;
                c1[j] += x1 * bj;
                c2[j] += x2 * bj;
                c3[j] += x3 * bj;
            }
        }
    }
    for (; i < i1; i++) {
        double *ci = c + i * n;
        const double *ai = a + i * k;
        for (size_t kk = k0; kk < k1; kk++) {
            const double *brow = b + kk * n;
            double x = ai[kk];
            for (size_t j = j0; j < j1; j++)
                ci[j] += x * brow[j];
        }
    }
}

typedef struct {
    const double *a, *b;
    double *c;
    size_t k, n;
} matmul_ctx;

static void matmul_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    (void)worker;
    const matmul_ctx *m = vctx;
    for (size_t i = begin; i < end; i++)
        memset(m->c + i * m->n, 0, m->n * sizeof(double));
    for (size_t j0 = 0; j0 < m->n; j0 += MM_JB) {
        size_t j1 = m->n - j0 < MM_JB ? m->n : j0 + MM_JB;
        for (size_t k0 = 0; k0 < m->k; k0 += MM_KB) {   /* k blocks in increasing order */
            size_t k1 = m->k - k0 < MM_KB ? m->k : k0 + MM_KB;
            mm_tile(m->a, m->b, m->c, begin, end, k0, k1, j0, j1, m->k, m->n);
        }
    }
}

static int ranges_overlap(const void *p, size_t pbytes, const void *q, size_t qbytes)
{
    if (pbytes == 0 || qbytes == 0)
        return 0;
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
    return a < b + qbytes && b < a + pbytes;
}

int mc_matmul_f64(const mc_exec *ex, const double *a, const double *b, double *c,
                  size_t m, size_t k, size_t n)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0)
        return MC_EINVAL;
    if ((m && k > SIZE_MAX / m) || (k && n > SIZE_MAX / k) || (m && n > SIZE_MAX / m))
        return MC_EINVAL;
    size_t mk = m * k, kn = k * n, mn = m * n;
    if (!mc_buffer_ok(a, mk, sizeof(double)) || !mc_buffer_ok(b, kn, sizeof(double)) ||
        !mc_buffer_ok(c, mn, sizeof(double)))
        return MC_EINVAL;
    if (mn == 0)
        return MC_OK;
    if (ranges_overlap(c, mn * sizeof(double), a, mk * sizeof(double)) ||
        ranges_overlap(c, mn * sizeof(double), b, kn * sizeof(double)))
        return MC_EINVAL;   /* c must not alias an input */
    matmul_ctx ctx = { a, b, c, k, n };
    /* ~2^20 multiply-adds per chunk (~100 us); rows in multiples of 4. */
    size_t work_per_row = (k ? k : 1) * n;
    size_t grain = ((size_t)1 << 20) / work_per_row;
    grain = grain < 4 ? 4 : grain & ~(size_t)3;
    return mc_parallel_for(ex, matmul_task, &ctx, m, grain, MC_SCHEDULE_DYNAMIC);
}

/* ================================================================ square */

/* Integer inputs: the square of |v| (computed exactly) must be <= the
 * maximum of out_dtype.  Float inputs / F64 output: the product is computed
 * in the output type after converting the input (f32*f32 in float for an
 * f32 output; (double)v * (double)v for an f64 output). */
typedef int (*sq_fn)(const void *x, void *out, size_t n);   /* returns overflow flag */

/* <= 32-bit integer input: |v| < 2^32 so the uint64 square is exact. */
#define DEF_SQ_SMALL(NAME, TI, TO, LIMIT)                                    \
    MC_TARGET_CLONES                                                         \
    static int NAME(const void *xv, void *ov, size_t n)                      \
    {                                                                        \
        const TI *restrict x = xv;                                           \
        TO *restrict o = ov;                                                 \
        uint64_t of = 0;                                                     \
        for (size_t j = 0; j < n; j++) {                                     \
            int64_t w = (int64_t)x[j];                                       \
            uint64_t u = w < 0 ? 0 - (uint64_t)w : (uint64_t)w;              \
            uint64_t sq = u * u;                                             \
            of |= (uint64_t)(sq > (uint64_t)(LIMIT));                        \
            o[j] = (TO)sq;                                                   \
        }                                                                    \
        return of != 0;                                                      \
    }

#define MAG_I64(v) ((v) < 0 ? 0 - (uint64_t)(v) : (uint64_t)(v))
#define MAG_U64(v) ((uint64_t)(v))

#define DEF_SQ_WIDE(NAME, TI, TO, LIMIT, MAG)                                \
    static int NAME(const void *xv, void *ov, size_t n)                      \
    {                                                                        \
        const TI *restrict x = xv;                                           \
        TO *restrict o = ov;                                                 \
        int of = 0;                                                          \
        for (size_t j = 0; j < n; j++) {                                     \
            uint64_t u = MAG(x[j]);                                          \
            uint64_t sq;                                                     \
            if (__builtin_mul_overflow(u, u, &sq) || sq > (uint64_t)(LIMIT))  \
                of = 1;                                                      \
            o[j] = (TO)sq;                                                   \
        }                                                                    \
        return of;                                                           \
    }

#define DEF_SQ_FLOAT(NAME, TI, TO)                                           \
    MC_TARGET_CLONES                                                         \
    static int NAME(const void *xv, void *ov, size_t n)                      \
    {                                                                        \
        const TI *restrict x = xv;                                           \
        TO *restrict o = ov;                                                 \
        for (size_t j = 0; j < n; j++) {                                     \
            TO v = (TO)x[j];                                                 \
            o[j] = v * v;                                                    \
        }                                                                    \
        return 0;                                                            \
    }

/* same dtype */
DEF_SQ_SMALL(sq_i8_i8, int8_t, int8_t, INT8_MAX)
DEF_SQ_SMALL(sq_u8_u8, uint8_t, uint8_t, UINT8_MAX)
DEF_SQ_SMALL(sq_i16_i16, int16_t, int16_t, INT16_MAX)
DEF_SQ_SMALL(sq_u16_u16, uint16_t, uint16_t, UINT16_MAX)
DEF_SQ_SMALL(sq_i32_i32, int32_t, int32_t, INT32_MAX)
DEF_SQ_SMALL(sq_u32_u32, uint32_t, uint32_t, UINT32_MAX)
DEF_SQ_WIDE(sq_i64_i64, int64_t, int64_t, INT64_MAX, MAG_I64)
DEF_SQ_WIDE(sq_u64_u64, uint64_t, uint64_t, UINT64_MAX, MAG_U64)
/* -> i64 */
DEF_SQ_SMALL(sq_i8_i64, int8_t, int64_t, INT64_MAX)
DEF_SQ_SMALL(sq_u8_i64, uint8_t, int64_t, INT64_MAX)
DEF_SQ_SMALL(sq_i16_i64, int16_t, int64_t, INT64_MAX)
DEF_SQ_SMALL(sq_u16_i64, uint16_t, int64_t, INT64_MAX)
DEF_SQ_SMALL(sq_i32_i64, int32_t, int64_t, INT64_MAX)
DEF_SQ_SMALL(sq_u32_i64, uint32_t, int64_t, INT64_MAX)
DEF_SQ_WIDE(sq_u64_i64, uint64_t, int64_t, INT64_MAX, MAG_U64)
/* -> u64 */
DEF_SQ_SMALL(sq_i8_u64, int8_t, uint64_t, UINT64_MAX)
DEF_SQ_SMALL(sq_u8_u64, uint8_t, uint64_t, UINT64_MAX)
DEF_SQ_SMALL(sq_i16_u64, int16_t, uint64_t, UINT64_MAX)
DEF_SQ_SMALL(sq_u16_u64, uint16_t, uint64_t, UINT64_MAX)
DEF_SQ_SMALL(sq_i32_u64, int32_t, uint64_t, UINT64_MAX)
DEF_SQ_SMALL(sq_u32_u64, uint32_t, uint64_t, UINT64_MAX)
DEF_SQ_WIDE(sq_i64_u64, int64_t, uint64_t, UINT64_MAX, MAG_I64)
/* -> f64 (and f32 -> f32) */
DEF_SQ_FLOAT(sq_i8_f64, int8_t, double)
DEF_SQ_FLOAT(sq_u8_f64, uint8_t, double)
DEF_SQ_FLOAT(sq_i16_f64, int16_t, double)
DEF_SQ_FLOAT(sq_u16_f64, uint16_t, double)
DEF_SQ_FLOAT(sq_i32_f64, int32_t, double)
DEF_SQ_FLOAT(sq_u32_f64, uint32_t, double)
DEF_SQ_FLOAT(sq_i64_f64, int64_t, double)
DEF_SQ_FLOAT(sq_u64_f64, uint64_t, double)
DEF_SQ_FLOAT(sq_f32_f32, float, float)
DEF_SQ_FLOAT(sq_f32_f64, float, double)
DEF_SQ_FLOAT(sq_f64_f64, double, double)

static sq_fn square_fn(int dtype, int out_dtype)
{
    static const sq_fn same[MC_DTYPE_COUNT] = {
        sq_i8_i8, sq_u8_u8, sq_i16_i16, sq_u16_u16, sq_i32_i32, sq_u32_u32,
        sq_i64_i64, sq_u64_u64, sq_f32_f32, sq_f64_f64
    };
    static const sq_fn to_i64[8] = {
        sq_i8_i64, sq_u8_i64, sq_i16_i64, sq_u16_i64, sq_i32_i64, sq_u32_i64,
        sq_i64_i64, sq_u64_i64
    };
    static const sq_fn to_u64[8] = {
        sq_i8_u64, sq_u8_u64, sq_i16_u64, sq_u16_u64, sq_i32_u64, sq_u32_u64,
        sq_i64_u64, sq_u64_u64
    };
    static const sq_fn to_f64[MC_DTYPE_COUNT] = {
        sq_i8_f64, sq_u8_f64, sq_i16_f64, sq_u16_f64, sq_i32_f64, sq_u32_f64,
        sq_i64_f64, sq_u64_f64, sq_f32_f64, sq_f64_f64
    };
    if (out_dtype == dtype)
        return same[dtype];
    if (out_dtype == MC_F64)
        return to_f64[dtype];
    if (mc_dtype_is_int(dtype) && out_dtype == MC_I64)
        return to_i64[dtype];
    if (mc_dtype_is_int(dtype) && out_dtype == MC_U64)
        return to_u64[dtype];
    return NULL;
}

#define SQ_PIECE 2048   /* in-place pieces go through a stack copy (16 KiB) */

typedef struct {
    sq_fn fn;
    const char *x;
    char *out;
    size_t in_size, out_size;
    int *flags;   /* per worker */
} sq_ctx;

static void sq_task(void *vctx, size_t begin, size_t end, unsigned worker)
{
    const sq_ctx *c = vctx;
    int of = 0;
    if (c->x == (const char *)c->out) {
        /* In place (same dtype): the kernels take restrict pointers, so copy
         * each piece of the input aside first. */
        uint64_t tmp[SQ_PIECE];
        for (size_t i = begin; i < end; i += SQ_PIECE) {
            size_t cnt = end - i < SQ_PIECE ? end - i : SQ_PIECE;
            memcpy(tmp, c->x + i * c->in_size, cnt * c->in_size);
            of |= c->fn(tmp, c->out + i * c->out_size, cnt);
        }
    } else {
        of = c->fn(c->x + begin * c->in_size, c->out + begin * c->out_size, end - begin);
    }
    if (of)
        *(int *)MC_SLOT(c->flags, sizeof(int), worker) = 1;
}

int mc_square(const mc_exec *ex, const void *x, int dtype, void *out, int out_dtype, size_t n)
{
    unsigned nt = mc_kernel_threads(ex);
    if (nt == 0)
        return MC_EINVAL;
    if (!mc_dtype_valid(dtype) || !mc_dtype_valid(out_dtype))
        return MC_EDTYPE;
    sq_fn fn = square_fn(dtype, out_dtype);
    if (fn == NULL)
        return MC_EDTYPE;
    size_t is = mc_dtype_size(dtype), os = mc_dtype_size(out_dtype);
    if (!mc_buffer_ok(x, n, is) || !mc_buffer_ok(out, n, os))
        return MC_EINVAL;
    if (n == 0)
        return MC_OK;
    if (ranges_overlap(x, n * is, out, n * os) && !(x == out && is == os))
        return MC_EINVAL;   /* partial overlap */

    void *base;
    int *flags = mc_scratch_alloc(nt, sizeof(int), &base);
    if (flags == NULL)
        return MC_ENOMEM;
    sq_ctx ctx = { fn, x, out, is, os, flags };
    int st = mc_parallel_for(ex, sq_task, &ctx, n, (size_t)1 << 16, MC_SCHEDULE_DYNAMIC);
    if (st == MC_OK) {
        for (unsigned w = 0; w < nt; w++)
            if (*(int *)MC_SLOT(flags, sizeof(int), w))
                st = MC_EOVERFLOW;
    }
    free(base);
    return st;
}
