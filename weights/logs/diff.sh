#!/bin/sh
# sh weights/logs/diff.sh RUN_DIR REF_DIR (from the repository root):
# validation loss (nats per token, first 65,536 tokens of valid.txt) of
# RUN_DIR minus REF_DIR's, for the weight average and the raw parameters, at
# equal fractions of each run's cosine schedule: RUN_DIR's step t of N2
# against REF_DIR's step t x N1 / N2, linearly interpolated between its
# evaluations (every 250 steps). At equal fractions both runs have the same
# learning rate. Each directory holds train.csv and train.log as
# weights/train.sh writes them. Used by weights/logs/curves.gp and the model
# card's full-run sections.
[ $# -eq 2 ] || { echo "usage: sh weights/logs/diff.sh RUN_DIR REF_DIR" >&2; exit 2; }
dir=$1; ref=$2
total() { sed -n 's/^synth train: \([0-9]*\) steps,.*/\1/p' "$1/train.log" | tail -1; }
n1=$(total "$ref"); n2=$(total "$dir")
[ -n "$n1" ] && [ -n "$n2" ] || { echo "diff.sh: a run has no final 'synth train: N steps' line" >&2; exit 1; }
awk -F, -v n1="$n1" -v n2="$n2" '
    NR == FNR { if (FNR > 1) { k++; s[k] = $1; p[k] = $3; a[k] = $7 } next }
    FNR > 1 {
        x = $1 * n1 / n2
        if (x < s[1] || x > s[k]) next
        for (i = 1; i < k && s[i + 1] < x; i++) ;
        w = (s[i + 1] > s[i]) ? (x - s[i]) / (s[i + 1] - s[i]) : 0
        ra = a[i] + w * (a[i + 1] - a[i]); rp = p[i] + w * (p[i + 1] - p[i])
        printf "step %6d (%.3f of %d; reference step %7.1f)  average %.4f - %.4f = %+.4f   parameters %.4f - %.4f = %+.4f\n",
               $1, $1 / n2, n2, x, $7, ra, $7 - ra, $3, rp, $3 - rp
    }' "$ref/train.csv" "$dir/train.csv"
