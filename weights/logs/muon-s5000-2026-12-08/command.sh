#!/bin/sh
# issue 17: Muon on a complete cosine of 5,000 steps (10.2M tokens, 3.8
# passes), for comparison with the AdamW runs of the same length
# (weights/logs/budget-2026-12-06/s5000: the recipe of that day, GELU d_ff
# 1024; weights/logs/dropout-low-2026-12-06). The shipped command
# (weights/logs/full-ema999-2026-12-07/command.sh: GEGLU d_ff 672, peak lr
# 2.5e-3, weight decay 0.3, R at 18x, seed 2) with --optimizer muon, a
# fixed 5,000-step schedule instead of 100 minutes, and the average at
# 0.998 as in those references (the average never touches the parameters).
# Both cores; the step count is fixed, so the result does not depend on
# the machine's speed.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=5000 OPTIMIZER=muon WEIGHT_DECAY=0.3 LR=0.0025 \
    SYNTH_LR_MULT=18 EMA=0.998 SEED=2 SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$out"
