#!/bin/sh
# tests/tsan.sh BUILD - ThreadSanitizer run of the server (make tsan): the
# server suite (BUILD/tests/test_server, which starts BUILD/synth) and a short
# soak (tests/soak.py, TSAN_SOAK_SECONDS, default 60, 16 connections) whose
# server runs with every core: the loop thread, the libuv pool, the inference
# worker, the engine's ops pool and OpenBLAS's threads. Every process writes
# its reports to a log file (TSAN_OPTIONS log_path); any report fails the run.
# Suppressions, each with its reason: tests/tsan.supp.
set -u
cd "$(dirname "$0")/.." || exit 1
build=$1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export TSAN_OPTIONS="log_path=$logs/tsan second_deadlock_stack=1 suppressions=$(pwd)/tests/tsan.supp ${TSAN_OPTIONS:-}"
fail=0
SYNTH=$build/synth OPENBLAS_NUM_THREADS=2 "$build/tests/test_server" >"$logs/test_server.out" 2>&1 || fail=1
tail -n 1 "$logs/test_server.out"
[ $fail -eq 0 ] || grep -v '^ok' "$logs/test_server.out" | tail -n 30
SYNTH=$build/synth TEST_SERVER=$build/tests/test_server OPENBLAS_NUM_THREADS=2 SOAK_CONNS=16 \
    SOAK_SECONDS=${TSAN_SOAK_SECONDS:-60} python3 tests/soak.py >"$logs/soak.out" 2>&1 || fail=1
grep -E '^(ok|FAIL|soak:)' "$logs/soak.out" | tail -n 12
n=$(cat "$logs"/tsan.* 2>/dev/null | grep -c 'WARNING: ThreadSanitizer')
if [ "$n" -ne 0 ]; then
    echo "tsan: $n report(s):"
    cat "$logs"/tsan.* | head -n 200
    fail=1
else
    echo "tsan: no report"
fi
[ $fail -eq 0 ] && echo "tsan: clean" || echo "tsan: FAILED"
exit $fail
