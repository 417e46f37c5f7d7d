#!/usr/bin/env bash
# The sdist installs on its own and works with the required dependencies only.
#
#   bash scripts/check_sdist.sh [WORK_DIR]
#
# Builds the sdist (python -m build), installs it without any extra into a
# fresh virtual environment (the C core, the extension and the Cython kernels
# compile from it), then checks what must work without extras (import
# manycore, pmap on every local backend, the executors, manycore.native) and
# that what needs an extra names it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"
mkdir -p "$work"
"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q --upgrade pip build
"$work/build-venv/bin/python" -m build --sdist --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 ||
    { tail -30 "$work/build.log"; exit 1; }
sdist="$(ls "$work"/dist/manycore-*.tar.gz)"
echo "sdist: $(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB)"
"$python" -m venv "$work/sdist-venv"
"$work/sdist-venv/bin/python" -m pip install -q --upgrade pip
"$work/sdist-venv/bin/python" -m pip install -q "$sdist"
cd "$work"  # not the source tree: the installed package is what runs
"$work/sdist-venv/bin/python" - <<'PY'
import importlib.util, subprocess, sys

for extra_only in ("numpy", "matplotlib", "aiohttp", "cffi", "dask"):
    assert importlib.util.find_spec(extra_only) is None, f"{extra_only} was installed without an extra"

import manycore
from manycore import get_executor, native, pmap

def square(x):
    return x * x

for backend in ("serial", "threads", "processes", "asyncio", "native"):
    if backend == "asyncio":
        async def asquare(x):
            return x * x
        got = list(pmap(asquare, range(20), backend="asyncio"))
    else:
        got = list(pmap(square, range(20), backend=backend))
    assert got == [x * x for x in range(20)], (backend, got)
with get_executor("processes", max_workers=2) as ex:
    assert ex.submit(pow, 2, 10).result() == 1024
assert native.sum_of_squares(10**6) == sum(k * k for k in range(10**6))
assert native.sum(bytes(range(10))) == 45
out = bytearray(8 * 4)
assert native.square(memoryview(bytes(range(4))).cast("B"), out=memoryview(out).cast("q")) is not None

try:
    native.square(bytes(range(4)))  # a default output array needs NumPy
except ImportError as exc:
    assert "pip install 'manycore[numpy]'" in str(exc), exc
else:
    raise AssertionError("a default output array without NumPy did not say what to install")
try:
    import manycore.fetch
except ImportError as exc:
    assert "pip install 'manycore[fetch]'" in str(exc), exc
else:
    raise AssertionError("manycore.fetch imported without aiohttp")
bench = subprocess.run([sys.executable, "-m", "manycore.cli", "bench", "--quick"], capture_output=True, text=True)
assert bench.returncode != 0 and "pip install 'manycore[bench]'" in bench.stderr, bench.stderr
print("sdist without extras: import, pmap on 5 backends, executors and native work; extras are named")
PY
