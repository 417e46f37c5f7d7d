"""Free-threaded CPython (PEP 703): the GIL stays off, shared state holds, auto picks threads.

Every test here runs on every interpreter: what it expects follows from the
build it runs on (``manycore._build``), so on a GIL build it checks the GIL
side of the same rule.  The stress test is the one that matters on 3.13t,
where threads really run at the same time.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import manycore
from manycore import _build, native, pmap
from manycore._map import _serial
from manycore.patterns import BoundedBuffer, Limiter, Pipeline, SharedCounter

FREE_THREADED = _build.free_threaded_build()
HANG_GUARD_S = 120


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, **env},
    )


# ---------------------------------------------------------------- the build, as manycore reports it
def test_build_facts_match_the_interpreter() -> None:
    import sysconfig

    assert _build.free_threaded_build() == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    expected_gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    assert _build.gil_enabled() == expected_gil
    text = _build.describe()
    assert text.startswith("CPython " + ".".join(map(str, sys.version_info[:3])))
    if FREE_THREADED:
        assert "free-threaded build" in text
        assert "GIL off" in text or "GIL on" in text
    else:
        assert "default build (GIL)" in text


IMPORT_EVERYTHING = r"""
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("error", RuntimeWarning)  # "the GIL has been enabled to load module ..."
import manycore
from manycore import _extras
seen = {}
for info in pkgutil.walk_packages(manycore.__path__, "manycore."):
    if info.name.endswith("__main__") or info.name.rpartition(".")[2].startswith("lib"):
        continue  # __main__ runs a program; libseed_sum.so is a plain C library, not a module
    try:
        importlib.import_module(info.name)
    except _extras.MissingExtraError as exc:
        seen[info.name] = "missing extra: " + str(exc)
        continue
    seen[info.name] = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print(json.dumps(seen))
"""


def test_importing_every_module_leaves_the_gil_as_it_was() -> None:
    """On 3.13t no module of manycore turns the GIL back on (Cython modules declare it, the extension too)."""
    r = run_python(IMPORT_EVERYTHING)
    assert r.returncode == 0, r.stderr
    seen: dict[str, Any] = json.loads(r.stdout)
    for name in ("manycore.native", "manycore._cy._core", "manycore._cy.kernels", "manycore._cy.kernels_serial",
                 "manycore.ffi.ctypes_core", "manycore.executors.process", "manycore.patterns.pipeline",
                 "manycore.fetch", "manycore.bench", "manycore.examples", "manycore.pmap"):  # fmt: skip
        assert name in seen, name
    missing = {k: v for k, v in seen.items() if isinstance(v, str)}
    # only the optional bindings may be missing, and they say what to install
    assert set(missing) <= {"manycore.ffi.cffi_core"}, missing
    for text in missing.values():
        assert "pip install 'manycore[cffi]'" in text
    gil_states = {k: v for k, v in seen.items() if not isinstance(v, str)}
    assert set(gil_states.values()) == {not FREE_THREADED}, gil_states


def test_with_the_gil_forced_on_it_stays_on() -> None:
    """The same imports with the GIL forced on (PYTHON_GIL=1 on 3.13t) leave it on: nothing flips it."""
    r = run_python(IMPORT_EVERYTHING, PYTHON_GIL="1")
    assert r.returncode == 0, r.stderr
    states = {v for v in json.loads(r.stdout).values() if not isinstance(v, str)}
    assert states == {True}


# ---------------------------------------------------------------- pmap auto and advise know the build
def python_cpu(n: int) -> int:
    """Pure-Python CPU work that holds the GIL (a few ms per item)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


AUTO_CHOICE = r"""
import io, contextlib, json, sys
sys.path.insert(0, {tests!r})
from manycore import pmap
from test_free_threading import python_cpu
err = io.StringIO()
with contextlib.redirect_stderr(err):
    out = list(pmap(python_cpu, [60_000] * 24, explain=True))
assert out == [python_cpu(60_000)] * 24
print(json.dumps(err.getvalue()))
"""


@pytest.mark.parametrize("force_gil", [False, True], ids=["gil-as-built", "PYTHON_GIL=1"])
def test_auto_sends_python_cpu_work_to_threads_only_with_the_gil_off(force_gil: bool) -> None:
    env = {"PYTHON_GIL": "1"} if force_gil else {}
    r = run_python(AUTO_CHOICE.format(tests=os.path.dirname(__file__)), **env)
    assert r.returncode == 0, r.stderr
    explain = json.loads(r.stdout)
    gil_off = FREE_THREADED and not force_gil
    if gil_off:
        assert "backend=threads" in explain, explain
        assert "free-threaded build with the GIL off" in explain, explain
        assert "GIL off" in explain
    else:
        # a GIL build (or 3.13t with PYTHON_GIL=1): never threads for GIL-holding Python
        assert "backend=threads" not in explain, explain
        assert "free-threaded" not in explain.split("interpreter:")[0], explain


def test_advise_classifies_by_the_build() -> None:
    from manycore.advise import classify

    assert classify(1.0, 1.0, 0.0, gil=True) == "cpu-bound-python"
    assert classify(1.0, 1.9, 0.9, gil=False) == "cpu-bound-free-threaded"
    assert classify(0.05, 1.0, 0.0, gil=False) == "io-bound"
    assert classify(1.0, 1.9, 0.9, gil=True) == "gil-releasing"


