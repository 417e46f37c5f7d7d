"""The bench report's sentences and verdict, fed synthetic results: each says what its numbers show."""

from __future__ import annotations

from typing import Any

import pytest

import manycore.bench as bench
from manycore.bench import _busy, verdict, words
from manycore.bench._timing import Timing
from manycore.bench.report import NOISY, Report, Section
from manycore.bench.seed import claim_sentence

# ------------------------------------------------------------------ single sentences


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1.85, "1.85x faster than serial"),
        (1.04, "no faster than serial (1.04x)"),
        (0.5, "slower than serial (0.50x)"),
    ],
)
def test_versus(x: float, expected: str) -> None:
    assert words.versus(x) == expected


def test_thread_scaling_says_slower_when_threads_slow_the_memory_bound_sum() -> None:
    """The committed report once said "2 threads speed native.sum up 0.92x ... once the memory bus is
    saturated": a slow-down called a speed-up."""
    text = words.thread_scaling(2, 0.85, 1.95)
    assert "0.85x" in text
    assert "(slower)" in text
    assert "speed native.sum up" not in text
    within_noise = words.thread_scaling(2, 0.92, 1.95)
    assert "0.92x" in within_noise
    assert "(no faster)" in within_noise


def test_thread_scaling_cases() -> None:
    assert "no faster" in words.thread_scaling(2, 1.02, 1.9)
    assert "memory bandwidth, not the cores, limits" in words.thread_scaling(2, 1.4, 1.95)
    scaled = words.thread_scaling(2, 1.84, 1.98)
    assert "at 1.84x of 1 thread's speed, about as much as the compute-bound sum of squares" in scaled
    assert "does not saturate the memory bus" in scaled
    busy = words.thread_scaling(2, 1.0, 1.0)
    assert "neither scaled" in busy
    assert "memory bus" not in busy.split(":")[1].split(",")[0]
    assert "not measured" in words.thread_scaling(1, 1.0, 1.0)


def test_against_numpy() -> None:
    assert "3.00x faster" in words.against_numpy("native.sum", "np.sum", 3.0)
    assert "about the same time" in words.against_numpy("native.dot", "np.dot", 0.95)
    slower = words.against_numpy("native.dot", "np.dot", 0.5)
    assert "slower than np.dot" in slower
    assert "2.00x its time" in slower


def test_bandwidth_share() -> None:
    assert "close to what memory delivers" in words.bandwidth_share("native.sum", 9.0, 10.0)
    assert "90%" in words.bandwidth_share("native.sum", 9.0, 10.0)
    assert "something other than memory" in words.bandwidth_share("native.sum", 2.0, 10.0)
    above = words.bandwidth_share("native.sum", 50.7, 26.6)
    assert "reading alone goes faster than copying" in above
    assert "%" not in above  # no "191% of the copy bandwidth"


def test_crossing_interpolates_and_needs_the_last_point_above() -> None:
    assert words.crossing([1e-5, 1e-4], [0.5, 2.0]) == pytest.approx(10 ** (-5 + 0.4))
    assert words.crossing([1e-5, 1e-4], [1.5, 2.0]) == 1e-5
    assert words.crossing([1e-5, 1e-4, 1e-3], [0.5, 1.5, 1.0]) is None  # fell back below
    assert words.crossing([1e-5, 1e-4, 1e-3], [1.5, 0.9, 1.5]) == pytest.approx(10 ** (-4 + 1 / 3))


def test_crossover_sentences() -> None:
    """ "beats serial from a task duration of about never in the measured range" was once printed."""
    never = words.crossover("threads (submit)", [1e-5, 1e-3], [0.4, 0.98])
    assert never.startswith("threads (submit): no speed-up here")
    assert "10 µs to 1 ms" in never
    assert "best 0.98x at 1 ms" in never
    assert "about" not in never
    at_once = words.crossover("pmap", [1e-5, 1e-3], [1.5, 1.9])
    assert "already at the shortest task measured (10 µs)" in at_once
    unsteady = words.crossover("pmap", [1e-5, 3e-4, 1e-2], [0.8, 1.46, 1.02])
    assert unsteady.startswith("pmap: no steady crossover")
    assert "reached 1.46x at 300 µs but 1.02x at the longest tasks measured (10 ms)" in unsteady
    between = words.crossover("processes (submit)", [1e-4, 1e-3], [0.5, 1.7])
    assert "beats serial from a task duration of about" in between
    assert "0.50x at 100 µs" in between


def test_python_threads_sentence_follows_the_numbers_not_the_build() -> None:
    assert "no parallel speed-up" in words.python_threads(0.99, gil_on=True, threads=2)
    assert "GIL lets one thread" in words.python_threads(0.99, gil_on=True, threads=2)
    assert "run Python in parallel here (GIL off)" in words.python_threads(1.8, gil_on=False, threads=2)
    assert "although the GIL is off" in words.python_threads(1.0, gil_on=False, threads=2)
    assert "short of the 1.3x" in words.python_threads(1.2, gil_on=True, threads=2)


