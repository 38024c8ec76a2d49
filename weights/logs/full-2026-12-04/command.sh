# the run of 2026-12-04 (dropout 0.2, both cores, 90 minutes), from the repository root:
OPENBLAS_CORETYPE=SkylakeX THREADS=2 MINUTES=90 DROPOUT=0.2 TOKENIZER=weights/synthesizer-wt2-q8_0.gguf \
    weights/train.sh ../shared/data/wikitext-2 random runs/full-2026-12-04
