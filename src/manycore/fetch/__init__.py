"""Fetch many URLs concurrently with asyncio: bounded, with deadlines, retries and per-URL errors.

>>> from manycore.fetch import fetch_all, DemoServer
>>> with DemoServer() as api:
...     results = fetch_all(api.todo_urls(3), deadline_s=10)
>>> [r.data["id"] for r in results]
[1, 2, 3]

Modules
    fetcher       fetch_all / afetch_all (aiohttp, one session, worker coroutines)
    result        FetchResult, FetchError, FetchSummary, summarize
    retry         which failures are retried, backoff with jitter, Retry-After
    demo_server   DemoServer: a local /todos JSON API (the seed's example, offline)
    progress      FetchProgress: a rich progress bar fed by on_result
    command       the body of ``manycore fetch`` (imported lazily by manycore.cli)
"""

from __future__ import annotations

from .._extras import require

require(
    "aiohttp", extra="fetch", feature="manycore.fetch"
)  # a missing extra is named, not a bare ImportError

from .demo_server import DemoServer, make_todo, process_data, process_data_sync  # noqa: E402
from .fetcher import (  # noqa: E402
    DEFAULT_BACKOFF_S,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    Parse,
    afetch_all,
    fetch_all,
)
from .result import ERROR_KINDS, ErrorKind, FetchError, FetchResult, FetchSummary, summarize  # noqa: E402

__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BACKOFF_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "ERROR_KINDS",
    "DemoServer",
    "ErrorKind",
    "FetchError",
    "FetchResult",
    "FetchSummary",
    "Parse",
    "afetch_all",
    "fetch_all",
    "make_todo",
    "process_data",
    "process_data_sync",
    "summarize",
]
