"""InterpreterExecutor and pmap(backend="interpreters") beyond the shared contract suite.

Subinterpreters as a backend exist on CPython 3.13 (with the backport, the
``interpreters`` extra, part of the test extra there) and 3.14+.  Elsewhere
this module checks only that the backend says why it is missing; the
behaviour tests are defined where it exists (3.13 and 3.13t in CI).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import sysconfig
import threading
from typing import Any

import pytest

from light_tasks import HANG_GUARD_S, python_cpu
from manycore import TaskError, backends, get_executor, pmap
from manycore.errors import RemoteTraceback

REASON = backends()["interpreters"]


def test_the_backend_is_there_or_says_why() -> None:
    if sys.version_info[:3] == (3, 13, 0) and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert REASON is not None
        assert "3.13.0" in REASON  # refused there: docs/executors.md
    elif sys.version_info >= (3, 13) and REASON is not None:
        assert "manycore[interpreters]" in REASON
    if REASON is None:
        with get_executor("interpreters", max_workers=1) as ex:
            assert ex.submit(pow, 2, 10).result(timeout=HANG_GUARD_S) == 1024
    else:
        with pytest.raises(ImportError) as info:
            get_executor("subinterpreters")
        assert str(info.value) == REASON


# pmap auto's subinterpreter step (decide._try_interpreters), run on its own in a fresh interpreter
# with the GIL on: the steps before it classify the work by timing, which a busy machine can sway.
TRIAL = r"""
import json, sys
sys.path.insert(0, {tests!r})
from manycore._map.decide import _try_interpreters
from manycore._workers.batches import Input
from light_tasks import python_cpu
from test_interpreters import numpy_python_cpu
probed = ([], [], {{}})
measured = {{}}
verdict = _try_interpreters({fn}, Input(iter([60_000] * 4)), probed, 2, 0.005, True, measured)
if isinstance(verdict, tuple):
    verdict[1].shutdown()
    verdict = ["interpreters", verdict[0]]
else:
    verdict = ["processes", verdict]
print(json.dumps([*verdict, measured, probed[1], len(probed[2])]))
"""


def numpy_python_cpu(n: int) -> int:
    """The same work from a module that imports NumPy (which cannot load in a subinterpreter)."""
    import numpy

    return int(numpy.int64(python_cpu(n)))


def interpreters_trial(fn: str) -> tuple[str, str, dict[str, float], list[int], int]:
    """(backend, reason, measurements, the probed item's results, its failures)."""
    code = TRIAL.format(tests=os.path.dirname(__file__), fn=fn)
    env = {**os.environ, "PYTHON_GIL": "1"} if sysconfig.get_config_var("Py_GIL_DISABLED") else None
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S, env=env
    )
    assert r.returncode == 0, r.stderr
    backend, reason, measured, values, failures = json.loads(r.stdout.splitlines()[-1])
    return backend, reason, measured, values, failures


def test_auto_tries_subinterpreters_for_gil_holding_python_where_they_exist() -> None:
    """Where subinterpreters exist, auto runs an item in one (its result is kept) and takes them
    over processes exactly when that started faster than a process does (both measured)."""
    backend, _reason, measured, values, failures = interpreters_trial("python_cpu")
    if REASON is not None:
        assert (backend, measured, values) == ("processes", {}, [])  # nothing tried, nothing taken
        return
    assert values == [python_cpu(60_000)]
    assert failures == 0
    assert "interpreter_start_s" in measured, measured
    assert "process_start_s" in measured, measured
    faster = measured["interpreter_start_s"] <= measured["process_start_s"]
    assert backend == ("interpreters" if faster else "processes"), measured


def test_auto_leaves_subinterpreters_out_when_fn_cannot_run_there() -> None:
    backend, reason, measured, values, failures = interpreters_trial("numpy_python_cpu")
    assert backend == "processes"
    assert "interpreter_start_s" not in measured
    if REASON is None:
        assert "subinterpreters cannot run it: ImportError" in reason, reason
        assert values == [python_cpu(60_000)]  # the item ran here instead
        assert failures == 0


# ---------------------------------------------------------------- tasks (pickled by name)
def interpreter_id(_: object = None) -> int:
    from manycore.executors._interp_api import interpreters_module

    return int(interpreters_module().get_current().id)


def native_sum_of_squares(n: int) -> tuple[int, bool]:
    from manycore import native

    return native.sum_of_squares(n), "numpy" in sys.modules


def native_threads(n: int) -> list[int]:
    from manycore import native

    return native.call_in_threads(lambda i: i * i, n)  # native threads running Python in this interpreter


def returns_a_lock() -> object:
    return threading.Lock()


class Boom(Exception):
    pass


def explode(x: int) -> int:
    if x == 3:
        raise Boom(f"item {x}")
    return x


_initialized: list[str] = []


def remember(tag: str) -> None:
    _initialized.append(tag)


def initialized() -> list[str]:
    return list(_initialized)


