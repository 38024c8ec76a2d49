#!/bin/sh
# weights/grid.sh DATA_DIR [OUT_DIR] [MINUTES] - the full-data recipe grid
# of issue 17 (weights/README.md, "Full-data recipe grid"): four recipes,
# each trained on all of DATA_DIR/train.txt for MINUTES (38) of one core,
# two at a time on the two cores (so the two runs of a pair share the
# machine alike), with the shipped recipe (weights/train.sh) changed in
# one respect each:
#   base       the shipped recipe: d 256 x 6, dropout 0.1, context 256
#   wide       d 384 x 4 (6 heads, d_ff 1536; ~1.5x the FLOPs per token)
#              with dropout 0.15: a wider model, more regularized
#   ctx512     context 512 (batch 4 x 512: the same tokens per step);
#              the random variant's cost grows least with context
#   wd03       weight decay 0.3 (AdamW, weight matrices) instead of 0.1
# --steps auto fits each run's cosine schedule to its own budget; the
# shipped tokenizer is reused; validation on the first 65,536 tokens of
# valid.txt every 250 steps. Each run leaves NAME.csv (step, train_loss,
# valid_loss, lr, tokens_per_s, elapsed_s), NAME.log and NAME-f32.gguf in
# OUT_DIR (default runs/grid), and NAME-test.json, its test score.
# The machine must be otherwise idle: the budget is wall-clock minutes.
# On an AMD EPYC whose OpenBLAS picks Haswell kernels, run it with
# OPENBLAS_CORETYPE=SkylakeX (the AVX-512 sgemm; see weights/train.sh).
set -eu
data=${1:?usage: weights/grid.sh DATA_DIR [OUT_DIR] [MINUTES]}
out=${2:-runs/grid}
minutes=${3:-38}
synth=${SYNTH:-./synth}
tok=${TOKENIZER:-weights/synthesizer-wt2-q8_0.gguf}
mkdir -p "$out"

run() {
    name=$1; shift
    $synth train --train "$data/train.txt" --valid "$data/valid.txt" --tokenizer "$tok" \
        -o "$out/$name-f32.gguf" --name "synthesizer-wt2-$name" --variant random --vocab 8192 \
        --steps auto --max-minutes "$minutes" --lr 0.0015 --min-lr 0.0001 --warmup 150 \
        --clip 1.0 --synth-lr-mult 30 --eval-every 250 --eval-tokens 65536 --ckpt-every 500 \
        --seed 1 --threads 1 --shards 1 --log "$out/$name.csv" "$@" 2>"$out/$name.log"
    $synth score -m "$out/$name-f32.gguf" --json "$data/test.txt" > "$out/$name-test.json"
}

base="--d-model 256 --layers 6 --heads 4 --d-ff 1024"
run base $base --ctx 256 --batch 8 --seq 256 --dropout 0.1 --weight-decay 0.1 &
run wide --d-model 384 --layers 4 --heads 6 --d-ff 1536 --ctx 256 --batch 8 --seq 256 \
    --dropout 0.15 --weight-decay 0.1 &
wait
run ctx512 $base --ctx 512 --batch 4 --seq 512 --dropout 0.1 --weight-decay 0.1 &
run wd03 $base --ctx 256 --batch 8 --seq 256 --dropout 0.1 --weight-decay 0.3 &
wait
echo "grid done: $out"
