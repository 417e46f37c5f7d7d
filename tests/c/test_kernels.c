/*
 * test_kernels.c -- standalone checks of the manycore kernels against naive
 * reference loops, for the serial shim and pools of 1, 2, 3 and 8 threads.
 *
 *   gcc -std=c11 -O2 -pthread -Icsrc csrc/[*].c tests/c/test_kernels.c -o /tmp/tk && /tmp/tk
 *   (csrc/[*].c: every C file of csrc/)
 *
 * Exits nonzero on the first batch of failures (every failed check prints).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manycore.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
        }                                                                    \
    } while (0)

/* ------------------------------------------------------------ execs */
#define NEXEC 6
static mc_exec execs[NEXEC];
static const char *exec_names[NEXEC] = { "serial", "pool1", "pool2", "pool3", "pool8", "pool8/n2" };
static mc_pool *pools[4];

static void setup_execs(void)
{
    static const unsigned sizes[4] = { 1, 2, 3, 8 };
    memset(execs, 0, sizeof execs);
    for (int i = 0; i < 4; i++) {
        int err = 0;
        int st = mc_pool_create(&pools[i], sizes[i], &err);
        if (st != MC_OK) {
            fprintf(stderr, "mc_pool_create(%u) failed: %d (%s), os error %d\n", sizes[i], st,
                    mc_strerror(st), err);
            exit(2);
        }
        execs[i + 1].pool = pools[i];
    }
    execs[5].pool = pools[3];
    execs[5].nthreads = 2;
}

/* ------------------------------------------------------------ data */
static uint64_t rng_state = 0x1234567887654321ULL;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t dsize(int dt) { return mc_dtype_size(dt); }

/* Random buffer of dtype; extreme values sprinkled in for ints. */
static void *rand_buf(int dt, size_t n, int mode)
{
    size_t es = dsize(dt);
    void *p = malloc(n * es + 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd();
        int extreme = mode == 1 || (r % 97 == 0);
        switch (dt) {
        case MC_I8: ((int8_t *)p)[i] = extreme ? (r & 1 ? INT8_MIN : INT8_MAX) : (int8_t)(r >> 8); break;
        case MC_U8: ((uint8_t *)p)[i] = extreme ? UINT8_MAX : (uint8_t)(r >> 8); break;
        case MC_I16: ((int16_t *)p)[i] = extreme ? (r & 1 ? INT16_MIN : INT16_MAX) : (int16_t)(r >> 8); break;
        case MC_U16: ((uint16_t *)p)[i] = extreme ? UINT16_MAX : (uint16_t)(r >> 8); break;
        case MC_I32: ((int32_t *)p)[i] = extreme ? (r & 1 ? INT32_MIN : INT32_MAX) : (int32_t)(r >> 8); break;
        case MC_U32: ((uint32_t *)p)[i] = extreme ? UINT32_MAX : (uint32_t)(r >> 8); break;
        case MC_I64: ((int64_t *)p)[i] = extreme ? (r & 1 ? INT64_MIN : INT64_MAX) : (int64_t)r; break;
        case MC_U64: ((uint64_t *)p)[i] = extreme ? UINT64_MAX : r; break;
        case MC_F32: ((float *)p)[i] = (float)((double)(int64_t)r / 9.2e18 * (mode == 2 ? 1e3 : 1.0)); break;
        case MC_F64: ((double *)p)[i] = (double)(int64_t)r / 9.2e18 * (mode == 2 ? 1e300 : 1.0) + (double)(r % 7); break;
        }
    }
    return p;
}

static i128 get_int(const void *p, int dt, size_t i)
{
    switch (dt) {
    case MC_I8: return ((const int8_t *)p)[i];
    case MC_U8: return ((const uint8_t *)p)[i];
    case MC_I16: return ((const int16_t *)p)[i];
    case MC_U16: return ((const uint16_t *)p)[i];
    case MC_I32: return ((const int32_t *)p)[i];
    case MC_U32: return ((const uint32_t *)p)[i];
    case MC_I64: return ((const int64_t *)p)[i];
    default: return ((const uint64_t *)p)[i];
    }
}

static double get_double(const void *p, int dt, size_t i)
{
    switch (dt) {
    case MC_F32: return (double)((const float *)p)[i];
    case MC_F64: return ((const double *)p)[i];
    case MC_I64: return (double)((const int64_t *)p)[i];
    case MC_U64: return (double)((const uint64_t *)p)[i];
    default: return (double)get_int(p, dt, i);
    }
}

/* ------------------------------------------------------------ 192-bit reference */
typedef struct { uint64_t w[3]; } i192;

static void add192(i192 *a, uint64_t w0, uint64_t w1, uint64_t w2)
{
    uint64_t s0 = a->w[0] + w0;
    uint64_t c0 = s0 < w0;
    uint64_t s1 = a->w[1] + w1;
    uint64_t c1 = s1 < w1;
    uint64_t s1b = s1 + c0;
    c1 += s1b < s1;
    a->w[0] = s0;
    a->w[1] = s1b;
    a->w[2] += w2 + c1;
}

static void add192_i128(i192 *a, i128 v)
{
    u128 u = (u128)v;
    add192(a, (uint64_t)u, (uint64_t)(u >> 64), v < 0 ? UINT64_MAX : 0);
}

static void add192_u128(i192 *a, u128 u)
{
    add192(a, (uint64_t)u, (uint64_t)(u >> 64), 0);
}

/* exact product of two 64-bit-range integers held in i128 */
static void add_product(i192 *a, i128 x, i128 y)
{
    int neg = (x < 0) != (y < 0);
    u128 ux = x < 0 ? (u128)(-x) : (u128)x;
    u128 uy = y < 0 ? (u128)(-y) : (u128)y;
    u128 p = ux * uy;   /* both < 2^64 -> p < 2^128 */
    if (!neg) {
        add192_u128(a, p);
    } else {
        /* -p as 192-bit: ~p + 1 */
        uint64_t w0 = ~(uint64_t)p, w1 = ~(uint64_t)(p >> 64), w2 = UINT64_MAX;
        add192(a, w0, w1, w2);
        add192(a, 1, 0, 0);
    }
}

