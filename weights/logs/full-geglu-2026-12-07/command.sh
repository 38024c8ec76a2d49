#!/bin/sh
# issue 17: the shipped recipe (full-ema-2026-12-05: peak lr 2.5e-3, weight
# decay 0.3, R at 18x, average 0.998 every 4 steps, seed 2, 100 minutes on
# both cores, the cosine sized from the warm-up's rate) with one change: the
# GEGLU feed-forward (Shazeer 2020) at the MLP's parameter count, d_ff 672
# (3 x 256 x 672 = 516,096 weights per block against 2 x 256 x 1,024 =
# 524,288: 1.6% fewer).
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$out"
