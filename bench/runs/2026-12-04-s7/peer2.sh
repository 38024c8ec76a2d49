#!/bin/sh
# peer.sh's server rounds and `synth score` again (the first pass ran them
# from this directory, where the default model path does not resolve)
set -u
M=/work/main
T=/work/shared/data/wikitext-2/test.txt
for i in 1 2; do
    /usr/bin/time -f "wall %e s" $M/synth score -m $M/weights/synthesizer-wt2-q8_0.gguf $T > ours-score-run$i.txt 2>&1
    /work/peer/server_round.sh > server-peer-run$i.txt 2>&1
done
echo finished > peer2-done.txt
