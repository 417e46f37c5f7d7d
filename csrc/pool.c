/*
 * pool.c -- persistent worker pool and the mc_parallel_for dispatch.
 *
 * Life of a region
 *   The dispatcher (the calling thread, participant 0) writes the job into
 *   the pool, then publishes it by storing a new value into `job_word`, which
 *   packs a sequence number and the number of participants.  Workers spin on
 *   that word after each job for about twice the job's duration (bounded:
 *   0.1-2 ms), so back-to-back regions cost about a microsecond and find the
 *   worker awake on its own core, then sleep on a condition variable.  Participants
 *   run their chunks, checking the cancel flag between chunks, and decrement
 *   `pending`; the dispatcher runs its own share, then waits for pending == 0
 *   (spinning, then sleeping with a timeout so it can poll for Ctrl-C).
 *
 * Why job_word carries the participant count
 *   A worker that does not take part in job g may look at the pool only
 *   after job g finished and job g+1 was published.  If it read the count
 *   from a separate field it could mistake itself for a participant of g.
 *   Reading sequence and count in one atomic load makes "am I in the current
 *   job" a single consistent question; the other job fields are read only by
 *   participants, which the dispatcher waits for before changing them.
 *
 * Sleeping without lost wake-ups
 *   Worker: lock; sleepers++ (seq_cst); re-read job_word; wait.  Dispatcher:
 *   store job_word (seq_cst); if sleepers > 0, lock and broadcast.  With both
 *   sides seq_cst, either the dispatcher sees the sleeper or the sleeper sees
 *   the new job.  The same pattern guards the dispatcher's own sleep.
 */
#include "manycore.h"
#include "platform.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Workers spin after a region for twice its duration, within these bounds:
 * long enough to keep back-to-back regions hot, short enough not to burn a
 * core when the pool goes idle.  The dispatcher waits MC_SPIN_ITERS pauses. */
#define MC_SPIN_MIN_S 100e-6
#define MC_SPIN_MAX_S 2e-3
#define MC_SPIN_ITERS 2000
#define MC_CACHE_LINE 64
#define MC_SEQ_SHIFT 16   /* job_word = (sequence << 16) | participants */

struct mc_pool {
    unsigned nthreads;           /* participants including the dispatcher */
    unsigned fork_gen;           /* mc_fork_generation() at creation */
    mc_thread_t *threads;        /* nthreads - 1 workers */
    struct mc_worker_arg *args;

    mc_mutex_t dispatch_lock;    /* one dispatcher at a time */

    /* The current job, written by the dispatcher before publishing it in
     * job_word; kept on job_word's cache line so a worker picks up the whole
     * job with one line transfer. */
    alignas(MC_CACHE_LINE) _Atomic uint64_t job_word;
    mc_task_fn fn;
    void *ctx;
    size_t n;
    size_t grain;
    size_t nchunks;
    int schedule;

    alignas(MC_CACHE_LINE) atomic_uint pending;
    alignas(MC_CACHE_LINE) _Atomic size_t next_chunk;
    alignas(MC_CACHE_LINE) atomic_int cancel;
    atomic_int shutdown;

    alignas(MC_CACHE_LINE) mc_mutex_t wake_lock;
    mc_cond_t wake_cond;
    atomic_uint sleepers;

    mc_mutex_t done_lock;
    mc_cond_t done_cond;
    atomic_int dispatcher_sleeping;
};

struct mc_worker_arg {
    mc_pool *pool;
    unsigned index;
};

/* Set while this thread runs the body of a region: a nested dispatch from
 * inside a region runs serially instead of deadlocking on the pool. */
static _Thread_local int tls_in_region;

/* ------------------------------------------------------------ test hook */
static atomic_int debug_fail_after = -1;

void mc_debug_fail_thread_create(int after)
{
    atomic_store(&debug_fail_after, after < 0 ? -1 : after);
}

