"""Benchmark of manycore.fetch against its peers, measured side by side in one run.

    python benchmarks/fetch.py [--quick] [--requests N] [--repeat R] [--json FILE]

A minimal HTTP/1.1 keep-alive server (raw asyncio protocol, one canned JSON todo) runs in a child
process on 127.0.0.1, so the client under test has a core of its own and the server is not the
bottleneck. Every client parses each body as JSON.

The peers
  * manycore.fetch_all (concurrency 100), and a minimal raw aiohttp loop (one session, keep-alive,
    100 worker coroutines): what manycore adds on top of aiohttp.
  * blocking clients as commonly written: ``urllib.request.urlopen(url)`` per request (the
    standard library's one-liner, and what a script puts behind the seed's
    ``ThreadPoolExecutor.map(fetch_data, urls)``) and, when the ``requests`` package is
    importable, ``requests.get(url)`` without a Session (its rows are skipped with a note
    otherwise; it is not a manycore dependency). Both open a new TCP connection for every
    request. Each runs sequentially and in a ThreadPoolExecutor of 8 threads.
  * best-case blocking clients: ``http.client`` with ONE persistent keep-alive connection per
    thread, sequentially and in thread pools of 8 and 100 threads. On a zero-latency loopback
    nothing is cheaper per request.
  * a bare asyncio streams client (100 persistent connections, hand-written HTTP/1.1, no HTTP
    library): not a usable client, it only shows how close to the ceiling any asyncio client can
    get against this server, on this machine.

Sections
  1. no delay, N requests. Targets: manycore >= 0.95x raw aiohttp, >= 3x the thread pools of
     blocking clients and sequential; the 3x target is checked against the common and the
     best-case blocking clients separately.
  2. 50 ms server delay, N requests at 100 in flight: the ceiling is 100 / 0.05 = 2000 req/s.
     Target: manycore >= 0.85x that ceiling (and >= 3x the 8-thread pools and sequential clients,
     which run on fewer requests: they reach ~150 and ~20 req/s).

Only ratios measured within this run are reported. Each client gets a warm-up run, then the timed
runs of all clients are interleaved so background load hits them alike; rates are requests per
second, best and median. Target verdicts use the ratio of medians (one lucky run cannot decide).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

BODY = json.dumps({"userId": 1, "id": 1, "title": "delectus aut autem", "completed": False}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + BODY
)
CONCURRENCY = 100
DELAY_S = 0.05

MANYCORE = "manycore.fetch_all (concurrency 100)"
RAW = "raw aiohttp loop (100 workers, keep-alive)"
BARE = "bare asyncio streams, no HTTP library"
# Blocking clients as commonly written: a new connection per request.
URLOPEN8 = "thread pool, 8 threads, urlopen"
URLOPEN_SEQ = "sequential urlopen"
REQUESTS8 = "thread pool, 8 threads, requests.get"
REQUESTS_SEQ = "sequential requests.get"
# Best-case blocking clients: one keep-alive http.client connection per thread.
POOL8 = "thread pool, 8 http.client threads"
POOL100 = "thread pool, 100 http.client threads"
SEQUENTIAL = "sequential http.client (keep-alive)"
COMMON = (URLOPEN8, URLOPEN_SEQ, REQUESTS8, REQUESTS_SEQ)
KEEP_ALIVE = (POOL8, POOL100, SEQUENTIAL)


# -- the server (child process) ----------------------------------------------------------------


class _KeepAliveHttp(asyncio.Protocol):
    """GET-only HTTP/1.1 with keep-alive; ``/slow/...`` answers after DELAY_S."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/slow/"):
                asyncio.get_running_loop().call_later(DELAY_S, self._reply)
            else:
                self._reply()

    def _reply(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)


def serve() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_KeepAliveHttp, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
        ).start()
        await stop.wait()
        server.close()

    asyncio.run(main())


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def urls(self, n: int, slow: bool = False) -> list[str]:
        prefix = "/slow" if slow else ""
        return [f"http://127.0.0.1:{self.port}{prefix}/todos/{i}" for i in range(1, n + 1)]

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


