#!/bin/sh
# bench/run.sh BUILD [NAME...] - run the benchmarks built in BUILD/bench/
# (all, or those named: model, tok, train). Results go to stdout; numbers are
# only comparable within one run (the machine is shared and noisy).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
data=${WIKITEXT:-../shared/data/wikitext-2}
names=${*:-"tok model"}
for n in $names; do
    bin="$build/bench/bench_$n"
    [ -x "$bin" ] || { echo "bench: $bin not built" >&2; exit 1; }
    echo "== bench_$n"
    case $n in
        tok) "$bin" "$data/test.txt" "$data/train.txt" ;;
        server) "$bin" && echo && "$bin" --api choices ;;   # + multiple-choice scoring, prefix cache off/on
        *) "$bin" ;;
    esac
done
