#!/bin/sh
# issue 17: --r-tie 3 and --r-tie 30 against the shipped recipe (its run is
# weights/logs/heads-2026-12-06/h4.*), side by side, one thread each, the
# shipped recipe (peak 2.5e-3, weight decay 0.3, R at 18x, seed 2) on a
# 900-step cosine (1.84M tokens). Run from the repository root:
# weights/logs/rtie-2026-12-06/command.sh DATA_DIR OUT_DIR
data=${1:?usage: command.sh DATA_DIR OUT_DIR}
out=${2:?usage: command.sh DATA_DIR OUT_DIR}
for x in 3 30; do
    weights/pilot.sh "$data" "$out" t$x --r-tie $x &
done
wait
