#!/bin/sh
# docker/test-deploy.sh - the container deployment test (`make test-deploy`).
#
# Builds the image (docker/Dockerfile) with podman, starts docker/compose.yaml
# (3 replicas + nginx) on loopback ports, and checks through nginx:
#   1. the image: non-root user, no compiler inside, HEALTHCHECK kept, size
#      (goal: the runtime stage adds at most 60 MB to the base, model included)
#   2. 300 /score and /generate requests all succeed, every replica served
#      some (read from each replica's /metrics)
#   3. SIGKILL of one replica under continuous load: no failed idempotent
#      request (the engine restarts it: restart: on-failure)
#   4. `podman stop` of another under load with streams in flight: its
#      streams finish completely, its /ready turns 503, nginx stops sending
#      to it, zero failed requests, it exits 0 within the drain timeout
# and tears everything down on exit, also when a step fails.
#
# Environment:
#   SYNTH          synth binary, to train a small test model (default ./synth)
#   DEPLOY_MODEL   model baked into the image (default: the shipped
#                  weights/synthesizer-wt2-q8_0.gguf, else a small model
#                  trained here)
#   DEPLOY_PORT    first of 4 loopback ports: nginx, then the 3 replicas (18480)
#   DEBIAN_MIRROR  mirror for debootstrap (default: the one apt uses here;
#                  docker/base-image.sh)
#   KEEP=1         leave the stack running (no teardown) for inspection
# Needs root (rootful podman): podman, podman-compose, runc, debootstrap,
# python3; missing packages are installed with apt-get when possible,
# otherwise the test is skipped with a message.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
SYNTH=${SYNTH:-$ROOT/synth}
export CONTAINERS_CONF="$ROOT/docker/containers.conf"
PROJECT=synthtest
IMAGE=localhost/synth:test
LB_IMAGE=localhost/synth-lb:test
BASE=localhost/debian:bookworm-slim
P0=${DEPLOY_PORT:-18480}
LB_PORT=$P0; P1=$((P0 + 1)); P2=$((P0 + 2)); P3=$((P0 + 3))
W=$(mktemp -d /tmp/synth-deploy.XXXXXX)
. docker/lib.sh

compose() {
    SYNTH_IMAGE=$IMAGE SYNTH_LB_IMAGE=$LB_IMAGE SYNTH_LB_PORT=$LB_PORT \
    SYNTH1_PORT=$P1 SYNTH2_PORT=$P2 SYNTH3_PORT=$P3 \
        podman-compose -p "$PROJECT" -f docker/compose.yaml "$@"
}

teardown() {
    trap - EXIT INT TERM
    if [ "${KEEP:-0}" = 1 ]; then
        echo "KEEP=1: stack left running (podman-compose -p $PROJECT -f docker/compose.yaml down -t 30)"
    elif command -v podman >/dev/null 2>&1; then
        compose down -t 5 >"$W/down.log" 2>&1
        for c in synth-r1 synth-r2 synth-r3 synth-lb; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
        podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
    fi
    rm -rf "$W"
}
trap 'teardown' EXIT
trap 'teardown; exit 130' INT TERM

# ---- 0. tools -------------------------------------------------------------
need=""
for t in podman:podman podman-compose:podman-compose runc:runc debootstrap:debootstrap \
         netavark:netavark aardvark-dns:aardvark-dns iptables:iptables; do
    cmd=${t%%:*}; pkg=${t#*:}
    case $cmd in
        netavark) [ -x /usr/lib/podman/netavark ] || need="$need $pkg" ;;
        aardvark-dns) [ -x /usr/lib/podman/aardvark-dns ] || need="$need $pkg" ;;
        *) command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg" ;;
    esac
done
if [ -n "$need" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$need"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >"$W/apt.log" 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >"$W/apt.log" 2>&1; } ||
            { tail -5 "$W/apt.log"; echo "SKIP: no container engine can be installed here (apt-get failed)"; finish; }
    else
        echo "SKIP: container engine missing (need root and apt-get to install:$need)"
        finish
    fi
fi
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the deployment test uses rootful podman (run as root)"; finish; }
for p in $P0 $P1 $P2 $P3; do
    if python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$p))" 2>/dev/null; then :; else
        bad "port $p on 127.0.0.1 is in use (set DEPLOY_PORT)"; finish
    fi
done
# leftovers of an interrupted run
for c in synth-r1 synth-r2 synth-r3 synth-lb; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done

# ---- 1. base image: debian:bookworm-slim made locally ---------------------
if msg=$(docker/base-image.sh "$BASE" 2>&1); then ok "$msg"; else echo "$msg"; bad "base image $BASE"; finish; fi

