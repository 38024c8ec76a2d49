#!/bin/sh
# sh weights/logs/full-geglu-2026-12-07/diff.sh [TRAIN_CSV] (from the
# repository root): validation loss of the GEGLU run minus the shipped
# run's (full-ema-2026-12-05) at equal steps, for the weight average and
# the raw parameters (nats per token, first 65,536 tokens of valid.txt).
csv=${1:-weights/logs/full-geglu-2026-12-07/train.csv}
awk -F, 'NR == FNR { if (FNR > 1) { p[$1] = $3; a[$1] = $7 } next }
         FNR > 1 && ($1 in p) { printf "step %6d  average %.4f - %.4f = %+.4f   parameters %.4f - %.4f = %+.4f\n",
                                $1, $7, a[$1], $7 - a[$1], $3, p[$1], $3 - p[$1] }' \
    weights/logs/full-ema-2026-12-05/train.csv "$csv"
