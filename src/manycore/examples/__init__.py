"""Every program of the course unit, runnable and corrected (``manycore examples``).

The unit is ``unit5-parallelism-in-python.md`` ("Implementation of parallelism in Python without
libraries"). Each of its programs is one file here, named after its topic; each file starts with a
comment saying which part of the unit it is, what it shows and what was corrected (the
corrections are explained, with tests, in ``docs/seed-errata.md``). Every example has
``main(small=False)`` and runs as ``python -m manycore.examples.NAME [--small]``.

This module is only the registry: importing it (or ``manycore``) imports no example. C and Cython
sources that the examples show (``threadmodule.c``, ``sum.c``, ``example.pyx``,
``math_cython.pyx``, ``sum_of_squares.pyx``) ship next to the examples as data, for reading; the
examples run on manycore's prebuilt modules, so no compiler is needed at run time.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXAMPLES",
    "SECTIONS",
    "Example",
    "UnknownExample",
    "by_section",
    "close_matches",
    "get",
    "run",
]

_HERE = Path(__file__).resolve().parent

#: The unit's parts that hold programs, in the unit's order.
SECTIONS: tuple[str, ...] = (
    "Introduction to Parallelism in Python",
    "Python's multiprocessing Module",
    "Python's threading Module",
    "Python's threading Module (second set)",
    "Python's asyncio Module",
    "POSIX Threads",
    "Using the concurrent.futures Module",
    "Extensions in C or Cython to Leverage Low-level Parallelism Features",
    "Integration of C or Cython into Python Code",
    "Challenges and Best Practices in Parallelism with Python",
    "Program using asyncio to fetch and process data from multiple APIs",
    "Proposing a System: POSIX Threads via a C Extension",
    "Evaluating the Effectiveness of Cython for CPU-bound Optimizations",
)


@dataclass(frozen=True)
class Example:
    """One program of the unit: ``name`` (also its module and file name), where it is, what it is."""

    name: str
    section: str
    title: str
    companions: tuple[str, ...] = ()  # C / Cython sources shipped next to it, for reading

    @property
    def file(self) -> str:
        return f"{self.name}.py"

    @property
    def path(self) -> Path:
        return _HERE / self.file

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}"

    def source(self, file: str | None = None) -> str:
        """The example's source, or that of one of its ``companions``."""
        if file is None or file == self.file:
            return self.path.read_text(encoding="utf-8")
        if file not in self.companions:
            known = ", ".join((self.file, *self.companions))
            raise ValueError(f"example {self.name!r} has no file {file!r}; its files: {known}")
        return (_HERE / file).read_text(encoding="utf-8")

    def command(self, small: bool = False, args: Sequence[str] = ()) -> list[str]:
        """The command line that runs this example in a fresh interpreter."""
        return [sys.executable, "-m", self.module, *(["--small"] if small else []), *args]


