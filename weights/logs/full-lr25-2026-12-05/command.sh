#!/bin/sh
# issue 17: the shipped recipe (weight decay 0.3) with a higher peak learning
# rate, 0.0025 instead of 0.0015, R's own rate kept at 0.045 (18 x 0.0025)
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$@"
