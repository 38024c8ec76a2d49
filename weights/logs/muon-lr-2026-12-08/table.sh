#!/bin/sh
# table.sh - the four 2,500-step runs of the Muon pilots (AdamW and Muon,
# peak lr 0.0025 in ../muon-pilot-2026-12-08, 0.005 here), one row each:
# validation loss of the raw parameters (first 65,536 tokens of valid.txt)
# at steps 500, 750, 1,000, 1,500, 2,000, 2,500; the test loss of the raw parameters in
# nats per token and as word perplexity (f32, all of test.txt); the
# trainer's rate (1 thread, evaluations excluded; the runs shared the
# machine with each other and, in parts, with a CI run, so the rates are
# rough). The average (0.999, every 4 steps) is still a running mean of
# the whole run at 2,500 steps and is not compared. The two lr-0.005 runs
# were stopped at steps 892 and 734 (SIGTERM: a clean stop with an
# evaluation) to free the machine for the session's CI run.
# Run from this folder, after copying the runs' train.csv, train.log and
# test-*.json into ../muon-pilot-2026-12-08/{adamw,muon} and ./{adamw,muon}:
#   sh table.sh > table.txt
set -eu
key() { sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p" "$1"; }
echo "# optimizer lr valid@500 valid@750 valid@1000 valid@1500 valid@2000 valid@2500 test_nats test_word_ppl tokens_per_s"
row() {
    d=$3
    nll=-; n=1; w=1
    if [ -f "$d/test-f32.json" ]; then
        nll=$(key $d/test-f32.json nll); n=$(key $d/test-f32.json tokens); w=$(key $d/test-f32.json words)
    fi
    awk -F, -v o="$1" -v lr="$2" -v nll="$nll" -v n="$n" -v w="$w" '
        function f(x) { return x == "" ? "-" : sprintf("%.4f", x) }
        NR > 1 { v[$1] = $3; tps = $5; last = $1 }
        END { printf "%s %s %s %s %s %s %s %s %s %s %.0f", o, lr, f(v[500]), f(v[750]), f(v[1000]), f(v[1500]), f(v[2000]),
                     f(v[2500]), nll == "-" ? "-" : sprintf("%.4f", nll / n), nll == "-" ? "-" : sprintf("%.2f", exp(nll / w)), tps
              if (last != 2500) printf " (stopped at step %d: valid %.4f)", last, v[last]
              printf "\n" }' "$d/train.csv"
}
row adamw 0.0025 ../muon-pilot-2026-12-08/adamw
row muon 0.0025 ../muon-pilot-2026-12-08/muon
row adamw 0.005 adamw
row muon 0.005 muon
