/*
 * platform.h -- the thin internal threading layer (not installed, not public).
 *
 * platform_posix.c and platform_win32.c implement exactly this API; nothing
 * else in csrc/ includes <pthread.h> or <windows.h>.  Functions return 0 or a
 * positive OS error code (errno / GetLastError()), never abort on failure
 * except for states that cannot happen (an invalid mutex).
 */
#ifndef MANYCORE_PLATFORM_H
#define MANYCORE_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>
typedef HANDLE mc_thread_t;
typedef SRWLOCK mc_mutex_t;
typedef CONDITION_VARIABLE mc_cond_t;
#else
#  include <pthread.h>
typedef pthread_t mc_thread_t;
typedef pthread_mutex_t mc_mutex_t;
typedef pthread_cond_t mc_cond_t;
#endif

typedef void *(*mc_thread_fn)(void *arg);

/* Start a thread running fn(arg).  Honors mc_debug_fail_thread_create(). */
int mc_thread_start(mc_thread_t *thread, mc_thread_fn fn, void *arg);
int mc_thread_join(mc_thread_t thread);

int mc_mutex_init(mc_mutex_t *m);
void mc_mutex_destroy(mc_mutex_t *m);
void mc_mutex_lock(mc_mutex_t *m);
void mc_mutex_unlock(mc_mutex_t *m);

int mc_cond_init(mc_cond_t *c);
void mc_cond_destroy(mc_cond_t *c);
void mc_cond_wait(mc_cond_t *c, mc_mutex_t *m);
/* Returns after a signal, a spurious wake-up or about `ms` milliseconds. */
void mc_cond_timedwait_ms(mc_cond_t *c, mc_mutex_t *m, unsigned ms);
void mc_cond_signal(mc_cond_t *c);
void mc_cond_broadcast(mc_cond_t *c);

/* Memory aligned to `align` (a power of two, multiple of sizeof(void *));
 * release with mc_aligned_free.  NULL on failure. */
void *mc_aligned_alloc(size_t align, size_t size);
void mc_aligned_free(void *p);

unsigned mc_platform_cpu_count(void);
uint64_t mc_platform_thread_id(void);
int mc_platform_current_cpu(void);   /* -1 if unknown */
double mc_now_s(void);               /* monotonic seconds */
void mc_cpu_relax(void);             /* spin-wait hint */


/* Incremented in the child after fork(); always 0 where there is no fork. */
unsigned mc_fork_generation(void);

/* Test hook shared by both platforms (defined in pool.c): returns nonzero if
 * this thread creation must fail. */
int mc__debug_should_fail_thread_create(void);

#endif
