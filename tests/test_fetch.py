"""manycore.fetch against local fault servers: every failure is a per-URL record, deadlines hold,
order is kept, nothing leaks (fds, threads, warnings, asyncio logs)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

import fetch_servers
from fetch_servers import FaultServers, free_port, leak_check, start_resource_tracker
from manycore.fetch import FetchResult, afetch_all, fetch_all, process_data, summarize

pytestmark = pytest.mark.timeout(60)

# Hang guard: a call bounded by X seconds must be back within X + SLACK_S (not a performance bar).
# The failure it catches is a bound that does not hold: the calls then run into timeout_s=30.
# 1 s was too little on a loaded 2-core machine (free-threaded 3.13t beside another test run).
SLACK_S = 5.0


@pytest.fixture(scope="module")
def servers() -> Iterator[FaultServers]:
    srv = FaultServers()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module", autouse=True)
def _resource_tracker() -> None:
    start_resource_tracker()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    with leak_check():
        yield


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex


def timed(urls: list[str], **kwargs: Any) -> tuple[list[FetchResult], float]:
    start = time.monotonic()
    results = fetch_all(urls, **kwargs)
    return results, time.monotonic() - start


# -- success, order, parsing ------------------------------------------------------------------


def test_results_in_input_order_whatever_finishes_first(servers: FaultServers) -> None:
    urls = [
        servers.web("/slow?delay=0.4"),
        *(servers.web(f"/json/{n}") for n in range(1, 8)),
        servers.web("/slow?delay=0.2"),
        servers.web("/json/1"),  # duplicates are fetched and reported separately
    ]
    results = fetch_all(urls, concurrency=4)
    assert [r.url for r in results] == urls
    assert all(r.ok and r.status == 200 and r.error is None and r.attempts == 1 for r in results)
    assert results[0].data == {"slept": 0.4}
    assert [r.data["n"] for r in results[1:8]] == list(range(1, 8))
    assert results[-1].data == {"n": 1}
    assert all(r.elapsed_s >= 0 for r in results)


def test_no_urls_returns_empty_list() -> None:
    assert fetch_all([]) == []
    assert asyncio.run(afetch_all(iter(()))) == []


def test_parse_modes(servers: FaultServers) -> None:
    (text,) = fetch_all([servers.web("/text")], parse="text")
    assert text.ok
    assert text.data == "héllo wörld"
    (latin1,) = fetch_all([servers.web("/latin1")], parse="text")
    assert latin1.ok
    assert latin1.data == "héllo"
    (raw,) = fetch_all([servers.web("/bytes")], parse="bytes")
    assert raw.ok
    assert raw.data == bytes(range(256))
    # JSON is parsed whatever the Content-Type says (the seed's response.json() would raise).
    (html,) = fetch_all([servers.web("/html-json")])
    assert html.ok
    assert html.data == {"a": 1}


def test_undecodable_text_is_a_parse_error(servers: FaultServers) -> None:
    (r,) = fetch_all([servers.web("/bad-utf8")], parse="text")
    assert not r.ok
    assert r.status == 200
    assert r.error is not None
    assert r.error.kind == "parse"
    assert "UnicodeDecodeError" in r.error.message
    assert r.attempts == 1


def test_invalid_json_is_a_parse_error_not_retried(servers: FaultServers, key: str) -> None:
    good, bad = fetch_all([servers.web("/json/5"), servers.web(f"/invalid-json?key={key}")], retries=3)
    assert good.ok
    assert good.data == {"n": 5}
    assert not bad.ok
    assert bad.status == 200
    assert bad.data is None
    assert bad.error is not None
    assert bad.error.kind == "parse"
    assert "invalid JSON" in bad.error.message
    assert bad.attempts == 1
    assert servers.hits(key)["hits"] == 1


def test_redirects_are_followed_and_loops_are_http_errors(servers: FaultServers) -> None:
    ok, loop = fetch_all([servers.web("/redirect?to=/json/9"), servers.web("/redirect-loop")], retries=3)
    assert ok.ok
    assert ok.data == {"n": 9}
    assert not loop.ok
    assert loop.error is not None
    assert loop.error.kind == "http"
    assert "TooManyRedirects" in loop.error.message
    assert loop.attempts == 1


# -- max_bytes --------------------------------------------------------------------------------


def test_bodies_over_max_bytes(servers: FaultServers, key: str) -> None:
    limit = 1024 * 1024
    big = 8 * 1024 * 1024
    urls = [
        servers.web(f"/huge?size={big}&key={key}"),  # Content-Length says too big: not even read
        servers.web(f"/huge-chunked?size={big}"),  # no Content-Length: counted while reading
        servers.web(f"/gzip-bomb?size={big}"),  # 8 KiB on the wire, 8 MiB decompressed
        servers.web(f"/huge?size={limit}"),  # exactly the limit is fine
        servers.web(f"/gzip-bomb?size={limit // 2}"),  # decompressed under the limit is fine
    ]
    results = fetch_all(urls, parse="bytes", max_bytes=limit, retries=2)
    for r in results[:3]:
        assert not r.ok
        assert r.data is None
        assert r.status == 200
        assert r.error is not None, r
        assert r.error.kind == "too_large", r
        assert f"max_bytes={limit}" in r.error.message
        assert r.attempts == 1
    assert "Content-Length" in results[0].error.message  # type: ignore[union-attr]
    assert servers.hits(key)["hits"] == 1
    assert results[3].ok
    assert len(results[3].data) == limit
    assert results[4].ok
    assert results[4].data == b"\0" * (limit // 2)
    (unlimited,) = fetch_all([servers.web(f"/huge?size={big}")], parse="bytes", max_bytes=None)
    assert unlimited.ok
    assert len(unlimited.data) == big


# -- connection-level failures ----------------------------------------------------------------


def test_connection_refused_is_retried_then_recorded(servers: FaultServers) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    good, bad = fetch_all([servers.web("/json/1"), url], retries=2, backoff_s=0.01)
    assert good.ok
    assert not bad.ok
    assert bad.status is None
    assert bad.data is None
    assert bad.attempts == 3
    assert bad.error is not None
    assert bad.error.kind == "connection"
    assert "ClientConnectorError" in bad.error.message


def test_dns_failure_is_a_connection_error() -> None:
    (r,) = fetch_all(["http://no-such-host.invalid/todos/1"], retries=0, timeout_s=10)
    assert not r.ok
    assert r.status is None
    assert r.attempts == 1
    assert r.error is not None
    assert r.error.kind == "connection"


@pytest.mark.parametrize(
    ("server", "exception"),
    [
        ("reset", "ClientPayloadError"),  # RST after 1000 of 100000 promised bytes
        ("close", "ServerDisconnectedError"),  # closed without a response
        ("garbage", "ClientResponseError"),  # not HTTP at all
    ],
)
def test_broken_connections_are_retried_then_recorded(
    servers: FaultServers, key: str, server: str, exception: str
) -> None:
    good, bad = fetch_all(
        [servers.web("/json/2"), servers.raw(server, f"/todos/1?key={key}")], retries=2, backoff_s=0.01
    )
    assert good.ok
    assert good.data == {"n": 2}
    assert not bad.ok
    assert bad.data is None
    assert bad.error is not None, bad
    assert bad.error.kind == "connection", bad
    assert exception in bad.error.message
    assert bad.attempts == 3
    # aiohttp itself re-sends an idempotent request once when the connection drops before a
    # response (RFC 9112 section 9.3.1): the server may see up to two requests per attempt.
    assert 3 <= servers.hits(key)["hits"] <= 6


# -- HTTP errors and retries ------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503])
def test_5xx_then_200_succeeds_after_retries(servers: FaultServers, key: str, code: int) -> None:
    (r,) = fetch_all([servers.web(f"/flaky?key={key}&fails=2&code={code}")], retries=3, backoff_s=0.01)
    assert r.ok
    assert r.status == 200
    assert r.error is None
    assert r.data == {"key": key, "hits": 3}
    assert r.attempts == 3
    assert r.retried


def test_5xx_gives_up_after_retries(servers: FaultServers, key: str) -> None:
    (r,) = fetch_all([servers.web(f"/flaky?key={key}&fails=99&code=503")], retries=2, backoff_s=0.01)
    assert not r.ok
    assert r.status == 503
    assert r.data is None
    assert r.error is not None
    assert r.error.kind == "http"
    assert r.error.message.startswith("HTTP 503 Service Unavailable")
    assert '"error": "flaky"' in r.error.message  # a small error body is quoted
    assert r.attempts == 3
    assert servers.hits(key)["hits"] == 3


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 422])
def test_4xx_other_than_429_is_never_retried(servers: FaultServers, key: str, code: int) -> None:
    (r,) = fetch_all([servers.web(f"/status/{code}?key={key}")], retries=5, backoff_s=0.01)
    assert not r.ok
    assert r.status == code
    assert r.attempts == 1
    assert r.error is not None
    assert r.error.kind == "http"
    assert r.error.message.startswith(f"HTTP {code}")
    assert servers.hits(key)["hits"] == 1


def test_429_honours_retry_after(servers: FaultServers, key: str) -> None:
    (r,) = fetch_all(
        [servers.web(f"/flaky?key={key}&fails=1&code=429&retry_after=1")], retries=3, backoff_s=0.01
    )
    assert r.ok
    assert r.attempts == 2
    assert r.data == {"key": key, "hits": 2}
    first, second = servers.hits(key)["times"]
    # Retry-After: 1 replaced the 10 ms backoff (a correctness bound: waited at least as asked).
    assert second - first >= 0.95


def test_retry_after_beyond_max_backoff_is_not_waited_for(servers: FaultServers, key: str) -> None:
    urls = [servers.web(f"/flaky?key={key}&fails=1&code=429&retry_after=3600")]
    (r,), wall = timed(urls, retries=3, max_backoff_s=30)
    assert not r.ok
    assert r.status == 429
    assert r.attempts == 1
    assert r.error is not None
    assert r.error.kind == "http"
    assert "Retry-After 3600 s exceeds max_backoff_s=30" in r.error.message
    assert wall < SLACK_S + 1.0


def test_backoff_that_would_pass_the_deadline_is_not_taken(servers: FaultServers, key: str) -> None:
    urls = [servers.web(f"/flaky?key={key}&fails=9&code=503&retry_after=5")]
    (r,), wall = timed(urls, retries=5, deadline_s=2.0)
    assert not r.ok
    assert r.status == 503
    assert r.attempts == 1
    assert r.error is not None
    assert r.error.kind == "http"
    assert "deadline_s=2 would pass" in r.error.message
    assert wall < 2.0  # returned at once instead of sleeping into the deadline


# -- timeouts and deadlines -------------------------------------------------------------------


def test_timeout_bounds_a_drip_feeding_server(servers: FaultServers) -> None:
    # Headers at once, then one body byte per second: per-read timeouts would never fire.
    urls = [servers.web("/drip?bytes=100&interval=1"), servers.web("/json/3")]
    (drip, good), wall = timed(urls, timeout_s=1.0, retries=0)
    assert good.ok
    assert not drip.ok
    assert drip.status == 200
    assert drip.attempts == 1
    assert drip.error is not None
    assert drip.error.kind == "timeout"
    assert drip.error.is_timeout
    assert "timeout_s=1" in drip.error.message
    assert 1.0 <= drip.elapsed_s < 1.0 + SLACK_S
    assert wall < 1.0 + SLACK_S


@pytest.mark.parametrize("server", ["hang", "slow_headers"])
def test_timeout_bounds_hanging_headers_and_is_retried(servers: FaultServers, key: str, server: str) -> None:
    urls = [servers.raw(server, f"/todos/1?key={key}")]
    (r,), wall = timed(urls, timeout_s=0.5, retries=1, backoff_s=0.01)
    assert not r.ok
    assert r.status is None
    assert r.attempts == 2
    assert r.error is not None
    assert r.error.kind == "timeout"
    assert wall < 2 * 0.5 + SLACK_S
    assert servers.hits(key)["hits"] == 2


def test_timeout_counts_from_each_attempts_own_start(servers: FaultServers) -> None:
    # One worker: its timer was first armed for the fast URL's attempt, which expired long before
    # the hanging one began. The hanging attempt still gets its full timeout_s, no more, no less.
    urls = [servers.web("/json/1"), servers.web("/slow?delay=0.6"), servers.raw("hang", "/todos/1")]
    (fast, slow, hung), wall = timed(urls, concurrency=1, timeout_s=1.0, retries=0)
    assert fast.ok
    assert slow.ok
    assert hung.error is not None
    assert hung.error.kind == "timeout"
    assert 1.0 <= hung.elapsed_s < 1.0 + SLACK_S
    assert wall < 0.6 + 1.0 + SLACK_S


def test_a_timed_out_attempt_leaves_the_worker_fit_for_the_next_url(servers: FaultServers) -> None:
    urls = [
        servers.raw("hang", "/todos/1"),
        servers.web("/json/1"),
        servers.web("/drip?bytes=100&interval=1"),
        servers.web("/json/2"),
    ]
    results, wall = timed(urls, concurrency=1, timeout_s=0.5, retries=0)
    outcomes = [r.error.kind if r.error else r.data for r in results]
    assert outcomes == ["timeout", {"n": 1}, "timeout", {"n": 2}]
    assert wall < 2 * 0.5 + SLACK_S


def test_afetch_all_leaves_no_timers_in_the_callers_loop(servers: FaultServers) -> None:
    async def main() -> list[asyncio.TimerHandle]:
        urls = [servers.web(f"/json/{n}") for n in range(20)]
        results = await afetch_all(urls, concurrency=5, timeout_s=60)
        assert all(r.ok for r in results)
        loop = asyncio.get_running_loop()
        # Private, but the only way to see them: a forgotten 60 s attempt timer would sit here.
        scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
        return [h for h in scheduled if not h.cancelled()]

    assert asyncio.run(main()) == []


def test_deadline_returns_on_time_and_keeps_finished_results(servers: FaultServers, key: str) -> None:
    fast = [servers.web(f"/json/{n}") for n in range(3)]
    stuck = [servers.raw("hang", f"/x?key={key}"), servers.web("/drip?bytes=50&interval=1")]
    (*done, hung, drip), wall = timed(fast + stuck, timeout_s=30, retries=3, deadline_s=1.0)
    assert wall < 1.0 + SLACK_S
    assert [r.data for r in done] == [{"n": 0}, {"n": 1}, {"n": 2}]
    for r in (hung, drip):
        assert not r.ok
        assert r.data is None
        assert r.attempts == 1
        assert r.error is not None
        assert r.error.kind == "deadline"
        assert r.error.is_timeout
        assert "deadline_s=1 passed" in r.error.message
        assert r.elapsed_s < 1.0 + SLACK_S
    assert hung.status is None
    assert drip.status == 200


def test_deadline_records_urls_that_never_started(servers: FaultServers, key: str) -> None:
    urls = [servers.raw("hang", f"/{i}?key={key}") for i in range(5)]
    results, wall = timed(urls, concurrency=2, timeout_s=30, deadline_s=0.5)
    assert wall < 0.5 + SLACK_S
    assert [r.attempts for r in results] == [1, 1, 0, 0, 0]
    assert all(r.error is not None and r.error.kind == "deadline" for r in results)
    assert all("before this URL was started" in r.error.message for r in results[2:])  # type: ignore[union-attr]
    assert servers.hits(key)["hits"] == 2


def test_deadline_during_processing_keeps_the_fetched_body(servers: FaultServers) -> None:
    async def slow_process(data: Any) -> Any:
        await asyncio.sleep(30)
        return data

    (r,), wall = timed([servers.web("/json/4")], process=slow_process, deadline_s=0.5)
    assert wall < 0.5 + SLACK_S
    assert not r.ok
    assert r.status == 200
    assert r.attempts == 1
    assert r.data == {"n": 4}
    assert r.error is not None
    assert r.error.kind == "deadline"
    assert "during processing" in r.error.message


# -- limits -----------------------------------------------------------------------------------


def test_concurrency_and_per_host_limits_hold(servers: FaultServers) -> None:
    k1, k2 = uuid.uuid4().hex, uuid.uuid4().hex
    results = fetch_all([servers.web(f"/concurrent?key={k1}&delay=0.15")] * 8, concurrency=3)
    assert all(r.ok for r in results)
    assert servers.hits(k1)["max_inflight"] == 3
    results = fetch_all([servers.web(f"/concurrent?key={k2}&delay=0.15")] * 8, concurrency=50, per_host=2)
    assert all(r.ok for r in results)
    assert servers.hits(k2)["max_inflight"] == 2


def test_per_host_limit_does_not_block_other_hosts(servers: FaultServers, key: str) -> None:
    # One slot for the hanging host: its queue waits, the other host's URLs all finish.
    hang = [servers.raw("hang", f"/{i}?key={key}") for i in range(4)]
    good = [servers.web(f"/json/{n}") for n in range(6)]
    urls = [u for pair in zip(hang, good[:4], strict=True) for u in pair] + good[4:]
    results, wall = timed(urls, concurrency=4, per_host=1, timeout_s=30, deadline_s=1.0)
    assert wall < 1.0 + SLACK_S
    by_url = [(r.url, r.ok) for r in results]
    assert [ok for url, ok in by_url if url in good] == [True] * 6
    assert sorted(r.attempts for r in results if r.url in hang) == [0, 0, 0, 1]
    assert servers.hits(key)["hits"] == 1


# -- processing -------------------------------------------------------------------------------


def test_process_coroutine_runs_on_each_result(servers: FaultServers) -> None:
    async def upper(data: Any) -> Any:
        await asyncio.sleep(0.01)
        return {"n": data["n"], "twice": data["n"] * 2}

    results = fetch_all([servers.web(f"/json/{n}") for n in range(5)], process=upper)
    assert [r.data for r in results] == [{"n": n, "twice": 2 * n} for n in range(5)]


def test_process_plain_function_and_seed_process_data(servers: FaultServers) -> None:
    results = fetch_all([servers.web(f"/json/{n}") for n in range(3)], process=fetch_servers.double_n)
    assert [r.data for r in results] == [0, 2, 4]
    # The seed's process_data (a coroutine) works as is on todo-shaped data.
    assert asyncio.run(process_data({"id": 7, "title": "abc", "completed": False})) == {
        "id": 7,
        "title": "ABC",
    }


def test_process_failure_is_a_record_with_the_unprocessed_body(servers: FaultServers) -> None:
    results = fetch_all([servers.web(f"/json/{n}") for n in range(5)], process=fetch_servers.fail_on_three)
    assert [r.ok for r in results] == [True, True, True, False, True]
    bad = results[3]
    assert bad.data == {"n": 3}
    assert bad.status == 200
    assert bad.error is not None
    assert bad.error.kind == "process"
    assert bad.error.message == "ValueError: three is not allowed"


def test_process_in_a_thread_pool(servers: FaultServers) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = fetch_all(
            [servers.web(f"/json/{n}") for n in range(6)],
            process=fetch_servers.double_n,
            process_executor=pool,
        )
    assert [r.data for r in results] == [0, 2, 4, 6, 8, 10]


def test_process_in_a_process_pool(servers: FaultServers) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        urls = [servers.web(f"/json/{n}") for n in range(8)]
        burned = fetch_all(urls, process=fetch_servers.burn_cpu, process_executor=pool)
        failing = fetch_all(urls[:5], process=fetch_servers.fail_on_three, process_executor=pool)
        unpicklable = fetch_all(urls[:1], process=lambda d: d, process_executor=pool)
    assert [r.data for r in burned] == [fetch_servers.burn_cpu({"n": n}) for n in range(8)]
    assert [r.ok for r in failing] == [True, True, True, False, True]
    assert failing[3].error is not None
    assert failing[3].error.message == "ValueError: three is not allowed"
    assert not unpicklable[0].ok
    assert unpicklable[0].error is not None
    assert unpicklable[0].error.kind == "process"
    assert unpicklable[0].data == {"n": 0}


# -- callbacks, progress, event loops, cancellation -------------------------------------------


def test_on_result_sees_every_final_record_once(servers: FaultServers) -> None:
    seen: list[FetchResult] = []
    urls = [servers.web(f"/json/{n}") for n in range(5)] + [servers.web("/status/404")]
    results = fetch_all(urls, on_result=seen.append)
    assert sorted(seen, key=lambda r: urls.index(r.url)) == results


def test_on_result_exception_propagates_and_cleans_up(servers: FaultServers, key: str) -> None:
    def explode(result: FetchResult) -> None:
        raise LookupError("callback bug")

    urls = [servers.web("/json/1"), servers.raw("hang", f"/?key={key}")]
    with pytest.raises(LookupError, match="callback bug"):
        fetch_all(urls, on_result=explode, timeout_s=30)


def test_progress_bar_renders_to_stderr(servers: FaultServers, capsys: pytest.CaptureFixture[str]) -> None:
    results = fetch_all([servers.web(f"/json/{n}") for n in range(3)], progress=True)
    assert all(r.ok for r in results)
    assert "fetch" in capsys.readouterr().err


def test_afetch_all_shares_the_loop_with_other_tasks(servers: FaultServers) -> None:
    async def main() -> tuple[list[FetchResult], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        results = await afetch_all([servers.web("/slow?delay=0.3"), servers.web("/json/1")])
        tick_task.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert all(r.ok for r in results)
    assert ticks > 5  # the loop kept running other work while fetching


def test_fetch_all_inside_a_running_loop_is_refused(servers: FaultServers) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="afetch_all"):
            fetch_all([servers.web("/json/1")])

    asyncio.run(main())


def test_cancelling_afetch_all_closes_everything(servers: FaultServers, key: str) -> None:
    async def main() -> None:
        urls = [servers.raw("hang", f"/{i}?key={key}") for i in range(5)]
        task = asyncio.create_task(afetch_all(urls, timeout_s=30))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (await asyncio.to_thread(servers.hits, key))["hits"] == 5:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


CTRL_C_CHILD = textwrap.dedent(
    """
    import gc, os, sys, warnings
    warnings.simplefilter("always")
    from manycore.fetch import fetch_all

    def fds():
        return len(os.listdir("/proc/self/fd"))

    async def slow(data):
        import asyncio
        await asyncio.sleep(60)

    before = fds()
    try:
        fetch_all(sys.argv[1:], timeout_s=60, deadline_s=120, process=slow)
    except KeyboardInterrupt:
        gc.collect()
        print(f"interrupted fds {before} {fds()}", flush=True)
        sys.exit(0)
    print("not interrupted", flush=True)
    sys.exit(3)
    """
)


@pytest.mark.timeout(90)
def test_ctrl_c_cancels_cleanly(servers: FaultServers, key: str) -> None:
    urls = [servers.raw("hang", f"/{i}?key={key}") for i in range(4)]
    urls += [servers.web(f"/drip?bytes=60&interval=1&key={key}"), servers.web(f"/json/1?key={key}")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-W", "always", "-c", CTRL_C_CHILD, *urls],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
    ) as child:
        try:
            # Generous: the child imports manycore, which in an editable install may rebuild first.
            deadline = time.monotonic() + 45
            while servers.hits(key)["hits"] < len(urls) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert servers.hits(key)["hits"] == len(urls), "the child never got its requests out"
            time.sleep(0.2)  # the /json/1 body is now being "processed" (sleeping)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=15)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 0, (out, err)
    words = out.split()
    assert words[:2] == ["interrupted", "fds"], out
    assert words[2] == words[3], f"sockets leaked: {out}"
    for noise in (
        "Unclosed",
        "Task was destroyed",
        "ResourceWarning",
        "Exception ignored",
        "Traceback",
        "never awaited",
    ):
        assert noise not in err, err


# -- invalid URLs ---------------------------------------------------------------------------

# (URL, what the invalid_url message must say): one of each way a URL can be unusable.
MALFORMED_URLS: list[tuple[str, str]] = [
    ("http://127.0.0.1:notaport/x", "port can't be converted to integer"),
    ("", "empty URL"),
    ("   ", "blank URL"),
    ("example.com/x", "no scheme"),
    ("ftp://127.0.0.1/x", "unsupported scheme 'ftp'"),
    ("http://", "no host"),
    ("http:///todos/1", "no host"),
    ("http://127.0.0.1:99999/x", "Port out of range"),
    ("http://[::1/x", "Invalid IPv6 URL"),
    ("http://exa mple.com/x", "host 'exa mple.com' has characters a host name cannot have (' ')"),
    ("http://a..b/x", "empty label"),
    ("http://127.0.0.1/x\ny", r"control character '\n' at position 18"),
    ("http://127.0.0.1/\x00", r"control character '\x00'"),
    (" http://127.0.0.1/x", "leading or trailing whitespace"),
]


def _check_malformed_records(results: list[FetchResult], urls: list[str], good: dict[int, Any]) -> None:
    """Every good URL (index -> expected data) fetched once, every other one an invalid_url record."""
    assert [r.url for r in results] == urls
    bad = dict(MALFORMED_URLS)
    for i, r in enumerate(results):
        if i in good:
            assert r.ok, r
            assert r.data == good[i]
            assert r.attempts == 1
            continue
        assert not r.ok
        assert r.error is not None, r
        assert r.error.kind == "invalid_url", r
        assert r.error.message.startswith(f"{urls[i]!r} is not a valid URL: "), r.error.message
        assert bad[urls[i]] in r.error.message
        assert (r.status, r.data, r.attempts, r.elapsed_s, r.retried) == (None, None, 0, 0.0, False)


@pytest.mark.parametrize(("concurrency", "per_host"), [(100, None), (1, None), (2, 1)])
def test_malformed_urls_get_records_in_place_and_the_rest_are_fetched(
    servers: FaultServers, key: str, concurrency: int, per_host: int | None
) -> None:
    urls: list[str] = [servers.web(f"/json/0?key={key}")]
    good = {0: {"n": 0}}
    for n, (bad, _) in enumerate(MALFORMED_URLS, start=1):
        urls.append(bad)
        good[len(urls)] = {"n": n}
        urls.append(servers.web(f"/json/{n}?key={key}"))
    seen: list[FetchResult] = []
    # Long backoffs: a retried invalid URL would show in the wall time as well as in attempts.
    results, wall = timed(
        urls, concurrency=concurrency, per_host=per_host, retries=3, backoff_s=30, on_result=seen.append
    )
    _check_malformed_records(results, urls, good)
    assert wall < SLACK_S
    assert servers.hits(key)["hits"] == len(good)  # nothing but the good URLs was requested
    # Recorded at once, before any request finished: they waited for no slot.
    assert [r.ok for r in seen] == [False] * len(MALFORMED_URLS) + [True] * len(good)
    summary = summarize(results, wall)
    assert summary.errors == {"invalid_url": len(MALFORMED_URLS)}
    assert (summary.ok, summary.failed, summary.requests) == (len(good), len(MALFORMED_URLS), len(good))


def test_afetch_all_records_malformed_urls_too(servers: FaultServers) -> None:
    urls = [bad for bad, _ in MALFORMED_URLS] + [servers.web("/json/7")]
    results = asyncio.run(afetch_all(iter(urls), per_host=1))
    _check_malformed_records(results, urls, {len(urls) - 1: {"n": 7}})


def test_only_malformed_urls_make_no_request_and_no_exception() -> None:
    urls = [bad for bad, _ in MALFORMED_URLS]
    seen: list[FetchResult] = []
    results, wall = timed(urls, retries=5, backoff_s=30, deadline_s=60, on_result=seen.append, progress=True)
    _check_malformed_records(results, urls, {})
    assert seen == results  # on_result saw each one, in input order (all finished at once)
    assert wall < SLACK_S
    (only,) = fetch_all(["http://127.0.0.1:notaport/x"])
    assert only.error is not None
    assert only.error.kind == "invalid_url"


def test_an_on_result_exception_on_an_invalid_url_propagates(servers: FaultServers, key: str) -> None:
    def explode(result: FetchResult) -> None:
        raise LookupError("callback bug")

    with pytest.raises(LookupError, match="callback bug"):
        fetch_all([servers.raw("hang", f"/?key={key}"), "ftp://127.0.0.1/x"], on_result=explode)
    assert servers.hits(key)["hits"] == 0  # stopped before any request


def test_yarl_urls_and_odd_but_valid_urls_are_fetched(servers: FaultServers) -> None:
    port = servers.ports["web"]
    urls: list[Any] = [
        URL(servers.web("/json/1")),
        f"HTTP://127.0.0.1:{port}/json/2",  # the scheme is case-insensitive
        servers.web("/json/3?note=two words"),  # a space in the query is sent percent-encoded
    ]
    results = fetch_all(urls)
    assert [r.data for r in results] == [{"n": n} for n in (1, 2, 3)]
    assert results[0].url == servers.web("/json/1")


def test_a_redirect_to_a_non_http_url_is_an_http_error_not_retried(servers: FaultServers, key: str) -> None:
    (r,) = fetch_all([servers.web(f"/redirect?to=ftp://127.0.0.1/x&key={key}")], retries=3, backoff_s=0.01)
    assert not r.ok
    assert r.error is not None
    assert r.error.kind == "http"
    assert "ftp://127.0.0.1/x" in r.error.message
    assert r.attempts == 1
    assert servers.hits(key)["hits"] == 1


# -- bad arguments ----------------------------------------------------------------------------


def _plain_fn(data: Any) -> Any:
    return data


async def _coroutine_fn(data: Any) -> Any:
    return data


BAD_ARGUMENTS: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    # urls: only what is not an iterable of strings raises (a malformed URL is a record, above).
    ("http://127.0.0.1/x", {}, TypeError, "urls must be an iterable of URL strings, not a single URL"),
    (b"http://127.0.0.1/x", {}, TypeError, "not a single URL"),
    (None, {}, TypeError, "urls must be an iterable of URL strings, not NoneType"),
    (42, {}, TypeError, "urls must be an iterable of URL strings, not int"),
    ([b"http://127.0.0.1/"], {}, TypeError, r"urls\[0\] must be a str, not bytes"),
    (["http://127.0.0.1/", 3], {}, TypeError, r"urls\[1\] must be a str, not int"),
    (["ftp://127.0.0.1/x", None], {}, TypeError, r"urls\[1\] must be a str, not NoneType"),
    ([], {"concurrency": 0}, ValueError, "concurrency must be >= 1"),
    ([], {"concurrency": 2.5}, TypeError, "concurrency must be an int"),
    ([], {"concurrency": True}, TypeError, "concurrency"),
    ([], {"per_host": 0}, ValueError, "per_host must be >= 1"),
    ([], {"deadline_s": 0}, ValueError, "deadline_s must be > 0"),
    ([], {"deadline_s": "5"}, TypeError, "deadline_s"),
    ([], {"timeout_s": -1}, ValueError, "timeout_s must be > 0"),
    ([], {"timeout_s": float("nan")}, ValueError, "timeout_s must be finite"),
    ([], {"retries": -1}, ValueError, "retries must be >= 0"),
    ([], {"backoff_s": -0.1}, ValueError, "backoff_s must be >= 0"),
    ([], {"max_backoff_s": float("inf")}, ValueError, "max_backoff_s"),
    ([], {"parse": "xml"}, ValueError, "parse must be one of"),
    ([], {"parse": None}, TypeError, "parse must be a str"),
    ([], {"max_bytes": 0}, ValueError, "max_bytes must be >= 1"),
    ([], {"process": 42}, TypeError, "process must be callable"),
    ([], {"process": _plain_fn, "process_executor": object()}, TypeError, "process_executor must be"),
    (
        [],
        {"process_executor": ThreadPoolExecutor(1)},
        ValueError,
        "process_executor was given without process",
    ),
    (
        [],
        {"process": _coroutine_fn, "process_executor": ThreadPoolExecutor(1)},
        ValueError,
        "plain function",
    ),
    ([], {"headers": {"X-N": 1}}, TypeError, "headers must map str to str"),
    ([], {"headers": [("a", "b")]}, TypeError, "headers must be a mapping"),
    ([], {"progress": "yes"}, TypeError, "progress must be a bool"),
    ([], {"on_result": 1}, TypeError, "on_result must be callable"),
]


@pytest.mark.parametrize(("urls", "kwargs", "exc", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_up_front(
    urls: Any, kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    try:
        with pytest.raises(exc, match=match):
            fetch_all(urls, **kwargs)
        with pytest.raises(exc, match=match):
            asyncio.run(afetch_all(urls, **kwargs))
    finally:
        pool = kwargs.get("process_executor")
        if isinstance(pool, ThreadPoolExecutor):
            pool.shutdown()


def test_a_type_error_inside_the_urls_iterator_is_not_relabelled() -> None:
    def urls() -> Iterator[str]:
        yield "http://127.0.0.1/x"
        raise TypeError("the caller's own bug")

    with pytest.raises(TypeError, match="the caller's own bug"):
        fetch_all(urls())
