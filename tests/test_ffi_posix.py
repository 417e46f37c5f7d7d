"""The unit's ctypes pthread_create program, corrected (manycore.ffi.posix), and the same via cffi."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from manycore.ffi import posix
from native_support import leftover_threads, run_python, thread_ids
from optional import CFFI_MISSING, needs_cffi

BACKENDS = ["ctypes", needs_cffi("cffi")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_runs_joins_and_returns_its_value(backend: posix.Backend) -> None:
    before = thread_ids()
    main_id = threading.get_native_id()
    t = posix.start_thread(lambda x: (x * 2, threading.get_native_id()), 21, backend=backend)
    value, tid = t.join()
    assert value == 42
    assert tid == t.native_id != main_id  # a different OS thread (same PID, as every thread)
    assert t.joined
    assert t.join() == (42, tid)  # a second join returns the same outcome, no second pthread_join
    assert leftover_threads(before) == set()  # joined: nothing left behind


@pytest.mark.parametrize("backend", BACKENDS)
def test_arbitrary_python_values_in_and_out(backend: posix.Backend) -> None:
    payload = {"list": [1, 2, 3], "obj": object()}
    out = posix.run_in_thread(lambda d: (d["list"][::-1], d["obj"]), payload, backend=backend)
    assert out == ([3, 2, 1], payload["obj"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_in_the_thread_is_raised_by_join(backend: posix.Backend) -> None:
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    t = posix.start_thread(boom, 7, backend=backend)
    with pytest.raises(ValueError, match=r"^bad 7$"):
        t.join()
    with pytest.raises(ValueError, match=r"^bad 7$"):
        t.join()


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_threads_at_once(backend: posix.Backend) -> None:
    barrier = threading.Barrier(8, timeout=30)

    def body(i: int) -> int:
        barrier.wait()  # all 8 exist at the same time
        return i * i

    threads = [posix.start_thread(body, i, backend=backend) for i in range(8)]
    assert [t.join() for t in threads] == [i * i for i in range(8)]
    assert len({t.native_id for t in threads}) == 8


@pytest.mark.parametrize("backend", BACKENDS)
def test_pthread_create_failure_is_oserror(backend: posix.Backend) -> None:
    before = thread_ids()
    # A 64 TiB stack cannot be mapped: pthread_create returns EAGAIN.
    with pytest.raises(OSError, match=r"^\[Errno \d+\] pthread_create: could not create an OS thread") as ei:
        posix.start_thread(lambda x: x, stack_size=2**46, backend=backend)
    assert ei.value.errno in (errno.EAGAIN, errno.ENOMEM)
    assert leftover_threads(before) == set()
    assert posix.start_thread(lambda x: x + 1, 1, stack_size=1 << 20, backend=backend).join() == 2


def test_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"^fn must be callable"):
        posix.start_thread(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^backend must be 'ctypes' or 'cffi'"):
        posix.start_thread(print, backend="posix")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^stack_size must be >= 16384"):
        posix.start_thread(print, stack_size=100)


@pytest.mark.skipif(CFFI_MISSING is not None, reason=str(CFFI_MISSING))
def test_unjoined_threads_are_joined_at_exit() -> None:
    """A thread nobody joins still finishes its work before the interpreter exits."""
    r = run_python(
        """
        import time
        from manycore.ffi import posix
        def slow(x):
            time.sleep(0.3)
            print("finished", x, flush=True)
        posix.start_thread(slow, 1)
        posix.start_thread(slow, 2, backend="cffi")
        """
    )
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:2]) == ["finished 1", "finished 2"]


def test_seed_program_corrected_prints_from_its_own_thread() -> None:
    """The seed's start_thread(), as docs/ffi.md gives it corrected."""
    r = run_python(
        """
        import os, sys, threading
        from manycore.ffi import posix
        def thread_function(arg):
            # one write per line: the two threads print concurrently
            sys.stdout.write(f"Thread running with PID: {os.getpid()}, native id {threading.get_native_id()}\\n")
            return arg
        t = posix.start_thread(thread_function, "done")
        sys.stdout.write("Thread created.\\n")
        print(t.join(), threading.get_native_id() != t.native_id)
        """
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "Thread created." in lines
    assert lines[-1] == "done True"
    assert any(line.startswith("Thread running with PID: ") for line in lines)
    assert os.getpid() > 0
