#!/bin/sh
# issue 17: context 128 (16 x 128 tokens per step) and batch 16 (16 x 256,
# half the steps) against the shipped shape (8 x 256 tokens per step; its
# run is weights/logs/heads-2026-12-06/h4.*), side by side, one thread
# each, the shipped recipe (peak 2.5e-3, weight decay 0.3, R at 18x, seed
# 2) on a cosine over the same 1.84M tokens. Run from the repository root:
# weights/logs/ctx128-2026-12-06/command.sh DATA_DIR OUT_DIR
data=${1:?usage: command.sh DATA_DIR OUT_DIR}
out=${2:?usage: command.sh DATA_DIR OUT_DIR}
weights/pilot.sh "$data" "$out" c128 --ctx 128 --batch 16 --seq 128 &
weights/pilot.sh "$data" "$out" b16 --batch 16 --steps 450 --warmup 75 --eval-every 75 &
wait
