"""``manycore advise``: profile a function on sample input and recommend how to parallelise it.

Steps, all measured on this machine:

1. **Profile** one call with cProfile and keep the top hotspots.
2. **Classify** the function by measured CPU time over wall time (serially)
   and by a threads trial (summed per-thread CPU time over wall time):

   * ``io-bound``: it mostly waits (CPU/wall < 0.3) -> threads or asyncio;
   * ``gil-releasing``: CPU-bound, but threads accumulate CPU time in
     parallel (> 1.2; threads holding the GIL stay <= 1) -> threads (or the native runtime);
   * ``cpu-bound-python``: CPU-bound and the GIL serialises threads -> processes;
   * ``cpu-bound-free-threaded``: CPU-bound on a free-threaded build with the
     GIL off, where threads run Python in parallel -> threads.

3. **Try** the candidate backends on the sample through ``pmap`` (warm
   executors, best of two runs, so start-up is not counted; the sample is run
   several times, so ``fn`` should not have side effects) and recommend the
   fastest, with its measured speed-up over serial and the code to use it.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import importlib
import io
import os
import pickle
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _build
from ._cpus import available_cpus
from ._threadprobe import GIL_FREE_MIN, gil_free_fraction, run_on_threads

CLASSES = ("io-bound", "gil-releasing", "cpu-bound-python", "cpu-bound-free-threaded")


@dataclass
class Advice:
    function: str
    classification: str
    recommended: str
    speedup: float
    cpu_to_wall: float
    thread_parallelism: float
    gil_free: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)
    hotspots: list[tuple[str, int, float]] = field(default_factory=list)
    reason: str = ""
    snippet: str = ""
    #: a lead smaller than this factor is no evidence (at least 1.25; more when two rounds of one
    #: backend disagreed by more on this machine)
    noise: float = 1.25

    def report(self) -> str:
        lines = [f"manycore advise: {self.function}", f"interpreter: {_build.describe()}", ""]
        lines.append("hotspots (cProfile, one call, cumulative time):")
        for name, calls, cum in self.hotspots:
            lines.append(f"  {cum * 1e3:9.3f} ms  {calls:>7} calls  {name}")
        lines.append("")
        lines.append(
            f"classification: {self.classification}  (CPU/wall {self.cpu_to_wall:.2f}, "
            f"threads CPU parallelism {self.thread_parallelism:.2f}, GIL-free share {self.gil_free:.2f})"
        )
        lines.append(
            f"trials on the sample (warm executors, best of 2; leads under {self.noise:.2f}x are noise here):"
        )
        serial = self.timings_s.get("serial")
        for backend, seconds in self.timings_s.items():
            ratio = f"{serial / seconds:5.2f}x" if serial and seconds else "  n/a"
            lines.append(f"  {backend:<10} {seconds * 1e3:10.3f} ms   {ratio}")
        lines += ["", f"recommended: {self.recommended}  ({self.speedup:.2f}x serial) — {self.reason}", ""]
        lines.append(self.snippet)
        return "\n".join(lines)


def load_function(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    if ":" not in spec:
        raise ValueError(f"expected module:function, got {spec!r}")
    module_name, _, attr = spec.partition(":")
    # as `python -m` does: modules in the current directory are found
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def _hotspots(fn: Callable[[Any], Any], item: Any, top: int = 8) -> list[tuple[str, int, float]]:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        fn(item)
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_cc, calls, _tt, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "cProfile" in filename or name.startswith("<method 'disable'"):
            continue
        where = f"{name} ({filename.rsplit('/', 1)[-1]}:{line})" if line else name
        rows.append((where, int(calls), float(cum)))
    rows.sort(key=lambda r: r[2], reverse=True)
    return rows[:top]


def _serial_ratio(fn: Callable[[Any], Any], sample: Sequence[Any]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for item in sample:
        fn(item)
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    return wall, (cpu / wall if wall > 0 else 1.0)


def _thread_parallelism(fn: Callable[[Any], Any], sample: Sequence[Any], workers: int) -> float:
    items = list(sample[: max(2, workers)])
    _, parallelism, _ = run_on_threads([functools.partial(fn, item) for item in items])
    return parallelism


def _noop(x: Any) -> Any:
    return x


def classify(
    cpu_to_wall: float, thread_parallelism: float, gil_free: float = 0.0, *, gil: bool = True
) -> str:
    """``thread_parallelism``: summed thread CPU time / wall over a threads trial (needs idle
    cores to exceed 1); ``gil_free``: :func:`manycore._threadprobe.gil_free_fraction` (does not);
    ``gil``: whether the GIL is on (False on a free-threaded build running without it)."""
    if cpu_to_wall < 0.3:
        return "io-bound"
    if not gil:
        return "cpu-bound-free-threaded"
    if thread_parallelism > 1.2 or gil_free > GIL_FREE_MIN:
        return "gil-releasing"
    return "cpu-bound-python"


def advise(
    fn: Callable[[Any], Any],
    sample: Sequence[Any],
    *,
    workers: int | None = None,
    name: str | None = None,
) -> Advice:
    """Profile, classify and trial ``fn`` on ``sample`` (a list of single arguments)."""
    from .executors import get_executor
    from .pmap import pmap

    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    items = list(sample)
    if not items:
        raise ValueError("sample must contain at least one item")
    n_workers = workers or available_cpus()
    label = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    hotspots = _hotspots(fn, items[0])
    _cold, ratio = _serial_ratio(fn, items)  # classification only: the trials below are warm
    parallelism = _thread_parallelism(fn, items, n_workers) if n_workers > 1 else 1.0
    _, _, gil_free = gil_free_fraction(functools.partial(fn, items[0]))
    kind = classify(ratio, parallelism, gil_free, gil=_build.gil_enabled())

    candidates = ["threads"]
    try:
        pickle.loads(pickle.dumps(items[0]))
        from ._workers import serialize as _serialize

        _serialize.dumps(fn)
        candidates.append("processes")
    except Exception:
        pass
    with contextlib.ExitStack() as stack:
        executors = {}
        for backend in candidates:
            # waiting work overlaps on many threads; CPU work on one per core
            threads = max(n_workers, 8) if kind == "io-bound" else n_workers
            options: dict[str, Any] = {"max_workers": n_workers if backend == "processes" else threads}
            executor = stack.enter_context(get_executor(backend, **options))
            # warm: start every worker and import fn's module there, outside the timing
            list(pmap(_noop, [fn] * (2 * n_workers), executor=executor, chunksize=1))
            executors[backend] = executor
        # best of two, serial and every backend interleaved so that a change of
        # load hits them alike; a fresh worker's first run also pays one-off
        # costs (copy-on-write page faults after fork, lazy imports)
        # (the first serial run above was cold: warm is compared with warm)
        rounds: dict[str, list[float]] = {"serial": []}
        for _ in range(2):
            t0 = time.perf_counter()
            for item in items:
                fn(item)
            rounds["serial"].append(time.perf_counter() - t0)
            for backend, executor in executors.items():
                t0 = time.perf_counter()
                list(pmap(fn, items, executor=executor, chunksize=1))
                rounds.setdefault(backend, []).append(time.perf_counter() - t0)
        timings: dict[str, float] = {backend: min(times) for backend, times in rounds.items()}
    # How far two runs of the same thing disagreed: a lead inside it is no evidence.
    spread = max((max(t[-2:]) / min(t[-2:]) for t in rounds.values() if min(t) > 0), default=1.0)

    preferred = {
        "io-bound": "threads",
        "gil-releasing": "threads",
        "cpu-bound-python": "processes",
        "cpu-bound-free-threaded": "threads",
    }[kind]
    noise = max(1.25, spread)
    best = min(timings, key=lambda b: timings[b])
    if preferred in timings and timings[preferred] <= timings[best] * noise:
        # within the noise of a short trial on a shared machine (at least 25%,
        # more when the two rounds of one backend disagreed by more): take the
        # backend the classification explains (the measured ratio is still reported)
        best = preferred
    fastest_parallel = min((b for b in timings if b != "serial"), key=lambda b: timings[b])
    if best != "serial" and timings["serial"] < timings[best] * noise:
        best = "serial"  # no lead over serial beyond the noise: no evidence that parallel pays
    speedup = timings["serial"] / timings[best] if timings[best] > 0 else 1.0
    reasons = {
        "serial": (
            f"nothing parallel pays off here: the fastest parallel backend, {fastest_parallel}, ran at "
            f"{timings['serial'] / max(timings[fastest_parallel], 1e-12):.2f}x serial"
            + (
                f", within the measured noise ({noise:.2f}x)"
                if timings[fastest_parallel] < timings["serial"]
                else ""
            )
            + "; keep it simple (or try a larger sample: the hand-off may cost as much as it saves)"
        ),
        "threads": (
            "free-threaded build with the GIL off: threads run Python in parallel, without pickling"
            if kind == "cpu-bound-free-threaded"
            else "it waits or releases the GIL, so threads overlap it without pickling"
        ),
        "processes": "pure-Python CPU work holds the GIL; processes run it truly in parallel",
    }
    module = getattr(fn, "__module__", "mymodule")
    qual = getattr(fn, "__qualname__", "fn")
    if best == "serial":
        snippet = f"from {module} import {qual}\nresults = [{qual}(x) for x in items]"
    elif kind == "io-bound" and best == "threads":
        snippet = (
            f"from manycore import pmap\nfrom {module} import {qual}\n\n"
            f'results = list(pmap({qual}, items, backend="threads", workers=32))\n'
            "# for HTTP, manycore.fetch.fetch_all(urls, concurrency=100) (asyncio) scales further"
        )
    else:
        snippet = (
            f"from manycore import pmap\nfrom {module} import {qual}\n\n"
            f'results = list(pmap({qual}, items, backend="{best}"))'
        )
    return Advice(
        function=label,
        classification=kind,
        recommended=best,
        speedup=speedup,
        cpu_to_wall=ratio,
        thread_parallelism=parallelism,
        gil_free=gil_free,
        timings_s=timings,
        hotspots=hotspots,
        reason=reasons[best],
        snippet=snippet,
        noise=noise,
    )
