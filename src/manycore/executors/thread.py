"""ThreadExecutor: a drop-in ``concurrent.futures.ThreadPoolExecutor`` with ``pmap``.

Same constructor (``max_workers``, ``thread_name_prefix``, ``initializer``,
``initargs``), same ``submit``/``map``/``shutdown`` semantics and the same
``BrokenThreadPool`` when an initializer fails — it *is* a
``ThreadPoolExecutor``.  Threads share the GIL: they speed up I/O and code that
releases the GIL (NumPy, native kernels), not pure-Python CPU work.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ._contract import ManycoreExecutor


class ThreadExecutor(ThreadPoolExecutor, ManycoreExecutor):
    backend_name = "threads"
