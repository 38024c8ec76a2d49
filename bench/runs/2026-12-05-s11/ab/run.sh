#!/bin/sh
# Three builds interleaved, five rounds of bench_server --clients 1,32
# (the shipped model): base = session start d728046 (/tmp/s10), watch =
# 94bedfd (persistent disconnect watch, /tmp/s11a), new = this build
# (+ 16-wide GELU and softmax exps, 4-way row max).
set -u
M=/work/main
for r in 1 2 3 4 5; do
    for v in base watch new; do
        case $v in base) B=/tmp/s10 ;; watch) B=/tmp/s11a ;; new) B=$M ;; esac
        SYNTH=$B/synth $B/build/bench/bench_server --model $M/weights/synthesizer-wt2-q8_0.gguf \
            --clients 1,32 --seconds 4 > server-$v-$r.txt 2>&1
    done
done
for v in base watch new; do
    for r in 1 2 3 4 5; do
        awk -F'|' -v v=$v -v r=$r '/\/generate/ {t[$3+0]=$5+0} END {printf "%s %s 1:%d 32:%d ratio %.2f\n", v, r, t[1], t[32], t[32]/t[1]}' server-$v-$r.txt
    done
done
