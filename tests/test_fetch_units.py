"""manycore.fetch pieces that need no server: retry policy, Retry-After, summaries, records, the
attempt timer."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import typing
from email.utils import formatdate

import aiohttp
import pytest
from yarl import URL

from fetch_servers import leak_check
from manycore.fetch import ERROR_KINDS, ErrorKind, FetchError, FetchResult, summarize
from manycore.fetch.fetcher import _AttemptTimer, _check_urls, _classify, _parse_url
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


def test_summarize_counts_invalid_urls_first() -> None:
    results = [_result(False, 0, 0.0, "connection"), _result(False, 0, 0.0, "invalid_url")]
    results.append(_result(False, 0, 0.0, "invalid_url"))
    s = summarize(results, wall_s=1.0)
    assert list(s.errors.items()) == [("invalid_url", 2), ("connection", 1)]
    assert (s.requests, s.p50_s, s.max_s) == (0, 0.0, 0.0)  # no request: no latency either


def test_error_kinds_list_every_kind_once() -> None:
    assert set(ERROR_KINDS) == set(typing.get_args(ErrorKind))
    assert len(ERROR_KINDS) == len(set(ERROR_KINDS))
    assert "invalid_url" in ERROR_KINDS
    assert not FetchError("invalid_url", "x").is_timeout


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


# -- which URLs are invalid -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty URL"),
        (" \t ", "blank URL (only whitespace)"),
        ("http://h/x ", "leading or trailing whitespace"),
        ("\thttp://h/x", "leading or trailing whitespace"),
        ("http://h\n/x", "control character '\\n' at position 8"),
        ("http://h/\x7f", "control character '\\x7f' at position 9"),
        ("http://h/\x1b[31m", "control character '\\x1b' at position 9"),
        ("http://h:notaport/x", "cannot be parsed: port can't be converted to integer"),
        ("http://h:65536/x", "cannot be parsed: Port out of range 0-65535"),
        ("http://[::1/x", "cannot be parsed: Invalid IPv6 URL"),
        ("http://user@/x", "cannot be parsed: host is required for absolute urls with the http scheme"),
        ("example.com/x", "no scheme: an absolute http:// or https:// URL is needed"),
        ("//example.com/x", "no scheme: an absolute http:// or https:// URL is needed"),
        ("/todos/1", "no scheme: an absolute http:// or https:// URL is needed"),
        ("ftp://h/x", "unsupported scheme 'ftp': only absolute http:// and https:// URLs are fetched"),
        ("mailto:someone@example.com", "unsupported scheme 'mailto'"),
        ("localhost:8080/x", "unsupported scheme 'localhost'"),  # what it reads as
        ("http://", "no host"),
        ("https:///x", "no host"),
        ("http:/x", "no host"),
        ("http://exa mple.com/", "host 'exa mple.com' has characters a host name cannot have (' ')"),
        ("http://ex\u3000ample/", "host 'ex ample' has characters"),  # NFKC: a space
        ("http://h%20/", "host 'h%20' has characters a host name cannot have ('%')"),
        ("http://a!b*c/", "cannot have ('!', '*')"),
        ("http://a..b/", "host 'a..b' has an empty label"),
        ("http://.a/", "has an empty label"),
        ("http://" + "a" * 64 + ".com/", "has a label longer than 63 characters"),
        ("http://" + "a." * 127 + "ab/", "host name is 256 characters long, more than 253"),
        ("http://" + "é" * 100 + "/", "cannot be parsed"),  # yarl's IDNA encoding refuses it
        ("https://[:h[:80]é-: @", "cannot be parsed"),  # yarl raised IndexError here: still a record
    ],
)
def test_parse_url_says_what_is_wrong(text: str, problem: str) -> None:
    outcome = _parse_url(text)
    assert isinstance(outcome, str), outcome
    assert problem in outcome


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8080/x",
        "https://example.com",
        "HTTP://Example.COM/a?b=c#d",
        "http://example.com./x",  # fully qualified
        "http://my_host.internal/x",  # underscores occur in real host names
        "http://[::1]:8080/x",
        "http://[fe80::1%25eth0]/x",  # IPv6 with a zone
        "http://bücher.example/x",  # IDNA: xn--bcher-kva.example
        "http://example.com/a b?q=c d",  # spaces in path and query are sent as %20
        "https://user:pw@example.com:443/x",
        "http://" + "a" * 63 + ".com/",
    ],
)
def test_parse_url_accepts_valid_urls(text: str) -> None:
    outcome = _parse_url(text)
    assert isinstance(outcome, URL), outcome
    assert outcome.scheme in ("http", "https")


def test_check_urls_names_each_invalid_url_and_keeps_the_text() -> None:
    texts, parsed, invalid = _check_urls(["http://h/1", URL("http://h/2"), "ftp://h/3", ""])
    assert texts == ["http://h/1", "http://h/2", "ftp://h/3", ""]
    assert [u is None for u in parsed] == [False, False, True, True]
    assert invalid == {
        2: "'ftp://h/3' is not a valid URL: unsupported scheme 'ftp': only absolute http:// and https:// URLs are fetched",
        3: "'' is not a valid URL: empty URL",
    }
    long_url = "http://h:x/" + "y" * 1000
    message = _check_urls([long_url])[2][0]
    assert (
        message
        == f"{long_url[:200]!r}… is not a valid URL: cannot be parsed: port can't be converted to integer"
    )


@pytest.mark.skipif(
    not hasattr(aiohttp, "RedirectClientError"), reason="aiohttp >= 3.10 names redirect errors"
)
def test_classify_tells_a_bad_request_url_from_a_bad_redirect() -> None:
    refused = _classify(aiohttp.InvalidUrlClientError(URL("http://h/x")))
    assert (refused.error.kind, refused.retryable) == ("invalid_url", False)
    redirect = _classify(aiohttp.NonHttpUrlRedirectClientError(URL("ftp://h/x")))
    assert (redirect.error.kind, redirect.retryable) == ("http", False)
    bad_location = _classify(aiohttp.InvalidUrlRedirectClientError(URL("http://h/x"), "bad port"))
    assert (bad_location.error.kind, bad_location.retryable) == ("http", False)


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
