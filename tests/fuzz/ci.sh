#!/bin/sh
# tests/fuzz/ci.sh [SECONDS] - CI entry point of the fuzzers: build every
# libFuzzer target with clang (build-fuzz/) and run each one for SECONDS
# (default 60) on its committed seed corpus. Installs nothing: fails with a
# clear message when clang or libFuzzer is missing (Debian 12 packages:
# clang and libclang-rt-14-dev; .ci/deps.sh installs them).
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-60}
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found; install the Debian packages clang libclang-rt-14-dev" >&2
    exit 1
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
    echo "fuzz: clang cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?);" \
         "install the Debian package libclang-rt-14-dev" >&2
    cat "$probe/err" >&2
    exit 1
fi
make -j2 fuzz && make fuzz FUZZ_SECONDS="$secs"
rc=$?
[ $rc -eq 0 ] && echo "fuzz: every target ran ${secs}s without a finding"
exit $rc
