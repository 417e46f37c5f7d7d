"""What runs inside each subinterpreter of an ``InterpreterExecutor``.

The worker thread (in the main interpreter) binds the call's payload (bytes:
``fn, args, kwargs`` pickled, lambdas by value) as ``__main__._manycore_payload``
and the memoryviews it shares (left out of the pickle) as ``_manycore_views``,
and calls :func:`serve` in the subinterpreter; the reply goes back as bytes on
the results queue bound as ``__main__._manycore_results``:
``(True, value)``, or ``(False, FailureReport)`` for an exception of ``fn``
(type, message, traceback text, and the exception itself when it pickles).
"""

from __future__ import annotations

from typing import Any

from .._workers import serialize
from .._workers.report import FailureReport
from ._interp_api import interpreters_module

try:
    interpreters_module()  # in a subinterpreter: the queue type must be known before a queue is bound
except ImportError:
    pass  # imported where subinterpreters are unavailable (an import-everything check): never used there


def serve() -> None:
    """Run the bound payload and put the reply (called with ``Interpreter.call``: no arguments)."""
    import __main__
    from manycore.executors._interp_driver import run

    space = __main__.__dict__
    run(space.pop("_manycore_payload"), space.pop("_manycore_views"), __main__._manycore_results)


def run(payload: bytes, views: tuple[memoryview, ...], results: Any) -> None:
    try:
        fn, args, kwargs = serialize.loads_views(payload, views) if views else serialize.loads(payload)
        del views  # only fn's arguments keep the shared memory exported
        reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:
        reply = (False, FailureReport.of(exc))
    try:
        data = serialize.dumps(reply)
    except Exception as exc:
        error = TypeError(f"the result of the call cannot be sent back from the subinterpreter: {exc}")
        data = serialize.dumps((False, FailureReport.of(error)))
    results.put(data)
