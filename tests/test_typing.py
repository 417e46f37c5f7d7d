"""What a type checker sees of the public API: pmap's results and the executors' futures are typed.

mypy checks a small program that uses the API as a user would and reveals the
types; each must be the precise one (``PMapResult[int]``, not ``PMapResult[Any]``).
"""

from __future__ import annotations

import os
import re
import textwrap

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

PROGRAM = textwrap.dedent(
    """
    import asyncio
    from manycore import ThreadExecutor, ProcessExecutor, get_executor, pmap, pstarmap

    def square(x: int) -> int:
        return x * x

    def label(x: int, y: str) -> str:
        return f"{y}{x}"

    async def fetch(x: int) -> bytes:
        await asyncio.sleep(0)
        return b""

    def collect(errors: str) -> None:
        reveal_type(pmap(square, range(3), errors=errors))

    reveal_type(pmap(square, [1, 2]))
    reveal_type(list(pmap(square, [1, 2])))
    reveal_type(pmap(square, [1, 2]).results())
    reveal_type(pmap(fetch, [1], backend="asyncio"))
    reveal_type(pmap(square, [1], errors="collect"))
    reveal_type(pstarmap(label, [(1, "a")]))
    with ThreadExecutor(2) as ex:
        reveal_type(ex.submit(square, 3))
        reveal_type(ex.pmap(square, [1]))
    with ProcessExecutor(2) as px:
        reveal_type(px.submit(label, 1, "a").result())
    pmap(square, ["not an int"])
    """
)

EXPECTED = [
    "manycore.pmap.PMapResult[int | manycore.errors.TaskError]",
    "manycore.pmap.PMapResult[int]",
    "list[int]",
    "list[int]",
    "manycore.pmap.PMapResult[bytes]",
    "manycore.pmap.PMapResult[int | manycore.errors.TaskError]",
    "manycore.pmap.PMapResult[str]",
    "concurrent.futures._base.Future[int]",
]


def test_mypy_sees_precise_types(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "use_manycore.py")
    with open(path, "w") as f:
        f.write(PROGRAM)
    import manycore

    where = os.path.dirname(os.path.dirname(manycore.__file__))
    # an installed package is found in site-packages; an editable one (its import hook) is not: its source is
    env = {"MYPYPATH": where} if os.path.basename(where) not in ("site-packages", "dist-packages") else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        out, err, _status = api.run(
            [
                "--no-incremental",
                "--cache-dir",
                os.devnull,
                "--no-error-summary",
                "--show-column-numbers",
                path,
            ]
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # older mypy spells builtins "builtins.int", newer "int"
    revealed = [t.replace("builtins.", "") for t in re.findall(r'Revealed type is "([^"]+)"', out)]
    assert revealed[: len(EXPECTED)] == EXPECTED, out + err
    rest = revealed[len(EXPECTED) :]
    assert len(rest) == 2, out + err
    assert "int" in rest[0], out  # ex.pmap: the executor's map keeps the element type
    assert rest[1] == "str", out
    # a wrong item type is an error at the call
    assert re.search(r'use_manycore.py:\d+:\d+: error: .*"pmap"', out), out
