"""Fetch many URLs at once with asyncio + aiohttp: bounded, with deadlines, retries and per-URL errors.

The seed's program (``asyncio.gather`` over ``session.get`` for a few URLs) is the right idea with
four holes: nothing bounds how many requests are in flight, nothing bounds how long one can take,
one failure makes ``gather`` raise and throws away every other result, and it needs the internet.
This module keeps the idea and fills the holes:

* ``concurrency`` worker coroutines share one :class:`aiohttp.ClientSession` (keep-alive
  connections are reused); a scheduler hands them URL indices in input order within a host and
  round robin across hosts, at most ``per_host`` in flight per host. A request's clock starts
  only when it has a slot, so queueing never eats into ``timeout_s``.
* every attempt runs under one timer covering connect, headers and the whole body, so a server
  that drip-feeds a byte per second cannot stretch it (socket-level read timeouts would reset on
  every byte); ``deadline_s`` caps that timer and every backoff, and at the deadline whatever is
  still running is cancelled and recorded as a ``deadline`` error, so the call returns on time.
* failures become :class:`~manycore.fetch.result.FetchResult` records, never exceptions; only bad
  arguments (``ValueError``/``TypeError``, before any request), Ctrl-C / cancellation, and an
  exception raised by the caller's own ``on_result`` callback leave the call. A malformed URL is
  not a bad argument: it gets an ``invalid_url`` record in its place at once (no request, no
  retry, no slot) and the other URLs are fetched.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import string
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp  # manycore/fetch/__init__.py names the extra when it is missing
from yarl import URL

from .. import __version__, _validate
from .result import ErrorKind, FetchError, FetchResult
from .retry import backoff_delay, is_retryable_status, parse_retry_after

__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BACKOFF_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "Parse",
    "afetch_all",
    "fetch_all",
]

Parse = Literal["json", "text", "bytes"]
_PARSE_MODES: tuple[Parse, ...] = ("json", "text", "bytes")

DEFAULT_CONCURRENCY = 100
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.25
DEFAULT_MAX_BACKOFF_S = 30.0
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

_USER_AGENT = f"manycore/{__version__} aiohttp/{aiohttp.__version__}"
_ERROR_BODY_LIMIT = 4096  # read (and quote) an error body only if it is this small
_ERROR_SNIPPET_CHARS = 200

_HAS_UNCANCEL = sys.version_info >= (3, 11)  # Task.cancelling() / Task.uncancel()


@dataclass(frozen=True)
class _Config:
    urls: list[str]
    parsed: list[URL | None]  # None where the URL is invalid
    invalid: dict[int, str]  # index -> the invalid_url message
    concurrency: int
    per_host: int | None
    deadline_s: float | None
    timeout_s: float
    retries: int
    backoff_s: float
    max_backoff_s: float
    parse: Parse
    max_bytes: int | None
    process: Callable[[Any], Any] | None
    process_executor: Executor | None
    headers: dict[str, str]
    progress: bool
    on_result: Callable[[FetchResult], object] | None


def _positive_float(value: Any, name: str) -> float:
    v = _validate.check_float(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def _non_negative_float(value: Any, name: str) -> float:
    v = _validate.check_float(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


_SCHEMES = ("http", "https")
_HOST_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_MAX_HOST_NAME = 253  # RFC 1035: 255 octets on the wire, 253 characters written out
_MAX_HOST_LABEL = 63
_QUOTE_CHARS = 200  # a URL quoted in an error message is cut after this many characters


def _quote(text: str) -> str:
    """``text`` for an error message: repr (control characters escaped), cut if very long."""
    if len(text) <= _QUOTE_CHARS:
        return repr(text)
    return f"{text[:_QUOTE_CHARS]!r}…"


def _host_problem(host: str) -> str | None:
    """What is wrong with ``host`` (yarl's ``raw_host``: IDNA-encoded, no brackets), or None."""
    if ":" in host:
        return None  # an IPv6 literal: yarl has checked it
    bad = sorted({ch for ch in host if ch not in _HOST_NAME_CHARS})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        return f"host {_quote(host)} has characters a host name cannot have ({shown})"
    name = host[:-1] if host.endswith(".") else host  # a trailing dot (fully qualified) is fine
    if len(name) > _MAX_HOST_NAME:
        return f"host name is {len(name)} characters long, more than {_MAX_HOST_NAME}"
    for label in name.split("."):
        if not label:
            return f"host {_quote(host)} has an empty label (two dots in a row, or a leading dot)"
        if len(label) > _MAX_HOST_LABEL:
            return f"host {_quote(host)} has a label longer than {_MAX_HOST_LABEL} characters"
    return None


def _parse_url(text: str) -> URL | str:
    """``text`` as a URL fit to request, or a phrase saying what is wrong with it.

    Catches what yarl rejects (a port that is not a number or out of range, a broken IPv6
    literal, ...) and what yarl accepts but no request can succeed with, so that it is recorded
    at once instead of being retried: no scheme or one other than http/https, no host, a host
    name that cannot exist, control characters, surrounding whitespace. Spaces inside the path
    or query are not an error: yarl sends them percent-encoded.
    """
    if not text.strip():
        return "empty URL" if not text else "blank URL (only whitespace)"
    if text != text.strip():
        return "leading or trailing whitespace"
    for position, ch in enumerate(text):
        if ch < " " or ch == "\x7f":
            return f"control character {ch!r} at position {position}"
    try:
        url = URL(text)
        scheme, host = url.scheme, url.raw_host
    except Exception as exc:  # mostly ValueError, but yarl lets an IndexError out for some garbage
        reason = str(exc).removeprefix("Invalid URL: ")
        return f"cannot be parsed: {reason}" if reason else f"cannot be parsed ({type(exc).__name__})"
    if not scheme:
        return "no scheme: an absolute http:// or https:// URL is needed"
    if scheme not in _SCHEMES:
        return f"unsupported scheme {scheme!r}: only absolute http:// and https:// URLs are fetched"
    if not host:
        return "no host"
    return _host_problem(host) or url


def _check_urls(urls: Iterable[str]) -> tuple[list[str], list[URL | None], dict[int, str]]:
    """The URLs as given, each parsed (None if invalid), and a message for each invalid one.

    Raises TypeError only for what is not an iterable of strings: a malformed URL is not an
    argument error, it becomes that URL's ``invalid_url`` record.
    """
    if isinstance(urls, (str, bytes, URL)):
        raise TypeError("urls must be an iterable of URL strings, not a single URL")
    try:
        iterator: Iterator[object] = iter(urls)  # checked item by item below
    except TypeError:
        raise TypeError(f"urls must be an iterable of URL strings, not {type(urls).__name__}") from None
    texts: list[str] = []
    parsed: list[URL | None] = []
    invalid: dict[int, str] = {}
    for i, item in enumerate(iterator):
        if isinstance(item, URL):
            text = str(item)
        elif isinstance(item, str):
            text = item
        else:
            raise TypeError(f"urls[{i}] must be a str, not {type(item).__name__}")
        outcome = _parse_url(text)
        if isinstance(outcome, URL):
            parsed.append(outcome)
        else:
            parsed.append(None)
            invalid[i] = f"{_quote(text)} is not a valid URL: {outcome}"
        texts.append(text)
    return texts, parsed, invalid


def _configure(
    urls: Iterable[str],
    *,
    concurrency: int,
    per_host: int | None,
    deadline_s: float | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    max_backoff_s: float,
    parse: Parse,
    max_bytes: int | None,
    process: Callable[[Any], Any] | None,
    process_executor: Executor | None,
    headers: Mapping[str, str] | None,
    progress: bool,
    on_result: Callable[[FetchResult], object] | None,
) -> _Config:
    """Check every argument before any request, naming the offending one."""
    texts, parsed, invalid = _check_urls(urls)
    concurrency = _validate.check_int(concurrency, "concurrency", minimum=1)
    if per_host is not None:
        per_host = _validate.check_int(per_host, "per_host", minimum=1)
    if deadline_s is not None:
        deadline_s = _positive_float(deadline_s, "deadline_s")
    timeout_s = _positive_float(timeout_s, "timeout_s")
    retries = _validate.check_int(retries, "retries", minimum=0)
    backoff_s = _non_negative_float(backoff_s, "backoff_s")
    max_backoff_s = _non_negative_float(max_backoff_s, "max_backoff_s")
    if not isinstance(parse, str):
        raise TypeError(f"parse must be a str, not {type(parse).__name__}")
    if parse not in _PARSE_MODES:
        raise ValueError(f"parse must be one of {', '.join(map(repr, _PARSE_MODES))}, got {parse!r}")
    if max_bytes is not None:
        max_bytes = _validate.check_int(max_bytes, "max_bytes", minimum=1)
    if process is not None and not callable(process):
        raise TypeError(f"process must be callable, not {type(process).__name__}")
    if process_executor is not None:
        if not isinstance(process_executor, Executor):
            raise TypeError(
                f"process_executor must be a concurrent.futures.Executor, not {type(process_executor).__name__}"
            )
        if process is None:
            raise ValueError("process_executor was given without process")
        if inspect.iscoroutinefunction(process):
            raise ValueError(
                "process must be a plain function when process_executor is given, not a coroutine function"
            )
    header_dict = {"User-Agent": _USER_AGENT}
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"headers must map str to str, got {key!r}: {value!r}")
            header_dict[key] = value
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, not {type(progress).__name__}")
    if on_result is not None and not callable(on_result):
        raise TypeError(f"on_result must be callable, not {type(on_result).__name__}")
    return _Config(
        urls=texts,
        parsed=parsed,
        invalid=invalid,
        concurrency=concurrency,
        per_host=per_host,
        deadline_s=deadline_s,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        parse=parse,
        max_bytes=max_bytes,
        process=process,
        process_executor=process_executor,
        headers=header_dict,
        progress=progress,
        on_result=on_result,
    )


