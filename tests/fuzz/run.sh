#!/bin/sh
# tests/fuzz/run.sh BUILD SECONDS TARGET... - run each libFuzzer target for
# SECONDS, one after the other (one process, one job: the machine has two
# cores), on a working copy of its committed seed corpus (BUILD/corpus/T; the
# committed seeds in tests/fuzz/corpus/T are read, never written) with its
# dictionary. Prints each target's final line (execs/s, cov, ft, corpus) and
# fails on any finding (crash, leak, timeout, out-of-memory: the reproducer
# is BUILD/artifacts/T-*). FUZZ_ARGS adds libFuzzer flags.
set -u
build=$1; secs=$2; shift 2
cd "$(dirname "$0")/../.." || exit 1
fail=0
for t in "$@"; do
    bin=$build/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz: $bin missing (make fuzz)"; fail=1; continue; }
    mkdir -p "$build/corpus/$t" "$build/artifacts"
    case $t in
        gguf) opts="-max_len=131072 -dict=tests/fuzz/gguf.dict" ;;
        tok)  opts="-max_len=8192 -dict=tests/fuzz/tok.dict" ;;
        api)  opts="-max_len=16384 -dict=tests/fuzz/api.dict" ;;
        http) opts="-max_len=16384 -dict=tests/fuzz/http.dict" ;;
        *)    opts="" ;;
    esac
    log=$build/fuzz_$t.log
    echo "fuzz: $t for ${secs}s (log $log)"
    # shellcheck disable=SC2086
    "$bin" $opts -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t-" ${FUZZ_ARGS:-} "$build/corpus/$t" "tests/fuzz/corpus/$t" \
        >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $rc):"
        # everything but libFuzzer's progress lines: the finding's own
        # message (a harness abort, a library assertion, a sanitizer report)
        # comes before libFuzzer's "deadly signal"
        grep -vE '^#[0-9]+[[:space:]]' "$log" | grep -vE '^(INFO|MERGE-OUTER|stat::)' | tail -n 60
        fail=1
    fi
done
exit $fail
