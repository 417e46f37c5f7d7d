#!/usr/bin/env bash
# sanitize.sh MODE [pytest args...] -- build the C core, the extension and the Cython modules
# with a sanitizer into a separate virtual environment and run the native test subset under it
# (tests/test_native_{kernels,errors,pool,threads}.py, tests/test_ffi*.py, tests/test_cython*.py).
# docs/native.md "Sanitizers" has, per mode, what ran, the result and the time it takes.
#
#   MODE      what                                    how
#   asan      AddressSanitizer + UBSan (gcc)          libasan LD_PRELOADed (python is not
#                                                     instrumented), detect_leaks=0.  Runs in CI.
#   ubsan     UndefinedBehaviorSanitizer (gcc),       no preload needed; halt_on_error
#             plus -fsanitize=float-cast-overflow     (gcc's -fsanitize=undefined leaves it out)
#   lsan      leak check (ASan runtime, leaks on)     PYTHONMALLOC=malloc so every Python object is
#                                                     a malloc block; fast_unwind_on_malloc=0 because
#                                                     libpython has no frame pointers (stacks would
#                                                     stop in CPython and suppressions by library
#                                                     could not match); intercept_tls_get_addr=0
#                                                     works around the runtime's DTLS bug (below).
#                                                     Slow: ~7x the asan run.  The two Numba tests
#                                                     are deselected: with the slow unwinder,
#                                                     malloc called by libgcc's unwinder while it
#                                                     registers llvmlite's JIT frames (holding
#                                                     its lock) re-enters it and deadlocks.
#   tsan      ThreadSanitizer, gcc 12's libtsan       libtsan preloaded into the interpreter; OpenMP
#                                                     disabled (-Dopenmp=disabled): libgomp is not
#                                                     instrumented and gives false positives, and the
#                                                     C core does not use OpenMP.  Fork tests are
#                                                     deselected (TSan cannot follow a fork of a
#                                                     multi-threaded process).  First checks that a
#                                                     deliberate race is reported.
#   tsan-c    ThreadSanitizer on tests/c (no Python)  scripts/run_c_tests.sh, SANITIZE=thread,
#                                                     -DMC_NO_TARGET_CLONES (below)
#   valgrind  memcheck, debugoptimized build,         slow (~30x): a representative subset by
#             no sanitizer                            default; VALGRIND_ALL=1 runs the whole subset
#
# Every sanitizer writes its reports to files under $SANITIZE_DIR/logs/MODE/ (log_path /
# --log-file), because pytest captures file descriptor 2 during a test: a report printed there
# by a process that then exits (halt_on_error) would be lost.  Processes started by the tests
# inherit the settings and write their own files.  After the run every non-empty report file is
# printed, and any report fails the run even if pytest passed.
#
# Runtimes that do not work on this machine (Debian 12, kernel 6.18, x86-64):
#   - clang 14's TSan runtime (libclang_rt.tsan-x86_64.so, Debian clang-14): any preloaded
#     process, even /bin/true, dies at start with SIGSEGV, "segfault at 0 ip 0000000000000000"
#     in dmesg, before the runtime prints anything; the same with `setarch -R` (ASLR off) and
#     TSAN_OPTIONS=verbosity=2.  The clang 16 and 19 runtimes (libclang-rt-16-dev,
#     libclang-rt-19-dev) and gcc 12's libtsan start fine: this mode uses gcc's.
#   - target_clones: a TSan-instrumented executable with ifunc resolvers dies with SIGSEGV
#     before main (the resolvers run during relocation, before the TSan runtime is
#     initialised), hence -DMC_NO_TARGET_CLONES for tsan-c.  The extension is dlopen()ed long
#     after the preloaded runtime started, so the tsan mode keeps the clones (the code tested
#     is the code shipped).
#   - LeakSanitizer (gcc 12 runtime): "Tracer caught signal 11" at exit when a thread with
#     dynamic TLS is still alive (e.g. the default pool's workers, which use a _Thread_local
#     of the extension): the __tls_get_addr interceptor mistakes the glibc >= 2.25 DTLS block
#     for the old layout and the tracer reads a bogus range (google/sanitizers#1322).
#     intercept_tls_get_addr=0 avoids it.
#
# Environment: SANITIZE_DIR (default /tmp/manycore-sanitize) holds the venvs and logs; TESTS
# overrides the test files; VALGRIND_ALL=1 (valgrind mode) runs every test of the subset.
# Exit status: the test run's, or 1 if a report was written.
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
EXTRA_ARGS=("$@")
logs="$base/logs/$mode"

