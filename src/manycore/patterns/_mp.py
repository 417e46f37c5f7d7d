"""Small typed helpers over ``multiprocessing`` contexts."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from .._workers import start_context


def context(ctx: BaseContext | None) -> BaseContext:
    """``ctx`` or the default context, with ``fork`` only while no other thread runs Python.

    See :mod:`manycore._workers._start`: a fork context becomes forkserver
    when the process runs other Python threads.
    """
    return start_context(ctx)


def new_process(
    ctx: BaseContext,
    target: Callable[..., object],
    args: tuple[Any, ...],
    name: str,
    daemon: bool | None = None,
) -> BaseProcess:
    """``ctx.Process(...)``: typeshed declares ``Process`` on the concrete contexts only."""
    proc: BaseProcess = ctx.Process(target=target, args=args, name=name, daemon=daemon)  # type: ignore[attr-defined]
    return proc
