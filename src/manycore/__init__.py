"""manycore: every way of running Python in parallel, real, fast and correct.

Subpackages and modules
    manycore.native   the native POSIX-thread runtime (C core, persistent pool, GIL-free kernels)
    manycore.cli      the ``manycore`` command (``manycore info``)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