# -- the clients ---------------------------------------------------------------------------------


def run_manycore(urls: list[str]) -> int:
    from manycore.fetch import fetch_all

    results = fetch_all(urls, concurrency=CONCURRENCY, retries=0)
    return sum(r.ok for r in results)


def run_raw_aiohttp(urls: list[str]) -> int:
    """What one would write by hand: one session, keep-alive, N workers over a shared iterator."""
    import aiohttp

    async def main() -> int:
        ok = 0
        todo = iter(urls)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal ok
                for url in todo:
                    async with session.get(url) as response:
                        json.loads(await response.read())
                        ok += response.status == 200

            await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(urls)))))
        return ok

    return asyncio.run(main())


def _blocking_get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    json.loads(response.read())
    return response.status


def run_thread_pool(urls: list[str], threads: int) -> int:
    """A ThreadPoolExecutor of blocking http.client clients, one keep-alive connection per thread."""
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []
    lock = threading.Lock()
    host, port = urls[0].split("/")[2].split(":")
    paths = ["/" + u.split("/", 3)[3] for u in urls]

    def get(path: str) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
            with lock:
                connections.append(conn)
        return _blocking_get(conn, path)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return sum(status == 200 for status in pool.map(get, paths))
    finally:
        for conn in connections:
            conn.close()


def run_sequential(urls: list[str]) -> int:
    """One blocking keep-alive client, one request after the other."""
    host, port = urls[0].split("/")[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        return sum(_blocking_get(conn, "/" + u.split("/", 3)[3]) == 200 for u in urls)
    finally:
        conn.close()


def urlopen_get(url: str) -> int:
    """``urllib.request.urlopen(url)`` as scripts write it: a new connection per request."""
    with urllib.request.urlopen(url) as response:
        json.loads(response.read())
        status: int = response.status
        return status


def requests_get(url: str) -> int:
    """``requests.get(url)`` without a Session: a new session and connection per request."""
    import requests  # type: ignore[import-untyped, import-not-found, unused-ignore]

    response = requests.get(url)
    response.json()
    status: int = response.status_code
    return status


def run_per_request(get: Callable[[str], int], urls: list[str], threads: int | None) -> int:
    """Call ``get`` on every URL: sequentially (``threads=None``) or in a ThreadPoolExecutor."""
    if threads is None:
        return sum(get(url) == 200 for url in urls)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(status == 200 for status in pool.map(get, urls))


def run_bare_asyncio(urls: list[str]) -> int:
    """A floor, not a client: 100 persistent connections, hand-written HTTP/1.1, no error handling."""

    async def main() -> int:
        host, port = urls[0].split("/")[2].split(":")
        paths = iter("/" + u.split("/", 3)[3] for u in urls)
        ok = 0

        async def worker() -> None:
            nonlocal ok
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                for path in paths:
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                    json.loads(await reader.readexactly(length))
                    ok += head.startswith(b"HTTP/1.1 200 ")
            finally:
                writer.close()
                await writer.wait_closed()

        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(urls)))))
        return ok

    return asyncio.run(main())


def have_requests() -> str | None:
    """The installed ``requests`` version, or None (its peers are then skipped)."""
    try:
        import requests  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    version: str = requests.__version__
    return version


# -- measuring -----------------------------------------------------------------------------------


Peers = dict[str, tuple[Callable[[list[str]], int], list[str], int]]


def _once(name: str, fn: Callable[[list[str]], int], urls: list[str]) -> float:
    t0 = time.perf_counter()
    ok = fn(urls)
    elapsed = time.perf_counter() - t0
    if ok != len(urls):
        raise RuntimeError(f"{name}: {ok} of {len(urls)} requests succeeded")
    return len(urls) / elapsed


