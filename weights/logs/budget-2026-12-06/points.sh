#!/bin/sh
# points.sh - one row per complete-schedule run of the shipped recipe:
# steps, tokens (M; 2,048 per step), best validation loss of the
# parameters and of the average (65,536 tokens of valid.txt), test loss in
# nats/token of the parameters and of the average (f32), the better test
# loss, and its test word perplexity. The runs of this folder (s*/) and the
# shipped run (../full-ema-2026-12-05, 16,866 steps). Run from this folder:
#   sh points.sh > points.txt
set -eu
nll() { sed -n 's/.*"nll": \([0-9.e+-]*\).*/\1/p' "$1"; }
key() { sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p" "$1"; }
echo "# steps tokens_M valid_raw valid_avg test_raw test_avg test_best word_ppl_best"
for d in s1250 s2500 s5000 s8433 ../full-ema-2026-12-05; do
    [ -f "$d/test-ema-f32.json" ] || continue
    awk -F, -v tr="$(nll $d/test-f32.json)" -v ta="$(nll $d/test-ema-f32.json)" \
        -v n="$(key $d/test-f32.json tokens)" -v w="$(key $d/test-f32.json words)" '
        NR > 1 { s = $1; if (vr == "" || $3 < vr) vr = $3; if (va == "" || $7 < va) va = $7 }
        END { b = tr < ta ? tr : ta
              printf "%d %.3f %.4f %.4f %.4f %.4f %.4f %.2f\n", s, s * 2048 / 1e6, vr, va, tr / n, ta / n, b / n, exp(b / w) }' \
        "$d/train.csv"
done
