"""parallel_for with C callbacks from every source: Python, ctypes, cffi, Numba, Cython.

What happens to an exception raised in a callback: ctypes prints it ("Exception
ignored on calling ctypes callback function") and returns 0; cffi prints it
("From cffi callback ...") and returns the declared error value.  Neither
reaches the caller.  The wrappers here keep the first exception raised by a
Python body and re-raise it after the region; later chunks return at once.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import manycore.ffi
from manycore import _build, native
from manycore._cy import core as cy_core
from manycore.ffi import ctypes_core
from optional import cffi_core_or_stand_in, import_or_skip

cffi_core = cffi_core_or_stand_in()

PF_BINDINGS: dict[str, ModuleType] = {"ctypes": ctypes_core, "cffi": cffi_core, "cython": cy_core}


@pytest.fixture(params=list(PF_BINDINGS))
def binding(request: pytest.FixtureRequest) -> ModuleType:
    return PF_BINDINGS[request.param]


def _chunks(record: list[tuple[int, int, int]]) -> Callable[[int, int, int], None]:
    lock = threading.Lock()

    def body(begin: int, end: int, worker: int) -> None:
        with lock:
            record.append((begin, end, worker))

    return body


@pytest.mark.parametrize("schedule", ["static", "dynamic"])
@pytest.mark.parametrize(("n", "grain"), [(0, 0), (1, 0), (1000, 7), (10_007, 0), (64, 64)])
def test_python_body_covers_the_range_once(binding: ModuleType, schedule: str, n: int, grain: int) -> None:
    record: list[tuple[int, int, int]] = []
    binding.parallel_for(_chunks(record), n, grain=grain, schedule=schedule, threads=2)
    covered = sorted(i for b, e, _ in record for i in range(b, e))
    assert covered == list(range(n))
    assert all(0 <= w < 2 for _, _, w in record)
    if grain:
        assert all(e - b <= grain for b, e, _ in record)


def test_python_body_with_explicit_pool(binding: ModuleType) -> None:
    record: list[tuple[int, int, int]] = []
    with binding.Pool(3) as p:
        binding.parallel_for(_chunks(record), 3000, grain=10, pool=p)
    assert sorted(i for b, e, _ in record for i in range(b, e)) == list(range(3000))
    assert {w for _, _, w in record} <= {0, 1, 2}


def test_exception_in_python_body_is_reraised(binding: ModuleType, capfd: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []

    def body(begin: int, end: int, worker: int) -> None:
        calls.append(begin)
        if begin >= 500:
            raise ValueError(f"bad chunk at {begin}")

    with pytest.raises(ValueError, match=r"^bad chunk at \d+$") as ei:
        binding.parallel_for(body, 1000, grain=100, schedule="dynamic", threads=2)
    assert int(str(ei.value).rsplit(" ", 1)[1]) >= 500
    assert ei.value.__traceback__ is not None  # raised with the body's traceback
    err = capfd.readouterr().err
    assert "Exception ignored" not in err  # nothing printed
    assert "From cffi callback" not in err
    # the binding is usable afterwards
    record: list[tuple[int, int, int]] = []
    binding.parallel_for(_chunks(record), 10, threads=2)
    assert len(record) >= 1


def test_base_exceptions_are_reraised_too(binding: ModuleType) -> None:
    def body(begin: int, end: int, worker: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        binding.parallel_for(body, 10, threads=2)


def _reported(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where ctypes/cffi send a callback's exception: sys.unraisablehook (printed by default)."""
    seen: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(f"{u.exc_type.__name__}: {u.exc_value}"))
    return seen


def test_raw_ctypes_callback_exception_is_printed_and_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The behaviour the wrappers fix: a bare CFUNCTYPE body's exception never reaches the caller."""

    def body(ctx: int | None, begin: int, end: int, worker: int) -> None:
        raise ValueError("lost")

    seen = _reported(monkeypatch)
    fn = ctypes_core.task_function(body)
    ctypes_core.parallel_for(fn, 4, threads=1)  # returns normally
    assert seen  # once per chunk, all lost
    assert set(seen) == {"ValueError: lost"}


