#!/bin/sh
# t_tok.sh - synth tokenizer-train and synth tokenize end to end: the
# tokenizer file loads, -p / FILE / stdin agree, ids match the token lines,
# and bad flags or files fail with the flag named. Uses $SYNTH.
set -u
. "$(dirname "$0")/lib.sh"

i=0
while [ $i -lt 300 ]; do printf 'the cat sat on the mat %d times; the dog did not.\n' $i; i=$((i + 1)); done > "$T/text.txt"
check "tokenizer-train" $SYNTH tokenizer-train --input "$T/text.txt" --vocab 300 -o "$T/tok.gguf"
grep -q "300 tokens (43 merges, eos 299)" "$T/out" && ok "tokenizer-train reports the sizes" \
    || { bad "tokenizer-train reports the sizes"; cat "$T/out"; }
printf 'Hello, the tokenizer\n\n  says "hi".' > "$T/p.txt"
check "tokenize FILE --ids" $SYNTH tokenize --tokenizer "$T/tok.gguf" --ids "$T/p.txt"
cp "$T/out" "$T/ids_file"
check "tokenize stdin --ids" sh -c "$SYNTH tokenize --tokenizer '$T/tok.gguf' --ids < '$T/p.txt'"
[ -s "$T/ids_file" ] && cmp -s "$T/out" "$T/ids_file" && ok "stdin and FILE agree" || bad "stdin and FILE agree"
check "tokenize -p" $SYNTH tokenize --tokenizer "$T/tok.gguf" -p "$(cat "$T/p.txt")x"
# the token lines: id, vocabulary string, quoted bytes; same ids (plus "x")
cut -f1 "$T/out" | tr '\n' ' ' | sed 's/ $//' > "$T/ids_lines"
{ tr -d '\n' < "$T/ids_file"; printf ' 120'; } > "$T/ids_want"
cmp -s "$T/ids_lines" "$T/ids_want" && ok "token lines match --ids" \
    || { bad "token lines match --ids"; cat "$T/ids_lines" "$T/ids_want"; }
grep -q '"\\n"' "$T/out" && ok "bytes are escaped" || bad "bytes are escaped"
grep -q "35 bytes -> " "$T/err" && ok "byte count on stderr" || { bad "byte count on stderr"; cat "$T/err"; }
check "--help" $SYNTH tokenize --help
check "--help" $SYNTH tokenizer-train --help

check_fail "vocab range" 2 "--vocab" $SYNTH tokenizer-train --input "$T/text.txt" --vocab 256 -o "$T/x.gguf"
check_fail "vocab not a number" 2 "--vocab" $SYNTH tokenizer-train --input "$T/text.txt" --vocab 3e2 -o "$T/x.gguf"
check_fail "input missing" 2 "--input" $SYNTH tokenizer-train -o "$T/x.gguf"
check_fail "input unreadable" 1 "--input" $SYNTH tokenizer-train --input "$T/nope" -o "$T/x.gguf"
check_fail "output missing" 2 "-o" $SYNTH tokenizer-train --input "$T/text.txt"
check_fail "output unwritable" 1 "-o" $SYNTH tokenizer-train --input "$T/text.txt" -o "$T/nodir/x.gguf"
check_fail "unknown flag" 2 "--frob" $SYNTH tokenizer-train --frob
check_fail "tokenizer not gguf" 1 "--tokenizer" $SYNTH tokenize --tokenizer "$T/text.txt" -p x
check_fail "model without tokenizer keys" 1 "tokenizer.ggml.model" sh -c \
    "printf 'GGUF\003\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' > '$T/empty.gguf' && $SYNTH tokenize -m '$T/empty.gguf' -p x"
check_fail "-m and --tokenizer" 2 "exclusive" $SYNTH tokenize -m a --tokenizer b -p x
check_fail "-p and FILE" 2 "exclusive" $SYNTH tokenize --tokenizer "$T/tok.gguf" -p x "$T/p.txt"
check_fail "FILE unreadable" 1 "FILE" $SYNTH tokenize --tokenizer "$T/tok.gguf" "$T/nope"
check_fail "-p without value" 2 "-p" $SYNTH tokenize --tokenizer "$T/tok.gguf" -p

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
