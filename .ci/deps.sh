#!/bin/sh
# .ci/deps.sh [--all] - install what the project needs from Debian.
# Run as root it installs what is missing with apt-get; otherwise it prints
# the exact apt-get command and fails. Without --all: what building and
# running `synth` needs. --all adds what the tests, fuzzers, browser test,
# container deployment test and benchmarks use.
set -e
cd "$(dirname "$0")/.."
all=0
[ "${1:-}" = "--all" ] && all=1
run_pkgs="libopenblas0-pthread libmicrohttpd12 libjansson4 libuv1 libpng16-16"
build_pkgs="gcc make pkg-config libc6-dev libopenblas-dev libmicrohttpd-dev libjansson-dev libuv1-dev libpng-dev"
test_pkgs="python3 curl nginx-light wrk yamllint gnuplot-nox valgrind
           clang libclang-rt-14-dev
           chromium
           podman buildah podman-compose runc debootstrap netavark aardvark-dns
           iptables"
want="$run_pkgs $build_pkgs"
[ $all = 1 ] && want="$want $test_pkgs"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm may come from Debian (nodejs, npm) or another package of
# nodejs that bundles npm: ask for the commands, not the package names.
if [ $all = 1 ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
    missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages:$missing" >&2
        echo "deps: install them with: sudo apt-get install -y$missing" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: all Debian packages present"
fi
# The browser test drives chromium with playwright-core, pinned by the
# committed lock file (npm registry).
if [ $all = 1 ] && [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
    (cd tests/browser && npm ci --no-audit --no-fund)
fi
