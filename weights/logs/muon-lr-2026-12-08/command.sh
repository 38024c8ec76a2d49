#!/bin/sh
# issue 17: the 2,500-step pilot (weights/logs/muon-pilot-2026-12-08) again
# with twice the peak lr, 0.005, for both optimizers, R's lr unchanged in
# absolute terms (multiplier 9 instead of 18: 0.045 either way). Why: the
# shipped lr 2.5e-3 was tuned for AdamW at 100 minutes; a shorter schedule
# may want more, so AdamW's deficit against Muon at 2,500 steps could be
# partly a tuning artefact, and Muon's own best lr is unknown. One thread
# each, side by side; fixed step counts, so the results do not depend on
# the machine's speed.
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
run() {
    OPENBLAS_CORETYPE=SkylakeX THREADS=1 MINUTES=0 STEPS=2500 OPTIMIZER=$1 WEIGHT_DECAY=0.3 LR=0.005 \
        SYNTH_LR_MULT=9 EMA=0.999 SEED=2 SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
        TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
        weights/train.sh ../shared/data/wikitext-2 random "$out/$1" > "$out/$1.out" 2>&1
}
run adamw &
run muon &
wait
