#!/bin/sh
# issue 17: the shipped random model's command (budget B: both cores, 100
# minutes, weight decay 0.3, peak 2.5e-3, R at 18x, weight average 0.998,
# seed 2) with --r-tie 30: R's gradient gets 30x its mean along each
# diagonal, so R also learns a function of distance. In 900-step pilots
# (weights/logs/rtie-2026-12-06/) --r-tie 30 was 0.07 nats ahead of the
# shipped recipe at equal tokens, the lead growing with training.
# Usage: weights/logs/full-rtie-2026-12-06/command.sh OUT_DIR; a stopped
# run continues with RESUME=OUT_DIR/synthesizer-wt2-f32.gguf.state and the
# same command (train.sh passes --resume; the schedule stays the one set
# before the stop).
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=100 WEIGHT_DECAY=0.3 LR=0.0025 SYNTH_LR_MULT=18 EMA=0.998 SEED=2 \
    R_TIE=30 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf weights/train.sh ../shared/data/wikitext-2 random "$@"
