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
for h in 4 16; do
    weights/pilot.sh "$data" "$out" h$h --heads $h &
done
wait
