#!/bin/sh
# bench/experiments.sh DATA_DIR [OUT_DIR] - the Synthesizer comparison grid
# (issue 6): every attention variant x a short and a long context, trained
# from scratch on DATA_DIR/train.txt with the same size, tokenizer, seed,
# data order and token budget, selected on valid.txt, then quantized to
# q8_0 and scored on test.txt (f32 and q8_0); at the end one inference-speed
# run of every variant (bench_variants). Re-create the tables and figures
# with bench/report.sh OUT_DIR.
#
# Resumable: run it again after a stop and it skips finished runs (OUT_DIR/
# RUN.done) and resumes an unfinished one from its training state (the
# trainer's --ckpt/--resume; state every EXP_CKPT_EVERY steps and on
# SIGTERM/Ctrl-C). A stopped training exits the script (status 3) so a
# session stop never starts the next run half-way.
#
# OUT_DIR (default bench/experiments) receives the small, committable files:
#   config.txt              the grid (a rerun with another grid is refused)
#   RUN.csv                 the trainer's log: step,train_loss,valid_loss,lr,tokens_per_s,elapsed_s
#   RUN.log                 the trainer's evaluation and summary lines
#   RUN-test-f32.json, RUN-test-q8_0.json   synth score --json on test.txt
#   RUN-info.txt            synth info of the q8_0 checkpoint (parameter count)
#   RUN.done                wall-clock seconds of training and evaluation
#   speed.csv, speed.txt    bench_variants at the grid's size
# RUN is VARIANT-LCTX with + spelled _ (random_vanilla-L512). Checkpoints,
# training states and the tokenizer go to EXP_WORK (default OUT_DIR/work,
# git-ignored): they are large and re-creatable.
#
# Environment (the grid; defaults are the real experiment, see RESULTS.md):
#   EXP_VARIANTS   variants (default: all eight)
#   EXP_CTXS       contexts (default "64 512")
#   EXP_D EXP_LAYERS EXP_HEADS EXP_FF EXP_VOCAB   model size (128 4 4 512 8192)
#   EXP_TOKENS_PER_STEP  tokens per step; batch = this / ctx (4096)
#   EXP_STEPS      steps per run, the same for every run (see config)
#   EXP_WARMUP EXP_LR EXP_MIN_LR EXP_DROPOUT EXP_SEED EXP_SYNTH_LR_MULT
#   EXP_EVAL_EVERY EXP_EVAL_TOKENS EXP_CKPT_EVERY
#   EXP_THREADS    threads of training, quantizing and scoring (default:
#                  OpenBLAS's and the engine's choice; 1 with EXP_JOBS > 1)
#   EXP_JOBS       runs trained at the same time (default 1). 2 on a 2-core
#                  machine: two single-threaded trainings use the cores
#                  better than one two-threaded one (small matrices); each
#                  job takes every EXP_JOBS-th run of the grid
#   EXP_SHARD      i/n: train only runs k with k % n == i (set by EXP_JOBS)
#   EXP_WORK       checkpoint directory
#   EXP_BENCH      0: skip the speed benchmark (default 1)
#   EXP_BENCH_ARGS extra bench_variants flags; with --cputime (rates per
#                  CPU-second, steadier on a loaded machine) the benchmark
#                  runs single-threaded (OPENBLAS_NUM_THREADS=1 SYNTH_THREADS=1)
#   EXP_COMMIT     1: git add + commit OUT_DIR's files of each finished run
#   SYNTH, BENCH_VARIANTS   binaries (./synth, build/bench/bench_variants)
set -eu
data=${1:?usage: bench/experiments.sh DATA_DIR [OUT_DIR]}
out=${2:-bench/experiments}
synth=${SYNTH:-./synth}
bench=${BENCH_VARIANTS:-build/bench/bench_variants}

. "$(dirname "$0")/grid_defaults.sh"
warmup=${EXP_WARMUP:-100}
lr=${EXP_LR:-0.002}; min_lr=${EXP_MIN_LR:-0.0001}; dropout=${EXP_DROPOUT:-0.05}; seed=${EXP_SEED:-1}
synth_lr_mult=${EXP_SYNTH_LR_MULT:-30}
eval_every=${EXP_EVAL_EVERY:-100}; eval_tokens=${EXP_EVAL_TOKENS:-32768}; ckpt_every=${EXP_CKPT_EVERY:-100}
threads=${EXP_THREADS:-}
# EXP_THREADS limits every thread pool of the runs: the trainer's OpenBLAS,
# and OpenBLAS and the engine's pool in quantize and score. Beside another
# busy process OpenBLAS threads convoy: synth score was 6.5x slower with 2
# OpenBLAS threads next to two training jobs than with 1.
if [ -n "$threads" ]; then
    export OPENBLAS_NUM_THREADS="$threads" SYNTH_THREADS="$threads"
