"""Functions with known characters for the advise tests (importable by worker processes)."""

from __future__ import annotations

import time

import numpy as np


def python_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


_arrays: dict[int, np.ndarray] = {}


def numpy_sort(n: int) -> float:
    """np.sort releases the GIL for the whole sort (single-threaded, no BLAS pool)."""
    a = _arrays.get(n)
    if a is None:
        a = _arrays[n] = np.random.default_rng(n).random(n)
    return float(np.sort(a)[n // 2])


def sample_sizes() -> list[int]:
    return [300_000] * 4


def inc(x: int) -> int:
    return x + 1
