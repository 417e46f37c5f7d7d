"""The worker-process layer: which start method a worker gets (manycore._workers)."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Iterator

import pytest

from manycore._workers import other_python_threads, start_context
from manycore._workers._start import fork_only

HAS_FORK = "fork" in multiprocessing.get_all_start_methods()


@pytest.fixture
def another_thread() -> Iterator[str]:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="another-thread")
    thread.start()
    try:
        yield thread.name
    finally:
        stop.set()
        thread.join()


def test_other_python_threads_names_the_live_ones_but_not_the_caller(another_thread: str) -> None:
    names = other_python_threads()
    assert another_thread in names
    assert threading.current_thread().name not in names


def test_a_given_context_is_used_as_given(another_thread: str) -> None:
    for method in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context(method)
        assert start_context(ctx) is ctx


@pytest.mark.skipif(not HAS_FORK, reason="no fork on this platform")
def test_the_default_fork_gives_way_to_forkserver_while_another_thread_runs(
    another_thread: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: _contexts(method))
    assert start_context().get_start_method() == "forkserver"


PRELOAD_SCRIPT = """
import multiprocessing, sys, threading
from multiprocessing import forkserver
multiprocessing.set_forkserver_preload(["json"])  # the caller's own preload is kept
from manycore._workers._start import WORKER_MODULE, start_context
stop = threading.Event()
threading.Thread(target=stop.wait).start()
try:
    ctx = start_context()
    assert ctx.get_start_method() == "forkserver", ctx.get_start_method()
    assert forkserver._forkserver._preload_modules == ["json", WORKER_MODULE], forkserver._forkserver._preload_modules
    # a worker forked by the server has manycore's worker module already: nothing to import
    with ctx.Pool(1) as pool:
        assert pool.apply(eval, (f"{WORKER_MODULE!r} in __import__('sys').modules",)) is True
finally:
    stop.set()
print("ok")
"""


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver here")
def test_forkserver_workers_are_forked_with_the_worker_module_loaded() -> None:
    """A forkserver worker imported all of manycore itself (120-200 ms for 2 workers against 8 ms by fork);
    now the server loads it once, and what the caller preloads stays."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", PRELOAD_SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.skipif(not HAS_FORK, reason="no fork on this platform")
def test_the_default_fork_is_kept_when_the_caller_runs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: _contexts(method))
    monkeypatch.setattr("manycore._workers._start.other_python_threads", lambda: [])
    assert start_context().get_start_method() == "fork"


@pytest.mark.skipif(not HAS_FORK, reason="no fork on this platform")
def test_fork_context_queues_in_initargs_keep_fork(
    another_thread: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    lock = fork.Lock()
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: _contexts(method))
    assert fork_only((queue,))
    assert fork_only(("x", {"k": lock}))
    assert start_context(None, (queue,)).get_start_method() == "fork"
    queue.close()


def test_carried_objects_any_worker_can_take_do_not_force_fork() -> None:
    from manycore._workers.setup import WorkerInit

    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    assert not fork_only(())
    assert not fork_only(None)
    assert not fork_only((1, "two", [3.0], queue, spawn.Lock()))
    assert not fork_only(WorkerInit(lambda q: None, (queue,)))  # initializers go by cloudpickle
    queue.close()


def test_what_does_not_pickle_at_all_reaches_a_worker_only_by_fork() -> None:
    from manycore._workers.setup import WorkerInit

    lock = threading.Lock()
    assert fork_only((lock,))
    assert fork_only(WorkerInit(print, (lock,)))
    assert fork_only(WorkerInit(lambda: lock.acquire(), ()))  # a closure over a lock


_real_get_context = multiprocessing.get_context


def _contexts(method: str | None) -> multiprocessing.context.BaseContext:
    """multiprocessing.get_context, with fork as the default (as on Linux before 3.14)."""
    return _real_get_context(method or "fork")


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_a_failure_report_brings_back_the_original_with_its_traceback_text() -> None:
    from manycore._workers.report import FailureReport
    from manycore.errors import RemoteTraceback

    report = FailureReport.of(_raised(ValueError("bad 7")))
    back = pickle.loads(pickle.dumps(report)).exception()
    assert type(back) is ValueError
    assert back.args == ("bad 7",)
    assert isinstance(back.__cause__, RemoteTraceback)
    assert "_raised" in back.__cause__.tb_text  # the worker-side frames, as text


def test_an_exception_that_cannot_come_back_becomes_a_remote_error_naming_it() -> None:
    from manycore._workers.report import ByValue, FailureReport, portable
    from manycore.errors import RemoteError

    exc = ValueError("1-2")
    exc.held = threading.Lock()  # type: ignore[attr-defined]  # no pickler takes it
    exc = _raised(exc)
    report = FailureReport.of(exc)
    assert report.pickled is None
    back = report.exception()
    assert isinstance(back, RemoteError)
    assert back.exc_type == "builtins.ValueError"
    assert back.message == "1-2"
    assert "_raised" in back.tb
    assert isinstance(portable(exc), RemoteError)

    class LocalError(Exception):  # no importable name: only cloudpickle carries it, by value
        pass

    travels = portable(_raised(LocalError("by value")))
    assert isinstance(travels, ByValue)
    again = pickle.loads(pickle.dumps(travels))  # what the parent gets: the exception itself
    assert type(again).__name__ == "LocalError"
    assert str(again) == "by value"
    ok = ValueError("fine")
    assert portable(ok) is ok
    assert FailureReport.of(ok, "").exception().__cause__ is None  # no text, no cause
