"""Helpers shared by the ffi/Cython parity tests: the four bindings of the core, side by side."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from manycore import native
from manycore._cy import core as cy_core
from manycore.ffi import ctypes_core
from optional import cffi_core_or_stand_in

cffi_core = cffi_core_or_stand_in()  # skips the tests that use it where cffi cannot be installed

# Every binding with the kernel API of manycore.native (same names, same arguments).
BINDINGS: dict[str, ModuleType] = {
    "native": native,
    "ctypes": ctypes_core,
    "cffi": cffi_core,
    "cython": cy_core,
}
FFI_BINDINGS = {k: v for k, v in BINDINGS.items() if k != "native"}

FORMATS = "bBhHiIlLqQfd"


def random_array(fmt: str, n: int, seed: int) -> np.ndarray[Any, Any]:
    """n random elements of struct format ``fmt``, using the type's whole range for integers."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(fmt)
    if dt.kind == "f":
        return (rng.standard_normal(n) * 1e3).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=n, dtype=dt, endpoint=True)


def same(a: object, b: object) -> bool:
    """Equal values of the same type; floats compared bit for bit (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()  # type: ignore[arg-type]
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, np.ndarray):
        return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())  # type: ignore[attr-defined]
    return a == b


def outcome(call: Any) -> tuple[str, object]:
    """("ok", result) or ("raise", (type, message)) of ``call()``."""
    try:
        return "ok", call()
    except Exception as exc:
        return "raise", (type(exc), str(exc))
