#!/bin/sh
# t_train.sh - `synth train` end to end on a tiny model: a run split by
# --resume gives the same final training state file as a straight run,
# resume refuses other model flags or a corrupted state, --steps auto with
# --max-minutes, 1 and 2 threads give the same bits, --ema adds a scored
# average without changing the training, and the flag errors name the
# flag; weights/train.sh (the recipe script) runs end to end. Uses $SYNTH.
set -u
. "$(dirname "$0")/lib.sh"

for i in $(seq 1 60); do
    echo "line $i: the quick brown fox jumps over the lazy dog, and the cat sat on the mat."
done > "$T/text.txt"
TINY="--train $T/text.txt --valid $T/text.txt --vocab 300 --ctx 16 --d-model 16 --layers 2 --heads 2 --d-ff 32 --batch 2 --seq 16 --warmup 4 --eval-every 10 --threads 1"

check "straight 30 steps" $SYNTH train $TINY -o "$T/a.gguf" --steps 30 --ckpt "$T/a.state" --log "$T/a.csv"
check "first 20 steps" $SYNTH train $TINY -o "$T/b.gguf" --steps 30 --stop-at 20 --ckpt "$T/b.state" --log "$T/b.csv"
cp "$T/b.state" "$T/b20.state"
check "resume 20 -> 30" $SYNTH train $TINY -o "$T/b.gguf" --steps 30 --resume "$T/b20.state" --ckpt "$T/b.state" \
    --log "$T/b.csv"
# step, train_loss, valid_loss of every evaluation (not the timings)
cut -d, -f1-3 "$T/a.csv" > "$T/a3"; cut -d, -f1-3 "$T/b.csv" > "$T/b3"
cmp -s "$T/a3" "$T/b3" && ok "resumed losses == straight losses" || { bad "resumed losses == straight losses"; cat "$T/a3" "$T/b3"; }
cmp -s "$T/a.gguf" "$T/b.gguf" && ok "resumed checkpoint == straight checkpoint" || bad "resumed checkpoint == straight checkpoint"
# two threads run the two data-parallel shards at once: the same bits
check "straight 30 steps, 2 threads" $SYNTH train $TINY --threads 2 -o "$T/t2.gguf" --steps 30 --ckpt "$T/t2.state" \
    --log "$T/t2.csv"
cut -d, -f1-3 "$T/t2.csv" > "$T/t23"
cmp -s "$T/a3" "$T/t23" && cmp -s "$T/a.gguf" "$T/t2.gguf" && ok "2 threads == 1 thread (losses, checkpoint)" ||
    bad "2 threads == 1 thread (losses, checkpoint)"
check "resume with the checkpoint's tokenizer" $SYNTH train $TINY -o "$T/c.gguf" --steps 30 --resume "$T/b20.state" \
    --ckpt "$T/c.state" --tokenizer "$T/a.gguf" --log "$T/c.csv"
tail -n 1 "$T/c.csv" | cut -d, -f1-3 > "$T/c3"; tail -n 1 "$T/a3" > "$T/a1"
cmp -s "$T/a1" "$T/c3" && ok "same losses with --tokenizer" || bad "same losses with --tokenizer"
check_fail "resume with other --shards" 2 "trained with \-\-shards 2, not 1" $SYNTH train $TINY --shards 1 \
    -o "$T/x.gguf" --steps 30 --resume "$T/b20.state"
check_fail "resume with other sizes" 1 "hyperparameters differ" $SYNTH train $TINY --d-ff 64 -o "$T/x.gguf" \
    --steps 30 --resume "$T/b.state"
head -n 30 "$T/text.txt" > "$T/half.txt"
check_fail "resume with other data" 1 "data differ" $SYNTH train $TINY --train "$T/half.txt" -o "$T/x.gguf" \
    --steps 30 --resume "$T/b20.state" --tokenizer "$T/a.gguf"
head -c 1000 "$T/b.state" > "$T/trunc.state"
check_fail "resume truncated state" 1 "truncated" $SYNTH train $TINY -o "$T/x.gguf" --steps 30 --resume "$T/trunc.state"
check_fail "resume a text file" 1 "magic" $SYNTH train $TINY -o "$T/x.gguf" --steps 30 --resume "$T/text.txt"
check "straight 30 steps with --ema" $SYNTH train $TINY -o "$T/e.gguf" --steps 30 --ckpt "$T/e.state" \
    --log "$T/e.csv" --ema 0.9 --ema-every 2 --ema-out "$T/e-avg.gguf"
