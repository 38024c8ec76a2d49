#!/bin/sh
# The exact training command of synthesizer-wt2-random_vanilla (weights/README.md),
# run from the repository root by `weights/train.sh DATA random+vanilla`
# (THREADS=1) with the synth binary of commit deb5f11 (no engine or trainer
# change since), alone on one core on 2026-11-28 14:18-15:50 UTC while the
# other core ran the seed-2 comparison runs (bench/experiments-seed2) and
# the speed benchmark.
OPENBLAS_CORETYPE=SkylakeX exec ./synth train --train ../shared/data/wikitext-2/train.txt --valid ../shared/data/wikitext-2/valid.txt \
  -o runs/random_vanilla/synthesizer-wt2-random_vanilla-f32.gguf --name synthesizer-wt2-random_vanilla --variant random+vanilla \
  --vocab 8192 --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 --batch 8 --seq 256 --steps auto --max-minutes 95 \
  --lr 0.0015 --min-lr 0.0001 --warmup 150 --weight-decay 0.1 --dropout 0.1 --clip 1.0 --synth-lr-mult 30 \
  --eval-every 250 --eval-tokens 65536 --ckpt-every 500 --seed 1 --log runs/random_vanilla/train.csv --threads 1
