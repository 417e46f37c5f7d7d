"""Concurrency patterns as dependable building blocks.

The unit's programs (``Queue``, ``Pipe``, ``Manager``, ``Lock``, ``RLock``,
``Semaphore``, ``Event``, ``Condition``) done right, with their semantics
written down and tested:

``Pipeline``        stages of thread or process workers joined by bounded buffers:
                    ordered/unordered, backpressure, errors and Ctrl-C stop it (pipeline.py)
``BoundedBuffer``   Condition-based producer/consumer buffer with close() (buffer.py)
``Limiter``         at most k concurrent users, threads; ``AsyncLimiter`` for asyncio (limiter.py)
``Gate``            start gate; ``Countdown``: latch released after N count-downs (gates.py)
``SharedCounter``   process-shared counter on multiprocessing.Value + its lock;
                    ``manager_example``: Manager list/dict done right (shared.py)
``race``            ``race.run_race()`` / ``race.demo()``: lost updates shown every time (race.py)
``measure``         Pipe ping-pong, queue throughput, Manager proxy cost (measure.py)

``race`` and ``measure`` are imported on first access (so that
``python -m manycore.patterns.race`` runs without a double import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import Closed, RemoteError, RemoteTraceback, WorkerDied
from .buffer import BoundedBuffer
from .gates import Countdown, Gate
from .limiter import AsyncLimiter, Limiter
from .pipeline import PROCESS_STOP_GRACE_S, Pipeline, PipelineRun, Stage
from .shared import ManagerExampleResult, SharedCounter, manager_example

if TYPE_CHECKING:
    from . import measure, race

__all__ = [
    "PROCESS_STOP_GRACE_S",
    "AsyncLimiter",
    "BoundedBuffer",
    "Closed",
    "Countdown",
    "Gate",
    "Limiter",
    "ManagerExampleResult",
    "Pipeline",
    "PipelineRun",
    "RemoteError",
    "RemoteTraceback",
    "SharedCounter",
    "Stage",
    "WorkerDied",
    "manager_example",
    "measure",
    "race",
]

_LAZY = ("measure", "race")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
