#!/bin/sh
# t_valgrind.sh - valgrind memcheck on the command-line paths (tokenizer-train,
# a few training steps, info, quantize, score, generate) and on a short
# server run (every route once, a stream, a stream cut mid-way, a bad body,
# SIGTERM). Each run must report no memcheck error and no definitely or
# indirectly lost block (--error-exitcode); "still reachable" and "possibly
# lost" blocks of library thread pools (OpenBLAS, libuv) are not counted.
#
# valgrind 3.19 does not decode AVX-512, and the normal build uses
# -march=native, so this script builds its own synth into build-valgrind/
# with ARCH=x86-64-v3 (AVX2 + FMA: what valgrind emulates; OpenBLAS picks its
# kernels from cpuid, which valgrind reports without AVX-512).
# Skipped (with a message) when valgrind is missing or under SANITIZE (the
# sanitizer suite checks the same paths with ASan instead). Runs in make test.
set -u
cd "$(dirname "$0")/.." || exit 1
if [ -n "${SANITIZE:-}" ]; then
    echo "t_valgrind: skipped under SANITIZE=$SANITIZE (memcheck runs on the plain build)"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "t_valgrind: skipped: valgrind is not installed (Debian package valgrind)"
    echo "0 passed, 0 failed"
    exit 0
fi
VB=build-valgrind
V=$VB/synth
T=$(mktemp -d)
srv=""
trap '[ -n "$srv" ] && kill -9 $srv 2>/dev/null; rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# the parent make's command-line variables (SANITIZE=...) must not leak in
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s BUILD=$VB ARCH=x86-64-v3 SANITIZE= SYNTH=$V $V >"$T/build" 2>&1; then
    cat "$T/build"
    echo "t_valgrind: cannot build $V"
    echo "0 passed, 1 failed"
    exit 1
fi
export OPENBLAS_NUM_THREADS=1 SYNTH_THREADS=1
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --num-callers=20"

vg() { # name, synth arguments...: memcheck clean and exit 0 (exit $want if set)
    name=$1; shift
    $VG $V "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq "${want:-0}" ]; then ok "memcheck: $name"
    else bad "memcheck: $name (exit $rc)"; grep -v '^==[0-9]*== *$' "$T/err" | head -n 40; fi
}

cat README.md weights/README.md > "$T/text.txt"
head -c 3000 README.md > "$T/small.txt"
vg "tokenizer-train" tokenizer-train --input "$T/small.txt" --vocab 300 -o "$T/tok.gguf"
vg "train 3 steps" train --train "$T/small.txt" --valid "$T/small.txt" --tokenizer "$T/tok.gguf" \
    -o "$T/m.gguf" --ctx 16 --d-model 32 --layers 1 --heads 2 --d-ff 32 --batch 2 --seq 16 \
    --steps 3 --warmup 1 --eval-every 3 --dropout 0.1
vg "info" info "$T/m.gguf"
vg "quantize q8_0" quantize "$T/m.gguf" "$T/m8.gguf" --type q8_0
vg "quantize q4_0" quantize "$T/m.gguf" "$T/m4.gguf" --type q4_0
vg "score" score -m "$T/m8.gguf" --json "$T/small.txt"
vg "generate" generate -m "$T/m4.gguf" -p "The model" -n 12 --seed 3 --temp 0.8 --top-k 20
want=1 vg "error path: not a checkpoint" info "$T/small.txt"
want=2 vg "error path: bad flag" generate -m "$T/m4.gguf" -p x --temp abc

# a short server run
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$VG $V serve -m "$T/m8.gguf" --port "$port" --max-batch 4 --log-level warn >"$T/srv.out" 2>"$T/srv.err" &
srv=$!
python3 - "$port" <<'PY' && ok "server run under memcheck: every route answered" || bad "server run under memcheck: every route answered"
import json, socket, sys, time
port = int(sys.argv[1])
def req(method, path, body=None, cut=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    b = json.dumps(body).encode() if body is not None else b""
    h = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body is not None:
        h += f"Content-Length: {len(b)}\r\n"
    s.sendall(h.encode() + b"\r\n" + b)
    d = b""
    while True:
        k = s.recv(65536)
        if not k:
            break
        d += k
        if cut and b"data:" in d:
            break
    s.close()
    return int(d.split(b" ")[1]) if d.startswith(b"HTTP/1.1 ") else None, d
for _ in range(600):
    try:
        if req("GET", "/health")[0] == 200:
            break
    except OSError:
        time.sleep(0.1)
want = [(("GET", "/ready"), 200), (("GET", "/metrics"), 200), (("GET", "/v1/models"), 200),
        (("POST", "/generate", {"prompt": "The", "max_tokens": 5, "logprobs": True, "stop": ["zz"]}), 200),
        (("POST", "/generate", {"prompt": "The", "max_tokens": 5, "stream": True}), 200),
        (("POST", "/generate", {"prompt": "The", "max_tokens": 14, "stream": True}, True), 200),
        (("POST", "/v1/completions", {"prompt": "a b", "max_tokens": 3, "echo": True, "logprobs": 2}), 200),
        (("POST", "/score", {"text": "the model " * 20, "token_logprobs": True}), 200),
        (("POST", "/score", {"context": "the", "continuation": " model"}), 200),
        (("POST", "/tokenize", {"text": "hello"}), 200), (("POST", "/detokenize", {"tokens": [1, 2]}), 200),
        (("POST", "/generate", {"prompt": 3}), 400), (("GET", "/nope"), 404), (("GET", "/generate"), 405)]
bad = 0
for args, st in want:
    got = req(*args)[0]
    if got != st:
        print("unexpected", args[:2], got, "want", st)
        bad += 1
sys.exit(1 if bad else 0)
PY
kill -TERM $srv
wait $srv; rc=$?
srv=""
if [ $rc -eq 0 ]; then ok "memcheck: serve (SIGTERM, exit 0)"
else bad "memcheck: serve (exit $rc)"; grep -v '^==[0-9]*== *$' "$T/srv.err" | grep -v '"level"' | head -n 60; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