static int scalar_eq192(const mc_scalar *s, const i192 *r)
{
    return s->is_int == 1 && s->words[0] == r->w[0] && s->words[1] == r->w[1] && s->words[2] == r->w[2];
}

/* ------------------------------------------------------------ float reference (spec) */
static size_t ref_block(size_t n)
{
    size_t b = 4096;
    while ((n - 1) / b + 1 > 65536)
        b <<= 1;
    return b;
}

static double ref_pairwise(const double *p, size_t n)
{
    if (n == 1)
        return p[0];
    size_t h = n / 2;
    return ref_pairwise(p, h) + ref_pairwise(p + h, n - h);
}

/* op 0 sum, 1 sumsq, 2 dot: literal transcription of the documented scheme */
static double ref_float_reduce(int op, const void *x, const void *y, size_t n, int dt)
{
    if (n == 0)
        return 0.0;
    size_t B = ref_block(n), nb = (n - 1) / B + 1;
    double *part = malloc(nb * sizeof(double));
    for (size_t b = 0; b < nb; b++) {
        double acc[16] = { 0 };
        size_t start = b * B, cnt = n - start < B ? n - start : B;
        for (size_t j = 0; j < cnt; j++) {
            double v = get_double(x, dt, start + j), t;
            if (op == 0)
                t = v;
            else if (op == 1)
                t = v * v;
            else
                t = v * get_double(y, dt, start + j);
            acc[j % 16] = acc[j % 16] + t;
        }
        for (int w = 8; w > 0; w >>= 1)
            for (int l = 0; l < w; l++)
                acc[l] = acc[l] + acc[l + w];
        part[b] = acc[0];
    }
    double r = ref_pairwise(part, nb);
    free(part);
    return r;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------ tests */
static const size_t sizes[] = { 0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 4095, 4096, 4097, 10007,
                                65537, 300007 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_reductions(void)
{
    for (int dt = 0; dt < MC_DTYPE_COUNT; dt++) {
        for (size_t si = 0; si < NSIZES; si++) {
            size_t n = sizes[si];
            for (int mode = 0; mode < 3; mode++) {
                if (mode > 0 && n > 5000)
                    continue;
                void *x = rand_buf(dt, n, mode);
                void *y = rand_buf(dt, n, mode == 1 ? 1 : 0);
                for (int op = 0; op < 3; op++) {
                    mc_scalar first;
                    memset(&first, 0, sizeof first);
                    i192 ref = { { 0, 0, 0 } };
                    double fref = 0.0;
                    if (dt < MC_F32) {
                        for (size_t i = 0; i < n; i++) {
                            i128 v = get_int(x, dt, i);
                            if (op == 0)
                                add192_i128(&ref, v);
                            else if (op == 1)
                                add_product(&ref, v, v);
                            else
                                add_product(&ref, v, get_int(y, dt, i));
                        }
                    } else {
                        fref = ref_float_reduce(op, x, y, n, dt);
                    }
                    for (int e = 0; e < NEXEC; e++) {
                        mc_scalar s;
                        memset(&s, 0xAB, sizeof s);
                        int st = op == 0 ? mc_sum(&execs[e], x, n, dt, &s)
                               : op == 1 ? mc_sum_of_squares(&execs[e], x, n, dt, &s)
                                         : mc_dot(&execs[e], x, y, n, dt, &s);
                        CHECK(st == MC_OK, "op %d dt %d n %zu exec %s: status %d", op, dt, n, exec_names[e], st);
                        if (dt < MC_F32) {
                            CHECK(scalar_eq192(&s, &ref),
                                  "op %d dt %d n %zu mode %d exec %s: got %016llx %016llx %016llx want %016llx %016llx %016llx",
                                  op, dt, n, mode, exec_names[e], (unsigned long long)s.words[2],
                                  (unsigned long long)s.words[1], (unsigned long long)s.words[0],
                                  (unsigned long long)ref.w[2], (unsigned long long)ref.w[1],
                                  (unsigned long long)ref.w[0]);
                        } else {
                            CHECK(s.is_int == 0 && same_bits(s.f, fref),
                                  "op %d dt %d n %zu exec %s: got %.17g want %.17g", op, dt, n,
                                  exec_names[e], s.f, fref);
                            if (e == 0)
                                first = s;
                            else
                                CHECK(same_bits(s.f, first.f), "float result differs across execs");
                        }
                    }
                }
                free(x);
                free(y);
            }
        }
    }

    /* large float sums: several chunks and block growth is not exercised
     * (needs > 2^28 elements), but many blocks / chunks are */
    {
        size_t n = 1000003;
        double *x = rand_buf(MC_F64, n, 0);
        double ref = ref_float_reduce(0, x, NULL, n, MC_F64);
        long double naive = 0;
        for (size_t i = 0; i < n; i++)
            naive += x[i];
        for (int e = 0; e < NEXEC; e++) {
            mc_scalar s;
            CHECK(mc_sum(&execs[e], x, n, MC_F64, &s) == MC_OK, "sum big");
            CHECK(same_bits(s.f, ref), "big sum %s: %.17g vs %.17g", exec_names[e], s.f, ref);
        }
        CHECK(fabsl((long double)ref - naive) < 1e-6L * (fabsl(naive) + 1), "big sum far from naive");
        free(x);
    }

    /* NaN / inf propagate */
    {
        double x[5] = { 1.0, NAN, 2.0, INFINITY, 3.0 };
        mc_scalar s;
        CHECK(mc_sum(&execs[0], x, 5, MC_F64, &s) == MC_OK && isnan(s.f), "nan sum");
        double y[3] = { 1.0, INFINITY, 3.0 };
        CHECK(mc_sum(&execs[2], y, 3, MC_F64, &s) == MC_OK && isinf(s.f) && s.f > 0, "inf sum");
    }

    /* exact 64-bit extremes: n * INT64_MIN squared etc. */
    {
        size_t n = 10001;
        int64_t *x = malloc(n * sizeof *x);
        uint64_t *u = malloc(n * sizeof *u);
        for (size_t i = 0; i < n; i++) {
            x[i] = INT64_MIN;
            u[i] = UINT64_MAX;
        }
        i192 r1 = { { 0, 0, 0 } }, r2 = { { 0, 0, 0 } }, r3 = { { 0, 0, 0 } };
        for (size_t i = 0; i < n; i++) {
            add_product(&r1, x[i], x[i]);
            add_product(&r2, u[i], u[i]);
            add_product(&r3, x[i], -(i128)1 * 1);
        }
        for (int e = 0; e < NEXEC; e++) {
            mc_scalar s;
            CHECK(mc_sum_of_squares(&execs[e], x, n, MC_I64, &s) == MC_OK && scalar_eq192(&s, &r1), "i64min sumsq");
            CHECK(mc_sum_of_squares(&execs[e], u, n, MC_U64, &s) == MC_OK && scalar_eq192(&s, &r2), "u64max sumsq");
            CHECK(mc_dot(&execs[e], x, x, n, MC_I64, &s) == MC_OK && scalar_eq192(&s, &r1), "i64min dot");
            CHECK(mc_dot(&execs[e], u, u, n, MC_U64, &s) == MC_OK && scalar_eq192(&s, &r2), "u64max dot");
            i192 rs = { { 0, 0, 0 } };
            for (size_t i = 0; i < n; i++)
                add192_i128(&rs, x[i]);
            CHECK(mc_sum(&execs[e], x, n, MC_I64, &s) == MC_OK && scalar_eq192(&s, &rs), "i64min sum");
            CHECK(s.words[2] == UINT64_MAX, "sign extension of negative sum");
        }
        (void)r3;
        free(x);
        free(u);
    }

    /* errors */
    {
        mc_scalar s;
        double d[4] = { 0 };
        CHECK(mc_sum(NULL, d, 4, MC_F64, &s) == MC_EINVAL, "NULL exec");
        CHECK(mc_sum(&execs[0], d, 4, 99, &s) == MC_EDTYPE, "bad dtype");
        CHECK(mc_sum(&execs[0], d, 4, -1, &s) == MC_EDTYPE, "bad dtype -1");
        CHECK(mc_sum(&execs[0], NULL, 4, MC_F64, &s) == MC_EINVAL, "NULL x");
        CHECK(mc_sum(&execs[0], d, 4, MC_F64, NULL) == MC_EINVAL, "NULL out");
        CHECK(mc_sum(&execs[0], NULL, 0, MC_F64, &s) == MC_OK && s.is_int == 0 && s.f == 0.0, "empty float sum");
        CHECK(mc_sum(&execs[0], NULL, 0, MC_I32, &s) == MC_OK && s.is_int == 1 && s.words[0] == 0, "empty int sum");
        CHECK(mc_dot(&execs[0], d, NULL, 4, MC_F64, &s) == MC_EINVAL, "NULL y");
        CHECK(mc_sum(&execs[0], (char *)d + 1, 2, MC_F64, &s) == MC_EINVAL, "misaligned");
        mc_exec bad = { pools[1], 5, NULL, NULL };
        CHECK(mc_sum(&bad, d, 4, MC_F64, &s) == MC_EINVAL, "nthreads > pool");
    }
}

static u128 sosr_formula(uint64_t n)
{
    if (n == 0)
        return 0;
    u128 a = n - 1, b = n, c = 2 * (u128)n - 1;
    /* (n-1) n (2n-1) / 6 without overflow for n <= 2^42 */
    u128 p = a * b;
    if (p % 2 == 0) p /= 2; else c /= 2;
    if (p % 3 == 0) p /= 3; else c /= 3;
    return p * c;
}

static int cancel_poll(void *ctx)
{
    (void)ctx;
    return 1;
}

static void test_sum_of_squares_range(void)
{
    static const uint64_t ns[] = { 0, 1, 2, 3, 31, 32, 33, 65535, 65536, 65537, 123457,
                                   1048576 + 7, 10000000 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        u128 want = sosr_formula(ns[i]);
        for (int e = 0; e < NEXEC; e++) {
            uint64_t lo = 1, hi = 1;
            int st = mc_sum_of_squares_range(&execs[e], ns[i], &lo, &hi);
            u128 got = ((u128)hi << 64) | lo;
            CHECK(st == MC_OK && got == want, "sosr(%llu) %s", (unsigned long long)ns[i], exec_names[e]);
        }
    }
    {
        /* 333333283333335000000 */
        u128 want = (u128)333333283333ULL * 1000000000ULL + 335000000ULL;
        uint64_t lo, hi;
        CHECK(mc_sum_of_squares_range(&execs[2], 10000000, &lo, &hi) == MC_OK &&
              (((u128)hi << 64) | lo) == want, "sosr(10**7) literal");
    }
    uint64_t lo, hi;
    CHECK(mc_sum_of_squares_range(&execs[0], MC_SUM_OF_SQUARES_MAX_N + 1, &lo, &hi) == MC_EOVERFLOW, "sosr overflow");
    CHECK(mc_sum_of_squares_range(&execs[0], 10, NULL, &hi) == MC_EINVAL, "sosr NULL");
    CHECK(mc_sum_of_squares_range(NULL, 10, &lo, &hi) == MC_EINVAL, "sosr NULL exec");

    /* Cancellation: a huge range with a poll that always cancels. */
    for (int e = 0; e < NEXEC; e++) {
        mc_exec ex = execs[e];
        ex.poll = cancel_poll;
        CHECK(mc_sum_of_squares_range(&ex, MC_SUM_OF_SQUARES_MAX_N, &lo, &hi) == MC_ECANCELED,
              "sosr cancel %s", exec_names[e]);
        size_t n = 1 << 26;
        CHECK(mc_count_primes(&ex, (uint64_t)1 << 40, &lo) == MC_ECANCELED, "primes cancel %s", exec_names[e]);
        (void)n;
    }
}

static void key_minmax_ref(const void *x, size_t n, int dt, double *mn, double *mx)
{
    /* reference with -0.0 < +0.0 and NaN propagation */
    int nan = 0;
    double a = get_double(x, dt, 0), b = a;
    for (size_t i = 0; i < n; i++) {
        double v = get_double(x, dt, i);
        if (isnan(v)) {
            nan = 1;
            continue;
        }
        if (isnan(a)) { a = b = v; continue; }
        if (v < a || (v == a && signbit(v) && !signbit(a))) a = v;
        if (v > b || (v == b && !signbit(v) && signbit(b))) b = v;
    }
    if (nan) a = b = NAN;
    *mn = a;
    *mx = b;
}

static void test_minmax(void)
{
    for (int dt = 0; dt < MC_DTYPE_COUNT; dt++) {
        for (size_t si = 1; si < NSIZES; si++) {
            size_t n = sizes[si];
            void *x = rand_buf(dt, n, 0);
            for (int e = 0; e < NEXEC; e++) {
                mc_scalar mn, mx;
                int st = mc_minmax(&execs[e], x, n, dt, &mn, &mx);
                CHECK(st == MC_OK, "minmax status");
                if (dt < MC_F32) {
                    i128 a = get_int(x, dt, 0), b = a;
                    for (size_t i = 0; i < n; i++) {
                        i128 v = get_int(x, dt, i);
                        if (v < a) a = v;
                        if (v > b) b = v;
                    }
                    i192 ra = { { 0, 0, 0 } }, rb = { { 0, 0, 0 } };
                    add192_i128(&ra, a);
                    add192_i128(&rb, b);
                    CHECK(scalar_eq192(&mn, &ra) && scalar_eq192(&mx, &rb), "int minmax dt %d n %zu %s", dt, n, exec_names[e]);
                } else {
                    double a, b;
                    key_minmax_ref(x, n, dt, &a, &b);
                    CHECK(mn.is_int == 0 && same_bits(mn.f, a) && same_bits(mx.f, b),
                          "float minmax dt %d n %zu: %g %g vs %g %g", dt, n, mn.f, mx.f, a, b);
                }
            }
            free(x);
        }
    }
    /* signed zeros and NaN */
    {
        double z[4] = { 0.0, -0.0, 0.0, -0.0 };
        for (int e = 0; e < NEXEC; e++) {
            mc_scalar mn, mx;
            CHECK(mc_minmax(&execs[e], z, 4, MC_F64, &mn, &mx) == MC_OK && signbit(mn.f) && !signbit(mx.f) && mn.f == 0 && mx.f == 0, "signed zeros");
        }
        size_t n = 100000;
        float *f = rand_buf(MC_F32, n, 0);
        f[77777] = NAN;
        for (int e = 0; e < NEXEC; e++) {
            mc_scalar mn, mx;
            CHECK(mc_minmax(&execs[e], f, n, MC_F32, &mn, &mx) == MC_OK && isnan(mn.f) && isnan(mx.f), "nan minmax");
        }
        free(f);
        double d[3] = { -INFINITY, 1, INFINITY };
        mc_scalar mn, mx;
        CHECK(mc_minmax(&execs[0], d, 3, MC_F64, &mn, &mx) == MC_OK && mn.f == -INFINITY && mx.f == INFINITY, "inf minmax");
        CHECK(mc_minmax(&execs[0], d, 0, MC_F64, &mn, &mx) == MC_EINVAL, "minmax n=0");
        CHECK(mc_minmax(&execs[0], d, 3, 12, &mn, &mx) == MC_EDTYPE, "minmax dtype");
        CHECK(mc_minmax(&execs[0], d, 3, MC_F64, NULL, &mx) == MC_EINVAL, "minmax NULL");
        int64_t ex[3] = { INT64_MIN, 0, INT64_MAX };
        CHECK(mc_minmax(&execs[3], ex, 3, MC_I64, &mn, &mx) == MC_OK && mn.words[0] == (uint64_t)INT64_MIN &&
              mn.words[1] == UINT64_MAX && mn.words[2] == UINT64_MAX && mx.words[0] == (uint64_t)INT64_MAX &&
              mx.words[1] == 0 && mx.words[2] == 0, "i64 extremes minmax");
        uint64_t ux[2] = { 5, UINT64_MAX };
        CHECK(mc_minmax(&execs[3], ux, 2, MC_U64, &mn, &mx) == MC_OK && mx.words[0] == UINT64_MAX && mx.words[1] == 0, "u64 max");
    }
}

static void hist_ref(const void *x, size_t n, int dt, size_t bins, double lo, double hi, int64_t *c)
{
    memset(c, 0, bins * sizeof *c);
    double S = 1.0, bd = (double)bins;
    while (!isfinite((hi * S - lo * S) * bd))
        S *= 0.5;
    double loS = lo * S, rS = hi * S - lo * S;
    for (size_t i = 0; i < n; i++) {
        double v = get_double(x, dt, i);
        if (!(v >= lo && v <= hi))
            continue;
        double t = ((v * S - loS) * bd) / rS;
        size_t idx = t >= bd ? bins - 1 : (size_t)t;
        if (idx >= bins)
            idx = bins - 1;
        c[idx]++;
    }
}

static void test_histogram(void)
{
    static const size_t binss[] = { 1, 2, 7, 10, 1000 };
    for (int dt = 0; dt < MC_DTYPE_COUNT; dt++) {
        for (size_t si = 0; si < NSIZES; si++) {
            size_t n = sizes[si];
            void *x = rand_buf(dt, n, 0);
            if (n > 3 && dt == MC_F64) {
                ((double *)x)[0] = NAN;
                ((double *)x)[1] = 4.0;   /* == hi below */
                ((double *)x)[2] = -1.0;  /* == lo */
            }
            for (size_t bi = 0; bi < sizeof binss / sizeof binss[0]; bi++) {
                size_t bins = binss[bi];
                double lo, hi;
                if (dt >= MC_F32) { lo = -1.0; hi = 4.0; }
                else if (dt == MC_U8 || dt == MC_U16 || dt == MC_U32 || dt == MC_U64) { lo = 10; hi = get_double(&(uint64_t){ UINT64_MAX / 3 }, MC_U64, 0); if (dt == MC_U8) hi = 200; if (dt == MC_U16) hi = 60000; if (dt == MC_U32) hi = 3e9; }
                else { lo = -1e4; hi = 3e18; if (dt == MC_I8) { lo = -100; hi = 100; } if (dt == MC_I16) hi = 30000; if (dt == MC_I32) hi = 2e9; }
                int64_t *want = malloc(bins * sizeof *want);
                int64_t *got = malloc(bins * sizeof *got);
                hist_ref(x, n, dt, bins, lo, hi, want);
                for (int e = 0; e < NEXEC; e++) {
                    memset(got, 0x5A, bins * sizeof *got);
                    int st = mc_histogram(&execs[e], x, n, dt, bins, lo, hi, got);
                    CHECK(st == MC_OK && memcmp(got, want, bins * sizeof *got) == 0,
                          "histogram dt %d n %zu bins %zu %s (st %d)", dt, n, bins, exec_names[e], st);
                }
                free(want);
                free(got);
            }
            free(x);
        }
    }
    /* extreme range: hi - lo overflows */
    {
        double x[6] = { -1e308, 1e308, 0.0, -5e307, 5e307, 1.7e308 };
        int64_t c[4], w[4];
        hist_ref(x, 6, MC_F64, 4, -1e308, 1e308, w);
        CHECK(mc_histogram(&execs[2], x, 6, MC_F64, 4, -1e308, 1e308, c) == MC_OK &&
              memcmp(c, w, sizeof c) == 0 && w[0] == 1 && w[1] == 1 && w[2] == 1 && w[3] == 2, "extreme range histogram");
        double y[4] = { 0.0, 0.5, 1.0, 0.999999999 };
        int64_t c2[2];
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 2, 0.0, 1.0, c2) == MC_OK && c2[0] == 1 && c2[1] == 3, "hi in last bin");
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 0, 0.0, 1.0, c2) == MC_EINVAL, "bins 0");
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 2, 1.0, 1.0, c2) == MC_EINVAL, "lo == hi");
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 2, 0.0, INFINITY, c2) == MC_EINVAL, "inf hi");
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 2, NAN, 1.0, c2) == MC_EINVAL, "nan lo");
        CHECK(mc_histogram(&execs[0], y, 4, MC_F64, 2, 0.0, 1.0, NULL) == MC_EINVAL, "NULL counts");
        CHECK(mc_histogram(&execs[0], y, 4, 10, 2, 0.0, 1.0, c2) == MC_EDTYPE, "hist dtype");
        c2[0] = c2[1] = 99;
        CHECK(mc_histogram(&execs[3], NULL, 0, MC_F64, 2, 0.0, 1.0, c2) == MC_OK && c2[0] == 0 && c2[1] == 0, "empty hist zeroes");
    }
}

