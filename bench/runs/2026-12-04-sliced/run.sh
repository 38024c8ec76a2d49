#!/bin/sh
# The commands behind the files here (2026-12-04, 2-core AMD EPYC Zen 5 VM,
# family 26; OpenBLAS 0.3.21 picks its Haswell kernels on it). "before" is
# b3ebb7f built in a second worktree (/work/before), "after" this commit's
# build; runs 1 and 2 interleave them. Run 0 of each was taken alone (the
# before one at the start of the session, the after one before the
# interleaved runs).
#   model-*:   build/bench/bench_model 1 3 [default]      (run 0: both sizes)
#   server-*:  SYNTH=$PWD/synth build/bench/bench_server --clients 1,8,32 --seconds 4
#   kernels-before-b3ebb7f.txt: build/bench/bench_kernels 0.3
for i in 1 2; do
    /work/before/build/bench/bench_model 1 3 default > model-before-b3ebb7f-run$i.txt
    ../../../build/bench/bench_model 1 3 default > model-after-run$i.txt
done
for i in 1 2; do
    SYNTH=/work/before/synth /work/before/build/bench/bench_server --clients 1,8,32 --seconds 4 > server-before-b3ebb7f-run$i.txt
    SYNTH=$PWD/../../../synth ../../../build/bench/bench_server --clients 1,8,32 --seconds 4 > server-after-run$i.txt
done
