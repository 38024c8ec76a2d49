#!/bin/sh
# Session 14: the server at --stream-interval 1 (the default) and 4, and the
# engine, interleaved rounds on the shipped model (same binary).
set -u
M=/work/main
for r in 1 2 3 4; do
    for k in 1 4; do
        SYNTH_STREAM_INTERVAL=$k SYNTH=/work/s14/synth-si $M/build/bench/bench_server \
            --model $M/weights/synthesizer-wt2-q8_0.gguf --clients 1,8,32 --seconds 4 > server-si$k-$r.txt 2>&1
    done
    $M/build/bench/bench_model 1 2 default > model-$r.txt 2>&1
done
