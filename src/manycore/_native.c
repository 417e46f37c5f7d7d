/*
 * _native.c -- the CPython extension over the manycore C core (csrc/).
 *
 * This layer does only what needs the C API: it holds buffers for the whole
 * call (so a bytearray cannot be resized under a kernel), checks their
 * format, contiguity, alignment and writability, releases the GIL around
 * kernels large enough to pay for it, polls for signals while a kernel runs,
 * and turns status codes into exceptions through manycore._errors (the one
 * table every binding shares).  Scalar arguments arrive already validated by
 * the Python face (manycore/native.py); the core re-checks their domains.
 *
 * Multi-phase init, all state in the module state, heap type for Pool.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manycore.h"

/* Critical sections (3.13+) lock an object on free-threaded builds and are
 * empty blocks on GIL builds; before 3.13 the GIL alone serialises. */
#ifndef Py_BEGIN_CRITICAL_SECTION
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#endif

#ifndef MC_BUILD_COMPILER
#  define MC_BUILD_COMPILER "unknown"
#endif
#ifndef MC_BUILD_OPENMP
#  define MC_BUILD_OPENMP 0
#endif

/* Work (in element operations) below which a kernel runs serially with the
 * GIL held: releasing and re-taking the GIL and waking the pool cost about
 * 1-2 us, i.e. a few thousand element operations (benchmarks/native.py
 * measures the crossover). */
#define GIL_RELEASE_MIN_WORK 16384.0
/* Work below which waking the pool does not pay (dispatch ~0.5-1 us plus
 * cache misses on the other core): measured crossover for native.sum over
 * float64 lies between 2**16 and 2**18 elements on a 2-core machine. */
#define POOL_MIN_WORK 131072.0

typedef struct {
    PyTypeObject *pool_type;
    PyObject *raise_status;     /* manycore._errors.raise_status */
    PyObject *raise_argument;   /* manycore._errors.raise_argument */
    unsigned long main_thread_ident;
    PyObject *resolve;          /* manycore.native._resolve(threads, pool) -> (handle, threads) */
    PyObject *default_pool;     /* its handle for (None, None), cached; reset after fork() */
    PyObject *sos_type_message; /* manycore._kernel_args._SUM_OF_SQUARES_TYPE */
    PyObject *square_out;       /* manycore._kernel_args.square_out: square's default output, the slow way */
    PyObject *np_empty;         /* numpy.empty, once NumPy is loaded (square's default output) */
    PyObject *square_formats;   /* manycore._kernel_args.SQUARE_OUT: input format -> output format */
} module_state;

static inline module_state *get_state(PyObject *module)
{
    return (module_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ errors */
static PyObject *raise_status(module_state *st, int status, const char *context, int os_error)
{
    PyObject *r = PyObject_CallFunction(st->raise_status, "isi", status, context, os_error);
    Py_XDECREF(r);   /* raise_status always raises; r is NULL */
    return NULL;
}

static int raise_argument(module_state *st, int code, const char *arg, PyObject *detail)
{
    PyObject *r = PyObject_CallFunction(st->raise_argument, "isO", code, arg, detail ? detail : Py_None);
    Py_XDECREF(r);
    return -1;
}

static int raise_argument_str(module_state *st, int code, const char *arg, const char *detail)
{
    PyObject *d = PyUnicode_FromString(detail);
    if (d == NULL)
        return -1;
    raise_argument(st, code, arg, d);
    Py_DECREF(d);
    return -1;
}

/* ------------------------------------------------------------------ Pool */
typedef struct {
    PyObject_HEAD
    mc_pool *pool;              /* NULL once destroyed */
    unsigned threads;
    PyThread_type_lock lock;    /* guards users and closing */
    int users;                  /* kernel calls currently using pool */
    int closing;
} PoolObject;

static void pool_destroy_nogil(mc_pool *pool)
{
    Py_BEGIN_ALLOW_THREADS
    mc_pool_destroy(pool);
    Py_END_ALLOW_THREADS
}

static PyObject *Pool_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"threads", NULL};
    long threads_l;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l:Pool", kwlist, &threads_l))
        return NULL;
    module_state *st = PyType_GetModuleState(type);
    if (st == NULL)
        return NULL;
    if (threads_l < 1 || threads_l > MC_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be between 1 and %d, got %ld", MC_MAX_THREADS, threads_l);
        return NULL;
    }
    unsigned threads = (unsigned)threads_l;
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    int status, os_error = 0;
    mc_pool *pool = NULL;
    Py_BEGIN_ALLOW_THREADS
    status = mc_pool_create(&pool, threads, &os_error);
    Py_END_ALLOW_THREADS
    if (status != MC_OK) {
        Py_DECREF(self);
        return raise_status(st, status, "Pool", os_error);
    }
    self->pool = pool;
    self->threads = threads;
    return (PyObject *)self;
}

/* Register a kernel call on the pool; fails if the pool is closed. */
static int pool_acquire(PoolObject *self)
{
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    int ok = !self->closing && self->pool != NULL;
    if (ok)
        self->users++;
    PyThread_release_lock(self->lock);
    if (!ok)
        PyErr_SetString(PyExc_RuntimeError, "cannot use a closed Pool");
    return ok ? 0 : -1;
}

static void pool_release(PoolObject *self)
{
    mc_pool *to_destroy = NULL;
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    self->users--;
    if (self->closing && self->users == 0) {
        to_destroy = self->pool;
        self->pool = NULL;
    }
    PyThread_release_lock(self->lock);
    if (to_destroy)
        pool_destroy_nogil(to_destroy);
}

/* Close now, or when the last running kernel finishes. Idempotent. */
static void pool_close(PoolObject *self)
{
    mc_pool *to_destroy = NULL;
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    self->closing = 1;
    if (self->users == 0) {
        to_destroy = self->pool;
        self->pool = NULL;
    }
    PyThread_release_lock(self->lock);
    if (to_destroy)
        pool_destroy_nogil(to_destroy);
}

static PyObject *Pool_close(PoolObject *self, PyObject *Py_UNUSED(ignored))
{
    pool_close(self);
    Py_RETURN_NONE;
}

static PyObject *Pool_get_threads(PoolObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->threads);
}

static PyObject *Pool_get_closed(PoolObject *self, void *Py_UNUSED(closure))
{
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    int closed = self->closing;
    PyThread_release_lock(self->lock);
    return PyBool_FromLong(closed);
}

