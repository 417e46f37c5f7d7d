"""Tasks and the gate of the fault tests, importable anywhere: standard library only.

Workers import a task's module by name to run it.  Subinterpreters can load
no extension module that does not support them (NumPy, psutil, _tracemalloc
do not yet), so what an ``InterpreterExecutor`` runs lives here, away from
the test modules' imports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: Bound on any wait inside a scenario.
HANG_GUARD_S = 60.0
POLL_S = 0.002


class Gate:
    """A gate shared by every process: a directory of ``started-<key>-<pid>`` files and, once open, ``open``."""

    def __init__(self, path: str | Path) -> None:
        self.dir = str(path)
        os.makedirs(self.dir, exist_ok=True)

    def announce(self, key: object) -> None:
        Path(self.dir, f"started-{key}-{os.getpid()}").touch()

    def started(self) -> list[tuple[str, int]]:
        """``(key, pid)`` of every announcement so far."""
        out = []
        for name in os.listdir(self.dir):
            if name.startswith("started-"):
                key, _, pid = name[len("started-") :].rpartition("-")
                out.append((key, int(pid)))
        return out

    def wait_started(self, count: int, key: object = None) -> list[tuple[str, int]]:
        """At least ``count`` announcements (of ``key`` if given); hang-guarded."""
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            seen = [s for s in self.started() if key is None or s[0] == str(key)]
            if len(seen) >= count:
                return seen
            assert time.monotonic() < deadline, f"only {len(seen)} of {count} announcements in {self.dir}"
            time.sleep(POLL_S)

    def open(self) -> None:
        Path(self.dir, "open").touch()

    def is_open(self) -> bool:
        return os.path.exists(os.path.join(self.dir, "open"))

    def wait_open(self) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while not self.is_open():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {self.dir} never opened")
            time.sleep(POLL_S)


def gated(gate_dir: str, x: object) -> object:
    """Announce ``x``, then wait for the gate to open."""
    gate = Gate(gate_dir)
    gate.announce(x)
    gate.wait_open()
    return x


def announced_sleep(gate_dir: str, seconds: float, x: int) -> int:
    Gate(gate_dir).announce(x)
    time.sleep(seconds)
    return x


def sleeps_on_one(x: int) -> int:
    if x == 1:
        time.sleep(600)  # far longer than the scenario may run: only abandonment lets it exit
    return x


def nap(x: int) -> int:
    """``x`` after a tenth of a second."""
    time.sleep(0.1)
    return x


def python_cpu(n: int) -> int:
    """Pure-Python CPU work that holds the GIL (a few ms per item at n=60_000)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def segfault() -> None:
    """Crash this process with SIGSEGV, on purpose and quietly: no faulthandler dump (pytest turns
    faulthandler on, and a worker started by a forkserver writes to the terminal, not to the
    test's captured output: a green run should not read as a crash)."""
    import ctypes
    import faulthandler

    faulthandler.disable()
    ctypes.string_at(0)