def fail_init() -> None:
    raise RuntimeError("initializer failed on purpose")


def fill(view: memoryview, value: int) -> tuple[str, int]:
    for i in range(len(view)):
        view[i] = value
    return type(view).__name__, len(view)


def view_sum(view: memoryview) -> int:
    return sum(view)


class ExitsWhenPickled:
    """A result whose pickling raises SystemExit (a BaseException, not an Exception)."""

    def __reduce__(self) -> Any:
        raise SystemExit("no pickling")


def exits_when_pickled() -> ExitsWhenPickled:
    return ExitsWhenPickled()


def test_the_driver_is_sent_as_code_also_from_an_install_without_sources(tmp_path: Any) -> None:
    """_code_of reads code objects through the module's loader: a .pyc-only module works."""
    import importlib.util
    import marshal
    import py_compile

    from manycore.executors import interpreters

    source = tmp_path / "only_pyc_mod.py"
    source.write_text("ANSWER = 42\n")
    compiled = tmp_path / "only_pyc_mod.pyc"
    py_compile.compile(str(source), cfile=str(compiled))
    source.unlink()
    spec = importlib.util.spec_from_file_location("only_pyc_mod", compiled)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    space: dict[str, Any] = {}
    exec(marshal.loads(interpreters._code_of(module)), space)
    assert space["ANSWER"] == 42
    driver, preload = interpreters._driver()
    assert isinstance(driver, bytes)
    assert [name for name, _path, _code in preload] == ["manycore._workers.batches"]


