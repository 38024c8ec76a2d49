#!/bin/sh
exec ./synth-train train --train ../../../shared/data/wikitext-2/train.txt --valid ../../../shared/data/wikitext-2/valid.txt \
  -o synthesizer-wt2-f32.gguf --name synthesizer-wt2 --variant random --vocab 8192 --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 \
  --batch 8 --seq 256 --steps 2400 --lr 0.0015 --min-lr 0.0001 --warmup 150 --weight-decay 0.1 --dropout 0.05 --clip 1.0 \
  --eval-every 200 --eval-tokens 49152 --ckpt-every 400 --seed 1 --max-minutes 96 --log train.csv