static uint64_t primes_ref(uint64_t n)
{
    if (n < 3)
        return 0;
    char *c = calloc(n, 1);
    uint64_t cnt = 0;
    for (uint64_t i = 2; i < n; i++) {
        if (c[i])
            continue;
        cnt++;
        for (uint64_t j = i * i; j < n; j += i)
            c[j] = 1;
    }
    free(c);
    return cnt;
}

static void test_primes(void)
{
    static const uint64_t ns[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 25, 26, 49, 50, 100, 1000,
                                   65535, 65536, 65537, 65538, 131071, 131072, 131073, 999983, 1000000,
                                   3000017 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint64_t want = primes_ref(ns[i]);
        for (int e = 0; e < NEXEC; e++) {
            uint64_t got = 12345;
            CHECK(mc_count_primes(&execs[e], ns[i], &got) == MC_OK && got == want,
                  "primes(%llu) %s: %llu vs %llu", (unsigned long long)ns[i], exec_names[e],
                  (unsigned long long)got, (unsigned long long)want);
        }
    }
    uint64_t got;
    CHECK(mc_count_primes(&execs[2], 100000000, &got) == MC_OK && got == 5761455, "pi(1e8)");
    CHECK(mc_count_primes(&execs[4], 10000000, &got) == MC_OK && got == 664579, "pi(1e7)");
    CHECK(mc_count_primes(&execs[0], MC_COUNT_PRIMES_MAX_N + 1, &got) == MC_EINVAL, "primes max");
    CHECK(mc_count_primes(&execs[0], 10, NULL) == MC_EINVAL, "primes NULL");
}

