"""Argument checks shared by every binding of the native core.

The CPython extension, ctypes and cffi faces all validate scalar arguments
here, so the same bad input raises the same exception with the same message
(naming the argument) whichever binding is used.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from . import _errors

MAX_THREADS = 1024
SUPPORTED_FORMATS = frozenset("bBhHiIlLqQfd")


def as_int(value: Any, name: str) -> int:
    """``value`` as an int (anything with ``__index__``), else TypeError naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    too_big: type[Exception] = ValueError,
) -> int:
    v = as_int(value, name)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise too_big(f"{name} must be <= {maximum}, got {v}")
    return v


def check_threads(value: Any, name: str = "threads") -> int:
    v = as_int(value, name)
    if not 1 <= v <= MAX_THREADS:
        raise ValueError(f"{name} must be between 1 and {MAX_THREADS}, got {v}")
    return v


def check_float(value: Any, name: str, *, finite: bool = True) -> float:
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}") from None
    if finite and not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_range(lo: Any, hi: Any, lo_name: str = "lo", hi_name: str = "hi") -> tuple[float, float]:
    a = check_float(lo, lo_name)
    b = check_float(hi, hi_name)
    if not a < b:
        raise ValueError(f"{lo_name} must be < {hi_name}, got {lo_name}={a}, {hi_name}={b}")
    return a, b


def buffer_view(obj: Any, name: str) -> memoryview:
    """A memoryview of ``obj`` (shape and format inspection), or the shared TypeError."""
    try:
        return memoryview(obj)
    except TypeError:
        _errors.raise_argument(_errors.ARG_NOT_BUFFER, name, type(obj).__name__)


def format_char(view: memoryview, name: str) -> str:
    """The single struct character of a native-order buffer format, or the shared TypeError."""
    fmt = view.format
    body = fmt[1:] if fmt[:1] in ("@", "=", "<") else fmt
    if len(body) != 1 or body not in SUPPORTED_FORMATS:
        _errors.raise_argument(_errors.ARG_FORMAT, name, _errors.format_detail(fmt))
    return body
