# Synthesizer LM inference server.
#   make                      build ./synth
#   make test                 build and run the whole test suite
#   make SANITIZE=address,undefined test   same suite under ASan + UBSan
#   make bench                engine benchmark (see bench/)
# Variants build into their own folder (build/, build-address-undefined/ ...)
# so a sanitizer build never mixes objects with the normal one.

CC       ?= cc
SANITIZE ?=
ARCH     ?= native
comma    := ,
BUILD    := build$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))

CFLAGS   ?= -O2 -g
# implicit declarations are errors: a build before OpenBLAS's headers are
# installed found another cblas.h, and openblas_get_corename, taken as
# returning int, cut its pointer in half (synth info crashed)
CFLAGS   += -std=c11 -Wall -Wextra -Werror=implicit-function-declaration -march=$(ARCH) -D_GNU_SOURCE -MMD -MP \
            -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS   := -lopenblas -lmicrohttpd -ljansson -luv -lpng -lm -lpthread
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# The linear-layer kernels of each CPU level (model/kern_*.c) are compiled
# for that level whatever ARCH is; the binary picks the best level the CPU
# has at run time (model/kern.h), so ARCH is only an optimisation knob.
ifeq ($(shell uname -m),x86_64)
KERN_MARCH_scalar := -march=x86-64 -mtune=generic
KERN_MARCH_avx2   := -march=x86-64-v3
KERN_MARCH_avx512 := -march=x86-64-v4
KERN_MARCH_avx512vnni := -march=x86-64-v4 -mavx512vnni
endif

WEIGHTS_SRC := $(wildcard weights/*.c)
MODEL_SRC   := $(wildcard model/*.c)
SERVER_SRC  := $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ     := $(patsubst %.c,$(BUILD)/%.o,$(WEIGHTS_SRC) $(MODEL_SRC) $(SERVER_SRC))
MAIN_OBJ    := $(BUILD)/server/main.o
# the test support library: helpers, the one fixture builder, the naive
# reference, the loopback client (tests and benchmarks link it)
TEST_SUPPORT := tests/test_util.c tests/fixture.c tests/ref_naive.c tests/net_client.c
TEST_SUPPORT_LIB := $(BUILD)/tests/libtestsupport.a
TEST_SRC    := $(filter-out $(TEST_SUPPORT),$(wildcard tests/test_*.c))
TEST_BIN    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC   := $(wildcard bench/bench_*.c)
BENCH_BIN   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

SYNTH := $(if $(SANITIZE),$(BUILD)/synth,synth)

.PHONY: all test check bench bench-train bench-server clean deps
all: $(SYNTH)

# Include paths follow the layers (server -> model -> weights, never back),
# so an #include in the wrong direction does not compile. The CLI commands
# (server/cmd_*.c) may open files through weights/ (the GGUF reader); tests
# and benchmarks see every layer.
INC_weights := -Iweights
INC_model   := -Imodel -Iweights
INC_server  := -Iserver -Imodel -Iweights
INC_tests   := $(INC_server)
INC_bench   := $(INC_server)
layer_inc    = $(INC_$(firstword $(subst /, ,$(1))))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call layer_inc,$<) -c $< -o $@

$(BUILD)/model/kern_scalar.o: CFLAGS += $(KERN_MARCH_scalar)
$(BUILD)/model/kern_avx2.o: CFLAGS += $(KERN_MARCH_avx2)
$(BUILD)/model/kern_avx512.o: CFLAGS += $(KERN_MARCH_avx512)
$(BUILD)/model/kern_avx512vnni.o: CFLAGS += $(KERN_MARCH_avx512vnni)

# the page's files are compiled in (.incbin): editing them rebuilds the object
WEB_FILES := $(wildcard server/web/*.html server/web/*.js server/web/*.css server/web/*.svg)
$(BUILD)/server/srv_static_data.o: $(WEB_FILES)

$(BUILD)/libsynth.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(SYNTH): $(MAIN_OBJ) $(BUILD)/libsynth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TEST_SUPPORT_LIB): $(patsubst %.c,$(BUILD)/%.o,$(TEST_SUPPORT))
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_SUPPORT_LIB) $(BUILD)/libsynth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test_fuzz_replay links the fuzz targets it replays, compiled apart from
# the clang fuzz build with their libFuzzer entry points renamed
REPLAY_TARGETS := gguf tok api
$(BUILD)/tests/replay_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_tests) -DLLVMFuzzerInitialize=fz_$*_init -DLLVMFuzzerTestOneInput=fz_$*_one -c $< -o $@
$(BUILD)/tests/test_fuzz_replay: $(BUILD)/tests/test_fuzz_replay.o $(patsubst %,$(BUILD)/tests/replay_%.o,$(REPLAY_TARGETS)) \
                                  $(TEST_SUPPORT_LIB) $(BUILD)/libsynth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(TEST_SUPPORT_LIB) $(BUILD)/libsynth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The suite: every tests/test_* binary, then the script tests (tests/*.sh,
# tests/*.py) against the built synth. tests/run.sh prints the closing
# "N passed, N failed" line and fails if anything failed.
test: $(SYNTH) $(TEST_BIN)
	SYNTH=$(abspath $(SYNTH)) BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh $(TEST_BIN)

# The README's test command: the suite, then the same suite under ASan+UBSan.
check:
	$(MAKE) test
	$(MAKE) SANITIZE=address,undefined test

bench: $(SYNTH) $(BENCH_BIN)
	bench/run.sh $(BUILD) tok model

bench-train: $(SYNTH) $(BENCH_BIN)
	bench/run.sh $(BUILD) train

bench-server: $(SYNTH) $(BENCH_BIN)
	SYNTH=$(abspath $(SYNTH)) bench/run.sh $(BUILD) server

deps:
	.ci/deps.sh --all

clean:
	rm -rf build build-* synth

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# deployment (containers) and fuzzing targets live beside their files
-include docker/deploy.mk
-include tests/fuzz/fuzz.mk
-include bench/variants.mk
