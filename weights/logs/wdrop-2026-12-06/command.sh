#!/bin/sh
# issue 17: word dropout 0.1 (each token type's input embedding dropped with
# probability 0.1 per step) on the shipped recipe
# (weights/logs/full-ema-2026-12-05/command.sh: peak lr 2.5e-3, weight decay
# 0.3, R at 18x, average 0.998 every 4 steps, seed 2), with the complete
# 8,433-step cosine of the budget study (weights/logs/budget-2026-12-06/s8433,
# 17.3M tokens, 6.45 passes: where the runs start to overfit). This machine's
# sgemm peak is half that of the budget study's (Zen 4 here), so the shipped
# 16,866 steps do not fit the session; the budget study's s8433 is the
# reference. It ran on one thread and one shard, this run on two shards, so
# its dropout masks differ beyond the word dropout's (seed-level noise).
# Usage, from the repository root: command.sh OUT_DIR
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=8433 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 \
    SEED=2 WORD_DROPOUT=0.1 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
    weights/train.sh ../shared/data/wikitext-2 random "$@"
