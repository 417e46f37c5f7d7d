/*
 * manycore.h -- the one public header of the manycore native runtime.
 *
 * A plain C11 library (no Python.h): a persistent thread pool, a dispatch
 * primitive over an index range, and GIL-free kernels built on it.
 *
 * Conventions
 *   - Every function that can fail returns an int status: MC_OK (0) or one of
 *     the negative MC_E* codes below.  Nothing aborts on bad input; bindings
 *     map status codes to exceptions in one table (manycore/_errors.py).
 *   - Kernels partition their index space into fixed-size blocks that depend
 *     only on the input size, and combine per-block results in block order, so
 *     results are bit-identical whatever the thread count or scheduling.
 *   - Declarations below are kept simple (no macros inside prototypes other
 *     than MC_API, no 128-bit types) so FFI generators can read them.
 */
#ifndef MANYCORE_H
#define MANYCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define MC_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define MC_API __attribute__((visibility("default")))
#else
#  define MC_API
#endif

#define MC_VERSION_MAJOR 0
#define MC_VERSION_MINOR 1

/* ------------------------------------------------------------------ status */
enum mc_status {
    MC_OK = 0,
    MC_EINVAL = -1,     /* an argument is out of its documented domain */
    MC_ENOMEM = -2,     /* allocation failed */
    MC_ETHREAD = -3,    /* creating an OS thread failed (OS error reported separately) */
    MC_ECANCELED = -4,  /* the poll callback asked to stop; partial work discarded */
    MC_EOVERFLOW = -5,  /* an exact result (or element) does not fit its type */
    MC_ESTALE = -6,     /* pool created before fork(); its threads do not exist here */
    MC_EDTYPE = -7      /* element type not supported by this kernel */
};

/* Static description of a status code; never NULL. */
MC_API const char *mc_strerror(int status);

/* ------------------------------------------------------------------ dtypes */
typedef enum mc_dtype {
    MC_I8 = 0, MC_U8, MC_I16, MC_U16, MC_I32, MC_U32, MC_I64, MC_U64,
    MC_F32, MC_F64,
    MC_DTYPE_COUNT
} mc_dtype;

MC_API size_t mc_dtype_size(int dtype);   /* 0 for an invalid dtype */

/* An exact or floating result.  For is_int == 1 the value is the 192-bit
 * two's-complement integer words[2]:words[1]:words[0] (little-endian words);
 * for is_int == 0 it is f. */
typedef struct mc_scalar {
    int is_int;
    uint64_t words[3];
    double f;
} mc_scalar;

/* ------------------------------------------------------------------ pool */
typedef struct mc_pool mc_pool;

/* Body of a parallel region: process indices [begin, end).  worker is the
 * participant index in [0, nthreads) (0 is the calling thread), usable to
 * index per-worker scratch. */
typedef void (*mc_task_fn)(void *ctx, size_t begin, size_t end, unsigned worker);

/* Called by the dispatching thread roughly every MC_POLL_INTERVAL_MS while a
 * region runs; a nonzero return cancels the region (MC_ECANCELED). */
typedef int (*mc_poll_fn)(void *poll_ctx);

#define MC_POLL_INTERVAL_MS 20
#define MC_MAX_THREADS 1024

enum mc_schedule {
    MC_SCHEDULE_STATIC = 0,   /* contiguous share per participant */
    MC_SCHEDULE_DYNAMIC = 1   /* grain-sized chunks from an atomic counter */
};

/* How a kernel runs: on which pool, with how many participants, and how the
 * caller is interrupted.  pool == NULL runs serially in the calling thread
 * (the serial shim: same results, no threads). nthreads == 0 means every
 * thread of the pool; nthreads larger than the pool is MC_EINVAL. */
typedef struct mc_exec {
    mc_pool *pool;
    unsigned nthreads;
    mc_poll_fn poll;
    void *poll_ctx;
} mc_exec;

/* Create a pool of nthreads participants (nthreads - 1 worker threads plus
 * the caller).  1 <= nthreads <= MC_MAX_THREADS.  On MC_ETHREAD the OS error
 * (errno) is stored in *os_error (if not NULL); threads already started are
 * joined and everything is freed. */
