"""What kind of CPython this is: free-threaded or not, GIL on or off right now.

A free-threaded build (PEP 703, ``python3.13t``) runs with the GIL off unless
``PYTHON_GIL=1``/``-X gil=1`` turned it on, or an extension module that did not
declare itself free-threading-safe turned it back on at import.  Everything in
manycore that chooses between threads and processes asks :func:`gil_enabled`
at the moment of choosing, not at import.
"""

from __future__ import annotations

import sys
import sysconfig


def free_threaded_build() -> bool:
    """True on a free-threaded CPython (built with ``--disable-gil``), whatever the GIL's state."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    """True when the GIL is on now: always on a default build; on a free-threaded one, when enabled."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def describe() -> str:
    """One line for reports: ``"CPython 3.13.5, free-threaded build, GIL off"``."""
    version = ".".join(map(str, sys.version_info[:3]))
    impl = sys.implementation.name
    name = "CPython" if impl == "cpython" else impl
    if not free_threaded_build():
        return f"{name} {version}, default build (GIL)"
    return f"{name} {version}, free-threaded build, GIL {'on' if gil_enabled() else 'off'}"
