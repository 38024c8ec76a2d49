# bench/variants.mk - the Synthesizer comparison (issue 6); the top Makefile
# includes it with `-include bench/variants.mk`.
#   make bench-variants     inference speed of every variant at the grid's size
#                           (BENCH_VARIANTS_ARGS="--csv FILE --seconds 2 ..." to change)
#   make experiments        the whole training grid (hours; resumable; DATA=, OUT=)
#   make report             bench/RESULTS.md tables and figures from OUT's logs
DATA ?= ../shared/data/wikitext-2
OUT  ?= bench/experiments
EXP_JOBS ?= 2
BENCH_VARIANTS_ARGS ?=
.PHONY: bench-variants experiments report
bench-variants: $(BUILD)/bench/bench_variants
	$(BUILD)/bench/bench_variants $(BENCH_VARIANTS_ARGS)

experiments: $(SYNTH) $(BUILD)/bench/bench_variants
	SYNTH=$(abspath $(SYNTH)) BENCH_VARIANTS=$(abspath $(BUILD)/bench/bench_variants) EXP_JOBS=$(EXP_JOBS) bench/experiments.sh $(DATA) $(OUT)

report: $(SYNTH)
	SYNTH=$(abspath $(SYNTH)) bench/report.sh $(OUT)
