"""Shared fixtures for the tests of manycore.native (the native pthread runtime)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator

import pytest

from manycore import _native, native
from native_support import THREAD_COUNTS


@pytest.fixture(scope="session")
def explicit_pools() -> Iterator[dict[int, native.Pool]]:
    """One explicit Pool(k) per k in 1..8, shared by the session and closed at its end."""
    pools = {k: native.Pool(k) for k in THREAD_COUNTS}
    yield pools
    for p in pools.values():
        p.close()


@pytest.fixture
def fail_thread_create() -> Iterator[Callable[[int], None]]:
    """Arm the pthread_create failure hook; always disarmed after the test."""
    try:
        yield _native._debug_fail_thread_create
    finally:
        _native._debug_fail_thread_create(-1)


# ---------------------------------------------------------------- CI: no skip without a reason it allows
# .ci/run sets MANYCORE_ALLOWED_SKIPS to a regular expression per interpreter
# (empty: no skip allowed at all); a test skipped for any other reason fails
# the session, so a missing dependency cannot turn a CI leg green by skipping.
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    allowed = os.environ.get("MANYCORE_ALLOWED_SKIPS")
    if allowed is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not allowed or not re.search(allowed, reason):
        _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from manycore import _build

    # On a free-threaded build, anything imported during the run that turned the GIL back on
    # (a module without free-threading support: see its RuntimeWarning) fails the run.
    if _build.free_threaded_build() and "PYTHON_GIL" not in os.environ and _build.gil_enabled():
        print("\nthe GIL was turned back on during the test run", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _unexpected_skips:
        print("\nskipped without an allowed reason (MANYCORE_ALLOWED_SKIPS):", file=sys.stderr)
        for line in _unexpected_skips:
            print("  " + line, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
