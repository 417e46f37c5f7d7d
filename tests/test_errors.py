"""One set of failure types for pmap, the executors and the patterns (manycore.errors)."""

from __future__ import annotations

import pickle
import queue
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

import manycore
from manycore import errors, patterns
from manycore.executors import process


def test_every_face_exports_the_same_classes() -> None:
    assert manycore.TaskError is errors.TaskError
    assert manycore.WorkerCrashed is errors.WorkerCrashed
    assert manycore.RemoteTraceback is errors.RemoteTraceback is patterns.RemoteTraceback
    assert manycore.RemoteError is errors.RemoteError is patterns.RemoteError
    assert patterns.WorkerDied is errors.WorkerCrashed
    assert process.UnpicklableError is errors.RemoteError
    assert manycore.executors.RemoteTraceback is errors.RemoteTraceback
    assert patterns.Closed is errors.Closed


def test_worker_crashed_is_a_broken_pool_and_a_runtime_error_naming_the_signal() -> None:
    exc = errors.WorkerCrashed("boom", index=3, pid=42, exitcode=-11)
    assert isinstance(exc, BrokenProcessPool)
    assert isinstance(exc, RuntimeError)
    assert (exc.index, exc.pid, exc.signal_name) == (3, 42, "SIGSEGV")
    assert errors.WorkerCrashed("x", exitcode=3).signal_name is None
    assert errors.describe_exit(-9) == "was killed by SIGKILL"
    assert errors.describe_exit(3) == "exited with code 3"
    assert errors.describe_exit(None) == "vanished"
    assert errors.describe_exit(-1000) == "was killed by signal 1000"


def test_remote_traceback_keeps_the_text_and_frames_it_like_the_stdlib() -> None:
    tb = errors.RemoteTraceback("Traceback (most recent call last):\n  boom\n")
    assert tb.tb_text.endswith("boom\n")
    assert tb.tb == str(tb) == '\n"""\nTraceback (most recent call last):\n  boom\n"""'
    exc = errors.attach_traceback(ValueError("v"), "the text")
    assert isinstance(exc.__cause__, errors.RemoteTraceback)
    assert exc.__cause__.tb_text == "the text"
    again = errors.attach_traceback(exc, "other")  # an existing cause is kept
    assert again.__cause__.tb_text == "the text"  # type: ignore[union-attr]
    assert errors.attach_traceback(KeyError(), "").__cause__ is None


def test_remote_error_names_the_original_and_survives_pickling() -> None:
    exc = errors.RemoteError("mod.Custom", "bad 0", "Traceback ...")
    assert isinstance(exc, RuntimeError)
    assert exc.type_name == exc.exc_type == "mod.Custom"
    assert str(exc).startswith("mod.Custom: bad 0")
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), back.exc_type, back.message, back.tb) == (
        errors.RemoteError,
        "mod.Custom",
        "bad 0",
        "Traceback ...",
    )
    assert str(errors.RemoteError("mod.Empty", "")).startswith("mod.Empty (")


def test_task_error_repr_names_index_and_exception() -> None:
    error = errors.TaskError(5, ValueError("x"), "tb")
    assert repr(error) == "TaskError(index=5, exception=ValueError('x'))"
    with pytest.raises(AttributeError):
        error.index = 6  # type: ignore[misc]  # frozen


def test_closed_is_the_stdlib_shutdown_where_it_exists() -> None:
    shutdown = getattr(queue, "ShutDown", None)  # new in 3.13
    assert (shutdown is not None) == (sys.version_info >= (3, 13))
    assert issubclass(errors.Closed, shutdown or Exception)
