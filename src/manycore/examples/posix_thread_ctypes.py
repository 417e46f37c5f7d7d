# Unit section: POSIX Threads > Sample Program: Thread Creation Using ctypes
# Shows: a POSIX thread created from Python with ctypes (pthread_create running a Python
#   function through a ctypes callback), a value passed in through the void* argument, a result
#   passed back out through pthread_join, and the thread ids involved. Then the manycore way:
#   manycore.ffi.posix (this corrected program as a library, through ctypes or cffi) and
#   manycore.native.call_in_threads (Python callables on the native runtime's threads, joined,
#   results and exceptions returned).
# Corrected (docs/seed-errata.md, E9): the unit's program
#   - never joins the thread, so the process usually exits before the thread has run (on this
#     kind of machine "Thread running with PID" is missing from most runs);
#   - drops the only reference to the ctypes callback when start_thread() returns: the C thread
#     may then jump into freed memory (a crash, at random);
#   - declares the thread function as CFUNCTYPE(c_void_p), without the void* parameter every
#     pthread start routine receives, ignores pthread_create's return code, and sets no argtypes;
#   - prints os.getpid() as if it identified the thread: every thread of a process has the same
#     PID; the thread's own id is threading.get_native_id() (gettid on Linux) (E10);
#   - loads "libpthread.so.0" by name, a glibc-only file name (since glibc 2.34 the functions
#     live in libc itself); ctypes.util.find_library finds the right library.
#   Here the callback object lives as long as the thread, the thread is joined, return codes
#   become OSError, and the result travels back through pthread_join's void** out-parameter.
#   `unit_version_facts()` runs the unit's text in a child process to show the first two
#   problems without risking this process.
from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

# The unit's program, verbatim.
UNIT_SOURCE = """\
import ctypes

import os

# Load the pthread library

libpthread = ctypes.CDLL("libpthread.so.0")

# Define a function for the thread to execute

def thread_function():

    print(f"Thread running with PID: {os.getpid()}")


# Wrapper for the thread function

THREAD_FUNC_TYPE = ctypes.CFUNCTYPE(ctypes.c_void_p)

def start_thread():

    thread_func = THREAD_FUNC_TYPE(thread_function)

    # Create a pthread

    thread = ctypes.c_ulong()

    libpthread.pthread_create(
        ctypes.byref(thread), # pthread_t pointer
        None,                # Default attributes
        thread_func,          # Function pointer
        None                 # Argument for the function
    )

    print("Thread created.")

# Run the program

if __name__ == "__main__":
    start_thread()
"""

# ---------------------------------------------------------------- the corrected program
# pthread_t is an unsigned long on Linux and a pointer on macOS and the BSDs.
pthread_t = ctypes.c_ulong if sys.platform.startswith("linux") else ctypes.c_void_p
# void *(*start_routine)(void *): one void* in, one void* out.
START_ROUTINE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


