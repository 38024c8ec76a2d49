#!/bin/sh
# t_cli.sh - the synth command line end to end: train a tiny model on the
# repository's own README text, then info, quantize, score, generate, and the
# errors for bad flags and bad files. Uses $SYNTH (default ./synth).
set -u
. "$(dirname "$0")/lib.sh"

cat README.md weights/README.md > "$T/text.txt"
check "tokenizer-train" $SYNTH tokenizer-train --input "$T/text.txt" --vocab 400 -o "$T/tok.gguf"
check "train tiny" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" --tokenizer "$T/tok.gguf" \
    -o "$T/m.gguf" --ctx 32 --d-model 32 --layers 2 --heads 2 --d-ff 64 --batch 4 --seq 32 \
    --steps 40 --warmup 5 --eval-every 20 --dropout 0 --log "$T/log.csv"
check "train log has two evaluations" test "$(wc -l < "$T/log.csv")" -eq 3
check "info" $SYNTH info "$T/m.gguf"
grep -q "variant  *random" "$T/out" && ok "info names the variant" || bad "info names the variant"
for q in f16 q8_0 q4_0; do
    check "quantize $q" $SYNTH quantize "$T/m.gguf" "$T/m-$q.gguf" --type $q
    $SYNTH info "$T/m-$q.gguf" | grep -q "quantization  *$q" && ok "info shows $q" || bad "info shows $q"
done
check "quantize q4_0, token embedding q8_0" $SYNTH quantize "$T/m.gguf" "$T/m-q4m.gguf" --type q4_0 \
    --token-embedding-type q8_0
$SYNTH info "$T/m-q4m.gguf" | grep -q "quantization  *mixed" && ok "info shows mixed" || bad "info shows mixed"

check "score --json f32" $SYNTH score -m "$T/m.gguf" --json "$T/text.txt"
cp "$T/out" "$T/s32.json"
check "score --json q8_0" $SYNTH score -m "$T/m-q8_0.gguf" --json "$T/text.txt"
cp "$T/out" "$T/s8.json"
python3 - "$T/s32.json" "$T/s8.json" <<'PY' && ok "score keys, q8_0 within 1% of f32" || bad "score keys, q8_0 within 1% of f32"
import json, sys, math
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("tokens", "nll", "perplexity", "word_perplexity", "bits_per_byte"):
    assert k in a, k
assert a["tokens"] == b["tokens"] > 0
assert abs(math.exp(a["nll"] / a["tokens"]) - a["perplexity"]) < 1e-6 * a["perplexity"]
assert abs(b["perplexity"] / a["perplexity"] - 1) < 0.01, (a, b)
PY

check "generate seed 7" $SYNTH generate -m "$T/m.gguf" -p "The model" -n 20 --seed 7 --temp 0.8
cp "$T/out" "$T/g1"
check "generate seed 7 again" $SYNTH generate -m "$T/m.gguf" -p "The model" -n 20 --seed 7 --temp 0.8
cmp -s "$T/out" "$T/g1" && ok "same seed, same text" || bad "same seed, same text"
# a prompt that starts with the end-of-text text gets no second one
check "generate after <|endoftext|>" $SYNTH generate -m "$T/m.gguf" -p "<|endoftext|>The model" -n 20 --seed 7 --temp 0.8
{ printf '<|endoftext|>'; cat "$T/g1"; } | cmp -s - "$T/out" && ok "leading <|endoftext|>, same tokens" ||
  bad "leading <|endoftext|>, same tokens"
