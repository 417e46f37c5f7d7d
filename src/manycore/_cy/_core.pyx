# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, freethreading_compatible=True
"""Cython bindings of the C core: ``cdef extern from "manycore.h"``, one call per kernel.

The low level of manycore._cy.core: every function takes the pool handle (an
int, 0 for none), the participant count, whether to poll for Ctrl-C, and
plain values or byte memoryviews, calls the core with the GIL released, and
returns the status code with the result.  The Python face
(manycore._cy.core) validates arguments exactly like manycore.native and maps
the status through manycore._errors.

This module links the core statically: it runs the same code as the
extension, in its own copy (pools made here are not manycore.native's).
"""

from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memset


cdef extern from "manycore.h" nogil:
    ctypedef struct mc_pool:
        pass
    ctypedef int (*mc_poll_fn)(void *poll_ctx) noexcept
    ctypedef void (*mc_task_fn)(void *ctx, size_t begin, size_t end, unsigned worker) noexcept
    ctypedef struct mc_exec:
        mc_pool *pool
        unsigned nthreads
        mc_poll_fn poll
        void *poll_ctx
    ctypedef struct mc_scalar:
        int is_int
        uint64_t words[3]
        double f

    ctypedef struct mc_buf:
        const void *data
        size_t nbytes
        size_t itemsize
        const char *format
        int c_contiguous
        int readonly
        int dtype
        size_t n
    ctypedef struct mc_arg_problem:
        int code
        const char *arg
        char detail[192]

    enum:
        MC_OK
        MC_ECANCELED
    enum:
        MC_K_SUM
        MC_K_SUM_OF_SQUARES
        MC_K_MINMAX
        MC_K_DOT
        MC_K_HISTOGRAM
        MC_K_MANDELBROT
        MC_K_MATMUL
        MC_K_SQUARE

    size_t mc_kernel_nbufs(int kernel)
    int mc_check_args(int kernel, mc_buf *bufs, size_t nbufs, const uint64_t *dims, size_t ndims,
                      mc_arg_problem *problem)

    const char *mc_strerror(int status)
    size_t mc_dtype_size(int dtype)
    int mc_pool_create(mc_pool **out, unsigned nthreads, int *os_error)
    void mc_pool_destroy(mc_pool *pool)
    int mc_pool_check(const mc_pool *pool)
    int mc_parallel_for(const mc_exec *ex, mc_task_fn fn, void *ctx, size_t n, size_t grain, int schedule)
    int mc_bench_dispatch(const mc_exec *ex, size_t iterations, double *seconds_per_region)
    unsigned mc_cpu_count()
    const char *mc_simd_level()
    int mc_sum_of_squares_range(const mc_exec *ex, uint64_t n, uint64_t *out_lo, uint64_t *out_hi)
    int mc_sum(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out)
    int mc_sum_of_squares(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *out)
    int mc_dot(const mc_exec *ex, const void *x, const void *y, size_t n, int dtype, mc_scalar *out)
    int mc_minmax(const mc_exec *ex, const void *x, size_t n, int dtype, mc_scalar *min_out, mc_scalar *max_out)
    int mc_histogram(const mc_exec *ex, const void *x, size_t n, int dtype, size_t bins, double lo, double hi,
                     int64_t *counts)
    int mc_count_primes(const mc_exec *ex, uint64_t n, uint64_t *out)
    int mc_monte_carlo_pi(const mc_exec *ex, uint64_t samples, uint64_t seed, uint64_t *hits)
    int mc_mandelbrot(const mc_exec *ex, size_t width, size_t height, uint32_t max_iter,
                      double xmin, double xmax, double ymin, double ymax, uint32_t *out)
    int mc_matmul_f64(const mc_exec *ex, const double *a, const double *b, double *c,
                      size_t m, size_t k, size_t n)
    int mc_square(const mc_exec *ex, const void *x, int dtype, void *out, int out_dtype, size_t n)


# ---------------------------------------------------------------- plumbing
cdef int _poll(void *ctx) noexcept nogil:
    # Called by the dispatching (main) thread every 20 ms: run the signal
    # handlers, as the extension does; their exception cancels the region.
    with gil:
        try:
            PyErr_CheckSignals()
        except BaseException as exc:
            (<list>ctx).append(exc)
            return 1
    return 0


cdef void _python_task(void *ctx, size_t begin, size_t end, unsigned worker) noexcept nogil:
    # A Python body: ctx is a manycore.ffi._face.CallbackState, which keeps
    # the first exception for the caller instead of losing it.
    with gil:
        try:
            (<object>ctx)(begin, end, worker)
        except BaseException as exc:
            (<object>ctx).record(exc)