MC_API int mc_pool_create(mc_pool **out, unsigned nthreads, int *os_error);

/* Join every worker and free the pool.  Must not race with a dispatch. */
MC_API void mc_pool_destroy(mc_pool *pool);

MC_API unsigned mc_pool_threads(const mc_pool *pool);

/* MC_OK if the pool can run regions in this process, MC_ESTALE if it was
 * created before a fork() (its threads exist only in the parent). */
MC_API int mc_pool_check(const mc_pool *pool);

/* Number of participants a dispatch with this exec will use (>= 1), or 0 if
 * the exec is invalid. */
MC_API unsigned mc_exec_threads(const mc_exec *ex);

/* Run fn over [0, n) in chunks of at most `grain` indices (grain 0: pick one).
 * Returns when every chunk has run, or MC_ECANCELED after a poll asked to
 * stop (workers stop between chunks).  Reentrant calls from inside a region
 * run serially in the calling worker.  Concurrent dispatches on one pool from
 * different threads are serialised.  No allocation per dispatch. */
MC_API int mc_parallel_for(const mc_exec *ex, mc_task_fn fn, void *ctx,
                           size_t n, size_t grain, int schedule);

/* Run `iterations` empty regions and store the mean seconds per region.
 * Measures pure dispatch cost (wake, run, join) without any binding. */
MC_API int mc_bench_dispatch(const mc_exec *ex, size_t iterations, double *seconds_per_region);

/* A range body that does nothing: `void f(void *ctx, size_t begin, size_t
 * end)`, the signature parallel_for bindings accept.  Used to measure the
 * cost of a dispatch from each binding. */
MC_API void mc_noop_range(void *ctx, size_t begin, size_t end);

/* Test hook: after `after` more successful thread creations, the next one
 * fails with EAGAIN (once).  after < 0 disables. */
MC_API void mc_debug_fail_thread_create(int after);

/* ------------------------------------------------------------------ raw threads */
/* Body run by each of the threads of mc_run_threads. */
typedef void (*mc_thread_body)(void *ctx, unsigned index);

/* Run body(ctx, i) for i in [0, n) on n newly created OS threads and join
 * them all.  If creating thread k fails, threads 0..k-1 are still joined
 * (they run to completion), *os_error receives errno, and MC_ETHREAD is
 * returned: no thread outlives the call. */
MC_API int mc_run_threads(unsigned n, mc_thread_body body, void *ctx, int *os_error);

/* Called by mc_run_threads_ex on the launching thread when creating thread
 * `started` fails with `os_error`, before threads 0..started-1 are joined:
 * if their bodies wait for more work, this is where to tell them to finish
 * (otherwise the join waits for them forever). */
typedef void (*mc_start_failed)(void *ctx, unsigned started, int os_error);

/* mc_run_threads, plus `on_failure` (may be NULL) called as described above. */
MC_API int mc_run_threads_ex(unsigned n, mc_thread_body body, void *ctx, mc_start_failed on_failure,
                             int *os_error);

typedef struct mc_thread_record {
    unsigned index;          /* 0..n-1 */
    uint64_t os_thread_id;   /* gettid() / GetCurrentThreadId() */
    int cpu;                 /* CPU the thread started on, -1 if unknown */
    uint64_t items;          /* loop iterations done by this thread */
    double start_s;          /* seconds since the call started */
    double end_s;
    uint64_t partial_lo;     /* this thread's exact partial sum of squares */
    uint64_t partial_hi;
} mc_thread_record;

/* The seed's start_threads(n), done right: create n OS threads that each sum
 * i*i over their share of [0, work), publish into a shared total under a
 * mutex, and are all joined.  records must hold n entries.  On MC_ETHREAD the
 * threads already created are joined first and *os_error holds errno. */
MC_API int mc_start_threads(unsigned n, uint64_t work, mc_thread_record *records,
                            uint64_t *total_lo, uint64_t *total_hi, int *os_error);
