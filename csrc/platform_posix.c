/*
 * platform_posix.c -- the internal platform API (platform.h) on POSIX threads.
 */
#if !defined(_WIN32)

#define _GNU_SOURCE 1
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#  include <sys/syscall.h>
#endif

int mc_thread_start(mc_thread_t *thread, mc_thread_fn fn, void *arg)
{
    if (mc__debug_should_fail_thread_create())
        return EAGAIN;

    /* Block asynchronous signals while creating the thread so that the new
     * thread inherits a fully blocked mask: SIGINT & co. are then delivered
     * to a thread that can act on them (the interpreter's), never to a pool
     * worker in the middle of a kernel. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc != 0)
        return rc;
    rc = pthread_create(thread, NULL, fn, arg);
    int rc_restore = pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && rc_restore != 0) {
        /* Cannot happen with a valid mask; keep the caller's state honest. */
        abort();
    }
    return rc;
}

int mc_thread_join(mc_thread_t thread)
{
    return pthread_join(thread, NULL);
}

int mc_mutex_init(mc_mutex_t *m)
{
    return pthread_mutex_init(m, NULL);
}

void mc_mutex_destroy(mc_mutex_t *m)
{
    (void)pthread_mutex_destroy(m);
}

void mc_mutex_lock(mc_mutex_t *m)
{
    if (pthread_mutex_lock(m) != 0)
        abort();   /* only possible for an invalid mutex: a bug, not a runtime condition */
}

void mc_mutex_unlock(mc_mutex_t *m)
{
    if (pthread_mutex_unlock(m) != 0)
        abort();
}

#if defined(__APPLE__)
#  define MC_COND_CLOCK CLOCK_REALTIME   /* no pthread_condattr_setclock */
#else
#  define MC_COND_CLOCK CLOCK_MONOTONIC  /* immune to wall-clock jumps */
#endif

int mc_cond_init(mc_cond_t *c)
{
#if defined(__APPLE__)
    return pthread_cond_init(c, NULL);
#else
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, MC_COND_CLOCK);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
#endif
}

void mc_cond_destroy(mc_cond_t *c)
{
    (void)pthread_cond_destroy(c);
}

void mc_cond_wait(mc_cond_t *c, mc_mutex_t *m)
{
    if (pthread_cond_wait(c, m) != 0)
        abort();
}

void mc_cond_timedwait_ms(mc_cond_t *c, mc_mutex_t *m, unsigned ms)
{
    struct timespec ts;
    clock_gettime(MC_COND_CLOCK, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(c, m, &ts);
    if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
        abort();
}

void mc_cond_signal(mc_cond_t *c)
{
    (void)pthread_cond_signal(c);
}

void mc_cond_broadcast(mc_cond_t *c)
{
    (void)pthread_cond_broadcast(c);
}

void *mc_aligned_alloc(size_t align, size_t size)
{
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

void mc_aligned_free(void *p)
{
    free(p);
}

unsigned mc_platform_cpu_count(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

uint64_t mc_platform_thread_id(void)
{
#if defined(__linux__)
    return (uint64_t)syscall(SYS_gettid);
#elif defined(__APPLE__)
    uint64_t tid = 0;
    pthread_threadid_np(NULL, &tid);
    return tid;
#else
    return (uint64_t)(uintptr_t)pthread_self();
#endif
}

int mc_platform_current_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

double mc_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mc_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_generation, 1u);
}

static void register_fork_handler(void)
{
    /* Failure (ENOMEM) leaves pools unable to notice a fork; nothing better
     * can be done at this point and it cannot happen in practice. */
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned mc_fork_generation(void)
{
    pthread_once(&fork_once, register_fork_handler);
    return atomic_load(&fork_generation);
}

#endif /* !_WIN32 */
