#!/bin/sh
# The exact training command of synthesizer-wt2 (weights/README.md), run from the
# repository root by weights/train.sh with the synth binary of commit
# 2c29a05, at the same time as the other run of the pair (random and
# vanilla, one OpenBLAS thread each), on 2026-11-28 11:13-12:48 UTC.
OPENBLAS_CORETYPE=SkylakeX exec ./synth train --train ../shared/data/wikitext-2/train.txt --valid ../shared/data/wikitext-2/valid.txt \
  -o runs/s2-random/synthesizer-wt2-f32.gguf --name synthesizer-wt2 --variant random \
  --vocab 8192 --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 --batch 8 --seq 256 --steps auto --max-minutes 95 \
  --lr 0.0015 --min-lr 0.0001 --warmup 150 --weight-decay 0.1 --dropout 0.1 --clip 1.0 --synth-lr-mult 30 \
  --eval-every 250 --eval-tokens 65536 --ckpt-every 500 --seed 1 --log runs/s2-random/train.csv --threads 1