if REASON is None:

    def test_native_kernels_run_in_a_subinterpreter_without_numpy() -> None:
        with get_executor("interpreters", max_workers=2) as ex:
            total, numpy_loaded = ex.submit(native_sum_of_squares, 10**7).result(timeout=HANG_GUARD_S)
            assert total == sum(k * k for k in range(10**7))
            assert not numpy_loaded
            assert ex.submit(native_threads, 3).result(timeout=HANG_GUARD_S) == [0, 1, 4]

    def test_each_worker_keeps_its_subinterpreter_across_calls_and_maps() -> None:
        main_id = interpreter_id()
        with get_executor("interpreters", max_workers=2) as ex:
            first = set(ex.pmap(interpreter_id, range(40), chunksize=1))
            second = set(ex.pmap(interpreter_id, range(40), chunksize=1))
        assert main_id not in first
        assert 1 <= len(first) <= 2
        assert len(first | second) <= 2  # the second map ran on the same subinterpreters

    def test_the_initializer_runs_inside_each_subinterpreter() -> None:
        with get_executor("interpreters", max_workers=2, initializer=remember, initargs=("ready",)) as ex:
            assert ex.submit(initialized).result(timeout=HANG_GUARD_S) == ["ready"]
        assert _initialized == []  # not in this interpreter

    def test_a_failing_initializer_breaks_the_executor() -> None:
        with get_executor("interpreters", max_workers=1, initializer=fail_init) as ex:
            future = ex.submit(pow, 2, 3)
            with pytest.raises(cf.BrokenExecutor):
                future.result(timeout=HANG_GUARD_S)
            with pytest.raises(cf.BrokenExecutor):
                ex.submit(pow, 2, 3)

    def test_what_cannot_cross_is_named() -> None:
        with get_executor("interpreters", max_workers=1) as ex:
            with pytest.raises(TypeError, match=r"fn argument 1 cannot be sent to a subinterpreter"):
                ex.submit(pow, 2, threading.Lock())
            with pytest.raises(TypeError, match=r"fn keyword argument 'key' cannot be sent"):
                ex.submit(sorted, [1], key=threading.Lock())
            with pytest.raises(TypeError, match="cannot be sent back from the subinterpreter"):
                ex.submit(returns_a_lock).result(timeout=HANG_GUARD_S)
            # lambdas and closures travel by value
            offset = 5
            assert ex.submit(lambda x: x + offset, 1).result(timeout=HANG_GUARD_S) == 6

    def test_an_exception_comes_back_as_itself_with_the_subinterpreters_traceback() -> None:
        with get_executor("interpreters", max_workers=2) as ex:
            with pytest.raises(Boom, match="item 3") as info:
                ex.submit(explode, 3).result(timeout=HANG_GUARD_S)
            assert isinstance(info.value.__cause__, RemoteTraceback)
            assert "explode" in str(info.value.__cause__)
            out = list(ex.pmap(explode, range(6), errors="collect"))
        assert [out[i] for i in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5]
        error: Any = out[3]
        assert isinstance(error, TaskError)
        assert error.index == 3
        assert isinstance(error.exception, Boom)

    def test_pmap_backend_interpreters_keeps_order() -> None:
        assert list(pmap(abs, range(-50, 50), backend="interpreters", workers=2)) == [
            abs(x) for x in range(-50, 50)
        ]

    def test_memoryviews_are_shared_not_copied() -> None:
        """A memoryview anywhere in the arguments (or a pmap's items) is the caller's memory."""
        data = bytearray(1000)
        with get_executor("interpreters", max_workers=2) as ex:
            assert ex.submit(fill, memoryview(data), 7).result(timeout=HANG_GUARD_S) == ("memoryview", 1000)
            assert data == bytearray([7]) * 1000  # written through, in place
            # a strided view, as a keyword argument
            assert ex.submit(fill, view=memoryview(data)[::2], value=1).result(timeout=HANG_GUARD_S)[1] == 500
            assert data[:4] == bytearray([1, 7, 1, 7])
            # slices of one buffer as pmap items (batched), and a typed, read-only view
            whole = memoryview(data)
            assert list(ex.pmap(view_sum, [whole[i : i + 100] for i in range(0, 1000, 100)])) == [400] * 10
            del whole
            numbers = memoryview(bytes(range(10))).cast("B", (2, 5))
            assert ex.submit(memoryview.tolist, numbers).result(timeout=HANG_GUARD_S) == [
                [0, 1, 2, 3, 4],
                [5, 6, 7, 8, 9],
            ]
            with pytest.raises(TypeError, match="read-only memory"):
                ex.submit(fill, memoryview(b"abc"), 0).result(timeout=HANG_GUARD_S)
            # once result() returns, nothing holds the export: the buffer can be resized
            data.append(0)
        assert len(data) == 1001

    def test_replies_of_any_length_come_back_whole() -> None:
        """Replies travel through a buffer per worker; one longer than it is sent again, bigger."""
        sizes = [0, 10, (1 << 16) - 40, 1 << 16, 3 << 20, 5, 1 << 20, 7]
        with get_executor("interpreters", max_workers=1) as ex:
            for size in sizes:
                out = ex.submit(os.urandom, size).result(timeout=HANG_GUARD_S)
                assert isinstance(out, bytes)
                assert len(out) == size
            same = bytes(range(256)) * 4096  # 1 MiB whose bytes can be checked
            assert ex.submit(bytes, same).result(timeout=HANG_GUARD_S) == same
            assert list(ex.pmap(bytes, [0, 1 << 20, 3], chunksize=1)) == [b"", bytes(1 << 20), bytes(3)]

    def test_a_subinterpreter_starts_without_importing_the_package() -> None:
        """The driver runs from its code and preloads only the chunk loop: calls and maps of functions
        whose modules do not import manycore never import it there (it would cost every start)."""
        check = (
            "sorted(m for m in __import__('sys').modules if m.split('.')[0] in ('manycore', 'cloudpickle'))"
        )
        with get_executor("interpreters", max_workers=1) as ex:
            assert ex.submit(eval, check).result(timeout=HANG_GUARD_S) == ["manycore._workers.batches"]
            assert list(ex.pmap(abs, range(-3, 3))) == [3, 2, 1, 0, 1, 2]
            assert ex.submit(eval, check).result(timeout=HANG_GUARD_S) == ["manycore._workers.batches"]
            # a failure loads what reports it; later calls still work
            with pytest.raises(ZeroDivisionError):
                ex.submit(divmod, 1, 0).result(timeout=HANG_GUARD_S)
            assert "manycore" in ex.submit(eval, check).result(timeout=HANG_GUARD_S)
            assert ex.submit(abs, -4).result(timeout=HANG_GUARD_S) == 4

    def test_without_the_chunk_loop_preloaded_the_package_is_imported_there(
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Had the chunk loop not been preloaded (its code could not be run there), the payload's
        own import of it imports the package: maps still work."""
        from manycore.executors import interpreters

        driver, _preload = interpreters._driver()
        monkeypatch.setattr(interpreters, "_driver", lambda: (driver, ()))
        check = "'manycore' in __import__('sys').modules"
        with get_executor("interpreters", max_workers=1) as ex:
            assert ex.submit(eval, check).result(timeout=HANG_GUARD_S) is False
            assert list(ex.pmap(abs, range(-3, 3))) == [3, 2, 1, 0, 1, 2]
            assert ex.submit(eval, check).result(timeout=HANG_GUARD_S) is True

    def test_a_later_import_of_the_package_links_the_preloaded_module() -> None:
        check = "__import__('manycore') and __import__('sys').modules['manycore._workers'].batches.__name__"
        with get_executor("interpreters", max_workers=1) as ex:
            assert ex.submit(eval, check).result(timeout=HANG_GUARD_S) == "manycore._workers.batches"
            assert list(ex.pmap(abs, range(-2, 2))) == [2, 1, 0, 1]

    def test_a_result_whose_pickling_raises_system_exit_fails_only_its_call() -> None:
        with get_executor("interpreters", max_workers=1) as ex:
            with pytest.raises(TypeError, match="cannot be sent back from the subinterpreter"):
                ex.submit(exits_when_pickled).result(timeout=HANG_GUARD_S)
            assert ex.submit(abs, -5).result(timeout=HANG_GUARD_S) == 5