int mc__debug_should_fail_thread_create(void)
{
    int cur = atomic_load(&debug_fail_after);
    while (cur >= 0) {
        int next = cur == 0 ? -1 : cur - 1;
        if (atomic_compare_exchange_weak(&debug_fail_after, &cur, next))
            return cur == 0;
    }
    return 0;
}

/* ------------------------------------------------------------ status text */
const char *mc_strerror(int status)
{
    switch (status) {
    case MC_OK: return "success";
    case MC_EINVAL: return "invalid argument";
    case MC_ENOMEM: return "out of memory";
    case MC_ETHREAD: return "could not create an OS thread";
    case MC_ECANCELED: return "cancelled";
    case MC_EOVERFLOW: return "result does not fit its type";
    case MC_ESTALE: return "pool was created before fork() and has no threads in this process";
    case MC_EDTYPE: return "element type not supported by this kernel";
    default: return "unknown manycore status";
    }
}

unsigned mc_cpu_count(void)
{
    return mc_platform_cpu_count();
}

/* ------------------------------------------------------------ running chunks */
typedef struct {
    mc_poll_fn poll;
    void *poll_ctx;
    double next_poll_s;
    bool fired;
} poll_state;

static void poll_init(poll_state *ps, const mc_exec *ex)
{
    ps->poll = ex->poll;
    ps->poll_ctx = ex->poll_ctx;
    ps->fired = false;
    ps->next_poll_s = ps->poll ? mc_now_s() + MC_POLL_INTERVAL_MS * 1e-3 : 0.0;
}

/* Returns true if the poll callback asked to cancel. */
static bool poll_due(poll_state *ps)
{
    if (ps->poll == NULL || ps->fired)
        return ps->fired;
    double now = mc_now_s();
    if (now < ps->next_poll_s)
        return false;
    ps->next_poll_s = now + MC_POLL_INTERVAL_MS * 1e-3;
    if (ps->poll(ps->poll_ctx) != 0)
        ps->fired = true;
    return ps->fired;
}

static inline void run_chunk(mc_task_fn fn, void *ctx, size_t n, size_t grain,
                             size_t chunk, unsigned worker)
{
    size_t begin = chunk * grain;
    size_t end = n - begin < grain ? n : begin + grain;
    fn(ctx, begin, end, worker);
}

/* Run participant w's share of the current job.  ps is non-NULL only for
 * the dispatcher. */
static void run_share(mc_pool *pool, unsigned w, unsigned active, poll_state *ps)
{
    mc_task_fn fn = pool->fn;
    void *ctx = pool->ctx;
    size_t n = pool->n, grain = pool->grain, nchunks = pool->nchunks;

    tls_in_region = 1;
    if (pool->schedule == MC_SCHEDULE_DYNAMIC) {
        for (;;) {
            if (atomic_load_explicit(&pool->cancel, memory_order_relaxed))
                break;
            size_t c = atomic_fetch_add_explicit(&pool->next_chunk, 1, memory_order_relaxed);
            if (c >= nchunks)
                break;
            run_chunk(fn, ctx, n, grain, c, w);
            if (ps && poll_due(ps)) {
                atomic_store(&pool->cancel, 1);
                break;
            }
        }
    } else {
        /* Contiguous share: chunks [lo, hi) with the remainder spread over
         * the first participants. */
        size_t base = nchunks / active, extra = nchunks % active;
        size_t lo = w * base + (w < extra ? w : extra);
        size_t hi = lo + base + (w < extra ? 1 : 0);
        for (size_t c = lo; c < hi; c++) {
            if (atomic_load_explicit(&pool->cancel, memory_order_relaxed))
                break;
            run_chunk(fn, ctx, n, grain, c, w);
            if (ps && poll_due(ps)) {
                atomic_store(&pool->cancel, 1);
                break;
            }
        }
    }
    tls_in_region = 0;
}

