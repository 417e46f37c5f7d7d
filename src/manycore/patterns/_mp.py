"""Small typed helpers over ``multiprocessing`` contexts."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from .._workers import start_context


def context(ctx: BaseContext | None) -> BaseContext:
    """``ctx`` as given; else the default context, forkserver instead of fork while other threads run Python.

    See :mod:`manycore._workers._start`.
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