_S = SECTIONS
EXAMPLES: tuple[Example, ...] = (
    Example("data_parallelism_process_pool", _S[0], "Data parallelism: ProcessPoolExecutor.map squares"),
    Example(
        "task_parallelism_thread_pool", _S[0], "Task parallelism: square and cube on a ThreadPoolExecutor"
    ),
    Example("multiprocessing_process", _S[1], "Using Process"),
    Example("multiprocessing_pool", _S[1], "Using Pool"),
    Example("multiprocessing_queue_producer_consumer", _S[1], "Using Queue: producer and consumer processes"),
    Example("multiprocessing_pipe", _S[1], "Using Pipe: sender and receiver processes"),
    Example("multiprocessing_manager_shared_list", _S[1], "Using Manager: a shared list"),
    Example("threading_thread", _S[2], "Using Thread"),
    Example("threading_lock_counter", _S[2], "Lock: two threads, one counter"),
    Example("threading_rlock_recursive", _S[2], "RLock: recursive locking"),
    Example("threading_semaphore", _S[2], "Semaphore: two threads at a time"),
    Example("threading_event", _S[2], "Event: wait until signalled"),
    Example("condition_producer_consumer", _S[2], "Condition: producer and consumer"),
    Example("threading_thread_greet", _S[3], "Thread: greeting Alice and Bob"),
    Example("threading_lock_counter_five_threads", _S[3], "Lock: five threads, one counter"),
    Example("threading_rlock_nested", _S[3], "RLock: nested acquisition down to 0"),
    Example("threading_semaphore_join_loop", _S[3], "Semaphore: start and join loops"),
    Example("threading_event_set", _S[3], "Event: set after a delay"),
    Example("condition_producer_consumer_v2", _S[3], "Condition: producer and consumer, second version"),
    Example("asyncio_coroutine", _S[4], "Coroutines"),
    Example("asyncio_tasks", _S[4], "Tasks and the event loop"),
    Example("asyncio_nonblocking_io", _S[4], "Non-blocking I/O with asyncio.gather"),
    Example("posix_thread_ctypes", _S[5], "Thread creation using ctypes (pthread_create)"),
    Example("futures_thread_and_process_pools", _S[6], "ThreadPoolExecutor and ProcessPoolExecutor"),
    Example("futures_thread_pool_map_io", _S[6], "ThreadPoolExecutor.map for I/O-bound work"),
    Example("futures_submit", _S[6], "submit()"),
    Example("futures_process_pool_map", _S[6], "map() on a ProcessPoolExecutor"),
    Example("futures_result_collection", _S[6], "Futures and result collection"),
    Example("cython_prange_compute_sum", _S[7], "Cython prange: compute_sum (example.pyx)", ("example.pyx",)),
    Example("ctypes_sum_add", _S[8], "ctypes: add() from sum.c", ("sum.c",)),
    Example(
        "cython_fast_square", _S[8], "Cython extension: fast_square (math_cython.pyx)", ("math_cython.pyx",)
    ),
    Example("race_condition_debugging", _S[9], "Race condition debugging"),
    Example("asyncio_fetch_apis", _S[10], "Fetch and process todos from several APIs with aiohttp"),
    Example(
        "threadmodule_start_threads",
        _S[11],
        "threadmodule.start_threads(5): POSIX threads from a C extension",
        ("threadmodule.c",),
    ),
    Example(
        "sum_of_squares_evaluation",
        _S[12],
        "Sum of squares: pure Python vs Cython vs native",
        ("sum_of_squares.pyx",),
    ),
)

_BY_NAME = {e.name: e for e in EXAMPLES}


class UnknownExample(KeyError):
    """No example has this name; ``suggestions`` holds the closest names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown example {self.name!r}{hint} ('manycore examples list' shows them all)"


def close_matches(name: str, limit: int = 3) -> list[str]:
    """Example names close to ``name``: compared whole and word by word (``conditon`` finds the
    Condition examples), best first."""
    query = name.lower()

    def score(candidate: str) -> tuple[float, float]:
        whole = difflib.SequenceMatcher(None, query, candidate).ratio()
        words = [difflib.SequenceMatcher(None, query, w).ratio() for w in candidate.split("_")]
        contains = 1.0 if query and query in candidate else 0.0
        return max(whole, contains, *words), whole

    scored = sorted(((score(e.name), e.name) for e in EXAMPLES), key=lambda t: t[0], reverse=True)
    return [n for (best, _), n in scored if best >= 0.7][:limit]


def get(name: str) -> Example:
    """The example called ``name``, else ``UnknownExample`` (a ``KeyError``) with suggestions."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownExample(name, close_matches(name)) from None


def by_section() -> dict[str, list[Example]]:
    """The examples grouped by unit section, sections and examples in the unit's order."""
    groups: dict[str, list[Example]] = {s: [] for s in SECTIONS}
    for e in EXAMPLES:
        groups[e.section].append(e)
    return groups


def run(name: str, small: bool = False, args: Sequence[str] = (), timeout_s: float | None = None) -> int:
    """Run example ``name`` in a new interpreter (``sys.executable -m ...``); return its exit code.

    A separate process, not ``runpy`` in this one, because the multiprocessing examples need a
    real ``__main__`` module for the spawn start method, and a hung example must not hang the
    caller. Output goes straight to this process's stdout/stderr. Ctrl-C reaches the child too
    (same process group); we wait for it to finish and return its code.
    """
    example = get(name)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # interleave the example's output as it happens
    proc = subprocess.Popen(example.command(small, args), env=env)
    try:
        return proc.wait(timeout=timeout_s)
    except KeyboardInterrupt:
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
