#!/bin/sh
# The commands behind the files here (2026-12-04, session 7, the 2-core
# AMD EPYC Zen 5 VM of bench/runs/2026-12-04-sliced). Builds, each in its
# own worktree: base = 2fa92cd (the session's start: engine as 973698d),
# main = fcfc542 (speed-weighted parts, ignore_eos on the fast sampler),
# port = fcfc542 built with ARCH=x86-64-v3 (the image's flags).
# Rounds interleave the builds. Run from this directory.
set -u
B=/work/base M=/work/main P=/work/port
for i in 1 2; do
    $B/build/bench/bench_model 1 3 default > model-base-run$i.txt 2>&1
    $M/build/bench/bench_model 1 3 default > model-main-run$i.txt 2>&1
    $P/build/bench/bench_model 1 3 default > model-port-run$i.txt 2>&1
done
$B/build/bench/bench_model 1 2 large > model-large-base.txt 2>&1
$M/build/bench/bench_model 1 2 large > model-large-main.txt 2>&1
for i in 1 2; do
    SYNTH=$B/synth $B/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-base-run$i.txt 2>&1
    SYNTH=$M/synth $M/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-main-run$i.txt 2>&1
    SYNTH=$P/synth $P/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-port-run$i.txt 2>&1
done
echo finished > done.txt
