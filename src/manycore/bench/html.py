"""The benchmark report as one self-contained HTML5 page.

:func:`to_html` lays the report out as :meth:`Report.to_markdown` does (a title,
the machine, then one table per section with its notes and plots; a section in
which no row was timed, such as the verdict, leaves out the empty time, median
and noise columns), but the page
needs nothing beside itself: the style sheet is inline and every plot listed in
``section.plots`` is read from disk and embedded as a base64 ``data:`` URI, so the
file can be mailed, attached to an issue or opened from anywhere.  A plot file
that cannot be read, or is not a PNG, is named in a visible note instead.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from .report import Report, Section

__all__ = ["to_html"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
:root { color-scheme: light; }
body {
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; color: #1f2328; background: #ffffff;
  max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 4rem;
}
h1 { font-size: 1.8rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid #d0d7de; }
h2 .seconds { font-size: .85rem; font-weight: normal; color: #656d76; }
p.meta { color: #656d76; margin: 0 0 1.2rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
nav ul { margin: .3rem 0 1rem; padding-left: 1.4rem; }
nav a { color: #0969da; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.warnings {
  border: 2px solid #bf8700; border-left-width: 8px; background: #fff8c5;
  border-radius: 6px; padding: .7rem 1rem; margin: 0 0 1.5rem;
}
.warnings strong { display: block; font-size: 1.05rem; margin-bottom: .3rem; }
.warnings ul { margin: 0; padding-left: 1.3rem; }
table { border-collapse: collapse; margin: .5rem 0 .8rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3rem .65rem; vertical-align: top; }
th { background: #f6f8fa; text-align: left; font-weight: 600; }
th.num, td.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.noisy td { background: #fff8c5; }
table.machine th { width: 14rem; }
ul.notes { margin: .4rem 0; padding-left: 1.3rem; color: #424a53; }
ul.notes li { margin: .2rem 0; }
figure { margin: .8rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de; }
p.missing {
  color: #82071e; background: #ffebe9; border: 1px solid #ff8182;
  border-radius: 6px; padding: .4rem .7rem;
}
section.verdict {
  border: 2px solid #1a7f37; border-radius: 8px; padding: 0 1rem .6rem; margin-top: 2.2rem;
  background: #f6fff8;
}
section.verdict h2 { border-bottom-color: #1a7f37; margin-top: 1rem; }
footer { margin-top: 3rem; color: #656d76; font-size: .85rem; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _anchor(section: Section) -> str:
    return "section-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in str(section.id))


def _warnings(report: Report) -> list[str]:
    warnings = report.warnings
    if not warnings:
        return []
    out = ['<div class="warnings" role="alert">', "<strong>⚠ Read these numbers with care</strong>"]
    out.append("<ul>")
    out += [f"<li>{_esc(w)}</li>" for w in warnings]
    out += ["</ul>", "</div>"]
    return out


def _machine(machine: dict[str, Any]) -> list[str]:
    out = ['<table class="machine">', "<caption hidden>machine</caption>", "<tbody>"]
    for key, value in machine.items():
        shown = "—" if value is None else str(value)
        out.append(f'<tr><th scope="row">{_esc(key)}</th><td>{_esc(shown)}</td></tr>')
    out += ["</tbody>", "</table>"]
    return out


def _numeric_column(section: Section, column: str) -> bool:
    values = [r.values.get(column) for r in section.rows]
    present = [v for v in values if v is not None]
    return bool(present) and all(_is_number(v) for v in present)


def _cell(tag: str, text: str, numeric: bool) -> str:
    kind = ' class="num"' if numeric else ""
    return f"<{tag}{kind}>{_esc(text)}</{tag}>"


def _table(section: Section) -> list[str]:
    """The section's table as Markdown and the terminal show it (``head``/``cells``), numbers right-aligned."""
    timed = [True] * (3 if section.timed() else 0)
    head_numeric = [False, *timed, *(_numeric_column(section, c) for c in section.columns)]
    head = "".join(
        _cell("th", name.replace("_", " "), numeric)
        for name, numeric in zip(section.head(), head_numeric, strict=True)
    )
    out = ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in section.rows:
        numeric = [False, *timed, *(_is_number(row.values.get(c)) for c in section.columns)]
        cells = "".join(_cell("td", text, num) for text, num in zip(section.cells(row), numeric, strict=True))
        out.append(('<tr class="noisy">' if row.noisy else "<tr>") + cells + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def _plot(path: str, title: str) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f'<p class="missing">Plot <code>{_esc(path)}</code> could not be read: {_esc(reason)}.</p>'
    if not data.startswith(_PNG_SIGNATURE):
        return f'<p class="missing">Plot <code>{_esc(path)}</code> is not a PNG file; not embedded.</p>'
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{_esc(title)}"></figure>'


def _section(section: Section) -> list[str]:
    classes = "section verdict" if section.id == "verdict" else "section"
    out = [f'<section class="{classes}" id="{_esc(_anchor(section))}">']
    seconds = f' <span class="seconds">({section.seconds:.1f} s)</span>' if section.seconds else ""
    out.append(f"<h2>{_esc(section.title)}{seconds}</h2>")
    if section.rows:
        out += _table(section)
    if section.notes:
        out.append('<ul class="notes">')
        out += [f"<li>{_esc(note)}</li>" for note in section.notes]
        out.append("</ul>")
    out += [_plot(str(path), section.title) for path in section.plots]
    out.append("</section>")
    return out


def to_html(report: Report) -> str:
    """The report as one HTML5 document with its style sheet and plots inline."""
    run = "quick" if report.quick else "full"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>manycore bench report — {_esc(report.created)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>manycore bench report</h1>",
        f'<p class="meta">Created {_esc(report.created)}; {run} run; schema <code>{_esc(report.schema)}</code>.</p>',
    ]
    out += _warnings(report)
    out += _machine(report.machine)
    if len(report.sections) > 1:
        out += ['<nav aria-label="sections">', "<ul>"]
        out += [f'<li><a href="#{_esc(_anchor(s))}">{_esc(s.title)}</a></li>' for s in report.sections]
        out += ["</ul>", "</nav>"]
    for section in report.sections:
        out += _section(section)
    out += [
        "<footer>Every ratio in the report is between peers measured in the same run.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out)