/* mc_start_threads, calling poll(poll_ctx) (may be NULL) on the calling thread
 * every MC_POLL_INTERVAL_MS/2 while the threads run: when it returns nonzero,
 * every thread stops within well under a millisecond of work, all are joined
 * and MC_ECANCELED is returned (records and total then mean nothing). */
MC_API int mc_start_threads_polled(unsigned n, uint64_t work, mc_thread_record *records,
                                   uint64_t *total_lo, uint64_t *total_hi, int *os_error,
                                   mc_poll_fn poll, void *poll_ctx);

/* ------------------------------------------------------------------ info */
MC_API unsigned mc_cpu_count(void);
/* SIMD level the kernels selected at run time: "avx512", "avx2", "baseline". */
MC_API const char *mc_simd_level(void);

/* ------------------------------------------------------------------ kernels */
/* Largest n for which sum_{i<n} i^2 fits in 128 bits is above this bound. */
#define MC_SUM_OF_SQUARES_MAX_N 4398046511104ULL   /* 2**42 */
#define MC_COUNT_PRIMES_MAX_N 281474976710656ULL    /* 2**48 */

/* sum_{i=0}^{n-1} i*i, exact, as a 128-bit value. n > MC_SUM_OF_SQUARES_MAX_N
 * is MC_EOVERFLOW. */
MC_API int mc_sum_of_squares_range(const mc_exec *ex, uint64_t n,
                                   uint64_t *out_lo, uint64_t *out_hi);

/* Reductions over a contiguous, item-aligned buffer of n elements.
 * Integer dtypes: exact (result is_int).  Float dtypes: accumulated in double
 * with 16 fixed lanes per block and blocks combined pairwise in order. */
MC_API int mc_sum(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out);
MC_API int mc_sum_of_squares(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out);
MC_API int mc_dot(const mc_exec *ex, const void *x, const void *y, size_t n, int dtype, mc_scalar *out);

/* Minimum and maximum; n == 0 is MC_EINVAL.  Float inputs: NaN propagates
 * (both results NaN if any element is NaN). */
MC_API int mc_minmax(const mc_exec *ex, const void *x, size_t n, int dtype,
                     mc_scalar *min_out, mc_scalar *max_out);

/* counts[bins] = number of elements in each of `bins` equal-width bins over
 * [lo, hi]; element v goes to floor((v - lo) * bins / (hi - lo)), the value hi
 * into the last bin; values outside [lo, hi] and NaN are not counted.
 * bins >= 1 and lo < hi (finite) or MC_EINVAL. */
MC_API int mc_histogram(const mc_exec *ex, const void *x, size_t n, int dtype,
                        size_t bins, double lo, double hi, int64_t *counts);

/* Number of primes p < n.  n > MC_COUNT_PRIMES_MAX_N is MC_EINVAL. */
MC_API int mc_count_primes(const mc_exec *ex, uint64_t n, uint64_t *out);

/* Monte Carlo estimate of pi: counts how many of `samples` points fall inside
 * the quarter circle.  Point i is derived from a counter-based generator of
 * (seed, i), so the count does not depend on the thread count. */
MC_API int mc_monte_carlo_pi(const mc_exec *ex, uint64_t samples, uint64_t seed, uint64_t *hits);

/* Escape-time Mandelbrot: out[row * width + col] = iterations before |z| > 2
 * (max_iter if it never escapes) for c at the pixel centre
 * (xmin + (col + 0.5) * (xmax - xmin) / width, ymin + (row + 0.5) * (ymax - ymin) / height). */
MC_API int mc_mandelbrot(const mc_exec *ex, size_t width, size_t height, uint32_t max_iter,
                         double xmin, double xmax, double ymin, double ymax, uint32_t *out);

/* c[m x n] = a[m x k] @ b[k x n], row-major float64, blocked.  Each c[i][j]
 * accumulates over k in the same order whatever the thread count. */
MC_API int mc_matmul_f64(const mc_exec *ex, const double *a, const double *b, double *c,
                         size_t m, size_t k, size_t n);