static uint64_t mcpi_ref(uint64_t samples, uint64_t seed)
{
    uint64_t h = 0;
    for (uint64_t i = 0; i < samples; i++) {
        uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        u128 x = z >> 32, y = z & 0xFFFFFFFFu;
        h += (x * x + y * y) < ((u128)1 << 64);
    }
    return h;
}

static void test_monte_carlo(void)
{
    static const uint64_t ss[] = { 0, 1, 2, 17, 1000, 65536, 65537, 1000003 };
    static const uint64_t seeds[] = { 0, 1, 42, UINT64_MAX };
    for (size_t i = 0; i < sizeof ss / sizeof ss[0]; i++)
        for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
            uint64_t want = mcpi_ref(ss[i], seeds[k]);
            for (int e = 0; e < NEXEC; e++) {
                uint64_t got = 7;
                CHECK(mc_monte_carlo_pi(&execs[e], ss[i], seeds[k], &got) == MC_OK && got == want,
                      "mcpi(%llu, %llu) %s", (unsigned long long)ss[i], (unsigned long long)seeds[k], exec_names[e]);
            }
        }
    uint64_t h;
    CHECK(mc_monte_carlo_pi(&execs[2], 4000000, 7, &h) == MC_OK && fabs(4.0 * (double)h / 4e6 - 3.14159265) < 0.01, "pi estimate");
    CHECK(mc_monte_carlo_pi(&execs[0], 10, 7, NULL) == MC_EINVAL, "mcpi NULL");
}

