#!/bin/sh
# issue 17: context 128 (16 x 128 tokens per step) and batch 16 (16 x 256,
# half the steps) against the shipped shape (8 x 256 tokens per step; its
# run is weights/logs/heads-2026-12-06/h4.*), side by side, one thread
# each, the shipped recipe (peak 2.5e-3, weight decay 0.3, R at 18x, seed
# 2) on a cosine over the same 1.84M tokens. Run from the repository root:
# weights/logs/ctx128-2026-12-06/command.sh DATA_DIR OUT_DIR
data=${1:?usage: command.sh DATA_DIR OUT_DIR}
out=${2:?usage: command.sh DATA_DIR OUT_DIR}
mkdir -p "$out"
common="--train $data/train.txt --valid $data/valid.txt --name p --variant random
    --tokenizer weights/synthesizer-wt2-q8_0.gguf --d-model 256 --layers 6 --heads 4 --d-ff 1024
    --lr 0.0025 --min-lr 0.0001 --weight-decay 0.3 --dropout 0.1 --clip 1.0 --synth-lr-mult 18
    --eval-tokens 32768 --ckpt-every 0 --seed 2 --threads 1"
OPENBLAS_CORETYPE=SkylakeX ${SYNTH:-./synth} train $common -o "$out/c128.gguf" --ctx 128 --batch 16 --seq 128 \
    --steps 900 --warmup 150 --eval-every 150 --log "$out/c128.csv" > "$out/c128.log" 2>&1 &
OPENBLAS_CORETYPE=SkylakeX ${SYNTH:-./synth} train $common -o "$out/b16.gguf" --ctx 256 --batch 16 --seq 256 \
    --steps 450 --warmup 75 --eval-every 75 --log "$out/b16.csv" > "$out/b16.log" 2>&1 &
wait