static void Pool_dealloc(PoolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->pool) {
        /* users is 0 here: every kernel call holds a reference. */
        mc_pool_destroy(self->pool);
        self->pool = NULL;
    }
    if (self->lock)
        PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef Pool_methods[] = {
    {"close", (PyCFunction)Pool_close, METH_NOARGS,
     "Join the worker threads (now, or after running kernels finish)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"threads", (getter)Pool_get_threads, NULL, "Number of participants (workers + caller).", NULL},
    {"closed", (getter)Pool_get_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Pool_slots[] = {
    {Py_tp_new, Pool_new},
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_methods, Pool_methods},
    {Py_tp_getset, Pool_getset},
    {Py_tp_doc, "Pool(threads): a persistent pool of native worker threads (low-level handle)."},
    {0, NULL},
};

static PyType_Spec Pool_spec = {
    .name = "manycore._native.Pool",
    .basicsize = sizeof(PoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Pool_slots,
};

/* ------------------------------------------------------------------ parent watch */
/* A worker process ends itself soon after the process that owns it dies, by
 * any signal (SIGKILL included): a detached thread (no Python in it, so it
 * needs no GIL and works while the worker runs a C loop) polls the owner and
 * calls _exit().  Owner gone: kill(pid, 0) fails with ESRCH, or the owner is
 * a zombie (dead, not reaped yet: /proc/<pid>/stat says 'Z'). */
#ifndef _WIN32
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t owner;
    long interval_ns;
    int exit_code;
} watch_arg;

static int owner_gone(pid_t owner)
{
    if (kill(owner, 0) < 0 && errno == ESRCH)
        return 1;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)owner);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;   /* no /proc: kill() alone decides */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');   /* "pid (comm) S ...": comm may hold spaces */
    return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

static void *watch_owner(void *p)
{
    watch_arg a = *(watch_arg *)p;
    free(p);
    struct timespec pause = {a.interval_ns / 1000000000L, a.interval_ns % 1000000000L};
    for (;;) {
        if (owner_gone(a.owner))
            _exit(a.exit_code);
        nanosleep(&pause, NULL);
    }
    return NULL;
}
#endif

static PyObject *nat_watch_owner(PyObject *m, PyObject *args)
{
    long owner, interval_ms;
    int exit_code;
    if (!PyArg_ParseTuple(args, "lli:watch_owner", &owner, &interval_ms, &exit_code))
        return NULL;
    if (owner <= 0 || interval_ms <= 0) {
        PyErr_SetString(PyExc_ValueError, "owner and interval_ms must be > 0");
        return NULL;
    }
#ifdef _WIN32
    PyErr_SetString(PyExc_NotImplementedError, "watch_owner needs POSIX");
    return NULL;
#else
    watch_arg *a = malloc(sizeof *a);
    if (a == NULL)
        return PyErr_NoMemory();
    a->owner = (pid_t)owner;
    a->interval_ns = interval_ms * 1000000L;
    a->exit_code = exit_code;
    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (rc == 0)
            rc = pthread_create(&tid, &attr, watch_owner, a);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        free(a);
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
#endif
}

/* ------------------------------------------------------------------ kernel calls */
typedef struct {
    module_state *st;
    PoolObject *pool;      /* strong reference while the call runs, or NULL */
    mc_exec ex;
    PyThreadState *ts;
    int release_gil;
} kcall;

static int poll_signals(void *p)
{
    kcall *kc = p;
    PyEval_RestoreThread(kc->ts);
    int rc = PyErr_CheckSignals();
    kc->ts = PyEval_SaveThread();
    return rc < 0;
}

/* Decide where a kernel of `work` element operations runs.  pool_obj is a
 * Pool or None (serial); threads 0 means every thread of the pool. */
static int kcall_begin(module_state *st, kcall *kc, PyObject *pool_obj, unsigned threads, double work)
{
    memset(kc, 0, sizeof *kc);
    kc->st = st;
    if (pool_obj != Py_None) {
        if (!PyObject_TypeCheck(pool_obj, st->pool_type)) {
            PyErr_Format(PyExc_TypeError, "pool must be a manycore._native.Pool or None, not %.100s",
                         Py_TYPE(pool_obj)->tp_name);
            return -1;
        }
        if (pool_acquire((PoolObject *)pool_obj) < 0)
            return -1;
        Py_INCREF(pool_obj);
        kc->pool = (PoolObject *)pool_obj;
        /* A pool from before fork() is unusable even for work small enough
         * to run inline: fail the same way whatever the input size. */
        int stale = mc_pool_check(kc->pool->pool);
        if (stale != MC_OK) {
            pool_release(kc->pool);
            Py_CLEAR(kc->pool);
            raise_status(st, stale, "Pool", 0);
            return -1;
        }
        if (threads > kc->pool->threads) {
            PyErr_Format(PyExc_ValueError, "threads=%u is more than the pool's %u threads",
                         threads, kc->pool->threads);
            pool_release(kc->pool);
            Py_CLEAR(kc->pool);
            return -1;
        }
    }
    kc->release_gil = work >= GIL_RELEASE_MIN_WORK;
    if (work >= POOL_MIN_WORK && kc->pool != NULL && threads != 1) {
        kc->ex.pool = kc->pool->pool;
        kc->ex.nthreads = threads;
    }
    /* Only the main thread handles signals; elsewhere polling would just
     * re-take the GIL for nothing. */
    if (kc->release_gil && PyThread_get_thread_ident() == st->main_thread_ident) {
        kc->ex.poll = poll_signals;
        kc->ex.poll_ctx = kc;
    }
    return 0;
}

static inline void kcall_allow_threads(kcall *kc)
{
    if (kc->release_gil)
        kc->ts = PyEval_SaveThread();
}

static inline void kcall_end_allow_threads(kcall *kc)
{
    if (kc->release_gil)
        PyEval_RestoreThread(kc->ts);
}

/* Release the pool and turn status into an exception. Returns 0 on success. */
static int kcall_finish(kcall *kc, int status, const char *context)
{
    if (kc->pool) {
        pool_release(kc->pool);
        Py_CLEAR(kc->pool);
    }
    if (PyErr_Occurred())      /* e.g. KeyboardInterrupt from the poll */
        return -1;
    if (status != MC_OK) {
        raise_status(kc->st, status, context, 0);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ buffers */
/* The buffers of one kernel call, obtained with PEP 3118 and checked by the
 * core's rules (mc_check_args, shared with the ctypes/cffi/Cython face). */
typedef struct {
    Py_buffer views[3];
    mc_buf bufs[3];
    size_t held;
} kbufs;

static void kbufs_release(kbufs *kb)
{
    while (kb->held > 0)
        PyBuffer_Release(&kb->views[--kb->held]);
}

static int raise_problem(module_state *st, int code, const mc_arg_problem *p)
{
    if (code < 0) {
        raise_status(st, code, "argument check", 0);
        return -1;
    }
    if (p->detail[0] == '\0')
        return raise_argument(st, code, p->arg, NULL);
    return raise_argument_str(st, code, p->arg, p->detail);
}

/* objs: the kernel's buffer arguments in its order (manycore.h); dims as mc_check_args wants. */
static int kbufs_get(module_state *st, int kernel, PyObject *const *objs, const uint64_t *dims, size_t ndims,
                     kbufs *kb)
{
    size_t n = mc_kernel_nbufs(kernel);
    kb->held = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = mc_kernel_buf_name(kernel, i, NULL);
        if (!PyObject_CheckBuffer(objs[i])) {
            PyObject *tn = PyUnicode_FromString(Py_TYPE(objs[i])->tp_name);
            if (tn) {
                raise_argument(st, MC_ARG_NOT_BUFFER, name, tn);
                Py_DECREF(tn);
            }
            goto error;
        }
        Py_buffer *v = &kb->views[i];
        if (PyObject_GetBuffer(objs[i], v, PyBUF_FULL_RO) < 0)
            goto error;
        kb->held++;
        mc_buf *b = &kb->bufs[i];
        memset(b, 0, sizeof *b);
        b->data = v->buf;
        b->nbytes = (size_t)v->len;
        b->itemsize = (size_t)v->itemsize;
        b->format = v->format;
        b->c_contiguous = PyBuffer_IsContiguous(v, 'C');
        b->readonly = v->readonly;
    }
    mc_arg_problem problem;
    int code = mc_check_args(kernel, kb->bufs, n, dims, ndims, &problem);
    if (code == MC_ARG_OK)
        return 0;
    raise_problem(st, code, &problem);
error:
    kbufs_release(kb);
    return -1;
}

/* ------------------------------------------------------------------ conversions */
static int conv_u64(PyObject *obj, void *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return 0;
    *(uint64_t *)out = (uint64_t)v;
    return 1;
}

static int conv_size(PyObject *obj, void *out)
{
    size_t v = PyLong_AsSize_t(obj);
    if (v == (size_t)-1 && PyErr_Occurred())
        return 0;
    *(size_t *)out = v;
    return 1;
}

/* (hi << 64) | lo as an unsigned Python int. */
static PyObject *u128_to_pylong(uint64_t lo, uint64_t hi)
{
    PyObject *h = PyLong_FromUnsignedLongLong(hi), *l = NULL, *s = NULL, *shift = NULL, *r = NULL;
    if (h == NULL) goto done;
    shift = PyLong_FromLong(64);
    if (shift == NULL) goto done;
    s = PyNumber_Lshift(h, shift);
    if (s == NULL) goto done;
    l = PyLong_FromUnsignedLongLong(lo);
    if (l == NULL) goto done;
    r = PyNumber_Or(s, l);
done:
    Py_XDECREF(h);
    Py_XDECREF(l);
    Py_XDECREF(s);
    Py_XDECREF(shift);
    return r;
}

static PyObject *scalar_to_py(const mc_scalar *v)
{
    if (!v->is_int)
        return PyFloat_FromDouble(v->f);
    /* 192-bit two's complement: value = (int64)w2 * 2**128 + w1 * 2**64 + w0 */
    PyObject *top = PyLong_FromLongLong((long long)v->words[2]);
    PyObject *low = u128_to_pylong(v->words[0], v->words[1]);
    PyObject *shift = PyLong_FromLong(128), *s = NULL, *r = NULL;
    if (top && low && shift) {
        s = PyNumber_Lshift(top, shift);
        if (s)
            r = PyNumber_Add(s, low);
    }
    Py_XDECREF(top);
    Py_XDECREF(low);
    Py_XDECREF(shift);
    Py_XDECREF(s);
    return r;
}

/* ------------------------------------------------------------------ kernels */
/* The kernels' bodies below take a resolved (pool handle or None, threads);
 * their faces (further down, after the argument parser) check the arguments. */
static PyObject *sos_range_run(module_state *st, uint64_t n, PyObject *pool, unsigned threads)
{
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)n) < 0)
        return NULL;
    uint64_t lo = 0, hi = 0;
    kcall_allow_threads(&kc);
    int status = mc_sum_of_squares_range(&kc.ex, n, &lo, &hi);
    kcall_end_allow_threads(&kc);
    if (kcall_finish(&kc, status, "sum_of_squares") < 0)
        return NULL;
    return u128_to_pylong(lo, hi);
}

