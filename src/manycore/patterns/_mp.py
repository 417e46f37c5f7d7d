"""Small typed helpers over ``multiprocessing`` contexts."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any


def context(ctx: BaseContext | None) -> BaseContext:
    """``ctx``, or the default context (the default start method) if None."""
    return ctx if ctx is not None else multiprocessing.get_context()


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