class _Scheduler:
    """Hands the indices of the URLs to fetch (the valid ones) to workers.

    Without ``per_host`` it walks them in input order. With it, each host has a queue in input
    order, and hosts that have work and a free slot take turns; a worker that finds none waits
    for a slot to free up, so a busy host never blocks the URLs of an idle one.
    """

    def __init__(
        self,
        indices: list[int],
        host_keys: list[str],
        per_host: int | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """``indices``: what to fetch, in input order; ``host_keys[i]``: URL ``i``'s host (per_host only)."""
        self._order = indices
        self._n = len(indices)
        self._handed = 0
        self._loop = loop
        self._per_host = per_host
        self._keys = host_keys
        self._pending: dict[str, deque[int]] = {}
        self._active: dict[str, int] = {}
        self._ready: deque[str] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        if per_host is not None:
            for i in indices:
                self._pending.setdefault(host_keys[i], deque()).append(i)
            self._active = dict.fromkeys(self._pending, 0)
            self._ready.extend(self._pending)

    @property
    def exhausted(self) -> bool:
        return self._handed >= self._n

    def take(self) -> int | None:
        """The next index to fetch, or None if none is allowed right now (or none is left)."""
        if self._per_host is None:
            if self._handed >= self._n:
                return None
            index = self._order[self._handed]
            self._handed += 1
            return index
        if not self._ready:
            return None
        key = self._ready.popleft()
        queue = self._pending[key]
        index = queue.popleft()
        active = self._active[key] + 1
        self._active[key] = active
        if queue and active < self._per_host:
            self._ready.append(key)
        self._handed += 1
        return index

    def release(self, index: int) -> None:
        """The request for ``index`` is over: free its host's slot."""
        if self._per_host is None:
            return
        key = self._keys[index]
        active = self._active[key]
        self._active[key] = active - 1
        if active == self._per_host and self._pending[key]:
            self._ready.append(key)  # the host was full and has work: eligible again
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def wait(self) -> None:
        """Wait until a host slot frees up."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


class _State:
    """What is known about one URL while it is in flight (used for deadline records)."""

    __slots__ = ("attempts", "data", "index", "processing", "started", "status")

    def __init__(self, index: int, started: float) -> None:
        self.index = index
        self.started = started
        self.attempts = 0
        self.status: int | None = None
        self.processing = False
        self.data: Any = None


class _Failure:
    """One attempt's failure: the error, whether it is worth retrying, and any Retry-After."""

    __slots__ = ("error", "retry_after", "retryable")

    def __init__(self, error: FetchError, retryable: bool, retry_after: float | None = None) -> None:
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after


class _AttemptTimer:
    """Bounds each attempt of one worker in total, with one lazily re-armed timer per worker.

    The semantics are those of ``asyncio.timeout`` around the attempt: when the time is up, the
    worker task is cancelled where it waits, and that cancellation (and only it: a cancellation
    from outside still propagates) is turned into a timeout. ``asyncio.timeout`` costs a Timeout
    object, two coroutine calls and a timer-heap push and cancel per request: about 6 us, 5-10 %
    of the CPU a keep-alive request takes. Here :meth:`start` only stores the attempt's expiry;
    the single timer handle, armed at an earlier attempt's expiry, re-arms itself at the current
    one when it comes early. Expiries of one worker never decrease (``min(start + timeout_s,
    deadline)``), so it never comes late, and it fires about once per ``timeout_s`` while
    requests finish in time.
    """

    __slots__ = ("_armed_at", "_cancelling", "_expires_at", "_fired", "_handle", "_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self._loop = loop
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._expires_at: float | None = None
        self._fired = False
        self._cancelling = 0

    def start(self, expires_at: float) -> None:
        """An attempt begins; it must be over by loop time ``expires_at``."""
        self._expires_at = expires_at
        self._fired = False
        if _HAS_UNCANCEL:
            self._cancelling = self._task.cancelling()
        handle = self._handle
        if handle is None:
            self._arm(expires_at)
        elif self._armed_at > expires_at:  # never happens with non-decreasing expiries; never late
            handle.cancel()
            self._arm(expires_at)

    def stop(self) -> bool:
        """The attempt is over. True if this timer cancelled it (the caller turns a CancelledError
        into a timeout then); False if it did not, or if the task was also cancelled from outside."""
        self._expires_at = None
        if not self._fired:
            return False
        self._fired = False
        if _HAS_UNCANCEL:
            return self._task.uncancel() <= self._cancelling
        return True

    def close(self) -> None:
        self._expires_at = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        expires_at = self._expires_at
        if expires_at is None:
            return  # between attempts: the next start() arms the timer again
        if expires_at > self._armed_at:
            self._arm(expires_at)  # armed for an earlier attempt: wait for this one's expiry
            return
        self._expires_at = None
        self._fired = True
        self._task.cancel()


# A redirect whose Location is malformed or not http(s) is the server's error, not the caller's:
# aiohttp >= 3.10 raises these for it (older versions a plain InvalidURL, classified below).
_REDIRECT_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(aiohttp, "RedirectClientError", None),) if isinstance(cls, type)
)
# aiohttp >= 3.10 refusing a request URL that is not http(s) (which _parse_url does not let through).
_REQUEST_URL_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(aiohttp, "NonHttpUrlClientError", None),) if isinstance(cls, type)
)