def test_raw_cffi_callback_exception_is_printed_and_lost(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def body(ctx: Any, begin: int, end: int, worker: int) -> None:
        raise ValueError("lost too")

    seen = _reported(monkeypatch)
    cb = cffi_core.task_callback(body)
    cffi_core.parallel_for(cb, 4, threads=1)  # returns normally
    assert set(seen) == {"ValueError: lost too"} or "ValueError: lost too" in capfd.readouterr().err


def test_ctypes_and_cffi_function_pointers() -> None:
    out = np.zeros(100, dtype=np.int64)

    def body(ctx: Any, begin: int, end: int, worker: int) -> None:
        for i in range(begin, end):
            out[i] = i * i

    ctypes_core.parallel_for(ctypes_core.task_function(body), 50, threads=2)
    cb = cffi_core.task_callback(body)
    cffi_core.parallel_for(cb, 100, threads=2)
    assert out.tolist() == [i * i for i in range(100)]
    # the package-level wrapper routes each kind to its binding
    out[:] = 0
    manycore.ffi.parallel_for(cb, 100)
    manycore.ffi.parallel_for(ctypes_core.task_function(body), 100)
    assert out.tolist() == [i * i for i in range(100)]


def test_wrong_signatures_are_type_errors() -> None:
    three_args = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)(lambda *a: None)
    with pytest.raises(TypeError, match="signature"):
        ctypes_core.parallel_for(three_args, 10)
    with pytest.raises(TypeError, match="signature"):
        cffi_core.parallel_for(cffi_core.ffi.callback("mc_poll_fn", lambda c: 0), 10)
    with pytest.raises(TypeError, match="signature"):
        # mc_noop_range is void(void *, size_t, size_t): the extension's 3-argument convention
        cffi_core.parallel_for(cffi_core.lib.mc_noop_range, 10)
    with pytest.raises(TypeError, match="fn must be a Python callable"):
        ctypes_core.parallel_for(42.0, 10)
    with pytest.raises(ValueError, match="nonzero function address"):
        ctypes_core.parallel_for(0, 10)


