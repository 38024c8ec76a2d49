#!/bin/sh
# issue 17: the AdamW side of the pilot (command.sh beside this file) at
# Muon's cost: a complete cosine of 3,080 steps, 1.23x the 2,500 steps,
# the time per step Muon took against AdamW on one thread in the pilot
# (1,618 against 1,994 tokens/s at step 1,750). Compared with the Muon
# run's 2,500 steps this is AdamW at equal time. Both cores (2 shards:
# the same numbers as one thread); a fixed step count.
# Usage, from the repository root: adamw-equal-time.sh OUT_DIR
set -eu
out=${1:?usage: adamw-equal-time.sh OUT_DIR}
mkdir -p "$out"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=0 STEPS=3080 OPTIMIZER=adamw WEIGHT_DECAY=0.3 LR=0.0025 \
    SYNTH_LR_MULT=18 EMA=0.999 SEED=2 SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$out"
