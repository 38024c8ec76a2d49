#!/bin/sh
# issue 17: Muon against AdamW on the shipped recipe
# (weights/logs/full-ema999-2026-12-07/command.sh: GEGLU d_ff 672, peak lr
# 2.5e-3, weight decay 0.3, R at 18x, average 0.999, seed 2), both with a
# complete cosine schedule of 2,500 steps (5.12M tokens, 1.9 passes), one
# thread each, side by side. The only difference: --optimizer muon, which
# updates the 24 decayed block matrices (V, O, up, down) by Muon and the
# rest by AdamW, at the same lr and decay (Muon's update is scaled to
# AdamW's typical RMS). Same seed, same data order, same dropout masks.
# The step counts are fixed (STEPS, MINUTES=0), so the results do not
# depend on the machine's speed.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
run() {
    OPENBLAS_CORETYPE=SkylakeX THREADS=1 MINUTES=0 STEPS=2500 OPTIMIZER=$1 WEIGHT_DECAY=0.3 LR=0.0025 \
        SYNTH_LR_MULT=18 EMA=0.999 SEED=2 SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
        TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
        weights/train.sh ../shared/data/wikitext-2 random "$out/$1" > "$out/$1.out" 2>&1
}
run adamw &
run muon &
wait
