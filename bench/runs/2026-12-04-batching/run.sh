#!/bin/sh
# issue 16 side-by-side: after (main), before (4b0cab0), portable (ARCH=x86-64-v3)
cd /work/main
for r in 1 2; do
  build/bench/bench_model > /tmp/b16/after-model-$r.txt 2>&1
  /work/before/build/bench/bench_model > /tmp/b16/before-model-$r.txt 2>&1
  build-v3/bench/bench_model > /tmp/b16/v3-model-$r.txt 2>&1
done
SYNTH=/work/main/synth build/bench/bench_server --clients 1,8,32 --seconds 4 > /tmp/b16/after-server.txt 2>&1
(cd /work/before && SYNTH=/work/before/synth build/bench/bench_server --clients 1,8,32 --seconds 4 > /tmp/b16/before-server.txt 2>&1)
echo done > /tmp/b16/done
