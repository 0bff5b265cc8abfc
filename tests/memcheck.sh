#!/usr/bin/env bash
# tests/memcheck.sh: a fast subset of the Check suites under valgrind memcheck
# (make memcheck). Zero errors and zero definite or indirect leaks, or it fails.
#
#   bash tests/memcheck.sh [BUILD/tests]      (default build/tests)
#
# Suites: test_tensor_mem, test_autograd, test_data, and test_rrr when it is
# built. They run with CK_FORK=no, so the test code runs in the process that
# valgrind watches (with forking, Check's children would escape it), and
# OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1, so no thread pool is started.
#
# What counts: every memcheck error (invalid reads and writes, uses of
# uninitialised values, bad frees) and every "definitely lost" or
# "indirectly lost" block. "Possibly lost" and "still reachable" blocks are
# not leaks of ours: they are the thread pools and caches that libgomp and
# OpenBLAS keep for the life of the process. A report that is not ours and
# cannot be avoided goes in tests/valgrind.supp (read when it exists), with
# a comment saying why; the check itself is never weakened. (None is needed
# today.)
#
# valgrind 3.19 does not know AVX-512. On a CPU that has it, a -march=native
# build may use it, so the suites are rebuilt portable (PORTABLE=1) into a
# temporary folder first; MEMCHECK_PORTABLE=1 forces that, =0 prevents it.
#
# Prints per suite its Check line, errors, leaks and seconds, then
#   memcheck: N suites, E errors, L leaks (T s)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dir=${1:-$root/build/tests}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
suites=(test_tensor_mem test_autograd test_data)
[ -x "$dir/test_rrr" ] && suites+=(test_rrr)

if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi
for s in "${suites[@]}"; do
    if [ ! -x "$dir/$s" ]; then
        echo "memcheck: $dir/$s is not built (make test-bin)" >&2
        exit 2
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lt_memcheck.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

portable=${MEMCHECK_PORTABLE:-}
if [ -z "$portable" ]; then
    portable=0
    grep -qw avx512f /proc/cpuinfo 2>/dev/null && portable=1
fi
if [ "$portable" = 1 ]; then
    echo "memcheck: rebuilding the suites with PORTABLE=1 (valgrind does not know AVX-512)"
    b=$tmp/build
    if ! make -C "$root" --no-print-directory -j"$(nproc)" BUILD="$b" PORTABLE=1 \
        "${suites[@]/#/$b/tests/}" >"$tmp/build.log" 2>&1; then
        tail -20 "$tmp/build.log"
        echo "memcheck: the portable build failed" >&2
        exit 2
    fi
    dir=$b/tests
fi

supp=()
[ -f "$here/valgrind.supp" ] && supp=(--suppressions="$here/valgrind.supp")

total_err=0 total_leak=0 bad=0
t0=$(date +%s)
for s in "${suites[@]}"; do
    log=$tmp/$s.vg out=$tmp/$s.out
    start=$(date +%s)
    (cd "$root" && CK_FORK=no OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        valgrind --error-exitcode=101 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --track-origins=yes --num-callers=30 "${supp[@]}" --log-file="$log" \
        "$dir/$s" >"$out" 2>&1)
    rc=$?
    secs=$(($(date +%s) - start))
    total=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tail -1 | tr -d ,)
    def=$(sed -n 's/.*definitely lost: [0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$log" | tail -1 | tr -d ,)
    ind=$(sed -n 's/.*indirectly lost: [0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$log" | tail -1 | tr -d ,)
    # ERROR SUMMARY also counts each reported loss record; leave those to "leaks"
    records=$(grep -cE 'are (definitely|indirectly) lost in loss record' "$log")
    errs=$(( ${total:-1} - records ))
    leaks=$(( ${def:-0} + ${ind:-0} ))
    check=$(grep -E '^[0-9]+%: Checks' "$out" | tail -1)
    echo "$s: ${check:-no Check summary}; $errs errors, $leaks leaked blocks (${secs}s)"
    total_err=$((total_err + errs))
    total_leak=$((total_leak + leaks))
    if [ $rc -ne 0 ] || [ $errs -ne 0 ] || [ $leaks -ne 0 ] || [ -z "$check" ] ||
        ! echo "$check" | grep -q 'Failures: 0, Errors: 0'; then
        bad=$((bad + 1))
        echo "  $s failed (exit $rc); its valgrind report:"
        grep -vE '^==[0-9]+== *$' "$log" | sed -n '/Memcheck, a memory/,$p' | tail -n +6 | head -80 |
            sed 's/^/    /'
        grep -vE '^[0-9]+%: Checks|^Running suite' "$out" | head -20 | sed 's/^/    /'
    fi
done
echo "memcheck: ${#suites[@]} suites, $total_err errors, $total_leak leaks ($(($(date +%s) - t0)) s)"
[ $bad -eq 0 ]
