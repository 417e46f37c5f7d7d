#!/usr/bin/env bash
# sanitize.sh MODE [pytest args...] -- build the C core, the extension and the Cython modules
# with a sanitizer into a separate virtual environment and run the native test subset under it
# (tests/test_native_{kernels,errors,pool,threads}.py, tests/test_serial_map.py, tests/test_ffi*.py, tests/test_cython*.py).
# docs/native.md "Sanitizers" has, per mode, what ran, the result and the time it takes.
#
#   MODE      what                                    how                         time here
#   asan      AddressSanitizer + UBSan (gcc)          libasan LD_PRELOADed           3.5 min
#                                                     (python is not instrumented),
#                                                     detect_leaks=0.  Runs in CI.
#   ubsan     UndefinedBehaviorSanitizer (gcc),       no preload needed;             3 min
#             plus -fsanitize=float-cast-overflow     halt_on_error
#             (gcc's -fsanitize=undefined leaves it out)
#   lsan      LeakSanitizer (ASan runtime, leaks on)  PYTHONMALLOC=malloc: every     20 min
#                                                     Python object is a malloc
#                                                     block.  fast_unwind_on_malloc=0: libpython
#                                                     has no frame pointers, fast stacks stop in
#                                                     CPython's allocator and suppressions by
#                                                     library could not match.  That unwinder
#                                                     deadlocks in llvmlite's JIT (malloc called
#                                                     by libgcc's unwinder while it holds its
#                                                     lock re-enters it): the 2 Numba tests are
#                                                     deselected.  intercept_tls_get_addr=0: see
#                                                     below.
#   tsan      ThreadSanitizer, gcc 12's libtsan       preloaded into the             2.5 min
#                                                     interpreter.  -Dopenmp=disabled: libgomp is
#                                                     not instrumented (false positives) and the C
#                                                     core does not use OpenMP; the Cython prange
#                                                     kernels then run serially.  The 5 fork tests
#                                                     are deselected: TSan kills a child of a
#                                                     multi-threaded process that starts a thread
#                                                     ("starting new threads after multi-threaded
#                                                     fork is not supported"; with die_after_fork=0
#                                                     the child dies with "dup thread with used
#                                                     id").  First checks that a deliberate race
#                                                     run by parallel_for is reported.
#   tsan-c    ThreadSanitizer on tests/c (no Python)  scripts/run_c_tests.sh,        15 s
#                                                     SANITIZE=thread, -DMC_NO_TARGET_CLONES
#   valgrind  memcheck on a debugoptimized build      PYTHONMALLOC=malloc,           17 min
#             without sanitizers                      --track-origins (needed by
#                                                     sanitizers/valgrind_filter.py, which drops
#                                                     CPython 3.11's undefined-digit artefact).
#                                                     A representative subset by default
#                                                     (valgrind_subset below); VALGRIND_ALL=1 runs
#                                                     the whole native subset (about 2 h, estimated
#                                                     from per-file runs; pass --timeout=0: a
#                                                     sum_of_squares_range test takes > 300 s).
#
# A pytest -k given after MODE replaces the mode's own -k (tsan: "not fork", lsan: "not numba",
# valgrind: "not pthread_create_failure_is_oserror"); repeat those terms in yours.
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
               tests/test_native_threads.py tests/test_serial_map.py)
for t in tests/test_ffi*.py tests/test_cython*.py; do
    [[ -e "$t" ]] && default_tests+=("$t")
done
read -r -a tests <<< "${TESTS:-${default_tests[*]}}"
# valgrind's default: whole files for every error path and binding, and for the kernels and
# the pool the tests that reach each kernel, buffer kind and pool state once, without the
# long exactness sweeps (sum_of_squares_range up to 2**35 alone takes > 5 min under valgrind)
# and the hypothesis property tests.  VALGRIND_ALL=1 runs the whole subset instead.
valgrind_subset=(tests/test_native_errors.py tests/test_native_threads.py tests/test_serial_map.py tests/test_ffi_errors.py
                 tests/test_ffi_callbacks.py tests/test_ffi_parity.py tests/test_ffi_posix.py
                 tests/test_ffi_seed.py tests/test_cython_kernels.py)
