#!/bin/sh
# t_lb.sh - the load-balancer checks of the container deployment test
# (docker/test-deploy.sh) without containers: nginx from Debian, run with
# docker/nginx.conf itself (only the upstream and listen addresses and the
# file paths rewritten), in front of 3 `synth serve` processes on loopback
# ports. Checks, through nginx (client: docker/lbcheck.py):
#   - 300 /score and /generate requests all succeed, every replica served
#     some (each replica's /metrics), the counters add up to 300;
#   - SIGKILL of one replica under continuous load: no failed idempotent
#     request;
#   - SIGTERM of another under load with streams in flight: its streams
#     finish completely, its /ready turns 503, nginx stops sending to it,
#     zero failed requests, it exits 0. Its streams run as many tokens as
#     one stream alone makes in 0.5 s (up to 1000): long enough for the
#     /ready poll to see the drain on a fast build, short enough for a
#     sanitizer build to finish them.
# Every process it starts is stopped on exit, also on failure.
# Uses $SYNTH (default ./synth); needs nginx (nginx-light) and python3.
set -u
cd "$(dirname "$0")/.." || exit 1
SYNTH=${SYNTH:-./synth}
T=$(mktemp -d /tmp/t_lb.XXXXXX)
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
PIDS=""
NGINX_PID=""