def test_info_reports_the_build() -> None:
    from click.testing import CliRunner

    from manycore.cli import main

    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["free_threaded_build"] is FREE_THREADED
    assert facts["gil_enabled"] is _build.gil_enabled()
    assert facts["python_build"] == _build.describe()


# ---------------------------------------------------------------- shared state under real parallelism
def square(x: int) -> int:
    return x * x


@pytest.fixture(scope="module")
def executors() -> Iterator[dict[str, manycore.ManycoreExecutor]]:
    """One executor per backend, shared by every thread of the stress test."""
    made: dict[str, manycore.ManycoreExecutor] = {}
    try:
        for name in ("serial", "threads", "processes", "asyncio", "native", "dask"):
            made[name] = manycore.get_executor(name, max_workers=2)
        yield made
    finally:
        for ex in made.values():
            ex.shutdown(wait=True)


def test_one_serial_map_pulled_by_many_threads_gives_each_item_once() -> None:
    """The C iterator behind pmap's serial path, shared by 8 threads: no item lost, none twice."""
    n = 20_000
    it = _serial.serial_map(square, list(range(n)), 0, lambda i, e: None)
    got: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def pull(k: int) -> None:
        start.wait()
        got[k].extend(it)

    threads = [threading.Thread(target=pull, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD_S)
    values = sorted(v for part in got for v in part)
    assert values == [i * i for i in range(n)]


def stress_round(
    k: int,
    r: int,
    executors: dict[str, manycore.ManycoreExecutor],
    shared: dict[str, Any],
) -> None:
    """One thread's round: kernels, pmap, every executor, the patterns; every result checked."""
    n = 100_000 + 1000 * k + r
    assert native.sum_of_squares(n) == (n - 1) * n * (2 * n - 1) // 6
    assert native.sum(shared["floats"]) == shared["floats_sum"]  # same bits whatever else runs
    assert native.count_primes(50_000) == 5133
    xs = list(range(k * 100, k * 100 + 64))
    assert list(pmap(square, xs, backend="threads", workers=2)) == [x * x for x in xs]
    for name, ex in executors.items():
        if name == "dask" and r % 4:
            continue  # every fourth round: Dask's per-task cost is milliseconds
        futures = [ex.submit(square, x) for x in xs[:8]]
        assert [f.result(timeout=HANG_GUARD_S) for f in futures] == [x * x for x in xs[:8]], name
    buffer: BoundedBuffer[int] = shared["buffer"]
    for x in xs[:16]:  # net one item per thread at most: 8 threads never fill 8 slots and wait
        buffer.put(x, timeout=HANG_GUARD_S)
        shared["taken"][k] += buffer.get(timeout=HANG_GUARD_S)
    limiter: Limiter = shared["limiter"]
    with limiter:
        assert limiter.active <= 2
    shared["counter"].increment()
    assert list(Pipeline(square, workers=2).run(xs[:10])) == [x * x for x in xs[:10]]


def test_many_threads_use_everything_at_once(executors: dict[str, manycore.ManycoreExecutor]) -> None:
    """8 Python threads, a fixed number of rounds, every result checked (the GIL is off on 3.13t)."""
    rounds, workers = 12, 8
    floats = np.random.default_rng(7).random(300_000)
    shared: dict[str, Any] = {
        "floats": floats,
        "floats_sum": native.sum(floats),
        "buffer": BoundedBuffer(8),
        "taken": [0] * workers,
        "limiter": Limiter(2),
        "counter": SharedCounter(),
    }
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def body(k: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                stress_round(k, r, executors, shared)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD_S * 3)
    assert not any(t.is_alive() for t in threads), "a stress thread hung"
    if errors:
        raise errors[0]
    assert shared["counter"].value == rounds * workers
    put_total = rounds * sum(sum(range(k * 100, k * 100 + 16)) for k in range(workers))
    assert sum(shared["taken"]) == put_total  # every item put was taken once


def test_threads_really_overlap_python_when_the_gil_is_off() -> None:
    """With the GIL off, two threads run Python at once: each sees the other advance while it runs."""
    from manycore._threadprobe import gil_free_fraction

    if _build.gil_enabled():
        _, error, share = gil_free_fraction(lambda: python_cpu(300_000))
        assert error is None
        assert share < 0.2  # the GIL holder lets the watcher in once per switch interval
        return
    # GIL off: the watcher runs beside the call.  On a machine whose cores other
    # jobs keep busy the two threads may not get a core at once during a short
    # call: longer calls, until the overlap shows (or the work is 16x longer).
    shares = []
    for scale in (1, 2, 4, 8, 16):
        _, error, share = gil_free_fraction(functools.partial(python_cpu, 300_000 * scale))
        assert error is None
        shares.append(share)
        if share > 0.1:
            break
    assert shares[-1] > 0.1, shares


def test_bench_threads_verdict_comes_from_the_measurement() -> None:
    from manycore.bench import machine_facts
    from manycore.bench.words import threads_verdict

    assert threads_verdict(1.9, gil_on=False) == "ran Python in parallel (GIL off)"
    assert threads_verdict(1.9, gil_on=True) == "ran Python in parallel"  # the numbers win over the build
    assert threads_verdict(1.0, gil_on=True) == "serialised by the GIL"
    assert threads_verdict(1.05, gil_on=False) == "no parallel speed-up measured (GIL off)"
    facts = machine_facts()
    assert facts["python_build"] == _build.describe()
    assert facts["free_threaded_build"] is FREE_THREADED
    assert facts["gil_enabled"] is _build.gil_enabled()
