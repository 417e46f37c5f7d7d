"""Print the reports of valgrind log files, except CPython 3.11's undefined-digit artefact.

Usage: python3 valgrind_filter.py LOG...   (exit status 1 if a report is left, else 0)

CPython 3.11's _PyLong_New(0) leaves ob_digit[0] unwritten, and maybe_small_long reads it
(Py_SIZE * ob_digit[0], i.e. 0 * garbage) for every int that normalises to 0: int.from_bytes
of zero bytes, which importlib does for each .pyc header, `x & y == 0`, int("0").  Memcheck
marks the result, and so the pointer to the small int 0 it selects, as undefined; every later
use of that pointer anywhere in the interpreter or in a stdlib extension is then reported, at
dozens of different sites.  Run with --track-origins=yes, each of those reports names the
origin "created by a heap allocation ... by _PyLong_New": exactly those are dropped here.
An uninitialised value that comes from manycore has its origin in manycore (a stack variable
of the function, or one of its mallocs) and is kept.  CPython 3.12 initialises the digit.
"""

from __future__ import annotations

import re
import sys

PREFIX = re.compile(r"^==\d+== ?")
ORIGIN = "Uninitialised value was created by a heap allocation"
ARTEFACT = re.compile(r"by 0x[0-9A-Fa-f]+: _PyLong_New \(longobject\.c:\d+\)")


def reports(path: str) -> list[list[str]]:
    """The blank-line separated blocks of one log (valgrind -q prints only reports)."""
    out: list[list[str]] = []
    block: list[str] = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if PREFIX.sub("", line).strip():
                block.append(line)
            elif block:
                out.append(block)
                block = []
    if block:
        out.append(block)
    return out


def is_artefact(block: list[str]) -> bool:
    text = "\n".join(block)
    if ORIGIN not in text:
        return False
    origin = text.split(ORIGIN, 1)[1].splitlines()[1:4]  # malloc, then its caller
    return any(ARTEFACT.search(line) for line in origin)


def main(paths: list[str]) -> int:
    kept = dropped = 0
    for path in paths:
        for block in reports(path):
            if is_artefact(block):
                dropped += 1
                continue
            kept += 1
            print(f"---- {path}")
            print("\n".join(block))
    print(
        f"valgrind: {kept} report(s); {dropped} dropped as CPython 3.11's undefined-digit artefact",
        file=sys.stderr,
    )
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
