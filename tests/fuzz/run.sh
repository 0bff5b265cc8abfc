#!/usr/bin/env bash
# tests/fuzz/run.sh: run the built fuzz targets (make fuzz / make fuzz-long).
#
#   bash tests/fuzz/run.sh seconds N TARGET...   each target for N seconds
#   bash tests/fuzz/run.sh runs N TARGET...      each target for N executions
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<t>/, only
# read) and a scratch corpus in tests/fuzz/build/work/<t>/ (kept between
# runs, so coverage grows); crash inputs land in tests/fuzz/build/crashes/.
# Before fuzzing, each target reruns tests/fuzz/crashes/<t>-*: reproducers
# of findings, kept so that a fix is proved and never undone.
# Exits non-zero when any target reports a crash, a leak, a sanitizer error,
# a timeout or an out-of-memory. Prints one line per target with its
# execution count, then a summary line.
set -u
mode=$1 n=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
build=$here/build
mkdir -p "$build/work" "$build/crashes" "$build/logs" "$build/tmp"

# Tree-building targets (in9, rival10) make their private temporary folder
# (mkdtemp lt_fuzz.XXXXXX) in FUZZ_TMPDIR: /dev/shm when it is a writable
# tmpfs (about 10x the executions per second of a disk), else
# tests/fuzz/build/tmp. A run that crashes leaves its folder there.
if [ -z "${FUZZ_TMPDIR:-}" ]; then
    FUZZ_TMPDIR=$build/tmp
    [ -d /dev/shm ] && [ -w /dev/shm ] && FUZZ_TMPDIR=/dev/shm
fi
export TMPDIR=$FUZZ_TMPDIR
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-target options. Inputs are capped so a run measures breadth, not size;
# -malloc_limit_mb makes any single allocation over FUZZ_MALLOC_MB (512) a
# finding: the decoders promise never to allocate hugely for a small corrupt
# file, and no valid input under max_len needs that much. Raise it only to
# explore past a known finding (docs/reliability.md).
mb=${FUZZ_MALLOC_MB:-512}
opts_for() {
    case $1 in
    image) echo "-max_len=32768 -malloc_limit_mb=$mb" ;;
    in9 | rival10) echo "-max_len=2048 -malloc_limit_mb=$mb" ;;
    *) echo "-max_len=8192 -malloc_limit_mb=$mb" ;;
    esac
}

# LLVM's OpenMP runtime (clang -fopenmp) registers each process in
# /dev/shm/__KMP_REGISTERED_LIB_<pid>_0 and removes the file at exit, but
# not when the process dies of a crash; remove it for the processes we ran.
kmp_clean() { rm -f "/dev/shm/__KMP_REGISTERED_LIB_$1_0"; }
# The fuzzer runs in the background (so that its pid is known), where a
# non-interactive shell ignores SIGINT: pass an interrupt on to it.
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid"; [ -n "$pid" ] && kmp_clean "$pid"; exit 130' INT TERM

case $mode in
seconds) limit="-max_total_time=$n" ;;
runs) limit="-runs=$n" ;;
*) echo "usage: run.sh seconds|runs N TARGET..." >&2; exit 2 ;;
esac

failed=0 total=0
for t in "$@"; do
    bin=$build/fuzz_$t
    seeds=$here/corpus/$t
    work=$build/work/$t
    log=$build/logs/$t.log
    mkdir -p "$work"
    dict=
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    # reproducers of earlier findings first: each must now run cleanly
    crashes=$(ls "$here/crashes/$t-"* 2>/dev/null)
    if [ -n "$crashes" ]; then
        # shellcheck disable=SC2046,SC2086
        "$bin" $(opts_for "$t") -timeout=10 -rss_limit_mb=${FUZZ_RSS_MB:-2048} $crashes \
            >"$build/logs/$t-crashes.log" 2>&1 &
        pid=$!
        wait $pid
        rc=$?
        kmp_clean $pid
        if [ $rc -ne 0 ]; then
            failed=$((failed + 1))
            echo "fuzz: $t: FAILED on a committed reproducer; log $build/logs/$t-crashes.log"
            grep -E '^Running: ' "$build/logs/$t-crashes.log" | tail -1 | sed 's/^/    /'
            grep -m1 -E '==ERROR|ERROR: libFuzzer|runtime error|LEAK|^fuzz[_:]' "$build/logs/$t-crashes.log" |
                sed 's/^/    /'
            continue
        fi
    fi
    start=$(date +%s)
    # shellcheck disable=SC2046,SC2086
    "$bin" $limit $(opts_for "$t") $dict -timeout=10 -rss_limit_mb=${FUZZ_RSS_MB:-2048} -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$t-" "$work" "$seeds" >"$log" 2>&1 &
    pid=$!
    wait $pid
    rc=$?
    kmp_clean $pid
    secs=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} executions in ${secs}s; log $log"
        grep -m1 -E '==ERROR|ERROR: libFuzzer|runtime error|LEAK|^fuzz[_:]' "$log" | sed 's/^/    /'
        ls -1 "$build/crashes/$t-"* 2>/dev/null | tail -3 | sed 's/^/    input: /'
    else
        echo "fuzz: $t: ${runs:-?} executions in ${secs}s, no crash"
    fi
done
echo "fuzz: $# targets, $total executions, $failed failed"
[ $failed -eq 0 ]
