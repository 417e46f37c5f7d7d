"""The one declaration source of the ffi bindings: the installed ``manycore.h``.

ctypes and cffi both need the C declarations of the core.  Instead of two
hand-kept copies (a ``cdef`` string and a list of ``argtypes``), both are
derived here from the header itself, installed with the package as
``manycore/include/manycore.h`` (the same file the C core and the Cython
bindings compile against):

- :func:`cdef_source` is the header with the preprocessor and the ``MC_API``
  macro removed, plus its integer ``#define`` constants: cffi parses it with a
  real C parser (pycparser).
- :func:`declarations` parses the same text with the small grammar the header
  promises ("no macros inside prototypes other than MC_API, no 128-bit
  types"): enums, struct and function-pointer typedefs, prototypes.  The ctypes
  binding builds its types and prototypes from that.

``tests/test_ffi_header.py`` checks the two readings agree: every ``MC_API``
function, every struct layout and every constant, as cffi's C parser
understands them, matches what this module gives ctypes.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass, field

__all__ = [
    "Declarations",
    "Function",
    "Param",
    "Struct",
    "cdef_source",
    "declarations",
    "header_text",
]

_INT_LITERAL = re.compile(r"^(-?(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*$")


@dataclass(frozen=True)
class Param:
    """One parameter or struct field: its C type (normalised) and name."""

    ctype: str  # e.g. "const mc_exec *", "uint64_t", "mc_task_fn"
    name: str
    array: int = 0  # element count for a struct field ``T name[N]``; 0 otherwise


@dataclass(frozen=True)
class Function:
    """A prototype ``restype name(params)`` (also used for function-pointer typedefs)."""

    name: str
    restype: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Param, ...]  # empty for an opaque struct


@dataclass
class Declarations:
    """Everything the header declares, in header order."""

    constants: dict[str, int] = field(default_factory=dict)  # #define and enum values
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # typedef name -> members
    structs: dict[str, Struct] = field(default_factory=dict)  # typedef name -> struct
    callbacks: dict[str, Function] = field(default_factory=dict)  # function-pointer typedefs
    functions: dict[str, Function] = field(default_factory=dict)  # MC_API prototypes
    order: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) of typedefs


@functools.cache
def header_text() -> str:
    """The text of the installed ``manycore/include/manycore.h``."""
    res = importlib.resources.files("manycore").joinpath("include").joinpath("manycore.h")
    return res.read_text(encoding="utf-8")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _defines(text: str) -> dict[str, int]:
    """Integer ``#define NAME <literal>`` macros (not function-like, not MC_API)."""
    out: dict[str, int] = {}
    text = _strip_comments(text)
    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+(\S+)[ \t]*$", text, flags=re.M):
        lit = _INT_LITERAL.match(m.group(2))
        if lit:
            out[m.group(1)] = int(lit.group(1), 0)
    return out


def _declaration_text(text: str) -> str:
    """The header without comments, preprocessor lines, ``extern "C"`` and ``MC_API``."""
    body = _strip_comments(text)
    # The extern "C" { and } lines sit in #ifdef __cplusplus blocks: drop those
    # blocks whole, then every other preprocessor line.
    body = re.sub(r"^\s*#\s*ifdef\s+__cplusplus\b.*?^\s*#\s*endif\b[^\n]*", " ", body, flags=re.S | re.M)
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))
    body = re.sub(r"\bMC_API\b", " ", body)
    return re.sub(r"[ \t]+", " ", body)


@functools.cache
def cdef_source() -> str:
    """The declarations of ``manycore.h`` as a cffi ``cdef`` string."""
    text = header_text()
    consts = "\n".join(f"#define {name} {value}" for name, value in _defines(text).items())
    return _declaration_text(text) + "\n" + consts + "\n"


def _normalise_type(t: str) -> str:
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"\s*\*\s*", " *", t).replace("* *", "**")
    if t == "unsigned":
        t = "unsigned int"
    return t


def _param(decl: str) -> Param:
    decl = " ".join(decl.split())
    m = re.match(r"^(.*?[\s*])([A-Za-z_]\w*)\s*(?:\[(\d+)\])?$", decl)
    if m is None:
        raise ValueError(f"manycore.h: cannot read declaration {decl!r}")
    return Param(_normalise_type(m.group(1)), m.group(2), int(m.group(3) or 0))


def _params(text: str) -> tuple[Param, ...]:
    text = text.strip()
    if text in ("", "void"):
        return ()
    return tuple(_param(p) for p in text.split(","))


def _enum_members(body: str, constants: dict[str, int]) -> tuple[str, ...]:
    names: list[str] = []
    value = -1
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, expr = item.partition("=")
        name = name.strip()
        value = int(expr.strip(), 0) if expr.strip() else value + 1
        constants[name] = value
        names.append(name)
    return tuple(names)


_STATEMENT = re.compile(
    r"""
    (?P<tenum>typedef\s+enum\s+\w*\s*\{(?P<tenum_body>[^}]*)\}\s*(?P<tenum_name>\w+)\s*;)
  | (?P<enum>enum\s+(?P<enum_name>\w+)\s*\{(?P<enum_body>[^}]*)\}\s*;)
  | (?P<tstruct>typedef\s+struct\s+\w*\s*\{(?P<tstruct_body>[^}]*)\}\s*(?P<tstruct_name>\w+)\s*;)
  | (?P<opaque>typedef\s+struct\s+\w+\s+(?P<opaque_name>\w+)\s*;)
  | (?P<fnptr>typedef\s+(?P<fnptr_ret>[\w\s*]+?)\s*\(\s*\*\s*(?P<fnptr_name>\w+)\s*\)\s*\((?P<fnptr_args>[^)]*)\)\s*;)
  | (?P<func>(?P<func_ret>[\w\s*]+?[\s*])(?P<func_name>\w+)\s*\((?P<func_args>[^)]*)\)\s*;)
    """,
    re.X,
)


@functools.cache
def declarations() -> Declarations:
    """Parse the installed header into :class:`Declarations` (cached)."""
    text = header_text()
    decls = Declarations(constants=_defines(text))
    body = _declaration_text(text)
    pos = 0
    for m in _STATEMENT.finditer(body):
        gap = body[pos : m.start()].strip()
        if gap:
            raise ValueError(f"manycore.h: cannot read {gap[:80]!r}")
        pos = m.end()
        if m.group("tenum"):
            name = m.group("tenum_name")
            decls.enums[name] = _enum_members(m.group("tenum_body"), decls.constants)
            decls.order.append(("enum", name))
        elif m.group("enum"):
            name = m.group("enum_name")
            decls.enums[name] = _enum_members(m.group("enum_body"), decls.constants)
        elif m.group("tstruct"):
            name = m.group("tstruct_name")
            fields = tuple(_param(f) for f in m.group("tstruct_body").split(";") if f.strip())
            decls.structs[name] = Struct(name, fields)
            decls.order.append(("struct", name))
        elif m.group("opaque"):
            name = m.group("opaque_name")
            decls.structs[name] = Struct(name, ())
            decls.order.append(("struct", name))
        elif m.group("fnptr"):
            name = m.group("fnptr_name")
            fn = Function(name, _normalise_type(m.group("fnptr_ret")), _params(m.group("fnptr_args")))
            decls.callbacks[name] = fn
            decls.order.append(("callback", name))
        else:
            name = m.group("func_name")
            decls.functions[name] = Function(
                name, _normalise_type(m.group("func_ret")), _params(m.group("func_args"))
            )
    tail = body[pos:].strip()
    if tail:
        raise ValueError(f"manycore.h: cannot read {tail[:80]!r}")
    return decls
