#!/bin/sh
# t_plot.sh - `synth plot-attention` end to end on tiny trained models
# (random+vanilla and random, 3 steps): the PNG is a PNG of the stated
# size, the CSV matrix is causal with rows summing to 1, a static variant
# gives the same matrix with or without --text, an input-dependent one
# needs --text, --alpha prints sigmoid(alpha) in (0, 1) per layer and head
# consistent with alpha, and the flag errors name the flag. Uses $SYNTH.
set -u
. "$(dirname "$0")/lib.sh"

for i in $(seq 1 40); do
    echo "line $i: the quick brown fox jumps over the lazy dog, and the cat sat on the mat."
done > "$T/text.txt"
TINY="--train $T/text.txt --valid $T/text.txt --vocab 300 --ctx 16 --d-model 16 --layers 2 --heads 2 --d-ff 32 --batch 2 --seq 16 --warmup 1 --eval-every 3 --steps 3 --threads 1"
check "train random+vanilla" $SYNTH train $TINY --variant random+vanilla -o "$T/mix.gguf"
check "train random" $SYNTH train $TINY --variant random -o "$T/rnd.gguf" --tokenizer "$T/mix.gguf"

# PNG: signature and IHDR width/height (16 cells of 32 px + 6 + 16 bar, 16 x 32 high)
check "plot mixture with --text" $SYNTH plot-attention "$T/mix.gguf" --layer 1 --head 1 -o "$T/mix.png" \
    --text "$T/text.txt" --csv "$T/mix.csv"
sig=$(od -An -tx1 -N8 "$T/mix.png" | tr -d ' \n')
[ "$sig" = 89504e470d0a1a0a ] && ok "PNG signature" || bad "PNG signature ($sig)"
wh=$(od -An -tu1 -j16 -N8 "$T/mix.png" | awk '{print $3*256+$4, $7*256+$8}')
[ "$wh" = "534 512" ] && ok "PNG size 534 x 512" || bad "PNG size ($wh)"
grep -q "mean over text windows" "$T/out" && ok "summary names the text windows" || bad "summary line: $(cat "$T/out")"
# CSV: 16 rows of 16, causal (zeros above the diagonal), rows sum to 1
awk -F, '{ s = 0; for (j = 1; j <= NF; j++) { s += $j; if (j > NR && $j != 0) bad = 1 }
           if (NF != 16 || s < 0.9999 || s > 1.0001) bad = 1; n++ }
         END { exit !(n == 16 && !bad) }' "$T/mix.csv" && ok "CSV causal rows summing to 1" || bad "CSV rows"

check "plot static without --text" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 1 -o "$T/r1.png" \
    --csv "$T/r1.csv" --positions 12 --cell 3
check "plot static with --text" $SYNTH plot-attention -m "$T/rnd.gguf" --layer 0 --head 1 -o "$T/r2.png" \
    --csv "$T/r2.csv" --positions 12 --cell 3 --text "$T/text.txt" --log --relative
cmp -s "$T/r1.csv" "$T/r2.csv" && ok "static matrix does not depend on the text" || bad "static matrix differs"
[ "$(wc -l < "$T/r1.csv")" -eq 12 ] && ok "--positions 12 gives 12 rows" || bad "--positions rows"

check "plot pooled 4x4" $SYNTH plot-attention "$T/rnd.gguf" --layer 1 --head 0 -o "$T/p.png" --pool 4 --cell 8 \
    --csv "$T/p.csv"
wh=$(od -An -tu1 -j16 -N8 "$T/p.png" | awk '{print $3*256+$4, $7*256+$8}')
[ "$wh" = "54 32" ] && ok "pooled PNG: 4 cells of 8 px + bar" || bad "pooled PNG size ($wh)"
[ "$(wc -l < "$T/p.csv")" -eq 16 ] && ok "CSV stays the full matrix when pooled" || bad "pooled CSV rows"
grep -q "mean of 4x4 blocks" "$T/out" && ok "summary names the pooling" || bad "pool summary: $(cat "$T/out")"

check "alpha" $SYNTH plot-attention "$T/mix.gguf" --alpha
awk '!/^#/ { n++; g = 1 / (1 + exp(-$3)); if ($4 <= 0 || $4 >= 1 || (g - $4) > 1e-5 || ($4 - g) > 1e-5) bad = 1 }
     END { exit !(n == 4 && !bad) }' "$T/out" && ok "alpha: 2 layers x 2 heads, g = sigmoid(alpha)" \
    || { bad "alpha lines"; cat "$T/out"; }

check_fail "alpha of a variant without mix" 1 "no mixing weights" $SYNTH plot-attention "$T/rnd.gguf" --alpha
check_fail "dynamic variant needs --text" 1 "\-\-text" $SYNTH plot-attention "$T/mix.gguf" --layer 0 --head 0 -o "$T/x.png"
check_fail "layer out of range" 2 "\-\-layer" $SYNTH plot-attention "$T/rnd.gguf" --layer 2 --head 0 -o "$T/x.png"
check_fail "head out of range" 2 "\-\-head" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 2 -o "$T/x.png"
check_fail "positions beyond context" 2 "\-\-positions" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 0 \
    -o "$T/x.png" --positions 17
check_fail "missing -o" 2 "\-o" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 0
check_fail "bad --vmax" 2 "\-\-vmax" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 0 -o "$T/x.png" --vmax -1
check_fail "unwritable output" 1 "cannot write" $SYNTH plot-attention "$T/rnd.gguf" --layer 0 --head 0 \
    -o "$T/no/such/dir.png"
check_fail "missing text" 1 "nope.txt" $SYNTH plot-attention "$T/mix.gguf" --layer 0 --head 0 -o "$T/x.png" \
    --text "$T/nope.txt"
printf 'a b' > "$T/short.txt"
check_fail "text shorter than a window" 1 "fewer than one window" $SYNTH plot-attention "$T/mix.gguf" --layer 0 \
    --head 0 -o "$T/x.png" --text "$T/short.txt"
check_fail "not a model" 1 "plot-attention" $SYNTH plot-attention "$T/text.txt" --layer 0 --head 0 -o "$T/x.png"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
