#!/bin/sh
# weights/pilot.sh DATA_DIR OUT_DIR NAME [synth train flags...] - one short
# recipe pilot (issue 17): the shipped random recipe (peak 2.5e-3, weight
# decay 0.3, R at 18x, seed 2) on a 900-step cosine of 8 x 256 tokens
# (1.84M), one thread, validation on the first 32,768 tokens of valid.txt
# every 150 steps. The flags given override the recipe's (the last of a
# repeated flag wins), e.g. --heads 16 or --ctx 128 --batch 16 --seq 128.
# Writes OUT_DIR/NAME.gguf, NAME.csv and NAME.log. Run from the repository
# root; the weights/logs/*-2026-12-06/command.sh pilots run two at a time.
set -eu
data=${1:?usage: weights/pilot.sh DATA_DIR OUT_DIR NAME [flags...]}
out=${2:?usage: weights/pilot.sh DATA_DIR OUT_DIR NAME [flags...]}
name=${3:?usage: weights/pilot.sh DATA_DIR OUT_DIR NAME [flags...]}
shift 3
mkdir -p "$out"
OPENBLAS_CORETYPE=SkylakeX ${SYNTH:-./synth} train --train "$data/train.txt" --valid "$data/valid.txt" \
    -o "$out/$name.gguf" --name p --variant random --tokenizer weights/synthesizer-wt2-q8_0.gguf \
    --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 --batch 8 --seq 256 --steps 900 \
    --lr 0.0025 --min-lr 0.0001 --warmup 150 --weight-decay 0.3 --dropout 0.1 --clip 1.0 \
    --synth-lr-mult 18 --eval-every 150 --eval-tokens 32768 --ckpt-every 0 --seed 2 --threads 1 \
    --log "$out/$name.csv" "$@" > "$out/$name.log" 2>&1
