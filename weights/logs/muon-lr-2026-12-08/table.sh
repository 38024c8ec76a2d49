#!/bin/sh
# table.sh - the four 2,500-step runs of the Muon pilots (AdamW and Muon,
# peak lr 0.0025 in ../muon-pilot-2026-12-08, 0.005 here), one row each:
# validation loss of the raw parameters (first 65,536 tokens of valid.txt)
# at steps 500, 1,000, ..., 2,500; the test loss of the raw parameters in
# nats per token and as word perplexity (f32, all of test.txt); the
# trainer's rate (1 thread, evaluations excluded; the runs shared the
# machine with each other and, in parts, with a CI run, so the rates are
# rough). The average (0.999, every 4 steps) is still a running mean of
# the whole run at 2,500 steps and is not compared.
# Run from this folder, after copying the runs' train.csv, train.log and
# test-*.json into ../muon-pilot-2026-12-08/{adamw,muon} and ./{adamw,muon}:
#   sh table.sh > table.txt
set -eu
key() { sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p" "$1"; }
echo "# optimizer lr valid@500 valid@1000 valid@1500 valid@2000 valid@2500 test_nats test_word_ppl tokens_per_s"
row() {
    d=$3
    [ -f "$d/test-f32.json" ] || { echo "$1 $2 (not finished)"; return 0; }
    awk -F, -v o="$1" -v lr="$2" -v nll="$(key $d/test-f32.json nll)" -v n="$(key $d/test-f32.json tokens)" \
        -v w="$(key $d/test-f32.json words)" '
        NR > 1 { v[$1] = $3; tps = $5 }
        END { printf "%s %s %.4f %.4f %.4f %.4f %.4f %.4f %.2f %.0f\n", o, lr, v[500], v[1000], v[1500], v[2000],
                     v[2500], nll / n, exp(nll / w), tps }' "$d/train.csv"
}
row adamw 0.0025 ../muon-pilot-2026-12-08/adamw
row muon 0.0025 ../muon-pilot-2026-12-08/muon
row adamw 0.005 adamw
row muon 0.005 muon
