/* Standalone test of the pool: coverage of every index exactly once across
 * schedules and thread counts, nested regions, cancellation, thread-creation
 * failure injection, and dispatch cost.  Build:
 *   gcc -std=c11 -O2 -pthread -Icsrc csrc/pool.c csrc/platform_posix.c tests/c/test_pool.c */
#include "manycore.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int failures;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

/* The entry of a joined thread can linger in /proc/self/task for a moment
 * after pthread_join returns (the kernel finishes the exit asynchronously):
 * wait up to a second for the count to settle at `want`. */
static int settle_task_count(int want);

static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
        perror("opendir /proc/self/task");
        exit(2);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int settle_task_count(int want)
{
    int n = task_count();
    for (int i = 0; i < 1000 && n != want; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        n = task_count();
    }
    return n;
}

typedef struct { atomic_uchar *hits; atomic_uint max_worker; } cover_ctx;

static void cover(void *p, size_t b, size_t e, unsigned w)
{
    cover_ctx *c = p;
    for (size_t i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
    unsigned m = atomic_load(&c->max_worker);
    while (w > m && !atomic_compare_exchange_weak(&c->max_worker, &m, w)) {}
}

static mc_pool *nested_pool;
static atomic_size_t nested_total;
static void inner(void *p, size_t b, size_t e, unsigned w) { (void)p; (void)w; atomic_fetch_add(&nested_total, e - b); }
static void outer(void *p, size_t b, size_t e, unsigned w)
{
    (void)p; (void)w;
    mc_exec ex = {nested_pool, 0, NULL, NULL};
    for (size_t i = b; i < e; i++)
        CHECK(mc_parallel_for(&ex, inner, NULL, 10, 3, MC_SCHEDULE_DYNAMIC) == MC_OK);
}

static atomic_int slow_stop;
static void slow(void *p, size_t b, size_t e, unsigned w) { (void)p; (void)b; (void)e; (void)w; for (volatile int i = 0; i < 200000; i++) {} }
/* mc_run_threads_ex: bodies wait until the failure hook releases them. */
static atomic_int release_bodies, hook_started, hook_error, bodies_ran;
static void waiting_body(void *p, unsigned i)
{
    (void)p; (void)i;
    while (!atomic_load(&release_bodies)) {
        struct timespec us = {0, 100000};
        nanosleep(&us, NULL);
    }
    atomic_fetch_add(&bodies_ran, 1);
}
static void release_on_failure(void *p, unsigned started, int os_error)
{
    (void)p;
    atomic_store(&hook_started, (int)started);
    atomic_store(&hook_error, os_error);
    atomic_store(&release_bodies, 1);
}

static int polls;
static int poll_cancel(void *p) { (void)p; return ++polls >= 2; }

static void noop_body(void *p, unsigned i) { (void)p; (void)i; }

int main(void)
{
    /* ThreadSanitizer's runtime starts a helper thread at the first
     * pthread_create: start and join one thread before taking the baseline,
     * which is then the process's own count plus any such helper. */
    int before = task_count();
    CHECK(mc_run_threads(1, noop_body, NULL, NULL) == MC_OK);
    int tasks0 = settle_task_count(before) == before ? before : settle_task_count(before + 1);
    size_t sizes[] = {0, 1, 2, 7, 97, 1000, 4099};
    for (unsigned t = 1; t <= 8; t++) {
        mc_pool *pool;
        CHECK(mc_pool_create(&pool, t, NULL) == MC_OK);
        CHECK(settle_task_count(tasks0 + (int)t - 1) == tasks0 + (int)t - 1);
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            for (int sched = 0; sched < 2; sched++) {
                for (size_t grain = 0; grain < 5; grain += 2) {
                    size_t n = sizes[si];
                    cover_ctx c = {calloc(n + 1, 1), 0};
                    mc_exec ex = {pool, 0, NULL, NULL};
                    CHECK(mc_parallel_for(&ex, cover, &c, n, grain, sched) == MC_OK);
                    for (size_t i = 0; i < n; i++) CHECK(c.hits[i] == 1);
                    CHECK(atomic_load(&c.max_worker) < t);
                    free(c.hits);
                }
            }
        }
        mc_exec bad = {pool, t + 1, NULL, NULL};
        CHECK(mc_parallel_for(&bad, cover, NULL, 10, 1, 0) == MC_EINVAL);
        mc_pool_destroy(pool);
        CHECK(settle_task_count(tasks0) == tasks0);
    }

    /* nested */
    CHECK(mc_pool_create(&nested_pool, 3, NULL) == MC_OK);
    mc_exec ex = {nested_pool, 0, NULL, NULL};
    CHECK(mc_parallel_for(&ex, outer, NULL, 50, 1, MC_SCHEDULE_DYNAMIC) == MC_OK);
    CHECK(atomic_load(&nested_total) == 500);

    /* cancellation via poll: a region of ~many slow chunks stops early */
    mc_exec pe = {nested_pool, 0, poll_cancel, NULL};
    CHECK(mc_parallel_for(&pe, slow, NULL, 100000, 1, MC_SCHEDULE_DYNAMIC) == MC_ECANCELED);
    CHECK(mc_parallel_for(&ex, slow, NULL, 10, 1, MC_SCHEDULE_STATIC) == MC_OK);  /* still usable */
    (void)slow_stop;

    double per;
    for (unsigned t = 1; t <= 2; t++) {
        mc_exec be = {nested_pool, t, NULL, NULL};
        CHECK(mc_bench_dispatch(&be, 200000, &per) == MC_OK);
        printf("dispatch, %u participants: %.3f us/region\n", t, per * 1e6);
    }
    mc_pool_destroy(nested_pool);

    /* thread creation failure part-way: no thread leaked, errno reported */
    for (int after = 0; after < 4; after++) {
        mc_pool *pool = NULL;
        int err = 0;
        mc_debug_fail_thread_create(after);
        CHECK(mc_pool_create(&pool, 6, &err) == MC_ETHREAD);
        CHECK(pool == NULL);
        CHECK(err != 0);
        CHECK(settle_task_count(tasks0) == tasks0);
        mc_thread_record rec[5];
        uint64_t lo, hi;
        mc_debug_fail_thread_create(after);
        CHECK(mc_start_threads(5, 1000, rec, &lo, &hi, &err) == MC_ETHREAD);
        CHECK(settle_task_count(tasks0) == tasks0);
    }
    /* the failure hook runs before the join, with the count started and errno */
    for (int after = 0; after < 4; after++) {
        int err = 0;
        atomic_store(&release_bodies, 0);
        atomic_store(&bodies_ran, 0);
        atomic_store(&hook_started, -1);
        mc_debug_fail_thread_create(after);
        CHECK(mc_run_threads_ex(5, waiting_body, NULL, release_on_failure, &err) == MC_ETHREAD);
        CHECK(atomic_load(&hook_started) == after);
        CHECK(atomic_load(&hook_error) == err && err != 0);
        CHECK(atomic_load(&bodies_ran) == after);
        CHECK(settle_task_count(tasks0) == tasks0);
    }
    atomic_store(&release_bodies, 1);
    atomic_store(&hook_started, -1);
    atomic_store(&bodies_ran, 0);
    CHECK(mc_run_threads_ex(3, waiting_body, NULL, release_on_failure, NULL) == MC_OK);
    CHECK(atomic_load(&hook_started) == -1 && atomic_load(&bodies_ran) == 3);
    mc_debug_fail_thread_create(-1);
    mc_thread_record rec[5];
    uint64_t lo, hi;
    CHECK(mc_start_threads(5, 10000000, rec, &lo, &hi, NULL) == MC_OK);
    unsigned __int128 tot = ((unsigned __int128)hi << 64) | lo;
    CHECK(tot == (unsigned __int128)333333283333335ULL * 1000000ULL);
    uint64_t items = 0;
    for (int i = 0; i < 5; i++) items += rec[i].items;
    CHECK(items == 10000000);
    printf("%s (%d failures)\n", failures ? "FAIL" : "OK", failures);
    return failures != 0;
}
