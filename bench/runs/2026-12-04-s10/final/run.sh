#!/bin/sh
# Before/after, interleaved: the session's start (1c3d21e, built in
# /tmp/base) against this build, bench_model on both sizes, then
# bench_server (synth API, 1 / 8 / 32 clients), two rounds each.
set -u
B=/tmp/base
M=/work/main
for r in 1 2; do
    $B/build/bench/bench_model 1 3 both > model-base-$r.txt 2>&1
    $M/build/bench/bench_model 1 3 both > model-new-$r.txt 2>&1
done
for r in 1 2; do
    SYNTH=$B/synth $B/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-base-$r.txt 2>&1
    SYNTH=$M/synth $M/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-new-$r.txt 2>&1
done
