"""What a fetch returns: one :class:`FetchResult` per URL, and a summary of many.

Errors are data here. A URL that fails (malformed, connection refused, reset mid-body, a timeout, an
HTTP error left after retries, invalid JSON, a body over ``max_bytes``, a failing ``process`` step,
the call's deadline passing) yields a :class:`FetchResult` with ``ok=False`` and a
:class:`FetchError` saying which of those happened; it never raises out of
:func:`manycore.fetch.fetch_all`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ErrorKind = Literal[
    "invalid_url", "connection", "timeout", "deadline", "http", "parse", "too_large", "process"
]
"""Why a URL failed.

``invalid_url``
    The URL cannot be requested as given: yarl cannot parse it (e.g. a port that is not a number),
    it has no scheme or one other than http/https, no host or a host name that cannot exist,
    control characters, or leading/trailing whitespace. The message quotes the URL and says
    which. Recorded before any request (``attempts == 0``, ``elapsed_s == 0``); never retried.
``connection``
    No well-formed HTTP response: DNS failure, connection refused or reset (also mid-body),
    the server closing early, a malformed status line or headers. Retried.
``timeout``
    One attempt took longer than ``timeout_s`` in total (connect + headers + body). Retried.
``deadline``
    The call's ``deadline_s`` passed before this URL finished (or started: ``attempts == 0``).
``http``
    An HTTP status >= 400 (after retries for 429 and 5xx), or a redirect loop.
``parse``
    The body is not valid JSON (``parse="json"``) or not decodable text (``parse="text"``).
``too_large``
    The body (after decompression) is longer than ``max_bytes``.
``process``
    The ``process`` callable raised; ``data`` then holds the unprocessed body.
"""

ERROR_KINDS: tuple[ErrorKind, ...] = (
    "invalid_url",
    "connection",
    "timeout",
    "deadline",
    "http",
    "parse",
    "too_large",
    "process",
)


@dataclass(frozen=True, slots=True)
class FetchError:
    """Why one URL failed: a machine-readable ``kind`` and a human-readable ``message``."""

    kind: ErrorKind
    message: str

    @property
    def is_timeout(self) -> bool:
        """True for both the per-request ``timeout`` and the whole-call ``deadline``."""
        return self.kind in ("timeout", "deadline")

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome for one input URL.

    Attributes:
        url: the URL exactly as given.
        ok: True when the body was fetched, parsed and (if asked) processed.
        status: the last HTTP status received, or None if no response arrived.
        data: the parsed body (``dict``/``list``/... for ``json``, ``str`` for ``text``, ``bytes``
            for ``bytes``) or what ``process`` returned; None on failure, except a failing
            ``process`` step or a deadline during processing, where it is the unprocessed body.
        error: None when ``ok``, else why it failed.
        attempts: HTTP requests made for this URL (0 if the deadline passed before it started, or
            if the URL is invalid).
        elapsed_s: seconds from this URL's first request to its final record, retries, backoff
            and processing included (0.0 when no request was made).
    """

    url: str
    ok: bool
    status: int | None
    data: Any
    error: FetchError | None
    attempts: int
    elapsed_s: float

    @property
    def retried(self) -> bool:
        """True when more than one request was needed (or made) for this URL."""
        return self.attempts > 1


@dataclass(frozen=True, slots=True)
class FetchSummary:
    """Counts and latency percentiles over a list of results (see :func:`summarize`)."""

    total: int
    ok: int
    failed: int
    retried: int
    requests: int
    wall_s: float
    p50_s: float
    p95_s: float
    max_s: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def urls_per_s(self) -> float:
        """Finished URLs per second of wall time."""
        return self.total / self.wall_s if self.wall_s > 0 else math.inf

    @property
    def requests_per_s(self) -> float:
        """HTTP requests (attempts, retries included) per second of wall time."""
        return self.requests / self.wall_s if self.wall_s > 0 else math.inf


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(results: Sequence[FetchResult], wall_s: float) -> FetchSummary:
    """Summarise ``results`` of one call that took ``wall_s`` seconds.

    Latency percentiles are over the URLs that made at least one request, successful or not.
    """
    latencies = sorted(r.elapsed_s for r in results if r.attempts > 0)
    errors = Counter(r.error.kind for r in results if r.error is not None)
    ok = sum(1 for r in results if r.ok)
    return FetchSummary(
        total=len(results),
        ok=ok,
        failed=len(results) - ok,
        retried=sum(1 for r in results if r.retried),
        requests=sum(r.attempts for r in results),
        wall_s=wall_s,
        p50_s=_percentile(latencies, 50),
        p95_s=_percentile(latencies, 95),
        max_s=latencies[-1] if latencies else 0.0,
        errors={kind: errors[kind] for kind in ERROR_KINDS if errors[kind]},
    )
