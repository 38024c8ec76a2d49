#!/bin/sh
# issue 17: a larger model with stronger regularization, the one lever the
# issue names that the search had not measured at a complete schedule.
# d 320 x 6 (5 heads of 64, d_ff 1280: 10,835,200 parameters against 7,685,120) with
# dropout 0.15 instead of 0.1, otherwise the shipped recipe
# (weights/logs/full-ema-2026-12-05/command.sh: peak lr 2.5e-3, weight decay
# 0.3, R at 18x, average 0.998 every 4 steps, seed 2). Budget: the compute of
# the budget study's s8433 (weights/logs/budget-2026-12-06/s8433, 8,433 steps
# of d 256 x 6) at equal wall time on this machine: d 320 trains at 0.713x
# the tokens/s of d 256 (60-step runs on 2 threads, bench-shapes.txt), so
# 6,009 steps, a complete cosine of that length.
# Usage, from the repository root: command.sh OUT_DIR
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=6009 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 \
    SEED=2 DROPOUT=0.15 SHAPE="--d-model 320 --layers 6 --heads 5 --d-ff 1280" \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
    weights/train.sh ../shared/data/wikitext-2 random "$@"
