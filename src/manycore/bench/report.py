"""The benchmark report: a versioned JSON document, Markdown, and terminal tables."""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "manycore-bench/1"

#: A row whose median is this much above its best was disturbed while measured
#: (another process took the CPU): it is marked, and ``--retry-noisy`` re-measures it.
NOISY = 0.25


@dataclass
class Row:
    """One measured mechanism.  ``values`` holds the section's extra columns."""

    name: str
    time_s: float | None = None
    median_s: float | None = None
    noise: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    noisy: bool = False  # noise above NOISY: the machine disturbed this measurement


@dataclass
class Section:
    id: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)  # data behind the plots
    plots: list[str] = field(default_factory=list)  # files written
    seconds: float = 0.0
    attempts: int = 1  # more than 1: re-measured for noisy rows (--retry-noisy), the quietest kept
    first_column: str = "mechanism"  # what the rows' names are

    def timed(self) -> bool:
        """Whether any row has a time (the verdict's rows have none: its table drops those columns)."""
        return any(row.time_s is not None for row in self.rows)

    def head(self) -> list[str]:
        """The table's column titles."""
        times = ["time", "median", "noise"] if self.timed() else []
        return [self.first_column, *times, *self.columns]

    def cells(self, row: Row) -> list[str]:
        """One row's cells under :meth:`head`, formatted."""
        noise = fmt_noise(row.noise) + (" ⚠" if row.noisy else "")
        times = [fmt_seconds(row.time_s), fmt_seconds(row.median_s), noise] if self.timed() else []
        return [row.name, *times, *(fmt_value(row.values.get(c)) for c in self.columns)]

    def noisy_rows(self) -> list[Row]:
        return [row for row in self.rows if row.noisy]

    def add(self, name: str, timing: Any = None, **values: Any) -> Row:
        row = Row(name)
        if timing is not None:
            row.time_s, row.median_s, row.noise = timing.best_s, timing.median_s, timing.noise
            row.noisy = row.noise > NOISY
        row.values = values
        for key in values:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(row)
        return row


@dataclass
class Report:
    machine: dict[str, Any]
    quick: bool
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown first: a busy machine, ...
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _clean(asdict(self))
        return cleaned

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        out = ["# manycore bench report", ""]
        out.append(
            f"Created {self.created}; {'quick' if self.quick else 'full'} run; schema `{self.schema}`."
        )
        out.append("")
        for warning in self.warnings:
            out += [f"> **Warning:** {warning}", ""]
        out.append("| machine | |")
        out.append("|---|---|")
        for key, value in self.machine.items():
            out.append(f"| {key} | {value} |")
        for section in self.sections:
            out += ["", f"## {section.title}", ""]
            head = section.head()
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            for row in section.rows:
                out.append("| " + " | ".join(section.cells(row)) + " |")
            for note in section.notes:
                out += ["", f"- {note}"]
            for plot in section.plots:
                out += ["", f"![{section.title}]({plot})"]
        out.append("")
        return "\n".join(out)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, tuples lists, unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} µs"
    return f"{s * 1e9:.0f} ns"


def fmt_noise(n: float | None) -> str:
    return "—" if n is None else f"{n * 100:.0f}%"


def fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "✔" if v else "✘"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        return f"{v:,.2f}" if abs(v) < 1e6 else f"{v:.3g}"
    return str(v)


_ROW_KEYS: dict[str, Any] = {
    "name": str,
    "time_s": (float, int, type(None)),
    "median_s": (float, int, type(None)),
}
_SECTION_KEYS = {
    "id": str,
    "title": str,
    "columns": list,
    "rows": list,
    "notes": list,
    "series": dict,
    "plots": list,
}


def validate_report(doc: Any) -> list[str]:
    """Problems with a report document (empty list: valid for schema ``manycore-bench/1``)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["report is not an object"]
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("created", "machine", "quick", "sections"):
        if key not in doc:
            problems.append(f"missing key {key!r}")
    if not isinstance(doc.get("machine"), dict):
        problems.append("machine must be an object")
    sections = doc.get("sections")
    if not isinstance(sections, list):
        return [*problems, "sections must be a list"]
    for i, section in enumerate(sections):
        if not isinstance(section, dict):
            problems.append(f"sections[{i}] is not an object")
            continue
        for key, kind in _SECTION_KEYS.items():
            if not isinstance(section.get(key), kind):
                problems.append(f"sections[{i}].{key} must be {getattr(kind, '__name__', kind)}")
        for j, row in enumerate(section.get("rows") or []):
            for key, kinds in _ROW_KEYS.items():
                if not isinstance(row.get(key), kinds):
                    problems.append(f"sections[{i}].rows[{j}].{key} has type {type(row.get(key)).__name__}")
            if not isinstance(row.get("values"), dict):
                problems.append(f"sections[{i}].rows[{j}].values must be an object")
    return problems