def measure(peers: Peers) -> dict[str, tuple[float, float]]:
    """(best, median) requests per second per peer.

    One warm-up run each, then the timed runs interleaved (peer A, B, C, A, B, C, ...) so a change
    in background load hits every peer alike.
    """
    rates: dict[str, list[float]] = {name: [] for name in peers}
    for name, (fn, urls, _) in peers.items():
        _once(name, fn, urls)
    for round_ in range(max(r for _, _, r in peers.values())):
        for name, (fn, urls, repeat) in peers.items():
            if round_ < repeat:
                rates[name].append(_once(name, fn, urls))
    return {name: (max(r), statistics.median(r)) for name, r in rates.items()}


def row(name: str, n: int, best: float, median: float, note: str = "") -> None:
    print(f"  {name:<42} {n:>6}  {best:>9.0f} req/s  (median {median:8.0f})  {note}")


def verdict(name: str, best: float, median: float, target: float | None) -> dict[str, Any]:
    """Print one check; the verdict uses the ratio of medians (one lucky run cannot decide)."""
    if target is None:
        mark = "no target"
        print(f"  {name:<44} {median:6.2f}x median  ({best:5.2f}x best)   (for reference, no target)")
    else:
        mark = "met" if median >= target else "NOT met"
        print(f"  {name:<44} {median:6.2f}x median  ({best:5.2f}x best)   target >= {target:g}x: {mark}")
    return {"ratio_median": median, "ratio_best": best, "target": target, "verdict": mark}


def group_verdict(
    title: str, peers: tuple[str, ...], rates: dict[str, tuple[float, float]], target: float
) -> dict[str, Any]:
    """Check manycore against each peer of a group, then the group as a whole (its worst ratio)."""
    mc_best, mc_median = rates[MANYCORE]
    present = [p for p in peers if p in rates]
    print(f"  {title}:")
    checks = {
        peer: verdict(f"  vs {peer}", mc_best / rates[peer][0], mc_median / rates[peer][1], target)
        for peer in present
    }
    worst = min(present, key=lambda p: checks[p]["ratio_median"])
    ratio = checks[worst]["ratio_median"]
    mark = "met" if ratio >= target else "NOT met"
    print(f"  => {title}: {ratio:.2f}x (worst: {worst}); target >= {target:g}x: {mark}")
    return {"peers": checks, "worst": worst, "ratio_median": ratio, "target": target, "verdict": mark}