cdef class _Call:
    """One kernel call's mc_exec, and the exceptions its poll caught."""
    cdef mc_exec ex
    cdef list errors

    def __cinit__(self, uintptr_t handle, unsigned nthreads, bint poll):
        self.errors = []
        self.ex.pool = <mc_pool *>handle
        self.ex.nthreads = nthreads
        self.ex.poll = NULL
        if poll:
            self.ex.poll = _poll
        self.ex.poll_ctx = <void *>self.errors

    cdef int done(self, int status) except? -100:
        if status == MC_ECANCELED and self.errors:
            raise self.errors[0]
        return status


cdef object _scalar(const mc_scalar *s):
    # The core writes its mc_scalar outputs only on MC_OK: callers zero them
    # first (_zeroed), so a failed call converts 0.0, not uninitialised stack.
    if not s.is_int:
        return s.f
    cdef object top = <long long>s.words[2]   # two's complement top word
    return (top << 128) + (<object>s.words[1] << 64) + <object>s.words[0]


cdef inline void _zeroed(mc_scalar *s) noexcept:
    memset(s, 0, sizeof(mc_scalar))


cdef inline const void *_cptr(const unsigned char[::1] b) noexcept:
    return <const void *>&b[0] if b.shape[0] else NULL


cdef inline void *_wptr(unsigned char[::1] b) noexcept:
    return <void *>&b[0] if b.shape[0] else NULL


# ---------------------------------------------------------------- info / pools
def cpu_count():
    return mc_cpu_count()


def simd_level():
    return mc_simd_level().decode()


def dtype_size(int dtype):
    """mc_dtype_size(dtype): the trivial call the benchmark uses for per-call overhead."""
    return mc_dtype_size(dtype)


def pool_create(unsigned threads):
    cdef mc_pool *pool = NULL
    cdef int os_error = 0
    cdef int status
    with nogil:
        status = mc_pool_create(&pool, threads, &os_error)
    return status, <uintptr_t>pool, os_error


def pool_destroy(uintptr_t handle):
    with nogil:
        mc_pool_destroy(<mc_pool *>handle)


def pool_check(uintptr_t handle):
    return mc_pool_check(<mc_pool *>handle)


# ---------------------------------------------------------------- argument rules
KERNELS = {
    "sum": MC_K_SUM,
    "sum_of_squares": MC_K_SUM_OF_SQUARES,
    "minmax": MC_K_MINMAX,
    "dot": MC_K_DOT,
    "histogram": MC_K_HISTOGRAM,
    "mandelbrot": MC_K_MANDELBROT,
    "matmul": MC_K_MATMUL,
    "square": MC_K_SQUARE,
}


def check_args(int kernel, list specs, tuple dims):
    """mc_check_args over ``specs`` (address, nbytes, itemsize, format, c_contiguous, readonly)."""
    cdef mc_buf bufs[3]
    cdef uint64_t sizes[3]
    cdef mc_arg_problem problem
    cdef size_t i, nbufs = len(specs), ndims = len(dims)
    if nbufs > 3 or ndims > 3:
        raise ValueError("at most 3 buffers and 3 sizes")
    formats = [spec[3].encode("utf-8", "replace") for spec in specs]
    memset(bufs, 0, sizeof(bufs))
    for i in range(nbufs):
        spec = specs[i]
        bufs[i].data = <const void *><uintptr_t>spec[0]
        bufs[i].nbytes = spec[1]
        bufs[i].itemsize = spec[2]
        bufs[i].format = <const char *>formats[i]
        bufs[i].c_contiguous = spec[4]
        bufs[i].readonly = spec[5]
    for i in range(ndims):
        sizes[i] = dims[i]
    code = mc_check_args(kernel, bufs, nbufs, sizes, ndims, &problem)
    arg = problem.arg.decode() if problem.arg != NULL else ""
    detail = problem.detail.decode("utf-8", "replace")
    return code, arg, detail, [(bufs[i].dtype, bufs[i].n) for i in range(nbufs)]


# ---------------------------------------------------------------- kernels
def sum_of_squares_range(uintptr_t handle, unsigned nthreads, bint poll, uint64_t n):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef uint64_t lo = 0, hi = 0
    cdef int st
    with nogil:
        st = mc_sum_of_squares_range(&c.ex, n, &lo, &hi)
    return c.done(st), (<object>hi << 64) | <object>lo


