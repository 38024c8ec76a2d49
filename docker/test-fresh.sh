#!/bin/sh
# docker/test-fresh.sh - the README's two commands on a pristine Debian 12
# (`make test-fresh`), the way a new user runs them.
#
# The machine: a container of localhost/debian:bookworm-slim, a debootstrap
# minbase root made here (docker/base-image.sh): no compiler, no OpenBLAS,
# no package lists, nothing this project installed on the host. The
# checkout: a fresh `git clone` of this repository's HEAD (committed work
# only; the host's build/, node_modules/ and runs/ are not there). The
# commands are read from README.md's "Quick start" section, so the test
# checks the README as written:
#   1. the run command (`.ci/deps.sh && make && ./synth serve`): the server
#      must come up on the shipped model and answer /health, one /generate
#      and one /score, then stop cleanly on SIGTERM;
#   2. the test command (`.ci/deps.sh --all && make check`) in a second
#      pristine container, from a second fresh clone: it must exit 0.
# Each prints its time, and step 1 the OpenBLAS kernel the fresh system
# selects (the README's performance section names it).
#
# What runs differently from a real machine, and why:
#   - --network host: apt-get and npm reach the mirror and the registry
#     through the host's resolver (as `podman build` does in the deployment
#     test), and the host reaches the server of step 1, which SYNTH_PORT
#     puts on FRESH_PORT instead of 8080 (a port the host may use).
#   - Packages do not start services (/usr/sbin/policy-rc.d exit 101, as
#     container images have it): with the host's network, installing
#     nginx-light would otherwise start nginx on the host's port 80.
#   - The host's site-local CA certificates (/usr/local/share/ca-certificates,
#     read-only) and its NODE_EXTRA_CA_CERTS: on a network that intercepts
#     TLS (this project's machines do), npm would otherwise refuse the
#     registry's certificate. A machine on such a network has them too;
#     ca-certificates adds them to the system bundle when apt installs it.
#   - Each command has a time limit (step 1: 20 minutes to /health; step 2:
#     60 minutes), so a hang fails the test instead of stalling CI.
#   - --cap-add SYS_PTRACE, seccomp unconfined: LeakSanitizer (in the ASan
#     half of `make check`) stops the world with ptrace, which podman's
#     default seccomp profile refuses.
#   - --shm-size 1g: chromium (the browser test) needs more than the 64 MB
#     /dev/shm podman gives by default.
#   - Not run inside: the fuzzers and the deployment test, which are not
#     part of `make check` (`.ci/run` runs them on the host: the deployment
#     test would need podman inside podman).
#
# Needs root, podman, debootstrap, git, python3 (missing ones are installed
# with apt-get). Environment: FRESH_PORT (18490) for step 1's server,
# FRESH_ONLY=run|check to run one step, KEEP=1 to keep the clones and logs.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export CONTAINERS_CONF="$ROOT/docker/containers.conf"
BASE=localhost/debian:bookworm-slim
PORT=${FRESH_PORT:-18490}
ONLY=${FRESH_ONLY:-}
W=$(mktemp -d /tmp/synth-fresh.XXXXXX)
. docker/lib.sh

cleanup() {
    trap - EXIT INT TERM
    for c in synth-fresh-run synth-fresh-check; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: clones and logs in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---- 0. tools and the README's commands -----------------------------------
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the fresh-system test uses rootful podman (run as root)"; finish; }
need=""
for t in podman debootstrap git python3; do command -v $t >/dev/null 2>&1 || need="$need $t"; done
if [ -n "$need" ]; then
    echo "installing:$need"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need; } \
        >"$W/apt.log" 2>&1 || { tail -5 "$W/apt.log"; bad "installing$need"; finish; }
fi
# the two fenced commands of "## Quick start", in order
python3 - README.md >"$W/commands" <<'PY' || { bad "README.md: the Quick start section's two commands"; finish; }
import re, sys
text = open(sys.argv[1]).read()
sec = re.search(r"^## Quick start.*?(?=^## )", text, re.S | re.M)
cmds = re.findall(r"```sh\n(.*?)\n```", sec.group(0) if sec else "", re.S)
cmds = [c for c in cmds if c.startswith(".ci/deps.sh")]
if len(cmds) < 2 or any("\n" in c for c in cmds[:2]):
    sys.exit(1)
print(cmds[0]); print(cmds[1])
PY
RUN_CMD=$(sed -n 1p "$W/commands"); CHECK_CMD=$(sed -n 2p "$W/commands")
ok "README's run command:  $RUN_CMD"
ok "README's test command: $CHECK_CMD"
note "fresh clones of $(git rev-parse --short HEAD)"
if msg=$(docker/base-image.sh "$BASE" 2>&1); then ok "$msg"; else echo "$msg"; bad "base image $BASE"; finish; fi

# A fresh clone of HEAD in $W/$1 (checked out at this tree's HEAD commit:
# from a linked worktree, clone alone would give the main branch's).
HEAD_SHA=$(git rev-parse HEAD)
clone() {
    { git clone -q --no-hardlinks "$ROOT" "$W/$1" && git -C "$W/$1" checkout -q --detach "$HEAD_SHA"; } \
        2>"$W/$1.clone.log" || { cat "$W/$1.clone.log"; return 1; }
}

