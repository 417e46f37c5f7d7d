"""How many CPUs this process may use: the one place manycore counts them."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - no affinity API (macOS, Windows)
        return max(1, os.cpu_count() or 1)
