#!/bin/sh
# Session 10 (2026-12-04): int8 activations (q8_0 layers, VNNI) against the
# f32 activations of the same build, side by side in one process
# (bench_model measures the other mode in the same repetitions), then
# llama.cpp beside us (built outside the project: b4747 = c392e5094, cmake
# Release, GGML_NATIVE, OpenMP; a random-weight GPT-2 of the shipped size,
# q8_0, written with llama.cpp's gguf-py outside the project), then the
# server at 1 / 8 / 32 clients with 2 and 1 compute threads. Run from this
# directory; the peer's paths are this machine's.
set -u
L=/work/peer/llama.cpp/build/bin
G=/work/peer/gpt2-q8_0.gguf
M=/work/main
$M/build/bench/bench_model 1 3 both > model-both.txt 2>&1
$L/llama-batched-bench -m $G -t 2 -c 16384 -b 2048 -ub 512 -npp 1 -ntg 254 -npl 1,4,16,64 -fa > peer-batched-fa.txt 2>&1
$M/build/bench/bench_model 1 3 default > model-beside-peer.txt 2>&1
/work/peer/server_round.sh > server-peer.txt 2>&1
for t in 2 1 2 1; do
    echo "== synth API, --threads $t"
    SYNTH=$M/synth $M/build/bench/bench_server --clients 1,8,32 --seconds 4 --threads $t 2>&1 | grep -E "^\|"
done > server-threads.txt
for a in f32 q8; do
    echo "== SYNTH_ACT=$a"
    SYNTH=$M/synth SYNTH_ACT=$a $M/build/bench/bench_server --clients 1,8,32 --seconds 4 2>&1 | grep -E "^\|"
done > server-act.txt
