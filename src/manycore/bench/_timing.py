"""Timing with repeats: min, median and a noise estimate, measured side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the best and the median of ``repeats`` batches of ``number`` calls."""

    best_s: float
    median_s: float
    repeats: int
    number: int

    @property
    def noise(self) -> float:
        """(median - best) / best: how much the machine disturbed this measurement."""
        return (self.median_s - self.best_s) / self.best_s if self.best_s > 0 else 0.0


def time_call(fn: Callable[[], Any], *, repeats: int = 5, number: int = 1, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return Timing(min(samples), statistics.median(samples), repeats, number)


def time_interleaved(
    fns: dict[str, Callable[[], Any]], *, repeats: int = 5, number: int = 1, warmup: int = 1
) -> dict[str, Timing]:
    """Time several peers round-robin, so a noisy neighbour disturbs them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - t0) / number)
    return {n: Timing(min(s), statistics.median(s), repeats, number) for n, s in samples.items()}


def calibrate_number(fn: Callable[[], Any], target_s: float = 0.02, cap: int = 1_000_000) -> int:
    """How many calls make one timed batch last about ``target_s``."""
    number = 1
    while number < cap:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= target_s / 2:
            break
        number *= 4
    return min(number, cap)