@pytest.mark.parametrize(
    ("kw", "exc", "pattern"),
    [
        ({"n": -1}, ValueError, r"^n must be >= 0"),
        ({"grain": -1}, ValueError, r"^grain must be >= 0"),
        ({"context": -1}, ValueError, r"^context must be >= 0"),
        ({"context": 2.5}, TypeError, r"^context must be None, an int address"),
        ({"schedule": "guided"}, ValueError, r"^schedule must be 'static' or 'dynamic', got 'guided'"),
        ({"threads": 0}, ValueError, r"^threads must be between 1 and 1024"),
    ],
)
def test_argument_errors(binding: ModuleType, kw: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    args: dict[str, Any] = {"fn": lambda b, e, w: None, "n": 10}
    args.update(kw)
    with pytest.raises(exc, match=pattern):
        binding.parallel_for(**args)


def test_context_kinds() -> None:
    """ctx receives the address of a buffer, a ctypes object, a cffi pointer or an int."""
    seen: list[int | None] = []

    def body(ctx: int | None, begin: int, end: int, worker: int) -> None:
        seen.append(ctx)

    fn = ctypes_core.task_function(body)
    arr = np.zeros(4)
    cobj = ctypes.c_double(1.0)
    ctypes_core.parallel_for(fn, 1, arr)
    ctypes_core.parallel_for(fn, 1, cobj)
    ctypes_core.parallel_for(fn, 1, 12345)
    ctypes_core.parallel_for(fn, 1, None)
    assert seen == [arr.ctypes.data, ctypes.addressof(cobj), 12345, None]
    cptr = cffi_core.ffi.new("double[4]")
    seen_cffi: list[int] = []
    cb = cffi_core.task_callback(
        lambda ctx, b, e, w: seen_cffi.append(int(cffi_core.ffi.cast("uintptr_t", ctx)))
    )
    cffi_core.parallel_for(cb, 1, cptr)
    assert seen_cffi == [int(cffi_core.ffi.cast("uintptr_t", cptr))]


# ---------------------------------------------------------------- compiled bodies (Numba)
@pytest.fixture(scope="module")
def numba_body() -> Any:
    """A Numba @cfunc mc_task_fn: per-worker sum of sqrt(i) into ctx (a float64 array)."""
    numba = import_or_skip("numba", "numba", "a Numba @cfunc body")
    from numba import types

    @numba.cfunc(types.void(types.voidptr, types.uintp, types.uintp, types.uint32), nopython=True)
    def body(ctx, begin, end, worker):  # type: ignore[no-untyped-def]
        acc = numba.carray(ctx, 64, np.float64)
        s = 0.0
        for i in range(begin, end):
            s += math.sqrt(i)
        acc[worker * 8] += s

    return body


def test_numba_cfunc_body(numba_body: Any) -> None:
    n = 2_000_003
    want = math.fsum(math.sqrt(i) for i in range(0, n, 1))
    for m in (ctypes_core, cffi_core, cy_core):
        acc = np.zeros(64)
        m.parallel_for(numba_body, n, acc, grain=1 << 16, threads=2)
        assert np.count_nonzero(acc) <= 2  # only the slots of workers 0 and 1
        assert abs(acc.sum() - want) < 1e-9 * want
    acc = np.zeros(64)
    manycore.ffi.parallel_for(numba_body, n, acc, grain=1 << 16)
    assert abs(acc.sum() - want) < 1e-9 * want


def test_numba_wrong_signature() -> None:
    numba = import_or_skip("numba", "numba", "a Numba @cfunc body")
    from numba import types

    @numba.cfunc(types.void(types.voidptr, types.uintp, types.uintp), nopython=True)
    def three(ctx, begin, end):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match="Numba cfunc body must have the signature"):
        ctypes_core.parallel_for(three, 10)


@pytest.mark.parametrize("name", list(PF_BINDINGS))
def test_python_bodies_run_at_once_only_without_the_gil(name: str) -> None:
    """Two workers each run one chunk of a Python body that spins, in pure Python, until it sees the other.

    With the GIL (and the switch interval raised above the spin), the first
    body keeps the GIL: the other cannot start until it gives up, so neither
    sees the other running.  With the GIL off (free-threaded build) both run
    at once and meet.  Time-slicing by the OS lets them meet even on a busy
    machine, so the GIL-off case waits up to 30 s for it.
    """
    gil_on = _build.gil_enabled()
    entered: dict[int, bool] = {}
    left: dict[int, bool] = {}
    met: dict[int, bool] = {}

    def py_body(begin: int, end: int, worker: int) -> None:
        entered[worker] = True
        deadline = time.monotonic() + (0.5 if gil_on else 30.0)
        while time.monotonic() < deadline:  # no blocking call: the GIL, if on, is never released here
            # the other is running now, or saw this one running: they overlapped
            if any(w != worker and (not left.get(w) or met.get(w)) for w in list(entered)):
                met[worker] = True
                break
        left[worker] = True

    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        PF_BINDINGS[name].parallel_for(py_body, 2, grain=1, threads=2, schedule="static")
    finally:
        sys.setswitchinterval(old)
    assert len(entered) == 2, entered  # one chunk per worker
    if gil_on:
        assert not met, "two Python bodies ran at the same time with the GIL on"
    else:
        assert met, "two Python bodies never ran at the same time with the GIL off"


def test_native_and_ffi_parallel_for_same_core() -> None:
    """native.parallel_for (3-argument bodies) and the ffi wrappers (mc_task_fn) share the pool code."""
    native.parallel_for(native._native.noop_address(), 1000)  # type: ignore[attr-defined]
    ctypes_core.parallel_for(lambda b, e, w: None, 1000)
