#!/bin/sh
# usage: prof.sh SYNTH OUTDIR  - serve the shipped model, 32 clients for 12 s, strace -c -f 4 s and perf 4 s
set -u
S=$1; O=$2; mkdir -p $O
M=/work/main
$S serve -m $M/weights/synthesizer-wt2-q8_0.gguf --port 18181 --threads 2 --max-batch 32 > $O/serve.log 2>&1 &
P=$!
sleep 1.5
$M/build/bench/bench_server --port 18181 --clients 32 --seconds 14 > $O/bench.txt 2>&1 &
B=$!
sleep 3
timeout -s INT 4 strace -c -f -p $P -o $O/strace.txt > /dev/null 2>&1
sleep 1
perf record -F 2000 -g -a -o $O/perf.data -- sleep 4 > /dev/null 2>&1
wait $B
kill -TERM $P; wait $P
