"""manycore.bench.html: the report as one self-contained, well-formed, escaped HTML page."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from manycore.bench.html import to_html
from manycore.bench.report import Report, Row, Section

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

WARNING = "load average 7.9 on 4 CPUs: timings are unreliable"
NASTY_NOTE = "a < b && c > d; <script>alert('x')</script> is text"


# ---------------------------------------------------------------- a small strict DOM


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None) -> list[Node]:
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                if tag is None or child.tag == tag:
                    found.append(child)
                found += child.iter(tag)
        return found

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class StrictParser(HTMLParser):
    """Builds a tree; records an error for every end tag that does not close the open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.current = self.root
        self.errors: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.errors.append(f"duplicate attribute in <{tag}>: {names}")
        node = Node(tag, dict(attrs), parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
        elif self.current.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.current.tag}>")
        elif self.current.parent is not None:
            self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    return parser


# ---------------------------------------------------------------- the synthetic report


def tiny_png(path: Path) -> None:
    """A real PNG: matplotlib's Agg when it is installed, else a hand-made 1x1 image."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
        pixels = zlib.compress(b"\x00\x20\x60\xc0")  # filter byte, then one RGB pixel
        path.write_bytes(PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
        return
    fig, ax = plt.subplots(figsize=(1.5, 1))
    ax.plot([1, 2, 3], [3, 1, 2])
    fig.savefig(path, dpi=40)
    plt.close(fig)


def make_report(tmp_path: Path, *, warnings: list[str] | None = None) -> Report:
    plot = tmp_path / "memory.png"
    tiny_png(plot)
    memory = Section("memory", "Memory-bound: sum & dot vs copy", columns=["GB_per_s", "exact"])
    memory.rows.append(Row("numpy.sum", 0.0123, 0.0130, 0.057, {"GB_per_s": 12.5, "exact": True}))
    memory.rows.append(Row("native (not built)", None, None, None, {"GB_per_s": None, "exact": None}))
    busy = Row("threads x4", 2.5e-6, 3.1e-6, 0.24, {"GB_per_s": 1234567.0, "exact": False})
    setattr(busy, "noisy", True)  # noqa: B010  # Row.noisy may not exist yet
    memory.rows.append(busy)
    memory.notes.append(NASTY_NOTE)
    memory.plots.append(str(plot))
    memory.seconds = 1.25
    verdict = Section("verdict", "On this machine", columns=["use"])
    verdict.rows.append(Row("CPU-bound, large tasks", values={"use": "processes"}))
    verdict.notes.append("threads won't help while the GIL is on")
    report = Report(machine={"cpu_model": "Test CPU <fake>", "cpus_available": 4}, quick=True)
    report.sections += [memory, verdict]
    if warnings is not None:
        setattr(report, "warnings", warnings)  # noqa: B010  # Report.warnings may not exist yet
    return report


@pytest.fixture
def report(tmp_path: Path) -> Report:
    return make_report(tmp_path, warnings=[WARNING])


@pytest.fixture
def page(report: Report) -> str:
    return to_html(report)


@pytest.fixture
def dom(page: str) -> Node:
    parser = parse(page)
    assert parser.errors == []
    return parser.root


def row_of(dom: Node, name: str) -> Node:
    rows = [tr for tr in dom.iter("tr") if tr.iter("td") and tr.iter("td")[0].text() == name]
    assert len(rows) == 1, name
    return rows[0]


# ---------------------------------------------------------------- the tests


def test_a_well_formed_html5_document(page: str) -> None:
    parser = parse(page)
    assert parser.errors == []
    assert parser.doctype is not None
    assert parser.doctype.lower() == "doctype html"
    assert parser.current is parser.root, "elements left open at the end"
    (html,) = parser.root.iter("html")
    assert [c.tag for c in html.children if isinstance(c, Node)] == ["head", "body"]
    assert any(m.attrs.get("charset") == "utf-8" for m in parser.root.iter("meta"))
    assert parser.root.iter("title")[0].text().startswith("manycore bench report")


def test_the_strict_parser_does_catch_broken_markup() -> None:
    assert parse("<div><p>x</div>").errors
    assert parse("<table><tr><td>x</tr></table>").errors


def test_nothing_outside_the_page_is_referenced(dom: Node) -> None:
    assert dom.iter("link") == []
    assert dom.iter("script") == []
    ids = {n.attrs["id"] for n in dom.iter() if n.attrs.get("id")}
    refs = [(n.tag, k, v) for n in dom.iter() for k, v in n.attrs.items() if k in ("src", "href", "srcset")]
    assert refs, "expected at least the embedded plot"
    for tag, key, value in refs:
        assert value is not None
        if value.startswith("#"):
            assert value[1:] in ids, f"<{tag} {key}={value!r}> points at no element"
        else:
            assert value.startswith("data:"), f"<{tag} {key}={value!r}> leaves the page"
    assert "url(" not in dom.iter("style")[0].text(), "the style sheet loads something"
    assert "@import" not in dom.iter("style")[0].text()


def test_every_plot_is_embedded_as_its_png_bytes(report: Report, dom: Node) -> None:
    images = dom.iter("img")
    plots = [(s.title, p) for s in report.sections for p in s.plots]
    assert len(images) == len(plots) == 1
    for img, (title, path) in zip(images, plots, strict=True):
        src = img.attrs["src"]
        assert src is not None
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        assert data == Path(path).read_bytes()
        assert img.attrs["alt"] == title


def test_text_is_escaped(page: str, dom: Node) -> None:
    assert "<script>alert" not in page
    assert "Test CPU <fake>" not in page
    notes = [li.text() for ul in dom.iter("ul") if "notes" in ul.classes() for li in ul.iter("li")]
    assert NASTY_NOTE in notes
    assert "Test CPU <fake>" in dom.text()
    assert "Memory-bound: sum & dot vs copy" in [h.text().split(" (")[0] for h in dom.iter("h2")]


def test_warnings_come_first_and_stand_out(page: str, dom: Node) -> None:
    assert WARNING in page
    assert page.index(WARNING) < page.index("<h2")
    assert page.index(WARNING) < page.index('class="machine"')
    boxes = [n for n in dom.iter() if "warnings" in n.classes()]
    assert len(boxes) == 1
    assert WARNING in boxes[0].text()


def test_no_warning_box_without_warnings(tmp_path: Path) -> None:
    no_warnings: list[list[str] | None] = [None, []]
    for warnings in no_warnings:
        page = to_html(make_report(tmp_path, warnings=warnings))
        assert 'class="warnings"' not in page
        assert parse(page).errors == []


def test_the_noisy_row_is_marked(dom: Node) -> None:
    busy = row_of(dom, "threads x4")
    assert "noisy" in busy.classes()
    noise_cell = busy.iter("td")[3]
    assert noise_cell.text().startswith("24%")
    assert "⚠" in noise_cell.text()
    for quiet in ("numpy.sum", "native (not built)"):
        row = row_of(dom, quiet)
        assert "noisy" not in row.classes()
        assert "⚠" not in row.text()


def test_the_table_mirrors_the_markdown(report: Report, dom: Node) -> None:
    memory = next(s for s in dom.iter("section") if s.attrs.get("id") == "section-memory")
    heads = [th.text() for th in memory.iter("th")]
    assert heads == ["mechanism", "time", "median", "noise", "GB per s", "exact"]
    assert [td.text() for td in row_of(dom, "numpy.sum").iter("td")] == [
        "numpy.sum",
        "12.300 ms",
        "13.000 ms",
        "6%",
        "12.50",
        "✔",
    ]
    assert [td.text() for td in row_of(dom, "native (not built)").iter("td")] == [
        "native (not built)",
        "—",
        "—",
        "—",
        "",
        "",
    ]
    assert ["num" in th.classes() for th in memory.iter("th")] == [False, True, True, True, True, False]
    numeric = row_of(dom, "numpy.sum").iter("td")
    assert "num" not in numeric[0].classes()
    assert all("num" in td.classes() for td in numeric[1:5])
    assert [h.text().split(" (")[0] for h in dom.iter("h2")] == [s.title for s in report.sections]


def test_the_verdict_section_renders_like_the_others(dom: Node) -> None:
    (verdict,) = [s for s in dom.iter("section") if s.attrs.get("id") == "section-verdict"]
    assert verdict.iter("h2")[0].text() == "On this machine"
    heads = verdict.iter("th")
    assert [th.text() for th in heads] == ["mechanism", "use"], "no timing columns when nothing was timed"
    assert "num" not in heads[1].classes(), "a text column is not right-aligned"
    assert [td.text() for td in row_of(verdict, "CPU-bound, large tasks").iter("td")][-1] == "processes"
    assert "threads won't help while the GIL is on" in verdict.text()


def test_a_missing_plot_file_is_a_visible_note(report: Report, tmp_path: Path) -> None:
    gone = tmp_path / "never-written.png"
    not_png = tmp_path / "scaling.png"
    not_png.write_text("not an image")
    report.sections[1].plots += [str(gone), str(not_png)]
    page = to_html(report)
    parser = parse(page)
    assert parser.errors == []
    notes = [p.text() for p in parser.root.iter("p") if "missing" in p.classes()]
    assert len(notes) == 2
    assert str(gone) in notes[0]
    assert str(not_png) in notes[1]
    assert len(parser.root.iter("img")) == 1, "only the real plot is embedded"
