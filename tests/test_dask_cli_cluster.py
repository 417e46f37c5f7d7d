"""pmap on a Dask cluster started from the `dask` command line, as on separate machines (loopback).

A scheduler and two workers run as separate processes (``dask scheduler``,
``dask worker --no-nanny``); ``DaskExecutor(address=...)`` connects to them.
A pmap runs there in batches, survives one worker killed with SIGKILL in the
middle (Dask reruns the lost batches on the other worker), and shutting the
executor down leaves the cluster, which is not its own, running; the fixture
then stops every process and checks none is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from manycore import pmap
from manycore.executors import DaskExecutor

HANG_GUARD_S = 120.0
TESTS = Path(__file__).parent


@dataclass
class CliCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_command() -> list[str]:
    script = Path(sys.executable).with_name("dask")
    if not script.exists():
        pytest.fail(f"the `dask` command line is not installed next to {sys.executable}")
    return [str(script)]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # dask's CLI closes cleanly on SIGINT
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def cli_cluster(tmp_path: Path) -> Iterator[CliCluster]:
    dask = _dask_command()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    logs = [open(tmp_path / name, "wb") for name in ("scheduler.log", "worker0.log", "worker1.log")]  # noqa: SIM115
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    workers = [
        subprocess.Popen(
            [
                *dask,
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{i}",
            ],
            stdout=logs[1 + i],
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    cluster = CliCluster(address, scheduler, workers)
    try:
        yield cluster
    finally:
        for process in [*workers, scheduler]:
            _stop(process)
        for log in logs:
            log.close()
    assert all(p.poll() is not None for p in [*workers, scheduler]), "a cluster process outlived the test"


def _connect(address: str) -> DaskExecutor:
    """Connect once both workers have registered (they start in parallel with the scheduler)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        try:
            executor = DaskExecutor(address=address)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    executor.client.wait_for_workers(2, timeout=HANG_GUARD_S)
    return executor


def test_pmap_runs_in_batches_on_a_cli_cluster_and_survives_a_killed_worker(cli_cluster: CliCluster) -> None:
    import light_tasks

    executor = _connect(cli_cluster.address)
    try:
        # connected while the workers were still joining: max_workers is the count then, and pmap
        # asks the scheduler again when a map starts
        assert 1 <= executor.max_workers <= 2
        assert executor.map_plan().workers == 2
        assert executor.cluster is None  # not ours: shutdown leaves it running
        from distributed import get_task_stream

        with get_task_stream(executor.client) as stream:
            got = list(pmap(abs, range(-5000, 5000), executor=executor))
        assert got == [abs(x) for x in range(-5000, 5000)]
        # 10,000 items went as a few batches, not as 10,000 tasks
        assert 2 <= len(stream.data) <= 64, len(stream.data)

        # 24 items of 0.1 s, one per task; kill a worker once the first result is in
        results = []
        victim = cli_cluster.workers[0]
        for i, value in enumerate(pmap(light_tasks.nap, range(24), executor=executor, chunksize=1)):
            results.append(value)
            if i == 0:
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=HANG_GUARD_S)
        assert results == list(range(24))
        assert victim.returncode == -signal.SIGKILL
        # the scheduler drops the dead worker once its connection closes (asked directly: the
        # client's scheduler_info() is a cached copy refreshed every few seconds)
        deadline = time.monotonic() + HANG_GUARD_S
        while executor.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.workers)) != 1:
            assert time.monotonic() < deadline, "the scheduler still lists the killed worker"
            time.sleep(0.1)
    finally:
        executor.shutdown(wait=True)
    assert cli_cluster.scheduler.poll() is None  # the executor closed its client, not the cluster
    assert cli_cluster.workers[1].poll() is None