check "generate greedy" $SYNTH generate -m "$T/m.gguf" -p "The model" -n 20 --temp 0
# --stop (model/gen.h, the server's rule): the same sampled text (seed 7),
# cut before the first occurrence of the stop string in the generated part
stop=$(python3 -c "
import sys
t = open(sys.argv[1], 'rb').read()[len(b'The model'):]
print(next(t[i:i + 2].decode() for i in range(2, len(t)) if all(33 <= c < 127 for c in t[i:i + 2])))" "$T/g1")
check "generate seed 7 --stop" $SYNTH generate -m "$T/m.gguf" -p "The model" -n 20 --seed 7 --temp 0.8 --stop "$stop"
python3 - "$T/g1" "$T/out" "$stop" <<'PY' && ok "--stop cuts the text before '$stop'" || bad "--stop cuts the text before '$stop'"
import sys
full = open(sys.argv[1], 'rb').read()[len(b'The model'):]
got = open(sys.argv[2], 'rb').read()[len(b'The model'):]
stop = sys.argv[3].encode()
# synth generate ends its output with one newline
assert got == full[:full.index(stop)] + b'\n', (full, got, stop)
PY
grep -q "stop: stop" "$T/err" && ok "--stop reported as the stop reason" || bad "--stop reported as the stop reason"
check_fail "empty --stop" 2 "\-\-stop" $SYNTH generate -m "$T/m.gguf" -p x --stop ""

# kernel levels: SYNTH_CPU forces one for every command; scores agree
check "info at scalar" env SYNTH_CPU=scalar $SYNTH info "$T/m.gguf"
grep -q "^kernels  *scalar (best on this CPU: " "$T/out" && ok "info names the forced level" || bad "info names the forced level"
check "score --json at scalar" env SYNTH_CPU=scalar $SYNTH score -m "$T/m-q8_0.gguf" --json "$T/text.txt"
python3 - "$T/s8.json" "$T/out" <<'PY' && ok "scalar kernels score as the best level (1e-5)" || bad "scalar kernels score as the best level (1e-5)"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a["tokens"] == b["tokens"] and abs(b["nll"] / a["nll"] - 1) < 1e-5, (a, b)
PY
# value cache precision: f16 by default (as the server), f32 by flag or
# $SYNTH_CACHE_TYPE; the two differ, but by rounding only
check "score --cache-type f32" $SYNTH score -m "$T/m-q8_0.gguf" --json --cache-type f32 "$T/text.txt"
cp "$T/out" "$T/s8-f32.json"
check "score SYNTH_CACHE_TYPE=f32" env SYNTH_CACHE_TYPE=f32 $SYNTH score -m "$T/m-q8_0.gguf" --json "$T/text.txt"
cmp -s "$T/out" "$T/s8-f32.json" && ok "SYNTH_CACHE_TYPE=f32 scores as --cache-type f32" || bad "SYNTH_CACHE_TYPE=f32 differs from --cache-type f32"
python3 - "$T/s8.json" "$T/s8-f32.json" <<'PY' && ok "f16 cache scores within 1e-3 of f32, not equal" || bad "f16 cache scores within 1e-3 of f32, not equal"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a["tokens"] == b["tokens"] and a["nll"] != b["nll"] and abs(b["nll"] / a["nll"] - 1) < 1e-3, (a, b)
PY
# activations of q8_0 layers: int8 by default, exact f32 by $SYNTH_ACT; the
# two differ by the rounding of the activations only
check "info SYNTH_ACT=f32" env SYNTH_ACT=f32 $SYNTH info "$T/m-q8_0.gguf"
grep -q "^activations  *f32 " "$T/out" && ok "info names the activation mode" || bad "info names the activation mode"
check "score SYNTH_ACT=f32" env SYNTH_ACT=f32 $SYNTH score -m "$T/m-q8_0.gguf" --json "$T/text.txt"
python3 - "$T/s8.json" "$T/out" <<'PY' && ok "int8 activations score within 1e-2 of f32 ones, not equal" || bad "int8 activations score within 1e-2 of f32 ones, not equal"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a["tokens"] == b["tokens"] and a["nll"] != b["nll"] and abs(b["nll"] / a["nll"] - 1) < 1e-2, (a, b)
PY
check_fail "SYNTH_ACT unknown" 2 "SYNTH_ACT: model_set_act: unknown activation mode" env SYNTH_ACT=int4 $SYNTH info "$T/m.gguf"
check_fail "serve --act unknown" 2 "\-\-act" $SYNTH serve -m "$T/m.gguf" --port 0 --act fp8
check_fail "bad --cache-type" 2 "\-\-cache-type" $SYNTH score -m "$T/m.gguf" --cache-type f8 "$T/text.txt"
check_fail "bad SYNTH_CACHE_TYPE" 2 "SYNTH_CACHE_TYPE" env SYNTH_CACHE_TYPE=bf16 $SYNTH generate -m "$T/m.gguf" -p x
check_fail "serve: bad --cache-type" 2 "\-\-cache-type: expected f32 or f16, got 'q4'" $SYNTH serve -m "$T/m.gguf" --port 0 --cache-type q4
check_fail "serve: bad SYNTH_CACHE_TYPE" 2 "from SYNTH_CACHE_TYPE" env SYNTH_CACHE_TYPE=bf16 $SYNTH serve -m "$T/m.gguf" --port 0
check_fail "SYNTH_CPU unknown" 2 "SYNTH_CPU" env SYNTH_CPU=avx9 $SYNTH info "$T/m.gguf"
check_fail "serve --cpu unknown" 2 "\-\-cpu" $SYNTH serve -m "$T/m.gguf" --port 0 --cpu avx9
check_fail "missing model file" 1 "nope.gguf" $SYNTH info "$T/nope.gguf"
check_fail "bad --temp" 2 "\-\-temp" $SYNTH generate -m "$T/m.gguf" -p x --temp abc
check_fail "negative -n" 2 "\-n" $SYNTH generate -m "$T/m.gguf" -p x -n -3
check_fail "unknown flag" 2 "\-\-bogus" $SYNTH score -m "$T/m.gguf" --bogus "$T/text.txt"
check_fail "bad --type" 2 "\-\-type" $SYNTH quantize "$T/m.gguf" "$T/x.gguf" --type q5_9
check_fail "bad --token-embedding-type" 2 "\-\-token-embedding-type" $SYNTH quantize "$T/m.gguf" "$T/x.gguf" \
    --type q4_0 --token-embedding-type q3
check_fail "bad --dropout-start" 2 "\-\-dropout-start" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" \
    -o "$T/x.gguf" --dropout-start 1.5
check_fail "bad --late-decay-start" 2 "\-\-late-decay-start" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" \
    -o "$T/x.gguf" --late-decay-start 1.5
check_fail "late decay past 1 / lr" 2 "\-\-late-decay" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" \
    -o "$T/x.gguf" --lr 0.01 --late-decay 200
check_fail "unknown --optimizer" 2 "\-\-optimizer: unknown optimizer 'sgd'" $SYNTH train --train "$T/text.txt" \
    --valid "$T/text.txt" -o "$T/x.gguf" --optimizer sgd
check_fail "bad --muon-momentum" 2 "\-\-muon-momentum" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" \
    -o "$T/x.gguf" --optimizer muon --muon-momentum 1
head -c 1000 "$T/m.gguf" > "$T/trunc.gguf"
check_fail "truncated checkpoint" 1 "trunc.gguf" $SYNTH score -m "$T/trunc.gguf" "$T/text.txt"
printf 'GGUF\002\000\000\000' > "$T/v2.gguf"
check_fail "GGUF v2 rejected" 1 "v2.gguf" $SYNTH info "$T/v2.gguf"
check_fail "train: seq > ctx" 2 "\-\-seq" $SYNTH train --train "$T/text.txt" --valid "$T/text.txt" -o "$T/y.gguf" --ctx 16 --seq 32
check_fail "train: missing corpus" 2 "missing.txt" $SYNTH train --train "$T/missing.txt" --valid "$T/text.txt" -o "$T/y.gguf"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
