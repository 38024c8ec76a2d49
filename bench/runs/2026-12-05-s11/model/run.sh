#!/bin/sh
# bench_model on the default size, session start (d728046, /tmp/s10) against
# this build, interleaved, two rounds each.
set -u
for r in 1 2; do
    /tmp/s10/build/bench/bench_model 1 3 default > model-base-$r.txt 2>&1
    /work/main/build/bench/bench_model 1 3 default > model-new-$r.txt 2>&1
done
