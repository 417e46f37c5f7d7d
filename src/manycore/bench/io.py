"""Section 5: I/O-bound work — sequential vs threads vs asyncio against the local demo API."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from . import words
from ._context import BenchContext
from ._timing import Timing
from .report import Section


class _KeepAliveClient:
    """One blocking HTTP/1.1 connection per thread (keep-alive), the fair thread-pool peer."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get_json(self, url: str) -> object:
        parts = urlsplit(url)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
            self._local.conn = conn
        conn.request("GET", parts.path)
        response = conn.getresponse()
        return json.loads(response.read())


def _timed(fn: object) -> Timing:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    dt = time.perf_counter() - t0
    return Timing(dt, dt, 1, 1)


def run(ctx: BenchContext) -> Section:
    from ..fetch import DemoServer, fetch_all

    latency = 0.02 if not ctx.tiny else 0.005
    n = ctx.size(1000, 200, 40)
    section = Section(
        "io", f"5. I/O-bound: {n} HTTP requests to a local JSON API answering after {latency * 1e3:.0f} ms"
    )
    with DemoServer(latency_s=latency) as api:
        urls = api.todo_urls(n)
        ctx.say("io: sequential")
        client = _KeepAliveClient()
        seq_n = min(n, 50 if not ctx.tiny else 20)
        seq = _timed(lambda: [client.get_json(u) for u in urls[:seq_n]])
        per_request = seq.best_s / seq_n
        estimate = Timing(per_request * n, per_request * n, 1, 1)
        section.add(
            f"sequential (measured on {seq_n}, scaled to {n})",
            estimate,
            requests_per_s=1 / per_request,
            speedup=1.0,
        )
        for threads in (8, 64):
            ctx.say(f"io: {threads} threads")
            with ThreadPoolExecutor(threads) as tp:
                c = _KeepAliveClient()
                timing = _timed(lambda c=c, tp=tp: list(tp.map(c.get_json, urls)))
            section.add(
                f"thread pool, {threads} threads, blocking clients",
                timing,
                requests_per_s=n / timing.best_s,
                speedup=estimate.best_s / timing.best_s,
            )
        for concurrency in (8, 100):
            ctx.say(f"io: asyncio, {concurrency} in flight")
            results: list[object] = []
            timing = _timed(
                lambda c=concurrency, r=results: r.extend(fetch_all(urls, concurrency=c, per_host=c))
            )
            ok = sum(1 for r in results if getattr(r, "ok", False))
            section.add(
                f"asyncio (manycore.fetch), {concurrency} in flight",
                timing,
                requests_per_s=n / timing.best_s,
                speedup=estimate.best_s / timing.best_s,
                ok=f"{ok}/{n}",
            )
    speedups = {row.name: row.values["speedup"] for row in section.rows[1:]}
    section.series["speedup"] = speedups
    section.series["requests_per_s"] = {row.name: row.values["requests_per_s"] for row in section.rows}
    section.notes.append(words.io_summary(speedups))
    return section
