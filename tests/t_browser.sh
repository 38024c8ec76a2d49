#!/bin/sh
# t_browser.sh - the playground page (GET /, server/web/) end to end in a
# real browser: Debian's /usr/bin/chromium, headless, driven by
# playwright-core (npm, installed in tests/browser/ from its lock file)
# through tests/browser/run.mjs, against real `synth serve` processes on
# loopback ports:
#   A: a small random-synthesizer model trained here on the repository's
#      README text (no API key): generate (streamed text == POST /generate),
#      score (coloured tokens, logprobs and totals == POST /score, a file
#      dropped and opened), the model panel and attention heat map, the
#      page's headers (CSP, ETag, 304), screenshots wide and narrow;
#   B: a larger dense model (1 training step; slow enough per token that a
#      1000-token greedy stream lasts seconds) with --api-key: the key is
#      entered once and sent as a header, never in a URL; the stop button
#      cancels a stream and /metrics shows the slot freed.
# Screenshots are kept in tests/artifacts/browser/ (gitignored).
# Every process it starts is stopped on exit, also on failure.
# Uses $SYNTH (default ./synth). Needs chromium, node and npm (.ci/deps.sh
# installs them) and `npm ci` in tests/browser/.
set -u
cd "$(dirname "$0")/.." || exit 1
SYNTH=${SYNTH:-./synth}
case $SYNTH in /*) ;; *) SYNTH=$(pwd)/$SYNTH ;; esac
T=$(mktemp -d /tmp/t_browser.XXXXXX)
ART=tests/artifacts/browser
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
PIDS=""

cleanup() {
    trap - EXIT INT TERM
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    i=0
    for p in $PIDS; do
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

# ---- what the test needs ----------------------------------------------------
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    bad "$CHROMIUM missing: install Debian's chromium (.ci/deps.sh --all installs it)"
    finish
fi
if ! command -v node >/dev/null 2>&1; then
    bad "node missing: install Debian's nodejs and npm (.ci/deps.sh --all installs them)"
    finish
fi
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
    bad "playwright-core missing: run (cd tests/browser && npm ci) (.ci/deps.sh --all does it)"
    finish
fi

# ---- models ---------------------------------------------------------------
export OPENBLAS_NUM_THREADS=1
cat README.md weights/README.md docker/README.md 2>/dev/null > "$T/text.txt"
# PLAYGROUND_MODEL=FILE serves FILE as model A instead (a static variant,
# e.g. the shipped weights, for screenshots of a real model)
if [ -n "${PLAYGROUND_MODEL:-}" ]; then cp "$PLAYGROUND_MODEL" "$T/a.gguf" || bad "cannot read $PLAYGROUND_MODEL"; fi
if "$SYNTH" tokenizer-train --input "$T/text.txt" --vocab 400 -o "$T/tok.gguf" >"$T/log" 2>&1 &&
   { [ -n "${PLAYGROUND_MODEL:-}" ] || "$SYNTH" train --train "$T/text.txt" --valid "$T/text.txt" --tokenizer "$T/tok.gguf" -o "$T/a.gguf" \
       --name playground-small --ctx 128 --d-model 32 --layers 2 --heads 2 --d-ff 64 --batch 4 --seq 128 \
       --steps 300 --warmup 10 --eval-every 300 --eval-tokens 512 --dropout 0 >"$T/log" 2>&1; } &&
   "$SYNTH" train --train "$T/text.txt" --valid "$T/text.txt" --tokenizer "$T/tok.gguf" -o "$T/b.gguf" \
       --name playground-dense --variant dense --ctx 1024 --d-model 384 --layers 6 --heads 2 --d-ff 1536 \
       --batch 1 --seq 32 --steps 1 --warmup 1 --eval-every 1 --eval-tokens 32 --dropout 0 >"$T/log" 2>&1; then
    ok "trained the test models"
else
    cat "$T/log"
    bad "training the test models"
    finish
fi
rm -f "$T"/*.state

# ---- servers ----------------------------------------------------------------
KEY="pg-key-$$-$(date +%s)"
start_server() { # name, model, extra flags...: sets PORT
    name=$1; m=$2; shift 2
    : >"$T/$name.log"
    "$SYNTH" serve -m "$m" --host 127.0.0.1 --port 0 --threads 1 --log-level info "$@" 2>"$T/$name.log" &
    PIDS="$PIDS $!"
    PORT=""
    i=0
    while [ -z "$PORT" ] && [ $i -lt 200 ]; do
        PORT=$(sed -n 's/.*"msg":"listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/$name.log" | head -n 1)
        [ -z "$PORT" ] && sleep 0.05
        i=$((i + 1))
    done
    [ -n "$PORT" ]
}
if start_server a "$T/a.gguf" && PORT_A=$PORT && start_server b "$T/b.gguf" --api-key "$KEY" && PORT_B=$PORT; then
    ok "servers listening on ports $PORT_A and $PORT_B"
else
    cat "$T"/*.log
    bad "starting the servers"
    finish
fi

# ---- the browser --------------------------------------------------------------
rm -rf "$ART"
mkdir -p "$ART"
printf 'The naïve café served crème brûlée — 3 × 4 = 12.\nSynthesizer attention without queries or keys.\n' > "$T/drop.txt"
URL_A="http://127.0.0.1:$PORT_A" URL_B="http://127.0.0.1:$PORT_B" API_KEY="$KEY" ART="$ART" \
    TEXT_FILE="$T/drop.txt" CHROMIUM="$CHROMIUM" PROFILE="$T/profile" \
    timeout -k 5 100 node tests/browser/run.mjs >"$T/node.out" 2>&1
rc=$?
cat "$T/node.out"
np=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$T/node.out" | tail -n 1)
nf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$T/node.out" | tail -n 1)
pass=$((pass + ${np:-0})); fail=$((fail + ${nf:-0}))
[ "$rc" -ne 0 ] && [ "${nf:-0}" -eq 0 ] && bad "run.mjs exited $rc"
if [ "$fail" -ne 0 ]; then
    echo "---- server A log (tail)"; tail -n 20 "$T/a.log"
    echo "---- server B log (tail)"; tail -n 20 "$T/b.log"
fi

# ---- the servers survived and stop cleanly -------------------------------------
for p in $PIDS; do
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p"
        wait "$p"; code=$?
        [ "$code" -eq 0 ] && ok "server $p exits 0 on SIGTERM" || bad "server $p exited $code on SIGTERM"
    else
        bad "server $p died during the test"
    fi
done
PIDS=""
ls "$ART"/*.png >/dev/null 2>&1 && echo "screenshots: $(ls "$ART"/*.png | tr '\n' ' ')"
finish
