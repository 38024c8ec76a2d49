#!/bin/sh
# issue 17: the shipped recipe (full-ema-2026-12-05: weight average 0.998
# every 4 steps, seed 2) with the cosine decay ending at 5e-4 instead of
# 1e-4 (a fifth of the 2.5e-3 peak): the parameters anneal less and the
# average does more of the annealing. Same seed as the shipped run, so the
# two differ in the learning-rate floor only.
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 MIN_LR=0.0005 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$@"
