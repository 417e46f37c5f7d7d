"""Limiter (threads) and AsyncLimiter (asyncio): the BoundedSemaphore contract, limits under stress."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from manycore.patterns import AsyncLimiter, Gate, Limiter

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)

JOIN_S = 20.0
R = TypeVar("R")


def run(coro: Coroutine[Any, Any, R]) -> R:
    """asyncio.run with a hang guard."""

    async def guarded() -> R:
        return await asyncio.wait_for(coro, JOIN_S)

    return asyncio.run(guarded())


def wait_until(pred: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + JOIN_S
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


# --- threading: the same tests on threading.BoundedSemaphore and Limiter --------------

FACTORIES = [
    pytest.param(threading.BoundedSemaphore, id="BoundedSemaphore"),
    pytest.param(Limiter, id="Limiter"),
]


@pytest.fixture(params=FACTORIES)
def make(request: pytest.FixtureRequest) -> Callable[[int], Any]:
    factory = request.param
    return lambda n: factory(n)


def test_acquire_until_exhausted(make: Callable[[int], Any]) -> None:
    s = make(2)
    assert s.acquire() is True
    assert s.acquire(blocking=False) is True
    assert s.acquire(blocking=False) is False
    assert s.acquire(timeout=0.02) is False
    assert s.acquire(timeout=0) is False
    s.release()
    assert s.acquire(timeout=0) is True


def test_over_release_is_value_error(make: Callable[[int], Any]) -> None:
    s = make(2)
    with pytest.raises(ValueError, match="released too many times"):
        s.release()
    s.acquire()
    s.release()
    with pytest.raises(ValueError, match="released too many times"):
        s.release()
    assert s.acquire(blocking=False)
    assert s.acquire(blocking=False)
    assert not s.acquire(blocking=False)


def test_timeout_with_nonblocking_is_value_error(make: Callable[[int], Any]) -> None:
    s = make(1)
    with pytest.raises(ValueError, match="non-blocking"):
        s.acquire(blocking=False, timeout=1)


def test_negative_timeout_acts_as_zero(make: Callable[[int], Any]) -> None:
    s = make(1)
    assert s.acquire(timeout=-1) is True
    assert s.acquire(timeout=-1) is False


def test_context_manager_releases_on_exception(make: Callable[[int], Any]) -> None:
    s = make(1)
    with pytest.raises(KeyError), s:
        raise KeyError("x")
    assert s.acquire(blocking=False)


def test_blocked_acquire_is_woken_by_release(make: Callable[[int], Any]) -> None:
    s = make(1)
    s.acquire()
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(s.acquire(timeout=JOIN_S)), daemon=True)
    t.start()
    time.sleep(0.01)
    s.release()
    t.join(JOIN_S)
    assert got == [True]


# --- Limiter only ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Limiter, AsyncLimiter])
def test_limit_validation(cls: Any) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit"):
            cls(bad)
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match="limit"):
            cls(bad)


def test_limiter_reaches_and_never_exceeds_its_limit() -> None:
    limit, n = 3, 9
    lim = Limiter(limit)
    gate = Gate()
    inside = 0
    over = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, over
        with lim:
            with lock:
                inside += 1
                over += inside > limit
            gate.wait(JOIN_S)
            with lock:
                inside -= 1

    ts = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    wait_until(lambda: lim.active == limit, "the limiter to fill")
    time.sleep(0.02)  # the other six stay out: nothing could be let in while full
    assert lim.active == limit
    assert inside == limit
    gate.open()
    for t in ts:
        t.join(JOIN_S)
        assert not t.is_alive()
    assert over == 0
    assert lim.peak == limit
    assert lim.active == 0


def test_limiter_stress_with_random_delays() -> None:
    limit = 4
    lim = Limiter(limit)
    calls = 0
    lock = threading.Lock()
    concurrent = 0
    worst = 0

    @lim
    def guarded(x: int) -> int:
        """doc kept"""
        nonlocal calls, concurrent, worst
        with lock:
            concurrent += 1
            worst = max(worst, concurrent)
            calls += 1
        time.sleep(random.random() * 0.002)
        with lock:
            concurrent -= 1
        return x * 2

    results: list[int] = []

    def worker(k: int) -> None:
        for i in range(25):
            results.append(guarded(k * 100 + i))

    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(JOIN_S)
        assert not t.is_alive()
    assert calls == 16 * 25
    assert sorted(results) == sorted(2 * (k * 100 + i) for k in range(16) for i in range(25))
    assert worst <= limit
    assert lim.peak <= limit
    assert guarded.__name__ == "guarded"
    assert guarded.__doc__ == "doc kept"


def test_limiter_decorator_rejects_coroutines() -> None:
    async def f() -> None:
        pass

    with pytest.raises(TypeError, match="AsyncLimiter"):
        Limiter(1)(f)


def test_limiter_repr_and_failed_release_keeps_counts() -> None:
    lim = Limiter(2)
    with lim:
        assert lim.active == 1
        assert "1/2" in repr(lim)
    with pytest.raises(ValueError, match="released too many times"):
        lim.release()
    assert lim.active == 0
    assert lim.limit == 2


# --- asyncio: the same contract ---------------------------------------------------------


def test_async_acquire_until_exhausted() -> None:
    async def main() -> None:
        s = AsyncLimiter(2)
        assert await s.acquire() is True
        assert await s.acquire(blocking=False) is True
        assert await s.acquire(blocking=False) is False
        assert await s.acquire(timeout=0.02) is False
        assert await s.acquire(timeout=0) is False
        assert s.active == 2
        s.release()
        assert await s.acquire(timeout=0) is True
        with pytest.raises(ValueError, match="non-blocking"):
            await s.acquire(blocking=False, timeout=1)
        assert await s.acquire(timeout=-1) is False  # negative acts as zero, as in threading

    run(main())


def test_async_over_release_is_value_error() -> None:
    async def main() -> None:
        s = AsyncLimiter(1)
        with pytest.raises(ValueError, match="released too many times"):
            s.release()
        async with s:
            assert s.active == 1
        with pytest.raises(ValueError, match="released too many times"):
            s.release()
        assert s.active == 0
        assert await s.acquire(blocking=False)

    run(main())


def test_async_limit_reached_never_exceeded_and_decorator() -> None:
    limit = 3

    async def main() -> None:
        lim = AsyncLimiter(limit)
        inside = 0
        worst = 0
        release = asyncio.Event()

        @lim
        async def job(i: int) -> int:
            """doc kept"""
            nonlocal inside, worst
            inside += 1
            worst = max(worst, inside)
            if i < limit:
                await release.wait()  # the first `limit` jobs hold their slots
            else:
                await asyncio.sleep(random.random() * 0.002)
            inside -= 1
            return i

        tasks = [asyncio.create_task(job(i)) for i in range(20)]
        while lim.active < limit:
            await asyncio.sleep(0)
        for _ in range(50):  # the others are parked while the first three hold the slots
            await asyncio.sleep(0)
        assert inside == limit
        release.set()
        assert sorted(await asyncio.gather(*tasks)) == list(range(20))
        assert worst == limit == lim.peak
        assert lim.active == 0
        assert job.__name__ == "job"
        assert job.__doc__ == "doc kept"

    run(main())


def test_async_cancelled_waiters_hold_no_slot() -> None:
    async def main() -> None:
        lim = AsyncLimiter(1)
        await lim.acquire()
        waiters = [asyncio.create_task(lim.acquire()) for _ in range(3)]
        timed = [asyncio.create_task(lim.acquire(timeout=JOIN_S)) for _ in range(3)]
        await asyncio.sleep(0.01)
        for t in waiters + timed:
            t.cancel()
        await asyncio.gather(*waiters, *timed, return_exceptions=True)
        lim.release()
        assert lim.active == 0
        assert await lim.acquire(blocking=False)  # the slot is free: no cancelled waiter took it
        lim.release()

    run(main())


def test_async_timeouts_do_not_leak_slots() -> None:
    async def main() -> None:
        lim = AsyncLimiter(2)
        for _ in range(200):
            got = await lim.acquire(timeout=0)
            if got:
                lim.release()
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert await lim.acquire(blocking=False)
        assert await lim.acquire(blocking=False)
        assert not await lim.acquire(blocking=False)
        lim.release()
        lim.release()

    run(main())


def test_async_timeout_then_release_wakes_the_next_waiter() -> None:
    async def main() -> None:
        lim = AsyncLimiter(1)
        await lim.acquire()
        assert await lim.acquire(timeout=0.01) is False
        later = asyncio.create_task(lim.acquire(timeout=JOIN_S))
        await asyncio.sleep(0.01)
        lim.release()
        assert await later is True
        assert lim.active == 1
        lim.release()

    run(main())


def test_async_decorator_rejects_plain_functions() -> None:
    with pytest.raises(TypeError, match="coroutine"):
        AsyncLimiter(1)(lambda: None)  # type: ignore[arg-type]


def test_async_limiter_repr() -> None:
    assert "0/4" in repr(AsyncLimiter(4))
