"""The unit's sum.c add (ctypes and cffi), and Ctrl-C through every binding."""

from __future__ import annotations

import ctypes

import pytest

import manycore.ffi
from manycore.ffi import seed
from native_support import run_python
from optional import CFFI_MISSING, needs_cffi


def test_add_is_the_seeds_add() -> None:
    assert manycore.ffi.add(5, 10) == 15  # the unit's "Output: 15"
    assert manycore.ffi.add(-(2**31), 2**31 - 1) == -1


@pytest.mark.skipif(CFFI_MISSING is not None, reason=str(CFFI_MISSING))
def test_add_cffi_is_the_seeds_add() -> None:
    assert manycore.ffi.add_cffi(5, 10) == 15
    assert manycore.ffi.add_cffi(2**31 - 2, 1) == 2**31 - 1


WITHOUT_CFFI = """
import sys
sys.modules["cffi"] = None  # as if cffi were not installed (import cffi raises ImportError)
import manycore.ffi
for what in ("add_cffi", "cffi_core"):
    try:
        manycore.ffi.add_cffi(5, 10) if what == "add_cffi" else __import__("manycore.ffi.cffi_core")
    except ImportError as exc:
        print(type(exc).__name__, exc)
"""


def test_without_cffi_the_error_names_the_extra() -> None:
    r = run_python(WITHOUT_CFFI)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, r.stdout
    assert lines[0].startswith("MissingExtraError manycore.ffi.add_cffi needs cffi")
    assert lines[1].startswith("MissingExtraError manycore.ffi.cffi_core needs cffi")
    assert all("pip install 'manycore[cffi]'" in line for line in lines)


@pytest.mark.parametrize("fn", [manycore.ffi.add, needs_cffi(manycore.ffi.add_cffi)])
def test_add_refuses_what_c_int_cannot_hold(fn: object) -> None:
    with pytest.raises(OverflowError, match=r"^a must fit a C int"):
        fn(2**31, 0)  # type: ignore[operator]
    with pytest.raises(OverflowError, match=r"^b must fit a C int"):
        fn(0, -(2**31) - 1)  # type: ignore[operator]
    with pytest.raises(OverflowError, match=r"does not fit a C int: the C sum would overflow"):
        fn(2**31 - 1, 1)  # type: ignore[operator]
    with pytest.raises(TypeError, match=r"^a must be an int, not float"):
        fn(1.5, 2)  # type: ignore[operator]


def test_the_seed_call_without_argtypes_wraps_silently() -> None:
    """Why the wrapper checks: the seed's bare ctypes call truncates Python ints to 32 bits."""
    bare = ctypes.CDLL(seed.seed_library()._name)
    assert bare.add(5, 10) == 15
    assert bare.add(2**32 + 5, 10) == 15


CTRL_C = """
import os, signal, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from {module} import {name} as m
m.count_primes(10**6)  # warm: pools and libraries loaded
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    m.count_primes(2**47)  # minutes of work
    print("finished?!")
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - t0, 1))
print("still usable:", m.count_primes(100))
"""


@pytest.mark.parametrize(
    ("module", "name"),
    [("manycore.ffi", "ctypes_core"), needs_cffi("manycore.ffi", "cffi_core"), ("manycore._cy", "core")],
)
def test_ctrl_c_interrupts_a_long_kernel(module: str, name: str) -> None:
    r = run_python(CTRL_C.format(module=module, name=name), timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("interrupted after"), r.stdout
    assert float(lines[0].split()[-1]) < 10
    assert lines[1] == "still usable: 25"
