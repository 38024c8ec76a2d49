#!/bin/sh
# Two more rounds of llama.cpp beside this build (with ../run.sh's round,
# three), interleaved: llama-batched-bench -fa, bench_model default, then
# the server round (llama-server -fa -np 32 and synth serve, the same
# OpenAI-API client). Peer built outside the project (see ../run.sh).
set -u
L=/work/peer/llama.cpp/build/bin
G=/work/peer/gpt2-q8_0.gguf
M=/work/main
for r in 2 3; do
    $L/llama-batched-bench -m $G -t 2 -c 16384 -b 2048 -ub 512 -npp 1 -ntg 254 -npl 1,4,16,64 -fa > peer-batched-fa-$r.txt 2>&1
    $M/build/bench/bench_model 1 2 default > model-beside-peer-$r.txt 2>&1
    /work/peer/server_round.sh > server-peer-$r.txt 2>&1
done
