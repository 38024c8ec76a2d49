#!/bin/sh
# issue 17: the shipped random model's recipe and budget B (both cores, 100
# minutes, weight decay 0.3, peak 2.5e-3, R at 18x, weight average 0.998,
# seed 2) at context 128 with 16 sequences per step (the same 2,048 tokens
# per step as 8 x 256). In 900-step pilots side by side
# (weights/logs/ctx128-2026-12-06/) it was 0.055 nats of validation loss
# ahead of context 256 at equal tokens, and 1.09x faster per token.
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    CTX=128 BATCH=16 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$@"