def _classify(exc: BaseException) -> _Failure:
    """Map an exception from one attempt to an error record (never called for cancellation)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (aiohttp.TooManyRedirects, *_REDIRECT_ERRORS)):
        return _Failure(FetchError("http", text), retryable=False)
    if isinstance(exc, (aiohttp.InvalidURL, *_REQUEST_URL_ERRORS)):
        # aiohttp refused the request URL itself, stricter than _parse_url. (Before aiohttp 3.10
        # this may also be a redirect's Location, which is the server's error: ``http`` there.)
        kind: ErrorKind = "invalid_url" if _REDIRECT_ERRORS else "http"
        return _Failure(FetchError(kind, text), retryable=False)
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return _Failure(FetchError("connection", text), retryable=False)  # will not fix itself
    # Refused, reset (also mid-body: ClientPayloadError), DNS, server closed early, malformed
    # response (ClientResponseError from the parser), any other OSError: worth another try.
    return _Failure(FetchError("connection", text), retryable=True)


def _is_encoded(resp: aiohttp.ClientResponse) -> bool:
    encoding = resp.headers.get("Content-Encoding")
    return encoding is not None and encoding.strip().lower() not in ("", "identity")


class _Run:
    """One call of afetch_all: workers, scheduler, records, deadline."""

    def __init__(self, cfg: _Config, session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.session = session
        self.loop = loop
        n = len(cfg.urls)
        self.n = n
        self.results: list[FetchResult | None] = [None] * n
        self.inflight: dict[int, _State] = {}
        self.finished = 0
        self.all_done: asyncio.Future[None] = loop.create_future()
        self.started_at = loop.time()
        self.deadline_at = None if cfg.deadline_s is None else self.started_at + cfg.deadline_s
        # Invalid URLs are recorded in run() without being scheduled: no worker, slot or request.
        to_fetch = [i for i, url in enumerate(cfg.parsed) if url is not None]
        host_keys = (
            []
            if cfg.per_host is None
            else ["" if u is None else f"{u.scheme}://{u.host}:{u.port}" for u in cfg.parsed]
        )
        self.scheduler = _Scheduler(to_fetch, host_keys, cfg.per_host, loop)
        self.to_fetch = len(to_fetch)
        self.rng = random.Random()
        self.workers: list[asyncio.Task[None]] = []
        self.processors: set[asyncio.Task[None]] = set()
        self.callbacks: list[Callable[[FetchResult], object]] = []
        if cfg.on_result is not None:
            self.callbacks.append(cfg.on_result)

    # -- driving ---------------------------------------------------------------------------

    async def run(self) -> list[FetchResult]:
        try:
            for index, message in self.cfg.invalid.items():
                # Final at once: never requested, so never retried, and no slot or backoff spent.
                error = FetchError("invalid_url", message)
                self._finish(index, FetchResult(self.cfg.urls[index], False, None, None, error, 0, 0.0))
            for _ in range(min(self.cfg.concurrency, self.to_fetch)):
                self.workers.append(self.loop.create_task(self._worker()))
            timeout = None if self.deadline_at is None else max(0.0, self.deadline_at - self.loop.time())
            # asyncio.wait never cancels all_done, so a late set_result cannot hit a cancelled future.
            await asyncio.wait((self.all_done,), timeout=timeout)
            if self.all_done.done():
                self.all_done.result()  # re-raises a failing on_result callback
        finally:
            await self._cancel_leftovers()
        now = self.loop.time()
        return [r if r is not None else self._deadline_record(i, now) for i, r in enumerate(self.results)]

    async def _cancel_leftovers(self) -> None:
        leftovers = [t for t in (*self.workers, *self.processors) if not t.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        if self.all_done.done() and not self.all_done.cancelled():
            self.all_done.exception()  # mark retrieved: no "exception was never retrieved" log

    def _abort(self, exc: Exception) -> None:
        if not self.all_done.done():
            self.all_done.set_exception(exc)

    def _finish(self, index: int, record: FetchResult) -> None:
        self.results[index] = record
        self.inflight.pop(index, None)
        self.finished += 1
        for callback in self.callbacks:
            callback(record)
        if self.finished == self.n and not self.all_done.done():
            self.all_done.set_result(None)

    def _deadline_error(self, state: _State | None) -> FetchError:
        if state is None or state.attempts == 0:
            what = "before this URL was started"
        elif state.processing:
            what = "during processing"
        else:
            what = "before the response was complete"
        return FetchError("deadline", f"deadline_s={self.cfg.deadline_s:g} passed {what}")

    def _deadline_record(self, index: int, now: float) -> FetchResult:
        state = self.inflight.get(index)
        if state is None:
            return FetchResult(self.cfg.urls[index], False, None, None, self._deadline_error(None), 0, 0.0)
        return FetchResult(
            self.cfg.urls[index],
            False,
            state.status,
            state.data if state.processing else None,
            self._deadline_error(state),
            state.attempts,
            now - state.started if state.attempts else 0.0,
        )

    # -- workers ---------------------------------------------------------------------------

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        timer = _AttemptTimer(self.loop, task)
        try:
            await self._work(timer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing on_result callback: stop the whole call
            self._abort(exc)
        finally:
            timer.close()

    async def _work(self, timer: _AttemptTimer) -> None:
        scheduler = self.scheduler
        process = self.cfg.process
        deadline_at = self.deadline_at
        while True:
            if deadline_at is not None and self.loop.time() >= deadline_at:
                return  # whatever is left gets a "not started" deadline record
            index = scheduler.take()
            if index is None:
                if scheduler.exhausted:
                    return
                await scheduler.wait()
                continue
            state = _State(index, self.loop.time())
            self.inflight[index] = state
            try:
                record = await self._fetch(state, timer)
            finally:
                scheduler.release(index)
            if record.ok and process is not None:
                # Processing runs beside the fetching: the worker moves on to the next URL.
                state.processing = True
                state.data = record.data
                task = self.loop.create_task(self._process(state, record))
                self.processors.add(task)
                task.add_done_callback(self.processors.discard)
            else:
                self._finish(index, record)

    async def _process(self, state: _State, record: FetchResult) -> None:
        try:
            await self._process_one(state, record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._abort(exc)

    async def _process_one(self, state: _State, record: FetchResult) -> None:
        process = self.cfg.process
        assert process is not None
        try:
            if self.cfg.process_executor is not None:
                value = await self.loop.run_in_executor(self.cfg.process_executor, process, record.data)
            else:
                value = process(record.data)
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed = FetchResult(
                record.url,
                False,
                record.status,
                record.data,
                FetchError("process", f"{type(exc).__name__}: {exc}"),
                record.attempts,
                self.loop.time() - state.started,
            )
            self._finish(state.index, failed)
            return
        done = FetchResult(
            record.url, True, record.status, value, None, record.attempts, self.loop.time() - state.started
        )
        self._finish(state.index, done)

    # -- one URL: attempts and retries -----------------------------------------------------

    async def _fetch(self, state: _State, timer: _AttemptTimer) -> FetchResult:
        cfg = self.cfg
        loop = self.loop
        session = self.session
        url = cfg.parsed[state.index]
        assert url is not None  # only valid URLs are scheduled
        charset: str | None = None
        while True:
            now = loop.time()
            expires_at = now + cfg.timeout_s
            capped_by_deadline = False
            if self.deadline_at is not None:
                if self.deadline_at <= now:
                    return self._failed(state, self._deadline_error(state))
                if self.deadline_at <= expires_at:
                    expires_at = self.deadline_at
                    capped_by_deadline = True
            state.attempts += 1
            failure: _Failure
            # The hot path stays in this one coroutine: no helper frame per request. Nothing may
            # be awaited between timer.start() and the request, or between the request and
            # timer.stop(): the timer must only ever cancel the task inside the request.
            timer.start(expires_at)
            try:
                try:
                    async with session.get(url) as resp:
                        status = state.status = resp.status
                        outcome: bytes | _Failure
                        if status >= 400:
                            outcome = await self._http_failure(resp)
                        elif self._read_whole(resp):
                            outcome = await resp.read()  # the parser stops at Content-Length
                        else:
                            outcome = await self._read_limited(resp)
                        if cfg.parse == "text":
                            charset = resp.charset
                finally:
                    timed_out = timer.stop()
            except asyncio.CancelledError:
                if not timed_out:
                    raise
                if capped_by_deadline:
                    failure = _Failure(self._deadline_error(state), retryable=False)
                else:
                    failure = _Failure(
                        FetchError("timeout", f"no complete response within timeout_s={cfg.timeout_s:g}"),
                        retryable=True,
                    )
            except (aiohttp.ClientError, OSError) as exc:
                failure = _classify(exc)
            except Exception as exc:  # anything else aiohttp lets out: still this URL's problem only
                failure = _Failure(FetchError("connection", f"{type(exc).__name__}: {exc}"), retryable=False)
            else:
                if isinstance(outcome, _Failure):
                    failure = outcome
                else:
                    return self._parsed(state, outcome, charset)
            if not failure.retryable or state.attempts > cfg.retries:
                return self._failed(state, failure.error)
            if failure.retry_after is not None:
                delay = failure.retry_after
                if delay > cfg.max_backoff_s:
                    return self._failed(
                        state,
                        failure.error,
                        f"not retried: Retry-After {delay:g} s exceeds max_backoff_s={cfg.max_backoff_s:g}",
                    )
            else:
                delay = backoff_delay(state.attempts, cfg.backoff_s, cfg.max_backoff_s, self.rng)
            if self.deadline_at is not None and loop.time() + delay >= self.deadline_at:
                return self._failed(
                    state,
                    failure.error,
                    f"not retried: deadline_s={cfg.deadline_s:g} would pass during the backoff",
                )
            await asyncio.sleep(delay)

    def _read_whole(self, resp: aiohttp.ClientResponse) -> bool:
        """True when ``resp.read()`` is safe: no limit, or an uncompressed Content-Length within it."""
        limit = self.cfg.max_bytes
        if limit is None:
            return True
        length = resp.content_length
        return length is not None and length <= limit and not _is_encoded(resp)

    async def _read_limited(self, resp: aiohttp.ClientResponse) -> bytes | _Failure:
        limit = self.cfg.max_bytes
        assert limit is not None
        length = resp.content_length
        if length is not None and length > limit and not _is_encoded(resp):
            return _Failure(
                FetchError("too_large", f"Content-Length {length} exceeds max_bytes={limit}"),
                retryable=False,
            )
        # Chunked, close-delimited or compressed (Content-Length counts compressed bytes): count
        # the decoded bytes as they arrive and stop at the limit.
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > limit:
                return _Failure(
                    FetchError("too_large", f"body exceeds max_bytes={limit} (read {total} bytes so far)"),
                    retryable=False,
                )
            chunks.append(chunk)

    async def _http_failure(self, resp: aiohttp.ClientResponse) -> _Failure:
        status = resp.status
        retryable = is_retryable_status(status)
        retry_after = parse_retry_after(resp.headers.get("Retry-After")) if retryable else None
        message = f"HTTP {status} {resp.reason or ''}".rstrip()
        length = resp.content_length
        if length is not None and 0 < length <= _ERROR_BODY_LIMIT and not _is_encoded(resp):
            # Reading a small error body keeps the connection reusable and says what went wrong.
            snippet = " ".join((await resp.read()).decode("utf-8", "replace").split())
            if snippet:
                message += f": {snippet[:_ERROR_SNIPPET_CHARS]}"
        return _Failure(FetchError("http", message), retryable, retry_after)

    def _parsed(self, state: _State, body: bytes, charset: str | None) -> FetchResult:
        mode = self.cfg.parse
        kind: ErrorKind = "parse"
        data: Any
        try:
            if mode == "json":
                data = json.loads(body)
            elif mode == "text":
                data = body.decode(charset or "utf-8")
            else:
                data = body
        except (ValueError, RecursionError, LookupError) as exc:
            what = "invalid JSON" if mode == "json" else "undecodable text"
            error = FetchError(kind, f"{what}: {type(exc).__name__}: {exc}")
            return self._failed(state, error)
        return FetchResult(
            self.cfg.urls[state.index],
            True,
            state.status,
            data,
            None,
            state.attempts,
            self.loop.time() - state.started,
        )

    def _failed(self, state: _State, error: FetchError, note: str | None = None) -> FetchResult:
        if note is not None:
            error = FetchError(error.kind, f"{error.message} ({note})")
        return FetchResult(
            self.cfg.urls[state.index],
            False,
            state.status,
            None,
            error,
            state.attempts,
            self.loop.time() - state.started,
        )


async def _fetch_configured(cfg: _Config) -> list[FetchResult]:
    if not cfg.urls:
        return []
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(
        limit=cfg.concurrency,
        limit_per_host=cfg.per_host or 0,
        ttl_dns_cache=300,
    )
    bar = None
    try:
        # No aiohttp timeouts: _AttemptTimer bounds each attempt in total, which aiohttp's per-read
        # timeouts cannot (a byte per second resets them forever).
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            headers=cfg.headers,
            raise_for_status=False,
        ) as session:
            run = _Run(cfg, session, loop)
            if cfg.progress:
                from .progress import FetchProgress

                bar = FetchProgress(len(cfg.urls))
                run.callbacks.append(bar.update)
                bar.start()
            return await run.run()
    finally:
        if bar is not None:
            bar.stop()
        # Closed transports release their sockets in a loop callback: let it run before returning.
        await asyncio.sleep(0)


async def afetch_all(
    urls: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int | None = None,
    deadline_s: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    parse: Parse = "json",
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    process: Callable[[Any], Any] | None = None,
    process_executor: Executor | None = None,
    headers: Mapping[str, str] | None = None,
    progress: bool = False,
    on_result: Callable[[FetchResult], object] | None = None,
) -> list[FetchResult]:
    """GET every URL concurrently; return one :class:`FetchResult` per URL, in input order.

    Args:
        urls: absolute ``http://`` / ``https://`` URLs (duplicates allowed, each fetched). A
            malformed one (unparseable, no or another scheme, no host or an impossible one, a
            bad port, control characters, surrounding whitespace) is not requested: its record
            has an ``invalid_url`` error saying what is wrong, ``attempts == 0``.
        concurrency: requests in flight at most (also the connection pool size).
        per_host: requests in flight at most per ``scheme://host:port``; None: no extra limit.
        deadline_s: bound on the whole call. When it passes, unfinished URLs are cancelled and
            recorded with a ``deadline`` error (``attempts == 0`` if never started), and the call
            returns. Backoffs that would end after it are not taken.
        timeout_s: bound on each attempt in total: connect, headers and the complete body (a
            drip-feeding server cannot stretch it). Retried like a connection error.
        retries: further attempts after a connection error, a timeout, 429 or 5xx. Other 4xx,
            ``parse``, ``too_large`` and ``process`` failures are never retried.
        backoff_s: base of the exponential backoff (``backoff_s * 2**(n-1)``, equal jitter) before
            retry ``n``; a ``Retry-After`` header (seconds or HTTP-date) replaces it.
        max_backoff_s: cap on the computed backoff; a ``Retry-After`` longer than this is not
            waited for, the URL fails with its last error instead.
        parse: ``"json"`` (any content type), ``"text"`` (charset from Content-Type, else UTF-8)
            or ``"bytes"``.
        max_bytes: largest body accepted, counted after decompression; None for no limit.
        process: called with each successful body as it arrives; its return value becomes
            ``data``. A coroutine function is awaited on the loop; a plain function runs on the
            loop (keep it cheap) unless ``process_executor`` is given. If it raises, the URL gets
            a ``process`` error and keeps the unprocessed body in ``data``.
        process_executor: any :class:`concurrent.futures.Executor` (e.g. a ProcessPoolExecutor
            for CPU-heavy work; ``process`` and the bodies must then be picklable) to run a plain
            ``process`` in via ``loop.run_in_executor`` while fetching goes on.
        headers: extra request headers (the default User-Agent names manycore).
        progress: show a rich progress bar on stderr.
        on_result: called on the loop with each final record as soon as it exists (completion
            order). An exception it raises stops the call and propagates.

    Raises:
        ValueError, TypeError: a bad argument, named in the message, before any request. For
            ``urls`` that is only TypeError: not an iterable, a single URL, or an element that
            is neither a ``str`` nor a ``yarl.URL`` (``urls[i]`` named).
        asyncio.CancelledError: the call was cancelled (Ctrl-C under :func:`fetch_all`); every
            request is cancelled and the session closed first.
    """
    cfg = _configure(
        urls,
        concurrency=concurrency,
        per_host=per_host,
        deadline_s=deadline_s,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        parse=parse,
        max_bytes=max_bytes,
        process=process,
        process_executor=process_executor,
        headers=headers,
        progress=progress,
        on_result=on_result,
    )
    return await _fetch_configured(cfg)


def fetch_all(
    urls: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int | None = None,
    deadline_s: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    parse: Parse = "json",
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    process: Callable[[Any], Any] | None = None,
    process_executor: Executor | None = None,
    headers: Mapping[str, str] | None = None,
    progress: bool = False,
    on_result: Callable[[FetchResult], object] | None = None,
) -> list[FetchResult]:
    """Blocking form of :func:`afetch_all` (same arguments and results) on a fresh event loop.

    Ctrl-C cancels every request, closes the session and raises KeyboardInterrupt. Inside a
    running event loop use ``await afetch_all(...)`` instead (this raises RuntimeError there).
    """
    cfg = _configure(
        urls,
        concurrency=concurrency,
        per_host=per_host,
        deadline_s=deadline_s,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        parse=parse,
        max_bytes=max_bytes,
        process=process,
        process_executor=process_executor,
        headers=headers,
        progress=progress,
        on_result=on_result,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("fetch_all() cannot run inside a running event loop; use `await afetch_all(...)`")
    if not cfg.urls:
        return []
    return asyncio.run(_fetch_configured(cfg))
