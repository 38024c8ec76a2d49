#!/bin/sh
# weights/search.sh DATA_DIR [OUT_DIR] [MINUTES] - the recipe search before
# the shipped model's full run (weights/README.md, "Recipe search").
#
# The full run (weights/train.sh, 2 threads, 100 minutes) sees about 15
# passes over WikiText-2's 2.7M training tokens: the data-limited regime,
# where regularization decides the validation loss. A short run on the whole
# set would never reach that regime (2 passes in 13 minutes), so the grid
# trains on the first eighth of train.txt (~340k tokens; made in a temporary
# directory, never copied into the project) for MINUTES (13) on one thread
# each, two runs at a time: about 10 passes, the same regime at a sixth of
# the cost. Validation on the first 32,768 tokens of valid.txt, every 200
# steps; the schedule (--steps auto) fits each run's own budget, so every
# run ends its cosine decay. The shipped model's tokenizer is reused.
#
# Grid (all else as weights/train.sh):
#   d01       dropout 0.1, weight decay 0.1 (the previous shipped recipe)
#   d02       dropout 0.2
#   d03       dropout 0.3
#   d03-384x4 dropout 0.3, d_model 384 x 4 layers (d_ff 1536, 6 heads):
#             a wider, shallower model with the stronger dropout
# Each run leaves NAME.csv (step,train_loss,valid_loss,lr,tokens_per_s,
# elapsed_s) and NAME.log in OUT_DIR (default runs/search).
set -eu
data=${1:?usage: weights/search.sh DATA_DIR [OUT_DIR] [MINUTES]}
out=${2:-runs/search}
minutes=${3:-13}
synth=${SYNTH:-./synth}
tok=${TOKENIZER:-weights/synthesizer-wt2-q8_0.gguf}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
bytes=$(( $(wc -c < "$data/train.txt") / 8 ))
# the cut last line is dropped, so every line is whole
head -c "$bytes" "$data/train.txt" | sed '$d' > "$tmp/train.txt"
echo "search: $(wc -c < "$tmp/train.txt") bytes of $data/train.txt, $minutes min per run, 1 thread each"

run() {
    name=$1; shift
    $synth train --train "$tmp/train.txt" --valid "$data/valid.txt" --tokenizer "$tok" \
        -o "$out/$name.gguf" --name "search-$name" --variant random \
        --ctx 256 --batch 8 --seq 256 --steps auto --max-minutes "$minutes" \
        --lr 0.0015 --min-lr 0.0001 --warmup 150 --weight-decay 0.1 --clip 1.0 --synth-lr-mult 30 \
        --eval-every 200 --eval-tokens 32768 --ckpt-every 0 --seed 1 --threads 1 \
        --log "$out/$name.csv" "$@" 2> "$out/$name.log"
    rm -f "$out/$name.gguf" "$out/$name.gguf.state"
}
small="--d-model 256 --layers 6 --heads 4 --d-ff 1024"
# shellcheck disable=SC2086
{
    run d01 $small --dropout 0.1 &
    run d03 $small --dropout 0.3 &
    wait
    run d02 $small --dropout 0.2 &
    run d03-384x4 --d-model 384 --layers 4 --heads 6 --d-ff 1536 --dropout 0.3 &
    wait
}
for f in "$out"/*.csv; do
    printf '%-14s ' "$(basename "$f" .csv)"
    awk -F, 'NR > 1 { if (best == "" || $3 < best) best = $3; last = $0 } END {
        split(last, a, ","); printf "best valid %.4f  last train %.4f  steps %d  %.0f tok/s\n", best, a[2], a[1], a[5] }' "$f"
done
