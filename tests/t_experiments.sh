#!/bin/sh
# t_experiments.sh - the comparison grid's scripts end to end on a tiny
# grid (2 variants x 2 contexts, a few steps, generated text): every run
# finishes with its logs and test scores; two jobs (EXP_JOBS=2) give exactly
# the results of one job (single-threaded both, so bitwise); a second call
# skips finished runs; a grid with other settings is refused; bad EXP_JOBS
# is an error; bench/report.sh builds the tables and figures. Uses $SYNTH.
set -u
. "$(dirname "$0")/lib.sh"
SYNTH=$(realpath "$SYNTH")

# a text with some variety (a fixed LCG over a word list)
mkdir -p "$T/data"
awk 'BEGIN { split("the a model of attention is random matrix and learns to mix values over positions in context when it was", w, " ");
             x = 7; for (l = 0; l < 400; l++) { s = ""; for (i = 0; i < 12; i++) { x = (x * 1103515245 + 12345) % 2147483648;
             s = s (i ? " " : "") w[1 + int(x / 65536) % 20] } print s } }' > "$T/data/train.txt"
head -n 80 "$T/data/train.txt" > "$T/data/valid.txt"
tail -n 80 "$T/data/train.txt" > "$T/data/test.txt"

grid() { # OUT_DIR JOBS: the tiny grid
    EXP_JOBS=$2 EXP_THREADS=1 EXP_VARIANTS="random vanilla" EXP_CTXS="16 32" EXP_D=16 EXP_LAYERS=1 EXP_HEADS=2 \
        EXP_FF=32 EXP_VOCAB=300 EXP_TOKENS_PER_STEP=128 EXP_STEPS=12 EXP_WARMUP=2 EXP_EVAL_EVERY=6 \
        EXP_EVAL_TOKENS=256 EXP_CKPT_EVERY=6 EXP_BENCH=0 SYNTH=$SYNTH bench/experiments.sh "$T/data" "$1"
}

check "grid, two jobs" grid "$T/two" 2
check "grid, one job" grid "$T/one" 1
for run in random-L16 vanilla-L16 random-L32 vanilla-L32; do
    for f in "$run.done" "$run.csv" "$run.log" "$run-test-f32.json" "$run-test-q8_0.json" "$run-info.txt"; do
        [ -s "$T/two/$f" ] || bad "two jobs: $f missing"
    done
    # last evaluation at the last step; test scores on every token
    [ "$(tail -n 1 "$T/two/$run.csv" | cut -d, -f1)" = 12 ] && ok "$run: trained to step 12" || bad "$run: trained to step 12"
    grep -q '"word_perplexity": [0-9]' "$T/two/$run-test-f32.json" && ok "$run: test scored" || bad "$run: test scored"
    # the same losses and test NLL whether it ran in a job of two or alone
    cut -d, -f1-3 "$T/two/$run.csv" > "$T/a"; cut -d, -f1-3 "$T/one/$run.csv" > "$T/b"
    cmp -s "$T/a" "$T/b" && ok "$run: two jobs == one job (losses)" || bad "$run: two jobs == one job (losses)"
    cmp -s "$T/two/$run-test-q8_0.json" "$T/one/$run-test-q8_0.json" && ok "$run: two jobs == one job (test score)" ||
        { bad "$run: two jobs == one job (test score)"; cat "$T/two/$run-test-q8_0.json" "$T/one/$run-test-q8_0.json"; }
done

check "second call skips finished runs" grid "$T/two" 2
grep -q "random-L16: done, skipped" "$T/err" && ok "skip message" || bad "skip message"
check_fail "another grid into the same folder" 2 "another grid" env EXP_STEPS=13 EXP_VARIANTS="random vanilla" \
    EXP_CTXS="16 32" EXP_D=16 EXP_LAYERS=1 EXP_HEADS=2 EXP_FF=32 EXP_VOCAB=300 EXP_TOKENS_PER_STEP=128 EXP_WARMUP=2 \
    EXP_EVAL_EVERY=6 EXP_EVAL_TOKENS=256 EXP_CKPT_EVERY=6 SYNTH=$SYNTH bench/experiments.sh "$T/data" "$T/two"
check_fail "bad EXP_JOBS" 2 "EXP_JOBS" env EXP_JOBS=two SYNTH=$SYNTH bench/experiments.sh "$T/data" "$T/x"

if command -v gnuplot >/dev/null; then
    check "report" env SYNTH=$SYNTH TEXT="$T/data/test.txt" bench/report.sh "$T/two"
    grep -q "random" "$T/two/RESULTS.md" && ok "report table" || bad "report table"
    n=$(ls "$T/two/figures/"*.png 2>/dev/null | wc -l)
    [ "$n" -ge 4 ] && ok "report figures ($n PNG)" || bad "report figures ($n PNG)"
else
    bad "gnuplot missing (.ci/deps.sh --all installs gnuplot-nox)"
fi

echo "$pass passed, $fail failed"