head -n 1 "$T/e.csv" | grep -q ',valid_loss_ema$' && ok "CSV has valid_loss_ema" || bad "CSV has valid_loss_ema"
cut -d, -f1-3 "$T/e.csv" > "$T/e3"
cmp -s "$T/a3" "$T/e3" && ok "--ema leaves the losses unchanged" || { bad "--ema leaves the losses unchanged"; cat "$T/a3" "$T/e3"; }
cmp -s "$T/a.gguf" "$T/e.gguf" && ok "--ema leaves the checkpoint unchanged" || bad "--ema leaves the checkpoint unchanged"
check "the average loads" $SYNTH info "$T/e-avg.gguf"
cmp -s "$T/e.gguf" "$T/e-avg.gguf" && bad "the average differs from the parameters" || ok "the average differs from the parameters"
check_fail "resume an --ema state without it" 2 "with \-\-ema" $SYNTH train $TINY -o "$T/x.gguf" --steps 40 \
    --resume "$T/e.state"
check_fail "--ema without --ema-out" 2 "\-\-ema-out" $SYNTH train $TINY -o "$T/x.gguf" --ema 0.9
check_fail "bad --ema" 2 "\-\-ema" $SYNTH train $TINY -o "$T/x.gguf" --ema 1 --ema-out "$T/y.gguf"
check "steps auto" $SYNTH train $TINY -o "$T/auto.gguf" --steps auto --max-minutes 0.05
check_fail "auto needs budget" 2 "max-minutes" $SYNTH train $TINY -o "$T/x.gguf" --steps auto
check_fail "seq > ctx" 2 "\-\-seq" $SYNTH train $TINY -o "$T/x.gguf" --seq 17
check_fail "bad variant" 2 "\-\-variant" $SYNTH train $TINY -o "$T/x.gguf" --variant nope
check_fail "more shards than sequences" 2 "\-\-shards" $SYNTH train $TINY -o "$T/x.gguf" --shards 3
check_fail "bad dropout" 2 "\-\-dropout" $SYNTH train $TINY -o "$T/x.gguf" --dropout 1
check_fail "bad word dropout" 2 "\-\-word-dropout" $SYNTH train $TINY -o "$T/x.gguf" --word-dropout 1
check "word dropout" $SYNTH train $TINY -o "$T/wd.gguf" --word-dropout 0.2
check_fail "missing valid" 2 "\-\-valid" $SYNTH train --train "$T/text.txt" -o "$T/x.gguf"
check_fail "fd a*b != L" 2 "factorized_dense" $SYNTH train $TINY -o "$T/x.gguf" --variant factorized_dense --fd-a 3 --fd-b 4
check_fail "tokenizer not gguf" 1 "\-\-tokenizer" $SYNTH train $TINY -o "$T/x.gguf" --tokenizer "$T/text.txt"
# weights/train.sh, the recipe of the shipped models, end to end on a tiny
# shape: STEPS fixes the schedule; with EMA the quantized files are made from
# the average, and all five are scored on test.txt; LATE_DECAY and
# LATE_DECAY_START reach the trainer as flags it accepts
mkdir -p "$T/wt"
cp "$T/text.txt" "$T/wt/train.txt"; cp "$T/text.txt" "$T/wt/valid.txt"; head -n 10 "$T/text.txt" > "$T/wt/test.txt"
check "weights/train.sh on a tiny shape" env SYNTH="$SYNTH" THREADS=1 MINUTES=0 STEPS=12 CTX=16 BATCH=2 EMA=0.9 \
    LATE_DECAY=0.5 LATE_DECAY_START=0.5 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf SHAPE="--d-model 32 --layers 1 --heads 2 --d-ff 64" \
    sh weights/train.sh "$T/wt" random "$T/wo"
[ "$(tail -n 1 "$T/wo/train.csv" | cut -d, -f1)" = 12 ] && ok "train.sh: STEPS=12 ran 12 steps" ||
    bad "train.sh: STEPS=12 ran 12 steps"
nll() { sed -n 's/.*"nll": \([0-9.e+-]*\).*/\1/p' "$T/wo/test-$1.json"; }
n=0; for q in f32 ema-f32 q8_0 q4_0 q4_0-pure; do [ -n "$(nll $q)" ] && n=$((n + 1)); done
[ $n -eq 5 ] && ok "train.sh: five test scores" || bad "train.sh: five test scores ($n)"
awk -v f="$(nll f32)" -v e="$(nll ema-f32)" -v q="$(nll q8_0)" \
    'BEGIN { d = q - e; if (d < 0) d = -d; g = q - f; if (g < 0) g = -g; exit !(d < 0.001 * e && d < g) }' &&
    ok "train.sh: q8_0 is the average's (nll within 0.1% of it)" || bad "train.sh: q8_0 is the average's"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