# ---- 1b. the container network starts -------------------------------------
# A container on a bridge network is what compose needs; when netavark
# cannot set it up (on a fresh Debian: no iptables, "netavark: No such file
# or directory"), say so here, naming the piece, instead of as a compose
# stack that never comes up.
podman network rm -f synth-probe >/dev/null 2>&1
if podman network create synth-probe >"$W/net.log" 2>&1 &&
   podman run --rm --network synth-probe "$BASE" true >>"$W/net.log" 2>&1; then
    ok "a container starts on a bridge network"
else
    tail -3 "$W/net.log"
    hint="the container network cannot start"
    grep -q "netavark" "$W/net.log" && hint="$hint: netavark failed (it needs iptables: apt-get install iptables)"
    command -v iptables >/dev/null 2>&1 || hint="$hint; iptables is not installed"
    bad "$hint"
    podman network rm -f synth-probe >/dev/null 2>&1
    finish
fi
podman network rm -f synth-probe >/dev/null 2>&1

# ---- 2. the model baked into the image ------------------------------------
MODEL=${DEPLOY_MODEL:-}
if [ -z "$MODEL" ] && [ -f weights/synthesizer-wt2-q8_0.gguf ]; then MODEL=weights/synthesizer-wt2-q8_0.gguf; fi
if [ -z "$MODEL" ]; then
    # the shipped model is not there yet: one of its shape (random
    # synthesizer, ctx 256, d 256, 6 layers; a small vocabulary), trained
    # for 2 steps: the same size class and decoding speed
    mkdir -p build/deploy
    cat README.md weights/README.md > "$W/text.txt"
    if "$SYNTH" tokenizer-train --input "$W/text.txt" --vocab 400 -o "$W/tok.gguf" >"$W/train.log" 2>&1 &&
       "$SYNTH" train --train "$W/text.txt" --valid "$W/text.txt" --tokenizer "$W/tok.gguf" -o "$W/m.gguf" \
           --variant random --ctx 256 --d-model 256 --layers 6 --heads 4 --d-ff 1024 --batch 1 --seq 32 \
           --steps 2 --warmup 1 --eval-every 2 --dropout 0 >>"$W/train.log" 2>&1 &&
       "$SYNTH" quantize "$W/m.gguf" build/deploy/test-model.gguf --type q8_0 >>"$W/train.log" 2>&1; then
        MODEL=build/deploy/test-model.gguf
        note "the shipped model is missing: testing with a small model trained here ($MODEL)"
    else
        tail -5 "$W/train.log"; bad "training the small test model with $SYNTH"; finish
    fi
