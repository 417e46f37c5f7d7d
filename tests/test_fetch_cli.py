"""``manycore fetch`` and the demo API it embeds (all offline, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from fetch_servers import leak_check, start_resource_tracker
from manycore.cli import fetch as fetch_command
from manycore.cli import main
from manycore.fetch import DemoServer, fetch_all, make_todo

pytestmark = pytest.mark.timeout(60)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "fetch.md"


@pytest.fixture(scope="module", autouse=True)
def _resource_tracker() -> None:
    start_resource_tracker()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    with leak_check():
        yield


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["fetch", *args], input=input, catch_exceptions=False)


def invoke_wide(*args: str, input: str | None = None) -> Any:
    """Like :func:`invoke`, on a terminal wide enough that no table cell is folded."""
    runner = CliRunner(env={"COLUMNS": "400"})
    return runner.invoke(main, ["fetch", *args], input=input, catch_exceptions=False)


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


# -- the command ------------------------------------------------------------------------------


def test_help_explains_every_option() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for param in fetch_command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{param.name} has no help text"
            assert param.opts[-1] in text
    for word in ("--demo", "--concurrency", "--deadline", "--retries", "--json", "Exit status"):
        assert word in text


def test_demo_json_runs_the_seeds_program_offline() -> None:
    result = invoke(
        "--demo", "--count", "25", "--demo-latency", "0", "--demo-jitter", "0",
        "--demo-fail-rate", "0.2", "--retries", "10", "--backoff", "0.01", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["total"] == summary["ok"] == 25
    assert summary["failed"] == 0
    assert summary["requests"] >= 25
    assert summary["p50_s"] <= summary["p95_s"] <= summary["max_s"]
    # The seed's process_data: id kept, title upper-cased; input order kept.
    assert [r["data"] for r in report["results"]] == [
        {"id": i, "title": make_todo(i)["title"].upper()} for i in range(1, 26)
    ]
    assert report["results"][0]["data"] == {"id": 1, "title": "DELECTUS AUT AUTEM"}


def test_demo_tables_and_progress() -> None:
    result = invoke("--demo", "--count", "30", "--demo-latency", "0.01", "--demo-fail-rate", "0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in (
        "demo API on http://127.0.0.1:",
        "summary",
        "p50 latency",
        "p95 latency",
        "req/s",
        "retried",
    ):
        assert word in out
    assert "DELECTUS AUT AUTEM" in out
    assert "30/30" in result.stderr  # the progress bar's final state


def test_demo_processing_in_a_process_pool() -> None:
    result = invoke(
        "--demo", "--count", "12", "--demo-latency", "0", "--demo-fail-rate", "0",
        "--process-workers", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = [r["data"] for r in json.loads(result.stdout)["results"]]
    assert data == [{"id": i, "title": make_todo(i)["title"].upper()} for i in range(1, 13)]


def test_demo_without_processing() -> None:
    result = invoke("--demo", "--count", "3", "--demo-fail-rate", "0", "--no-process", "--json")
    assert result.exit_code == 0
    assert [r["data"] for r in json.loads(result.stdout)["results"]] == [make_todo(i) for i in (1, 2, 3)]


def test_failures_set_exit_status_1_and_are_reported() -> None:
    with DemoServer() as api:
        result = invoke(api.url("/todos/1"), api.url("/todos/999"), "--retries", "0", "--json")
        table = invoke(api.url("/todos/999"), "--no-progress")
    assert result.exit_code == 1
    ok, missing = json.loads(result.stdout)["results"]
    assert ok["ok"]
    assert ok["data"]["id"] == 1
    assert not missing["ok"]
    assert missing["status"] == 404
    assert missing["error"]["kind"] == "http"
    assert table.exit_code == 1
    assert "HTTP 404" in table.stdout
    assert "errors: http" in table.stdout


def test_urls_from_stdin_and_bytes_output() -> None:
    with DemoServer() as api:
        listing = f"# comment\n{api.url('/todos/2')}\n\n{api.url('/todos/3')}\n"
        result = invoke("-i", "-", "--parse", "bytes", "--json", input=listing)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert [r["data_encoding"] for r in results] == ["base64", "base64"]


def test_malformed_urls_are_reported_per_url_and_the_rest_fetched() -> None:
    bad = ["http://127.0.0.1:notaport/x", "ftp://127.0.0.1/x", "example.com/x", "http://"]
    with DemoServer() as api:
        urls = [api.url("/todos/1"), *bad, api.url("/todos/2")]
        as_json = invoke(*urls, "--retries", "3", "--json")
        listing = "\n".join(["http://exa mple.com/x", api.url("/todos/3")]) + "\n"
        table = invoke_wide("-i", "-", "--no-progress", input=listing)
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)
    records = report["results"]
    assert [r["url"] for r in records] == urls
    assert [r["data"]["id"] for r in (records[0], records[-1])] == [1, 2]
    for url, r in zip(bad, records[1:-1], strict=True):
        assert not r["ok"]
        assert r["attempts"] == 0
        assert r["status"] is None
        assert r["error"]["kind"] == "invalid_url"
        assert r["error"]["message"].startswith(f"{url!r} is not a valid URL: ")
    assert report["summary"]["errors"] == {"invalid_url": 4}
    assert (report["summary"]["failed"], report["summary"]["requests"]) == (4, 2)
    assert table.exit_code == 1, table.output
    text = " ".join(table.stdout.split())
    assert "invalid_url: 'http://exa mple.com/x' is not a valid URL" in text
    assert "errors: invalid_url │ 1" in text
    assert '"id": 3' in text


def test_the_results_table_shows_urls_and_errors_as_plain_text() -> None:
    # Rich markup in a URL or a message ("[/x]" used to raise MarkupError) and control
    # characters (an escape sequence would reach the terminal) are shown as text.
    with DemoServer() as api:
        good = api.url("/todos/1?q=[/x]")
        result = invoke_wide(
            good, "ftp://127.0.0.1/[bold]x[/]", "http://127.0.0.1/\x1b[31mred", "--no-progress"
        )
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "\x1b" not in out
    assert f"│ {good} " in out
    assert "invalid_url: 'ftp://127.0.0.1/[bold]x[/]' is not a valid URL: unsupported scheme 'ftp'" in out
    assert "│ http://127.0.0.1/\\x1b[31mred " in out
    assert (
        "'http://127.0.0.1/\\x1b[31mred' is not a valid URL: control character '\\x1b' at position 17" in out
    )
    assert "errors: invalid_url" in out


def test_usage_errors() -> None:
    nothing = invoke()
    assert nothing.exit_code == 2
    assert "give at least one URL" in nothing.output
    bad_option = invoke("--demo", "--concurrency", "0")
    assert bad_option.exit_code == 2
    assert "--concurrency" in bad_option.output


def test_top_level_help_does_not_import_aiohttp() -> None:
    code = "import sys; from manycore.cli import main; assert 'aiohttp' not in sys.modules, 'eager import'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the demo API -----------------------------------------------------------------------------


def test_demo_api_endpoints() -> None:
    with DemoServer(todos=5) as api:
        assert get(api.url("/todos/1")) == (
            200,
            {"userId": 1, "id": 1, "title": "delectus aut autem", "completed": False},
        )
        assert get(api.url("/todos/6")) == (404, {})
        assert get(api.url("/todos/x")) == (404, {})
        status, todos = get(api.url("/todos?_limit=3"))
        assert status == 200
        assert todos == [make_todo(i) for i in (1, 2, 3)]
        assert get(api.url("/todos/2?fail=503"))[0] == 503
        assert get(api.url("/todos/2?delay=0.05")) == (200, make_todo(2))
        assert get(api.url("/"))[1]["todos"] == 5
        assert api.requests == 7


def test_demo_api_failure_injection_is_retried() -> None:
    with DemoServer(fail_rate=0.5, seed=7) as api:
        results = fetch_all(api.todo_urls(20), retries=20, backoff_s=0.001, max_backoff_s=0.01)
        assert all(r.ok for r in results)
        assert api.failures_injected > 0
        assert sum(r.attempts for r in results) == 20 + api.failures_injected


def test_demo_api_lifecycle_and_arguments() -> None:
    api = DemoServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = api.base_url
    api.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            api.start()
    finally:
        api.stop()
    api.stop()  # idempotent
    with pytest.raises(ValueError, match="fail_rate"):
        DemoServer(fail_rate=1.5)
    with pytest.raises(ValueError, match="todos"):
        DemoServer(todos=0)
    with pytest.raises(ValueError, match="latency_s"):
        DemoServer(latency_s=-1)


def test_demo_api_as_async_context_manager() -> None:
    from manycore.fetch import afetch_all, process_data

    async def main() -> list[Any]:
        async with DemoServer() as api:
            results = await afetch_all(api.todo_urls(3), process=process_data)
        return [r.data for r in results]

    assert asyncio.run(main()) == [{"id": i, "title": make_todo(i)["title"].upper()} for i in (1, 2, 3)]


def test_docs_corrected_seed_program_runs() -> None:
    """The corrected program in docs/fetch.md runs as printed (offline, against the demo API)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    programs = [b for b in blocks if 'if __name__ == "__main__":' in b]
    assert len(programs) >= 2, "docs/fetch.md should hold the corrected seed programs"
    for program in programs:
        done = subprocess.run(
            [sys.executable, "-W", "error::ResourceWarning", "-c", program],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "'title': 'DELECTUS AUT AUTEM'" in done.stdout, done.stdout
        assert not done.stderr.strip(), done.stderr
