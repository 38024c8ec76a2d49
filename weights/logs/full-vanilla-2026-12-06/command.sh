#!/bin/sh
# issue 17, part 3: the vanilla Transformer baseline at budget B (both cores,
# 100 minutes) with the shipped random model's recipe (full-ema-2026-12-05:
# weight decay 0.3, peak 2.5e-3, R's learning rate x18 -- no R here, so it
# has no effect -- weight average 0.998 every 4 steps, seed 2). Its earlier
# run (synthesizer-wt2-vanilla) had budget A (one core, 95 minutes) and the
# old recipe; this one shares budget B with the shipped random model and the
# mixture (full-mix-2026-12-06), so the three differ in the variant only.
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 vanilla "$@"
