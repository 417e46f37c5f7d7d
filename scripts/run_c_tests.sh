#!/usr/bin/env bash
# Build and run the standalone C tests of the core (tests/c/*.c), by default
# under ASan + UBSan.  SANITIZE="" runs them without sanitizers; SANITIZE=thread
# under TSan (then also EXTRA_CFLAGS=-DMC_NO_TARGET_CLONES: see scripts/sanitize.sh
# tsan-c).  EXTRA_CFLAGS is added to the compiler flags.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CC="${CC:-gcc}"
SANITIZE="${SANITIZE-address,undefined}"
flags=(-std=c11 -O2 -g -Wall -Wextra -Werror -ffp-contract=off -pthread -Icsrc)
if [[ -n "$SANITIZE" ]]; then
    flags+=("-fsanitize=$SANITIZE" -fno-omit-frame-pointer -fno-sanitize-recover=all)
fi
read -r -a extra <<< "${EXTRA_CFLAGS:-}"
flags+=("${extra[@]}")
core=(csrc/args.c csrc/pool.c csrc/threads.c csrc/platform_posix.c csrc/kernels_*.c)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for t in tests/c/test_*.c; do
    name="$(basename "$t" .c)"
    echo "-- $name (${SANITIZE:-no sanitizer})"
    "$CC" "${flags[@]}" "${core[@]}" "$t" -o "$out/$name" -lm
    "$out/$name"
done
