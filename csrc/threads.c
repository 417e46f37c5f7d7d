/*
 * threads.c -- mc_start_threads: the unit's start_threads(n), done right.
 *
 * The unit's version creates n pthreads that only print, ignores the return
 * code of pthread_create, and never shares anything.  Here every thread does
 * a real share of work, the shared total is updated under a mutex, every
 * creation is checked, and on failure the threads already started are joined
 * before returning, so no thread outlives the call.
 */
#include "manycore.h"
#include "platform.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Threads check the stop flag once per this many iterations (well under a
 * millisecond of work), so a cancelled call returns within a poll interval. */
#define STOP_CHECK_EVERY ((uint64_t)1 << 18)

typedef struct {
    mc_mutex_t lock;
    unsigned __int128 total;   /* guarded by lock */
    double t0;
} shared_state;

typedef struct {
    shared_state *shared;
    mc_thread_record *record;
    uint64_t begin, end;
} thread_arg;

static void start_threads_main(thread_arg *arg, _Atomic int *stop)
{
    mc_thread_record *rec = arg->record;
    rec->os_thread_id = mc_platform_thread_id();
    rec->cpu = mc_platform_current_cpu();
    rec->start_s = mc_now_s() - arg->shared->t0;

    /* i < 2**42 so i*i < 2**84: accumulate in 128 bits. */
    unsigned __int128 partial = 0;
    for (uint64_t block = arg->begin; block < arg->end; block += STOP_CHECK_EVERY) {
        if (atomic_load_explicit(stop, memory_order_relaxed))
            return;   /* cancelled: the caller discards every record */
        uint64_t stop_at = arg->end - block > STOP_CHECK_EVERY ? block + STOP_CHECK_EVERY : arg->end;
        for (uint64_t i = block; i < stop_at; i++)
            partial += (unsigned __int128)i * i;
    }

    mc_mutex_lock(&arg->shared->lock);
    arg->shared->total += partial;
    mc_mutex_unlock(&arg->shared->lock);

    rec->items = arg->end - arg->begin;
    rec->partial_lo = (uint64_t)partial;
    rec->partial_hi = (uint64_t)(partial >> 64);
    rec->end_s = mc_now_s() - arg->shared->t0;
}

typedef struct {
    mc_thread_body body;
    void *ctx;
    unsigned index;
} run_arg;

static void *run_threads_main(void *p)
{
    run_arg *arg = p;
    arg->body(arg->ctx, arg->index);
    return NULL;
}

int mc_run_threads(unsigned n, mc_thread_body body, void *ctx, int *os_error)
{
    return mc_run_threads_ex(n, body, ctx, NULL, os_error);
}

/* Called on the calling thread once every thread that could start has
 * started (`started` of them), before they are joined. */
typedef void (*wait_hook)(void *ctx, unsigned started);

/* Start n threads running body(ctx, i); on a failed start call on_failure
 * and start no more; wait (the hook, if any); join every started thread. */
static int run_threads(unsigned n, mc_thread_body body, void *ctx, mc_start_failed on_failure, wait_hook wait,
                       int *os_error)
{
    mc_thread_t *threads = calloc(n, sizeof *threads);
    run_arg *args = calloc(n, sizeof *args);
    if (threads == NULL || args == NULL) {
        free(threads);
        free(args);
        return MC_ENOMEM;
    }
    int rc = MC_OK;
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        args[i] = (run_arg){body, ctx, i};
        int err = mc_thread_start(&threads[i], run_threads_main, &args[i]);
        if (err != 0) {
            if (os_error)
                *os_error = err;
            rc = MC_ETHREAD;
            if (on_failure != NULL)
                on_failure(ctx, started, err);
            break;
        }
        started++;
    }
    if (wait != NULL)
        wait(ctx, started);
    for (unsigned i = 0; i < started; i++) {
        int err = mc_thread_join(threads[i]);
        if (err != 0 && rc == MC_OK) {
            if (os_error)
                *os_error = err;
            rc = MC_ETHREAD;
        }
    }
    free(threads);
    free(args);
    return rc;
}

int mc_run_threads_ex(unsigned n, mc_thread_body body, void *ctx, mc_start_failed on_failure, int *os_error)
{
    if (os_error)
        *os_error = 0;
    if (n < 1 || n > MC_MAX_THREADS || body == NULL)
        return MC_EINVAL;
    return run_threads(n, body, ctx, on_failure, NULL, os_error);
}