fi
jobs=${EXP_JOBS:-1}
shard=${EXP_SHARD:-0/1}
shard_i=${shard%/*}; shard_n=${shard#*/}
case "$jobs$shard_i$shard_n" in *[!0-9]*) echo "experiments: EXP_JOBS/EXP_SHARD must be N and i/n" >&2; exit 2 ;; esac
[ "$jobs" -ge 1 ] && [ "$shard_n" -ge 1 ] && [ "$shard_i" -lt "$shard_n" ] || { echo "experiments: bad EXP_JOBS $jobs or EXP_SHARD $shard" >&2; exit 2; }
work=${EXP_WORK:-$out/work}
do_bench=${EXP_BENCH:-1}
bench_args=${EXP_BENCH_ARGS:-}
do_commit=${EXP_COMMIT:-0}

for f in train valid test; do
    [ -r "$data/$f.txt" ] || { echo "experiments: cannot read $data/$f.txt" >&2; exit 2; }
done
[ -x "$synth" ] || { echo "experiments: $synth is not executable (make first, or set SYNTH)" >&2; exit 2; }
mkdir -p "$out" "$work"
# checkpoints, states and the tokenizer are large and re-creatable: keep
# them out of git whatever OUT is (the logs and results beside are committed)
[ -f "$work/.gitignore" ] || echo '*' > "$work/.gitignore"

# The grid is part of the results: refuse to mix runs of two grids.
cfg=$(cat <<EOF
variants $variants
ctxs $ctxs
model d $d layers $layers heads $heads d_ff $ff vocab $vocab
tokens_per_step $tps steps $steps warmup $warmup lr $lr min_lr $min_lr dropout $dropout seed $seed
weight_decay 0.1 clip 1.0 synth_lr_mult $synth_lr_mult
eval_every $eval_every eval_tokens $eval_tokens
data $(wc -c < "$data/train.txt") $(wc -c < "$data/valid.txt") $(wc -c < "$data/test.txt") bytes
EOF
)
if [ -f "$out/config.txt" ]; then
    if [ "$(cat "$out/config.txt")" != "$cfg" ]; then
        echo "experiments: $out/config.txt describes another grid; use another OUT_DIR or remove it:" >&2
        diff "$out/config.txt" - <<EOF >&2 || true
$cfg
EOF
        exit 2
    fi
else
    printf '%s\n' "$cfg" > "$out/config.txt"
fi

log() { echo "experiments: [$(date -u +%H:%M:%S)] $*" >&2; }

commit() { # message, files...: commit the run's small files (EXP_COMMIT=1)
    [ "$do_commit" = 1 ] || return 0
    msg=$1; shift
    # another job (or a person) may hold the index lock: retry
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if git add "$@" 2>/dev/null && git commit -q -m "$msg" -- "$@" 2>/dev/null; then return 0; fi
        sleep 3
    done
    log "commit failed (continuing): $msg"
}

# One tokenizer for the whole grid, learned on the training text.
tok="$work/tokenizer.gguf"
if [ ! -s "$tok" ]; then
    "$synth" tokenizer-train --input "$data/train.txt" --vocab "$vocab" -o "$tok.tmp" >&2
    mv "$tok.tmp" "$tok"
fi

# EXP_JOBS > 1: this process only starts the jobs (one shard each, one
# OpenBLAS thread each unless EXP_THREADS says otherwise), waits for them,
# then runs the speed benchmark below. A signal is passed on to the jobs.
if [ "$jobs" -gt 1 ]; then
    pids=""
    trap 'kill $pids 2>/dev/null' INT TERM
    i=0
    while [ "$i" -lt "$jobs" ]; do
        EXP_JOBS=1 EXP_SHARD="$i/$jobs" EXP_BENCH=0 EXP_THREADS="${threads:-1}" "$0" "$data" "$out" &
        pids="$pids $!"
        i=$((i + 1))
    done
    status=0
    for p in $pids; do
        wait "$p" || { st=$?; [ "$status" -ne 0 ] || status=$st; }
    done
    trap - INT TERM
    [ "$status" -eq 0 ] || { log "a job stopped (status $status); run the script again to resume"; exit "$status"; }
    variants=""   # every run is done: straight to the benchmark
fi

# Step of a training state file: i64 at byte 84 (model/train.c: magic 8,
# version 4, header size 4, hparams 44, n_params 8, two hashes 16).
state_step() { od -An -t d8 -j 84 -N 8 "$1" | tr -d ' '; }