typedef int (*reduce_fn)(const mc_exec *, const void *, size_t, int, mc_scalar *);

static PyObject *reduce_run(module_state *st, PyObject *obj, PyObject *pool, unsigned threads, int kernel,
                            reduce_fn fn, const char *name)
{
    PyObject *objs[1] = {obj};
    kbufs kb;
    if (kbufs_get(st, kernel, objs, NULL, 0, &kb) < 0)
        return NULL;
    const mc_buf *x = &kb.bufs[0];
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)x->n) < 0) {
        kbufs_release(&kb);
        return NULL;
    }
    mc_scalar out;
    kcall_allow_threads(&kc);
    int status = fn(&kc.ex, x->data, x->n, x->dtype, &out);
    kcall_end_allow_threads(&kc);
    kbufs_release(&kb);
    if (kcall_finish(&kc, status, name) < 0)
        return NULL;
    return scalar_to_py(&out);
}

static PyObject *dot_run(module_state *st, PyObject *xo, PyObject *yo, PyObject *pool, unsigned threads)
{
    PyObject *objs[2] = {xo, yo};
    kbufs kb;
    if (kbufs_get(st, MC_K_DOT, objs, NULL, 0, &kb) < 0)
        return NULL;
    const mc_buf *x = &kb.bufs[0], *y = &kb.bufs[1];
    PyObject *result = NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, 2.0 * (double)x->n) == 0) {
        mc_scalar out;
        kcall_allow_threads(&kc);
        int status = mc_dot(&kc.ex, x->data, y->data, x->n, x->dtype, &out);
        kcall_end_allow_threads(&kc);
        if (kcall_finish(&kc, status, "dot") == 0)
            result = scalar_to_py(&out);
    }
    kbufs_release(&kb);
    return result;
}

static PyObject *minmax_run(module_state *st, PyObject *xo, PyObject *pool, unsigned threads)
{
    PyObject *objs[1] = {xo};
    kbufs kb;
    if (kbufs_get(st, MC_K_MINMAX, objs, NULL, 0, &kb) < 0)
        return NULL;
    const mc_buf *x = &kb.bufs[0];
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)x->n) < 0) {
        kbufs_release(&kb);
        return NULL;
    }
    mc_scalar lo, hi;
    kcall_allow_threads(&kc);
    int status = mc_minmax(&kc.ex, x->data, x->n, x->dtype, &lo, &hi);
    kcall_end_allow_threads(&kc);
    kbufs_release(&kb);
    if (kcall_finish(&kc, status, "minmax") < 0)
        return NULL;
    PyObject *a = scalar_to_py(&lo), *b = scalar_to_py(&hi), *r = NULL;
    if (a && b)
        r = PyTuple_Pack(2, a, b);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

static PyObject *nat_histogram(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    PyObject *objs[2], *pool;
    size_t bins;
    double lo, hi;
    unsigned int threads;
    if (!PyArg_ParseTuple(args, "OO&ddOOI:histogram", &objs[0], conv_size, &bins, &lo, &hi, &objs[1], &pool,
                          &threads))
        return NULL;
    uint64_t dims[1] = {bins};
    kbufs kb;
    if (kbufs_get(st, MC_K_HISTOGRAM, objs, dims, 1, &kb) < 0)
        return NULL;
    const mc_buf *x = &kb.bufs[0], *out = &kb.bufs[1];
    PyObject *result = NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)x->n) == 0) {
        kcall_allow_threads(&kc);
        int status = mc_histogram(&kc.ex, x->data, x->n, x->dtype, bins, lo, hi, (int64_t *)out->data);
        kcall_end_allow_threads(&kc);
        if (kcall_finish(&kc, status, "histogram") == 0)
            result = Py_NewRef(Py_None);
    }
    kbufs_release(&kb);
    return result;
}

static PyObject *count_primes_run(module_state *st, uint64_t n, PyObject *pool, unsigned threads)
{
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)n) < 0)
        return NULL;
    uint64_t count = 0;
    kcall_allow_threads(&kc);
    int status = mc_count_primes(&kc.ex, n, &count);
    kcall_end_allow_threads(&kc);
    if (kcall_finish(&kc, status, "count_primes") < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(count);
}

/* Hits of monte_carlo_pi's generator; the face turns them into the estimate. */
static PyObject *monte_carlo_run(module_state *st, uint64_t samples, uint64_t seed, PyObject *pool,
                                 unsigned threads, uint64_t *hits_out)
{
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, 4.0 * (double)samples) < 0)
        return NULL;
    uint64_t hits = 0;
    kcall_allow_threads(&kc);
    int status = mc_monte_carlo_pi(&kc.ex, samples, seed, &hits);
    kcall_end_allow_threads(&kc);
    if (kcall_finish(&kc, status, "monte_carlo_pi") < 0)
        return NULL;
    *hits_out = hits;
    return Py_NewRef(Py_None);
}

static PyObject *nat_mandelbrot(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    size_t width, height;
    unsigned int max_iter, threads;
    double xmin, xmax, ymin, ymax;
    PyObject *objs[1], *pool;
    if (!PyArg_ParseTuple(args, "O&O&IddddOOI:mandelbrot", conv_size, &width, conv_size, &height, &max_iter,
                          &xmin, &xmax, &ymin, &ymax, &objs[0], &pool, &threads))
        return NULL;
    uint64_t dims[2] = {width, height};
    kbufs kb;
    if (kbufs_get(st, MC_K_MANDELBROT, objs, dims, 2, &kb) < 0)
        return NULL;
    PyObject *result = NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)width * (double)height * (max_iter ? max_iter : 1) / 4.0) == 0) {
        kcall_allow_threads(&kc);
        int status = mc_mandelbrot(&kc.ex, width, height, max_iter, xmin, xmax, ymin, ymax,
                                   (uint32_t *)kb.bufs[0].data);
        kcall_end_allow_threads(&kc);
        if (kcall_finish(&kc, status, "mandelbrot") == 0)
            result = Py_NewRef(Py_None);
    }
    kbufs_release(&kb);
    return result;
}