static void mandel_ref(size_t w, size_t h, uint32_t mi, double x0, double x1, double y0, double y1, uint32_t *out)
{
    for (size_t r = 0; r < h; r++)
        for (size_t c = 0; c < w; c++) {
            double cr = x0 + ((c + 0.5) * (x1 - x0)) / (double)w;
            double ci = y0 + ((r + 0.5) * (y1 - y0)) / (double)h;
            double zr = 0, zi = 0;
            uint32_t it = 0;
            while (it < mi) {
                double zr2 = zr * zr, zi2 = zi * zi;
                if (zr2 + zi2 > 4.0)
                    break;
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                it++;
            }
            out[r * w + c] = it;
        }
}

static void test_mandelbrot(void)
{
    static const size_t dims[][2] = { { 1, 1 }, { 13, 7 }, { 8, 8 }, { 9, 3 }, { 64, 48 }, { 201, 37 }, { 3, 500 } };
    static const uint32_t iters[] = { 0, 1, 2, 50, 300 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (size_t k = 0; k < sizeof iters / sizeof iters[0]; k++) {
            size_t w = dims[d][0], h = dims[d][1];
            uint32_t *want = malloc(w * h * sizeof *want), *got = malloc(w * h * sizeof *got);
            mandel_ref(w, h, iters[k], -2.2, 0.8, -1.3, 1.2, want);
            for (int e = 0; e < NEXEC; e++) {
                memset(got, 0xEE, w * h * sizeof *got);
                CHECK(mc_mandelbrot(&execs[e], w, h, iters[k], -2.2, 0.8, -1.3, 1.2, got) == MC_OK &&
                      memcmp(got, want, w * h * sizeof *got) == 0, "mandel %zux%zu it %u %s", w, h, iters[k], exec_names[e]);
            }
            free(want);
            free(got);
        }
    uint32_t o[4] = { 9, 9, 9, 9 };
    CHECK(mc_mandelbrot(&execs[0], 0, 5, 10, -2, 1, -1, 1, o) == MC_OK && o[0] == 9, "mandel w0");
    CHECK(mc_mandelbrot(&execs[0], 5, 0, 10, -2, 1, -1, 1, NULL) == MC_OK, "mandel h0");
    CHECK(mc_mandelbrot(&execs[0], SIZE_MAX / 2, 3, 10, -2, 1, -1, 1, o) == MC_EINVAL, "mandel overflow");
    CHECK(mc_mandelbrot(&execs[0], 2, 2, 10, -2, 1, -1, 1, NULL) == MC_EINVAL, "mandel NULL");
}

static void test_matmul(void)
{
    static const size_t dims[][3] = { { 1, 1, 1 }, { 2, 3, 4 }, { 5, 7, 1 }, { 17, 33, 9 }, { 130, 300, 70 },
                                      { 9, 5, 600 }, { 33, 129, 513 }, { 4, 4, 4 }, { 7, 0, 5 }, { 0, 5, 3 }, { 3, 5, 0 } };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        size_t m = dims[d][0], k = dims[d][1], n = dims[d][2];
        double *a = rand_buf(MC_F64, m * k, 0), *b = rand_buf(MC_F64, k * n, 0);
        double *want = malloc(m * n * sizeof(double) + 8), *got = malloc(m * n * sizeof(double) + 8);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0.0;
                for (size_t kk = 0; kk < k; kk++)
                    s = s + a[i * k + kk] * b[kk * n + j];
                want[i * n + j] = s;
            }
        for (int e = 0; e < NEXEC; e++) {
            for (size_t i = 0; i < m * n; i++)
                got[i] = NAN;
            CHECK(mc_matmul_f64(&execs[e], a, b, got, m, k, n) == MC_OK &&
                  memcmp(got, want, m * n * sizeof(double)) == 0, "matmul %zux%zux%zu %s", m, k, n, exec_names[e]);
        }
        free(a); free(b); free(want); free(got);
    }
    double a[4] = { 1, 2, 3, 4 };
    CHECK(mc_matmul_f64(&execs[0], a, a, a, 2, 2, 2) == MC_EINVAL, "matmul alias");
    CHECK(mc_matmul_f64(&execs[0], NULL, a, a + 0, 2, 2, 2) == MC_EINVAL, "matmul NULL a");
    CHECK(mc_matmul_f64(&execs[0], a, a, a, SIZE_MAX / 2, 4, 1) == MC_EINVAL, "matmul overflow");
}

