#!/bin/sh
# The 2026-12-04 full run on the data-parallel trainer (2 shards on 2
# threads), the shipped recipe otherwise (dropout 0.1), 100 minutes, the
# machine otherwise idle. From the project root:
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 DROPOUT=0.1 TOKENIZER=${TOKENIZER:-weights/synthesizer-wt2-q8_0.gguf} \
    weights/train.sh ../shared/data/wikitext-2 random runs/full-dp-2026-12-04