static PyObject *nat_matmul(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    PyObject *objs[3], *pool;
    size_t mm, kk, nn;
    unsigned int threads;
    if (!PyArg_ParseTuple(args, "OOOO&O&O&OI:matmul", &objs[0], &objs[1], &objs[2], conv_size, &mm, conv_size,
                          &kk, conv_size, &nn, &pool, &threads))
        return NULL;
    uint64_t dims[3] = {mm, kk, nn};
    kbufs kb;
    if (kbufs_get(st, MC_K_MATMUL, objs, dims, 3, &kb) < 0)
        return NULL;
    PyObject *result = NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)mm * (double)kk * (double)nn) == 0) {
        kcall_allow_threads(&kc);
        int status = mc_matmul_f64(&kc.ex, (const double *)kb.bufs[0].data, (const double *)kb.bufs[1].data,
                                   (double *)kb.bufs[2].data, mm, kk, nn);
        kcall_end_allow_threads(&kc);
        if (kcall_finish(&kc, status, "matmul") == 0)
            result = Py_NewRef(Py_None);
    }
    kbufs_release(&kb);
    return result;
}

static PyObject *square_run(module_state *st, PyObject *xo, PyObject *outo, PyObject *pool, unsigned threads)
{
    PyObject *objs[2] = {xo, outo};
    kbufs kb;
    if (kbufs_get(st, MC_K_SQUARE, objs, NULL, 0, &kb) < 0)
        return NULL;
    const mc_buf *x = &kb.bufs[0], *out = &kb.bufs[1];
    PyObject *result = NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, (double)x->n) == 0) {
        kcall_allow_threads(&kc);
        int status = mc_square(&kc.ex, x->data, x->dtype, (void *)out->data, out->dtype, x->n);
        kcall_end_allow_threads(&kc);
        if (kcall_finish(&kc, status, "square") == 0)
            result = Py_NewRef(Py_None);
    }
    kbufs_release(&kb);
    return result;
}

/* ------------------------------------------------------------------ parallel_for */
typedef void (*user_range_fn)(void *ctx, size_t begin, size_t end);

typedef struct {
    user_range_fn fn;
    void *ctx;
} pf_ctx;

static void pf_task(void *p, size_t begin, size_t end, unsigned worker)
{
    (void)worker;
    pf_ctx *c = p;
    c->fn(c->ctx, begin, end);
}

/* The public face, native.parallel_for itself: every check of the Python face
 * (manycore._validate.as_int/check_int, the schedule, native._resolve) done here
 * with the same exceptions and messages, so a call from Python runs no Python
 * frame (issue #20: dispatch from Python at OpenMP's cost). */

/* as_int(): an int or anything with __index__, never bool. New reference. */
static PyObject *face_index(PyObject *obj, const char *name)
{
    if (PyLong_CheckExact(obj))
        return Py_NewRef(obj);
    if (PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not bool", name);
        return NULL;
    }
    PyObject *v = PyNumber_Index(obj);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyObject *tname = PyType_GetName(Py_TYPE(obj));
        if (tname != NULL) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, not %U", name, tname);
            Py_DECREF(tname);
        }
    }
    return v;
}

/* check_int(minimum=0) (or > 0 for an address: `positive`), then as size_t. */
static int face_size(PyObject *obj, const char *name, int positive, size_t *out)
{
    PyObject *v = face_index(obj, name);
    if (v == NULL)
        return -1;
    int overflow;
    long long s = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (s == -1 && PyErr_Occurred()) {
        Py_DECREF(v);
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && (positive ? s <= 0 : s < 0))) {
        if (positive)
            PyErr_Format(PyExc_ValueError, "%s must be a nonzero function address, got %R", name, v);
        else
            PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %R", name, v);
        Py_DECREF(v);
        return -1;
    }
    if (overflow == 0) {
        *out = (size_t)s;
    } else {
        *out = PyLong_AsSize_t(v);  /* past LLONG_MAX: OverflowError beyond SIZE_MAX */
        if (*out == (size_t)-1 && PyErr_Occurred()) {
            Py_DECREF(v);
            return -1;
        }
    }
    Py_DECREF(v);
    return 0;
}

/* A face's signature: positional-or-keyword names first (npos_min of them
 * required), then keyword-only ones. */
typedef struct {
    const char *fname;
    int npos_min, npos_max, nnames;
    const char *const *names;
} face_sig;

static int face_parse(const face_sig *sig, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames,
                      PyObject **v)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs > sig->npos_max) {
        if (sig->npos_min == sig->npos_max)
            PyErr_Format(PyExc_TypeError, "%s() takes %d positional argument%s but %zd were given", sig->fname,
                         sig->npos_max, sig->npos_max == 1 ? "" : "s", nargs);
        else
            PyErr_Format(PyExc_TypeError, "%s() takes from %d to %d positional arguments but %zd were given",
                         sig->fname, sig->npos_min, sig->npos_max, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        v[i] = args[i];
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int found = -1;
        for (int i = 0; i < sig->nnames && found < 0; i++)
            if (PyUnicode_CompareWithASCIIString(key, sig->names[i]) == 0)
                found = i;
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", sig->fname, key);
            return -1;
        }
        if (v[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", sig->fname,
                         sig->names[found]);
            return -1;
        }
        v[found] = args[nargs + k];
    }
    for (int i = 0; i < sig->npos_min; i++)
        if (v[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", sig->fname, sig->names[i]);
            return -1;
        }
    return 0;
}

enum { PF_FN, PF_N, PF_CONTEXT, PF_GRAIN, PF_SCHEDULE, PF_THREADS, PF_POOL, PF_COUNT };
static const char *const pf_names[PF_COUNT] = {"fn_address", "n",       "context", "grain",
                                               "schedule",   "threads", "pool"};
static const face_sig pf_sig = {"parallel_for", 2, 4, PF_COUNT, pf_names};

/* native._resolve(threads, pool) -> (pool handle or None, threads); (None, None) cached. */
static int pf_resolve(PyObject *m, module_state *st, PyObject *threads, PyObject *pool, PyObject **handle,
                      unsigned *nthreads)
{
    int plain = (threads == NULL || threads == Py_None) && (pool == NULL || pool == Py_None);
    if (plain && st->default_pool != NULL) {
        *handle = Py_NewRef(st->default_pool);
        *nthreads = 0;
        return 0;
    }
    if (st->resolve == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "manycore._native: import manycore.native first");
        return -1;
    }
    PyObject *got = PyObject_CallFunctionObjArgs(st->resolve, threads ? threads : Py_None, pool ? pool : Py_None,
                                                 NULL);
    if (got == NULL)
        return -1;
    unsigned long t = 0;
    if (!PyTuple_Check(got) || PyTuple_GET_SIZE(got) != 2 ||
        ((t = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(got, 1))) == (unsigned long)-1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "native._resolve must return (handle, threads)");
        Py_DECREF(got);
        return -1;
    }
    *handle = Py_NewRef(PyTuple_GET_ITEM(got, 0));
    *nthreads = (unsigned)t;
    Py_DECREF(got);
    if (plain && *handle != Py_None) {
        Py_BEGIN_CRITICAL_SECTION(m);
        if (st->default_pool == NULL)
            st->default_pool = Py_NewRef(*handle);
        Py_END_CRITICAL_SECTION();
    }
    return 0;
}

