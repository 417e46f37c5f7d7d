/*
 * bench_kernels.c -- quick timings of the kernels (not a test; no assertions).
 *
 *   gcc -std=c11 -O3 -ffp-contract=off -pthread -Icsrc csrc/[*].c tests/c/bench_kernels.c -o /tmp/bk -lm && /tmp/bk
 *
 * Prints best-of-N wall time per call for the serial shim and a 2-thread pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manycore.h"
#include "platform.h"

#define REPS 30

static double best_sosr(const mc_exec *ex, uint64_t n)
{
    double best = 1e9;
    for (int r = 0; r < REPS; r++) {
        uint64_t lo, hi;
        double t0 = mc_now_s();
        if (mc_sum_of_squares_range(ex, n, &lo, &hi) != MC_OK)
            abort();
        double dt = mc_now_s() - t0;
        if (dt < best)
            best = dt;
    }
    return best;
}

int main(void)
{
    mc_pool *p2 = NULL;
    if (mc_pool_create(&p2, 2, NULL) != MC_OK)
        return 1;
    mc_exec serial = { NULL, 0, NULL, NULL }, two = { p2, 0, NULL, NULL };
    printf("simd level: %s\n", mc_simd_level());

    static const uint64_t ns[] = { 1000000, 10000000, 100000000 };
    for (size_t i = 0; i < 3; i++) {
        double s = best_sosr(&serial, ns[i]), t = best_sosr(&two, ns[i]);
        printf("sum_of_squares_range n=%-10llu serial %8.3f ms (%.4f ns/elem)   2 threads %8.3f ms (%.4f ns/elem)\n",
               (unsigned long long)ns[i], s * 1e3, s * 1e9 / (double)ns[i], t * 1e3, t * 1e9 / (double)ns[i]);
    }

    size_t n = 10000000;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(i % 1000) * 0.001;
    const mc_exec *exs[2] = { &serial, &two };
    for (int e = 0; e < 2; e++) {
        double best = 1e9;
        for (int r = 0; r < 10; r++) {
            mc_scalar s;
            double t0 = mc_now_s();
            mc_sum(exs[e], x, n, MC_F64, &s);
            double dt = mc_now_s() - t0;
            best = dt < best ? dt : best;
        }
        printf("sum f64 n=1e7 %s: %.3f ms\n", e ? "2 threads" : "serial", best * 1e3);
        uint64_t cnt;
        double t0 = mc_now_s();
        mc_count_primes(exs[e], 100000000, &cnt);
        printf("count_primes(1e8) %s: %.3f ms -> %llu\n", e ? "2 threads" : "serial", (mc_now_s() - t0) * 1e3,
               (unsigned long long)cnt);
        t0 = mc_now_s();
        mc_monte_carlo_pi(exs[e], 100000000, 1, &cnt);
        printf("monte_carlo_pi(1e8) %s: %.3f ms\n", e ? "2 threads" : "serial", (mc_now_s() - t0) * 1e3);
        uint32_t *img = malloc(1000 * 1000 * sizeof *img);
        t0 = mc_now_s();
        mc_mandelbrot(exs[e], 1000, 1000, 256, -2.0, 0.5, -1.25, 1.25, img);
        printf("mandelbrot 1000x1000x256 %s: %.3f ms\n", e ? "2 threads" : "serial", (mc_now_s() - t0) * 1e3);
        free(img);
        size_t m = 512;
        double *a = malloc(m * m * sizeof *a), *b = malloc(m * m * sizeof *b), *c = malloc(m * m * sizeof *c);
        for (size_t i = 0; i < m * m; i++)
            a[i] = b[i] = (double)(i % 17);
        t0 = mc_now_s();
        mc_matmul_f64(exs[e], a, b, c, m, m, m);
        double dt = mc_now_s() - t0;
        printf("matmul 512^3 %s: %.3f ms (%.2f GFLOP/s)\n", e ? "2 threads" : "serial", dt * 1e3,
               2.0 * m * m * m / dt * 1e-9);
        free(a); free(b); free(c);
    }
    free(x);
    /* integer reductions, serial, n = 1e7 */
    static const int dts[] = { MC_I8, MC_I16, MC_I32, MC_U32, MC_I64, MC_U64 };
    static const char *dnames[] = { "i8", "i16", "i32", "u32", "i64", "u64" };
    void *buf = calloc(n, 8);
    for (size_t i = 0; i < n * 8; i++)
        ((unsigned char *)buf)[i] = (unsigned char)(i * 2654435761u >> 13);
    for (int d = 0; d < 6; d++) {
        double t[3];
        for (int op = 0; op < 3; op++) {
            double best = 1e9;
            for (int r = 0; r < 5; r++) {
                mc_scalar s;
                double t0 = mc_now_s();
                if (op == 0) mc_sum(&serial, buf, n, dts[d], &s);
                else if (op == 1) mc_sum_of_squares(&serial, buf, n, dts[d], &s);
                else mc_dot(&serial, buf, buf, n, dts[d], &s);
                double dt = mc_now_s() - t0;
                best = dt < best ? dt : best;
            }
            t[op] = best * 1e9 / (double)n;
        }
        printf("%s serial ns/elem: sum %.3f  sumsq %.3f  dot %.3f\n", dnames[d], t[0], t[1], t[2]);
    }
    free(buf);
    mc_pool_destroy(p2);
    return 0;
}
