#!/bin/sh
# table.sh - one row per run: dropout, best validation loss of the
# parameters and of the average (65,536 tokens of valid.txt), test loss in
# nats/token of the parameters and of the average (f32), test word
# perplexity of both, and of the shipped q8_0 file (from the average).
# Dropout 0.1 is the budget study's s5000. Run from this folder:
#   sh table.sh > table.txt
set -eu
nll() { sed -n 's/.*"nll": \([0-9.e+-]*\).*/\1/p' "$1"; }
key() { sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p" "$1"; }
echo "# dropout valid_raw valid_avg test_raw test_avg word_ppl_raw word_ppl_avg word_ppl_q8_0"
row() {
    d=$2
    [ -f "$d/test-ema-f32.json" ] || return 0
    awk -F, -v dp="$1" -v tr="$(nll $d/test-f32.json)" -v ta="$(nll $d/test-ema-f32.json)" \
        -v tq="$(nll $d/test-q8_0.json)" -v n="$(key $d/test-f32.json tokens)" -v w="$(key $d/test-f32.json words)" '
        NR > 1 { if (vr == "" || $3 < vr) vr = $3; if (va == "" || $7 < va) va = $7 }
        END { printf "%s %.4f %.4f %.4f %.4f %.2f %.2f %.2f\n", dp, vr, va, tr / n, ta / n, exp(tr / w), exp(ta / w), exp(tq / w) }' \
        "$d/train.csv"
}
row 0.1 ../budget-2026-12-06/s5000
row 0.05 dp0.05
row 0 dp0