static PyObject *nat_parallel_for_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[PF_COUNT] = {NULL};
    if (face_parse(&pf_sig, args, nargsf, kwnames, v) < 0)
        return NULL;
    size_t addr, n, grain = 0, context = 0;
    if (face_size(v[PF_FN], "fn_address", 1, &addr) < 0 || face_size(v[PF_N], "n", 0, &n) < 0 ||
        (v[PF_GRAIN] != NULL && face_size(v[PF_GRAIN], "grain", 0, &grain) < 0) ||
        (v[PF_CONTEXT] != NULL && v[PF_CONTEXT] != Py_None && face_size(v[PF_CONTEXT], "context", 0, &context) < 0))
        return NULL;
    int schedule = MC_SCHEDULE_STATIC;
    PyObject *sched = v[PF_SCHEDULE];
    if (sched != NULL) {
        if (PyUnicode_Check(sched) && PyUnicode_CompareWithASCIIString(sched, "static") == 0)
            schedule = MC_SCHEDULE_STATIC;
        else if (PyUnicode_Check(sched) && PyUnicode_CompareWithASCIIString(sched, "dynamic") == 0)
            schedule = MC_SCHEDULE_DYNAMIC;
        else {
            PyErr_Format(PyExc_ValueError, "schedule must be 'static' or 'dynamic', got %R", sched);
            return NULL;
        }
    }
    PyObject *pool;
    unsigned threads;
    if (pf_resolve(m, st, v[PF_THREADS], v[PF_POOL], &pool, &threads) < 0)
        return NULL;
    pf_ctx pc = {(user_range_fn)(uintptr_t)addr, (void *)(uintptr_t)context};
    kcall kc;
    int rc = kcall_begin(st, &kc, pool, threads, POOL_MIN_WORK);
    Py_DECREF(pool);  /* kcall_begin holds its own reference */
    if (rc < 0)
        return NULL;
    kcall_allow_threads(&kc);
    int status = mc_parallel_for(&kc.ex, pf_task, &pc, n, grain, schedule);
    kcall_end_allow_threads(&kc);
    if (kcall_finish(&kc, status, "parallel_for") < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* sum, dot and sum_of_squares: their public faces, as parallel_for's (no
 * Python frame): x (and y) positional, threads and pool keyword-only. */
static const char *const x_names[] = {"x", "threads", "pool"};
static const char *const xy_names[] = {"x", "y", "threads", "pool"};
static const face_sig sum_sig = {"sum", 1, 1, 3, x_names};
static const face_sig sos_sig = {"sum_of_squares", 1, 1, 3, x_names};
static const face_sig dot_sig = {"dot", 2, 2, 4, xy_names};

/* face_parse, then pf_resolve of the face's last two names (threads, pool): the start of
 * every kernel face that checks nothing in between. */
static int face_begin(PyObject *m, module_state *st, const face_sig *sig, PyObject *const *args, Py_ssize_t nargsf,
                      PyObject *kwnames, PyObject **v, PyObject **pool, unsigned *threads)
{
    if (face_parse(sig, args, nargsf, kwnames, v) < 0)
        return -1;
    return pf_resolve(m, st, v[sig->nnames - 2], v[sig->nnames - 1], pool, threads);
}

static PyObject *nat_sum_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[3] = {NULL}, *pool;
    unsigned threads;
    if (face_begin(m, st, &sum_sig, args, nargsf, kwnames, v, &pool, &threads) < 0)
        return NULL;
    PyObject *r = reduce_run(st, v[0], pool, threads, MC_K_SUM, mc_sum, "sum");
    Py_DECREF(pool);
    return r;
}

static PyObject *nat_dot_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[4] = {NULL}, *pool;
    unsigned threads;
    if (face_begin(m, st, &dot_sig, args, nargsf, kwnames, v, &pool, &threads) < 0)
        return NULL;
    PyObject *r = dot_run(st, v[0], v[1], pool, threads);
    Py_DECREF(pool);
    return r;
}

/* The message of _kernel_args (one text for every face), formatted with x's type name. */
static void sos_type_error(module_state *st, PyObject *x)
{
    PyObject *tname = PyType_GetName(Py_TYPE(x));
    if (tname == NULL)
        return;
    PyObject *message = PyObject_CallMethod(st->sos_type_message, "format", "O", tname);
    Py_DECREF(tname);
    if (message != NULL) {
        PyErr_SetObject(PyExc_TypeError, message);
        Py_DECREF(message);
    }
}

/* As _kernel_args.sum_of_squares_x, then the range or the buffer kernel. */
static PyObject *nat_sum_of_squares_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[3] = {NULL};
    if (face_parse(&sos_sig, args, nargsf, kwnames, v) < 0)
        return NULL;
    PyObject *x = v[0], *n = NULL;
    if (PyBool_Check(x)) {
        sos_type_error(st, x);
        return NULL;
    }
    if (PyLong_CheckExact(x)) {
        n = Py_NewRef(x);
    } else if (PyIndex_Check(x)) {  /* ints, NumPy integer scalars; arrays of ndim >= 1 refuse */
        n = PyNumber_Index(x);
        if (n == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                return NULL;
            PyErr_Clear();
        }
    }
    if (n == NULL && !PyObject_CheckBuffer(x)) {
        sos_type_error(st, x);
        return NULL;
    }
    uint64_t count = 0;
    int is_range = n != NULL;
    if (is_range) {
        int overflow;
        long long s = PyLong_AsLongLongAndOverflow(n, &overflow);
        if (!(s == -1 && PyErr_Occurred())) {
            if (overflow < 0 || (overflow == 0 && s < 0))
                PyErr_Format(PyExc_ValueError, "x must be >= 0, got %R", n);
            else if (overflow > 0 || (unsigned long long)s > MC_SUM_OF_SQUARES_MAX_N)
                PyErr_Format(PyExc_OverflowError, "x must be <= %llu, got %R",
                             (unsigned long long)MC_SUM_OF_SQUARES_MAX_N, n);
            count = (uint64_t)s;
        }
        Py_DECREF(n);
        if (PyErr_Occurred())
            return NULL;
    }
    PyObject *pool;
    unsigned threads;
    if (pf_resolve(m, st, v[1], v[2], &pool, &threads) < 0)
        return NULL;
    PyObject *r = is_range ? sos_range_run(st, count, pool, threads)
                           : reduce_run(st, x, pool, threads, MC_K_SUM_OF_SQUARES, mc_sum_of_squares,
                                        "sum_of_squares");
    Py_DECREF(pool);
    return r;
}

/* check_int(value, name, minimum=lo, maximum=hi) of _validate, for 0 <= lo <= hi < 2**64:
 * the same exceptions (TypeError, then ValueError either side) and messages. */
static int face_u64(PyObject *obj, const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
    PyObject *v = face_index(obj, name);
    if (v == NULL)
        return -1;
    int overflow, sign;
    long long s = PyLong_AsLongLongAndOverflow(v, &overflow);
    unsigned long long u = 0;
    if (s == -1 && PyErr_Occurred()) {
        Py_DECREF(v);
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && s < 0)) {
        sign = -1;
    } else if (overflow == 0) {
        sign = 1;
        u = (unsigned long long)s;
    } else {  /* past LLONG_MAX */
        sign = 1;
        u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                Py_DECREF(v);
                return -1;
            }
            PyErr_Clear();
            sign = 2;  /* past 2**64 - 1: above any maximum */
        }
    }
    if (sign < 0 || u < lo)
        PyErr_Format(PyExc_ValueError, "%s must be >= %llu, got %R", name, (unsigned long long)lo, v);
    else if (sign == 2 || u > hi)
        PyErr_Format(PyExc_ValueError, "%s must be <= %llu, got %R", name, (unsigned long long)hi, v);
    Py_DECREF(v);
    if (PyErr_Occurred())
        return -1;
    *out = u;
    return 0;
}

/* minmax, count_primes and monte_carlo_pi: public faces as sum's (no Python
 * frame), checks in the order of the Python faces they replace. */
static const char *const n_names[] = {"n", "threads", "pool"};
static const char *const mc_names[] = {"samples", "seed", "threads", "pool"};
static const face_sig minmax_sig = {"minmax", 1, 1, 3, x_names};
static const face_sig cp_sig = {"count_primes", 1, 1, 3, n_names};
static const face_sig mc_sig = {"monte_carlo_pi", 1, 2, 4, mc_names};

static PyObject *nat_minmax_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[3] = {NULL}, *pool;
    unsigned threads;
    if (face_begin(m, st, &minmax_sig, args, nargsf, kwnames, v, &pool, &threads) < 0)
        return NULL;
    PyObject *r = minmax_run(st, v[0], pool, threads);
    Py_DECREF(pool);
    return r;
}

static PyObject *nat_count_primes_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[3] = {NULL}, *pool;
    unsigned threads;
    uint64_t n;
    if (face_parse(&cp_sig, args, nargsf, kwnames, v) < 0 || face_u64(v[0], "n", 0, MC_COUNT_PRIMES_MAX_N, &n) < 0 ||
        pf_resolve(m, st, v[1], v[2], &pool, &threads) < 0)
        return NULL;
    PyObject *r = count_primes_run(st, n, pool, threads);
    Py_DECREF(pool);
    return r;
}