def reduce(bint is_sum, uintptr_t handle, unsigned nthreads, bint poll,
           const unsigned char[::1] x, size_t n, int dtype):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef mc_scalar out
    _zeroed(&out)
    cdef const void *px = _cptr(x)
    cdef int st
    with nogil:
        if is_sum:
            st = mc_sum(&c.ex, px, n, dtype, &out)
        else:
            st = mc_sum_of_squares(&c.ex, px, n, dtype, &out)
    return c.done(st), _scalar(&out)


def dot(uintptr_t handle, unsigned nthreads, bint poll,
        const unsigned char[::1] x, const unsigned char[::1] y, size_t n, int dtype):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef mc_scalar out
    _zeroed(&out)
    cdef const void *px = _cptr(x)
    cdef const void *py = _cptr(y)
    cdef int st
    with nogil:
        st = mc_dot(&c.ex, px, py, n, dtype, &out)
    return c.done(st), _scalar(&out)


def minmax(uintptr_t handle, unsigned nthreads, bint poll, const unsigned char[::1] x, size_t n, int dtype):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef mc_scalar lo, hi
    _zeroed(&lo)
    _zeroed(&hi)
    cdef const void *px = _cptr(x)
    cdef int st
    with nogil:
        st = mc_minmax(&c.ex, px, n, dtype, &lo, &hi)
    return c.done(st), (_scalar(&lo), _scalar(&hi))


def histogram(uintptr_t handle, unsigned nthreads, bint poll, const unsigned char[::1] x, size_t n, int dtype,
              size_t bins, double lo, double hi, unsigned char[::1] out):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef const void *px = _cptr(x)
    cdef int64_t *counts = <int64_t *>_wptr(out)
    cdef int st
    with nogil:
        st = mc_histogram(&c.ex, px, n, dtype, bins, lo, hi, counts)
    return c.done(st)


def count_primes(uintptr_t handle, unsigned nthreads, bint poll, uint64_t n):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef uint64_t out = 0
    cdef int st
    with nogil:
        st = mc_count_primes(&c.ex, n, &out)
    return c.done(st), out


def monte_carlo_pi(uintptr_t handle, unsigned nthreads, bint poll, uint64_t samples, uint64_t seed):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef uint64_t hits = 0
    cdef int st
    with nogil:
        st = mc_monte_carlo_pi(&c.ex, samples, seed, &hits)
    return c.done(st), hits


def mandelbrot(uintptr_t handle, unsigned nthreads, bint poll, size_t width, size_t height, uint32_t max_iter,
               double xmin, double xmax, double ymin, double ymax, unsigned char[::1] out):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef uint32_t *po = <uint32_t *>_wptr(out)
    cdef int st
    with nogil:
        st = mc_mandelbrot(&c.ex, width, height, max_iter, xmin, xmax, ymin, ymax, po)
    return c.done(st)


def matmul(uintptr_t handle, unsigned nthreads, bint poll, const unsigned char[::1] a,
           const unsigned char[::1] b, unsigned char[::1] out, size_t m, size_t k, size_t n):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef const double *pa = <const double *>_cptr(a)
    cdef const double *pb = <const double *>_cptr(b)
    cdef double *pc = <double *>_wptr(out)
    cdef int st
    with nogil:
        st = mc_matmul_f64(&c.ex, pa, pb, pc, m, k, n)
    return c.done(st)


def square(uintptr_t handle, unsigned nthreads, bint poll, const unsigned char[::1] x, int dtype,
           unsigned char[::1] out, int out_dtype, size_t n):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef const void *px = _cptr(x)
    cdef void *po = _wptr(out)
    cdef int st
    with nogil:
        st = mc_square(&c.ex, px, dtype, po, out_dtype, n)
    return c.done(st)


# ---------------------------------------------------------------- parallel_for
def python_task_address():
    """Address of the trampoline that runs a Python body (ctx: its CallbackState)."""
    return <uintptr_t>_python_task


def parallel_for(uintptr_t handle, unsigned nthreads, bint poll, uintptr_t fn, uintptr_t ctx,
                 size_t n, size_t grain, int schedule):
    cdef _Call c = _Call(handle, nthreads, poll)
    cdef int st
    with nogil:
        st = mc_parallel_for(&c.ex, <mc_task_fn>fn, <void *>ctx, n, grain, schedule)
    return c.done(st)


def bench_dispatch(uintptr_t handle, unsigned nthreads, size_t iterations):
    cdef _Call c = _Call(handle, nthreads, False)
    cdef double per = 0.0
    cdef int st
    with nogil:
        st = mc_bench_dispatch(&c.ex, iterations, &per)
    return c.done(st), per