fi
[ -f "$MODEL" ] || { bad "model $MODEL not found"; finish; }
# the build context holds weights/ and build/deploy/*.gguf (Dockerfile.dockerignore)
case $MODEL in "$ROOT"/*) MODEL=${MODEL#"$ROOT"/} ;; esac
case $MODEL in
    weights/*.gguf|build/deploy/*.gguf) ;;
    *) mkdir -p build/deploy && cp "$MODEL" build/deploy/model.gguf && MODEL=build/deploy/model.gguf ;;
esac
model_bytes=$(stat -c %s "$MODEL")
note "model: $MODEL ($model_bytes bytes)"

# ---- 3. build -------------------------------------------------------------
# --network host: RUN steps reach the apt mirror through the host's resolver
# --format docker: keeps HEALTHCHECK (the OCI format has no such field)
t0=$(date +%s)
if podman build --network host --format docker --ignorefile docker/Dockerfile.dockerignore \
        -f docker/Dockerfile --build-arg BASE="$BASE" --build-arg MODEL="$MODEL" -t "$IMAGE" . >"$W/build.log" 2>&1; then
    ok "image $IMAGE built ($(( $(date +%s) - t0 ))s)"
else
    tail -20 "$W/build.log"; bad "podman build of $IMAGE"; finish
fi
t0=$(date +%s)
if podman build --network host --format docker --ignorefile docker/Dockerfile.dockerignore \
        -f docker/Dockerfile --build-arg BASE="$BASE" --target lb -t "$LB_IMAGE" . >"$W/build-lb.log" 2>&1; then
    ok "image $LB_IMAGE built ($(( $(date +%s) - t0 ))s)"
else
    tail -20 "$W/build-lb.log"; bad "podman build of $LB_IMAGE"; finish
fi

# ---- 4. the image ---------------------------------------------------------
user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
uid=$(podman run --rm --entrypoint id "$IMAGE" -u 2>/dev/null)
[ -n "$uid" ] && [ "$uid" != 0 ] && ok "non-root: USER $user, id -u in the container: $uid" ||
    bad "non-root user (USER '$user', id -u '$uid')"
tools=$(podman run --rm --entrypoint sh "$IMAGE" -c \
    'for c in gcc cc c99 c++ g++ cpp clang tcc as ld make; do command -v $c; done
     dpkg-query -W -f "\${db:Status-Abbrev} \${Package}\n" |
       awk "\$1 == \"ii\" && (\$2 ~ /^(gcc|g[+][+]|cpp|clang|tcc|binutils|make)(-[0-9.]+)?(:amd64)?\$/ || \$2 ~ /-dev(:amd64)?\$/) {print \$2}"' 2>/dev/null)
[ -z "$tools" ] && ok "no compiler, binutils or -dev package in the image" ||
    bad "compiler or build tools in the image: $(echo $tools)"
hc=$(podman image inspect "$IMAGE" --format '{{if .Config.Healthcheck}}{{index .Config.Healthcheck.Test 0}}{{end}}')
[ "$hc" = CMD ] && ok "HEALTHCHECK kept in the image" || bad "HEALTHCHECK missing (built without --format docker?)"
sig=$(podman image inspect "$IMAGE" --format '{{.Config.StopSignal}} {{index .Config.Entrypoint 0}}')
[ "$sig" = "SIGTERM /usr/local/bin/synth" ] && ok "STOPSIGNAL SIGTERM, exec-form entrypoint synth" ||
    bad "stop signal / entrypoint: $sig"
rt=$(podman run --rm --entrypoint sh "$IMAGE" -c 'command -v sleep; command -v bash' 2>/dev/null | tr '\n' ' ')
[ "$(echo $rt | wc -w)" -eq 2 ] && ok "sleep (k8s preStop) and bash (HEALTHCHECK) in the image" ||
    bad "sleep/bash in the image: '$rt'"
ro=$(podman run --rm --entrypoint sh "$IMAGE" -c 'test -r "$SYNTH_MODEL" && ! test -w "$SYNTH_MODEL" && echo ro' 2>/dev/null)
[ "$ro" = ro ] && ok "model readable, not writable by the server user" || bad "model file permissions"
base_b=$(podman image inspect "$BASE" --format '{{.Size}}')
img_b=$(podman image inspect "$IMAGE" --format '{{.Size}}')
added=$(( (img_b - base_b) / 1000000 ))
note "image size: $IMAGE $((img_b / 1000000)) MB = base $((base_b / 1000000)) MB + runtime stage $added MB (model $((model_bytes / 1000000)) MB)"
podman history "$IMAGE" --format '{{.Size}}	{{.CreatedBy}}' 2>/dev/null | awk -F'\t' '$1 !~ /^0 B/' |
    head -6 | cut -c1-110 | sed 's/^/       /'
[ "$added" -le 60 ] && ok "runtime stage adds $added MB <= 60 MB to the base image" ||
    bad "runtime stage adds $added MB > 60 MB to the base image"

# ---- 5. compose up --------------------------------------------------------
t0=$(date +%s)
if compose up -d >"$W/up.log" 2>&1; then :; else tail -20 "$W/up.log"; bad "podman-compose up"; finish; fi
up=0
for i in $(seq 1 150); do
    n=0
    for p in $P1 $P2 $P3; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/ready")" = 200 ] && n=$((n + 1))
    done
    lb=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LB_PORT/health")
    if [ "$n" -eq 3 ] && [ "$lb" = 200 ]; then up=1; break; fi
    sleep 0.2
done
if [ "$up" -eq 1 ]; then
    ok "compose stack up: 3 replicas ready, nginx on 127.0.0.1:$LB_PORT ($(( $(date +%s) - t0 ))s)"
else
    podman ps -a; tail -20 "$W/up.log"; podman logs --tail 20 synth-r1; bad "compose stack did not come up"; finish
fi
for c in synth-r1 synth-r2 synth-r3; do
    podman healthcheck run "$c" >/dev/null 2>&1 || { bad "podman healthcheck run $c"; continue; }
done
ok "podman healthcheck run: all 3 replicas healthy"
models=$(curl -s "http://127.0.0.1:$LB_PORT/v1/models")
case $models in *'"context_length"'*) ok "GET /v1/models through nginx: $(echo "$models" | cut -c1-160)" ;;
    *) bad "GET /v1/models through nginx: $models" ;; esac
big=$(python3 -c "print('{\"text\":\"' + 'a' * 1100000 + '\"}')" |
      curl -s -o "$W/413" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- \
           "http://127.0.0.1:$LB_PORT/score")
[ "$big" = 413 ] && grep -q request_too_large "$W/413" && ok "body over 1 MiB: 413 JSON from nginx" ||
    bad "body over 1 MiB: status $big $(head -c 200 "$W/413")"

ipof() { podman inspect "$1" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'; }
replicas() {
    echo "--replica synth1,http://127.0.0.1:$P1,$(ipof synth-r1):8080" \
         "--replica synth2,http://127.0.0.1:$P2,$(ipof synth-r2):8080" \
         "--replica synth3,http://127.0.0.1:$P3,$(ipof synth-r3):8080"
}
lbcheck() { # scenario, args...: its ok/FAIL lines counted here
    python3 docker/lbcheck.py "$@" --lb "http://127.0.0.1:$LB_PORT" $(replicas) >"$W/lbcheck.out" 2>&1
    rc=$?
    grep -v '^[0-9]* passed, [0-9]* failed$' "$W/lbcheck.out"
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$W/lbcheck.out")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$W/lbcheck.out")
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    [ -n "$p" ] || { [ $rc -ne 0 ] && bad "lbcheck $1 crashed (exit $rc)"; }
}

# ---- 6. 300 requests spread over the replicas -----------------------------
echo "== 300 /score and /generate requests through nginx"
lbcheck spread --n 300

# ---- 7. SIGKILL one replica under load ------------------------------------
echo "== SIGKILL synth-r1 under continuous load"
pid1=$(podman inspect synth-r1 --format '{{.State.Pid}}')
lbcheck kill --victim synth1 --action "kill -KILL $pid1" --after 3
restarted=0
for i in $(seq 1 50); do
    st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/ready")
    [ "$st" = 200 ] && { restarted=1; break; }
    sleep 0.2
done
rc1=$(podman inspect synth-r1 --format '{{.RestartCount}}')
[ "$restarted" -eq 1 ] && ok "synth-r1 restarted by the engine (restart: on-failure, restarts $rc1) and ready" ||
    bad "synth-r1 not back after SIGKILL (restarts $rc1, /ready $st)"
# nginx took it out (max_fails); after fail_timeout (10 s) one request probes
# it again and it is back in the rotation
ip1=$(ipof synth-r1); back=0; t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt 20 ]; do
    up=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' -d '{"text":"back?"}' \
         "http://127.0.0.1:$LB_PORT/tokenize" | tr -d '\r' | sed -n 's/^X-Upstream: //Ip')
    case $up in *"$ip1:8080") back=1; break ;; esac
    sleep 0.1
done
[ "$back" -eq 1 ] && ok "nginx sends to synth-r1 again ($(( $(date +%s) - t0 ))s after it was ready; address $ip1)" ||
    bad "nginx did not send to the restarted synth-r1 ($ip1) within 20 s"

# ---- 8. podman stop another under load, streams in flight -----------------
echo "== podman stop synth-r2 under load with streams in flight"
lbcheck drain --victim synth2 --action "podman stop -t 35 synth-r2 >/dev/null 2>&1" --after 2 --streams 9
code=$(podman inspect synth-r2 --format '{{.State.ExitCode}}')
podman logs synth-r2 >"$W/r2.log" 2>&1
drained=$(grep -o '"signal 15: draining [0-9]* request(s)' "$W/r2.log" | head -n 1 | tr -d '"')
[ "$code" = 0 ] && ok "synth-r2 exited 0 after SIGTERM" || bad "synth-r2 exit code $code"
n=$(echo "$drained" | awk '{print $4}')
[ "${n:-0}" -ge 1 ] && ok "synth-r2's own log: \"$drained\" (requests in flight when SIGTERM arrived)" ||
    bad "synth-r2 had no request in flight when SIGTERM arrived (log: '$drained')"
if grep -q 'drain timeout' "$W/r2.log"; then
    bad "synth-r2 hit its drain timeout: $(grep 'drain timeout' "$W/r2.log" | head -n 1)"
else
    ok "synth-r2 finished draining before its drain timeout"
fi
# started again, synth-r2 gets a new address; the lb entrypoint notices
# and reloads nginx, which then sends to it again
old2=$(ipof synth-r2)
podman start synth-r2 >/dev/null 2>&1
back=0; t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt 30 ]; do
    ip2=$(ipof synth-r2)
    up=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' -d '{"text":"back?"}' \
         "http://127.0.0.1:$LB_PORT/tokenize" | tr -d '\r' | sed -n 's/^X-Upstream: //Ip')
    case $up in *"$ip2:8080") [ -n "$ip2" ] && { back=1; break; } ;; esac
    sleep 0.2
done
[ "$back" -eq 1 ] && ok "synth-r2 started again (address ${old2:-none} -> $ip2): nginx sends to it after $(( $(date +%s) - t0 ))s" ||
    bad "synth-r2 started again ($ip2) but nginx did not send to it within 30 s"
fivexx=$(podman logs synth-lb 2>/dev/null | grep -c '" 50[0-9] ')
note "nginx access log: $fivexx responses with status 5xx sent to clients"

finish