static PyObject *nat_monte_carlo_pi_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[4] = {NULL}, *pool;
    unsigned threads;
    uint64_t samples, seed = 0, hits = 0;
    if (face_parse(&mc_sig, args, nargsf, kwnames, v) < 0 ||
        face_u64(v[0], "samples", 1, (uint64_t)1 << 62, &samples) < 0 ||
        (v[1] != NULL && face_u64(v[1], "seed", 0, UINT64_MAX, &seed) < 0) ||
        pf_resolve(m, st, v[2], v[3], &pool, &threads) < 0)
        return NULL;
    PyObject *done = monte_carlo_run(st, samples, seed, pool, threads, &hits);
    Py_DECREF(pool);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    return PyFloat_FromDouble(4.0 * (double)hits / (double)samples);  /* 4.0 * hits / samples, as in Python */
}

/* numpy.empty (new reference) once NumPy is loaded, else NULL with no error set: looked up in
 * sys.modules until found, then kept. */
static PyObject *np_empty(PyObject *m, module_state *st)
{
    (void)m;  /* used by the critical sections of free-threaded builds only */
    PyObject *empty = NULL;
    Py_BEGIN_CRITICAL_SECTION(m);
    empty = Py_XNewRef(st->np_empty);
    Py_END_CRITICAL_SECTION();
    if (empty != NULL)
        return empty;
    PyObject *name = PyUnicode_InternFromString("numpy");
    PyObject *numpy = name != NULL ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    empty = numpy != NULL ? PyObject_GetAttrString(numpy, "empty") : NULL;
    Py_XDECREF(numpy);
    PyErr_Clear();
    if (empty != NULL) {
        Py_BEGIN_CRITICAL_SECTION(m);
        if (st->np_empty == NULL)
            st->np_empty = Py_NewRef(empty);
        Py_END_CRITICAL_SECTION();
    }
    return empty;
}

/* square's default output, as _kernel_args.square_out(x, None): a NumPy array of x's shape in the
 * format _kernel_args.SQUARE_OUT gives x's.  Done here when x exports a plain format that table
 * has and NumPy is loaded; anything else (its errors included) goes the Python way. */
static PyObject *square_default_out(PyObject *m, module_state *st, PyObject *x)
{
    Py_buffer view;
    PyObject *dtype = NULL, *shape = NULL;
    if (PyObject_GetBuffer(x, &view, PyBUF_RECORDS_RO) == 0) {
        const char *f = view.format ? view.format : "B";
        if (*f == '@' || *f == '=' || *f == '<')
            f++;
        PyObject *key = PyUnicode_FromString(f);
        dtype = key != NULL ? Py_XNewRef(PyDict_GetItemWithError(st->square_formats, key)) : NULL;
        Py_XDECREF(key);
        if (dtype != NULL) {
            shape = PyTuple_New(view.ndim);
            for (int i = 0; shape != NULL && i < view.ndim; i++) {
                PyObject *dim = PyLong_FromSsize_t(view.shape[i]);
                if (dim == NULL)
                    Py_CLEAR(shape);
                else
                    PyTuple_SET_ITEM(shape, i, dim);
            }
        }
        PyBuffer_Release(&view);
    }
    PyErr_Clear();
    PyObject *out = NULL;
    PyObject *empty = shape != NULL ? np_empty(m, st) : NULL;
    if (empty != NULL) {
        PyObject *call[2] = {shape, dtype};
        out = PyObject_Vectorcall(empty, call, 2, NULL);
        Py_DECREF(empty);
        PyErr_Clear();  /* whatever failed, the Python way below says it properly */
    }
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    if (out == NULL)
        out = PyObject_CallFunctionObjArgs(st->square_out, x, Py_None, NULL);
    return out;
}

static const char *const square_names[] = {"x", "out", "threads", "pool"};
static const face_sig square_sig = {"square", 1, 1, 4, square_names};

/* square: the face as sum's; the output is `out`, or a new array (square_default_out). */
static PyObject *nat_square_face(PyObject *m, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    module_state *st = get_state(m);
    PyObject *v[4] = {NULL}, *pool;
    unsigned threads;
    if (face_begin(m, st, &square_sig, args, nargsf, kwnames, v, &pool, &threads) < 0)
        return NULL;
    PyObject *out = v[1] != NULL && v[1] != Py_None ? Py_NewRef(v[1]) : square_default_out(m, st, v[0]);
    PyObject *done = out != NULL ? square_run(st, v[0], out, pool, threads) : NULL;
    Py_DECREF(pool);
    if (done == NULL) {
        Py_XDECREF(out);
        return NULL;
    }
    Py_DECREF(done);
    return out;
}

/* native.py hands over _resolve once at import; after fork() the cached
 * default pool belongs to the parent and is forgotten (native.py's at-fork hook). */
static PyObject *nat_set_resolver(PyObject *m, PyObject *fn)
{
    module_state *st = get_state(m);
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "resolver must be callable");
        return NULL;
    }
    Py_XSETREF(st->resolve, Py_NewRef(fn));
    Py_CLEAR(st->default_pool);
    Py_RETURN_NONE;
}

static PyObject *nat_forget_default_pool(PyObject *m, PyObject *unused)
{
    (void)unused;
    Py_CLEAR(get_state(m)->default_pool);
    Py_RETURN_NONE;
}

static PyObject *nat_bench_dispatch(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    PyObject *pool;
    unsigned int threads;
    size_t iterations;
    if (!PyArg_ParseTuple(args, "OIO&:bench_dispatch", &pool, &threads, conv_size, &iterations))
        return NULL;
    kcall kc;
    if (kcall_begin(st, &kc, pool, threads, POOL_MIN_WORK) < 0)
        return NULL;
    kc.ex.poll = NULL;   /* measure dispatch alone */
    double per = 0.0;
    kcall_allow_threads(&kc);
    int status = mc_bench_dispatch(&kc.ex, iterations, &per);
    kcall_end_allow_threads(&kc);
    if (kcall_finish(&kc, status, "bench_dispatch") < 0)
        return NULL;
    return PyFloat_FromDouble(per);
}

/* ------------------------------------------------------------------ raw threads */
static PyObject *nat_start_threads(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    unsigned int n;
    uint64_t work;
    if (!PyArg_ParseTuple(args, "IO&:start_threads", &n, conv_u64, &work))
        return NULL;
    if (n < 1 || n > MC_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "n must be between 1 and %d, got %u", MC_MAX_THREADS, n);
        return NULL;
    }
    mc_thread_record *recs = PyMem_Calloc(n, sizeof *recs);
    if (recs == NULL)
        return PyErr_NoMemory();
    uint64_t lo = 0, hi = 0;
    int status, os_error = 0;
    /* Ctrl-C stops the threads (within a poll interval), as it stops the kernels. */
    kcall kc = {.st = st};
    int on_main = PyThread_get_thread_ident() == st->main_thread_ident;
    kc.ts = PyEval_SaveThread();
    status = mc_start_threads_polled(n, work, recs, &lo, &hi, &os_error, on_main ? poll_signals : NULL, &kc);
    PyEval_RestoreThread(kc.ts);
    PyObject *list = NULL, *total = NULL, *result = NULL;
    if (PyErr_Occurred())   /* KeyboardInterrupt (or what a signal handler raised) */
        goto done;
    if (status != MC_OK) {
        raise_status(st, status, "start_threads", os_error);
        goto done;
    }
    list = PyList_New(n);
    if (list == NULL)
        goto done;
    for (unsigned i = 0; i < n; i++) {
        PyObject *partial = u128_to_pylong(recs[i].partial_lo, recs[i].partial_hi);
        if (partial == NULL)
            goto done;
        PyObject *t = Py_BuildValue("(IKiKddN)", recs[i].index, (unsigned long long)recs[i].os_thread_id,
                                    recs[i].cpu, (unsigned long long)recs[i].items, recs[i].start_s,
                                    recs[i].end_s, partial);
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(list, i, t);
    }
    total = u128_to_pylong(lo, hi);
    if (total)
        result = PyTuple_Pack(2, list, total);
