"""How a map runs, behind :func:`manycore.pmap`: decide, run (dispatch), deliver, progress.

``pmap.py`` checks the arguments and builds a :class:`~.run.MapRequest`;
:func:`~.run.run_map` runs it in named phases.  This package sits above the
executors (it reaches them only through ``ManycoreExecutor.map_plan``) and
the worker layer (``manycore._workers``: batches, the process engine).
"""

from __future__ import annotations

from .progress import with_progress
from .run import MapRequest, RunState, run_map

__all__ = ["MapRequest", "RunState", "run_map", "with_progress"]
