#!/bin/sh
# the grid of 2026-12-04 (session 6), from the repository root, the machine otherwise idle:
OPENBLAS_CORETYPE=SkylakeX weights/grid.sh /work/shared/data/wikitext-2 /work/grid/out 38
