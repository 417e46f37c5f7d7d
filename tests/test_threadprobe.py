"""The GIL probes behind pmap's auto backend and ``manycore advise``."""

from __future__ import annotations

import time

import pytest

from manycore import _build, native
from manycore._threadprobe import gil_free_fraction, run_on_threads


def python_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i % 7
    return total


def test_a_gil_holding_call_leaves_the_watcher_almost_no_time() -> None:
    result, error, share = gil_free_fraction(lambda: python_loop(2_000_000))
    assert error is None
    assert result == python_loop(2_000_000)
    if _build.gil_enabled():
        # The watcher gets the GIL once per switch interval (5 ms) for a few
        # microseconds: a busy machine can only lower this further.
        assert share < 0.2, share
    else:
        # free-threaded, GIL off: Python code holds nothing, the watcher runs
        # beside it (less than 1.0 when the machine is busy)
        assert share > 0.1, share


@pytest.mark.parametrize("call", ["sleep", "native"])
def test_a_gil_releasing_call_lets_the_watcher_run(call: str) -> None:
    fn = (
        (lambda: time.sleep(0.1))
        if call == "sleep"
        else (lambda: native.sum_of_squares(2 * 10**9, threads=1))  # ~0.1 s: many scheduler slices
    )
    _, error, share = gil_free_fraction(fn)
    assert error is None
    assert share > 0.3, share  # near 1 on an idle core; a loaded one lowers it


def test_errors_of_the_call_are_returned() -> None:
    def boom() -> None:
        raise KeyError("probe")

    result, error, _ = gil_free_fraction(boom)
    assert result is None
    assert isinstance(error, KeyError)


def test_run_on_threads_returns_results_in_order_and_a_parallelism() -> None:
    results, parallelism, wall = run_on_threads([lambda k=k: k * k for k in range(4)])
    assert results == [0, 1, 4, 9]
    assert parallelism >= 0.0
    assert wall > 0.0
