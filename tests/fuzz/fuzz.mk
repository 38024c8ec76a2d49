# tests/fuzz/fuzz.mk - coverage-guided fuzzing with libFuzzer (clang), and
# the soak test. Included by the top Makefile.
#
#   make fuzz                       build every target into build-fuzz/
#   make fuzz FUZZ_SECONDS=600      ... then run each one for 600 s, one after
#                                   the other (-jobs=1), on a working copy of
#                                   its seed corpus; fails on any finding
#   make fuzz FUZZ_SECONDS=60 FUZZ_TARGETS="api tok"   a subset
#   make soak                       10-minute soak test of `synth serve`
#                                   (SOAK_SECONDS=N to change; see tests/soak.py)
#   make tsan                       ThreadSanitizer build (build-thread/) of synth and
#                                   test_server: the server suite + a 60 s soak
#                                   (tests/tsan.sh, suppressions tests/tsan.supp)
#   make valgrind                   memcheck of the CLI paths and a server run
#                                   (tests/t_valgrind.sh, also part of make test)
#
# The targets and the library they test are compiled with clang
# (-fsanitize=fuzzer-no-link,address,undefined) into build-fuzz/, apart from
# the gcc build. Needs Debian's clang and libclang-rt-14-dev (libFuzzer and
# the sanitizer runtimes); tests/fuzz/ci.sh is the CI entry point.

FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_TARGETS ?= gguf tok api http
FUZZ_SECONDS ?= 0
FUZZ_CFLAGS  := -O1 -g -std=c11 -Wall -Wextra -march=$(ARCH) -D_GNU_SOURCE -MMD -MP \
                -Itests/fuzz -I/usr/include/x86_64-linux-gnu/openblas-pthread \
                -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(WEIGHTS_SRC) $(MODEL_SRC) $(SERVER_SRC))
FUZZ_BIN     := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz soak fuzz-seeds tsan valgrind
.PRECIOUS: $(FUZZ_BUILD)/tests/fuzz/%.o

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(call layer_inc,$<) -c $< -o $@

$(FUZZ_BUILD)/model/kern_scalar.o: FUZZ_CFLAGS += $(KERN_MARCH_scalar)
$(FUZZ_BUILD)/model/kern_avx2.o: FUZZ_CFLAGS += $(KERN_MARCH_avx2)
$(FUZZ_BUILD)/model/kern_avx512.o: FUZZ_CFLAGS += $(KERN_MARCH_avx512)

$(FUZZ_BUILD)/server/srv_static_data.o: $(WEB_FILES)

$(FUZZ_BUILD)/libsynth.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# the targets' share of the test support library (tests/fixture.h, tests/net_client.h)
FUZZ_SUPPORT := $(FUZZ_BUILD)/tests/fixture.o $(FUZZ_BUILD)/tests/net_client.o

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_SUPPORT) $(FUZZ_BUILD)/libsynth.a
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

# the seed generator is a plain program (no libFuzzer main)
$(FUZZ_BUILD)/fuzz_mkseed: $(FUZZ_BUILD)/tests/fuzz/fuzz_mkseed.o $(FUZZ_SUPPORT) $(FUZZ_BUILD)/libsynth.a
	$(FUZZ_CC) -fsanitize=address,undefined -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@if [ "$(FUZZ_SECONDS)" != 0 ]; then \
	    tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS); fi

# regenerate the committed GGUF seeds (only needed when the format changes)
fuzz-seeds: $(FUZZ_BUILD)/fuzz_mkseed
	$(FUZZ_BUILD)/fuzz_mkseed tests/fuzz/corpus/gguf

soak: $(SYNTH) $(BUILD)/tests/test_server
	SYNTH=$(abspath $(SYNTH)) TEST_SERVER=$(abspath $(BUILD)/tests/test_server) \
	    python3 tests/soak.py

# a sub-make, so SANITIZE=thread selects build-thread/ whatever this make had
tsan:
	$(MAKE) SANITIZE=thread build-thread/synth build-thread/tests/test_server
	tests/tsan.sh build-thread

valgrind:
	sh tests/t_valgrind.sh

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
