#!/bin/sh
# sh weights/logs/full-v16k-geglu-2026-12-07/diff.sh [TRAIN_CSV] (from the
# repository root): validation loss of this run (vocabulary 16,384) against
# the GEGLU run it is compared with (full-geglu-2026-12-07, vocabulary
# 8,192) at equal elapsed time (the nearest evaluation of the other run),
# both in nats per byte: the two tokenizers cut valid.txt differently, so
# the 65,536 selection tokens cover 277,478 bytes here and 255,274 there
# (counted with `synth tokenize`). Columns: elapsed minutes, each run's
# step, the average's loss per byte for each and the difference, then the
# same for the raw parameters.
csv=${1:-weights/logs/full-v16k-geglu-2026-12-07/train.csv}
awk -F, 'NR == FNR { if (FNR > 1) { n++; t[n] = $6; s[n] = $1; p[n] = $3; a[n] = $7 } next }
         FNR > 1 { best = 1
                   for (i = 2; i <= n; i++) if ((t[i] - $6)^2 < (t[best] - $6)^2) best = i
                   A = $7 * 65536 / 277478; B = a[best] * 65536 / 255274
                   P = $3 * 65536 / 277478; Q = p[best] * 65536 / 255274
                   printf "%6.1f min  step %5d / %5d  average %.4f - %.4f = %+.4f   parameters %.4f - %.4f = %+.4f nats/byte\n",
                          $6 / 60, $1, s[best], A, B, A - B, P, Q, P - Q }' \
    weights/logs/full-geglu-2026-12-07/train.csv "$csv"