static void test_square(void)
{
    int outs[4];
    for (int dt = 0; dt < MC_DTYPE_COUNT; dt++) {
        outs[0] = dt;
        outs[1] = MC_F64;
        outs[2] = MC_I64;
        outs[3] = MC_U64;
        for (int oi = 0; oi < 4; oi++) {
            int od = outs[oi];
            int valid = od == dt || od == MC_F64 || (dt < MC_F32 && (od == MC_I64 || od == MC_U64));
            size_t n = 10007;
            void *x = rand_buf(dt, n, 0);
            void *o = malloc(n * 8);
            if (!valid) {
                CHECK(mc_square(&execs[0], x, dt, o, od, n) == MC_EDTYPE, "square invalid combo %d->%d", dt, od);
                free(x); free(o);
                continue;
            }
            /* expected overflow: exact square vs out range */
            int want_of = 0;
            if (dt < MC_F32 && od != MC_F64) {
                u128 lim = od == MC_I64 ? (u128)INT64_MAX : od == MC_U64 ? (u128)UINT64_MAX
                         : od == MC_I8 ? 127 : od == MC_U8 ? 255 : od == MC_I16 ? 32767 : od == MC_U16 ? 65535
                         : od == MC_I32 ? (u128)INT32_MAX : od == MC_U32 ? (u128)UINT32_MAX : 0;
                for (size_t i = 0; i < n; i++) {
                    i128 v = get_int(x, dt, i);
                    u128 u = v < 0 ? (u128)(-v) : (u128)v;
                    if (u > ((u128)1 << 64) || u * u > lim)
                        want_of = 1;
                }
            }
            for (int e = 0; e < NEXEC; e++) {
                int st = mc_square(&execs[e], x, dt, o, od, n);
                CHECK(st == (want_of ? MC_EOVERFLOW : MC_OK), "square %d->%d status %d %s", dt, od, st, exec_names[e]);
                if (st != MC_OK)
                    continue;
                int bad = 0;
                for (size_t i = 0; i < n && !bad; i++) {
                    if (od == MC_F64) {
                        double v = get_double(x, dt, i);
                        double r = v * v;
                        bad = !same_bits(((double *)o)[i], r);
                    } else if (od == MC_F32) {
                        float v = ((float *)x)[i];
                        float r = v * v;
                        bad = memcmp(&((float *)o)[i], &r, 4) != 0;
                    } else {
                        i128 v = get_int(x, dt, i);
                        bad = get_int(o, od, i) != v * v;
                    }
                }
                CHECK(!bad, "square %d->%d values %s", dt, od, exec_names[e]);
            }
            free(x);
            free(o);
        }
    }
    /* small-valued ints: no overflow in the same dtype */
    {
        int8_t x[300];
        for (int i = 0; i < 300; i++)
            x[i] = (int8_t)(i % 23 - 11);
        int8_t o[300];
        CHECK(mc_square(&execs[2], x, MC_I8, o, MC_I8, 300) == MC_OK && o[0] == 121 && o[11] == 0, "i8 square");
        CHECK(mc_square(&execs[2], x, MC_I8, x, MC_I8, 300) == MC_OK && x[0] == 121 && x[12] == 1, "in place");
        int64_t big[2] = { 3037000499LL, -3037000499LL };
        int64_t ob[2];
        CHECK(mc_square(&execs[0], big, MC_I64, ob, MC_I64, 2) == MC_OK && ob[1] == 3037000499LL * 3037000499LL, "i64 edge");
        big[1] = 3037000500LL;
        CHECK(mc_square(&execs[0], big, MC_I64, ob, MC_I64, 2) == MC_EOVERFLOW, "i64 overflow");
        uint64_t ou[2];
        big[1] = -4294967295LL;
        CHECK(mc_square(&execs[0], big, MC_I64, ou, MC_U64, 2) == MC_OK && ou[1] == 4294967295ULL * 4294967295ULL, "i64->u64");
        double d[1000];
        for (int i = 0; i < 1000; i++)
            d[i] = i * 0.5;
        CHECK(mc_square(&execs[4], d, MC_F64, d, MC_F64, 1000) == MC_OK && d[3] == 2.25 && d[999] == 499.5 * 499.5, "f64 in place");
        CHECK(mc_square(&execs[0], d, MC_F64, d + 1, MC_F64, 10) == MC_EINVAL, "partial alias");
        CHECK(mc_square(&execs[0], d, MC_F64, d, MC_F32, 10) == MC_EDTYPE, "f64->f32");
        CHECK(mc_square(&execs[0], d, 77, d, MC_F64, 10) == MC_EDTYPE, "bad dtype");
        CHECK(mc_square(&execs[0], NULL, MC_F64, d, MC_F64, 10) == MC_EINVAL, "NULL x");
        CHECK(mc_square(&execs[0], NULL, MC_F64, NULL, MC_F64, 0) == MC_OK, "empty");
    }
}