typedef struct {
    shared_state shared;
    mc_thread_record *records;
    uint64_t work;
    unsigned n;
    _Atomic int stop;        /* set when the poll asks to cancel, or a start failed */
    mc_mutex_t done_lock;
    mc_cond_t done_cond;
    unsigned finished;       /* guarded by done_lock */
    mc_poll_fn poll;
    void *poll_ctx;
    int cancelled;           /* the poll asked to stop */
} start_ctx;

static void start_threads_body(void *p, unsigned i)
{
    start_ctx *c = p;
    uint64_t share = c->work / c->n, extra = c->work % c->n;
    thread_arg arg = {
        .shared = &c->shared,
        .record = &c->records[i],
        .begin = share * i + (i < extra ? i : extra),
    };
    arg.end = arg.begin + share + (i < extra ? 1 : 0);
    start_threads_main(&arg, &c->stop);
    mc_mutex_lock(&c->done_lock);
    c->finished++;
    mc_cond_signal(&c->done_cond);
    mc_mutex_unlock(&c->done_lock);
}

/* Wait for the threads, polling (for Ctrl-C) every MC_POLL_INTERVAL_MS; a
 * poll that asks to stop makes every thread stop within a block. */
static void start_threads_wait(void *p, unsigned started)
{
    start_ctx *c = p;
    mc_mutex_lock(&c->done_lock);
    while (c->finished < started) {
        if (c->poll == NULL || c->cancelled) {
            mc_cond_wait(&c->done_cond, &c->done_lock);
            continue;
        }
        mc_cond_timedwait_ms(&c->done_cond, &c->done_lock, MC_POLL_INTERVAL_MS / 2);
        if (c->finished < started) {
            mc_mutex_unlock(&c->done_lock);
            if (c->poll(c->poll_ctx) != 0) {
                c->cancelled = 1;
                atomic_store(&c->stop, 1);
            }
            mc_mutex_lock(&c->done_lock);
        }
    }
    mc_mutex_unlock(&c->done_lock);
}

/* Runs on the calling thread when a start fails: the threads already started
 * stop early (their work is discarded). */
static void start_failed(void *p, unsigned started, int err)
{
    (void)started;
    (void)err;
    start_ctx *c = p;
    atomic_store(&c->stop, 1);
}

int mc_start_threads(unsigned n, uint64_t work, mc_thread_record *records,
                     uint64_t *total_lo, uint64_t *total_hi, int *os_error)
{
    return mc_start_threads_polled(n, work, records, total_lo, total_hi, os_error, NULL, NULL);
}

int mc_start_threads_polled(unsigned n, uint64_t work, mc_thread_record *records,
                            uint64_t *total_lo, uint64_t *total_hi, int *os_error,
                            mc_poll_fn poll, void *poll_ctx)
{
    if (os_error)
        *os_error = 0;
    if (n < 1 || n > MC_MAX_THREADS || records == NULL || total_lo == NULL || total_hi == NULL)
        return MC_EINVAL;
    if (work > MC_SUM_OF_SQUARES_MAX_N)
        return MC_EOVERFLOW;

    start_ctx c = {.shared = {.total = 0, .t0 = mc_now_s()}, .records = records, .work = work, .n = n,
                   .poll = poll, .poll_ctx = poll_ctx};
    atomic_init(&c.stop, 0);
    if (mc_mutex_init(&c.shared.lock) != 0)
        return MC_ENOMEM;
    if (mc_mutex_init(&c.done_lock) != 0) {
        mc_mutex_destroy(&c.shared.lock);
        return MC_ENOMEM;
    }
    if (mc_cond_init(&c.done_cond) != 0) {
        mc_mutex_destroy(&c.done_lock);
        mc_mutex_destroy(&c.shared.lock);
        return MC_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        records[i] = (mc_thread_record){.index = i, .cpu = -1};

    int rc = run_threads(n, start_threads_body, &c, start_failed, start_threads_wait, os_error);
    mc_cond_destroy(&c.done_cond);
    mc_mutex_destroy(&c.done_lock);
    mc_mutex_destroy(&c.shared.lock);
    if (rc == MC_OK && c.cancelled)
        rc = MC_ECANCELED;
    if (rc == MC_OK) {
        *total_lo = (uint64_t)c.shared.total;
        *total_hi = (uint64_t)(c.shared.total >> 64);
    }
    return rc;
}
