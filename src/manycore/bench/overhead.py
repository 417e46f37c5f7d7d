"""Section 3: what handing off one task costs on each mechanism, and where each starts to pay."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import importlib
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import _extras
from ..executors import backends, get_executor
from ..executors.process import ProcessExecutor
from . import words
from ._context import BenchContext, busy
from ._timing import Timing, calibrate_number, time_call, time_interleaved
from .report import Section


def _noop() -> None:
    return None


def _fork_and_wait() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(pid, 0)


def _asyncio_task_cost(count: int) -> float:
    async def nothing() -> None:
        return None

    async def main() -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            await asyncio.create_task(nothing())
        return (time.perf_counter() - t0) / count

    return asyncio.run(main())


def run(ctx: BenchContext) -> Section:
    from .. import _native, native

    section = Section("overhead", "3. Overhead: the cost of one hand-off, and the crossover task size")
    rep = ctx.repeats
    t = ctx.threads

    def add(name: str, fn: Any, number: int | None = None, **values: Any) -> None:
        n = number or calibrate_number(fn, 0.01 if ctx.quick or ctx.tiny else 0.05)
        timing = time_call(fn, repeats=rep, number=n)
        section.add(name, timing, per_call_us=timing.best_s * 1e6, **values)

    ctx.say("overhead: native dispatch")
    iterations = 2000 if ctx.tiny else 100_000
    per = min(native.bench_dispatch(iterations) for _ in range(rep))
    row = section.add(f"native pool: empty region, {t} participants (in C)", per_call_us=per * 1e6)
    row.time_s = row.median_s = per
    noop = _native.noop_address()
    add("native.parallel_for from Python (noop C fn)", lambda: native.parallel_for(noop, t, 0, 1))
    lib = ctypes.CDLL(_native.__file__)
    fn = lib.mc_noop_range
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    fn.restype = None
    add("ctypes call of a C function", lambda: fn(None, 0, 0))
    try:
        cffi = _extras.require("cffi", extra="cffi", feature="the cffi row")
        ffi = cffi.FFI()
        ffi.cdef("void mc_noop_range(void *, size_t, size_t);")
        clib = ffi.dlopen(_native.__file__)
        add("cffi (ABI) call of a C function", lambda: clib.mc_noop_range(ffi.NULL, 0, 0))
    except ImportError as exc:
        section.add("cffi (ABI) call of a C function", note=f"not available: {exc}")
    try:
        cy = importlib.import_module("manycore._cy.kernels")
        add("Cython call of a compiled function", cy.noop)
    except (ImportError, AttributeError) as exc:
        section.add("Cython call of a compiled function", note=f"not available: {exc}")
    add("Python function call (reference)", _noop)

    ctx.say("overhead: executors")
    with ThreadPoolExecutor(t) as tp:
        add("ThreadPoolExecutor submit + result", lambda: tp.submit(_noop).result())
    with ProcessExecutor(t) as pp:
        pp.submit(_noop).result()
        add("ProcessExecutor submit + result", lambda: pp.submit(_noop).result())
    interpreters_missing = backends()["interpreters"]
    if interpreters_missing is None:
        with get_executor("interpreters", max_workers=t) as ip:
            ip.submit(_noop).result()
            add("InterpreterExecutor submit + result", lambda: ip.submit(_noop).result())
    else:
        section.add("InterpreterExecutor submit + result", note=f"not available: {interpreters_missing}")
    with multiprocessing.get_context().Pool(t) as mp:
        mp.apply(_noop)
        add("multiprocessing.Pool.apply", lambda: mp.apply(_noop))
    count = 200 if ctx.tiny else 20_000
    a = min(_asyncio_task_cost(count) for _ in range(rep))
    row = section.add("asyncio: create_task + await", per_call_us=a * 1e6)
    row.time_s = row.median_s = a
    add("pthread_create + join (native.start_threads(1))", lambda: native.start_threads(1, 0))

    def thread_round() -> None:
        th = threading.Thread(target=_noop)
        th.start()
        th.join()

    add("threading.Thread start + join", thread_round)
    add("os.fork + waitpid", _fork_and_wait, number=10 if ctx.tiny else 50)

    _pool_starts(ctx, section)
    _ipc(ctx, section)
    _crossover(ctx, section)
    return section


def _pool_starts(ctx: BenchContext, section: Section) -> None:
    """How long a process pool takes from its constructor to one result per worker, per start method.

    Shutdown is not timed.  forkserver's first start also starts its server
    (once per process; done in the warm-up here, so the rows show the start a
    pool pays every time); the worker count is the bench's thread count.
    """
    ctx.say("overhead: process pool start per start method")
    workers = ctx.threads
    for method in multiprocessing.get_all_start_methods():
        mp_context = multiprocessing.get_context(method)
        samples: list[float] = []
        for attempt in range(1 + (1 if ctx.tiny else ctx.repeats)):
            t0 = time.perf_counter()
            executor = ProcessExecutor(workers, mp_context=mp_context)
            try:
                for future in [executor.submit(_noop) for _ in range(workers)]:
                    future.result()
                if attempt > 0:  # the first is the warm-up (imports, forkserver's server)
                    samples.append(time.perf_counter() - t0)
            finally:
                executor.shutdown()
        timing = Timing(min(samples), statistics.median(samples), len(samples), 1)
        section.add(
            f"ProcessExecutor({workers}) start to first results, {method}",
            timing,
            per_call_us=timing.best_s * 1e6,
        )
    name = f"InterpreterExecutor({workers}) start to first results"
    reason = backends()["interpreters"]
    if reason is not None:
        section.add(name, note=f"not available: {reason}")
        return
    samples = []
    for attempt in range(1 + (1 if ctx.tiny else ctx.repeats)):
        t0 = time.perf_counter()
        with get_executor("interpreters", max_workers=workers) as interpreters:
            # one call per worker, submitted at once: each finds no free worker and starts one
            for future in [interpreters.submit(_noop) for _ in range(workers)]:
                future.result()
            if attempt > 0:
                samples.append(time.perf_counter() - t0)
    timing = Timing(min(samples), statistics.median(samples), len(samples), 1)
    section.add(name, timing, per_call_us=timing.best_s * 1e6)


def _ipc(ctx: BenchContext, section: Section) -> None:
    """Messages between processes: Pipe round trips, Queue/Pipe streaming (manycore.patterns.measure)."""
    from ..patterns import measure

    ctx.say("overhead: pipes and queues")
    trips = 500 if ctx.tiny else 10_000
    ping = min((measure.pipe_ping_pong(trips) for _ in range(2)), key=lambda r: r.seconds)
    row = section.add("Pipe ping-pong round trip (64 B, 2 processes)", per_call_us=ping.latency_us)
    row.time_s = row.median_s = ping.seconds / ping.round_trips
    messages = 2_000 if ctx.tiny else 50_000
    for channel in measure.CHANNELS:
        result = measure.queue_throughput(channel, messages)
        row = section.add(
            f"{channel}: one 64 B message, producer to consumer",
            per_call_us=result.us_per_message,
            messages_per_s=result.messages_per_s,
        )
        row.time_s = row.median_s = result.seconds / result.messages


def _serial_map(work: list[int]) -> list[int]:
    return [busy(i) for i in work]


def _executor_map(executor: Any, work: list[int]) -> list[int]:
    return list(executor.map(busy, work))


def _pmap_on(executor: Any, work: list[int]) -> list[int]:
    return list(executor.pmap(busy, work))


def _calibrate_busy(seconds: float) -> int:
    iterations = 1000
    while True:
        t0 = time.perf_counter()
        busy(iterations)
        dt = time.perf_counter() - t0
        if dt > 0.005:
            return max(1, int(iterations * seconds / dt))
        iterations *= 4


def _crossover(ctx: BenchContext, section: Section) -> None:
    """Speed-up over serial of K CPU-bound tasks of duration d, per backend, for a range of d."""

    ctx.say("overhead: crossover")
    # half-decade steps, so every curve has points on both sides of its crossing
    if ctx.tiny:
        durations = [1e-4, 1e-3]
    elif ctx.quick:
        durations = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    else:
        durations = [3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    t = ctx.threads
    speedups: dict[str, list[float]] = {
        "threads (submit)": [],
        "processes (submit)": [],
        "pmap processes (batched)": [],
    }
    tasks: list[int] = []
    with ThreadPoolExecutor(t) as tp, ProcessExecutor(t) as pp:
        pp.submit(_noop).result()
        for d in durations:
            iterations = _calibrate_busy(d)
            k = max(4 * t, min(400, int((0.05 if ctx.tiny else 0.1 if ctx.quick else 0.2) / d)))
            tasks.append(k)
            work = [iterations] * k
            runs: dict[str, Callable[[], Any]] = {
                "serial": functools.partial(_serial_map, work),
                "threads (submit)": functools.partial(_executor_map, tp, work),
                "processes (submit)": functools.partial(_executor_map, pp, work),
                "pmap processes (batched)": functools.partial(_pmap_on, pp, work),
            }
            # round-robin, so load from elsewhere disturbs serial and parallel alike
            timings = time_interleaved(runs, repeats=1 if ctx.tiny else 3, warmup=0)
            serial = timings.pop("serial").best_s
            for name, timing in timings.items():
                speedups[name].append(serial / timing.best_s)
    section.series["crossover"] = {"task_seconds": durations, "speedup": speedups, "tasks": tasks}
    for name, values in speedups.items():
        section.notes.append(words.crossover(name, durations, values))
