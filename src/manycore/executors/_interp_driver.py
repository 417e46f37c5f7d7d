"""What runs inside each subinterpreter of an ``InterpreterExecutor``.

This file is not imported there: its code (compiled in the main interpreter,
sent with :mod:`marshal`, so installs without sources work too) runs in the
subinterpreter's ``__main__`` when the worker starts.  Importing anything
under ``manycore`` would run the package's ``__init__`` (the whole public
API, 60 ms and more per subinterpreter on 3.13t); this driver needs only
``sys`` and the C pickler.  It also loads ``manycore._workers.batches`` (the
chunk loop ``pmap`` sends, standard library imports only) from its code,
under its own name, so a payload naming ``run_chunk`` does not import the
package either (a later ``import manycore`` there links it to its package:
``manycore._workers`` imports it by name).  Anything else a payload names is
imported as usual.

A call: the worker thread (in the main interpreter) binds the payload (bytes:
``fn, args, kwargs`` pickled, lambdas by value) as ``_manycore_payload`` and
the memoryviews it shares (left out of the pickle) as ``_manycore_views``,
then runs ``_manycore_serve()``.  The reply, ``(True, value)`` or
``(False, FailureReport)`` pickled, is written into the buffer the worker
bound as ``_manycore_reply`` (a memoryview of its memory): 8 bytes of length
(little-endian), then the bytes.  A reply longer than the buffer is kept
here; the worker binds a larger buffer and runs ``_manycore_flush()``.

The failure path imports manycore's report module (and with it the package):
failures pay that once, successful calls never do.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported here at run time (type checkers read the name as True)
if TYPE_CHECKING:
    from typing import Any

try:
    from _pickle import Unpickler, dumps  # the C pickler: `import pickle` costs twice as much
except ImportError:  # pragma: no cover - an interpreter without the C accelerator
    from pickle import Unpickler, dumps

HEADER = 8  # bytes of reply length before the reply

_pending: list[bytes] = []  # a reply that did not fit the bound buffer (one at most)
_preloaded: set[str] = set()  # modules loaded by _manycore_preload: unpickled without an import


def _manycore_setup(sys_path: tuple[str, ...], preload: tuple[tuple[str, str, bytes], ...]) -> None:
    """At the start: the caller's import path, then the modules sent as code."""
    sys.path[:] = sys_path
    for name, path, code in preload:
        _manycore_preload(name, path, code)


def _manycore_preload(name: str, path: str, code: bytes) -> None:
    """Run the marshalled ``code`` as the module ``name`` (from ``path``), parents not imported.

    A module that fails here is left out: a payload naming it imports it as usual, and that
    import says what is wrong."""
    import importlib.machinery
    import marshal

    if name in sys.modules:
        return
    module = type(sys)(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=path)
    module.__file__ = path
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    try:
        exec(marshal.loads(code), module.__dict__)
    except Exception:
        del sys.modules[name]
        return
    _preloaded.add(name)


class _Loader(Unpickler):
    """Unpickles a payload: memoryviews left out of it are persistent ids (their indexes), and a
    preloaded module is used as it is (``pickle`` would import its top package too, which for
    ``manycore._workers.batches`` is the whole of manycore)."""

    def __init__(self, payload: bytes, views: tuple[memoryview, ...]) -> None:
        import io

        super().__init__(io.BytesIO(payload))
        self._views = views

    def persistent_load(self, pid: int) -> memoryview:
        return self._views[pid]

    def find_class(self, module_name: str, name: str) -> Any:
        if module_name not in _preloaded or "." in name:
            return super().find_class(module_name, name)
        sys.audit("pickle.find_class", module_name, name)
        return getattr(sys.modules[module_name], name)


def _manycore_serve() -> None:
    """Run the bound payload and write the reply (see the module docstring)."""
    space = globals()
    _pending.clear()  # a reply the worker could not take (it failed to make room) is dropped
    payload: bytes = space.pop("_manycore_payload")
    views: tuple[memoryview, ...] = space.pop("_manycore_views")
    try:
        fn, args, kwargs = _Loader(payload, views).load()
        del views  # only fn's arguments keep the shared memory exported
        reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:
        reply = (False, _report(exc))
    _write(_pickled(reply))


def _manycore_flush() -> None:
    """Write the reply that did not fit into the (larger) buffer bound since."""
    _write(_pending.pop())


def _pickled(reply: tuple[bool, Any]) -> bytes:
    try:
        return bytes(dumps(reply, protocol=5))
    except BaseException:  # a __reduce__ may raise anything, SystemExit included
        pass
    try:  # lambdas, closures, classes sent here by value: cloudpickle
        from manycore._workers import serialize

        return serialize.dumps(reply)
    except BaseException as exc:
        error = TypeError(f"the result of the call cannot be sent back from the subinterpreter: {exc}")
        return bytes(dumps((False, _report(error)), protocol=5))


def _report(exc: BaseException) -> Any:
    from manycore._workers.report import FailureReport

    return FailureReport.of(exc)


def _write(data: bytes) -> None:
    buffer: memoryview = globals()["_manycore_reply"]
    buffer[:HEADER] = len(data).to_bytes(HEADER, "little")
    if HEADER + len(data) <= len(buffer):
        buffer[HEADER : HEADER + len(data)] = data
    else:
        _pending.append(data)
