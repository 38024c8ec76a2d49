#!/bin/sh
# Final side by side, interleaved: the session's start (d728046, built in a
# clean clone at /tmp/s10) against this build, both loaded by this build's
# bench_server (the same client; its srv/cli CPU columns), --clients 1,8,32
# on the shipped model, six rounds, then a summary: /generate tokens/s,
# 32 clients / 1 client within each run, server CPU us per token.
set -u
M=/work/main
for r in 1 2 3 4 5 6; do
    for v in base new; do
        case $v in base) B=/tmp/s10 ;; new) B=$M ;; esac
        SYNTH=$B/synth $M/build/bench/bench_server --model $M/weights/synthesizer-wt2-q8_0.gguf \
            --clients 1,8,32 --seconds 4 > server-$v-$r.txt 2>&1
    done
done
for v in base new; do
    for r in 1 2 3 4 5 6; do
        awk -F'|' -v v=$v -v r=$r '/\/generate/ {t[$3+0]=$5+0; p[$3+0]=$8+0; c[$3+0]=$12+0}
            END {printf "%s %s  1: %5d  8: %5d  32: %5d  32/1: %.2f  TTFT p50 at 32: %4.1f ms  server CPU us/token 1: %5.1f 32: %5.1f\n",
                 v, r, t[1], t[8], t[32], t[32]/t[1], p[32], c[1], c[32]}' server-$v-$r.txt
    done
done
