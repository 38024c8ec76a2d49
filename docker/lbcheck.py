#!/usr/bin/env python3
"""lbcheck.py - client side of the load-balancer checks of `synth serve`
replicas behind nginx (docker/test-deploy.sh with containers,
tests/t_lb.sh with local processes). Python 3 standard library only,
loopback only, bounded in requests and time.

  lbcheck.py spread --lb URL --replica NAME,URL,UPSTREAM ... [--n 300]
      N requests through nginx, half /score and half /generate (a quarter
      of those streaming), 6 at a time: every one must succeed, and the
      replicas' /metrics counters must show every replica served some and
      that they served exactly N in total.

  lbcheck.py kill  --lb URL --replica ... --victim NAME --action CMD
      continuous idempotent load (/score, /tokenize, /detokenize) plus
      streams; after a warm-up, CMD (e.g. kill -9 of the victim's process)
      runs; the load goes on for --after seconds. Zero idempotent failures
      required; cut streams are reported (they are not retried by design).

  lbcheck.py drain --lb URL --replica ... --victim NAME --action CMD
      continuous load of streams (long generations), /score and /generate;
      once streams are in flight on the victim, a long /score goes straight
      to it and CMD (e.g. podman stop) runs; the victim's /ready is polled
      meanwhile. Required: zero failed requests, every stream complete, the
      victim's streams in flight at the stop and the long /score complete,
      its /ready answered 503, and no request that started
      after that 503 was answered by the victim.

  lbcheck.py soak --lb URL [--seconds 4 --streams 4 --concurrency 2]
      straight at one server (or nginx): streams, /score and /generate
      together for a few seconds; every request must be answered, and the
      server's synth_requests_in_flight must come back to 1 (the /metrics
      request itself). --replica is not needed.

NAME,URL,UPSTREAM: the replica's name, its own URL (for /metrics and
/ready) and its address as nginx reports it in the X-Upstream header.
Prints one "ok ..." or "FAIL ..." line per check; exit 1 if any failed.
"""
import argparse
import http.client
import json
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse

PROMPTS = ["The model", "In the beginning", "A server", "Load balancers", "It was"]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A load balancer spreads requests over the replicas of a service.",
    "Synthesizer models replace dot-product attention with learned mixing.",
    "When a replica drains, its streams finish and new requests go elsewhere.",
]

checks = {"pass": 0, "fail": 0}


def check(name, cond, detail=""):
    if cond:
        checks["pass"] += 1
        print("ok   " + name + (": " + detail if detail else ""))
    else:
        checks["fail"] += 1
        print("FAIL " + name + (": " + detail if detail else ""))
    sys.stdout.flush()
    return cond


