"""docs/semantics.md names a test for every statement: each named test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "semantics.md"


def short_names(text: str) -> dict[str, str]:
    """The page's legend: ``**C** = `test_executors_contract.py```."""
    return dict(re.findall(r"\*\*([A-Z]{1,2})\*\*\s+=\s+`(test_\w+\.py)`", text))


def test_every_test_named_in_the_semantics_page_exists() -> None:
    text = PAGE.read_text()
    files = short_names(text)
    assert {"C", "F", "P", "X"} <= set(files)
    references = re.findall(r"\b([A-Z]{1,2})::(test_\w+)", text)
    assert len(references) > 100
    missing = []
    for prefix, name in references:
        assert prefix in files, f"{prefix}:: is not in the page's legend"
        source = (ROOT / "tests" / files[prefix]).read_text()
        # a test function, or the scenario a subprocess-run fault test executes
        # (indented: tests defined only where their feature exists, e.g. subinterpreters)
        if not re.search(rf"^\s*def ({name}|scenario_{name.removeprefix('test_')})\(", source, re.M):
            missing.append(f"{prefix}::{name}")
    assert not missing, missing
