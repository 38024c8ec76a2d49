#!/bin/sh
# issue 17: the shipped recipe (full-geglu-2026-12-07: GEGLU d_ff 672, peak lr
# 2.5e-3, weight decay 0.3, R at 18x, average 0.998 every 4 steps, seed 2,
# 100 minutes on both cores, the cosine sized from the warm-up's rate) with
# one change: a BPE vocabulary of 16,384 learned on train.txt (the pilot,
# weights/logs/vocab16384-2026-12-07, was -0.051 nats per word at the budget
# study's s2500 compute). A token costs 1.35x in matrix FLOPs, so the run
# sees fewer tokens (but 1.2074 instead of 1.3098 tokens per word).
# Compare per word (word perplexity, bits per byte), not per token.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
./synth tokenizer-train --input ../shared/data/wikitext-2/train.txt --vocab 16384 -o "$out/tok16384.gguf"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
    TOKENIZER="$out/tok16384.gguf" weights/train.sh ../shared/data/wikitext-2 random "$out"