done:
    PyMem_Free(recs);
    Py_XDECREF(list);
    Py_XDECREF(total);
    return result;
}

typedef struct {
    PyObject *fn;
    PyObject **results;   /* (True, value) or (False, exception) per thread */
    PyObject *on_failure; /* on_start_failure(started, errno), or NULL */
    PyInterpreterState *interp;   /* the caller's interpreter: the threads run Python there */
    PyThreadState *caller;        /* the caller's thread state, saved while the threads run */
} cit_ctx;

/* A thread could not be created: let Python stop the ones already running
 * (they may be waiting for work) before mc_run_threads_ex joins them.  Runs
 * on the calling thread, whose thread state is c->caller (PyGILState_Ensure
 * would pick the main interpreter's state in a subinterpreter). */
static void cit_start_failed(void *p, unsigned started, int os_error)
{
    cit_ctx *c = p;
    if (c->on_failure == NULL)
        return;
    PyEval_RestoreThread(c->caller);
    PyObject *r = PyObject_CallFunction(c->on_failure, "Ii", started, os_error);
    if (r == NULL)
        PyErr_WriteUnraisable(c->on_failure);
    Py_XDECREF(r);
    c->caller = PyEval_SaveThread();
}

/* Each native thread gets a thread state of the caller's interpreter, made
 * for it and deleted after (PyGILState_* only knows the main interpreter). */
static void cit_body(void *p, unsigned index)
{
    cit_ctx *c = p;
    PyThreadState *ts = PyThreadState_New(c->interp);
    if (ts == NULL)
        return;   /* results[index] stays NULL: the caller reports MemoryError */
    PyEval_RestoreThread(ts);
    PyObject *idx = PyLong_FromUnsignedLong(index);
    PyObject *r = idx ? PyObject_CallOneArg(c->fn, idx) : NULL;
    Py_XDECREF(idx);
    if (r != NULL) {
        c->results[index] = Py_BuildValue("(ON)", Py_True, r);
    } else {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value != NULL && tb != NULL)
            PyException_SetTraceback(value, tb);
        c->results[index] = Py_BuildValue("(OO)", Py_False, value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    if (c->results[index] == NULL)
        PyErr_Clear();   /* MemoryError building the tuple: reported by the caller */
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
}

static PyObject *nat_call_in_threads(PyObject *m, PyObject *args)
{
    module_state *st = get_state(m);
    PyObject *fn, *on_failure = Py_None;
    unsigned int n;
    if (!PyArg_ParseTuple(args, "OI|O:call_in_threads", &fn, &n, &on_failure))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (on_failure != Py_None && !PyCallable_Check(on_failure)) {
        PyErr_Format(PyExc_TypeError, "on_start_failure must be callable or None, not %.100s",
                     Py_TYPE(on_failure)->tp_name);
        return NULL;
    }
    if (n < 1 || n > MC_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "n must be between 1 and %d, got %u", MC_MAX_THREADS, n);
        return NULL;
    }
    cit_ctx c = {fn, PyMem_Calloc(n, sizeof(PyObject *)), on_failure == Py_None ? NULL : on_failure,
                 PyInterpreterState_Get(), NULL};
    if (c.results == NULL)
        return PyErr_NoMemory();
    Py_INCREF(fn);
    Py_XINCREF(c.on_failure);
    int status, os_error = 0;
    c.caller = PyEval_SaveThread();
    status = mc_run_threads_ex(n, cit_body, &c, cit_start_failed, &os_error);
    PyEval_RestoreThread(c.caller);
    Py_DECREF(fn);
    Py_XDECREF(c.on_failure);
    PyObject *list = NULL;
    if (status != MC_OK) {
        raise_status(st, status, "call_in_threads", os_error);
        goto done;
    }
    list = PyList_New(n);
    if (list == NULL)
        goto done;
    for (unsigned i = 0; i < n; i++) {
        if (c.results[i] == NULL) {
            Py_CLEAR(list);
            PyErr_NoMemory();
            goto done;
        }
        PyList_SET_ITEM(list, i, c.results[i]);
        c.results[i] = NULL;
    }
done:
    for (unsigned i = 0; i < n; i++)
        Py_XDECREF(c.results[i]);
    PyMem_Free(c.results);
    return list;
}

/* ------------------------------------------------------------------ info */
static PyObject *nat_debug_fail_thread_create(PyObject *m, PyObject *arg)
{
    (void)m;
    long after = PyLong_AsLong(arg);
    if (after == -1 && PyErr_Occurred())
        return NULL;
    mc_debug_fail_thread_create(after < 0 ? -1 : after > 1000000 ? 1000000 : (int)after);
    Py_RETURN_NONE;
}

static PyObject *nat_noop_address(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    (void)m;
    return PyLong_FromVoidPtr((void *)(uintptr_t)mc_noop_range);
}

static PyObject *nat_build_info(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    (void)m;
    return Py_BuildValue("{s:s,s:O,s:s,s:I,s:i,s:i}", "compiler", MC_BUILD_COMPILER, "openmp",
                         MC_BUILD_OPENMP ? Py_True : Py_False, "simd", mc_simd_level(), "cpu_count",
                         mc_cpu_count(), "max_threads", MC_MAX_THREADS, "poll_interval_ms",
                         MC_POLL_INTERVAL_MS);
}