static void test_info(void)
{
    CHECK(mc_dtype_size(MC_I8) == 1 && mc_dtype_size(MC_U16) == 2 && mc_dtype_size(MC_F32) == 4 &&
          mc_dtype_size(MC_U64) == 8 && mc_dtype_size(MC_F64) == 8 && mc_dtype_size(-1) == 0 &&
          mc_dtype_size(MC_DTYPE_COUNT) == 0, "dtype sizes");
    const char *s = mc_simd_level();
    CHECK(s && (!strcmp(s, "avx512") || !strcmp(s, "avx2") || !strcmp(s, "baseline")), "simd level");
    printf("simd level: %s\n", s);
}

/* ------------------------------------------------------------ argument rules */
static mc_buf desc(const void *data, size_t nbytes, size_t itemsize, const char *format)
{
    mc_buf b;
    memset(&b, 0, sizeof b);
    b.data = data;
    b.nbytes = nbytes;
    b.itemsize = itemsize;
    b.format = format;
    b.c_contiguous = 1;
    return b;
}

static void test_args(void)
{
    static double a[12], c[12];
    static int64_t counts[4];
    static uint32_t pixels[6];
    mc_arg_problem p;
    uint64_t dims[3];

    CHECK(mc_kernel_nbufs(MC_K_MATMUL) == 3 && mc_kernel_nbufs(MC_K_COUNT) == 0, "nbufs");
    int w = -1;
    CHECK(!strcmp(mc_kernel_buf_name(MC_K_HISTOGRAM, 1, &w), "out") && w == 1, "histogram out writable");
    CHECK(mc_kernel_buf_name(MC_K_SUM, 1, NULL) == NULL, "no second buffer for sum");

    /* one buffer: contiguity, format (with byte-order prefixes), read-only outputs, alignment */
    mc_buf x[2] = {desc(a, sizeof a, 8, "<d"), desc(a, sizeof a, 8, "d")};
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_OK && x[0].dtype == MC_F64 && x[0].n == 12,
          "a float64 buffer is fine: %d", p.code);
    x[0].format = "q";
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_OK && x[0].dtype == MC_I64, "int64");
    x[0].format = "Zd";
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_FORMAT && !strcmp(p.detail, "'Zd'; supported formats: b B h H i I l L q Q f d") &&
          !strcmp(p.arg, "x"), "complex is refused: %s", p.detail);
    x[0].format = "i";  /* format 'i' with 8-byte items: inconsistent */
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_FORMAT, "size mismatch");
    x[0] = desc(a, sizeof a, 8, "d");
    x[0].c_contiguous = 0;
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_NOT_CONTIGUOUS, "strided");
    x[0] = desc((const char *)a + 4, 8, 8, "d");
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_MISALIGNED && !strcmp(p.detail, "8"),
          "misaligned: %s", p.detail);
    x[0] = desc((const char *)a + 4, 0, 8, "d");
    CHECK(mc_check_args(MC_K_SUM, x, 1, NULL, 0, &p) == MC_ARG_OK && x[0].n == 0, "empty needs no alignment");
    CHECK(mc_check_args(MC_K_MINMAX, x, 1, NULL, 0, &p) == MC_ARG_EMPTY, "minmax of nothing");

    /* dot: formats agree, lengths agree */
    x[0] = desc(a, sizeof a, 8, "d");
    x[1] = desc(c, sizeof c, 8, "q");
    CHECK(mc_check_args(MC_K_DOT, x, 2, NULL, 0, &p) == MC_ARG_FORMAT_MISMATCH && !strcmp(p.arg, "dot") &&
          !strcmp(p.detail, "x is 'd', y is 'q'"), "dot formats: %s", p.detail);
    x[1] = desc(c, 8 * 11, 8, "d");
    CHECK(mc_check_args(MC_K_DOT, x, 2, NULL, 0, &p) == MC_ARG_LENGTH && !strcmp(p.arg, "y") &&
          !strcmp(p.detail, "11 elements, expected 12"), "dot length: %s", p.detail);

    /* histogram: int64 output of `bins` elements, writable */
    mc_buf h[2] = {desc(a, sizeof a, 8, "d"), desc(counts, sizeof counts, 8, "q")};
    dims[0] = 4;
    CHECK(mc_check_args(MC_K_HISTOGRAM, h, 2, dims, 1, &p) == MC_ARG_OK, "histogram ok");
    h[1].readonly = 1;
    CHECK(mc_check_args(MC_K_HISTOGRAM, h, 2, dims, 1, &p) == MC_ARG_READONLY && !strcmp(p.arg, "out"), "ro");
    h[1].readonly = 0;
    dims[0] = 5;
    CHECK(mc_check_args(MC_K_HISTOGRAM, h, 2, dims, 1, &p) == MC_ARG_LENGTH, "bins");
    CHECK(mc_check_args(MC_K_HISTOGRAM, h, 2, dims, 0, &p) == MC_EINVAL, "wrong number of sizes");

    /* mandelbrot: uint32/int32 output of width*height; sizes that overflow */
    mc_buf m[1] = {desc(pixels, sizeof pixels, 4, "I")};
    dims[0] = 3, dims[1] = 2;
    CHECK(mc_check_args(MC_K_MANDELBROT, m, 1, dims, 2, &p) == MC_ARG_OK, "mandelbrot ok");
    dims[0] = UINT64_MAX / 2, dims[1] = 3;
    CHECK(mc_check_args(MC_K_MANDELBROT, m, 1, dims, 2, &p) == MC_ARG_TOO_BIG, "width * height");

    /* matmul: float64, shapes, no overlap of out with an input; square: in place only exactly */
    mc_buf mm[3] = {desc(a, 8 * 6, 8, "d"), desc(a + 6, 8 * 6, 8, "d"), desc(c, 8 * 4, 8, "d")};
    dims[0] = 2, dims[1] = 3, dims[2] = 2;
    CHECK(mc_check_args(MC_K_MATMUL, mm, 3, dims, 3, &p) == MC_ARG_OK, "matmul ok: %d %s", p.code, p.detail);
    mm[2] = desc(a + 2, 8 * 4, 8, "d");
    CHECK(mc_check_args(MC_K_MATMUL, mm, 3, dims, 3, &p) == MC_ARG_OVERLAP, "matmul overlap");
    mc_buf sq[2] = {desc(a, 8 * 4, 8, "d"), desc(a, 8 * 4, 8, "d")};
    CHECK(mc_check_args(MC_K_SQUARE, sq, 2, NULL, 0, &p) == MC_ARG_OK, "exact in place");
    sq[1] = desc(a + 1, 8 * 4, 8, "d");
    CHECK(mc_check_args(MC_K_SQUARE, sq, 2, NULL, 0, &p) == MC_ARG_OVERLAP, "partial overlap");
    sq[0] = desc(a, 8 * 4, 8, "i"), sq[1] = desc(c, 4 * 4, 4, "f");
    sq[0].itemsize = 4, sq[0].nbytes = 16;
    CHECK(mc_check_args(MC_K_SQUARE, sq, 2, NULL, 0, &p) == MC_ARG_FORMAT_MISMATCH, "int into float32");
    CHECK(mc_check_args(-1, sq, 2, NULL, 0, &p) == MC_EINVAL && mc_check_args(MC_K_SQUARE, sq, 2, NULL, 0, NULL) == MC_EINVAL,
          "misuse");
}

int main(void)
{
    setup_execs();
    test_info();
    test_reductions();
    test_sum_of_squares_range();
    test_minmax();
    test_histogram();
    test_primes();
    test_monte_carlo();
    test_mandelbrot();
    test_matmul();
    test_square();
    test_args();
    for (int i = 0; i < 4; i++)
        mc_pool_destroy(pools[i]);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