/* ------------------------------------------------------------ workers */
static uint64_t wait_for_new_job(mc_pool *pool, uint64_t seen, double spin_s)
{
    uint64_t word;
    /* Spin (pause) for spin_s, checking the clock every 64 rounds, then sleep. */
    double until = mc_now_s() + spin_s;
    for (int i = 0;; i++) {
        word = atomic_load_explicit(&pool->job_word, memory_order_acquire);
        if (word != seen)
            return word;
        if ((i & 63) == 63 && mc_now_s() > until)
            break;
        mc_cpu_relax();
    }
    mc_mutex_lock(&pool->wake_lock);
    atomic_fetch_add(&pool->sleepers, 1u);
    while ((word = atomic_load(&pool->job_word)) == seen)
        mc_cond_wait(&pool->wake_cond, &pool->wake_lock);
    atomic_fetch_sub(&pool->sleepers, 1u);
    mc_mutex_unlock(&pool->wake_lock);
    return word;
}

static void *worker_main(void *p)
{
    struct mc_worker_arg *arg = p;
    mc_pool *pool = arg->pool;
    unsigned index = arg->index;
    uint64_t seen = 0;
    double spin_s = MC_SPIN_MIN_S;

    for (;;) {
        seen = wait_for_new_job(pool, seen, spin_s);
        if (atomic_load(&pool->shutdown))
            break;
        unsigned active = (unsigned)(seen & ((1u << MC_SEQ_SHIFT) - 1));
        if (index >= active) {
            spin_s = MC_SPIN_MIN_S;   /* not needed now: do not compete for a core */
            continue;
        }
        double started = mc_now_s();
        run_share(pool, index, active, NULL);
        /* Keep spinning after a region about as long as the region took
         * (bounded): a caller that dispatches region after region finds the
         * worker awake on its own core.  A worker that sleeps between regions
         * is woken on the dispatcher's CPU by Linux ("wake-affine") and the
         * two then share one core for milliseconds: measured here, 2-thread
         * regions ran at 1-thread speed with a fixed 100 us spin. */
        spin_s = 2.0 * (mc_now_s() - started);
        spin_s = spin_s < MC_SPIN_MIN_S ? MC_SPIN_MIN_S : spin_s > MC_SPIN_MAX_S ? MC_SPIN_MAX_S : spin_s;
        if (atomic_fetch_sub(&pool->pending, 1u) == 1u && atomic_load(&pool->dispatcher_sleeping)) {
            mc_mutex_lock(&pool->done_lock);
            mc_cond_signal(&pool->done_cond);
            mc_mutex_unlock(&pool->done_lock);
        }
    }
    return NULL;
}

/* Publish a new job word and wake sleeping workers. */
static void publish(mc_pool *pool, unsigned active)
{
    uint64_t seq = (atomic_load_explicit(&pool->job_word, memory_order_relaxed) >> MC_SEQ_SHIFT) + 1;
    atomic_store(&pool->job_word, (seq << MC_SEQ_SHIFT) | active);
    if (atomic_load(&pool->sleepers) > 0) {
        mc_mutex_lock(&pool->wake_lock);
        mc_cond_broadcast(&pool->wake_cond);
        mc_mutex_unlock(&pool->wake_lock);
    }
}

static void stop_workers(mc_pool *pool, unsigned started)
{
    atomic_store(&pool->shutdown, 1);
    publish(pool, 0);
    for (unsigned i = 0; i < started; i++)
        (void)mc_thread_join(pool->threads[i]);
}

