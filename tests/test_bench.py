"""manycore bench in its tiny mode: every section runs, the outputs are valid, exactness is right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from manycore.bench import SCHEMA, run, validate_report
from manycore.bench.seed import exact_sum_of_squares, wrapped_int64


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "manycore.cli",
            "bench",
            "--tiny",
            "--json",
            str(out / "report.json"),
            "--markdown",
            str(out / "report.md"),
            "--plots",
            str(out / "plots"),
            "--html",
            str(out / "report.html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    (out / "stdout.txt").write_text(proc.stdout)
    return out


def test_every_section_ran(outputs: Path) -> None:
    doc = json.loads((outputs / "report.json").read_text())
    assert [s["id"] for s in doc["sections"]] == [
        "seed",
        "memory",
        "overhead",
        "gil",
        "io",
        "scaling",
        "verdict",
    ]
    for section in doc["sections"]:
        assert section["rows"], section["id"]
        assert not any(n.startswith("section failed") for n in section["notes"]), section["notes"]


def test_every_row_ran_or_says_why_in_words_a_user_can_act_on(outputs: Path) -> None:
    """A row that did not run names a missing install or platform limit, never a bug of ours
    (an AttributeError's "has no attribute" once hid the Cython rows in every report)."""
    from manycore import backends

    doc = json.loads((outputs / "report.json").read_text())
    allowed = [reason for reason in backends().values() if reason] + ["pip install"]
    for section in doc["sections"]:
        if section["id"] == "verdict":  # computed from the others, never timed itself
            continue
        for row in section["rows"]:
            if row["time_s"] is not None:
                continue
            note = row["values"].get("note", "")
            assert note.startswith("not available: "), (section["id"], row)
            assert "has no attribute" not in note, (section["id"], row)
            assert any(reason in note for reason in allowed), (section["id"], row)
    names = {row["name"] for s in doc["sections"] for row in s["rows"] if row["time_s"] is not None}
    assert {"Cython, serial", "Cython, prange", "Cython call of a compiled function"} <= names


def test_overhead_has_a_pool_start_row_per_start_method(outputs: Path) -> None:
    import multiprocessing

    doc = json.loads((outputs / "report.json").read_text())
    overhead = next(s for s in doc["sections"] if s["id"] == "overhead")
    starts = {
        r["name"].rpartition(", ")[2]: r
        for r in overhead["rows"]
        if r["name"].startswith("ProcessExecutor") and "start to first results" in r["name"]
    }
    assert set(starts) == set(multiprocessing.get_all_start_methods())
    for row in starts.values():
        assert 0 < row["time_s"] <= row["median_s"] < 60, row


def test_subinterpreters_have_rows_that_ran_or_say_why(outputs: Path) -> None:
    from manycore import backends

    reason = backends()["interpreters"]
    doc = json.loads((outputs / "report.json").read_text())
    rows = [
        r
        for s in doc["sections"]
        if s["id"] in ("overhead", "gil")
        for r in s["rows"]
        if "Interpreter" in r["name"] or "subinterpreters" in r["name"]
    ]
    assert len(rows) == 3, [r["name"] for r in rows]  # submit + result, pool start, CPU-bound Python
    for row in rows:
        if reason is None:
            assert row["time_s"] > 0, row
        else:
            assert reason in row["values"]["note"], row


def test_json_matches_the_schema(outputs: Path) -> None:
    doc = json.loads((outputs / "report.json").read_text())
    assert doc["schema"] == SCHEMA
    assert validate_report(doc) == []
    assert doc["machine"]["cpus_available"] >= 1
    assert doc["machine"]["simd"] in {"avx512", "avx2", "baseline"}


def test_seed_table_reports_exactness(outputs: Path) -> None:
    doc = json.loads((outputs / "report.json").read_text())
    seed = next(s for s in doc["sections"] if s["id"] == "seed")
    exact = {r["name"]: r["values"].get("exact") for r in seed["rows"] if "exact" in r["values"]}
    assert exact["pure Python loop"] is True
    assert all(v is True for k, v in exact.items() if k.startswith("native extension"))
    assert (
        exact["thread pool, " + next(k.split(", ", 1)[1] for k in exact if k.startswith("thread pool"))]
        is True
    )
    # the tiny N (10**5) does not overflow int64, so NumPy is exact there ...
    assert exact["NumPy int64 (a*a).sum()"] is True
    # ... and the verdict on the seed's claim is stated
    assert any("40-50x" in note for note in seed["notes"])


def test_seed_section_marks_wrapping_results_wrong() -> None:
    # N = 10**7 as in the unit: int64 accumulation wraps, the exact value does not fit.
    exact = exact_sum_of_squares(10**7)
    assert exact == 333333283333335000000
    assert wrapped_int64(exact) != exact
    assert wrapped_int64(exact) == 1291890006563070912


def test_markdown_and_plots(outputs: Path) -> None:
    import matplotlib.pyplot as plt

    md = (outputs / "report.md").read_text()
    assert md.startswith("# manycore bench report")
    assert "## 1. Sum of squares of 0..N-1" in md
    assert "## On this machine: what to use for each kind of work" in md
    plots = sorted((outputs / "plots").glob("*.png"))
    assert {p.stem for p in plots} == {"seed", "overhead", "scaling", "memory", "gil", "io"}
    for plot in plots:
        image = plt.imread(plot)
        assert image.shape[0] > 100
        assert image.shape[1] > 100
        assert f"plots/{plot.name}" in md


def test_html_embeds_every_plot(outputs: Path) -> None:
    """scripts/check_html_report.py renders it in headless Chromium; here: one file, plots inside."""
    page = (outputs / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(list((outputs / "plots").glob("*.png"))) == 6
    assert "On this machine" in page
    assert 'src="http' not in page
    assert 'href="http' not in page


def test_terminal_tables_are_printed(outputs: Path) -> None:
    text = (outputs / "stdout.txt").read_text()
    assert "sum of squares" in text
    assert "speedup" in text


def test_the_verdict_covers_every_kind_of_work(outputs: Path) -> None:
    doc = json.loads((outputs / "report.json").read_text())
    verdict = doc["sections"][-1]
    kinds = [row["name"] for row in verdict["rows"]]
    assert kinds == [
        "CPU-bound pure Python",
        "GIL-releasing C / NumPy",
        "Memory-bound (sum of a large array)",
        "I/O-bound (HTTP requests)",
        "Tiny tasks (hand-off cost)",
    ]
    for row in verdict["rows"]:
        assert row["values"]["winner"] not in ("", "not measured"), row
        assert row["values"]["speedup"] >= 1.0 if row["values"]["winner"] != "serial" else True, row
    assert len(verdict["notes"]) == len(kinds)


def test_every_note_is_a_sentence_from_the_numbers(outputs: Path) -> None:
    """Notes once read "beats serial from a task duration of about never in the measured range"."""
    doc = json.loads((outputs / "report.json").read_text())
    for section in doc["sections"]:
        for note in section["notes"]:
            assert "about never" not in note, note
            assert note.rstrip().endswith((".", ")")), note


def test_validate_report_finds_problems() -> None:
    assert validate_report([]) == ["report is not an object"]
    problems = validate_report({"schema": "other", "sections": [{"id": 1, "rows": [{"name": 3}]}]})
    assert any("schema" in p for p in problems)
    assert any("sections[0].id" in p for p in problems)
    assert any("rows[0].name" in p for p in problems)


def test_bad_section_and_threads() -> None:
    with pytest.raises(ValueError, match="unknown section"):
        run(["nope"], tiny=True)
    with pytest.raises(ValueError, match="threads"):
        run(["seed"], tiny=True, threads=0)


def test_cli_rejects_unknown_section() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "manycore.cli", "bench", "--only", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "nope" in proc.stderr
