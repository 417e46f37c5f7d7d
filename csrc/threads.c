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

#include <stdlib.h>

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

static void start_threads_main(thread_arg *arg)
{
    mc_thread_record *rec = arg->record;
    rec->os_thread_id = mc_platform_thread_id();
    rec->cpu = mc_platform_current_cpu();
    rec->start_s = mc_now_s() - arg->shared->t0;

    /* i < 2**42 so i*i < 2**84: accumulate in 128 bits. */
    unsigned __int128 partial = 0;
    for (uint64_t i = arg->begin; i < arg->end; i++)
        partial += (unsigned __int128)i * i;

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

int mc_run_threads_ex(unsigned n, mc_thread_body body, void *ctx, mc_start_failed on_failure, int *os_error)
{
    if (os_error)
        *os_error = 0;
    if (n < 1 || n > MC_MAX_THREADS || body == NULL)
        return MC_EINVAL;
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

typedef struct {
    shared_state shared;
    mc_thread_record *records;
    uint64_t work;
    unsigned n;
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
    start_threads_main(&arg);
}

int mc_start_threads(unsigned n, uint64_t work, mc_thread_record *records,
                     uint64_t *total_lo, uint64_t *total_hi, int *os_error)
{
    if (os_error)
        *os_error = 0;
    if (n < 1 || n > MC_MAX_THREADS || records == NULL || total_lo == NULL || total_hi == NULL)
        return MC_EINVAL;
    if (work > MC_SUM_OF_SQUARES_MAX_N)
        return MC_EOVERFLOW;

    start_ctx c = {.shared = {.total = 0, .t0 = mc_now_s()}, .records = records, .work = work, .n = n};
    if (mc_mutex_init(&c.shared.lock) != 0)
        return MC_ENOMEM;
    for (unsigned i = 0; i < n; i++)
        records[i] = (mc_thread_record){.index = i, .cpu = -1};
    int rc = mc_run_threads(n, start_threads_body, &c, os_error);
    mc_mutex_destroy(&c.shared.lock);
    if (rc == MC_OK) {
        *total_lo = (uint64_t)c.shared.total;
        *total_hi = (uint64_t)(c.shared.total >> 64);
    }
    return rc;
}
