"""manycore.patterns.race: lost updates shown every time, and the locked fix."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys

import pytest

from manycore.patterns import race

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize(("workers", "rounds"), [(2, 1), (2, 500), (4, 1000), (7, 131)])
def test_threads_lose_exactly_the_forced_updates(workers: int, rounds: int) -> None:
    r = race.run_race(workers, rounds)
    assert r.expected == workers * rounds
    assert r.unlocked == rounds  # every round: all read, then all write the same value
    assert r.locked == r.expected
    assert r.lost_updates == (workers - 1) * rounds


def test_repeated_runs_always_show_the_race() -> None:
    results = {(r.unlocked, r.locked) for r in (race.run_race(3, 50) for _ in range(10))}
    assert results == {(50, 150)}


@pytest.mark.parametrize(("method", "rounds"), [("fork", 200), ("spawn", 30)])
def test_processes_on_a_synchronised_value_still_lose_updates(method: str, rounds: int) -> None:
    r = race.run_race(3, rounds, backend="processes", ctx=multiprocessing.get_context(method))
    assert (r.unlocked, r.locked, r.expected) == (rounds, 3 * rounds, 3 * rounds)


def test_result_str_and_demo_print_the_counts() -> None:
    out = io.StringIO()
    r = race.demo(3, 10, file=out)
    text = out.getvalue()
    assert str(r) in text
    assert "30" in text
    assert "20 updates lost" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 1}, "workers"),
        ({"workers": 2.0}, "workers"),
        ({"rounds": 0}, "rounds"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        race.run_race(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args", [[], ["--backend", "processes", "--rounds", "20", "--start-method", "spawn"]]
)
def test_module_runs_as_a_script(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "manycore.patterns.race", "--workers", "3", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "updates lost" in proc.stdout
    assert "Warning" not in proc.stderr  # no double-import RuntimeWarning from -m
