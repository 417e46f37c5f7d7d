"""advise classifies three known functions correctly and recommends a backend that was measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import advise_targets as targets
from manycore import _build
from manycore.advise import Advice, advise, classify

TESTS = str(Path(__file__).parent)


#: Pure-Python CPU work: processes with the GIL; threads where the GIL is off (3.13t).
PYTHON_CPU = (
    ("cpu-bound-python", "processes") if _build.gil_enabled() else ("cpu-bound-free-threaded", "threads")
)


def consistent(result: Advice, expected: str) -> None:
    """The recommendation is the expected backend, or serial exactly when no backend led serial
    beyond the noise the trial measured (a busy machine can hide any speed-up)."""
    t = result.timings_s
    fastest = min(t[b] for b in t if b != "serial")
    if result.recommended == "serial":
        assert t["serial"] < fastest * result.noise, result.report()
        assert "nothing parallel pays off here" in result.reason, result.reason
        assert result.speedup == 1.0
    else:
        assert result.recommended == expected, result.report()
        assert t["serial"] >= t[expected] * result.noise, result.report()
        assert result.speedup == pytest.approx(t["serial"] / t[expected])


def test_pure_python_loop_goes_to_processes_or_to_threads_without_the_gil() -> None:
    result = advise(targets.python_loop, [400_000] * 6, workers=2)
    assert result.classification == PYTHON_CPU[0]
    consistent(result, PYTHON_CPU[1])
    assert set(result.timings_s) >= {"serial", "threads", "processes"}
    assert any("python_loop" in name for name, _, _ in result.hotspots)


def test_a_tiny_function_gets_serial_with_the_warm_ratio() -> None:
    """Eight increments: no parallel hand-off pays; the speed-up is serial's own, 1.00x (the cold
    first run is not compared with a warm one)."""
    result = advise(targets.inc, list(range(8)), workers=2)
    assert result.recommended == "serial"
    assert result.speedup == 1.0
    assert "nothing parallel pays off here" in result.reason
    assert "recommended: serial  (1.00x serial)" in result.report()


def test_sleep_goes_to_threads() -> None:
    result = advise(targets.sleeper, [0.05] * 8, workers=2)
    assert result.classification == "io-bound"
    assert result.recommended == "threads"  # 8 sleeps overlap on 8 threads: 8x, far beyond any noise
    assert result.speedup > 1.5


def test_large_numpy_op_goes_to_threads() -> None:
    result = advise(targets.numpy_sort, [2_000_000] * 4, workers=2)
    # with the GIL off there is no GIL to release: CPU-bound, threads
    assert result.classification == ("gil-releasing" if _build.gil_enabled() else "cpu-bound-free-threaded")
    consistent(result, "threads")


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
    if "recommended: serial" in proc.stdout:  # no lead beyond the measured noise (a busy machine)
        assert "nothing parallel pays off here" in proc.stdout
    else:
        assert f"recommended: {backend}" in proc.stdout
        assert f'pmap(python_loop, items, backend="{backend}")' in proc.stdout
    assert f"interpreter: {_build.describe()}" in proc.stdout


def test_cli_sample_module() -> None:
    proc = run_cli("advise_targets:python_loop", "--sample-module", "advise_targets:sample_sizes")
    assert proc.returncode == 0, proc.stderr
    assert "recommended:" in proc.stdout


def test_cli_finds_a_module_in_the_current_directory(tmp_path: Path) -> None:
    """As `python -m` does: no PYTHONPATH needed for the user's own module."""
    (tmp_path / "tiny_mod.py").write_text("def inc(x):\n    return x + 1\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "manycore.cli",
            "advise",
            "tiny_mod:inc",
            "--sample-args",
            "[1, 2, 3, 4, 5, 6, 7, 8]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "recommended: serial  (1.00x serial)" in proc.stdout


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
