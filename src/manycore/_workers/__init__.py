"""The worker-process layer: how manycore starts the processes it owns.

For now it holds the start-method rule (:mod:`._start`); the rest of the
worker machinery joins it as the process layer is unified.
"""

from __future__ import annotations

from ._start import other_python_threads, start_context

__all__ = ["other_python_threads", "start_context"]
