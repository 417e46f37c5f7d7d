"""Leak checks for the fault tests: threads, file descriptors, child processes, shared memory, memory.

``with LeakCheck():`` snapshots what this process owns and, when the block
ends without an exception, waits (up to ``settle_s``) for everything created
inside it to go away, then raises ``AssertionError`` naming what is left:

* **threads** -- OS threads of this process (``/proc/self/task``);
* **file descriptors** -- ``/proc/self/fd`` entries (number and target);
* **child processes** -- processes whose parent is this one (``/proc/*/stat``),
  zombies included: a child nobody reaped is a leak too;
* **shared memory** -- every ``multiprocessing.shared_memory`` segment *this
  process created* inside the block must be unlinked from ``/dev/shm``
  (segments are recorded as they are created, so other programs using
  ``/dev/shm`` on a shared machine cannot make the check fail or pass).

Things a library creates once and keeps for the life of the process (the
native default pools, multiprocessing's resource tracker) are not leaks: call
:func:`warm_up` (or run the scenario once) *before* entering the block.

Memory growth over repeated runs: :func:`traced_growth` (Python allocations,
``tracemalloc``) and :func:`rss_bytes` / :func:`reset_peak_rss` /
:func:`peak_rss_bytes` (resident memory, for C allocations and big buffers).
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from types import TracebackType
from typing import Any

SETTLE_S = 20.0
DEV_SHM = "/dev/shm"


# ---------------------------------------------------------------- probes
def thread_ids() -> set[int]:
    """Native ids of the OS threads of this process."""
    return {int(t) for t in os.listdir("/proc/self/task")}


def open_fds() -> dict[int, str]:
    """Open file descriptors of this process and what they point to."""
    out: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the descriptor listdir itself used, already closed
            continue
    return out


def process_table() -> dict[int, tuple[int, str, str]]:
    """``{pid: (ppid, state, command)}`` of every process visible in /proc."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        command = head.partition("(")[2]
        table[int(entry)] = (int(fields[1]), fields[0], command)
    return table


def child_processes(pid: int | None = None) -> dict[int, str]:
    """``{pid: "state command"}`` of the children of ``pid`` (default: this process), zombies included."""
    me = os.getpid() if pid is None else pid
    return {p: f"{state} {cmd}" for p, (ppid, state, cmd) in process_table().items() if ppid == me}


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _is_forkserver(pid: int) -> bool:
    return b"multiprocessing.forkserver" in _cmdline(pid)


def _is_resource_tracker(pid: int) -> bool:
    return b"multiprocessing.resource_tracker" in _cmdline(pid)


def worker_processes(pid: int | None = None) -> dict[int, str]:
    """Like :func:`child_processes`, but a forkserver counts as a helper, and its children as ours.

    Workers started with forkserver are children of the server (a process
    that lives as long as its parent, as the resource tracker does), not of
    the process that asked for them.  The resource tracker (started with the
    first forkserver) is a helper too: it is not a worker.
    """
    me = os.getpid() if pid is None else pid
    table = process_table()
    servers = {p for p, (ppid, _, _) in table.items() if ppid == me and _is_forkserver(p)}
    helpers = servers | {p for p, (ppid, _, _) in table.items() if ppid == me and _is_resource_tracker(p)}
    return {
        p: f"{state} {cmd}"
        for p, (ppid, state, cmd) in table.items()
        if (ppid == me and p not in helpers) or ppid in servers
    }


def descendants(pid: int | None = None) -> set[int]:
    """Every process below ``pid`` (default: this process) in the process tree."""
    root = os.getpid() if pid is None else pid
    table = process_table()
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for p, (ppid, _, _) in table.items():
            if ppid == parent and p not in found:
                found.add(p)
                frontier.append(p)
    return found


def processes_with_env(key: str, value: str) -> set[int]:
    """Live processes whose environment has ``key=value`` (how orphans of a tagged run are found)."""
    needle = f"{key}={value}".encode()
    found: set[int] = set()
    for pid, (_, state, _) in process_table().items():
        if state == "Z" or pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.add(pid)
    return found


def shm_segments() -> set[str]:
    """Names of the multiprocessing shared-memory segments in /dev/shm (any owner)."""
    try:
        return {n for n in os.listdir(DEV_SHM) if n.startswith("psm_")}
    except FileNotFoundError:  # pragma: no cover - no /dev/shm
        return set()


# Every SharedMemory this process creates is reported to the active checks.
_recorders: list[set[str]] = []
_original_shm_init = shared_memory.SharedMemory.__init__


def _recording_init(self: shared_memory.SharedMemory, *args: Any, **kwargs: Any) -> None:
    _original_shm_init(self, *args, **kwargs)
    create = kwargs.get("create", args[1] if len(args) > 1 else False)
    if create:
        for names in list(_recorders):
            names.add(self.name)


shared_memory.SharedMemory.__init__ = _recording_init  # type: ignore[method-assign]


# ---------------------------------------------------------------- memory
def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)  # pragma: no cover