/* ------------------------------------------------------------ lifetime */
int mc_pool_create(mc_pool **out, unsigned nthreads, int *os_error)
{
    if (os_error)
        *os_error = 0;
    if (out == NULL || nthreads < 1 || nthreads > MC_MAX_THREADS)
        return MC_EINVAL;
    *out = NULL;

    mc_pool *pool = mc_aligned_alloc(MC_CACHE_LINE, sizeof(mc_pool));
    if (pool == NULL)
        return MC_ENOMEM;
    memset(pool, 0, sizeof *pool);
    pool->nthreads = nthreads;
    pool->fork_gen = mc_fork_generation();
    atomic_init(&pool->job_word, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->next_chunk, 0);
    atomic_init(&pool->cancel, 0);
    atomic_init(&pool->shutdown, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->dispatcher_sleeping, 0);

    int rc = MC_ENOMEM;
    int inited = 0;   /* how many sync objects to destroy on failure */
    if (mc_mutex_init(&pool->dispatch_lock) != 0) goto fail;
    inited++;
    if (mc_mutex_init(&pool->wake_lock) != 0) goto fail;
    inited++;
    if (mc_cond_init(&pool->wake_cond) != 0) goto fail;
    inited++;
    if (mc_mutex_init(&pool->done_lock) != 0) goto fail;
    inited++;
    if (mc_cond_init(&pool->done_cond) != 0) goto fail;
    inited++;

    unsigned nworkers = nthreads - 1;
    if (nworkers > 0) {
        pool->threads = calloc(nworkers, sizeof *pool->threads);
        pool->args = calloc(nworkers, sizeof *pool->args);
        if (pool->threads == NULL || pool->args == NULL)
            goto fail;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        pool->args[i] = (struct mc_worker_arg){pool, i + 1};
        int err = mc_thread_start(&pool->threads[i], worker_main, &pool->args[i]);
        if (err != 0) {
            if (os_error)
                *os_error = err;
            stop_workers(pool, i);
            rc = MC_ETHREAD;
            goto fail;
        }
    }
    *out = pool;
    return MC_OK;

fail:
    if (inited > 4) mc_cond_destroy(&pool->done_cond);
    if (inited > 3) mc_mutex_destroy(&pool->done_lock);
    if (inited > 2) mc_cond_destroy(&pool->wake_cond);
    if (inited > 1) mc_mutex_destroy(&pool->wake_lock);
    if (inited > 0) mc_mutex_destroy(&pool->dispatch_lock);
    free(pool->threads);
    free(pool->args);
    mc_aligned_free(pool);
    return rc;
}

void mc_pool_destroy(mc_pool *pool)
{
    if (pool == NULL)
        return;
    if (pool->fork_gen != mc_fork_generation()) {
        /* In a forked child the workers do not exist and the locks may be
         * held by threads that vanished: joining or destroying them is
         * undefined.  Free only the memory. */
        free(pool->threads);
        free(pool->args);
        mc_aligned_free(pool);
        return;
    }
    stop_workers(pool, pool->nthreads - 1);
    mc_cond_destroy(&pool->done_cond);
    mc_mutex_destroy(&pool->done_lock);
    mc_cond_destroy(&pool->wake_cond);
    mc_mutex_destroy(&pool->wake_lock);
    mc_mutex_destroy(&pool->dispatch_lock);
    free(pool->threads);
    free(pool->args);
    mc_aligned_free(pool);
}

unsigned mc_pool_threads(const mc_pool *pool)
{
    return pool ? pool->nthreads : 0;
}

int mc_pool_check(const mc_pool *pool)
{
    if (pool == NULL)
        return MC_EINVAL;
    return pool->fork_gen == mc_fork_generation() ? MC_OK : MC_ESTALE;
}

unsigned mc_exec_threads(const mc_exec *ex)
{
    if (ex == NULL || ex->pool == NULL)
        return 1;
    if (ex->nthreads == 0)
        return ex->pool->nthreads;
    if (ex->nthreads > ex->pool->nthreads)
        return 0;
    return ex->nthreads;
}

/* ------------------------------------------------------------ dispatch */
static size_t default_grain(size_t n, unsigned active)
{
    /* ~16 chunks per participant: enough for dynamic balance and for
     * cancellation checks, few enough to keep chunk overhead negligible. */
    size_t chunks = (size_t)active * 16;
    size_t g = (n + chunks - 1) / chunks;
    return g ? g : 1;
}

static int run_serial(const mc_exec *ex, mc_task_fn fn, void *ctx, size_t n, size_t grain)
{
    poll_state ps;
    poll_init(&ps, ex);
    int outer = tls_in_region;
    tls_in_region = 1;
    size_t nchunks = (n + grain - 1) / grain;
    for (size_t c = 0; c < nchunks; c++) {
        run_chunk(fn, ctx, n, grain, c, 0);
        if (poll_due(&ps)) {
            tls_in_region = outer;
            return MC_ECANCELED;
        }
    }
    tls_in_region = outer;
    return MC_OK;
}