COMMON_TITLE = "vs blocking clients as commonly written (new connection per request)"
KEEP_ALIVE_TITLE = "vs best-case blocking http.client (one keep-alive connection per thread)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer requests and repeats")
    parser.add_argument("--requests", type=int, default=1000, help="requests per run (default 1000)")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per client (default 9)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    n = 300 if args.quick else args.requests
    repeat = 2 if args.quick else args.repeat
    import aiohttp

    requests_version = have_requests()
    print(
        f"manycore.fetch benchmark: Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"requests {requests_version or '(not installed)'}, {os.cpu_count()} CPUs, "
        "server in a child process"
    )
    if requests_version is None:
        print(
            "note: the requests package is not importable, so the requests.get rows are skipped "
            "(it is not a manycore dependency; `pip install requests` to include them)"
        )
    out: dict[str, Any] = {"requests": n, "repeat": repeat, "requests_version": requests_version}
    server = Server()
    try:
        fast = server.urls(n)
        print(f"\n1. no server delay, {n} requests ({repeat} interleaved runs; every body parsed as JSON)")
        peers: Peers = {
            MANYCORE: (run_manycore, fast, repeat),
            RAW: (run_raw_aiohttp, fast, repeat),
            BARE: (run_bare_asyncio, fast, repeat),
            URLOPEN8: (lambda u: run_per_request(urlopen_get, u, 8), fast, repeat),
            URLOPEN_SEQ: (lambda u: run_per_request(urlopen_get, u, None), fast, repeat),
        }
        if requests_version is not None:
            peers[REQUESTS8] = (lambda u: run_per_request(requests_get, u, 8), fast, repeat)
            peers[REQUESTS_SEQ] = (lambda u: run_per_request(requests_get, u, None), fast, repeat)
        peers[POOL8] = (lambda u: run_thread_pool(u, 8), fast, repeat)
        peers[POOL100] = (lambda u: run_thread_pool(u, 100), fast, repeat)
        peers[SEQUENTIAL] = (run_sequential, fast, repeat)
        fast_rates = measure(peers)
        for name, (best, median) in fast_rates.items():
            row(name, len(peers[name][1]), best, median)
        mc_best, mc_median = fast_rates[MANYCORE]
        print()
        out["no_delay"] = {
            "rates": fast_rates,
            "checks": {
                "vs raw aiohttp": verdict(
                    "vs raw aiohttp", mc_best / fast_rates[RAW][0], mc_median / fast_rates[RAW][1], 0.95
                ),
                "vs bare asyncio streams": verdict(
                    "vs bare asyncio streams (no HTTP library)",
                    mc_best / fast_rates[BARE][0],
                    mc_median / fast_rates[BARE][1],
                    None,
                ),
                "vs common blocking clients": group_verdict(COMMON_TITLE, COMMON, fast_rates, 3.0),
                "vs keep-alive http.client": group_verdict(KEEP_ALIVE_TITLE, KEEP_ALIVE, fast_rates, 3.0),
            },
        }

        ceiling = CONCURRENCY / DELAY_S
        print(
            f"\n2. {DELAY_S * 1000:g} ms server delay, {CONCURRENCY} in flight "
            f"(ceiling {ceiling:.0f} req/s; {repeat} interleaved runs)"
        )
        slow, few, fewest = (server.urls(k, slow=True) for k in (n, max(40, n // 4), max(20, n // 25)))
        # The 8-thread pools and the sequential clients run at ~150 and ~20 req/s: fewer requests
        # and one timed run each.
        slow_peers: Peers = {
            MANYCORE: (run_manycore, slow, repeat),
            RAW: (run_raw_aiohttp, slow, repeat),
            BARE: (run_bare_asyncio, slow, repeat),
            POOL100: (lambda u: run_thread_pool(u, 100), slow, repeat),
            URLOPEN8: (lambda u: run_per_request(urlopen_get, u, 8), few, 1),
            URLOPEN_SEQ: (lambda u: run_per_request(urlopen_get, u, None), fewest, 1),
        }
        if requests_version is not None:
            slow_peers[REQUESTS8] = (lambda u: run_per_request(requests_get, u, 8), few, 1)
            slow_peers[REQUESTS_SEQ] = (lambda u: run_per_request(requests_get, u, None), fewest, 1)
        slow_peers[POOL8] = (lambda u: run_thread_pool(u, 8), few, 1)
        slow_peers[SEQUENTIAL] = (run_sequential, fewest, 1)
        slow_rates = measure(slow_peers)
        for name, (best, median) in slow_rates.items():
            row(name, len(slow_peers[name][1]), best, median, f"{median / ceiling:.2f}x ceiling")
        print()
        mc_best, mc_median = slow_rates[MANYCORE]
        out["delay_50ms"] = {
            "ceiling": ceiling,
            "rates": slow_rates,
            "checks": {
                "vs the ceiling": verdict(
                    "vs the 2000 req/s ceiling", mc_best / ceiling, mc_median / ceiling, 0.85
                ),
                "bare asyncio streams vs the ceiling": verdict(
                    "bare asyncio streams vs the ceiling",
                    slow_rates[BARE][0] / ceiling,
                    slow_rates[BARE][1] / ceiling,
                    None,
                ),
                "vs raw aiohttp": verdict(
                    "vs raw aiohttp", mc_best / slow_rates[RAW][0], mc_median / slow_rates[RAW][1], None
                ),
                "vs common blocking clients": group_verdict(COMMON_TITLE, COMMON, slow_rates, 3.0),
                "vs keep-alive http.client": group_verdict(
                    KEEP_ALIVE_TITLE, (POOL8, SEQUENTIAL), slow_rates, 3.0
                ),
                "vs thread pool (100 threads)": verdict(
                    f"vs {POOL100}",
                    mc_best / slow_rates[POOL100][0],
                    mc_median / slow_rates[POOL100][1],
                    None,
                ),
            },
        }
    finally:
        server.close()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