# podman run with the clone $2 at /src (leftovers of an interrupted run removed)
fresh_run() {
    name=$1; src=$2; shift 2
    podman rm -f -t 0 "$name" >/dev/null 2>&1
    set -- --name "$name" --network host --cap-add SYS_PTRACE --security-opt seccomp=unconfined \
        --shm-size 1g -v "$W/$src":/src -w /src "$@"
    if [ -d /usr/local/share/ca-certificates ] && [ -n "$(ls /usr/local/share/ca-certificates)" ]; then
        set -- -v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro "$@"
    fi
    [ -z "${NODE_EXTRA_CA_CERTS:-}" ] || set -- -e NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS" "$@"
    podman run "$@"
}

# The shell command for the container: set the service policy, then run $1
fresh_cmd() {
    printf '%s' "printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && $1"
}

# POST $2 (JSON) to path $1 on the server; prints the answer, fails on HTTP errors
post() {
    python3 - "$PORT" "$1" "$2" <<'PY'
import json, sys, urllib.request
port, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(),
                             headers={"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=60))))
PY
}

# ---- 1. the run command -----------------------------------------------------
if [ "$ONLY" != check ]; then
    if python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',$PORT))" 2>/dev/null; then :; else
        bad "port $PORT on 127.0.0.1 is in use (set FRESH_PORT)"; finish
    fi
    clone run || { bad "git clone of $ROOT"; finish; }
    t0=$(date +%s)
    fresh_run synth-fresh-run run -d -e SYNTH_PORT="$PORT" "$BASE" sh -c "$(fresh_cmd "$RUN_CMD")" >/dev/null ||
        { bad "podman run of the run command"; finish; }
    up=0
    # deps + build take minutes; give up after 20 (or when the container ends)
    while [ $(( $(date +%s) - t0 )) -lt 1200 ]; do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" \
            2>/dev/null; then up=1; break; fi
        [ "$(podman inspect -f '{{.State.Running}}' synth-fresh-run 2>/dev/null)" = true ] || break
        sleep 2
    done
    podman logs synth-fresh-run >"$W/run.log" 2>&1
    if [ $up = 1 ]; then
        ok "run command: /health answers $(( $(date +%s) - t0 ))s after the start (install + build + load)"
        core=$(podman exec synth-fresh-run ./synth info 2>/dev/null | grep -i "openblas" | head -n 1)
        note "${core:-synth info printed no OpenBLAS line}"
        g=$(post /generate '{"prompt": "The game was released in", "max_tokens": 16, "seed": 1}' 2>&1)
        echo "$g" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['usage']['completion_tokens'] > 0" \
            2>/dev/null && ok "run command: /generate answered: $(echo "$g" | cut -c1-100)" ||
            bad "run command: /generate: $g"
        s=$(post /score '{"text": "The game was released in Japan ."}' 2>&1)
        echo "$s" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['perplexity'] > 1" 2>/dev/null &&
            ok "run command: /score answered: $(echo "$s" | cut -c1-100)" || bad "run command: /score: $s"
        # SIGTERM to the server itself (the container's PID 1 may be the sh
        # running the command, which would not pass it on)
        spid=$(podman exec synth-fresh-run sh -c \
            'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = synth ] && echo ${p#/proc/}; done' 2>/dev/null |
            head -n 1)
        if [ -z "$spid" ]; then
            bad "run command: no synth process in the container to stop"
        else
            podman exec synth-fresh-run sh -c "kill -TERM $spid" >/dev/null 2>&1   # kill: the shell builtin (no procps)
            rc=$(timeout 60 podman wait synth-fresh-run 2>/dev/null)
            [ "$rc" = 0 ] && ok "run command: the server drains and exits 0 on SIGTERM" ||
                bad "run command: exit '$rc' after SIGTERM to synth (pid $spid in the container)"
        fi
    else
        tail -n 25 "$W/run.log"
        bad "run command: the server did not answer /health within $(( $(date +%s) - t0 ))s"
    fi
    podman rm -f -t 0 synth-fresh-run >/dev/null 2>&1
fi

# ---- 2. the test command ----------------------------------------------------
if [ "$ONLY" != run ]; then
    clone check || { bad "git clone of $ROOT"; finish; }
    t0=$(date +%s)
    fresh_run synth-fresh-check check "$BASE" sh -c "$(fresh_cmd "$CHECK_CMD")" >"$W/check.log" 2>&1 &
    cpid=$!
    # the time limit: a watchdog stops the container (its exit is then 137)
    # (no inherited stdout: a pipe reading this script's output must not
    # wait for the sleeping watchdog)
    ( sleep 3600 && touch "$W/check.timeout" && podman stop -t 5 synth-fresh-check ) >/dev/null 2>&1 &
    wpid=$!
    wait $cpid
    rc=$?
    pkill -P $wpid 2>/dev/null; kill $wpid 2>/dev/null
    [ -e "$W/check.timeout" ] && note "the test command ran into the 60-minute limit"
    dt=$(( $(date +%s) - t0 ))
    # the two halves' summaries ("N passed, M failed") and any failure lines
    grep -E "^[0-9]+ passed, [0-9]+ failed|^failed:|FAILED" "$W/check.log" | sed 's/^/     /'
    if [ $rc = 0 ]; then
        ok "test command: exit 0 in ${dt}s (install + build + suite + sanitizer suite)"
    else
        tail -n 30 "$W/check.log"
        bad "test command: exit $rc after ${dt}s"
    fi
    podman rm -f -t 0 synth-fresh-check >/dev/null 2>&1
fi
finish
