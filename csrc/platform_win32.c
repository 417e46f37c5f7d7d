/*
 * platform_win32.c -- Win32 implementation of the internal API in platform.h.
 *
 * The whole file is guarded by _WIN32, so it builds to an empty object on
 * POSIX.  That way the build can compile both platform files everywhere
 * or pick one, and either works.
 *
 * Error codes.  platform.h says functions return 0 or a positive OS error
 * code.  Here:
 *   - mc_thread_start returns an errno value.  _beginthreadex reports failure
 *     through errno: it turns the CreateThread error into EAGAIN, EACCES, ...
 *     and also sets EINVAL for bad arguments, which have no Win32 code.  The
 *     test hook returns EAGAIN, as manycore.h documents for
 *     mc_debug_fail_thread_create ("fails with EAGAIN").  So callers and the
 *     Python layer see the same errno-style os_error on every platform.  If
 *     the CRT sets no errno we fall back to GetLastError(), then EAGAIN.
 *   - mc_thread_join returns GetLastError() from WaitForSingleObject or
 *     CloseHandle.  These are Win32 calls and no errno exists for them.
 */
#if defined(_WIN32)

/* GetActiveProcessorCount / GetCurrentProcessorNumberEx need Windows 7 and
 * SRWLOCK / CONDITION_VARIABLE need Vista.  Current mingw-w64 (0x0A00) and
 * MSVC defaults are already higher.  Raise an explicitly lower setting here,
 * before <windows.h> is first included (platform.h includes it). */
#if defined(_WIN32_WINNT) && _WIN32_WINNT < 0x0601
#  undef _WIN32_WINNT
#endif
#ifndef _WIN32_WINNT
#  define _WIN32_WINNT 0x0601
#endif

#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <process.h>   /* _beginthreadex */
#include <stdlib.h>

/* ------------------------------------------------------------------ threads */

/*
 * Why _beginthreadex and not CreateThread: worker threads run library code
 * that uses the C runtime (malloc, errno, math, and so on).  _beginthreadex
 * sets up the CRT's per-thread data for the new thread, and when the thread
 * returns, _endthreadex frees that data.  Under the old static CRTs, a
 * CreateThread thread that used the CRT could leak that data and miss some
 * per-thread CRT setup.  The UCRT mostly avoids this, but _beginthreadex is
 * still the documented and portable choice.  Unlike _beginthread, the handle
 * it returns is NOT closed automatically.  That is what we need:
 * mc_thread_join waits on it and then closes it, as pthread_join does.
 */

typedef struct mc_win32_trampoline {
    mc_thread_fn fn;
    void *arg;
} mc_win32_trampoline;

static unsigned __stdcall mc_win32_thread_entry(void *p)
{
    mc_win32_trampoline t = *(mc_win32_trampoline *)p;
    free(p);   /* the thread owns the block once it has started */
    (void)t.fn(t.arg);   /* the void * result is not passed on (see platform.h) */
    return 0;
}

int mc_thread_start(mc_thread_t *thread, mc_thread_fn fn, void *arg)
{
    mc_win32_trampoline *t;
    uintptr_t h;
    int err;

    if (mc__debug_should_fail_thread_create())
        return EAGAIN;   /* injected failure; same code as the POSIX build */

    t = (mc_win32_trampoline *)malloc(sizeof *t);
    if (t == NULL)
        return ENOMEM;
    t->fn = fn;
    t->arg = arg;

    errno = 0;
    SetLastError(0);
    h = _beginthreadex(NULL, 0, mc_win32_thread_entry, t, 0, NULL);
    if (h == 0) {
        err = errno;
        if (err == 0)
            err = (int)GetLastError();
        if (err <= 0)
            err = EAGAIN;
        free(t);   /* the thread never started, so the block is still ours */
        return err;
    }
    *thread = (HANDLE)h;
    return 0;
}

int mc_thread_join(mc_thread_t thread)
{
    int err = 0;

    if (WaitForSingleObject(thread, INFINITE) == WAIT_FAILED)
        err = (int)GetLastError();
    if (!CloseHandle(thread) && err == 0)
        err = (int)GetLastError();
    return err;
}

/* -------------------------------------------------------------- mutex / cond */