def load_pthread() -> ctypes.CDLL:
    """The C library that has pthread_create/pthread_join, with their prototypes declared."""
    name = ctypes.util.find_library("pthread") or ctypes.util.find_library("c")
    lib = ctypes.CDLL(name)
    lib.pthread_create.argtypes = [ctypes.POINTER(pthread_t), ctypes.c_void_p, START_ROUTINE, ctypes.c_void_p]
    lib.pthread_create.restype = ctypes.c_int
    lib.pthread_join.argtypes = [pthread_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.pthread_join.restype = ctypes.c_int
    return lib


class PosixThread:
    """One POSIX thread running ``fn(value) -> int``; ``join()`` returns the int.

    The value goes in through pthread_create's ``void *arg`` (a pointer to a C long) and the
    result comes out through pthread_join's ``void **retval`` (a pointer to another C long),
    as a C program would do it. ctypes takes the GIL when the thread enters the Python
    callback; a CDLL call such as pthread_join releases it while it waits.
    """

    def __init__(self, fn: Callable[[int], int], value: int, lib: ctypes.CDLL | None = None) -> None:
        self._lib = lib if lib is not None else load_pthread()
        self._fn = fn
        self._arg = ctypes.c_long(value)
        self._out = ctypes.c_long(0)
        self._error: BaseException | None = None
        self.native_id = 0
        self.pid = 0
        # Kept on self until join() returns: the C thread holds a raw pointer to this trampoline.
        self._callback = START_ROUTINE(self._run)
        self._handle = pthread_t()
        self._started = False

    def _run(self, arg: int | None) -> int | None:
        # Runs on the new POSIX thread, with the GIL (ctypes took it for us).
        try:
            self.native_id = threading.get_native_id()
            self.pid = os.getpid()
            if arg is None:
                raise ValueError("the thread was started without its argument")
            value = ctypes.cast(arg, ctypes.POINTER(ctypes.c_long)).contents.value
            self._out.value = self._fn(value)
            return ctypes.addressof(self._out)
        except BaseException as exc:  # an exception cannot cross into C: keep it for join()
            self._error = exc
            return None

    def start(self) -> None:
        rc = self._lib.pthread_create(
            ctypes.byref(self._handle),
            None,
            self._callback,
            ctypes.cast(ctypes.byref(self._arg), ctypes.c_void_p),
        )
        if rc != 0:  # pthread functions return the error number; they do not set errno
            raise OSError(rc, f"pthread_create: {os.strerror(rc)}")
        self._started = True

    def join(self) -> int:
        if not self._started:
            raise RuntimeError("join() before start()")
        retval = ctypes.c_void_p()
        rc = self._lib.pthread_join(self._handle, ctypes.byref(retval))
        self._started = False
        if rc != 0:
            raise OSError(rc, f"pthread_join: {os.strerror(rc)}")
        if self._error is not None:
            raise self._error
        if retval.value is None:
            raise RuntimeError("the thread returned NULL")
        return ctypes.cast(retval, ctypes.POINTER(ctypes.c_long)).contents.value


# ---------------------------------------------------------------- the unit's version, observed safely
_OBSERVER = r"""
import json, os, sys, threading, weakref
sys.setswitchinterval(30.0)  # this thread keeps the GIL: the new thread cannot run Python code yet
namespace = {"__name__": "unit"}
facts = {}
try:
    exec(compile(UNIT_SOURCE, "<unit>", "exec"), namespace)
except OSError as exc:  # e.g. no file called libpthread.so.0 on this system
    facts["load_error"] = str(exc)
else:
    made, ran = [], []
    make_callback = namespace["THREAD_FUNC_TYPE"]
    def traced_type(fn):
        callback = make_callback(fn)
        made.append(weakref.ref(callback))
        return callback
    unit_thread_function = namespace["thread_function"]
    def thread_function():
        ran.append(threading.get_native_id())
        unit_thread_function()
    namespace["THREAD_FUNC_TYPE"] = traced_type
    namespace["thread_function"] = thread_function
    namespace["start_thread"]()
    # Informative only: pthread_create, a ctypes call, releases the GIL, so the thread may or
    # may not have run by now.
    facts["thread_ran_before_start_thread_returned"] = bool(ran)
    facts["callback_alive_after_start_thread_returned"] = made[0]() is not None
    facts["handle_kept"] = False  # `thread` was a local of start_thread: nothing can join it now
# os.write releases the GIL: from here on the thread may run through the freed callback.
os.write(1, ("FACTS " + json.dumps(facts) + "\n").encode())
os._exit(0)
"""


def unit_version_facts(timeout_s: float = 30.0, attempts: int = 3) -> dict[str, Any]:
    """Run the unit's program in a child process, watched, and report what state it leaves.

    The unit's thread may run through its freed callback while the child
    writes its report (undefined behaviour: a crash, or anything else), so a
    child that reported nothing is run again, up to ``attempts`` times.
    """
    code = f"UNIT_SOURCE = {UNIT_SOURCE!r}\n{_OBSERVER}"
    outcomes = []
    for _ in range(attempts):
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s, check=False
        )
        for line in proc.stdout.splitlines():
            if line.startswith("FACTS "):
                facts: dict[str, Any] = json.loads(line[len("FACTS ") :])
                return facts
        outcomes.append(f"exit {proc.returncode}: {proc.stderr[-300:]!r}")
    raise RuntimeError(f"the observed child reported nothing in {attempts} runs ({'; '.join(outcomes)})")


def unit_version_runs(runs: int, timeout_s: float = 30.0) -> int:
    """Run the unit's program ``runs`` times as it is; return in how many the thread printed."""
    printed = 0
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", UNIT_SOURCE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        printed += "Thread running with PID" in proc.stdout
    return printed


def main(small: bool = False) -> None:
    print("The unit's version, observed in a child process:")
    for key, value in unit_version_facts().items():
        print(f"  {key}: {value}")
    runs = 3 if small else 10
    print(
        f"The unit's version, run {runs} times: the thread printed its line in {unit_version_runs(runs)} runs"
    )

    print("Corrected version:")
    main_id = threading.get_native_id()
    thread = PosixThread(lambda x: 2 * x, 21)
    thread.start()
    result = thread.join()
    print(f"POSIX thread returned {result} (passed 21 in)")
    print(f"process id: main {os.getpid()}, thread {thread.pid} (the same process: the same PID)")
    print(f"native thread id: main {main_id}, POSIX thread {thread.native_id} (different: distinct threads)")

    # The manycore way: manycore.ffi.posix is this corrected program as a library (ctypes or cffi)
    try:
        posix: Any = importlib.import_module("manycore.ffi.posix")
    except ImportError:
        print("manycore.ffi.posix: not in this build yet")
    else:
        for backend in ("ctypes", "cffi"):
            try:
                value = posix.run_in_thread(lambda x: 2 * x, 21, backend=backend)
            except ImportError as exc:  # cffi is optional
                print(f"manycore.ffi.posix.run_in_thread via {backend}: unavailable ({exc})")
            else:
                print(f"manycore.ffi.posix.run_in_thread(lambda x: 2 * x, 21) via {backend}: {value}")

    # ... and Python callables on the native runtime's threads, joined, results in order
    from manycore import native

    ids = native.call_in_threads(lambda i: (i * i, threading.get_native_id()), 3)
    print("manycore native.call_in_threads squares:", [square for square, _ in ids])
    print("  ran on distinct native threads:", len({tid for _, tid in ids} | {main_id}) == 4)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
