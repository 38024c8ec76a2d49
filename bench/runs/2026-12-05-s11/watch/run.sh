#!/bin/sh
# Side by side, interleaved: the session's start (d728046, built in a clean
# clone at /tmp/s10) against this build (persistent disconnect watch),
# bench_server --clients 1,8,32, three rounds each.
set -u
B=/tmp/s10
M=/work/main
for r in 1 2 3; do
    SYNTH=$B/synth $B/build/bench/bench_server --model $M/weights/synthesizer-wt2-q8_0.gguf --clients 1,8,32 --seconds 4 > server-base-$r.txt 2>&1
    SYNTH=$M/synth $M/build/bench/bench_server --model $M/weights/synthesizer-wt2-q8_0.gguf --clients 1,8,32 --seconds 4 > server-new-$r.txt 2>&1
done
