#!/bin/sh
# bench/train_speed.sh DATA_DIR - training cost of every run of the
# experiments grid (same EXP_* environment as bench/experiments.sh), to size
# EXP_STEPS before starting it. The machine is shared, so wall-clock rates
# swing with other jobs; this measures tokens per CPU-second on one thread
# instead (CPU time of a 28-step run minus a 4-step run: setup and
# tokenizing cancel), and converts to a 2-core wall rate with the ratio of
# the shipped model's documented 2-core rate (REF_TPS, 1650 tok/s,
# weights/README.md) to its own CPU rate measured here the same way.
# Prints the estimated minutes per run and in total for EXP_STEPS steps
# (evaluations, scoring and the speed benchmark come on top).
# Takes about 15 minutes for the default grid.
set -eu
data=${1:?usage: bench/train_speed.sh DATA_DIR}
synth=${SYNTH:-./synth}
. "$(dirname "$0")/grid_defaults.sh"
ref_tps=${REF_TPS:-1650}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
"$synth" tokenizer-train --input "$data/train.txt" --vocab "$vocab" -o "$t/tok.gguf" >/dev/null 2>&1

cpu() { # steps variant L d layers heads ff batch -> user+sys seconds
    OPENBLAS_NUM_THREADS=1 SYNTH_THREADS=1 /usr/bin/time -f "%U %S" -o "$t/time" "$synth" train \
        --train "$data/train.txt" --valid "$data/valid.txt" --tokenizer "$t/tok.gguf" -o "$t/m.gguf" \
        --variant "$2" --ctx "$3" --d-model "$4" --layers "$5" --heads "$6" --d-ff "$7" --batch "$8" --seq "$3" \
        --steps "$1" --warmup 2 --eval-every 100000 --eval-tokens 4096 --ckpt-every 0 --ckpt "$t/m.state" \
        --threads 1 2>"$t/err" || { cat "$t/err" >&2; exit 1; }
    awk '{ print $1 + $2 }' "$t/time"
}
rate() { # variant L d layers heads ff batch -> tokens per CPU-second
    a=$(cpu 4 "$@"); b=$(cpu 28 "$@")
    awk -v a="$a" -v b="$b" -v n=$((24 * $7 * $2)) 'BEGIN { printf "%.0f", n / (b - a) }'
}
ref=$(rate random 256 256 6 4 1024 8)
echo "reference (shipped size d 256, 6 layers, L 256, batch 8): $ref tokens/CPU-s; 2-core rate $ref_tps tok/s documented"
echo "grid: d $d, $layers layers, $heads heads, d_ff $ff, vocab $vocab, $tps tokens/step, $steps steps"
printf '%-18s %5s %12s %14s %9s\n' variant ctx tok/CPU-s "est. tok/s" "est. min"
total=0
for L in $ctxs; do
    for v in $variants; do
        r=$(rate "$v" "$L" "$d" "$layers" "$heads" "$ff" $((tps / L)))
        line=$(awk -v r="$r" -v ref="$ref" -v rt="$ref_tps" -v n=$((steps * tps)) \
            'BEGIN { w = r * rt / ref; printf "%14.0f %9.1f", w, n / w / 60 }')
        printf '%-18s %5s %12s %s\n' "$v" "$L" "$r" "$line"
        total=$(echo "$line" | awk -v t="$total" '{ print t + $2 }')
    done
done
echo "total training: $total min (+ evaluations ~3%, scoring ~20 min, speed benchmark ~5 min)"