build_venv() {  # build_venv NAME CC SANITIZE_SPEC [meson setup args...] -- prints the venv path
    local name="$1" cc="$2" spec="$3" venv="$base/$1"
    shift 3
    local args=(-Csetup-args=-Db_lundef=false -Csetup-args=-Dbuildtype=debugoptimized)
    [[ "$spec" != none ]] && args+=(-Csetup-args=-Db_sanitize="$spec")
    for a in "$@"; do
        args+=("-Csetup-args=$a")
    done
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    echo "== building manycore (sanitizer: $spec, $cc${*:+, $*}) into $venv" >&2
    CC="$cc" "$venv/bin/pip" install -q "${args[@]}" ".[test]" >&2
    echo "$venv"
}

pytest_args() {  # the test files (absolute), rootdir and config; then any further arguments
    printf '%s\n' "${tests[@]/#/$root/}" --rootdir "$root" -c "$root/pyproject.toml" "$@"
}

run_tests() {  # run_tests VENV [VAR=value...] [-- pytest args...] -- the subset, from $base
    local venv="$1" envs=() args
    shift
    while [[ $# -gt 0 && "$1" != -- ]]; do
        envs+=("$1")
        shift
    done
    [[ $# -gt 0 ]] && shift
    mapfile -t args < <(pytest_args)
    # run from a directory where `import manycore` cannot pick up the source tree
    (cd "$base" && env "${envs[@]}" "$venv/bin/python" -m pytest -p no:cacheprovider -q \
        "${args[@]}" "$@" "${EXTRA_ARGS[@]}")
}

report_logs() {  # print every non-empty report file; fail if there is one
    local found=0 f
    for f in "$logs"/*; do
        [[ -s "$f" ]] || continue
        found=1
        echo "==== sanitizer report $f" >&2
        cat "$f" >&2
    done
    if (( found )); then
        echo "== $mode: sanitizer reports above (files in $logs)" >&2
        return 1
    fi
    echo "== $mode: no sanitizer reports" >&2
}

finish() {  # finish STATUS -- combine the test status with the report check
    local status="$1"
    report_logs || status=$(( status == 0 ? 1 : status ))
    exit "$status"
}

mkdir -p "$base"
rm -rf "$logs"
mkdir -p "$logs"
status=0
case "$mode" in
    asan)
        venv="$(build_venv asan gcc address,undefined)"
        run_tests "$venv" \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
            ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1:detect_stack_use_after_return=0:log_path=$logs/asan" \
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" || status=$?
        ;;
    ubsan)
        venv="$(build_venv ubsan gcc undefined -Dc_args=-fsanitize=float-cast-overflow)"
        run_tests "$venv" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" || status=$?
        ;;
    lsan)
        venv="$(build_venv lsan gcc address)"
        run_tests "$venv" \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so)" PYTHONMALLOC=malloc \
            ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0:malloc_context_size=16:intercept_tls_get_addr=0:log_path=$logs/lsan" \
            LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" -- -k "not numba" \
            || status=$?
        ;;
    tsan)
        libtsan="$(gcc -print-file-name=libtsan.so)"
        venv="$(build_venv tsan gcc thread -Dopenmp=disabled)"
        # OPENBLAS_NUM_THREADS=1: NumPy's OpenBLAS (used by the tests' reference results) would
        # otherwise start its own uninstrumented thread pool, whose memset/memmove TSan sees.
        tsan_opts="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
        tsan_env=(LD_PRELOAD="$libtsan" OPENBLAS_NUM_THREADS=1)
        # Self-check: the runtime is loaded and sees the pool's threads, i.e. a clean run means
        # something.  A deliberately racy C body run by parallel_for on two threads must be
        # reported (exit code 66) with the pool's worker in the stacks.
        printf '#include <stddef.h>\nlong counter;\nvoid racy(void *c, size_t b, size_t e)\n{ (void)c; for (size_t i = b; i < e; i++) counter++; }\n' \
            > "$base/racy.c"
        gcc -shared -fPIC -g -O1 -fsanitize=thread "$base/racy.c" -o "$base/racy.so"
        check_log="$base/tsan-selfcheck"
        rm -f "$check_log".*
        rc=0
        (cd "$base" && env "${tsan_env[@]}" TSAN_OPTIONS="$tsan_opts:log_path=$check_log" \
            "$venv/bin/python" -c "
import ctypes
from manycore import native
lib = ctypes.CDLL('$base/racy.so')
native.parallel_for(ctypes.cast(lib.racy, ctypes.c_void_p).value, 10**6, pool=native.Pool(2))
") || rc=$?
        if [[ $rc -ne 66 ]] || ! grep -q "worker_main" "$check_log".* 2>/dev/null; then
            echo "== tsan self-check failed: the deliberate race was not reported (exit $rc)" >&2
            cat "$check_log".* >&2 2>/dev/null || true
            exit 1
        fi
        echo "== tsan self-check: deliberate race reported, the runtime works" >&2
        tsan_env+=(TSAN_OPTIONS="$tsan_opts:log_path=$logs/tsan")
        run_tests "$venv" "${tsan_env[@]}" -- -k "not fork" || status=$?
        ;;
    tsan-c)
        # C tests only: no interpreter, no preload; target_clones off (ifunc resolvers would
        # run before the TSan runtime is up in a static executable).
        SANITIZE=thread EXTRA_CFLAGS=-DMC_NO_TARGET_CLONES \
            TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan" \
            bash "$root/scripts/run_c_tests.sh" || status=$?
        ;;
    valgrind)
        command -v valgrind >/dev/null 2>&1 || apt-get install -y -qq valgrind >&2
        venv="$(build_venv valgrind gcc none)"
        # Representative subset (~25 min here instead of several hours): every error path of
        # the extension and of the ffi/Cython faces, the pool's lifetime/concurrency tests and
        # a sample of each kernel family.  Subprocess-based tests are skipped: their children
        # are not traced (--trace-children=no) and only cost time here.
        vg_select=()
        if [[ "${VALGRIND_ALL:-0}" != 1 && -z "${TESTS:-}" ]]; then
            tests=(tests/test_native_errors.py tests/test_ffi_errors.py tests/test_cython_kernels.py
                   tests/test_native_pool.py tests/test_native_kernels.py tests/test_native_threads.py)
            vg_select=(-k "not fork and not ctrl_c and not every_thread_count and not subprocess
                           and not interpreter_exit and not stress and not hypothesis")
        fi
        mapfile -t args < <(pytest_args)
        (cd "$base" && OPENBLAS_NUM_THREADS=1 PYTHONMALLOC=malloc valgrind -q \
            --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite --num-callers=40 --suppressions="$supp/valgrind.supp" \
            --log-file="$logs/valgrind.%p" \
            "$venv/bin/python" -m pytest -p no:cacheprovider -q "${args[@]}" "${vg_select[@]}" \
            "${EXTRA_ARGS[@]}") || status=$?
        ;;
    *)
        echo "usage: $0 asan|ubsan|lsan|tsan|tsan-c|valgrind [pytest args...]" >&2
        exit 2
        ;;
esac
finish "$status"
