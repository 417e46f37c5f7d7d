"""``manycore fetch``: the body of the command (``manycore.cli`` declares the options and imports this lazily)."""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .demo_server import DemoServer, process_data, process_data_sync
from .fetcher import Parse, fetch_all
from .progress import FetchProgress
from .result import FetchResult, FetchSummary, summarize

EXIT_OK = 0
EXIT_SOME_FAILED = 1


def read_url_file(stream: TextIO) -> list[str]:
    """URLs from a text stream: one per line; blank lines and ``#`` comments are skipped."""
    urls = []
    for line in stream:
        text = line.strip()
        if text and not text.startswith("#"):
            urls.append(text)
    return urls


def run_fetch(
    *,
    urls: Sequence[str],
    demo: bool,
    count: int,
    demo_latency_s: float,
    demo_jitter_s: float,
    demo_fail_rate: float,
    concurrency: int,
    per_host: int | None,
    deadline_s: float | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    parse: Parse,
    max_bytes: int | None,
    process_workers: int,
    no_process: bool,
    as_json: bool,
    progress: bool,
    show: int,
    out: TextIO | None = None,
) -> int:
    """Fetch, print, and return the exit status (0: every URL ok, 1: some failed)."""
    stdout = out if out is not None else sys.stdout
    console = Console(file=stdout, soft_wrap=False)
    with contextlib.ExitStack() as stack:
        target = list(urls)
        process: Callable[[Any], Any] | None = None
        executor: Executor | None = None
        if demo:
            server = stack.enter_context(
                DemoServer(
                    todos=max(count, 1),
                    latency_s=demo_latency_s,
                    jitter_s=demo_jitter_s,
                    fail_rate=demo_fail_rate,
                )
            )
            target = server.todo_urls(count) + target
            if not as_json:
                console.print(
                    f"[bold]demo API[/] on {server.base_url}: {count} todos, latency "
                    f"{demo_latency_s * 1000:g} ms + up to {demo_jitter_s * 1000:g} ms, "
                    f"{demo_fail_rate:.0%} answered 503"
                )
            if not no_process:
                if process_workers > 0:
                    # spawn: the demo server's thread is running, and fork() with threads is unsafe.
                    executor = stack.enter_context(
                        ProcessPoolExecutor(process_workers, mp_context=multiprocessing.get_context("spawn"))
                    )
                    process = process_data_sync
                else:
                    process = process_data
        bar: FetchProgress | None = None
        if progress and not as_json:
            bar = stack.enter_context(FetchProgress(len(target), console=Console(stderr=True)))
        started = time.perf_counter()
        results = fetch_all(
            target,
            concurrency=concurrency,
            per_host=per_host,
            deadline_s=deadline_s,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            parse=parse,
            max_bytes=max_bytes,
            process=process,
            process_executor=executor,
            on_result=bar.update if bar is not None else None,
        )
        wall_s = time.perf_counter() - started
    summary = summarize(results, wall_s)
    if as_json:
        stdout.write(json.dumps(_json_report(results, summary), indent=2, default=str) + "\n")
    else:
        if show > 0:
            console.print(_results_table(results, show))
        console.print(_summary_table(summary))
    return EXIT_OK if summary.failed == 0 else EXIT_SOME_FAILED


def _json_report(results: Sequence[FetchResult], summary: FetchSummary) -> dict[str, Any]:
    def record(r: FetchResult) -> dict[str, Any]:
        item: dict[str, Any] = {
            "url": r.url,
            "ok": r.ok,
            "status": r.status,
            "attempts": r.attempts,
            "elapsed_s": round(r.elapsed_s, 6),
            "error": None if r.error is None else {"kind": r.error.kind, "message": r.error.message},
        }
        if isinstance(r.data, bytes):
            item["data"] = base64.b64encode(r.data).decode("ascii")
            item["data_encoding"] = "base64"
        else:
            item["data"] = r.data
        return item

    return {
        "summary": {
            "total": summary.total,
            "ok": summary.ok,
            "failed": summary.failed,
            "retried": summary.retried,
            "requests": summary.requests,
            "wall_s": round(summary.wall_s, 6),
            "p50_s": round(summary.p50_s, 6),
            "p95_s": round(summary.p95_s, 6),
            "max_s": round(summary.max_s, 6),
            "urls_per_s": round(summary.urls_per_s, 2),
            "requests_per_s": round(summary.requests_per_s, 2),
            "errors": summary.errors,
        },
        "results": [record(r) for r in results],
    }


def _preview(value: Any, width: int = 60) -> str:
    text = value.hex() if isinstance(value, bytes) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain(text: str, style: str = "") -> Text:
    """A table cell showing ``text`` as it is: no rich markup (a URL or a server's error body may
    hold ``[...]``), and control characters escaped (an invalid URL may hold some)."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return Text(text, style=style)


def _rows(results: Sequence[FetchResult], show: int) -> Iterator[tuple[int, FetchResult]]:
    # The first rows, plus every failure up to the same budget: failures are what one looks for.
    failures = [(i, r) for i, r in enumerate(results) if not r.ok][:show]
    firsts = [(i, r) for i, r in enumerate(results[:show])]
    seen: set[int] = set()
    for i, r in sorted(firsts + failures, key=lambda pair: pair[0]):
        if i not in seen:
            seen.add(i)
            yield i, r


def _results_table(results: Sequence[FetchResult], show: int) -> Table:
    table = Table(title=f"results (first {min(show, len(results))} and failures, of {len(results)})")
    table.add_column("#", justify="right")
    table.add_column("url", overflow="fold")
    table.add_column("status", justify="right")
    table.add_column("tries", justify="right")
    table.add_column("ms", justify="right")
    table.add_column("data / error", overflow="fold")
    for i, r in _rows(results, show):
        detail = _plain(_preview(r.data)) if r.ok else _plain(str(r.error), style="red")
        table.add_row(
            str(i),
            _plain(r.url),
            "-" if r.status is None else str(r.status),
            str(r.attempts),
            f"{r.elapsed_s * 1000:.1f}",
            detail,
        )
    return table


def _summary_table(s: FetchSummary) -> Table:
    table = Table(title="summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("URLs", str(s.total)),
        ("ok", f"[green]{s.ok}[/]"),
        ("failed", f"[red]{s.failed}[/]" if s.failed else "0"),
        ("retried", str(s.retried)),
        ("requests (with retries)", str(s.requests)),
        ("p50 latency", f"{s.p50_s * 1000:.1f} ms"),
        ("p95 latency", f"{s.p95_s * 1000:.1f} ms"),
        ("max latency", f"{s.max_s * 1000:.1f} ms"),
        ("wall time", f"{s.wall_s:.3f} s"),
        ("URLs/s", f"{s.urls_per_s:.1f}"),
        ("req/s", f"{s.requests_per_s:.1f}"),
    ]
    for kind, n in s.errors.items():
        rows.append((f"errors: {kind}", str(n)))
    for what, value in rows:
        table.add_row(what, value)
    return table
