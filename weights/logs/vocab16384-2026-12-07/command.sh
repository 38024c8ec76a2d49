#!/bin/sh
# issue 17 (a lever the issue does not name): a BPE vocabulary of 16,384
# instead of 8,192, learned the same way on train.txt (the mirror of the
# 4,096 pilot, weights/logs/vocab4096-2026-12-06). Test tokens per word
# 1.2074 against 1.3098; a token of d 256 x 6 costs (3.93M + 256 x 16,384)
# / (3.93M + 256 x 8,192) = 1.347x in matrix FLOPs.
# The shipped recipe (peak lr 2.5e-3, weight decay 0.3, R at 18x, average
# 0.998 every 4 steps, seed 2) at the compute of the budget study's s2500
# (weights/logs/budget-2026-12-06/s2500: 2,500 steps of vocab 8,192):
# 2,500 / 1.347 = 1,856 steps, a complete cosine. Compare per word (word
# perplexity, bits per byte), not per token.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
./synth tokenizer-train --input ../shared/data/wikitext-2/train.txt --vocab 16384 -o "$out/tok16384.gguf"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=1856 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 \
    SEED=2 TOKENIZER="$out/tok16384.gguf" \
    weights/train.sh ../shared/data/wikitext-2 random "$out"
