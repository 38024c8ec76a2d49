#!/bin/sh
# issue 17: loss against budget for the shipped random recipe
# (weights/logs/full-ema-2026-12-05/command.sh: peak lr 2.5e-3, weight decay
# 0.3, R at 18x, average 0.998 every 4 steps, seed 2) with complete cosine
# schedules of 1,250, 2,500, 5,000 and 8,433 steps (2.56M, 5.12M, 10.2M and
# 17.3M tokens; the shipped run's 16,866 steps are 34.5M), for a fit of
# test loss against tokens that is not misled by a schedule's tail.
# One thread per run, two chains side by side; the step counts are fixed
# (STEPS, MINUTES=0), so the results do not depend on the machine's speed.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
run() {
    OPENBLAS_CORETYPE=SkylakeX THREADS=1 MINUTES=0 STEPS=$1 WEIGHT_DECAY=0.3 LR=0.0025 \
        SYNTH_LR_MULT=18 EMA=0.998 SEED=2 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
        weights/train.sh ../shared/data/wikitext-2 random "$out/s$1" > "$out/s$1.out" 2>&1
}
run 8433 &
(run 5000 && run 2500 && run 1250) &
wait
