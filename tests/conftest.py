"""Shared fixtures for the tests of manycore.native (the native pthread runtime)."""

from __future__ import annotations

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
