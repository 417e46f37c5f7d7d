"""The C core through ctypes and cffi; raw POSIX threads; the unit's ``sum.c``.

``manycore.ffi.ctypes_core`` and ``manycore.ffi.cffi_core`` expose the kernels
of ``manycore.native`` (same results, same exceptions) by loading the very
shared object of the extension, whose exported symbols are the core's
``MC_API`` functions, with declarations read from the installed
``manycore.h``.  ``manycore._cy.core`` does the same from Cython and
``manycore._cy.kernels`` has Cython-native ``prange`` kernels.  docs/ffi.md
says which to use when, with measured costs.

Here, at the package level:

- :func:`parallel_for` -- run a C chunk body on the native pool: a Python
  callable (GIL per call: serialised), a ctypes ``CFUNCTYPE``, a cffi
  ``ffi.callback``/function pointer, a Numba ``@cfunc`` (``manycore[numba]``)
  or an address;
- :func:`add` / :func:`add_cffi` -- the seed's ``sum.c``;
- :mod:`manycore.ffi.posix` -- the seed's ``pthread_create`` program, corrected.

Submodules are imported on first use (cffi is not loaded by ctypes users).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._face import PoolBase

__all__ = ["add", "add_cffi", "cffi_core", "ctypes_core", "parallel_for", "posix", "seed"]


def __getattr__(name: str) -> Any:
    if name in ("ctypes_core", "cffi_core", "posix", "seed"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("add", "add_cffi"):
        return getattr(importlib.import_module(f"{__name__}.seed"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_cffi_object(fn: object) -> bool:
    return type(fn).__module__ == "_cffi_backend"


def parallel_for(
    fn: Any,
    n: int,
    context: object = None,
    grain: int = 0,
    *,
    schedule: str = "static",
    threads: int | None = None,
    pool: PoolBase | None = None,
) -> None:
    """Run chunk body ``fn`` over ``[0, n)`` on the native pool; return when every chunk ran.

    ``fn`` is one of

    - a Python callable ``fn(begin, end, worker)``: called through a ctypes
      callback (a cffi one with a cffi ``pool``).  Each call takes the GIL, so
      chunks run one at a time however many threads there are.  The first
      exception it raises is re-raised here after the region (ctypes/cffi
      alone would print it and carry on);
    - a compiled ``mc_task_fn``, ``void f(void *ctx, size_t begin, size_t end,
      unsigned worker)``: a ctypes function pointer (``ctypes_core.types["mc_task_fn"]``),
      a cffi function pointer or ``ffi.callback("mc_task_fn", ...)``, a Numba
      ``@cfunc("void(voidptr, uintp, uintp, uint32)")``, or an int address.
      Compiled code runs on every thread at once, without the GIL;
      exceptions cannot cross it.

    ``context`` becomes the ``ctx`` pointer: ``None``, an int address, a ctypes
    object, a cffi pointer or any buffer (a NumPy array's data), kept alive
    for the call.  ``worker`` is the participant index in ``[0, threads)``, for
    per-worker scratch.  ``grain`` is the chunk size (0: about 16 chunks per
    thread), ``schedule`` ``"static"`` or ``"dynamic"``; ``threads``/``pool`` as
    everywhere in manycore.  A ``pool`` must come from the binding that runs
    the call: ``ctypes_core.Pool`` (the default) or ``cffi_core.Pool`` (used
    for cffi objects).
    """
    use_cffi = _is_cffi_object(fn) or _is_cffi_object(context)
    if pool is not None:
        use_cffi = type(pool).__module__.endswith("cffi_core")
    module = importlib.import_module(f"{__name__}.{'cffi_core' if use_cffi else 'ctypes_core'}")
    module.parallel_for(fn, n, context, grain, schedule=schedule, threads=threads, pool=pool)