/* out[i] = x[i] * x[i].  out_dtype: the input dtype, MC_F64, or (integer
 * input) MC_I64 / MC_U64.  Integer results that do not fit out_dtype are
 * MC_EOVERFLOW (out contents then unspecified). */
MC_API int mc_square(const mc_exec *ex, const void *x, int dtype, void *out, int out_dtype, size_t n);

/* ------------------------------------------------------------------ argument rules */
/* The rules every binding applies to a kernel's buffer arguments, kept here
 * once: element format, contiguity, alignment, writability, lengths, formats
 * that must agree, sizes that must fit, outputs that must not overlap inputs.
 * A binding describes each buffer with an mc_buf (how it obtained it is its
 * own business: PEP 3118 in the extension, memoryview in ctypes/cffi/Cython)
 * and gets back the first problem as an mc_arg code plus the argument's name
 * and a detail text; manycore._errors turns (code, name, detail) into the
 * exception, the same whichever binding found it. */
enum mc_arg_code {
    MC_ARG_OK = 0,
    MC_ARG_NOT_BUFFER = 100,     /* found by the binding: the object has no buffer */
    MC_ARG_NOT_CONTIGUOUS = 101,
    MC_ARG_FORMAT = 102,         /* element format unsupported (detail: the format) */
    MC_ARG_READONLY = 103,
    MC_ARG_LENGTH = 104,
    MC_ARG_MISALIGNED = 105,
    MC_ARG_FORMAT_MISMATCH = 106,
    MC_ARG_NDIM = 107,
    MC_ARG_EMPTY = 108,
    MC_ARG_OVERLAP = 109,
    MC_ARG_TOO_BIG = 110         /* sizes whose product does not fit in memory */
};

/* Kernels with buffer arguments, and their buffers in this order:
 * SUM, SUM_OF_SQUARES, MINMAX: x.  DOT: x, y.  HISTOGRAM: x, out (dims: bins).
 * MANDELBROT: out (dims: width, height).  MATMUL: a, b, out (dims: m, k, n).
 * SQUARE: x, out. */
enum mc_kernel_id {
    MC_K_SUM = 0, MC_K_SUM_OF_SQUARES, MC_K_MINMAX, MC_K_DOT, MC_K_HISTOGRAM,
    MC_K_MANDELBROT, MC_K_MATMUL, MC_K_SQUARE,
    MC_K_COUNT
};

typedef struct mc_buf {
    const void *data;        /* first byte (ignored when nbytes == 0) */
    size_t nbytes;
    size_t itemsize;
    const char *format;      /* struct-module format string; NULL means "B" */
    int c_contiguous;
    int readonly;
    int dtype;               /* set by mc_check_args: the mc_dtype */
    size_t n;                /* set by mc_check_args: elements */
} mc_buf;

typedef struct mc_arg_problem {
    int code;                /* enum mc_arg_code; MC_ARG_OK when the arguments are fine */
    const char *arg;         /* name of the argument at fault (static string) */
    char detail[192];        /* detail for the message ("" when the code needs none) */
} mc_arg_problem;

/* Number of buffer arguments of `kernel` (0 for an unknown id); the name of
 * the i-th and whether the kernel writes to it (*writable may be NULL). */
MC_API size_t mc_kernel_nbufs(int kernel);
MC_API const char *mc_kernel_buf_name(int kernel, size_t i, int *writable);

/* Check the buffers (nbufs of them, in the kernel's order) and the sizes
 * (dims, ndims as listed above) of one call of `kernel`; fills each buffer's
 * dtype and n.  Returns problem->code: MC_ARG_OK, or the first problem found,
 * in a fixed order: each buffer alone (contiguity, format, writability,
 * alignment), then the kernel's own rules. */
MC_API int mc_check_args(int kernel, mc_buf *bufs, size_t nbufs, const uint64_t *dims, size_t ndims,
                         mc_arg_problem *problem);

#ifdef __cplusplus
}
#endif
#endif /* MANYCORE_H */