def split_url(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port or 80


class Result:
    __slots__ = ("kind", "t0", "t1", "status", "upstream", "ok", "err", "complete", "ntok")

    def __init__(self, kind):
        self.kind = kind
        self.t0 = time.monotonic()
        self.t1 = None
        self.status = 0
        self.upstream = ""
        self.ok = False
        self.err = ""
        self.complete = False
        self.ntok = 0

    def final_upstream(self):
        return self.upstream.split(",")[-1].strip() if self.upstream else ""

    def tried(self):
        return [a.strip() for a in self.upstream.split(",") if a.strip()]


class Client:
    """One request per connection (no client-side reuse: every request is
    a fresh decision of nginx, and a stale connection cannot fake a fault)."""

    def __init__(self, lb, timeout):
        self.host, self.port = split_url(lb)
        self.timeout = timeout
        self.on_stream_start = None   # callback(result) once headers arrived

    def post(self, kind, path, body, stream=False):
        r = Result(kind)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = json.dumps(body).encode()
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            r.status = resp.status
            r.upstream = resp.getheader("X-Upstream", "")
            if resp.status != 200:
                r.err = "status %d: %s" % (resp.status, resp.read(300).decode("utf-8", "replace"))
                return r
            if stream:
                self._read_stream(r, resp)
            else:
                self._check_body(r, path, body, resp.read())
        except Exception as e:  # connection refused/reset, timeout, bad JSON
            r.err = "%s: %s" % (type(e).__name__, e)
        finally:
            r.t1 = time.monotonic()
            conn.close()
        return r

    def _check_body(self, r, path, body, raw):
        j = json.loads(raw)
        if path == "/score":
            r.ok = j.get("tokens", 0) > 0 and j.get("nll", -1) >= 0 and j.get("perplexity", 0) > 0
        elif path == "/tokenize":
            r.ok = isinstance(j.get("tokens"), list) and len(j["tokens"]) > 0
        elif path == "/detokenize":
            r.ok = isinstance(j.get("text"), str)
        elif path == "/generate":
            toks = j.get("tokens", [])
            r.ntok = len(toks)
            r.ok = (j.get("finish_reason") in ("length", "stop", "eos")
                    and j.get("usage", {}).get("completion_tokens") == len(toks)
                    and 0 < len(toks) <= body["max_tokens"])
        if not r.ok:
            r.err = "unexpected body: " + raw[:200].decode("utf-8", "replace")
        r.complete = r.ok

    def _read_stream(self, r, resp):
        ctype = resp.getheader("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            r.err = "stream: content type " + ctype
            return
        if self.on_stream_start:
            self.on_stream_start(r)
        final = None
        for line in resp:                      # one SSE line at a time
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            ev = json.loads(line[6:])
            if "finish_reason" in ev:
                final = ev
            elif "token" in ev:
                r.ntok += 1
        if final is None:
            r.err = "stream cut after %d tokens (no final event)" % r.ntok
            return
        usage = final.get("usage", {})
        r.complete = (final.get("finish_reason") in ("length", "stop", "eos")
                      and usage.get("completion_tokens") == r.ntok)
        r.ok = r.complete
        if not r.ok:
            r.err = "stream final event %s after %d tokens" % (json.dumps(final)[:200], r.ntok)


def get(url, path, timeout=2.0):
    host, port = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def served(metrics_text, routes):
    """Sum of synth_requests_total{route in routes, status="200"}."""
    n = 0
    for m in re.finditer(r'^synth_requests_total\{route="([^"]+)",status="200"\} (\d+)', metrics_text, re.M):
        if m.group(1) in routes:
            n += int(m.group(2))
    return n


class Replicas:
    def __init__(self, specs):
        self.items = []
        for s in specs:
            name, url, up = s.split(",")
            self.items.append((name, url, up))
        self.by_up = {up: name for name, url, up in self.items}

    def name_of(self, upstream):
        return self.by_up.get(upstream, upstream or "?")

    def get(self, name):
        for n, url, up in self.items:
            if n == name:
                return n, url, up
        raise SystemExit("lbcheck: no replica named " + name)


# ---------------------------------------------------------------- requests
def score_req(i):
    return ("score", "/score", {"text": TEXTS[i % len(TEXTS)] + " " + str(i)}, False)


def gen_req(i, max_tokens, stream):
    # streams run their full length (no end-of-text stop): they are the
    # work in flight that a drain must wait for, and an untrained test
    # model can end one after a few tokens, leaving a drain too short for
    # the /ready poll to see its 503
    body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "seed": i,
            "temperature": 0.8, "stream": stream, "ignore_eos": stream}
    return ("stream" if stream else "generate", "/generate", body, stream)


def idem_req(i):
    k = i % 3
    if k == 0:
        return score_req(i)
    if k == 1:
        return ("tokenize", "/tokenize", {"text": TEXTS[i % len(TEXTS)]}, False)
    return ("detokenize", "/detokenize", {"tokens": [1, 2, 3, 4, 5]}, False)


class Load:
    """Worker threads, each sending its kind of request in a loop until
    stopped; every result is kept."""

    def __init__(self, client):
        self.client = client
        self.results = []
        self.inflight = {}   # id(result) -> result, streams with headers
        self.mu = threading.Lock()
        self.stop = threading.Event()
        self.threads = []
        self.counter = 0
        client.on_stream_start = self._stream_started

    def _stream_started(self, r):
        with self.mu:
            self.inflight[id(r)] = r

    def _next(self):
        with self.mu:
            self.counter += 1
            return self.counter

    def _run(self, make):
        while not self.stop.is_set():
            kind, path, body, stream = make(self._next())
            r = self.client.post(kind, path, body, stream)
            with self.mu:
                self.inflight.pop(id(r), None)
                self.results.append(r)

    def start(self, make, n):
        for _ in range(n):
            t = threading.Thread(target=self._run, args=(make,), daemon=True)
            t.start()
            self.threads.append(t)

    def streams_in_flight(self, upstream):
        with self.mu:
            return [r for r in self.inflight.values() if r.final_upstream() == upstream]

    def finish(self, timeout):
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


def summary(results, reps):
    by = {}
    for r in results:
        key = (r.kind, "ok" if r.ok else "failed")
        by[key] = by.get(key, 0) + 1
    parts = ["%s %s %d" % (k[0], k[1], v) for k, v in sorted(by.items())]
    retried = sum(1 for r in results if len(r.tried()) > 1)
    per = {}
    for r in results:
        if r.ok:
            n = reps.name_of(r.final_upstream())
            per[n] = per.get(n, 0) + 1
    return "; ".join(parts) + "; retried by nginx %d; served by %s" % (
        retried, ", ".join("%s %d" % kv for kv in sorted(per.items())))


def show_failures(results, limit=8):
    bad = [r for r in results if not r.ok]
    for r in bad[:limit]:
        print("     %s failed after %.2fs via [%s]: %s" % (r.kind, (r.t1 or r.t0) - r.t0, r.upstream, r.err))


def stream_tokens(lb, client, args):
    """max_tokens for long streams: what the context leaves after the
    longest prompt (and its leading end-of-text token)."""
    st, body = get(lb, "/v1/models")
    ctx = json.loads(body)["data"][0]["context_length"]
    longest = 0
    for p in PROMPTS:
        toks = json.loads(post_raw(lb, "/tokenize", json.dumps({"text": p})))["tokens"]
        longest = max(longest, len(toks))
    n = min(args.stream_tokens, ctx - longest - 2)
    if args.stream_seconds > 0:
        # as many tokens as one stream alone produces in stream_seconds
        # (timed on a 64-token request): a drain then lasts long enough to
        # be seen on a fast build, and a sanitizer build (10x slower)
        # still finishes its streams within --timeout
        body = json.dumps({"prompt": PROMPTS[0], "max_tokens": 64, "ignore_eos": True, "seed": 1})
        t0 = time.monotonic()
        got = len(json.loads(post_raw(lb, "/generate", body))["tokens"])
        rate = got / max(time.monotonic() - t0, 1e-3)
        n = max(16, min(n, int(rate * args.stream_seconds)))
        print("     stream length: %d tokens (one stream alone: %.0f tokens/s)" % (n, rate))
    return max(1, n)


def post_raw(url, path, body, timeout=5.0, status=None):
    """POST body; the response's bytes (status, if a list, gets its status)."""
    host, port = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if status is not None:
            status.append(resp.status)
        return resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- scenarios
def cmd_spread(args, reps, client):
    before = {}
    for name, url, up in reps.items:
        before[name] = served(get(url, "/metrics")[1], ("/score", "/generate"))
    results = []
    mu = threading.Lock()
    idx = iter(range(args.n))

    def worker():
        while True:
            with mu:
                i = next(idx, None)
            if i is None:
                return
            if i % 2 == 0:
                req = score_req(i)
            else:
                req = gen_req(i, args.gen_tokens, stream=(i % 8 == 3))
            r = client.post(*req)
            with mu:
                results.append(r)

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(args.timeout)
    dt = time.monotonic() - t0
    nok = sum(1 for r in results if r.ok)
    check("spread: %d requests through nginx all succeed" % args.n,
          len(results) == args.n and nok == args.n,
          "%d ok of %d in %.1fs (%s)" % (nok, len(results), dt, summary(results, reps)))
    show_failures(results)
    after = {}
    deltas = {}
    for name, url, up in reps.items:
        after[name] = served(get(url, "/metrics")[1], ("/score", "/generate"))
        deltas[name] = after[name] - before[name]
    detail = ", ".join("%s %d" % kv for kv in sorted(deltas.items()))
    check("spread: every replica served some (/metrics synth_requests_total, 200)",
          all(d > 0 for d in deltas.values()), detail)
    check("spread: replicas' counters add up to the requests sent", sum(deltas.values()) == args.n,
          "sum %d, sent %d" % (sum(deltas.values()), args.n))


def run_action(cmd):
    print("     action: " + cmd)
    sys.stdout.flush()
    return subprocess.Popen(cmd, shell=True)


def wait_streams_on(load, up, timeout, fresh=None):
    """Streams in flight on upstream up; with fresh, wait for one that
    started less than fresh seconds ago (the most time left to run)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = load.streams_in_flight(up)
        now = time.monotonic()
        if s and (fresh is None or any(now - r.t0 < fresh for r in s)):
            return s
        time.sleep(0.002)
    return load.streams_in_flight(up)


def cmd_kill(args, reps, client):
    vname, vurl, vup = reps.get(args.victim)
    ntok = stream_tokens(args.lb, client, args)
    load = Load(client)
    load.start(idem_req, args.concurrency)
    load.start(lambda i: gen_req(i, ntok, True), args.streams)
    time.sleep(args.warmup)
    wait_streams_on(load, vup, 5.0)
    t_kill = time.monotonic()
    p = run_action(args.action)
    rc = p.wait(30)
    time.sleep(args.after)
    done = load.finish(args.timeout)
    res = load.results
    idem = [r for r in res if r.kind != "stream"]
    streams = [r for r in res if r.kind == "stream"]
    check("kill: action ran", rc == 0, "exit %d" % rc)
    check("kill: load threads finished in time", done)
    before = [r for r in idem if r.t1 < t_kill]
    after = [r for r in idem if r.t0 >= t_kill]
    across = [r for r in idem if r.t0 < t_kill <= r.t1]
    nfail = sum(1 for r in idem if not r.ok)
    check("kill: no failed idempotent request (/score /tokenize /detokenize)",
          nfail == 0 and len(after) > 0,
          "%d requests (%d before the kill, %d across it, %d after), %d failed; %s" % (
              len(idem), len(before), len(across), len(after), nfail, summary(idem, reps)))
    show_failures(idem)
    after_ok = [r for r in after if r.ok]
    by_victim = sum(1 for r in after_ok if r.final_upstream() == vup)
    print("     idempotent requests started after the kill command answered by %s: %d (before the signal landed)" % (
        vname, by_victim))
    cut = [r for r in streams if not r.ok]
    cut_v = [r for r in cut if r.final_upstream() == vup]
    print("     streams: %d, %d cut (%d of them on %s: a started stream is not retried, by design)" % (
        len(streams), len(cut), len(cut_v), vname))
    other_cut = [r for r in cut if r.final_upstream() != vup]
    check("kill: no stream on another replica failed", not other_cut,
          "%d" % len(other_cut))
    show_failures(other_cut)


def cmd_drain(args, reps, client):
    vname, vurl, vup = reps.get(args.victim)
    ntok = stream_tokens(args.lb, client, args)
    load = Load(client)
    load.start(lambda i: gen_req(i, ntok, True), args.streams)
    load.start(score_req, args.concurrency)
    load.start(lambda i: gen_req(i, args.gen_tokens, False), max(1, args.concurrency // 2))
    ready = []   # (t sent, status or -1 for no answer, t answered)
    ready_stop = threading.Event()

    def poll_ready():
        while not ready_stop.is_set():
            t = time.monotonic()
            try:
                st = get(vurl, "/ready", timeout=1.0)[0]
            except Exception:
                st = -1
            ready.append((t, st, time.monotonic()))
            time.sleep(0.005)

    time.sleep(args.warmup)
    pt = threading.Thread(target=poll_ready, daemon=True)
    pt.start()
    inflight = wait_streams_on(load, vup, 10.0, fresh=0.03)
    print("     streams in flight on %s when the stop is sent: %d" % (vname, len(inflight)))
    # A drain lasts as long as the victim's work in flight. A stream alone
    # can end within tens of milliseconds of the signal (podman delivers
    # it about a second after `stop` begins, and a fast build finishes a
    # context-long stream in about that time), too soon for the /ready poll
    # to see the 503. So one long job goes straight to the victim first: a
    # /score of some 20,000 tokens (--long-score 1000 sentences), seconds
    # of work on a loaded replica, which the drain must also finish (and
    # answer 200). A slow replica (the tests' 1-thread, 400-token-vocabulary
    # model) drains for long on its streams alone and takes a shorter text.
    long_text = " ".join("%s %d." % (TEXTS[i % len(TEXTS)], i) for i in range(args.long_score))
    long_st, long_res = [], {}

    def long_job():
        t = time.monotonic()
        try:
            body = json.loads(post_raw(vurl, "/score", json.dumps({"text": long_text}),
                                       timeout=args.timeout, status=long_st))
            long_res["tokens"] = body.get("tokens")
        except Exception as e:
            long_res["err"] = repr(e)
        long_res["t"] = (t, time.monotonic())

    lt = threading.Thread(target=long_job, daemon=True)
    lt.start()
    time.sleep(0.1)   # the request is on the victim before the stop begins
    t_stop = time.monotonic()
    p = run_action(args.action)
    try:
        rc = p.wait(args.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -1
    t_done = time.monotonic()
    time.sleep(args.after)
    ready_stop.set()
    done = load.finish(args.timeout)
    pt.join(2)
    lt.join(args.timeout)
    lt0, lt1 = long_res.get("t", (0, 0))
    check("drain: a long /score sent to %s before the stop was answered in full" % vname,
          long_st == [200] and long_res.get("tokens"),
          "status %s, %s tokens scored in %.2fs, ended %.2fs after `%s` began%s" % (
              long_st, long_res.get("tokens"), lt1 - lt0, lt1 - t_stop, args.action,
              "; " + long_res["err"] if "err" in long_res else ""))
    res = load.results
    check("drain: action ran", rc == 0, "exit %d after %.2fs" % (rc, t_done - t_stop))
    check("drain: load threads finished in time", done)
    nfail = sum(1 for r in res if not r.ok)
    check("drain: zero failed requests", nfail == 0 and len(res) > 0,
          "%d requests, %d failed; %s" % (len(res), nfail, summary(res, reps)))
    show_failures(res)
    # When did the drain begin? podman stop takes a while to deliver the
    # signal, so the moment is bracketed by the victim's /ready: the last
    # 200 before the first 503 (or the first non-answer), and that 503.
    after = [(t, st, ta) for t, st, ta in ready if t >= t_stop]
    # the first 503: when its poll was sent, and when it came back (a
    # request sent before then may have reached the replica before the
    # signal did)
    t503, a503 = next(((t, ta) for t, st, ta in after if st == 503), (None, None))
    t_end = t503 if t503 is not None else next((t for t, st, ta in after if st != 200), None)
    t_last200 = max([t for t, st, ta in ready if st == 200 and (t_end is None or t < t_end)] or [t_stop])
    seen = sorted(set(st for t, st, ta in after))
    check("drain: %s /ready answered 503 while draining" % vname, t503 is not None,
          "statuses after the stop: %s (-1: no answer)%s" % (
              seen, "" if t503 is None else ", first 503 %.3fs after `%s` began" % (t503 - t_stop, args.action)))
    # the victim's streams that were running when the drain began
    t_mark = t_end if t_end is not None else t_done
    vstreams = [r for r in res if r.kind == "stream" and r.final_upstream() == vup
                and r.t0 < t_last200 and r.t1 > t_mark]
    vcomplete = [r for r in vstreams if r.complete]
    longest = max([r.t1 - t_mark for r in vstreams] or [0])
    check("drain: %s's streams in flight when the drain began finished completely" % vname,
          len(vstreams) > 0 and len(vcomplete) == len(vstreams),
          "%d of %d complete (final event, all tokens), the last ended %.2fs after the first 503" % (
              len(vcomplete), len(vstreams), longest))
    if t503 is not None:
        late = [r for r in res if r.t0 > a503 and r.ok and r.final_upstream() == vup]
        tried = [r for r in res if r.t0 > a503 and vup in r.tried()]
        check("drain: no request started after that 503 was answered by %s" % vname, not late,
              "%d answered; %d more were sent to it and retried elsewhere by nginx" % (
                  len(late), len(tried)))


def cmd_soak(args, reps, client):
    ntok = min(50, stream_tokens(args.lb, client, args))
    load = Load(client)
    load.start(lambda i: gen_req(i, ntok, True), args.streams)
    load.start(score_req, args.concurrency)
    load.start(lambda i: gen_req(i, args.gen_tokens, False), args.concurrency)
    time.sleep(args.seconds)
    done = load.finish(args.timeout + 5)
    res = load.results
    nfail = sum(1 for r in res if not r.ok)
    check("soak: every request answered", done and nfail == 0 and len(res) > 0,
          "%d requests, %d failed; %s" % (len(res), nfail, summary(res, reps)))
    show_failures(res)
    m = re.search(r"^synth_requests_in_flight (\d+)", get(args.lb, "/metrics")[1], re.M)
    check("soak: nothing left in flight on the server", m is not None and m.group(1) == "1",
          "synth_requests_in_flight %s" % (m.group(1) if m else "?"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=("spread", "kill", "drain", "soak"))
    ap.add_argument("--lb", required=True, help="nginx URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--replica", action="append", default=[], help="NAME,URL,UPSTREAM")
    ap.add_argument("--seconds", type=float, default=4.0, help="soak: seconds of load")
    ap.add_argument("--victim")
    ap.add_argument("--action", help="shell command run at the kill/stop moment")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--streams", type=int, default=6, help="concurrent streaming clients")
    ap.add_argument("--gen-tokens", type=int, default=8, help="max_tokens of non-streaming /generate")
    ap.add_argument("--stream-tokens", type=int, default=240, help="max_tokens of streams (capped by the context)")
    ap.add_argument("--stream-seconds", type=float, default=0,
                    help="cap --stream-tokens at what one stream alone makes in this time (0: no cap)")
    ap.add_argument("--long-score", type=int, default=1000,
                    help="drain: sentences in the long /score sent to the victim before the stop")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--after", type=float, default=2.0, help="seconds of load after the action")
    ap.add_argument("--timeout", type=float, default=60.0, help="bound on any wait")
    args = ap.parse_args()
    reps = Replicas(args.replica)
    client = Client(args.lb, timeout=args.timeout)
    if args.scenario == "soak":
        cmd_soak(args, reps, client)
    elif args.scenario == "spread":
        cmd_spread(args, reps, client)
    else:
        if not args.victim or not args.action:
            ap.error("--victim and --action are needed")
        (cmd_kill if args.scenario == "kill" else cmd_drain)(args, reps, client)
    print("%d passed, %d failed" % (checks["pass"], checks["fail"]))
    return 1 if checks["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
