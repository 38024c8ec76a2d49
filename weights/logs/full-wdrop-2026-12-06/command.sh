#!/bin/sh
# issue 17: the shipped recipe (weights/logs/full-ema-2026-12-05/command.sh:
# peak lr 2.5e-3, weight decay 0.3, R at 18x, average 0.998 every 4 steps,
# seed 2) with word dropout 0.1 (each token type's input embedding dropped
# with probability 0.1 per step). The schedule is fixed at the shipped run's
# 16,866 steps (STEPS, MINUTES=0) so the two runs differ only in word
# dropout, whatever the machine's speed; on the idle machine that is the
# 100-minute budget.
# Usage, from the repository root: command.sh OUT_DIR
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=16866 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 \
    SEED=2 WORD_DROPOUT=0.1 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
    weights/train.sh ../shared/data/wikitext-2 random "$@"
