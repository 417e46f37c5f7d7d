"""The leak checker itself: each kind of leak it claims to see, it sees (and a clean block passes)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from multiprocessing import shared_memory

import pytest

from leakcheck import LeakCheck, processes_with_env, traced_growth, warm_up

pytestmark = pytest.mark.timeout(120)


def test_a_clean_block_passes() -> None:
    warm_up()
    with LeakCheck(settle_s=5):
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        p = multiprocessing.get_context("fork").Process(target=int)
        p.start()
        p.join()
        p.close()  # its pipes stay open until then (or until it is collected)
        shm = shared_memory.SharedMemory(create=True, size=4096)
        shm.close()
        shm.unlink()


def test_sees_a_thread_left_running() -> None:
    stop = threading.Event()
    check = LeakCheck(settle_s=0.2)
    with pytest.raises(AssertionError, match="threads"), check:
        threading.Thread(target=stop.wait, name="left-running").start()
    stop.set()


def test_sees_a_file_descriptor_left_open() -> None:
    fds: list[int] = []
    with pytest.raises(AssertionError, match="file descriptors"), LeakCheck(settle_s=0.2):
        fds.extend(os.pipe())
    for fd in fds:
        os.close(fd)


def test_sees_a_child_process_left_running() -> None:
    children: list[subprocess.Popen[bytes]] = []
    try:
        with pytest.raises(AssertionError, match="child processes"), LeakCheck(settle_s=0.2):
            children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_sees_a_zombie_nobody_reaped() -> None:
    children: list[subprocess.Popen[bytes]] = []

    def exited_unreaped() -> None:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        children.append(child)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has exited; nobody reaped it

    try:
        with pytest.raises(AssertionError, match=r"\(Z "), LeakCheck(settle_s=0.2):
            exited_unreaped()
    finally:
        for child in children:
            child.wait()


def test_sees_a_shared_memory_segment_left_linked() -> None:
    warm_up()
    segments: list[shared_memory.SharedMemory] = []
    with pytest.raises(AssertionError, match="shared memory segments: psm_"), LeakCheck(settle_s=0.2):
        segments.append(shared_memory.SharedMemory(create=True, size=4096))
    segments[0].close()
    segments[0].unlink()


def test_traced_growth_sees_what_each_run_keeps() -> None:
    kept: list[bytes] = []
    assert traced_growth(lambda: kept.append(b"x" * 100_000), runs=5) >= 5 * 100_000
    assert traced_growth(lambda: b"x" * 100_000, runs=5) < 10_000


def test_processes_with_env_finds_a_tagged_process() -> None:
    env = {**os.environ, "LEAKCHECK_TEST_TAG": "tag-42"}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    try:
        assert child.pid in processes_with_env("LEAKCHECK_TEST_TAG", "tag-42")
        assert child.pid not in processes_with_env("LEAKCHECK_TEST_TAG", "tag-43")
    finally:
        child.kill()
        child.wait()
