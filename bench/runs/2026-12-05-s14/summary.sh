#!/bin/sh
# Summaries of final/ (and si/): /generate tokens/s per clients, 32/1 within
# each run, TTFT p50 and server CPU us per token at 32 clients; bench_model
# decode rows and x one sequence.
cd "$(dirname "$0")"
for f in final/server-si*-*.txt si/si*-*.txt; do
    awk -F'|' -v f=$f '/\/generate/ {t[$3+0]=$5+0; p[$3+0]=$8+0; c[$3+0]=$12+0; e[$3+0]+=$10+$11}
        END {printf "%-24s 1: %5d  8: %5d  32: %5d  32/1: %.2f  TTFT p50 at 32: %4.1f ms  srv CPU us/token at 32: %5.1f  errors at 32: %d\n",
             f, t[1], t[8], t[32], t[32]/t[1], p[32], c[32], e[32]}' $f
done
for f in final/model-*.txt probe-model-*.txt; do
    printf '%-22s ' $f
    awk '/sgemm peak/ {printf "sgemm %s  ", $(NF-1)} /vpdpbusd/ {printf "vpdpbusd %s  ", $(NF-1)}
         /^\(c\)/ {c=1} c && /^(1|16|64) / {printf "dec %s: %s (%s)  ", $1, $3, $4}
         /^\(b\)/ {b=1} b && /^16 / && !s {printf "score16: %s  ", $3; s=1} END {print ""}' $f
done
