#!/usr/bin/env python3
"""Render a ``manycore bench`` HTML report in headless Chromium and check it.

Usage::

    python scripts/check_html_report.py REPORT.html [--screenshot out.png]

The report is copied alone into a temporary directory (so a plot that is linked
rather than embedded breaks, as it would for whoever receives the file), with a
small script injected before ``</body>``.  After the page has loaded, that script
writes into ``<body data-check="...">`` how many images there are, which did not
decode (not complete, or naturalWidth 0), how many tables there are and which
``src``/``href`` attributes point outside the page (anything but ``data:`` URIs and
``#fragments``).  Chromium's ``--dump-dom`` output is parsed for that attribute.

The check fails (exit 1) when an image is broken, there are no images or no
tables, the page refers to anything outside itself, or the script did not run.
With ``--screenshot`` a 1200x3000 screenshot is taken too and must be a PNG of
that size whose pixels are not all one colour.

Exit codes: 0 passed, 1 check failed, 2 cannot check (no Chromium, no report).
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Root in a container: the sandbox cannot start (--no-sandbox), /dev/shm may be
# small (--disable-dev-shm-usage); a throw-away profile keeps $HOME untouched.
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)
TIMEOUT_S = 120
WINDOW = (1200, 3000)
MIN_SCREENSHOT_BYTES = 4096

CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); })
    .map(function (img) { return img.alt || img.src.slice(0, 60); });
  var external = Array.prototype.slice.call(document.querySelectorAll("[src],[href]"))
    .map(function (el) { return el.getAttribute("src") || el.getAttribute("href") || ""; })
    .filter(function (ref) { return !/^(data:|#)/i.test(ref.trim()); });
  document.body.setAttribute("data-check", JSON.stringify({
    images: images.length,
    broken: broken,
    tables: document.querySelectorAll("table").length,
    external: external
  }));
});
</script>
"""


class CheckFailed(Exception):
    pass


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def inject(page: str) -> str:
    at = page.lower().rfind("</body>")
    return page + CHECK_SCRIPT if at < 0 else page[:at] + CHECK_SCRIPT + page[at:]


def run_browser(browser: str, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [browser, *BASE_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{os.path.basename(browser)} did not finish within {TIMEOUT_S} s") from None


class _BodyAttribute(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.value is None:
            self.value = dict(attrs).get("data-check")


def read_check(dom: str) -> dict[str, Any]:
    parser = _BodyAttribute()
    parser.feed(dom)
    parser.close()
    if not parser.value:
        raise CheckFailed("the injected check did not run (no data-check attribute in the rendered DOM)")
    result: dict[str, Any] = json.loads(parser.value)
    return result


def check_screenshot(path: str) -> str:
    """Problems with the screenshot PNG: missing, tiny, wrong size, or one colour everywhere."""
    if not os.path.isfile(path):
        raise CheckFailed(f"no screenshot was written to {path}")
    size = os.path.getsize(path)
    if size < MIN_SCREENSHOT_BYTES:
        raise CheckFailed(f"screenshot {path} is only {size} bytes")
    with open(path, "rb") as file:
        data = file.read()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CheckFailed(f"screenshot {path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != WINDOW:
        raise CheckFailed(f"screenshot is {width}x{height}, expected {WINDOW[0]}x{WINDOW[1]}")
    idat, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(idat))
    # A one-colour image filters down to two or three byte values; text and plots
    # (anti-aliased) give many.  Each probe is a C-speed search, not a Python loop.
    distinct = sum(1 for b in range(256) if bytes((b,)) in raw)
    if distinct < 32:
        raise CheckFailed(f"screenshot looks blank ({distinct} distinct byte values in its pixels)")
    return f"screenshot {path} {width}x{height}, {size // 1024} KB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("report", help="the HTML report to check")
    parser.add_argument("--screenshot", metavar="PNG", help="also save a 1200x3000 screenshot here")
    args = parser.parse_args(argv)

    browser = find_browser()
    if browser is None:
        print(
            "check_html_report: no Chromium found (looked for "
            + ", ".join(BROWSERS)
            + "); install it, e.g. `apt-get install chromium` on Debian",
            file=sys.stderr,
        )
        return 2
    try:
        with open(args.report, encoding="utf-8") as file:
            page = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"check_html_report: cannot read {args.report}: {exc}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="check_html_report-") as tmp:
            copy = os.path.join(tmp, "report.html")
            with open(copy, "w", encoding="utf-8") as file:
                file.write(inject(page))
            url = "file://" + copy
            done = run_browser(browser, os.path.join(tmp, "profile"), "--dump-dom", url)
            if done.returncode != 0 or "<body" not in done.stdout:
                tail = "\n".join(done.stderr.strip().splitlines()[-5:])
                raise CheckFailed(f"{browser} --dump-dom exited with {done.returncode}:\n{tail}")
            result = read_check(done.stdout)
            problems = []
            if result.get("broken"):
                problems.append(f"broken images: {', '.join(map(str, result['broken']))}")
            if not result.get("images"):
                problems.append("no images")
            if not result.get("tables"):
                problems.append("no tables")
            if result.get("external"):
                problems.append(f"refers outside the page: {', '.join(map(str, result['external']))}")
            if problems:
                raise CheckFailed("; ".join(problems))
            shot = ""
            if args.screenshot:
                target = os.path.abspath(args.screenshot)
                if os.path.exists(target):
                    os.remove(target)
                size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
                done = run_browser(browser, os.path.join(tmp, "profile"), f"--screenshot={target}", size, url)
                if done.returncode != 0:
                    tail = "\n".join(done.stderr.strip().splitlines()[-5:])
                    raise CheckFailed(f"{browser} --screenshot exited with {done.returncode}:\n{tail}")
                shot = "; " + check_screenshot(target)
    except CheckFailed as exc:
        print(f"check_html_report: FAILED {args.report}: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(
        f"check_html_report: OK {args.report}: {result['images']} images, {result['tables']} tables, "
        f"none broken{shot} ({elapsed:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