static void wait_for_workers(mc_pool *pool, poll_state *ps)
{
    for (int i = 0; i < MC_SPIN_ITERS; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0)
            return;
        mc_cpu_relax();
    }
    for (;;) {
        mc_mutex_lock(&pool->done_lock);
        atomic_store(&pool->dispatcher_sleeping, 1);
        if (atomic_load(&pool->pending) != 0)
            mc_cond_timedwait_ms(&pool->done_cond, &pool->done_lock, MC_POLL_INTERVAL_MS);
        atomic_store(&pool->dispatcher_sleeping, 0);
        mc_mutex_unlock(&pool->done_lock);
        if (atomic_load(&pool->pending) == 0)
            return;
        /* Poll outside done_lock: the callback may block (e.g. on the GIL). */
        if (poll_due(ps))
            atomic_store(&pool->cancel, 1);
    }
}

int mc_parallel_for(const mc_exec *ex, mc_task_fn fn, void *ctx,
                    size_t n, size_t grain, int schedule)
{
    if (ex == NULL || fn == NULL)
        return MC_EINVAL;
    if (schedule != MC_SCHEDULE_STATIC && schedule != MC_SCHEDULE_DYNAMIC)
        return MC_EINVAL;
    unsigned active = mc_exec_threads(ex);
    if (active == 0)
        return MC_EINVAL;
    mc_pool *pool = ex->pool;
    if (pool && pool->fork_gen != mc_fork_generation())
        return MC_ESTALE;
    if (n == 0)
        return MC_OK;
    if (grain == 0)
        grain = default_grain(n, active);

    /* One participant, a single chunk, or a nested region: no hand-off. */
    if (pool == NULL || active == 1 || grain >= n || tls_in_region)
        return run_serial(ex, fn, ctx, n, grain);

    size_t nchunks = (n + grain - 1) / grain;
    if (active > nchunks)
        active = (unsigned)nchunks;

    mc_mutex_lock(&pool->dispatch_lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->grain = grain;
    pool->nchunks = nchunks;
    pool->schedule = schedule;
    atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
    /* Written only when set, so the line stays shared between regions. */
    if (atomic_load_explicit(&pool->cancel, memory_order_relaxed))
        atomic_store_explicit(&pool->cancel, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, active - 1, memory_order_relaxed);
    publish(pool, active);

    poll_state ps;
    poll_init(&ps, ex);
    run_share(pool, 0, active, &ps);
    wait_for_workers(pool, &ps);

    int cancelled = atomic_load(&pool->cancel);
    mc_mutex_unlock(&pool->dispatch_lock);
    return cancelled ? MC_ECANCELED : MC_OK;
}

/* ------------------------------------------------------------ measurement */
void mc_noop_range(void *ctx, size_t begin, size_t end)
{
    (void)ctx; (void)begin; (void)end;
}

static void noop_task(void *ctx, size_t begin, size_t end, unsigned worker)
{
    (void)ctx; (void)begin; (void)end; (void)worker;
}

int mc_bench_dispatch(const mc_exec *ex, size_t iterations, double *seconds_per_region)
{
    if (seconds_per_region == NULL || iterations == 0)
        return MC_EINVAL;
    unsigned active = mc_exec_threads(ex);
    if (active == 0)
        return MC_EINVAL;
    /* One index per participant: every participant really takes part. */
    double t0 = mc_now_s();
    for (size_t i = 0; i < iterations; i++) {
        int rc = mc_parallel_for(ex, noop_task, NULL, active, 1, MC_SCHEDULE_STATIC);
        if (rc != MC_OK)
            return rc;
    }
    *seconds_per_region = (mc_now_s() - t0) / (double)iterations;
    return MC_OK;
}
