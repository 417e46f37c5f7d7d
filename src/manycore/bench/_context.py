"""What every section receives: sizes for quick/full runs, the thread count, progress."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from .._cpus import available_cpus


def cpu_count() -> int:
    return available_cpus()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else ``platform.processor()``, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass
class BenchContext:
    quick: bool = False
    tiny: bool = False  # test mode: smallest sizes, every code path still runs
    threads: int = field(default_factory=cpu_count)
    say: Callable[[str], None] = lambda message: None

    def size(self, full: int, quick: int, tiny: int) -> int:
        if self.tiny:
            return tiny
        return quick if self.quick else full

    @property
    def repeats(self) -> int:
        return 2 if self.tiny else (3 if self.quick else 5)

    def thread_counts(self) -> list[int]:
        """1..threads (every count on small machines; powers of two plus the top on big ones)."""
        top = max(1, self.threads)
        if top <= 8:
            return list(range(1, top + 1))
        counts = [1]
        while counts[-1] * 2 < top:
            counts.append(counts[-1] * 2)
        return [*counts, top]


def python_sum_of_squares(n: int) -> int:
    """The unit's pure-Python loop."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def python_range_sum_of_squares(bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    total = 0
    for i in range(lo, hi):
        total += i * i
    return total


def busy(iterations: int) -> int:
    """CPU-bound pure Python that holds the GIL the whole time."""
    total = 0
    for i in range(iterations):
        total += i % 7
    return total


def split(n: int, parts: int) -> list[tuple[int, int]]:
    step, extra = divmod(n, parts)
    out, lo = [], 0
    for k in range(parts):
        hi = lo + step + (1 if k < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out