def rss_bytes() -> int:
    """Resident set size of this process now."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since the process started or :func:`reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> None:
    """Make the peak RSS start again from the current RSS (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def traced_growth(run: Callable[[], object], *, runs: int, warmups: int = 2) -> int:
    """Bytes of Python memory still allocated after ``runs`` more calls of ``run`` than after ``warmups``.

    Measured with ``tracemalloc`` after ``gc.collect()``, so caches filled by
    the first calls (imports, pools, decisions) are not counted; what grows
    with the number of runs is.
    """
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for _ in range(warmups):
            run()
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(runs):
            run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        if started:
            tracemalloc.stop()


# ---------------------------------------------------------------- the check
@dataclass
class Leaks:
    threads: set[int] = field(default_factory=set)
    fds: dict[int, str] = field(default_factory=dict)
    children: dict[int, str] = field(default_factory=dict)
    shm: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.threads or self.fds or self.children or self.shm)

    def describe(self) -> str:
        parts = []
        if self.threads:
            names = {t.native_id: t.name for t in threading.enumerate()}
            parts.append(
                "threads: " + ", ".join(f"{tid} ({names.get(tid, '?')})" for tid in sorted(self.threads))
            )
        if self.fds:
            parts.append(
                "file descriptors: " + ", ".join(f"{fd} -> {t}" for fd, t in sorted(self.fds.items()))
            )
        if self.children:
            parts.append(
                "child processes: " + ", ".join(f"{p} ({s})" for p, s in sorted(self.children.items()))
            )
        if self.shm:
            parts.append("shared memory segments: " + ", ".join(sorted(self.shm)))
        return "; ".join(parts)


class LeakCheck:
    """Context manager: what the block created must be gone after it (see the module docstring)."""

    def __init__(
        self,
        *,
        threads: bool = True,
        fds: bool = True,
        children: bool = True,
        shm: bool = True,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.check_threads = threads
        self.check_fds = fds
        self.check_children = children
        self.check_shm = shm
        self.settle_s = settle_s
        self.created_shm: set[str] = set()
        self._threads: set[int] = set()
        self._fds: set[tuple[int, str]] = set()
        self._children: set[int] = set()

    def __enter__(self) -> LeakCheck:
        gc.collect()
        self._threads = thread_ids()
        self._fds = set(open_fds().items())
        self._children = set(worker_processes())
        _recorders.append(self.created_shm)
        return self

    def leaks(self) -> Leaks:
        found = Leaks()
        if self.check_threads:
            found.threads = thread_ids() - self._threads
        if self.check_fds:
            found.fds = {fd: t for fd, t in open_fds().items() if (fd, t) not in self._fds}
        if self.check_children:
            found.children = {p: s for p, s in worker_processes().items() if p not in self._children}
        if self.check_shm:
            found.shm = {n for n in self.created_shm if os.path.exists(os.path.join(DEV_SHM, n))}
        return found

    def wait_clean(self) -> Leaks:
        """The leaks left after waiting up to ``settle_s`` for joined threads and reaped children to vanish."""
        deadline = time.monotonic() + self.settle_s
        while True:
            found = self.leaks()
            if not found or time.monotonic() > deadline:
                return found
            gc.collect()  # finalizers close pipes and join helper threads
            time.sleep(0.01)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                found = self.wait_clean()
                assert not found, f"leaked {found.describe()}"
        finally:
            _recorders.remove(self.created_shm)


def warm_up() -> None:
    """Create the long-lived helpers the libraries start lazily, so checks do not count them.

    The native default pool (one thread per CPU), multiprocessing's resource
    tracker (a child process started by the first shared-memory segment), its
    fork server (started by the first worker started while other threads run) and
    its shared-memory heap (an arena file kept open once the first
    ``RawArray``/``Value`` is allocated, as pmap's engine does).
    """
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker

    from manycore import native

    native.default_pool()
    resource_tracker.ensure_running()
    forkserver.ensure_running()  # workers start with it while other threads run Python
    multiprocessing.RawArray("q", 64)
