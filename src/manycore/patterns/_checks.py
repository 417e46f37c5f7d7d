"""Argument checks shared by the patterns."""

from __future__ import annotations


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) and at least ``minimum``; else TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
