"""The package's layers, read from its imports with ``ast`` (docs/architecture.md draws them).

Every import counts: module level, inside functions, under ``TYPE_CHECKING``.
A module may import its own layer and the layers below it, never one above;
and no set of modules imports itself round (no import circle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "manycore"

#: Lowest first.  A module belongs to the first layer with a prefix that matches it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "manycore._build",
            "manycore._cpus",
            "manycore._errors",
            "manycore._extras",
            "manycore._validate",
            "manycore._threadprobe",
            "manycore.errors",
        ),
    ),
    (
        "bindings",
        ("manycore._native", "manycore._kernel_args", "manycore.native", "manycore.ffi", "manycore._cy"),
    ),
    ("workers", ("manycore._workers",)),
    ("executors", ("manycore.executors", "manycore.patterns")),
    ("map", ("manycore._map", "manycore.pmap")),
    ("face", ("manycore",)),  # the package itself: what `import manycore` gives
    ("services", ("manycore.fetch", "manycore.advise", "manycore._advise_command")),
    ("bench", ("manycore.bench",)),
    ("examples", ("manycore.examples",)),
    ("cli", ("manycore.cli", "manycore.__main__")),
]


def layer_of(module: str) -> int:
    best = (-1, -1)  # (prefix length, layer)
    for rank, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), rank)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of the source tree (extensions included)."""
    base = SRC.joinpath(*name.split("."))
    return (
        base.is_dir()
        or base.with_suffix(".py").exists()
        or base.with_suffix(".pyx").exists()
        or base.with_suffix(".c").exists()
    )


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every manycore module ``path`` imports, wherever the import sits."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "manycore":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "manycore":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if is_module(sub) else target


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        edges.setdefault(me, set())
        for _line, target in imports(path):
            if target != me:
                edges[me].add(target)
    return edges


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_import_goes_up_a_layer(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    wrong = [
        f"line {line}: {target} ({LAYERS[layer_of(target)][0]})"
        for line, target in imports(path)
        if layer_of(target) > mine
    ]
    assert not wrong, f"{me} ({LAYERS[mine][0]}) imports a higher layer: " + "; ".join(wrong)


def test_no_import_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_checker_sees_what_it_must() -> None:
    """The scan itself: function-level imports count, extension modules are modules."""
    edges = graph()
    assert "manycore._native" in edges["manycore.native"]  # `from . import _native`, an extension
    assert "manycore._workers.engine" in edges["manycore._map.run"]  # imported inside a function
    assert layer_of("manycore.executors.process") > layer_of("manycore._workers.engine")
    assert layer_of("manycore.pmap") > layer_of("manycore.executors")


def test_the_map_layer_imports_no_binding_of_the_kernels() -> None:
    # pmap's serial iterator is its own extension (manycore._map._serial): the map layer
    # runs without the native runtime
    bindings = LAYERS[[name for name, _ in LAYERS].index("bindings")][1]
    for path in [PACKAGE / "pmap.py", *sorted((PACKAGE / "_map").glob("*.py"))]:
        used = [t for _, t in imports(path) if any(t == b or t.startswith(b + ".") for b in bindings)]
        assert not used, f"{module_name(path)} imports {used}"


def test_pmap_runs_serially_without_the_kernels_extension() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['manycore._native'] = None\n"
        "import manycore\n"
        "it = manycore.pmap(abs, range(-5, 0), backend='serial')\n"
        "items = list(it)\n"
        "print(type(it._state.serial_map).__module__, items)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["manycore._map._serial", "[5,", "4,", "3,", "2,", "1]"], out.stdout
