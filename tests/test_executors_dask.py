"""DaskExecutor beyond the shared contract: a real LocalCluster on 127.0.0.1,
exceptions with their remote tracebacks, and a shutdown that leaves no process behind."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import importlib
import importlib.util
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from manycore import TaskError
from manycore.executors import DaskExecutor, RemoteTraceback, backends
from manycore.executors import dask as dask_backend
from test_executors_contract import Gate, blocker

HANG_GUARD_S = 60.0


class Unusual(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_unusual(code: int) -> None:
    raise Unusual(code, "from a worker")


def token() -> float:
    return random.random()


def echo_kwargs(key: str, workers: int, pure: bool) -> tuple[str, int, bool]:
    return key, workers, pure


def worker_pid() -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def owned() -> Iterator[DaskExecutor]:
    """An executor that starts (and on shutdown closes) its own 2-worker LocalCluster."""
    ex = DaskExecutor(max_workers=2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True)


def test_local_cluster_on_localhost_with_worker_processes(owned: DaskExecutor) -> None:
    assert owned.cluster is not None
    assert str(owned.cluster.scheduler_address).startswith("tcp://127.0.0.1:")
    workers = owned.client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    assert all(info["nthreads"] == 1 for info in workers.values())
    pids = set(owned.client.run(worker_pid).values())
    assert len(pids) == 2
    assert os.getpid() not in pids
    # No dashboard; the scheduler's plain HTTP endpoint (/health) listens on localhost only.
    http = owned.cluster.scheduler.http_server
    assert http.address == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{http.port}/health", timeout=HANG_GUARD_S) as reply:
        assert reply.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{http.port}/status", timeout=HANG_GUARD_S)
    assert info.value.code == 404


def test_exception_type_args_and_remote_traceback(owned: DaskExecutor) -> None:
    future = owned.submit(raise_unusual, 17)
    with pytest.raises(Unusual) as info:
        future.result(timeout=HANG_GUARD_S)
    assert info.value.args == (17, "from a worker")
    assert info.value.code == 17
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise_unusual" in str(cause)
    assert "from a worker" in str(cause)


def test_kwargs_reach_the_function_not_client_submit(owned: DaskExecutor) -> None:
    # key=, workers=, pure= are Client.submit parameters; here they are fn's.
    future = owned.submit(echo_kwargs, key="k", workers=3, pure=True)
    assert future.result(timeout=HANG_GUARD_S) == ("k", 3, True)


def test_every_submit_runs_its_call(owned: DaskExecutor) -> None:
    # Dask deduplicates pure tasks by their inputs; an executor must not.
    values = [f.result(timeout=HANG_GUARD_S) for f in [owned.submit(token) for _ in range(4)]]
    assert len(set(values)) == 4


def test_address_mode_does_not_own_the_cluster(owned: DaskExecutor) -> None:
    address = str(owned.cluster.scheduler_address)
    with DaskExecutor(address) as ex:
        assert ex.cluster is None
        assert ex.submit(pow, 2, 10).result(timeout=HANG_GUARD_S) == 1024
    # The owner's cluster is still up.
    assert owned.submit(pow, 3, 3).result(timeout=HANG_GUARD_S) == 27
    with pytest.raises(TypeError, match="address"):
        DaskExecutor(address, max_workers=2)
    with pytest.raises(ValueError, match="max_workers"):
        DaskExecutor(address, max_workers=0)


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_distributed(name: str, package: str | None = None) -> Any:
        if name == "distributed":
            raise ImportError("No module named 'distributed'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_distributed)
    with pytest.raises(ImportError, match=r"pip install 'manycore\[dask\]'"):
        DaskExecutor()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real_find_spec(name, *a),
    )
    reason = DaskExecutor.unavailable_reason()
    assert reason is not None
    assert "pip install 'manycore[dask]'" in reason
    assert backends()["dask"] == reason
    monkeypatch.undo()
    assert DaskExecutor.unavailable_reason() is None
    assert dask_backend.INSTALL_HINT == "pip install 'manycore[dask]'"


def test_shutdown_without_wait_finishes_work_then_closes_everything(tmp_path: Path) -> None:
    """shutdown(wait=False) returns while a task runs; the task still finishes; then the
    cluster is closed in the background and no worker or nanny process is left."""
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    ex = DaskExecutor(max_workers=2)
    started = {p.pid for p in me.children(recursive=True)} - children_before
    worker_pids = set(ex.client.run(worker_pid).values())
    assert worker_pids <= started  # the nannies and their workers are ours

    gate = Gate(tmp_path / "gate")
    running = ex.submit(blocker, gate.dir, 0)
    gate.wait_started(1)
    ex.shutdown(wait=False)
    assert not running.done()
    with pytest.raises(RuntimeError):
        ex.submit(pow, 2, 2)
    gate.open()
    assert running.result(timeout=HANG_GUARD_S) == 0
    ex.shutdown(wait=True)  # joins the background closer
    assert ex.cluster.status.name == "closed"

    deadline = time.monotonic() + HANG_GUARD_S
    while alive := {pid for pid in started if psutil.pid_exists(pid) and not _zombie(pid)}:
        assert time.monotonic() < deadline, f"processes left behind: {alive}"
        time.sleep(0.01)


def _zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_shutdown_from_a_done_callback_does_not_deadlock(owned: DaskExecutor, tmp_path: Path) -> None:
    gate = Gate(tmp_path / "gate")
    ex = DaskExecutor(str(owned.cluster.scheduler_address))
    first = ex.submit(blocker, gate.dir, 0)
    called_back = threading.Event()

    def stop(_: object) -> None:
        ex.shutdown()  # in Dask's callback thread: must not wait for itself
        called_back.set()

    first.add_done_callback(stop)  # before the gate opens: runs in the callback thread
    second = ex.submit(pow, 2, 5)
    gate.open()
    assert called_back.wait(HANG_GUARD_S)
    assert first.result(timeout=0) == 0
    assert second.result(timeout=HANG_GUARD_S) == 32
    ex.shutdown(wait=True)


def sleep_on_gate_if(gate_dir: str, x: int, stuck: int) -> int:
    if x == stuck:
        blocker(gate_dir, x)
    return x * 10


def test_cancelling_a_running_task_releases_it_and_the_cluster_goes_on(
    owned: DaskExecutor, tmp_path: Path
) -> None:
    # The client cannot see "running": cancel() succeeds, the result is discarded,
    # the worker thread runs the call to its end, and the executor stays usable.
    gate = Gate(tmp_path / "gate")
    running = owned.submit(blocker, gate.dir, 7)
    gate.wait_started(1)
    assert running.cancel()
    assert running.cancelled()
    with pytest.raises(cf.CancelledError):
        running.result(timeout=0)
    assert owned.submit(pow, 3, 4).result(timeout=HANG_GUARD_S) == 81  # the other worker
    gate.open()  # let the abandoned call finish
    assert owned.submit(pow, 2, 10).result(timeout=HANG_GUARD_S) == 1024


def test_pmap_task_timeout_on_dask_fails_only_the_stuck_item(owned: DaskExecutor, tmp_path: Path) -> None:
    # Dask cannot interrupt a running call: the stuck item becomes a TimeoutError
    # (its task is cancelled, its worker thread abandoned) and the others complete.
    gate = Gate(tmp_path / "gate")
    fn = functools.partial(sleep_on_gate_if, gate.dir, stuck=2)
    try:
        results = owned.pmap(fn, range(5), task_timeout=1.0, errors="collect").results()
    finally:
        gate.open()
    assert [r for i, r in enumerate(results) if i != 2] == [0, 10, 30, 40]
    assert isinstance(results[2], TaskError)
    assert results[2].index == 2
    assert isinstance(results[2].exception, TimeoutError)
    assert "task_timeout" in str(results[2].exception)
    assert owned.submit(pow, 2, 3).result(timeout=HANG_GUARD_S) == 8
