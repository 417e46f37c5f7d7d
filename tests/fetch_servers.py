"""Local fault servers for tests/test_fetch*.py, run in a child process on 127.0.0.1.

``python tests/fetch_servers.py`` binds free ports, prints one JSON line ``{"web": port, "hang":
port, ...}`` and serves until its stdin closes. Running in its own process keeps the server's
sockets out of the test process's ``/proc/self/fd`` count (the leak checks count only the client)
and off the test process's GIL.

Every request carrying ``?key=K`` is counted; ``GET /hits/K`` on the web server returns
``{"hits": n, "times": [...]}`` (monotonic seconds of arrival), for raw and web servers alike.

The module also holds picklable ``process`` functions for the executor tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import logging
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

HITS: defaultdict[str, list[float]] = defaultdict(list)
INFLIGHT: defaultdict[str, int] = defaultdict(int)
MAX_INFLIGHT: defaultdict[str, int] = defaultdict(int)


def _count(key: str | None) -> int:
    if key is None:
        return 0
    HITS[key].append(time.monotonic())
    return len(HITS[key])


# -- used by the tests: start the servers, check for leaks ------------------------------------


class FaultServers:
    """The fault servers, running in a child process (see the module docstring)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], 20.0)
        line = self._proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError("the fault servers did not start within 20 s")
        self.ports: dict[str, int] = json.loads(line)

    def web(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['web']}{path}"

    def raw(self, name: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def hits(self, key: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.web(f"/hits/{key}"), timeout=10) as response:
            result: dict[str, Any] = json.load(response)
            return result

    def close(self) -> None:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def leak_check(settle_s: float = 3.0) -> Iterator[None]:
    """Fail if the block leaks file descriptors or threads, warns, or makes asyncio log.

    Catches ResourceWarning (unclosed sockets/transports), "coroutine was never awaited",
    aiohttp's "Unclosed client session" / "Unclosed connector" and asyncio's "Task was destroyed
    but it is pending" (both reported through the ``asyncio`` logger).
    """
    gc.collect()
    fds_before = fd_count()
    threads_before = threading.active_count()
    handler = _Collect()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
            gc.collect()
    finally:
        logger.removeHandler(handler)
    bad = [w for w in caught if issubclass(w.category, (ResourceWarning, RuntimeWarning, DeprecationWarning))]
    assert not bad, [f"{w.category.__name__}: {w.message}" for w in bad]
    assert not handler.records, [r.getMessage() for r in handler.records]
    # Closing is synchronous for the client, but give joined threads / executors a moment.
    # (Fewer afterwards is not ours to judge: an earlier test's garbage may be collected here.)
    end = time.monotonic() + settle_s
    while (fd_count() > fds_before or threading.active_count() > threads_before) and time.monotonic() < end:
        time.sleep(0.02)
        gc.collect()
    assert fd_count() <= fds_before, f"file descriptors: {fds_before} before, {fd_count()} after"
    assert threading.active_count() <= threads_before, (
        f"threads: {threads_before} before, {threading.active_count()} after"
    )


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now (idempotent).

    The first process pool starts it, and it then lives, with its pipe, as long as this process:
    start it before the per-test fd counts so it is not mistaken for a leak.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # type: ignore[attr-defined]


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- picklable process functions for the executor tests ---------------------------------------


def double_n(data: Any) -> int:
    return int(data["n"]) * 2


def fail_on_three(data: Any) -> int:
    if data["n"] == 3:
        raise ValueError("three is not allowed")
    return int(data["n"])


def burn_cpu(data: Any) -> int:
    """A little CPU work, the kind worth a process pool."""
    total = 0
    for i in range(20_000 + int(data["n"])):
        total = (total + i * i) % 1_000_003
    return total


# -- aiohttp.web endpoints -------------------------------------------------------------------


@web.middleware
async def _counting(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/hits/"):
        _count(request.query.get("key"))
    response: web.StreamResponse = await handler(request)
    return response


async def _hits(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    times = HITS.get(key, [])
    return web.json_response({"hits": len(times), "times": times, "max_inflight": MAX_INFLIGHT.get(key, 0)})


async def _concurrent(request: web.Request) -> web.Response:
    """Sleep ``delay`` s, tracking how many requests for ``key`` are inside at once."""
    key = request.query["key"]
    INFLIGHT[key] += 1
    MAX_INFLIGHT[key] = max(MAX_INFLIGHT[key], INFLIGHT[key])
    try:
        await asyncio.sleep(float(request.query.get("delay", "0.2")))
    finally:
        INFLIGHT[key] -= 1
    return web.json_response({"max_inflight": MAX_INFLIGHT[key]})


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"n": int(request.match_info["n"])})


async def _slow(request: web.Request) -> web.Response:
    delay = float(request.query.get("delay", "1"))
    await asyncio.sleep(delay)
    return web.json_response({"slept": delay})


async def _drip(request: web.Request) -> web.StreamResponse:
    total = int(request.query.get("bytes", "100"))
    interval = float(request.query.get("interval", "1"))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = total
    await response.prepare(request)
    for _ in range(total):
        await response.write(b" ")
        await asyncio.sleep(interval)
    await response.write_eof()
    return response


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.json_response({"status": code}, status=code)


async def _flaky(request: web.Request) -> web.Response:
    key = request.query["key"]
    fails = int(request.query.get("fails", "1"))
    code = int(request.query.get("code", "500"))
    hits = len(HITS[key])
    if hits <= fails:
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.json_response({"error": "flaky", "hit": hits}, status=code, headers=headers)
    return web.json_response({"key": key, "hits": hits})


async def _invalid_json(request: web.Request) -> web.Response:
    return web.Response(body=b'{"a": 1,,}', content_type="application/json")


async def _html_json(request: web.Request) -> web.Response:
    return web.Response(body=b'{"a": 1}', content_type="text/html")


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="héllo wörld", charset="utf-8")


