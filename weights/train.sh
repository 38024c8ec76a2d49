#!/bin/sh
# weights/train.sh DATA_DIR [VARIANT] [OUT_DIR] - the training recipe of
# the shipped models (weights/README.md): train on DATA_DIR/train.txt for
# at most MINUTES, select on valid.txt, quantize, and score test.txt in
# f32, q8_0, q4_0 and q4_0-pure. VARIANT defaults to random (the shipped model).
#
# The shipped random model (weights/logs/full-ema999-2026-12-07/command.sh):
#   OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 \
#       LR=0.0025 SYNTH_LR_MULT=18 EMA=0.999 SEED=2 \
#       SHAPE="--d-model 256 --layers 6 --heads 4 --d-ff 672 --ffn geglu" \
#       TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh DATA random OUT
# The defaults (95 minutes, weight decay 0.1) are the recipe the vanilla
# baseline and the random+vanilla mixture were trained with, one OpenBLAS
# thread each beside a random model, so that both got the same budget:
#   OPENBLAS_CORETYPE=SkylakeX THREADS=1 weights/train.sh DATA random &
#   OPENBLAS_CORETYPE=SkylakeX THREADS=1 weights/train.sh DATA vanilla &
# Alone, leave THREADS unset: the trainer uses both cores.
# MINUTES (95), DROPOUT (0.1), DROPOUT_START (fraction of the steps
# without dropout, 0), WORD_DROPOUT (synth train --word-dropout, 0: off),
# WEIGHT_DECAY (0.1), LATE_DECAY and LATE_DECAY_START (synth train
# --late-decay / --late-decay-start: the weight decay from that fraction of
# the steps on, 0.667; unset: WEIGHT_DECAY throughout), OPTIMIZER (synth
# train --optimizer: adamw, or muon on the decayed matrices), LR (peak, 0.0015), MIN_LR
# (the floor the cosine decay ends at, 0.0001), CTX (the context L and
# the training sequence length, 256), BATCH (sequences of CTX tokens per
# step, 8), SYNTH_LR_MULT (R's learning rate over LR, 30), R_TIE (synth
# train --r-tie, 0: off) and SHAPE ("--d-model 256 --layers 6 --heads 4
# --d-ff 1024"; "... --d-ff 672 --ffn geglu" is the GEGLU feed-forward at
# the same parameter count) override the recipe (weights/search.sh
# compares them);
# EMA (decay of the weight average per update, every 4 steps; 0: off)
# also keeps and scores the average (synth train --ema); with it set, the
# quantized files are made from the average, and test-ema-f32.json scores
# it beside the raw parameters' test-f32.json; EMA_START (synth train
# --ema-start, 0) keeps the steps up to it out of the average. SEED (1)
# seeds init, data order and dropout.
# STEPS=N fixes the cosine schedule at N steps instead of sizing it to
# MINUTES (set MINUTES=0 to lift the time limit): runs of different
# lengths with complete schedules, for loss-against-budget fits.
# RESUME=STATE continues a stopped run from its training state (synth train
# --resume; same variables, same OUT_DIR: the log is appended to).
# TOKENIZER=FILE reuses a model's vocabulary (the shipped one: the same
# merges train.txt gives, without the minutes of learning them).
# OPENBLAS_CORETYPE=SkylakeX: the AVX-512 sgemm kernels (about 1.6x the
# Haswell ones on this EPYC; checked against a double-precision loop for the
# trainer's shapes and by test_forward_ref/test_train, see the model card).
set -eu
data=${1:?usage: weights/train.sh DATA_DIR [VARIANT] [OUT_DIR]}
variant=${2:-random}
tag=$(printf %s "$variant" | tr + _)   # random+vanilla -> random_vanilla in file names
out=${3:-runs/$tag}
synth=${SYNTH:-./synth}
threads=${THREADS:-0}
minutes=${MINUTES:-95}
steps=${STEPS:-auto}
dropout=${DROPOUT:-0.1}
dropout_start=${DROPOUT_START:-0}
word_dropout=${WORD_DROPOUT:-0}
weight_decay=${WEIGHT_DECAY:-0.1}
lr=${LR:-0.0015}
min_lr=${MIN_LR:-0.0001}
ctx=${CTX:-256}
batch=${BATCH:-8}
r_tie=${R_TIE:-0}
synth_lr_mult=${SYNTH_LR_MULT:-30}
shape=${SHAPE:---d-model 256 --layers 6 --heads 4 --d-ff 1024}
ema=${EMA:-0}
ema_start=${EMA_START:-0}
seed=${SEED:-1}
mkdir -p "$out"
name=synthesizer-wt2
[ "$variant" = random ] || name="synthesizer-wt2-$tag"
set -- --threads "$threads"
[ "$threads" -gt 0 ] || set --
# TOKENIZER=FILE: take the BPE vocabulary from a GGUF instead of learning it
[ -z "${TOKENIZER:-}" ] || set -- "$@" --tokenizer "$TOKENIZER"
# the trainer's log: appended to when resuming, else started afresh
if [ -n "${RESUME:-}" ]; then
    set -- "$@" --resume "$RESUME"
    exec 3>>"$out/train.log"
else
    exec 3>"$out/train.log"
fi
[ -z "${LATE_DECAY:-}" ] || set -- "$@" --late-decay "$LATE_DECAY"
[ -z "${LATE_DECAY_START:-}" ] || set -- "$@" --late-decay-start "$LATE_DECAY_START"
[ -z "${OPTIMIZER:-}" ] || set -- "$@" --optimizer "$OPTIMIZER"
src=f32
if [ "$ema" != 0 ]; then
    set -- "$@" --ema "$ema" --ema-start "$ema_start" --ema-out "$out/$name-ema-f32.gguf"
    src=ema-f32
fi
$synth train --train "$data/train.txt" --valid "$data/valid.txt" \
    -o "$out/$name-f32.gguf" --name "$name" --variant "$variant" \
    --vocab 8192 --ctx "$ctx" $shape \
    --batch "$batch" --seq "$ctx" --steps "$steps" --max-minutes "$minutes" \
    --lr "$lr" --min-lr "$min_lr" --warmup 150 \
    --weight-decay "$weight_decay" --dropout "$dropout" --dropout-start "$dropout_start" --word-dropout "$word_dropout" --clip 1.0 --synth-lr-mult "$synth_lr_mult" --r-tie "$r_tie" \
    --eval-every 250 --eval-tokens 65536 --ckpt-every 500 --seed "$seed" \
    --log "$out/train.csv" "$@" 2>&3
# q4_0 keeps the token embedding (the tied output projection, whose error
# reaches every logit) at q8_0, as llama.cpp's q4_0 keeps its output tensor
# at q6_K; q4_0-pure has every matrix at q4_0
$synth quantize "$out/$name-$src.gguf" "$out/$name-q8_0.gguf" --type q8_0
$synth quantize "$out/$name-$src.gguf" "$out/$name-q4_0.gguf" --type q4_0 --token-embedding-type q8_0
$synth quantize "$out/$name-$src.gguf" "$out/$name-q4_0-pure.gguf" --type q4_0
scored=f32
[ "$src" = f32 ] || scored="f32 $src"
for q in $scored q8_0 q4_0 q4_0-pure; do
    echo "== $q"
    $synth score -m "$out/$name-$q.gguf" --json "$data/test.txt" | tee "$out/test-$q.json"
done
