#!/bin/sh
# llama.cpp side by side (built outside the project: b4747 = c392e5094,
# cmake Release, GGML_NATIVE, OpenMP), on a random-weight GPT-2 of the
# shipped model's size (d 256, 6 layers, 4 heads, d_ff 1024, L 256, vocab
# 8192, q8_0; written with llama.cpp's gguf-py outside the project).
# Ours: the main build (fcfc542). Two interleaved rounds; run from this
# directory after run.sh.
set -u
L=/work/peer/llama.cpp/build/bin
G=/work/peer/gpt2-q8_0.gguf
M=/work/main
T=/work/shared/data/wikitext-2/test.txt
for i in 1 2; do
    $L/llama-batched-bench -m $G -t 2 -c 16384 -b 2048 -ub 512 -npp 1 -ntg 254 -npl 1,4,16,64 -fa > peer-batched-fa-run$i.txt 2>&1
    $L/llama-batched-bench -m $G -t 2 -c 16384 -b 2048 -ub 512 -npp 1 -ntg 254 -npl 1,4,16,64 > peer-batched-run$i.txt 2>&1
    $M/build/bench/bench_model 1 3 default > model-main-peer-run$i.txt 2>&1
    $L/llama-bench -m $G -t 2 -p 200 -n 128 -r 3 > peer-llama-bench-run$i.txt 2>&1
    /usr/bin/time -f "wall %e s" $L/llama-perplexity -m $G -t 2 -c 256 -b 256 -f $T > peer-perplexity-run$i.txt 2>&1
    /usr/bin/time -f "wall %e s" $M/synth score $T > ours-score-run$i.txt 2>&1
    /work/peer/server_round.sh > server-peer-run$i.txt 2>&1
done
echo finished > peer-done.txt