def test_more_threads_names_a_slower_second_thread() -> None:
    """The committed report showed native on 2 threads slower than on 1 with no word on it."""
    text = words.more_threads("the native kernel", 668e-6, 700e-6, 2)
    assert "did not make the native kernel faster" in text
    assert "668 µs" in text
    assert "700 µs" in text
    assert "(1.90x)" in words.more_threads("k", 1.9e-3, 1e-3, 2)


def test_scaling_sentence() -> None:
    text = words.scaling("native", [1, 2, 3, 4], [1.0, 1.9, 1.85, 1.88], cpus=2)
    assert "best 1.90x with 2 worker(s)" in text
    assert "95% of ideal" in text
    assert "no further gain" in text
    assert text.endswith("no further gain.")
    flat = words.scaling("pmap", [1, 2], [1.0, 0.95], cpus=2)
    assert flat.endswith("no speed-up here.")


def test_io_summary() -> None:
    text = words.io_summary({"thread pool, 64 threads": 30.0, "asyncio, 100 in flight": 60.0})
    assert text.startswith("Fastest: asyncio, 100 in flight, 60.00x faster than sequential requests.")
    assert "beat the best thread pool" in text
    assert "2.00x" in text
    even = words.io_summary({"thread pool, 64 threads": 30.0, "asyncio, 100 in flight": 31.0})
    assert "as fast as each other" in even
    threads_won = words.io_summary({"thread pool, 64 threads": 30.0, "asyncio, 100 in flight": 10.0})
    assert (
        "The best thread pool (thread pool, 64 threads) beat asyncio, 100 in flight by 3.00x" in threads_won
    )


def test_claim_sentence() -> None:
    assert "understates" in claim_sentence(500.0, True)
    assert "wrong for this N" in claim_sentence(500.0, True)
    assert "matches" in claim_sentence(45.0, False)
    assert "wrong" not in claim_sentence(45.0, False)
    assert "overstates" in claim_sentence(10.0, False)


# ------------------------------------------------------------------ the verdict


def _report(cpu: dict[str, float] | None, crossover: dict[str, list[float]] | None = None) -> Report:
    report = Report(machine={"threads_used": 2}, quick=True)
    if cpu is not None:
        gil = Section("gil", "4.")
        gil.series["cpu_python"] = cpu
        gil.series["gil_releasing"] = {"threads (2): np.sort": 1.8, "native kernel (2 threads)": 1.95}
        report.sections.append(gil)
    if crossover is not None:
        overhead = Section("overhead", "3.")
        overhead.series["crossover"] = {"task_seconds": [1e-5, 1e-4, 1e-3], "speedup": crossover}
        report.sections.append(overhead)
    memory = Section("memory", "2.")
    memory.series["sum_seconds"] = {
        "np.sum": 0.09,
        "native.sum, 1 thread": 0.03,
        "native.sum, 2 threads": 0.031,
    }
    report.sections.append(memory)
    io = Section("io", "5.")
    io.series["speedup"] = {"thread pool, 64 threads": 40.0, "asyncio, 100 in flight": 55.0}
    report.sections.append(io)
    return report


def _row(section: Section, kind: str) -> Any:
    return next(row for row in section.rows if row.name.startswith(kind))


def test_verdict_names_the_winner_and_the_crossover() -> None:
    curves = {"threads (submit)": [0.3, 0.6, 0.9], "pmap processes (batched)": [0.8, 1.5, 1.9]}
    section = verdict.build(_report({"threads": 0.98, "processes": 1.85, "native threads": 0.97}, curves))
    cpu = _row(section, "CPU-bound pure Python")
    assert cpu.values["winner"] == "processes"
    assert cpu.values["speedup"] == pytest.approx(1.85)
    assert cpu.values["runner_up"] == "threads at 0.98x"
    assert cpu.values["pays_from"].endswith("µs")
    memory = _row(section, "Memory-bound")
    assert memory.values["winner"] == "native.sum, 1 thread"
    assert memory.values["speedup"] == pytest.approx(3.0)
    assert _row(section, "I/O-bound").values["winner"] == "asyncio, 100 in flight"
    tiny = _row(section, "Tiny tasks")
    assert tiny.values["winner"] == "serial"
    assert "pmap processes (batched)" in tiny.values["pays_from"]
    assert any("serial wins" in note for note in section.notes)
    assert section.timed() is False
    assert section.head()[0] == "kind of work"


def test_verdict_says_nothing_parallel_paid_off() -> None:
    section = verdict.build(
        _report({"threads": 0.97, "processes": 1.04, "native threads": 0.9}, {"t": [0.5, 0.8, 1.0]})
    )
    cpu = _row(section, "CPU-bound pure Python")
    assert cpu.values["winner"] == "serial"
    assert "processes at 1.04x" in cpu.values["runner_up"]
    assert any(
        note.startswith("CPU-bound pure Python: nothing parallel paid off here") for note in section.notes
    )
    assert _row(section, "Tiny tasks").values["pays_from"] == "never measured"
    assert any("no mechanism beat serial" in note and "best 1.00x" in note for note in section.notes)
    unsteady = verdict.build(_report({"threads": 1.0}, {"pmap": [0.5, 1.5, 1.0]}))
    assert any(
        "no steady crossover measured: pmap reached 1.50x at 100 µs" in note for note in unsteady.notes
    )


