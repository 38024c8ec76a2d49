#!/bin/sh
# llama.cpp side by side with this session's build (built outside the
# project: b4747 = c392e5094, cmake Release, GGML_NATIVE, OpenMP), on a
# random-weight GPT-2 of the shipped model's size (d 256, 6 layers, 4 heads,
# d_ff 1024, L 256, vocab 8192, q8_0; written with llama.cpp's gguf-py
# outside the project). One round: batched decode, then the server round
# (the same OpenAI-API client, bench_server --api openai, against
# llama-server -fa -np 32 and synth serve). Run from this directory.
set -u
L=/work/peer/llama.cpp/build/bin
G=/work/peer/gpt2-q8_0.gguf
M=/work/main
$L/llama-batched-bench -m $G -t 2 -c 16384 -b 2048 -ub 512 -npp 1 -ntg 254 -npl 1,4,16,64 -fa > peer-batched-fa.txt 2>&1
$M/build/bench/bench_model 1 3 default > model-beside-peer.txt 2>&1
/work/peer/server_round.sh > server-peer.txt 2>&1