/* SRW locks and condition variables hold no kernel resources.  Init cannot
 * fail and destroy has nothing to free.  An SRW lock must not be locked
 * twice by the same thread; the POSIX default mutex has the same rule. */

int mc_mutex_init(mc_mutex_t *m)
{
    InitializeSRWLock(m);
    return 0;
}

void mc_mutex_destroy(mc_mutex_t *m)
{
    (void)m;
}

void mc_mutex_lock(mc_mutex_t *m)
{
    AcquireSRWLockExclusive(m);
}

void mc_mutex_unlock(mc_mutex_t *m)
{
    ReleaseSRWLockExclusive(m);
}

int mc_cond_init(mc_cond_t *c)
{
    InitializeConditionVariable(c);
    return 0;
}

void mc_cond_destroy(mc_cond_t *c)
{
    (void)c;
}

void mc_cond_wait(mc_cond_t *c, mc_mutex_t *m)
{
    /* With INFINITE, a FALSE return cannot happen for valid objects.
     * Callers re-check their predicate in a loop, so it would look like a
     * spurious wake-up. */
    (void)SleepConditionVariableSRW(c, m, INFINITE, 0);
}

void mc_cond_timedwait_ms(mc_cond_t *c, mc_mutex_t *m, unsigned ms)
{
    DWORD timeout = (DWORD)ms;
    if (timeout == INFINITE)   /* UINT_MAX would mean "forever" */
        timeout = INFINITE - 1;
    /* FALSE with ERROR_TIMEOUT is the expected timeout result.  The lock is
     * held again on return either way. */
    (void)SleepConditionVariableSRW(c, m, timeout, 0);
}

void mc_cond_signal(mc_cond_t *c)
{
    WakeConditionVariable(c);
}

void mc_cond_broadcast(mc_cond_t *c)
{
    WakeAllConditionVariable(c);
}

/* ------------------------------------------------------------------- queries */

void *mc_aligned_alloc(size_t align, size_t size)
{
    /* The CRT's free() cannot release over-aligned memory: pair with
     * _aligned_free in mc_aligned_free. */
    return _aligned_malloc(size, align);
}

void mc_aligned_free(void *p)
{
    _aligned_free(p);
}

unsigned mc_platform_cpu_count(void)
{
    /* Active logical processors in all processor groups (machines with more
     * than 64 CPUs).  Windows 10 and earlier keep a new thread in its
     * process's primary group, so a big pool may share one group's CPUs.
     * The count is still the right pool size as on POSIX. */
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    if (n == 0) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        n = si.dwNumberOfProcessors;
    }
    if (n == 0)
        n = 1;
    if (n > (DWORD)UINT_MAX)
        n = (DWORD)UINT_MAX;
    return (unsigned)n;
}

uint64_t mc_platform_thread_id(void)
{
    return (uint64_t)GetCurrentThreadId();
}

int mc_platform_current_cpu(void)
{
    /* Turn (group, number) into one index: the number plus the active
     * processors in all lower groups.  With one group (the usual case) this
     * is the same as GetCurrentProcessorNumber(). */
    PROCESSOR_NUMBER pn;
    unsigned base = 0;
    WORD g;

    GetCurrentProcessorNumberEx(&pn);
    for (g = 0; g < pn.Group; g++)
        base += (unsigned)GetActiveProcessorCount(g);
    if (base + pn.Number > (unsigned)INT_MAX)
        return -1;
    return (int)(base + pn.Number);
}

double mc_now_s(void)
{
    /* QPC is monotonic.  Since Windows XP the frequency is fixed at boot, so
     * querying it on every call is cheap and needs no static
     * initialisation.  The count is split into whole seconds plus a
     * remainder so a large counter does not lose precision when converted
     * to double. */
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)(c.QuadPart / f.QuadPart)
         + (double)(c.QuadPart % f.QuadPart) / (double)f.QuadPart;
}

void mc_cpu_relax(void)
{
    YieldProcessor();   /* PAUSE on x86/x64, YIELD on ARM64 */
}

unsigned mc_fork_generation(void)
{
    return 0;   /* Windows has no fork(), so pools never go stale */
}

#else /* !_WIN32 */

/* ISO C does not allow an empty translation unit (-Wpedantic warns).  A
 * typedef emits no symbols, so the object file stays empty. */
typedef int mc_platform_win32_empty_tu;

#endif /* _WIN32 */
