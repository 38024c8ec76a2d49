#!/bin/sh
# The session-9 full run (2026-12-04): the shipped recipe with weight decay 0.3,
# 2 data-parallel shards on 2 threads, 100 minutes, the machine otherwise idle
# (binary of commit 3fcf475). From the project root:
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 \
    TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
    weights/train.sh ../shared/data/wikitext-2 random runs/full-wd03-2026-12-04
