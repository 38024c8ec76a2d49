#!/bin/sh
# issue 17: --r-tie 3 and --r-tie 30 against the shipped recipe (its run is
# weights/logs/heads-2026-12-06/h4.*), side by side, one thread each, the
# shipped recipe (peak 2.5e-3, weight decay 0.3, R at 18x, seed 2) on a
# 900-step cosine (1.84M tokens). Run from the repository root:
# weights/logs/rtie-2026-12-06/command.sh DATA_DIR OUT_DIR
data=${1:?usage: command.sh DATA_DIR OUT_DIR}
out=${2:?usage: command.sh DATA_DIR OUT_DIR}
mkdir -p "$out"
for x in 3 30; do
    OPENBLAS_CORETYPE=SkylakeX ${SYNTH:-./synth} train --train "$data/train.txt" --valid "$data/valid.txt" \
        -o "$out/t$x.gguf" --name p --variant random --tokenizer weights/synthesizer-wt2-q8_0.gguf \
        --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 --batch 8 --seq 256 --steps 900 \
        --lr 0.0025 --min-lr 0.0001 --warmup 150 --weight-decay 0.3 --dropout 0.1 --clip 1.0 \
        --synth-lr-mult 18 --r-tie $x --eval-every 150 --eval-tokens 32768 --ckpt-every 0 --seed 2 --threads 1 \
        --log "$out/t$x.csv" > "$out/t$x.log" 2>&1 &
done
wait
