"""manycore.fetch pieces that need no server: retry policy, Retry-After, summaries, records, the
attempt timer."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from email.utils import formatdate

import aiohttp
import pytest

from fetch_servers import leak_check
from manycore.fetch import FetchError, FetchResult, summarize
from manycore.fetch.fetcher import _AttemptTimer
from manycore.fetch.retry import RETRY_STATUSES, backoff_delay, is_retryable_status, parse_retry_after


def test_retryable_statuses() -> None:
    assert is_retryable_status(429)
    assert all(is_retryable_status(s) for s in (500, 502, 503, 504, 599))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 409, 410, 418, 422, 451))
    assert min(RETRY_STATUSES) == 429
    assert max(RETRY_STATUSES) == 599


@pytest.mark.parametrize("retry", [1, 2, 3, 4, 5, 9])
def test_backoff_is_exponential_with_equal_jitter_and_capped(retry: int) -> None:
    rng = random.Random(retry)
    ceiling = min(2.0, 0.1 * 2 ** (retry - 1))
    delays = [backoff_delay(retry, 0.1, 2.0, rng) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 100  # jittered, not a constant


def test_backoff_rejects_retry_zero_and_survives_huge_counts() -> None:
    with pytest.raises(ValueError, match="retry"):
        backoff_delay(0, 0.1, 1.0, random.Random())
    assert backoff_delay(10_000, 0.1, 1.0, random.Random()) <= 1.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", now=now) == 0.0  # naive date: read as UTC


def _result(ok: bool, attempts: int, elapsed_s: float, kind: str | None = None) -> FetchResult:
    error = None if kind is None else FetchError(kind, "x")  # type: ignore[arg-type]
    return FetchResult("http://h/", ok, 200 if ok else None, None, error, attempts, elapsed_s)


def test_summarize_counts_and_percentiles() -> None:
    results = [_result(True, 1, (i + 1) / 100) for i in range(18)]
    results += [_result(False, 4, 1.0, "timeout"), _result(False, 0, 0.0, "deadline")]
    s = summarize(results, wall_s=2.0)
    assert (s.total, s.ok, s.failed, s.retried, s.requests) == (20, 18, 2, 1, 22)
    assert s.errors == {"timeout": 1, "deadline": 1}
    # 19 latencies (the never-started URL has none): 0.01..0.18 and 1.0; nearest rank
    assert s.p50_s == pytest.approx(0.10)  # rank ceil(9.5) = 10
    assert s.p95_s == 1.0  # rank ceil(18.05) = 19
    assert s.max_s == 1.0
    assert s.urls_per_s == 10.0
    assert s.requests_per_s == 11.0


def test_summarize_nothing() -> None:
    s = summarize([], wall_s=0.0)
    assert (s.total, s.p50_s, s.p95_s, s.max_s, s.errors) == (0, 0.0, 0.0, 0.0, {})


def test_records() -> None:
    error = FetchError("deadline", "deadline_s=1 passed")
    assert str(error) == "deadline: deadline_s=1 passed"
    assert error.is_timeout
    assert not FetchError("http", "HTTP 404").is_timeout
    assert _result(True, 2, 0.1).retried
    assert not _result(True, 1, 0.1).retried
    with pytest.raises(AttributeError):
        error.kind = "http"  # type: ignore[misc]


# -- the leak checker the other fetch tests rely on -------------------------------------------


def _leak_a_socket() -> socket.socket:
    return socket.socket()


def _leak_a_session() -> None:
    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(open_session())
    loop.close()
    del session  # never closed: aiohttp complains when it is collected


def test_leak_check_catches_fds_and_unclosed_sessions() -> None:
    with pytest.raises(AssertionError, match="file descriptors"), leak_check(settle_s=0.1):
        leaked = _leak_a_socket()
    leaked.close()
    with pytest.raises(AssertionError, match="Unclosed client session"), leak_check(settle_s=0.1):
        _leak_a_session()


async def _one_attempt(budget_s: float, work_s: float, cancel_from_outside: bool = False) -> str:
    """One attempt under an _AttemptTimer, the way the fetcher runs it: how did it end?"""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    timer = _AttemptTimer(loop, task)
    when = loop.time() + budget_s
    try:
        timer.start(when)
        if cancel_from_outside:
            loop.call_at(when, task.cancel)  # due in the same loop pass as the timer
        try:
            try:
                await asyncio.sleep(work_s)
            finally:
                timed_out = timer.stop()
        except asyncio.CancelledError:
            return "timeout" if timed_out else "cancelled"
        await asyncio.sleep(budget_s + 0.05)  # the timer, still armed, comes and must do nothing
        return "done"
    finally:
        timer.close()


def test_attempt_timer_times_out_only_the_attempt_it_covers() -> None:
    assert asyncio.run(_one_attempt(0.05, 5.0)) == "timeout"
    assert asyncio.run(_one_attempt(0.05, 0.0)) == "done"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel() is new in Python 3.11")
def test_attempt_timer_lets_a_cancellation_from_outside_through() -> None:
    assert asyncio.run(_one_attempt(0.05, 5.0, cancel_from_outside=True)) == "cancelled"
