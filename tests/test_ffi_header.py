"""One declaration source: ctypes prototypes and the cffi cdef both come from the installed manycore.h.

cffi parses the header text with a real C parser (pycparser); the ctypes
binding uses manycore.ffi._header's reading of the same text.  These tests
check that the two readings agree on every function, struct and constant,
and that nothing declared MC_API was skipped.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from manycore.ffi import _header, ctypes_core
from optional import import_or_skip

# cffi's C parser is the reference reading here: without cffi, nothing to compare
cffi_core = import_or_skip("manycore.ffi.cffi_core", "cffi", "the header comparison with cffi")

DECLS = _header.declarations()
FFI = cffi_core.ffi


def test_header_is_the_installed_core_header() -> None:
    text = _header.header_text()
    assert "#ifndef MANYCORE_H" in text
    repo_header = Path(__file__).resolve().parents[1] / "csrc" / "manycore.h"
    if repo_header.is_file():  # a source checkout: the installed header is that file
        assert text == repo_header.read_text(encoding="utf-8")


def test_every_mc_api_function_is_declared() -> None:
    api = re.findall(r"^MC_API\b[^;(]*?\b(mc_\w+)\s*\(", _header.header_text(), flags=re.M)
    assert len(api) >= 20
    assert sorted(api) == sorted(DECLS.functions)


def _kind_of_ctypes(t: object) -> tuple[str, int]:
    if t is None:
        return ("void", 0)
    if t in (ctypes.c_void_p, ctypes.c_char_p) or (hasattr(t, "_type_") and isinstance(t._type_, type)):
        return ("pointer", ctypes.sizeof(ctypes.c_void_p))
    if hasattr(t, "_argtypes_"):
        return ("function", ctypes.sizeof(ctypes.c_void_p))
    code = getattr(t, "_type_", "")
    kind = "float" if code in "fd" else ("unsigned" if code in "BHILQ" or code.isupper() else "signed")
    return (kind, ctypes.sizeof(t))  # type: ignore[arg-type]


def _kind_of_cffi(t: object) -> tuple[str, int]:
    kind = t.kind  # type: ignore[attr-defined]
    if kind == "void":
        return ("void", 0)
    if kind in ("pointer", "array"):
        return ("pointer", FFI.sizeof("void *"))
    if kind == "function":
        return ("function", FFI.sizeof("void *"))
    if kind == "enum":
        return ("signed", FFI.sizeof("int"))
    if kind == "primitive":
        cname = t.cname  # type: ignore[attr-defined]
        if cname in ("float", "double"):
            return ("float", FFI.sizeof(cname))
        unsigned = cname.startswith(("unsigned", "uint", "size_t", "uintptr_t")) or cname == "_Bool"
        return ("unsigned" if unsigned else "signed", FFI.sizeof(cname))
    raise AssertionError(f"unexpected cffi kind {kind}")


@pytest.mark.parametrize("name", sorted(DECLS.functions))
def test_ctypes_prototype_matches_cffis_reading(name: str) -> None:
    cfn = getattr(ctypes_core.lib, name)
    ctype = FFI.typeof(getattr(cffi_core.lib, name))
    assert len(cfn.argtypes) == len(ctype.args)
    for a, b in zip(cfn.argtypes, ctype.args, strict=True):
        assert _kind_of_ctypes(a) == _kind_of_cffi(b), (name, a, b.cname)
    assert _kind_of_ctypes(cfn.restype) == _kind_of_cffi(ctype.result), name


@pytest.mark.parametrize("name", [n for n, s in DECLS.structs.items() if s.fields])
def test_struct_layouts_agree(name: str) -> None:
    cstruct = ctypes_core.types[name]
    assert ctypes.sizeof(cstruct) == FFI.sizeof(name)
    assert ctypes.alignment(cstruct) == FFI.alignof(name)
    for field_name, _ in cstruct._fields_:
        assert getattr(cstruct, field_name).offset == FFI.offsetof(name, field_name), field_name


@pytest.mark.parametrize("name", sorted(DECLS.callbacks))
def test_callback_types_agree(name: str) -> None:
    ctype = ctypes_core.types[name]
    ftype = FFI.typeof(name)
    assert [_kind_of_ctypes(a) for a in ctype._argtypes_] == [_kind_of_cffi(a) for a in ftype.args]
    assert _kind_of_ctypes(ctype._restype_) == _kind_of_cffi(ftype.result)


def test_constants_agree() -> None:
    assert DECLS.constants["MC_SUM_OF_SQUARES_MAX_N"] == 2**42
    for name, value in DECLS.constants.items():
        assert getattr(cffi_core.lib, name) == value, name
        assert ctypes_core.constants[name] == value


def test_cdef_is_the_header_without_preprocessor() -> None:
    src = _header.cdef_source()
    for gone in ("MC_API", "#ifndef", 'extern "C"'):
        assert gone not in src
    for name in DECLS.functions:
        assert re.search(rf"\b{name}\s*\(", src)


def test_parser_rejects_what_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A declaration the small grammar does not cover fails loudly instead of being skipped."""
    text = _header.header_text().replace(
        "MC_API unsigned mc_cpu_count(void);", "MC_API unsigned mc_cpu_count(void) __attribute__((pure)) x;"
    )
    monkeypatch.setattr(_header, "header_text", lambda: text)
    _header.declarations.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"manycore\.h: cannot read"):
            _header.declarations()
    finally:
        monkeypatch.undo()
        _header.declarations.cache_clear()
        assert _header.declarations().functions.keys() == DECLS.functions.keys()
