#!/bin/sh
# sh weights/logs/full-rerun-2026-12-07/diff.sh [RUN_DIR [REF_DIR]]: the
# path the model card's sections used before the tool moved to
# weights/logs/diff.sh; the defaults are this run against the run it was
# compared with (full-geglu-2026-12-07).
exec sh weights/logs/diff.sh "${1:-weights/logs/full-rerun-2026-12-07}" "${2:-weights/logs/full-geglu-2026-12-07}"
