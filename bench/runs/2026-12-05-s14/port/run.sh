#!/bin/sh
# Portable (ARCH=x86-64-v3, the image's flags; clean clone of 318172e at
# /tmp/port) against native, interleaved, then the 5x model once.
set -u
for r in 1 2; do
    /work/main/build/bench/bench_model 1 2 default > native-$r.txt 2>&1
    /tmp/port/build/bench/bench_model 1 2 default > port-$r.txt 2>&1
done
/work/main/build/bench/bench_model 1 2 large > large.txt 2>&1
