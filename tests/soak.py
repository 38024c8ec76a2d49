#!/usr/bin/env python3
"""tests/soak.py - soak test of `synth serve` (make soak).

Starts the real server on a free loopback port with a small model and drives
SOAK_SECONDS (default 600) of mixed traffic from SOAK_CONNS (default 64)
client threads, each on its own connections: /generate (plain, streamed,
OpenAI), /score, /tokenize, /detokenize, GETs, malformed and oversized bodies
(Content-Length and chunked), wrong API key, unknown route and method, slow
clients (a request dribbled out over ~2 s), idle clients (half a request,
then silence past --idle-timeout), clients that hang up mid-stream, and
requests whose deadline (timeout_ms) expires. Then it stops the traffic and
checks by itself:

  * the server never died, and exits 0 on SIGTERM at the end;
  * every answer has a status designed for that request (e.g. /generate:
    200 or 503 when the queue is full; an expired deadline: 504 or 200;
    a bad body: 400; an oversized one: 413; idle: closed by the server);
  * resident memory: the peak RSS in the last minute of traffic exceeds the
    peak RSS of the minute after warm-up (the first 20%, at least 60 s) by
    less than 5%;
  * open file descriptors come back to the pre-traffic baseline;
  * /metrics at the end: queue empty, no running sequence, no request in
    flight but the /metrics one.

Bounded: SOAK_SECONDS of traffic, at most SOAK_MAX_REQUESTS requests
(default 2,000,000), loopback only; every child process is killed on exit.
Environment: SYNTH (binary, default ./synth), SOAK_MODEL (a checkpoint; by
default TEST_SERVER --fixture writes the test_server model), TEST_SERVER
(default build/tests/test_server), SOAK_SEED. Ends with "N passed, N failed".
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
CONNS = int(os.environ.get("SOAK_CONNS", "64"))
MAX_REQUESTS = int(os.environ.get("SOAK_MAX_REQUESTS", "2000000"))
SEED = int(os.environ.get("SOAK_SEED", "1"))
SYNTH = os.environ.get("SYNTH", "./synth")
MAX_BODY = 65536
IDLE_TIMEOUT = 4
API_KEY = "soak-key"
WORDS = ("the model attention random synthesizer of and a token layer learns weights without queries keys "
         "dense is in to text server batch each step value head context window score stream").split()

# designed statuses per request kind ("closed": the server closed the
# connection without an answer, designed only for the idle client)
DESIGNED = {
    "generate": {200, 503},
    "stream": {200, 503},
    "stream_cut": {200, 503},
    "completions": {200, 503},
    "completions_stream": {200, 503},
    "score": {200, 503},
    "score_texts": {200, 503},
    "score_cont": {200, 503},
    "tokenize": {200},
    "detokenize": {200, 400},
    "get": {200},
    "malformed": {400},
    "bad_field": {400},
    "oversized": {413},
    "oversized_chunked": {413},
    "wrong_key": {401},
    "no_route": {404},
    "bad_method": {405},
    "slow": {200, 503},
    "idle": {"closed", 408},
    "deadline": {200, 503, 504},
    "deadline_stream": {200, 503, 504},
}


class Fail(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def n_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Client:
    def __init__(self, port):
        self.port = port

    def connect(self, timeout=60):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    @staticmethod
    def head(method, path, body_len=None, key=API_KEY, extra=""):
        h = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if key:
            h += f"Authorization: Bearer {key}\r\n"
        if body_len is not None:
            h += f"Content-Type: application/json\r\nContent-Length: {body_len}\r\n"
        return (h + extra + "\r\n").encode()

    @staticmethod
    def read_all(s):
        data = b""
        while True:
            try:
                k = s.recv(65536)
            except ConnectionResetError:
                break
            if not k:
                break
            data += k
        return data

    @staticmethod
    def status_of(data):
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return int(m.group(1)) if m else None

    def request(self, method, path, body=None, key=API_KEY):
        s = self.connect()
        try:
            b = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            s.sendall(self.head(method, path, len(b) if b is not None else None, key) + (b or b""))
            data = self.read_all(s)
        finally:
            s.close()
        return self.status_of(data), data


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def body_of(data):
    i = data.find(b"\r\n\r\n")
    return data[i + 4:] if i >= 0 else b""


def check_stream(data, deadline=False):
    """A complete SSE answer ends with a final event holding finish_reason
    (or, when the deadline passed mid-stream, a timeout_error event) and the
    last chunk."""
    if not data.endswith(b"0\r\n\r\n"):
        return False
    if deadline and b'"type":"timeout_error"' in data:
        return True
    return b"finish_reason" in data and (b"[DONE]" in data or b'"usage"' in data)


def one_request(c, rng, kind):
    """Run one request of `kind`; returns its status (int or "closed")."""
    if kind == "generate":
        st, d = c.request("POST", "/generate", {"prompt": words(rng, rng.randint(0, 30)),
                                                 "max_tokens": rng.randint(1, 40), "seed": rng.randint(0, 1 << 30),
                                                 "temperature": rng.choice([0, 0.7, 1.0]),
                                                 "logprobs": rng.random() < 0.3})
        if st == 200:
            j = json.loads(body_of(d))
            if j["finish_reason"] not in ("length", "stop", "eos"):
                raise Fail(f"generate: finish_reason {j['finish_reason']}")
        return st
    if kind in ("stream", "completions_stream"):
        path = "/generate" if kind == "stream" else "/v1/completions"
        st, d = c.request("POST", path, {"prompt": words(rng, rng.randint(1, 20)), "max_tokens": rng.randint(1, 40),
                                         "stream": True, "seed": 5})
        if st == 200 and not check_stream(d):
            raise Fail(f"{kind}: incomplete stream: {d[-200:]!r}")
        return st
    if kind == "stream_cut":
        s = c.connect()
        b = json.dumps({"prompt": words(rng, 5), "max_tokens": 300, "stream": True}).encode()
        s.sendall(c.head("POST", "/generate", len(b)) + b)
        d = b""
        while b"data:" not in d and b"\r\n\r\n" not in d:
            k = s.recv(4096)
            if not k:
                break
            d += k
        if rng.random() < 0.5:   # hang up abruptly (RST) or politely (FIN)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        return c.status_of(d)
    if kind == "completions":
        st, d = c.request("POST", "/v1/completions", {"prompt": words(rng, 8), "max_tokens": rng.randint(0, 20),
                                                      "echo": True, "logprobs": rng.randint(0, 3)})
        return st
    if kind == "score":
        return c.request("POST", "/score", {"text": words(rng, rng.randint(1, 400)),
                                            "token_logprobs": rng.random() < 0.5})[0]
    if kind == "score_texts":
        return c.request("POST", "/score", {"texts": [words(rng, rng.randint(1, 50)) for _ in range(rng.randint(1, 6))]})[0]
    if kind == "score_cont":
        return c.request("POST", "/score", {"context": words(rng, 20), "continuation": " " + words(rng, 3)})[0]
    if kind == "tokenize":
        return c.request("POST", "/tokenize", {"text": words(rng, rng.randint(0, 100))})[0]
    if kind == "detokenize":
        return c.request("POST", "/detokenize", {"tokens": [rng.randint(0, 330) for _ in range(rng.randint(0, 50))]})[0]
    if kind == "get":
        return c.request("GET", rng.choice(["/health", "/ready", "/metrics", "/v1/models"]))[0]
    if kind == "malformed":
        b = json.dumps({"prompt": words(rng, 5), "max_tokens": 4}).encode()
        b = rng.choice([b[:rng.randint(0, len(b) - 1)], b"{" * rng.randint(1, 5000), b"\xff\xfe{}", b"[1,2]", b"null",
                        b[:-1] + b",}", b.replace(b":", b"=", 1)])
        return c.request("POST", rng.choice(["/generate", "/score", "/tokenize", "/v1/completions"]), b)[0]
    if kind == "bad_field":
        return c.request("POST", "/generate", rng.choice([
            {"prompt": 3}, {"prompt": "a", "max_tokens": -1}, {"prompt": "a", "temperature": "hot"},
            {"prompt": "a", "bogus": 1}, {"prompt": "a", "stop": [""]}, {"prompt": "a", "max_tokens": 100000}]))[0]
    if kind == "oversized":
        s = c.connect()
        s.sendall(c.head("POST", rng.choice(["/generate", "/score"]), MAX_BODY + rng.randint(1, 1 << 20)) + b"{\"text\":\"")
        d = c.read_all(s)
        s.close()
        return c.status_of(d) or "closed"
    if kind == "oversized_chunked":
        s = c.connect()
        s.sendall(c.head("POST", "/score", None, extra="Transfer-Encoding: chunked\r\n"))
        chunk = b"x" * 8192
        try:
            for _ in range(MAX_BODY // len(chunk) + 2):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        d = c.read_all(s)
        s.close()
        return c.status_of(d) or "closed"
    if kind == "wrong_key":
        return c.request("POST", "/generate", {"prompt": "a"}, key="wrong")[0]
    if kind == "no_route":
        return c.request("GET", rng.choice(["/etc/passwd", "/../../x", "/generate/x", "/index.html/../../etc/passwd"]))[0]
    if kind == "bad_method":
        return c.request(rng.choice(["GET", "DELETE", "PUT"]), "/generate")[0]
    if kind == "slow":
        b = json.dumps({"prompt": words(rng, 6), "max_tokens": 8}).encode()
        req = c.head("POST", "/generate", len(b)) + b
        s = c.connect()
        pieces = rng.randint(4, 10)
        step = len(req) // pieces + 1
        for i in range(0, len(req), step):
            s.sendall(req[i:i + step])
            time.sleep(rng.uniform(0.05, 0.3))
        d = c.read_all(s)
        s.close()
        return c.status_of(d)
    if kind == "idle":
        s = c.connect(timeout=IDLE_TIMEOUT + 30)
        s.sendall(b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len")
        t0 = time.time()
        d = c.read_all(s)
        s.close()
        if time.time() - t0 > IDLE_TIMEOUT + 20:
            raise Fail("idle client not closed by the server")
        return c.status_of(d) or "closed"
    if kind in ("deadline", "deadline_stream"):
        st, d = c.request("POST", "/generate", {"prompt": words(rng, 10), "max_tokens": 400,
                                                "timeout_ms": rng.randint(1, 40), "stream": kind == "deadline_stream"})
        if st == 200 and kind == "deadline_stream" and not check_stream(d, deadline=True):
            raise Fail(f"deadline_stream: incomplete stream: {d[-200:]!r}")
        return st
    raise Fail("unknown kind " + kind)


# relative weights of the mix
MIX = [("generate", 14), ("stream", 10), ("stream_cut", 6), ("completions", 4), ("completions_stream", 3),
       ("score", 8), ("score_texts", 3), ("score_cont", 3), ("tokenize", 6), ("detokenize", 3), ("get", 6),
       ("malformed", 6), ("bad_field", 4), ("oversized", 3), ("oversized_chunked", 2), ("wrong_key", 2),
       ("no_route", 2), ("bad_method", 2), ("slow", 3), ("idle", 1), ("deadline", 5), ("deadline_stream", 3)]


def scrape(c):
    st, d = c.request("GET", "/metrics")
    if st != 200:
        raise Fail(f"/metrics answered {st}")
    vals = {}
    for line in body_of(d).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            vals[name] = float(v)
    return vals


def main():
    rng0 = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="soak.")
    proc = None
    passed = failed = 0

    def result(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}" + (f": {detail}" if detail else ""))
        else:
            failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        sys.stdout.flush()

    try:
        model = os.environ.get("SOAK_MODEL")
        if not model:
            ts = os.environ.get("TEST_SERVER", "build/tests/test_server")
            subprocess.run([ts, "--fixture", tmp], check=True)
            model = os.path.join(tmp, "model.gguf")
        port = free_port()
        log = open(os.path.join(tmp, "server.log"), "wb")
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        proc = subprocess.Popen([SYNTH, "serve", "-m", model, "--port", str(port), "--api-key", API_KEY,
                                 "--max-body", str(MAX_BODY), "--idle-timeout", str(IDLE_TIMEOUT),
                                 "--max-queue", "48", "--max-batch", "16", "--drain-timeout", "20",
                                 "--log-level", "warn"], stdout=log, stderr=log, env=env)
        c = Client(port)
        for _ in range(600):
            try:
                if c.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
            if proc.poll() is not None:
                raise Fail("server exited at startup")
        else:
            raise Fail("server did not start")
        fd0 = n_fds(proc.pid)
        rss0 = rss_kb(proc.pid)
        print(f"soak: server pid {proc.pid} port {port}, model {model}, {CONNS} connections, {SECONDS:.0f} s;"
              f" baseline {fd0} fds, RSS {rss0 / 1024:.1f} MiB")
        sys.stdout.flush()

        stop = threading.Event()
        lock = threading.Lock()
        counts = {}       # (kind, status) -> n
        errors = []
        n_req = [0]
        kinds = [k for k, w in MIX for _ in range(w)]
        t_start = time.time()
        t_end = t_start + SECONDS

        def worker(i):
            rng = random.Random(SEED * 1000 + i)
            while not stop.is_set() and time.time() < t_end:
                with lock:
                    if n_req[0] >= MAX_REQUESTS:
                        return
                    n_req[0] += 1
                kind = rng.choice(kinds)
                try:
                    st = one_request(c, rng, kind)
                except Fail as e:
                    st = "fail"
                    with lock:
                        errors.append(str(e))
                except (OSError, ValueError, KeyError) as e:
                    st = f"error:{type(e).__name__}"
                    with lock:
                        errors.append(f"{kind}: {type(e).__name__}: {e}")
                with lock:
                    counts[(kind, st)] = counts.get((kind, st), 0) + 1

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CONNS)]
        for t in threads:
            t.start()
        samples = []     # (t, rss_kb, fds)
        warm = max(60.0, 0.2 * SECONDS)
        last_print = 0
        while time.time() < t_end and any(t.is_alive() for t in threads):
            time.sleep(2)
            if proc.poll() is not None:
                break
            now = time.time() - t_start
            samples.append((now, rss_kb(proc.pid), n_fds(proc.pid)))
            if now - last_print >= 60:
                last_print = now
                with lock:
                    print(f"soak: {now:5.0f} s  {n_req[0]} requests  RSS {samples[-1][1] / 1024:.1f} MiB"
                          f"  fds {samples[-1][2]}")
                sys.stdout.flush()
        stop.set()
        for t in threads:
            t.join(timeout=IDLE_TIMEOUT + 60)
        elapsed = time.time() - t_start
        result(proc.poll() is None, "server alive after the traffic",
               "" if proc.poll() is None else f"exit code {proc.returncode}")
        if proc.poll() is not None:
            raise Fail("server died")

        total = sum(counts.values())
        bad = {k: n for k, n in counts.items() if k[1] not in DESIGNED[k[0]]}
        print(f"soak: {total} requests in {elapsed:.0f} s ({total / elapsed:.1f}/s)")
        for k in sorted(DESIGNED):
            per = {st: n for (kk, st), n in counts.items() if kk == k}
            print(f"  {k:20s} " + " ".join(f"{st}:{n}" for st, n in sorted(per.items(), key=lambda x: str(x[0]))))
        for e in errors[:10]:
            print("  error: " + e)
        result(not bad and not errors, "only designed statuses",
               f"{len(bad)} undesigned (kind, status) pairs {sorted(bad.items(), key=str)[:10]}, {len(errors)} errors"
               if bad or errors else f"{total} requests")
        ok_200 = sum(n for (k, st), n in counts.items() if st == 200)
        result(ok_200 > total // 4, "most traffic served", f"{ok_200} of {total} answered 200")

        # memory after warm-up
        w = [r for t, r, _ in samples if warm <= t < warm + 60]
        e = [r for t, r, _ in samples if t >= samples[-1][0] - 60] if samples else []
        if w and e and samples[-1][0] > warm + 60:
            growth = max(e) / max(w) - 1
            result(growth < 0.05, "RSS growth after warm-up < 5%",
                   f"peak {max(w) / 1024:.1f} MiB at {warm:.0f}-{warm + 60:.0f} s, {max(e) / 1024:.1f} MiB in the last"
                   f" minute ({growth * 100:+.2f}%); start {rss0 / 1024:.1f} MiB, max {max(r for _, r, _ in samples) / 1024:.1f} MiB")
        else:
            print(f"soak: run too short for the RSS criterion (needs > {warm + 60:.0f} s)")

        # descriptors back to the baseline
        fd_peak = max((f for _, _, f in samples), default=fd0)
        t0 = time.time()
        fd_now = n_fds(proc.pid)
        while fd_now > fd0 and time.time() - t0 < IDLE_TIMEOUT + 20:
            time.sleep(0.5)
            fd_now = n_fds(proc.pid)
        result(fd_now <= fd0, "open fds back to the baseline",
               f"baseline {fd0}, peak {fd_peak}, after {fd_now} ({time.time() - t0:.1f} s)")

        m = scrape(c)
        q, b, f = m.get("synth_queue_depth"), m.get("synth_running_batch_size"), m.get("synth_requests_in_flight")
        result(q == 0 and b == 0 and f is not None and f <= 1, "metrics at the end: queue empty, batch slots free",
               f"queue {q}, running {b}, in flight {f} (this /metrics), cancelled "
               f"{m.get('synth_requests_cancelled_total')}, timed out {m.get('synth_requests_timed_out_total')},"
               f" rejected {m.get('synth_requests_rejected_total')}")
        print(f"soak: RSS at the end {rss_kb(proc.pid) / 1024:.1f} MiB")

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        result(rc == 0, "SIGTERM: clean exit", f"exit code {rc}")
        log.close()
        with open(os.path.join(tmp, "server.log"), "rb") as lf:
            errs = [l for l in lf.read().splitlines() if b'"level":"error"' in l or b"Sanitizer" in l]
        result(not errs, "no error lines in the server log", f"{len(errs)}: {errs[:3]!r}" if errs else "")
    except Fail as e:
        result(False, "soak", str(e))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
