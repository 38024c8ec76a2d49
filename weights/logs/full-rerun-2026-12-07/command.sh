#!/bin/sh
# issue 17: the shipped command (full-geglu-2026-12-07/command.sh) run again,
# unchanged, on a faster machine (2-core AMD EPYC, Zen 5: 2 shards on 2 threads
# 7,818 tokens/s in bench_train before the run, against the 6,027 tokens/s the
# shipped run averaged). The cosine is sized from the warm-up's rate, so the
# same 100 minutes buy more steps: the question is whether 1.2-1.3x the tokens
# move the end point as the budget study's fits predict (budget-2026-12-06).
# Usage, from the repository root: command.sh OUT_DIR
set -eu
out=${1:?usage: command.sh OUT_DIR}
mkdir -p "$out"
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$out"
