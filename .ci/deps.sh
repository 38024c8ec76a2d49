#!/bin/sh
# .ci/deps.sh [--all] - install the Debian packages the project needs.
# Run as root it installs what is missing with apt-get; otherwise it prints
# the exact apt-get command and fails. Without --all only what building and
# running `synth` needs; --all adds what the tests and benchmarks use.
set -e
run_pkgs="libopenblas0-pthread libmicrohttpd12 libjansson4 libuv1 libpng16-16"
build_pkgs="gcc make pkg-config libc6-dev libopenblas-dev libmicrohttpd-dev libjansson-dev libuv1-dev libpng-dev"
test_pkgs="python3 curl nginx-light wrk yamllint gnuplot-nox valgrind"
want="$run_pkgs $build_pkgs"
[ "${1:-}" = "--all" ] && want="$want $test_pkgs"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all packages present"; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
