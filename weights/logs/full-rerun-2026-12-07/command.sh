#!/bin/sh
# issue 17: the shipped command (full-geglu-2026-12-07/command.sh) run again,
# unchanged, on a faster machine (2-core AMD EPYC, Zen 5: 2 shards on 2 threads
# 7,818 tokens/s in bench_train before the run, against the 6,027 tokens/s the
# shipped run averaged). The cosine is sized from the warm-up's rate, so the
# same 100 minutes buy more steps: the question is whether 1.2-1.3x the tokens
# move the end point as the budget study's fits predict (budget-2026-12-06).
# It calls that script rather than repeating its line, so the two cannot drift.
# Usage, from the repository root: command.sh OUT_DIR
exec sh weights/logs/full-geglu-2026-12-07/command.sh "$@"
