#!/usr/bin/env bash
# sanitize.sh MODE [pytest args...] -- build the C core, the extension and the Cython modules
# with a sanitizer into a separate virtual environment and run the native test subset under it.
#
#   MODE     what                                   how
#   asan     AddressSanitizer + UBSan (gcc)         libasan LD_PRELOADed (python is not
#                                                   instrumented), detect_leaks=0
#   ubsan    UndefinedBehaviorSanitizer only (gcc)  no preload needed
#   lsan     leak check (ASan runtime, leaks on)    PYTHONMALLOC=malloc so every Python
#                                                   allocation is visible; suppressions for
#                                                   CPython's own one-time allocations
#   tsan     ThreadSanitizer (clang + libomp)       libtsan preloaded into the real
#                                                   interpreter binary; gcc's libgomp gives
#                                                   false positives, hence clang.  Known:
#                                                   clang 14's runtime crashes at interpreter
#                                                   start on kernel 6.18 (even `print()`),
#                                                   ASLR off or not; use a newer clang there
#   valgrind memcheck, no rebuild needed            PYTHONMALLOC=malloc, slow: a small subset
#
# Environment: SANITIZE_DIR (default /tmp/manycore-sanitize) holds the venvs; TESTS overrides
# the test files.  Exit status is the test run's.
set -euo pipefail

mode="${1:-}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
base="${SANITIZE_DIR:-/tmp/manycore-sanitize}"
supp="$root/scripts/sanitizers"
python="${PYTHON:-python3}"
default_tests=(tests/test_native_kernels.py tests/test_native_errors.py tests/test_native_pool.py
               tests/test_native_threads.py)
for t in tests/test_ffi*.py tests/test_cython*.py; do
    [[ -e "$t" ]] && default_tests+=("$t")
done
read -r -a tests <<< "${TESTS:-${default_tests[*]}}"

build_venv() {  # build_venv NAME CC SANITIZE_SPEC [extra C flags]
    local name="$1" cc="$2" spec="$3" cflags="${4:-}" venv="$base/$1"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    echo "== building manycore with -fsanitize=$spec ($cc) into $venv" >&2
    CC="$cc" "$venv/bin/pip" install -q \
        -Csetup-args=-Db_sanitize="$spec" \
        -Csetup-args=-Db_lundef=false \
        -Csetup-args=-Dbuildtype=debugoptimized \
        ${cflags:+-Csetup-args=-Dc_args=$cflags} \
        ".[test]"
    echo "$venv"
}

run_tests() {  # run_tests VENV [env assignments...] -- runs pytest on the subset
    local venv="$1"
    shift
    # run from a directory where `import manycore` cannot pick up the source tree
    (cd "$base" && env "$@" "$venv/bin/python" -m pytest -p no:cacheprovider -q \
        "${tests[@]/#/$root/}" --rootdir "$root" -c "$root/pyproject.toml" "${EXTRA_ARGS[@]}")
}

EXTRA_ARGS=("$@")
mkdir -p "$base"
case "$mode" in
    asan)
        venv="$(build_venv asan gcc address,undefined)"
        run_tests "$venv" \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
            ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1:detect_stack_use_after_return=0" \
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
        ;;
    ubsan)
        venv="$(build_venv ubsan gcc undefined)"
        run_tests "$venv" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
        ;;
    lsan)
        venv="$(build_venv lsan gcc address)"
        run_tests "$venv" \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so)" PYTHONMALLOC=malloc \
            ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
            LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
        ;;
    tsan)
        if ! command -v clang >/dev/null 2>&1; then
            apt-get install -y -qq clang libomp-dev >&2
        fi
        # target_clones resolvers (ifunc) run before the TSan runtime is up and
        # crash it: build the kernels without them for this mode.
        venv="$(build_venv tsan clang thread -DMC_NO_TARGET_CLONES)"
        # the real interpreter binary, not a venv shim script: TSan must be loaded first
        real_python="$("$venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
        (cd "$base" && env LD_PRELOAD="$(clang -print-file-name=libclang_rt.tsan-x86_64.so)" \
            TSAN_OPTIONS="suppressions=$supp/tsan.supp:halt_on_error=1:second_deadlock_stack=1" \
            PYTHONPATH="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')" \
            "$real_python" -m pytest -p no:cacheprovider -q "${tests[@]/#/$root/}" --rootdir "$root" \
            -c "$root/pyproject.toml" "${EXTRA_ARGS[@]}")
        ;;
    valgrind)
        command -v valgrind >/dev/null 2>&1 || apt-get install -y -qq valgrind >&2
        venv="$base/valgrind"
        if [[ ! -x "$venv/bin/python" ]]; then
            "$python" -m venv "$venv"
            "$venv/bin/pip" install -q ".[test]"
        fi
        (cd "$base" && PYTHONMALLOC=malloc valgrind --error-exitcode=99 --errors-for-leak-kinds=definite \
            --leak-check=full --suppressions="$supp/valgrind.supp" -q \
            "$venv/bin/python" -m pytest -p no:cacheprovider -q -x \
            "$root/tests/test_native_pool.py" "$root/tests/test_native_errors.py" \
            --rootdir "$root" -c "$root/pyproject.toml" -k "not fork and not ctrl_c" "${EXTRA_ARGS[@]}")
        ;;
    *)
        echo "usage: $0 asan|ubsan|lsan|tsan|valgrind [pytest args...]" >&2
        exit 2
        ;;
esac
