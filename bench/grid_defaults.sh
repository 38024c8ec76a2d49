# bench/grid_defaults.sh - the comparison grid's defaults (issue 6), sourced
# by bench/experiments.sh and bench/train_speed.sh so that the speed
# estimate always measures the grid that runs. Each EXP_* variable
# overrides its default (see experiments.sh for their meaning).
variants=${EXP_VARIANTS:-"vanilla random fixed_random factorized_random dense factorized_dense random+vanilla dense+vanilla"}
ctxs=${EXP_CTXS:-"64 512"}
d=${EXP_D:-128}; layers=${EXP_LAYERS:-4}; heads=${EXP_HEADS:-4}; ff=${EXP_FF:-512}; vocab=${EXP_VOCAB:-8192}
tps=${EXP_TOKENS_PER_STEP:-4096}
steps=${EXP_STEPS:-1200}