def test_verdict_when_numpy_wins_the_memory_bound_sum() -> None:
    report = _report({"threads": 1.0})
    next(s for s in report.sections if s.id == "memory").series["sum_seconds"] = {
        "np.sum": 0.03,
        "native.sum, 1 thread": 0.031,
    }
    section = verdict.build(report)
    assert _row(section, "Memory-bound").values["winner"] == "np.sum"
    assert any(
        note.startswith("Memory-bound (sum of a large array): a tie within the noise")
        for note in section.notes
    )
    assert "np.sum at" not in _row(section, "Memory-bound").values["runner_up"]


def test_verdict_of_a_partial_run_says_what_was_not_measured() -> None:
    section = verdict.build(_report(None))
    cpu = _row(section, "CPU-bound pure Python")
    assert cpu.values["winner"] == "not measured"
    assert "'gil'" in cpu.values["note"]
    assert _row(section, "Tiny tasks").values["winner"] == "not measured"


# ------------------------------------------------------------------ busy machine, --retry-noisy


def _noisy_section(name: str, noise: float) -> Section:
    section = Section(name, name)
    section.add("a", Timing(1.0, 1.0 + noise, 3, 1))
    section.add("b", Timing(1.0, 1.0, 3, 1))
    return section


def test_rows_above_the_noise_limit_are_marked() -> None:
    section = _noisy_section("x", NOISY + 0.5)
    assert [row.noisy for row in section.rows] == [True, False]
    assert "⚠" in section.cells(section.rows[0])[3]
    assert "⚠" not in section.cells(section.rows[1])[3]


def test_one_noisy_row_alone_is_not_a_busy_machine() -> None:
    quiet = _busy.BusyProbe(cpus=2, load_before=0.1, shares=[0.99, 0.98])
    one = Report(machine={}, quick=True, sections=[_noisy_section("x", 1.0)])
    assert quiet.warnings(one) == []
    three = Report(machine={}, quick=True, sections=[_noisy_section(k, 1.0) for k in "xyz"])
    (warning,) = quiet.warnings(three)
    assert "3 of 6 timed rows" in warning
    assert "busy" not in warning  # noisy rows alone: the rows are uncertain, the machine was not shown busy


def test_busy_machine_warning_names_each_sign() -> None:
    report = Report(machine={}, quick=True, sections=[_noisy_section(k, 1.0) for k in "xyz"])
    probe = _busy.BusyProbe(cpus=2, load_before=1.5, shares=[0.99, 0.4], others_before=0.6)
    (warning,) = probe.warnings(report)
    assert "other processes used 60% of the 2 CPU(s) before the run" in warning
    assert "load average" not in warning  # it lags; what others use now is measured
    no_proc = _busy.BusyProbe(cpus=2, load_before=1.5, shares=[0.99], others_before=None)
    assert "load average was 1.50 on 2 CPU(s)" in no_proc.warnings(Report(machine={}, quick=True))[0]
    assert "only 40% of a CPU" in warning
    assert "3 of 6 timed rows" in warning
    assert "--retry-noisy" in warning
    quiet = _busy.BusyProbe(cpus=2, load_before=0.1, shares=[0.99, 0.98])
    assert quiet.warnings(Report(machine={}, quick=True, sections=[_noisy_section("x", 0.01)])) == []


def test_others_cpu_use_is_a_share_of_the_cpus() -> None:
    use = _busy.others_cpu_use(0.05)
    assert use is None or 0.0 <= use <= 1.0


def test_cpu_share_of_an_idle_thread_is_near_one() -> None:
    """Spinning for 0.1 s gets some CPU on any machine; the share is a fraction."""
    share = _busy.cpu_share(0.05)
    assert 0.0 < share <= 1.05


def test_retry_noisy_keeps_the_quietest_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[float] = [2.0, 1.0, 0.0]  # noise of each measurement: the third is quiet

    def measure(name: str, ctx: Any) -> Section:
        return _noisy_section(name, attempts.pop(0))

    monkeypatch.setattr(bench, "_measure", measure)
    report = bench.run(["seed"], tiny=True, retry_noisy=2)
    seed = report.sections[0]
    assert seed.attempts == 3
    assert seed.noisy_rows() == []
    assert any("Measured 3 times" in note for note in seed.notes)
    assert report.sections[-1].id == "verdict"

    attempts[:] = [2.0, 1.0, 3.0]  # never quiet: the last attempt is not better, the first is kept
    report = bench.run(["seed"], tiny=True, retry_noisy=2)
    assert report.sections[0].attempts == 3
    assert len(report.sections[0].noisy_rows()) == 1

    attempts[:] = [2.0]
    report = bench.run(["seed"], tiny=True)  # no retries asked: measured once, noisy row kept
    assert report.sections[0].attempts == 1
    assert report.sections[0].noisy_rows()


def test_retry_noisy_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="retry_noisy"):
        bench.run(["seed"], retry_noisy=-1)