cleanup() {
    trap - EXIT INT TERM
    [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    # nginx's master stops its workers; give it a moment, then insist
    i=0
    while [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    [ -n "$NGINX_PID" ] && kill -KILL "$NGINX_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
    bad "nginx not installed (Debian nginx-light; .ci/deps.sh --all installs it)"
    finish
fi

# ---- the deployment files: YAML lint, Kubernetes manifest relations --------
if command -v yamllint >/dev/null 2>&1; then
    yamllint -s docker/k8s docker/compose.yaml >"$T/yamllint.out" 2>&1 &&
        ok "yamllint -s docker/k8s/*.yaml docker/compose.yaml" || { cat "$T/yamllint.out"; bad "yamllint"; }
else
    bad "yamllint not installed (.ci/deps.sh --all installs it)"
fi
# PyYAML comes with Debian's yamllint, for Debian's python3
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
$PY docker/check-k8s.py >"$T/k8s.out" 2>&1; rc=$?
grep '^FAIL' "$T/k8s.out"
kp=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$T/k8s.out")
kf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$T/k8s.out")
[ -n "$kp" ] && echo "ok   docker/check-k8s.py: $kp manifest checks passed, $kf failed" || tail -3 "$T/k8s.out"
pass=$((pass + ${kp:-0})); fail=$((fail + ${kf:-1}))

# ---- a small model: long enough streams to be in flight at the signal ----
cat README.md weights/README.md > "$T/text.txt"
if "$SYNTH" tokenizer-train --input "$T/text.txt" --vocab 400 -o "$T/tok.gguf" >"$T/train.log" 2>&1 &&
   "$SYNTH" train --train "$T/text.txt" --valid "$T/text.txt" --tokenizer "$T/tok.gguf" -o "$T/m.gguf" \
       --variant random --ctx 1024 --d-model 128 --layers 4 --heads 4 --d-ff 512 --batch 2 --seq 32 \
       --steps 2 --warmup 1 --eval-every 2 --dropout 0 >>"$T/train.log" 2>&1 &&
   "$SYNTH" quantize "$T/m.gguf" "$T/m-q8_0.gguf" --type q8_0 >>"$T/train.log" 2>&1; then
    ok "small test model trained and quantized"
else
    tail -5 "$T/train.log"; bad "training the test model"; finish
fi

# ---- four free loopback ports: nginx, then the replicas -------------------
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()')
PL=$1; P1=$2; P2=$3; P3=$4

# ---- 3 replicas ------------------------------------------------------------
start_replica() { # n port
    OPENBLAS_NUM_THREADS=1 "$SYNTH" serve -m "$T/m-q8_0.gguf" --host 127.0.0.1 --port "$2" \
        --drain-timeout 20 --request-timeout 60000 --threads 1 2>"$T/synth$1.log" &
    eval "PID$1=\$!"
    PIDS="$PIDS $!"
}
start_replica 1 "$P1"; start_replica 2 "$P2"; start_replica 3 "$P3"

# ---- nginx with docker/nginx.conf ------------------------------------------
sed -e "s/server synth1:8080 /server 127.0.0.1:$P1 /" \
    -e "s/server synth2:8080 /server 127.0.0.1:$P2 /" \
    -e "s/server synth3:8080 /server 127.0.0.1:$P3 /" \
    -e "s/^\( *\)listen 8080;/\1listen 127.0.0.1:$PL;/" \
    -e "s|access_log /dev/stdout synth;|access_log $T/access.log synth;|" \
    -e "s/^worker_processes auto;/worker_processes 1;/" \
    -e "s|^http {|http {\n    client_body_temp_path $T/body; proxy_temp_path $T/proxy; fastcgi_temp_path $T/fastcgi;\n    uwsgi_temp_path $T/uwsgi; scgi_temp_path $T/scgi;|" \
    docker/nginx.conf > "$T/nginx.conf"
for p in "$P1" "$P2" "$P3" "listen 127.0.0.1:$PL" "$T/access.log"; do
    grep -q -- "$p" "$T/nginx.conf" || { bad "rewriting docker/nginx.conf: '$p' missing"; finish; }
done
NGX_G="daemon off; pid $T/nginx.pid; error_log $T/error.log warn;"
if "$NGINX" -t -p "$T" -c "$T/nginx.conf" -g "$NGX_G" >"$T/nginx-t.log" 2>&1; then
    ok "nginx -t accepts docker/nginx.conf (addresses rewritten for loopback)"
else
    cat "$T/nginx-t.log"; bad "nginx -t"; finish
fi
"$NGINX" -p "$T" -c "$T/nginx.conf" -g "$NGX_G" 2>>"$T/error.log" &
NGINX_PID=$!

# ---- everything ready -------------------------------------------------------
up=0
for i in $(seq 1 150); do
    n=0
    for p in "$P1" "$P2" "$P3"; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/ready")" = 200 ] && n=$((n + 1))
    done
    [ $n -eq 3 ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PL/health")" = 200 ] &&
        { up=1; break; }
    sleep 0.1
done
[ $up -eq 1 ] && ok "3 replicas ready, nginx on 127.0.0.1:$PL" ||
    { tail -3 "$T"/synth*.log "$T/error.log"; bad "replicas or nginx did not come up"; finish; }

st=$(python3 -c "print('{\"text\":\"' + 'a' * 1100000 + '\"}')" |
     curl -s -o "$T/413" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- \
          "http://127.0.0.1:$PL/score")
[ "$st" = 413 ] && grep -q request_too_large "$T/413" && ok "body over 1 MiB: 413 in the server's JSON error shape" ||
    bad "body over 1 MiB: status $st $(head -c 200 "$T/413")"

REPLICAS="--replica synth1,http://127.0.0.1:$P1,127.0.0.1:$P1 --replica synth2,http://127.0.0.1:$P2,127.0.0.1:$P2
          --replica synth3,http://127.0.0.1:$P3,127.0.0.1:$P3"
lbcheck() { # scenario args...: count its ok/FAIL lines
    python3 docker/lbcheck.py "$@" --lb "http://127.0.0.1:$PL" $REPLICAS --timeout 10 >"$T/lbcheck.out" 2>&1
    rc=$?
    grep -v '^[0-9]* passed, [0-9]* failed$' "$T/lbcheck.out"
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$T/lbcheck.out")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$T/lbcheck.out")
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    [ -n "$p" ] || bad "lbcheck $1 did not finish (exit $rc)"
}

echo "== 300 /score and /generate requests through nginx"
lbcheck spread --n 300

echo "== SIGKILL synth1 under continuous load"
lbcheck kill --victim synth1 --action "kill -KILL $PID1" --after 2 --warmup 0.5
wait "$PID1" 2>/dev/null

echo "== SIGTERM synth2 under load with streams in flight"
lbcheck drain --victim synth2 --action "kill -TERM $PID2" --after 1.5 --warmup 0.5 --streams 9 --stream-tokens 1000 --stream-seconds 0.5 --long-score 20
wait "$PID2"; rc=$?
drained=$(grep -o '"signal 15: draining [0-9]* request(s)' "$T/synth2.log" | head -n 1 | tr -d '"')
[ $rc -eq 0 ] && ok "synth2 exited 0 after SIGTERM" || { tail -5 "$T/synth2.log"; bad "synth2 exit code $rc"; }
n=$(echo "$drained" | awk '{print $4}')
[ "${n:-0}" -ge 1 ] && ok "synth2's log: \"$drained\"" || bad "synth2 had no request in flight at SIGTERM ('$drained')"
grep -q 'drain timeout' "$T/synth2.log" && bad "synth2 hit its drain timeout: $(grep 'drain timeout' "$T/synth2.log")" ||
    ok "synth2 drained before its drain timeout"
kill -0 "$PID3" 2>/dev/null && ok "synth3 still serving" || bad "synth3 died"
finish
