#!/bin/sh
# CPU cost per streamed token, less sensitive to the machine's noise than
# throughput: each build's `synth serve` is started on its own, loaded by
# bench_server --port (synth API, 32 clients, 6 s), and the server's user +
# system CPU time over the run (/proc/PID/stat) is divided by the tokens it
# generated (synth_generated_tokens_total from /metrics). Interleaved, five
# rounds: base = session start d728046 (/tmp/s10), new = this build.
set -u
M=/work/main
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
toks() { curl -s localhost:$1/metrics | awk '$1 == "synth_generated_tokens_total" {print $2}'; }
for r in 1 2 3 4 5; do
    for v in base new; do
        case $v in base) B=/tmp/s10 ;; new) B=$M ;; esac
        port=$((18200 + r * 2 + ${#v}))
        SYNTH_LOG_LEVEL=warn $B/synth serve -m $M/weights/synthesizer-wt2-q8_0.gguf --port $port > /dev/null 2>&1 &
        pid=$!
        for i in $(seq 100); do curl -s localhost:$port/health > /dev/null && break; sleep 0.1; done
        c0=$(cpu $pid); t0=$(toks $port)
        $B/build/bench/bench_server --port $port --clients 32 --seconds 6 > load-$v-$r.txt 2>&1
        c1=$(cpu $pid); t1=$(toks $port)
        kill $pid; wait $pid 2> /dev/null
        tps=$(awk -F'|' '/\/generate/ {print $5+0}' load-$v-$r.txt)
        awk -v v=$v -v r=$r -v c=$((c1 - c0)) -v t0=$t0 -v t1=$t1 -v k=$tick -v tps=$tps 'BEGIN {
            printf "%s %s  tokens/s %6d  server CPU %.1f s for %d tokens: %.1f us/token\n", v, r, tps, c / k, t1 - t0, c / k / (t1 - t0) * 1e6 }'
    done
done
