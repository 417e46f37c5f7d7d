"""advise classifies three known functions correctly and recommends a backend that was measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import advise_targets as targets
from manycore import _build
from manycore.advise import advise, classify

TESTS = str(Path(__file__).parent)


#: Pure-Python CPU work: processes with the GIL; threads where the GIL is off (3.13t).
PYTHON_CPU = (
    ("cpu-bound-python", "processes") if _build.gil_enabled() else ("cpu-bound-free-threaded", "threads")
)


def test_pure_python_loop_goes_to_processes_or_to_threads_without_the_gil() -> None:
    result = advise(targets.python_loop, [400_000] * 6, workers=2)
    assert (result.classification, result.recommended) == PYTHON_CPU
    assert set(result.timings_s) >= {"serial", "threads", "processes"}
    assert any("python_loop" in name for name, _, _ in result.hotspots)


def test_sleep_goes_to_threads() -> None:
    result = advise(targets.sleeper, [0.05] * 8, workers=2)
    assert result.classification == "io-bound"
    assert result.recommended == "threads"
    assert result.speedup > 1.5  # 8 sleeps overlap on 8 threads: a hang guard, not a benchmark


def test_large_numpy_op_goes_to_threads() -> None:
    result = advise(targets.numpy_sort, [2_000_000] * 4, workers=2)
    # with the GIL off there is no GIL to release: CPU-bound, threads
    assert result.classification == ("gil-releasing" if _build.gil_enabled() else "cpu-bound-free-threaded")
    assert result.recommended in {"threads", "native"}


def test_classify_thresholds() -> None:
    assert classify(0.05, 1.0) == "io-bound"
    assert classify(0.95, 1.9) == "gil-releasing"
    assert classify(0.99, 1.0) == "cpu-bound-python"
    # a busy machine hides GIL-free threads' parallelism, not the GIL-free share
    assert classify(0.99, 1.0, 0.8) == "gil-releasing"
    assert classify(0.99, 1.0, 0.1) == "cpu-bound-python"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        advise(targets.python_loop, [])
    with pytest.raises(TypeError, match="callable"):
        advise(42, [1])  # type: ignore[arg-type]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": TESTS}
    import os

    env = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "manycore.cli", "advise", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_prints_recommendation_and_snippet() -> None:
    proc = run_cli(
        "advise_targets:python_loop", "--sample-args", "[400000, 400000, 400000, 400000, 400000, 400000]"
    )
    assert proc.returncode == 0, proc.stderr
    kind, backend = PYTHON_CPU
    assert f"classification: {kind}" in proc.stdout
    assert f"recommended: {backend}" in proc.stdout
    assert f'pmap(python_loop, items, backend="{backend}")' in proc.stdout
    assert f"interpreter: {_build.describe()}" in proc.stdout


def test_cli_sample_module() -> None:
    proc = run_cli("advise_targets:python_loop", "--sample-module", "advise_targets:sample_sizes")
    assert proc.returncode == 0, proc.stderr
    assert "recommended:" in proc.stdout


def test_cli_errors() -> None:
    proc = run_cli("advise_targets:nope", "--sample-args", "[1]")
    assert proc.returncode != 0
    assert "nope" in proc.stderr
    proc = run_cli("advise_targets:python_loop", "--sample-args", "{bad")
    assert proc.returncode != 0
    assert "JSON" in proc.stderr
    proc = run_cli("advise_targets:python_loop")
    assert proc.returncode != 0
    assert "--sample-args" in proc.stderr
