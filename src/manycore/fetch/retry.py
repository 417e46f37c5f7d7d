"""The retry policy: which failures are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import email.utils
import math
import random
import time
from datetime import UTC

RETRY_STATUSES = frozenset({429, *range(500, 600)})
"""HTTP statuses worth another attempt: 429 Too Many Requests and every 5xx. No other 4xx."""


def is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def backoff_delay(retry: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry).

    Exponential (``base_s * 2**(retry-1)``, capped at ``max_s``) with "equal jitter": a uniform
    draw from the upper half of that interval, so clients that failed together do not come back
    together, yet the wait never collapses to zero.
    """
    if retry < 1:
        raise ValueError(f"retry must be >= 1, got {retry}")
    ceiling = min(max_s, base_s * 2.0 ** min(retry - 1, 60))
    return ceiling / 2.0 + rng.random() * ceiling / 2.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or None if absent or unreadable.

    Both forms of RFC 9110 are understood: delay-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, relative to ``now``, default ``time.time()``).
    A date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
