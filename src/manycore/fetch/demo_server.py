"""A local JSON API shaped like jsonplaceholder.typicode.com's ``/todos``, so the seed's program runs offline.

:class:`DemoServer` serves, on 127.0.0.1 and a free port, from a background thread with its own
event loop (so it works next to both :func:`~manycore.fetch.fetch_all` and ``await afetch_all``):

``GET /todos/{id}``
    ``{"userId": ..., "id": id, "title": "...", "completed": ...}`` for ``1 <= id <= todos``,
    else 404 ``{}``. Todos 1-3 are jsonplaceholder's; the rest are generated deterministically.
``GET /todos``
    All todos (``?_limit=N`` for the first N).
``GET /``
    What the server offers, as JSON.

Latency and failure injection, for every request: ``latency_s`` (+ up to ``jitter_s``) before
answering, and with probability ``fail_rate`` a ``503`` instead of the answer (no Retry-After, so
the client's exponential backoff shows). Per request, ``?delay=S`` adds S seconds and ``?fail=CODE``
answers CODE.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

from .. import _validate

_KNOWN_TODOS = {
    1: ("delectus aut autem", False),
    2: ("quis ut nam facilis et officia qui", False),
    3: ("fugiat veniam minus", False),
}
_WORDS = [
    "et",
    "ut",
    "qui",
    "aut",
    "est",
    "quia",
    "sit",
    "voluptas",
    "dolor",
    "quo",
    "eum",
    "dolorem",
    "rerum",
    "nam",
    "id",
    "in",
    "ipsam",
    "molestiae",
    "laboriosam",
    "illo",
    "nesciunt",
    "omnis",
    "repellendus",
    "veniam",
    "sed",
    "fugiat",
    "minus",
    "natus",
    "explicabo",
    "accusamus",
    "ex",
    "totam",
    "corporis",
    "odio",
    "porro",
    "placeat",
    "adipisci",
    "tempora",
]


def make_todo(todo_id: int) -> dict[str, Any]:
    """The todo the demo API serves for ``todo_id`` (deterministic)."""
    if todo_id in _KNOWN_TODOS:
        title, completed = _KNOWN_TODOS[todo_id]
    else:
        rng = random.Random(todo_id)
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 7)))
        completed = rng.random() < 0.5
    return {"userId": (todo_id - 1) // 20 + 1, "id": todo_id, "title": title, "completed": completed}


async def process_data(data: Any) -> dict[str, Any]:
    """The seed's processing step: keep ``id``, upper-case ``title``.

    The seed also slept one second "to simulate processing time"; that sleep is dropped here.
    """
    return process_data_sync(data)


def process_data_sync(data: Any) -> dict[str, Any]:
    """:func:`process_data` as a plain (picklable) function, for a process executor."""
    return {"id": data["id"], "title": str(data["title"]).upper()}


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel handlers still sleeping at shutdown, so the loop closes with no pending task."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


class DemoServer:
    """The demo JSON API, running until :meth:`stop` (or the end of a ``with`` block).

    >>> with DemoServer(todos=3) as api:
    ...     urls = api.todo_urls(3)
    """

    def __init__(
        self,
        *,
        todos: int = 200,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.todos = _validate.check_int(todos, "todos", minimum=1)
        self.latency_s = _validate.check_float(latency_s, "latency_s")
        self.jitter_s = _validate.check_float(jitter_s, "jitter_s")
        self.fail_rate = _validate.check_float(fail_rate, "fail_rate")
        if self.latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {self.latency_s}")
        if self.jitter_s < 0:
            raise ValueError(f"jitter_s must be >= 0, got {self.jitter_s}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0 and 1, got {self.fail_rate}")
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, not {type(host).__name__}")
        self.host = host
        self._requested_port = _validate.check_int(port, "port", minimum=0, maximum=65535)
        self._rng = random.Random(seed)
        self.port = 0
        self.requests = 0
        self.failures_injected = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the demo server is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` (e.g. ``"/todos/1"``) on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def todo_urls(self, count: int) -> list[str]:
        """``/todos/1`` .. ``/todos/count``, like the seed's ``API_URLS``."""
        count = _validate.check_int(count, "count", minimum=0)
        return [self.url(f"/todos/{i}") for i in range(1, count + 1)]

    # -- lifetime --------------------------------------------------------------------------

    def start(self) -> DemoServer:
        """Bind the port and serve from a background thread; returns once it accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the demo server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except BaseException:
            sock.close()
            raise
        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._serve, args=(sock, ready), name="manycore-demo-api", daemon=True
        )
        self._thread.start()
        ready.wait()
        error = self._startup_error()
        if error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"the demo server failed to start: {error!r}") from error
        self.port = sock.getsockname()[1]
        return self

    def _startup_error(self) -> BaseException | None:
        return self._error  # set by the server thread

    def stop(self) -> None:
        """Stop serving, close every socket and join the thread (idempotent)."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join()
        self._thread = None
        self.port = 0

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> DemoServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            self._stop_event = asyncio.Event()
            # handler_cancellation: a client that gave up (timeout) cancels its handler here.
            runner = web.AppRunner(
                self._app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=True
            )
            loop.run_until_complete(runner.setup())
            try:
                site = web.SockSite(runner, sock, backlog=1024)
                loop.run_until_complete(site.start())
                ready.set()
                loop.run_until_complete(self._stop_event.wait())
            finally:
                loop.run_until_complete(runner.cleanup())
                _cancel_pending(loop)
        except BaseException as exc:  # reported by start(); the thread must not die silently
            self._error = exc
        finally:
            sock.close()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self._loop = None
                self._stop_event = None
                ready.set()

    # -- the API ---------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/todos", self._list)
        app.router.add_get("/todos/{todo_id}", self._todo)
        return app

    async def _inject(self, request: web.Request) -> web.Response | None:
        """Latency and failures; a response means "answer this instead"."""
        self.requests += 1
        delay = self.latency_s
        if self.jitter_s:
            delay += self._rng.random() * self.jitter_s
        try:
            delay += max(0.0, float(request.query.get("delay", "0")))
        except ValueError:
            return web.json_response({"error": "delay must be a number"}, status=400)
        if delay > 0:
            await asyncio.sleep(delay)
        forced = request.query.get("fail")
        if forced is not None:
            try:
                code = int(forced)
            except ValueError:
                return web.json_response({"error": "fail must be an HTTP status"}, status=400)
            if not 400 <= code <= 599:
                return web.json_response({"error": "fail must be 400..599"}, status=400)
            return web.json_response({"error": "forced failure"}, status=code)
        if self.fail_rate and self._rng.random() < self.fail_rate:
            self.failures_injected += 1
            return web.json_response({"error": "injected failure"}, status=503)
        return None

    async def _index(self, request: web.Request) -> web.Response:
        injected = await self._inject(request)
        if injected is not None:
            return injected
        return web.json_response(
            {
                "todos": self.todos,
                "endpoints": ["/todos", "/todos/{id}"],
                "query": {"delay": "extra seconds before answering", "fail": "answer this HTTP status"},
                "latency_s": self.latency_s,
                "jitter_s": self.jitter_s,
                "fail_rate": self.fail_rate,
            }
        )

    async def _list(self, request: web.Request) -> web.Response:
        injected = await self._inject(request)
        if injected is not None:
            return injected
        limit = self.todos
        if "_limit" in request.query:
            try:
                limit = max(0, min(self.todos, int(request.query["_limit"])))
            except ValueError:
                return web.json_response({"error": "_limit must be an int"}, status=400)
        return web.json_response([make_todo(i) for i in range(1, limit + 1)])

    async def _todo(self, request: web.Request) -> web.Response:
        injected = await self._inject(request)
        if injected is not None:
            return injected
        try:
            todo_id = int(request.match_info["todo_id"])
        except ValueError:
            return web.json_response({}, status=404)
        if not 1 <= todo_id <= self.todos:
            return web.json_response({}, status=404)
        return web.json_response(make_todo(todo_id))