static PyMethodDef native_methods[] = {
    {"minmax", (PyCFunction)(void (*)(void))nat_minmax_face, METH_FASTCALL | METH_KEYWORDS,
     "minmax(x, *, threads=None, pool=None)\n--\n\n"
     "``(min(x), max(x))`` of a non-empty buffer; any NaN makes both NaN."},
    {"histogram", nat_histogram, METH_VARARGS, "histogram(x, bins, lo, hi, out, pool, threads)"},
    {"count_primes", (PyCFunction)(void (*)(void))nat_count_primes_face, METH_FASTCALL | METH_KEYWORDS,
     "count_primes(n, *, threads=None, pool=None)\n--\n\n"
     "Number of primes ``p < n`` (segmented sieve of Eratosthenes)."},
    {"monte_carlo_pi", (PyCFunction)(void (*)(void))nat_monte_carlo_pi_face, METH_FASTCALL | METH_KEYWORDS,
     "monte_carlo_pi(samples, seed=0, *, threads=None, pool=None)\n--\n\n"
     "Estimate pi from ``samples`` points of a counter-based generator seeded with ``seed``.\n\n"
     "The estimate depends only on ``(samples, seed)``, never on the thread count."},
    {"mandelbrot", nat_mandelbrot, METH_VARARGS,
     "mandelbrot(width, height, max_iter, xmin, xmax, ymin, ymax, out, pool, threads)"},
    {"matmul", nat_matmul, METH_VARARGS, "matmul(a, b, out, m, k, n, pool, threads)"},
    {"square", (PyCFunction)(void (*)(void))nat_square_face, METH_FASTCALL | METH_KEYWORDS,
     "square(x, *, out=None, threads=None, pool=None)\n--\n\n"
     "Elementwise ``x * x``.\n\n"
     "By default the result is a NumPy array of the same float type, or int64 /\n"
     "uint64 for integer input.  ``out`` may have the input's format, float64,\n"
     "or (integer input) int64/uint64; an integer square that does not fit\n"
     "raises ``OverflowError`` (never wraps silently)."},
    {"parallel_for", (PyCFunction)(void (*)(void))nat_parallel_for_face, METH_FASTCALL | METH_KEYWORDS,
     "parallel_for(fn_address, n, context=0, grain=0, *, schedule='static', threads=None, pool=None)\n--\n\n"
     "Run the C function at ``fn_address`` over ``[0, n)`` on the pool, without the GIL.\n\n"
     "The function must have the signature ``void f(void *context, size_t begin, size_t end)``\n"
     "and is called on disjoint chunks of at most ``grain`` indices (0: about 16 chunks per\n"
     "thread).  Addresses come from ctypes (``ctypes.cast(f, ctypes.c_void_p).value``),\n"
     "cffi or Numba ``cfunc``.  A function that is really a Python callback takes the GIL\n"
     "per call and therefore runs serialised.  ``schedule`` is ``\"static\"`` (contiguous\n"
     "share per thread) or ``\"dynamic\"`` (chunks handed out from an atomic counter).\n"
     "Every argument is checked here, in C: a call from Python runs no Python frame."},
    {"sum", (PyCFunction)(void (*)(void))nat_sum_face, METH_FASTCALL | METH_KEYWORDS,
     "sum(x, *, threads=None, pool=None)\n--\n\n"
     "Sum of the elements of buffer ``x``: exact int for integer formats, float otherwise."},
    {"dot", (PyCFunction)(void (*)(void))nat_dot_face, METH_FASTCALL | METH_KEYWORDS,
     "dot(x, y, *, threads=None, pool=None)\n--\n\n"
     "``sum(a*b for a, b in zip(x, y))`` over two buffers of the same format and length."},
    {"sum_of_squares", (PyCFunction)(void (*)(void))nat_sum_of_squares_face, METH_FASTCALL | METH_KEYWORDS,
     "sum_of_squares(x, *, threads=None, pool=None)\n--\n\n"
     "``sum(i*i for i in range(x))`` for an int ``x``; ``sum(v*v for v in x)`` for a buffer.\n\n"
     "The range form is exact for any ``x`` up to ``SUM_OF_SQUARES_MAX_N`` (2**42; larger raises\n"
     "``OverflowError``): the seed's ``long long`` version silently wraps past 2**63 already at\n"
     "``x = 10**7``.  Every ``i`` is really squared and added; there is no closed-form shortcut.\n"
     "For buffers, integer formats are exact and float formats accumulate in float64."},
    {"_set_resolver", nat_set_resolver, METH_O, "Hand over native._resolve (called once by manycore.native)."},
    {"_forget_default_pool", nat_forget_default_pool, METH_NOARGS, "After fork(): drop the parent's pool."},
    {"bench_dispatch", nat_bench_dispatch, METH_VARARGS, "bench_dispatch(pool, threads, iterations) -> s/region"},
    {"start_threads", nat_start_threads, METH_VARARGS, "start_threads(n, work) -> (records, total)"},
    {"call_in_threads", nat_call_in_threads, METH_VARARGS,
     "call_in_threads(fn, n, on_start_failure=None) -> [(ok, value)]"},
    {"_debug_fail_thread_create", nat_debug_fail_thread_create, METH_O,
     "Test hook: make the thread creation after `after` more successes fail (-1 disables)."},
    {"watch_owner", nat_watch_owner, METH_VARARGS,
     "watch_owner(pid, interval_ms, exit_code): a detached thread _exit()s this process once pid is gone"},
    {"noop_address", nat_noop_address, METH_NOARGS,
     "Address of mc_noop_range, a do-nothing `void f(void *, size_t, size_t)` for dispatch measurements."},
    {"build_info", nat_build_info, METH_NOARGS, "Compiler, OpenMP, SIMD level and limits of this build."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ module */
/* Add a new reference `value` (may be NULL after a failed constructor) to the
 * module and release it, also on failure: PyModule_AddObject steals only on
 * success, so `PyModule_AddObject(m, name, PyFloat_FromDouble(x)) < 0`
 * leaks the float when the add fails. */
static int add_new_ref(PyObject *m, const char *name, PyObject *value)
{
    int rc = value == NULL ? -1 : PyModule_AddObjectRef(m, name, value);
    Py_XDECREF(value);
    return rc;
}

static int native_exec(PyObject *m)
{
    module_state *st = get_state(m);
    st->pool_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Pool_spec, NULL);
    if (st->pool_type == NULL)
        return -1;
    if (PyModule_AddType(m, st->pool_type) < 0)
        return -1;

    PyObject *errors = PyImport_ImportModule("manycore._errors");
    if (errors == NULL)
        return -1;
    st->raise_status = PyObject_GetAttrString(errors, "raise_status");
    st->raise_argument = PyObject_GetAttrString(errors, "raise_argument");
    Py_DECREF(errors);
    if (st->raise_status == NULL || st->raise_argument == NULL)
        return -1;
    PyObject *kernel_args = PyImport_ImportModule("manycore._kernel_args");
    if (kernel_args == NULL)
        return -1;
    st->sos_type_message = PyObject_GetAttrString(kernel_args, "_SUM_OF_SQUARES_TYPE");
    st->square_out = PyObject_GetAttrString(kernel_args, "square_out");
    st->square_formats = PyObject_GetAttrString(kernel_args, "SQUARE_OUT");
    Py_DECREF(kernel_args);
    if (st->sos_type_message == NULL || st->square_out == NULL || st->square_formats == NULL)
        return -1;
    if (!PyDict_Check(st->square_formats)) {
        PyErr_SetString(PyExc_TypeError, "manycore._kernel_args.SQUARE_OUT must be a dict");
        return -1;
    }

    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (main == NULL)
        return -1;
    PyObject *ident = PyObject_GetAttrString(main, "ident");
    Py_DECREF(main);
    if (ident == NULL)
        return -1;
    st->main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return -1;

    if (PyModule_AddIntConstant(m, "MAX_THREADS", MC_MAX_THREADS) < 0 ||
        PyModule_AddIntConstant(m, "SCHEDULE_STATIC", MC_SCHEDULE_STATIC) < 0 ||
        PyModule_AddIntConstant(m, "SCHEDULE_DYNAMIC", MC_SCHEDULE_DYNAMIC) < 0 ||
        add_new_ref(m, "SUM_OF_SQUARES_MAX_N", PyLong_FromUnsignedLongLong(MC_SUM_OF_SQUARES_MAX_N)) < 0 ||
        add_new_ref(m, "COUNT_PRIMES_MAX_N", PyLong_FromUnsignedLongLong(MC_COUNT_PRIMES_MAX_N)) < 0 ||
        add_new_ref(m, "GIL_RELEASE_MIN_WORK", PyFloat_FromDouble(GIL_RELEASE_MIN_WORK)) < 0 ||
        add_new_ref(m, "POOL_MIN_WORK", PyFloat_FromDouble(POOL_MIN_WORK)) < 0)
        return -1;
    return 0;
}

static int native_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = get_state(m);
    Py_VISIT(st->pool_type);
    Py_VISIT(st->raise_status);
    Py_VISIT(st->raise_argument);
    Py_VISIT(st->resolve);
    Py_VISIT(st->default_pool);
    Py_VISIT(st->sos_type_message);
    Py_VISIT(st->square_out);
    Py_VISIT(st->np_empty);
    Py_VISIT(st->square_formats);
    return 0;
}

static int native_clear(PyObject *m)
{
    module_state *st = get_state(m);
    Py_CLEAR(st->pool_type);
    Py_CLEAR(st->raise_status);
    Py_CLEAR(st->raise_argument);
    Py_CLEAR(st->resolve);
    Py_CLEAR(st->default_pool);
    Py_CLEAR(st->sos_type_message);
    Py_CLEAR(st->square_out);
    Py_CLEAR(st->np_empty);
    Py_CLEAR(st->square_formats);
    return 0;
}

static void native_free(void *m)
{
    native_clear((PyObject *)m);
}

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* All state is module state (heap Pool type, per-module references); the
     * C core's state is process-wide and holds no Python object; the threads
     * of call_in_threads get thread states of the calling interpreter. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Module state is immutable after exec; Pool guards its own state. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "manycore._native",
    .m_doc = "CPython binding of the manycore native runtime (see manycore.native).",
    .m_size = sizeof(module_state),
    .m_methods = native_methods,
    .m_slots = native_slots,
    .m_traverse = native_traverse,
    .m_clear = native_clear,
    .m_free = native_free,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
