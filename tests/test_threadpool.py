"""The thread pool behind ThreadExecutor and AsyncExecutor's plain calls (manycore.executors._threadpool).

Its thread accounting decides whether a call starts a thread.  A call queued by
a pool thread while it finishes its own call (a done-callback runs there) must
not leave a stale "idle" count behind: an urgent call (``beyond_limit``, a
worker waits for it) would then wait behind the very call waiting for it.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any

from manycore.executors._threadpool import ThreadPool

WAIT_S = 30.0


def _pool_threads(pool: ThreadPool) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(pool.prefix)]


def test_an_urgent_call_gets_a_thread_after_the_only_one_took_its_next_call_from_a_callback() -> None:
    pool = ThreadPool(1, thread_name_prefix="tp-urgent")
    gate = threading.Event()
    second: list[cf.Future[Any]] = []

    def waits_for_an_urgent_call() -> bool:
        urgent = pool.submit(lambda: "urgent", (), {}, beyond_limit=True)
        done, _ = cf.wait([urgent], timeout=WAIT_S)  # wait() does not run it inline
        return urgent in done

    try:
        first = pool.submit(gate.wait, (WAIT_S,), {})
        # runs on the pool's thread as the first call ends, before that thread counts itself free
        appended = threading.Event()

        def submit_second(_: object) -> None:
            second.append(pool.submit(waits_for_an_urgent_call, (), {}))
            appended.set()

        first.add_done_callback(submit_second)
        gate.set()
        assert first.result(timeout=WAIT_S) is True
        assert appended.wait(WAIT_S)  # callbacks run after result() waiters are woken
        assert len(second) == 1
        assert second[0].result(timeout=2 * WAIT_S) is True, "the urgent call never got a thread"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    assert not _pool_threads(pool)


def test_threads_start_only_for_calls_no_free_thread_takes() -> None:
    pool = ThreadPool(4, thread_name_prefix="tp-count")
    try:
        for _ in range(50):  # one at a time (a thread may not count itself free yet: a second may start)
            assert pool.submit(lambda: 1, (), {}).result(timeout=WAIT_S) == 1
        assert 1 <= len(_pool_threads(pool)) <= 4
        gate = threading.Event()
        held = [pool.submit(gate.wait, (WAIT_S,), {}) for _ in range(6)]
        assert len(_pool_threads(pool)) == 4  # the limit, not one per call
        gate.set()
        assert all(f.result(timeout=WAIT_S) for f in held)
        # an urgent call beyond the limit gets its own thread; the pool shrinks back after it
        gate.clear()
        busy = [pool.submit(gate.wait, (WAIT_S,), {}) for _ in range(4)]
        extra = pool.submit(lambda: "extra", (), {}, beyond_limit=True)
        assert extra.result(timeout=WAIT_S) == "extra"
        gate.set()
        assert all(f.result(timeout=WAIT_S) for f in busy)
        for _ in range(50):
            pool.submit(lambda: 1, (), {}).result(timeout=WAIT_S)
        assert len(_pool_threads(pool)) <= 4
    finally:
        pool.shutdown(wait=True, cancel_futures=False)
    assert not _pool_threads(pool)
