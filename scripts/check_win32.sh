#!/usr/bin/env bash
# check_win32.sh -- prove that the Win32 build of csrc/ compiles and links.
#
# Compiles every csrc/*.c except platform_posix.c with the mingw-w64 cross
# compiler (warnings are errors), then links the objects into a DLL. The
# link fails if any symbol is left unresolved.
#
# Exit status: 0 on success, 1 on a compile or link error, 2 if the cross
# compiler is missing and cannot be installed.
set -euo pipefail

CC="${MINGW_CC:-x86_64-w64-mingw32-gcc}"
CFLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -Icsrc)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v "$CC" >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "check_win32: $CC not found; installing gcc-mingw-w64-x86-64 ..." >&2
        apt-get install -y -qq gcc-mingw-w64-x86-64 >&2 \
            || { apt-get update -qq >&2 && apt-get install -y -qq gcc-mingw-w64-x86-64 >&2; } \
            || true
    fi
    if ! command -v "$CC" >/dev/null 2>&1; then
        echo "check_win32: cross compiler '$CC' is not available." >&2
        echo "  Install it with: apt-get install gcc-mingw-w64-x86-64 (Debian/Ubuntu)," >&2
        echo "  or set MINGW_CC to another mingw-w64 gcc." >&2
        exit 2
    fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
srcs=()
for f in csrc/*.c; do
    [[ "$(basename "$f")" == platform_posix.c ]] && continue
    srcs+=("$f")
done
if [[ ${#srcs[@]} -eq 0 ]]; then
    echo "check_win32: no csrc/*.c sources found" >&2
    exit 1
fi

objs=()
fail=0
for f in "${srcs[@]}"; do
    o="$tmp/$(basename "${f%.c}").o"
    echo "CC  $f"
    if ! "$CC" "${CFLAGS[@]}" -c "$f" -o "$o"; then
        echo "check_win32: FAILED to compile $f" >&2
        fail=1
        continue
    fi
    objs+=("$o")
done
if [[ $fail -ne 0 ]]; then
    echo "check_win32: compile errors; not linking" >&2
    exit 1
fi

echo "LD  manycore.dll"
# -Wl,--no-undefined is the default for PE DLLs; pass it anyway to make the
# intent explicit.
if ! "$CC" -shared -Wl,--no-undefined -o "$tmp/manycore.dll" "${objs[@]}"; then
    echo "check_win32: FAILED to link manycore.dll (unresolved symbols?)" >&2
    exit 1
fi

echo "check_win32: OK (${#objs[@]} files compiled, manycore.dll linked)"