async def _latin1(request: web.Request) -> web.Response:
    return web.Response(body="héllo".encode("latin-1"), content_type="text/plain", charset="latin-1")


async def _bad_utf8(request: web.Request) -> web.Response:
    return web.Response(body=b"ok \xff\xfe", content_type="text/plain", charset="utf-8")


async def _bytes(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)), content_type="application/octet-stream")


async def _huge(request: web.Request) -> web.Response:
    size = int(request.query.get("size", str(8 * 1024 * 1024)))
    return web.Response(body=b"x" * size, content_type="application/octet-stream")


async def _huge_chunked(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", str(8 * 1024 * 1024)))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    block = b"y" * 65536
    sent = 0
    try:
        while sent < size:
            await response.write(block[: size - sent])
            sent += len(block)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading at its max_bytes and closed the connection
    return response


async def _gzip_bomb(request: web.Request) -> web.Response:
    size = int(request.query.get("size", str(32 * 1024 * 1024)))
    body = gzip.compress(b"\0" * size, compresslevel=9)
    return web.Response(
        body=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
    )


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query.get("to", "/json/1"))


async def _redirect_loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/redirect-loop")


def _web_app() -> web.Application:
    app = web.Application(middlewares=[_counting])
    routes = [
        ("/hits/{key}", _hits),
        ("/json/{n}", _json),
        ("/slow", _slow),
        ("/concurrent", _concurrent),
        ("/drip", _drip),
        ("/status/{code}", _status),
        ("/flaky", _flaky),
        ("/invalid-json", _invalid_json),
        ("/html-json", _html_json),
        ("/text", _text),
        ("/latin1", _latin1),
        ("/bad-utf8", _bad_utf8),
        ("/bytes", _bytes),
        ("/huge", _huge),
        ("/huge-chunked", _huge_chunked),
        ("/gzip-bomb", _gzip_bomb),
        ("/redirect", _redirect),
        ("/redirect-loop", _redirect_loop),
    ]
    for path, handler in routes:
        app.router.add_get(path, handler)
    return app


# -- raw asyncio servers for what aiohttp.web will not do -------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> str | None:
    """Read one request head; count its ?key=; return the path (None if the client left)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
    query = parse_qs(urlsplit(target).query)
    _count(query["key"][0] if "key" in query else None)
    return target


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read the request, never answer (until the client goes away)."""
    if await _read_request(reader) is not None:
        await reader.read()  # returns at EOF, i.e. when the client closes
    await _close(writer)


async def _slow_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Status line, then one header byte per second, forever."""
    if await _read_request(reader) is not None:
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while True:
                await asyncio.sleep(1.0)
                writer.write(b"a")
                await writer.drain()
        except ConnectionError:
            pass
    await _close(writer)


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Promise 100000 bytes, send 1000, then reset the connection (RST, not FIN)."""
    if await _read_request(reader) is not None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        writer.write(b"[" + b"1," * 499 + b"1")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request and close without a response."""
    await _read_request(reader)
    await _close(writer)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer with something that is not HTTP."""
    if await _read_request(reader) is not None:
        writer.write(b"SPEAK FRIEND AND ENTER\r\n\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            pass
    await _close(writer)


RAW_HANDLERS = {
    "hang": _hang,
    "slow_headers": _slow_headers,
    "reset": _reset,
    "close": _close_early,
    "garbage": _garbage,
}


async def _serve_all(stop: asyncio.Event) -> None:
    runner = web.AppRunner(_web_app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    ports: dict[str, int] = {"web": runner.addresses[0][1]}
    servers = []
    for name, handler in RAW_HANDLERS.items():
        server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        await runner.cleanup()


def main() -> None:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def wait_for_stdin_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    try:
        loop.run_until_complete(_serve_all(stop))
        loop.run_until_complete(_cancel_the_rest())
    finally:
        loop.close()


async def _cancel_the_rest() -> None:
    """Handlers still hanging at shutdown: cancel them so the loop closes cleanly."""
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


if __name__ == "__main__":
    main()