k=-1
for L in $ctxs; do
    batch=$((tps / L))
    [ "$batch" -ge 1 ] || { echo "experiments: EXP_TOKENS_PER_STEP $tps < context $L" >&2; exit 2; }
    for v in $variants; do
        k=$((k + 1))
        [ $((k % shard_n)) -eq "$shard_i" ] || continue
        run="$(echo "$v" | tr + _)-L$L"
        [ -f "$out/$run.done" ] && { log "$run: done, skipped"; continue; }
        rw="$work/$run"
        mkdir -p "$rw"
        state="$rw/state"
        resume=""
        if [ -s "$state" ]; then
            at=$(state_step "$state")
            # evaluations logged after the saved state would be logged again
            awk -F, -v at="$at" 'NR == 1 || $1 + 0 <= at' "$out/$run.csv" > "$rw/csv.tmp" && mv "$rw/csv.tmp" "$out/$run.csv"
            resume="--resume $state"
            log "$run: resuming at step $at of $steps"
        else
            rm -f "$out/$run.csv" "$out/$run.log"
            log "$run: training, batch $batch x $L, $steps steps"
        fi
        t0=$(date +%s)
        # shellcheck disable=SC2086  # $resume and the thread flag are word lists
        "$synth" train --train "$data/train.txt" --valid "$data/valid.txt" --tokenizer "$tok" \
            -o "$rw/model-f32.gguf" --name "wt2-$run" --variant "$v" \
            --ctx "$L" --d-model "$d" --layers "$layers" --heads "$heads" --d-ff "$ff" \
            --batch "$batch" --seq "$L" --steps "$steps" --warmup "$warmup" --lr "$lr" --min-lr "$min_lr" \
            --weight-decay 0.1 --dropout "$dropout" --clip 1.0 --seed "$seed" --synth-lr-mult "$synth_lr_mult" \
            --eval-every "$eval_every" --eval-tokens "$eval_tokens" --ckpt-every "$ckpt_every" --ckpt "$state" \
            --log "$out/$run.csv" ${threads:+--threads $threads} $resume \
            2> "$rw/train.err" || { log "$run: training failed:"; tail -n 5 "$rw/train.err" >&2; exit 1; }
        # the evaluation and summary lines (the 10 s progress lines stay in work/)
        grep -E "valid loss|^synth train: [0-9]+ steps|variant|resumed" "$rw/train.err" >> "$out/$run.log" || true
        last=$(tail -n 1 "$out/$run.csv" | cut -d, -f1)
        if [ "$last" != "$steps" ]; then
            log "$run: stopped at step $last of $steps (interrupted); run the script again to resume"
            exit 3
        fi
        "$synth" quantize "$rw/model-f32.gguf" "$rw/model-q8_0.gguf" --type q8_0 >&2
        for q in f32 q8_0; do
            "$synth" score -m "$rw/model-$q.gguf" --json "$data/test.txt" > "$out/$run-test-$q.json"
        done
        "$synth" info "$rw/model-q8_0.gguf" | sed "s|$rw/||" > "$out/$run-info.txt"
        el=$(( $(date +%s) - t0 ))
        echo "wall_s $el finished $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$out/$run.done"
        log "$run: finished in ${el}s: test $(cat "$out/$run-test-f32.json")"
        commit "experiments: $run finished ($(cat "$out/$run.done"))" "$out/$run.csv" "$out/$run.log" "$out/$run-test-f32.json" "$out/$run-test-q8_0.json" \
            "$out/$run-info.txt" "$out/$run.done" "$out/config.txt"
    done
done

# Inference speed of every variant at this size, both contexts, one run.
if [ "$do_bench" = 1 ] && [ ! -f "$out/speed.csv" ] && [ "$shard_n" -eq 1 ]; then
    if [ -x "$bench" ]; then
        log "speed benchmark"
        ctx_list=$(echo "$ctxs" | tr ' ' ,)
        bench_env=""
        case " $bench_args " in *" --cputime "*) bench_env="OPENBLAS_NUM_THREADS=1 SYNTH_THREADS=1" ;; esac
        # shellcheck disable=SC2086  # $bench_args and $bench_env are word lists
        env $bench_env "$bench" --ctx "$ctx_list" --d-model "$d" --layers "$layers" --heads "$heads" --d-ff "$ff" --vocab "$vocab" \
            --csv "$out/speed.csv.tmp" $bench_args > "$out/speed.txt" && mv "$out/speed.csv.tmp" "$out/speed.csv"
        commit "experiments: inference speed of every variant (bench_variants)" "$out/speed.csv" "$out/speed.txt"
    else
        log "$bench not built: speed benchmark skipped (make build/bench/bench_variants)"
    fi
fi
# A shard (one of EXP_JOBS) only says that its share is done: the parent
# says "grid complete" after waiting for all of them.
if [ "$shard_n" -gt 1 ]; then log "shard $shard_i/$shard_n complete"
else log "grid complete; tables and figures: bench/report.sh $out"; fi
