"""Helpers shared by the tests of manycore.native: thread counting, subprocesses, buffers."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

THREAD_COUNTS = tuple(range(1, 9))


def thread_ids() -> set[int]:
    """Native ids of the OS threads of this process."""
    return {int(t) for t in os.listdir("/proc/self/task")}


def leftover_threads(before: set[int], timeout: float = 10.0) -> set[int]:
    """Threads created since `before` that still exist; waits up to `timeout` for them to go.

    A thread that was joined can stay listed in /proc/self/task for a moment
    after pthread_join returns; a leaked thread never leaves.  Comparing sets
    (not counts) ignores threads of earlier tests that are still vanishing.
    """
    deadline = time.monotonic() + timeout
    while True:
        new = thread_ids() - before
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.005)


def run_python(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter of this environment, bounded by `timeout`."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


KINDS = ("numpy", "array", "memoryview", "bytes", "bytearray")


def as_kind(arr: np.ndarray, kind: str) -> object:
    """The 1-D array `arr` as another buffer-protocol object with the same format.

    bytes and bytearray are format "B"; for other formats they are wrapped in a
    memoryview cast to the array's format.
    """
    fmt = arr.dtype.char
    if kind == "numpy":
        return arr
    if kind == "array":
        return array.array(fmt, arr.tolist())
    if kind == "memoryview":
        return memoryview(bytearray(arr.tobytes())).cast(fmt)
    raw = bytes(arr.tobytes()) if kind == "bytes" else bytearray(arr.tobytes())
    return raw if fmt == "B" else memoryview(raw).cast(fmt)
