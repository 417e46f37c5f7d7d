"""The worker-process layer: the processes manycore owns (docs/architecture.md).

``_start`` (fork or forkserver), ``serialize`` (cloudpickle, shared memory),
``setup`` (what every worker runs first), ``batches`` (the unit of work),
``engine`` (pmap's fault-tolerant process engine), ``report`` (the one
failure report workers send back).
"""

from __future__ import annotations

from . import batches as batches  # links a batches module a subinterpreter loaded on its own
from ._start import other_python_threads, start_context

__all__ = ["other_python_threads", "start_context"]
