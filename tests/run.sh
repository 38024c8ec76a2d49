#!/bin/sh
# tests/run.sh BIN... - run the test binaries given, then the script tests
# (tests/t_*.sh, tests/test_*.py), each as one or more results; print every
# failure and the closing line "N passed, N failed". Exit 1 if any failed.
# Environment: SYNTH (path of the synth binary under test), BUILD, SANITIZE,
# TEST_TIMEOUT (seconds one program may run, 900: a hang fails that program
# instead of the whole run; the slowest, test_server under ASan, takes ~2 min).
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
failed_names=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# the sanitizers abort at the first error; leaks count as failures
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# ThreadSanitizer (make SANITIZE=thread test): suppressions with their reasons
export TSAN_OPTIONS="${TSAN_OPTIONS:-suppressions=$(pwd)/tests/tsan.supp}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"

limit=${TEST_TIMEOUT:-900}
# run a program under the time limit; exit code 124 when it was stopped
limited() {
    timeout -k 10 "$limit" "$@"; r=$?
    [ "$r" -eq 124 ] || [ "$r" -eq 137 ] && echo "timed out after $limit s (TEST_TIMEOUT)"
    return "$r"
}

account() { # name, exit code, log file
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$3" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    else
        p=0; f=0
    fi
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or failed without a summary
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failed_names="$failed_names $1"
        echo "---- $1 FAILED (exit $2):"; grep -v '^ok ' "$3" | tail -n 60
    else
        echo "---- $1: $p passed"
    fi
}

for t in "$@"; do
    start=$(date +%s)
    limited "$t" >"$log" 2>&1; rc=$?
    account "$(basename "$t")" $rc "$log"
    echo "     ($(( $(date +%s) - start ))s)"
done
for t in tests/t_*.sh; do
    [ -e "$t" ] || continue
    start=$(date +%s)
    limited sh "$t" >"$log" 2>&1; rc=$?
    account "$(basename "$t")" $rc "$log"
    echo "     ($(( $(date +%s) - start ))s)"
done
for t in tests/test_*.py; do
    [ -e "$t" ] || continue
    start=$(date +%s)
    limited python3 "$t" >"$log" 2>&1; rc=$?
    account "$(basename "$t")" $rc "$log"
    echo "     ($(( $(date +%s) - start ))s)"
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
