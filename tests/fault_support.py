"""Running fault scenarios in a subprocess with a hard timeout, and a cross-process gate.

A *scenario* is a function of a test module, run in a fresh interpreter by
:func:`run_scenario`: it asserts what it can inside (a failed assertion exits
non-zero with its traceback on stderr) and the test asserts the rest from
outside -- the exit status, and that no process the scenario started outlived
it.  Every process of a run carries ``MANYCORE_FAULT_TAG=<unique>`` in its
environment (forked and spawned children inherit it), which is how orphans are
found even after they were re-parented.  A scenario that does not finish
within its timeout is killed with its whole process group and the test fails
with its output so far.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from leakcheck import processes_with_env
from light_tasks import HANG_GUARD_S as HANG_GUARD_S
from light_tasks import POLL_S as POLL_S
from light_tasks import Gate as Gate

TESTS_DIR = Path(__file__).resolve().parent
TAG_ENV = "MANYCORE_FAULT_TAG"

#: Hard bound on one scenario subprocess (the machine may be shared and slow).
SCENARIO_TIMEOUT_S = 150.0


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    orphans: set[int]

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def assert_ok(self) -> None:
        """Exit status 0 and no process of the run left behind."""
        assert self.returncode == 0, str(self)
        self.assert_no_orphans()

    def assert_no_orphans(self) -> None:
        assert not self.orphans, f"processes outlived the scenario: {sorted(self.orphans)}\n{self}"


def run_scenario(
    module: str, name: str, *args: str, timeout: float = SCENARIO_TIMEOUT_S, env: dict[str, str] | None = None
) -> Outcome:
    """Run ``module.name(*args)`` in a new interpreter (in its own session) and report how it ended."""
    tag = uuid.uuid4().hex
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r}); import {module} as m; m.{name}(*sys.argv[1:])"
    )
    environment = {**os.environ, **(env or {}), TAG_ENV: tag, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=TESTS_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tagged(tag, proc.pid)
        out, err = proc.communicate()
        raise AssertionError(
            f"scenario {name}{args} did not finish within {timeout} s (killed)\n--- stdout\n{out}\n--- stderr\n{err}"
        ) from None
    # Daemonic workers are terminated by the exiting parent; give them a moment to go.
    deadline = time.monotonic() + 10.0
    orphans = processes_with_env(TAG_ENV, tag)
    while orphans and time.monotonic() < deadline:
        time.sleep(0.02)
        orphans = processes_with_env(TAG_ENV, tag)
    if orphans:
        _kill_tagged(tag, None)
    return Outcome(proc.returncode, out, err, orphans)


def _kill_tagged(tag: str, group: int | None) -> None:
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in processes_with_env(TAG_ENV, tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
