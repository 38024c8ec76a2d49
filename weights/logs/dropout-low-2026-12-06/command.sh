#!/bin/sh
# issue 17: less dropout. Dropout 0.2 lost to 0.1 in a full run (124.58
# against 117.59 test word perplexity) and word dropout 0.1 lost by 0.046
# nats, so this pair asks whether 0.1 is still too much: dropout 0.05 and 0
# (off) on the shipped recipe (weights/logs/full-ema-2026-12-05/command.sh:
# peak lr 2.5e-3, weight decay 0.3, R at 18x, average 0.998 every 4 steps,
# seed 2) with the complete 5,000-step cosine of the budget study
# (weights/logs/budget-2026-12-06/s5000: 10.2M tokens, 3.8 passes). Run
# exactly as the budget study ran it (one thread per run, two runs side by
# side, 2 shards), so against s5000 only the dropout rate differs: same
# data order, same initialization. The step count is fixed, so the results
# do not depend on the machine's speed.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
run() {
    OPENBLAS_CORETYPE=SkylakeX THREADS=1 MINUTES=0 STEPS=5000 DROPOUT=$1 WEIGHT_DECAY=0.3 LR=0.0025 \
        SYNTH_LR_MULT=18 EMA=0.998 SEED=2 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
        weights/train.sh ../shared/data/wikitext-2 random "$out/dp$1" > "$out/dp$1.out" 2>&1
}
run 0.05 &
run 0 &
wait