for t in buffer_kinds ctypes_arrays array_array_every_typecode bytes_and_bytearray_are_unsigned_bytes \
         multidimensional_c_contiguous_buffers_are_flat explicit_little_endian_formats_are_accepted \
         float_reductions_empty_and_types float_sum_special_values int64_uint64_extremes_exact \
         minmax_float minmax_nan_propagates_to_both minmax_infinities_and_signed_zero \
         histogram_every_format histogram_edges histogram_values_on_bin_edges \
         histogram_out_is_overwritten_and_returned count_primes_small_all count_primes_limit \
         monte_carlo_pi_bit_exact_on_the_pool mandelbrot_bit_exact_custom_bounds mandelbrot_out_buffers \
         mandelbrot_degenerate mandelbrot_bit_exact_on_the_pool matmul_vs_numpy matmul_empty_dimensions \
         matmul_out_overwritten_and_same_input_twice square_in_place square_explicit_int_outputs \
         square_float_outputs square_2d_keeps_shape square_default_out_overflow \
         sum_of_squares_range_small_by_loop sum_of_squares_limit; do
    valgrind_subset+=("tests/test_native_kernels.py::test_$t")
done
for t in pool_basics pool_context_manager_closes pool_context_manager_closes_on_exception \
         pool_threads_are_created_and_joined pool_with_max_threads build_info_and_bench_dispatch \
         default_pool_is_shared default_pool_grows_once threads_less_than_pool \
         concurrent_calls_on_one_pool close_while_a_kernel_runs_is_deferred \
         nested_calls_from_inside_a_region float_reductions_identical_bits int_reductions_identical \
         minmax_identical_bits histogram_identical matmul_identical square_identical \
         mandelbrot_identical monte_carlo_pi_identical sum_of_squares_range_and_primes_identical; do
    valgrind_subset+=("tests/test_native_pool.py::test_$t")
done
EXTRA_ARGS=("$@")
logs="$base/logs/$mode"

build_venv() {  # build_venv NAME CC SANITIZE_SPEC [meson setup args...] -- prints the venv path
    local cc="$2" spec="$3" venv="$base/$1"
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

pytest_args() {  # the test files (absolute), rootdir and config, one per line
    printf '%s\n' "${tests[@]/#/$root/}" --rootdir "$root" -c "$root/pyproject.toml"
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
    if [[ "$mode" == valgrind ]]; then
        local files=()
        for f in "$logs"/*; do
            [[ -s "$f" ]] && files+=("$f")
        done
        (( ${#files[@]} )) || { echo "== valgrind: no reports" >&2; return 0; }
        "$python" "$supp/valgrind_filter.py" "${files[@]}" >&2 && return 0
        echo "== valgrind: reports above (files in $logs)" >&2
        return 1
    fi
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
        vg_select=(-k "not pthread_create_failure_is_oserror")
        if [[ "${VALGRIND_ALL:-0}" != 1 && -z "${TESTS:-}" ]]; then
            # Representative subset: VALGRIND_SUBSET below.
            tests=("${valgrind_subset[@]}")
        fi
        mapfile -t args < <(pytest_args)
        # --track-origins: needed by valgrind_filter.py (CPython 3.11 artefact, see there);
        # --max-threads: test_pool_with_max_threads starts 1023 workers (default limit 500);
        # --keep-debuginfo: names frames of libraries unloaded before the leak check.
        # No --error-exitcode: the exit status is pytest's, reports are judged by the filter.
        # pthread_create_failure_is_oserror is deselected: under valgrind pthread_create of a
        # thread with a 64 TiB stack fails with EINVAL instead of EAGAIN/ENOMEM.
        (cd "$base" && OPENBLAS_NUM_THREADS=1 PYTHONMALLOC=malloc valgrind -q \
            --track-origins=yes --keep-debuginfo=yes --max-threads=1100 \
            --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
            --num-callers=40 --suppressions="$supp/valgrind.supp" --log-file="$logs/valgrind.%p" \
            "$venv/bin/python" -m pytest -p no:cacheprovider -q "${args[@]}" "${vg_select[@]}" \
            "${EXTRA_ARGS[@]}") || status=$?
        ;;
    *)
        echo "usage: $0 asan|ubsan|lsan|tsan|tsan-c|valgrind [pytest args...]" >&2
        exit 2
        ;;
esac
finish "$status"
