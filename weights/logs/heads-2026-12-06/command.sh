#!/bin/sh
# issue 17: do more heads help the random synthesizer? Its attention is a
# fixed mix of positions per head (softmax(R_h)), so the head count is the
# number of distinct mixes a layer can apply, at the same FLOPs per token.
# Two short runs side by side, one thread each, the shipped recipe (peak
# 2.5e-3, weight decay 0.3, R at 18x, seed 2) on a 900-step cosine, heads 4
# (the shipped shape, d_head 64) against heads 16 (d_head 16). Run from the
# repository root: weights/logs/heads-2026-12-06/command.sh DATA_DIR OUT_DIR
data=${1:?usage: command.sh DATA_DIR OUT_DIR}
out=${2:?usage: command.sh DATA_DIR OUT_DIR}
mkdir -p "$out"
for h in 4 16; do
    OPENBLAS_CORETYPE=SkylakeX ${SYNTH:-./synth} train --train "$data/train.txt" --valid "$data/valid.txt" \
        -o "$out/h$h.gguf" --name p --variant random --tokenizer weights/synthesizer-wt2-q8_0.gguf \
        --ctx 256 --d-model 256 --layers 6 --heads $h --d-ff 1024 --batch 8 --seq 256 --steps 900 \
        --lr 0.0025 --min-lr 0.0001 --warmup 150 --weight-decay 0.3 --dropout 0.1 --clip 1.0 \
        --synth-lr-mult 18 --eval-every 150 --eval-tokens 32768 --ckpt-every 0 --seed 2 --threads 1 \
        --log "$out/h$h.csv" > "$out/h$h.log" 2>&1 &
done
wait
