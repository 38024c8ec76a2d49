/*
 * test_server.c - `synth serve` end to end: this program writes a small
 * model (arch_init_params + a tokenizer learned with tok_learn + ckpt_write)
 * into a temporary folder, starts the real synth binary ($SYNTH, default
 * ./synth) as a child process on a free loopback port, and talks HTTP to it
 * over plain sockets. References are computed independently in-process
 * (tok_encode, eval_text, eval_continuation on the same file) and with the
 * CLI (`synth score --json`).
 *
 * Why C and not a script: the fixture needs the library (arch, ckpt, tok),
 * the references need eval.c, and a C client sees the raw protocol (status
 * line, chunked SSE, early 413, disconnects) with nothing in between.
 *
 *   test_server              run the suite
 *   test_server --fixture D  only write D/model.gguf and D/text.txt (bench)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "ckpt.h"
#include "eval.h"
#include "model.h"
#include "quant.h"
#include "sampler.h"
#include "test.h"
#include "tok.h"

#include "fixture.h"
#include "net_client.h"

#define PREFIX_MIN_TOKENS 16  /* srv_worker.c's PREFIX_MIN */

static char g_dir[256];
static char g_model[300];
static char g_text[300];
static const char *g_synth;
static model *g_m;          /* the fixture, loaded in-process for references */

/* ------------------------------------------------------------ fixture */

/* Deterministic English-like text (a word list driven by an LCG): enough
 * repetition for BPE merges, long enough for several scoring windows. */
static char *make_text(size_t approx, uint64_t seed)
{
    static const char *const words[] = {
        "the", "model", "attention", "random", "synthesizer", "of", "and", "a", "token", "layer",
        "learns", "weights", "without", "queries", "keys", "dense", "is", "in", "to", "text",
        "server", "batch", "each", "step", "value", "head", "context", "window", "score", "stream"};
    size_t nw = sizeof words / sizeof words[0];
    char *t = malloc(approx + 64);
    size_t n = 0;
    uint64_t x = seed;
    int in_line = 0;
    while (n < approx) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[(x >> 33) % nw];
        size_t l = strlen(w);
        if (in_line) t[n++] = ' ';
        memcpy(t + n, w, l);
        n += l;
        in_line++;
        if (((x >> 20) & 15) == 0 || in_line > 14) {
            memcpy(t + n, " .\n", 3);
            n += 3;
            in_line = 0;
        }
    }
    t[n] = 0;
    return t;
}

/* A model of the given shape and variant at `path`: a tokenizer learned on
 * make_text, fixture_ckpt_buffer weights, f32. */
static int write_model(const char *path, const arch_hparams *shape)
{
    char *corpus = make_text(20000, 7);
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1;
    if (tok_learn(corpus, strlen(corpus), 320, &vocab, &nv, &merges, &nm, &eos)) {
        fprintf(stderr, "fixture: tok_learn failed\n");
        free(corpus);
        return -1;
    }
    free(corpus);
    void *buf = NULL;
    size_t size = 0;
    int rc = fixture_ckpt_buffer(shape, "test-server", vocab, nv, merges, nm, eos, QUANT_F32, &buf, &size);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (!rc && (!f || fwrite(buf, 1, size, f) != size)) rc = -1;
    if (f && fclose(f)) rc = -1;
    if (rc) fprintf(stderr, "fixture: cannot write %s\n", path);
    free(buf);
    return rc;
}

/* 2 layers, 2 heads, d_ff 4 d, factorized dense a x (L / a). */
static arch_hparams test_shape(arch_variant v, int n_ctx, int n_embd, int fd_a)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    hp.variant = v;
    hp.n_ctx = n_ctx;
    hp.n_embd = n_embd;
    hp.n_layer = 2;
    hp.n_head = 2;
    hp.n_ff = 4 * n_embd;
    hp.fd_a = fd_a;
    hp.fd_b = n_ctx / fd_a;
    return hp;
}

static int write_fixture(const char *dir)
{
    /* a context long enough that a 1000-token generation takes a while */
    arch_hparams hp = test_shape(ARCH_RANDOM, 1024, 256, 32);
    snprintf(g_model, sizeof g_model, "%s/model.gguf", dir);
    int rc = write_model(g_model, &hp);
    char *text = make_text(6000, 99);
    snprintf(g_text, sizeof g_text, "%s/text.txt", dir);
    FILE *f = fopen(g_text, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(text);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------ HTTP client */

typedef struct {
    int status;
    char *head;     /* status line + headers */
    char *body;     /* de-chunked, NUL-terminated */
    size_t len;
    json_t *json;   /* body parsed, if JSON */
    int n_chunks;   /* data chunks of a chunked body (a stream: one per write of the server) */
} resp;

static void resp_free(resp *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Send a request; returns the socket (response not read yet). */
static int http_send(int port, const char *method, const char *path, const char *headers, const char *body)
{
    int fd = net_connect(port, 60);
    if (fd < 0) return -1;
    size_t bl = body ? strlen(body) : 0;
    char *req = malloc(bl + 1024 + (headers ? strlen(headers) : 0));
    int n = sprintf(req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                    headers ? headers : "");
    if (body) n += sprintf(req + n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", bl);
    n += sprintf(req + n, "\r\n");
    if (body) memcpy(req + n, body, bl);
    int rc = net_send_all(fd, req, (size_t)n + bl);
    free(req);
    if (rc) {
        close(fd);
        return -1;
    }
    return fd;
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) b = realloc(b, cap *= 2);
        ssize_t k = recv(fd, b + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* The whole chunked body at once through the shared incremental decoder;
 * a malformed stream keeps what was decoded before the error. */
static size_t dechunk(char *b, size_t n, int *n_chunks)
{
    net_chunked c = {0};
    size_t out = 0;
    *n_chunks = 0;
    for (size_t i = 0; i < n; i++) {   /* one byte at a time: every split point is exercised */
        int was = c.state;
        long k = net_chunked_feed(&c, b + i, 1);
        if (k < 0) break;
        *n_chunks += was != NET_CK_DATA && c.state == NET_CK_DATA;
        if (k) b[out++] = b[i];
    }
    b[out] = 0;
    return out;
}

static int parse_resp(char *raw, size_t n, resp *r)
{
    memset(r, 0, sizeof *r);
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) {
        free(raw);
        return -1;
    }
    size_t hl = (size_t)(sep - raw);
    r->head = strndup(raw, hl);
    r->len = n - hl - 4;
    r->body = malloc(r->len + 1);
    memcpy(r->body, sep + 4, r->len);
    r->body[r->len] = 0;
    free(raw);
    if (strcasestr(r->head, "transfer-encoding: chunked")) r->len = dechunk(r->body, r->len, &r->n_chunks);
    r->json = json_loadb(r->body, r->len, JSON_ALLOW_NUL, NULL); /* generated text may hold U+0000 */
    return 0;
}

static int http_recv(int fd, resp *r)
{
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    return parse_resp(raw, n, r);
}

static int http(int port, const char *method, const char *path, const char *headers, const char *body, resp *r)
{
    memset(r, 0, sizeof *r);
    int fd = http_send(port, method, path, headers, body);
    if (fd < 0) return -1;
    return http_recv(fd, r);
}

static const char *header(const resp *r, const char *name, char *buf, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *h = r->head ? strcasestr(r->head, key) : NULL;
    if (!h) return NULL;
    h += strlen(key);
    while (*h == ' ') h++;
    size_t k = strcspn(h, "\r\n");
    if (k >= n) k = n - 1;
    memcpy(buf, h, k);
    buf[k] = 0;
    return buf;
}

static const char *err_type(const resp *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    return e ? json_string_value(json_object_get(e, "type")) : NULL;
}

static const char *err_msg(const resp *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const char *m = e ? json_string_value(json_object_get(e, "message")) : NULL;
    return m ? m : "";
}

static const char *g_auth;   /* headers for /metrics on a server with an API key */

/* The value of one metric line (exact name with labels), or -1. */
static double metric(int port, const char *name)
{
    resp r;
    if (http(port, "GET", "/metrics", g_auth, NULL, &r) || r.status != 200) {
        resp_free(&r);
        return -1;
    }
    double v = 0;   /* absent counters are zero */
    size_t nl = strlen(name);
    for (char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, nl) && l[nl] == ' ') v = strtod(l + nl + 1, NULL);
    resp_free(&r);
    return v;
}

/* Poll a metric until pred(value) or ~20 s; returns the last value. */
static double wait_metric(int port, const char *name, double target, int at_least)
{
    double v = -1;
    for (int i = 0; i < 2000; i++) {
        v = metric(port, name);
        if (at_least ? v >= target : v == target) return v;
        usleep(10000);
    }
    return v;
}

/* ------------------------------------------------------------ server process */

typedef struct {
    pid_t pid;
    int port;
    char log[320];
} server;

/* Start `synth serve -m MODEL --port P extra...` (MODEL NULL: the fixture
 * g_model) with env (NAME=VALUE, or NULL); waits until /health answers 200. */
static int server_start(server *s, const char *name, const char *model_path, const char *const *extra,
                        const char *env)
{
    memset(s, 0, sizeof *s);
    s->port = net_free_port();
    if (s->port < 0) return -1;
    snprintf(s->log, sizeof s->log, "%s/%s.log", g_dir, name);
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    const char *argv[32] = {g_synth, "serve", "-m", model_path ? model_path : g_model, "--port", port, "--threads", "1"};
    int ac = 8;
    for (int i = 0; extra && extra[i] && ac < 30; i++) argv[ac++] = extra[i];
    argv[ac] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        if (env) putenv((char *)env);
        execv(g_synth, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        resp r;
        if (http(s->port, "GET", "/health", NULL, NULL, &r) == 0) {
            int ok = r.status == 200;
            resp_free(&r);
            if (ok) return 0;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "server %s exited early (see %s)\n", name, s->log);
            s->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

/* Wait for exit (up to ~30 s, then SIGKILL); returns the exit status or -1. */
static int server_wait(server *s)
{
    if (s->pid <= 0) return -1;
    for (int i = 0; i < 3000; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static int server_stop(server *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    return server_wait(s);
}

static server g_main;   /* default flags, shared by most tests */

/* ------------------------------------------------------------ helpers */

static json_t *post_json(int port, const char *path, const char *body, int *status)
{
    resp r;
    *status = -1;
    if (http(port, "POST", path, NULL, body, &r)) return NULL;
    *status = r.status;
    json_t *j = json_incref(r.json);
    resp_free(&r);
    return j;
}

/* post_json with a body built by jansson (the reference is taken). */
static json_t *post_obj(int port, const char *path, json_t *body, int *status)
{
    char *b = body ? json_dumps(body, 0) : NULL;
    json_decref(body);
    json_t *j = b ? post_json(port, path, b, status) : NULL;
    if (!b) *status = -1;
    free(b);
    return j;
}

static int ids_equal(json_t *a, json_t *b)
{
    if (!json_is_array(a) || !json_is_array(b) || json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
        json_int_t ix = json_is_object(x) ? json_integer_value(json_object_get(x, "id")) : json_integer_value(x);
        json_int_t iy = json_is_object(y) ? json_integer_value(json_object_get(y, "id")) : json_integer_value(y);
        if (ix != iy) return 0;
    }
    return 1;
}

/* Events "data: ...\n\n" of an SSE body; returns the count, fills ev[]. */
static int sse_parse(const char *body, json_t **ev, int cap, int *done_marker)
{
    int n = 0;
    *done_marker = 0;
    const char *p = body;
    while ((p = strstr(p, "data: "))) {
        p += 6;
        const char *e = strstr(p, "\n\n");
        if (!e) break;
        if (!strncmp(p, "[DONE]", 6)) *done_marker = 1;
        else if (n < cap) ev[n++] = json_loadb(p, (size_t)(e - p), JSON_ALLOW_NUL, NULL);
        p = e + 2;
    }
    return n;
}

/* ------------------------------------------------------------ tests */

/* The shared chunked decoder (net_client.h) against a hand-made body with
 * extensions, upper-case hex, a bare LF and a trailer, cut in two at every
 * byte, and on malformed streams. The server's own chunked responses go
 * through it one byte at a time in every other test (dechunk). */
TEST(test_chunked_decoder)
{
    static const char body[] = "5;ext=1\r\nhello\r\nA\r\n, chunked \r\n1\nx\n0\r\nX-Trailer: 1\r\n\r\nafter";
    static const char want[] = "hello, chunked x";
    size_t n = sizeof body - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        char buf[sizeof body];
        memcpy(buf, body, sizeof body);
        net_chunked c = {0};
        long a = net_chunked_feed(&c, buf, cut);
        CHECK(a >= 0);
        char out[64];
        memcpy(out, buf, (size_t)a);
        long b = net_chunked_feed(&c, buf + cut, n - cut);
        CHECK(b >= 0 && a + b == (long)strlen(want));
        if (b >= 0 && a + b < (long)sizeof out) memcpy(out + a, buf + cut, (size_t)b);
        CHECK_MSG(a >= 0 && b >= 0 && !memcmp(out, want, strlen(want)), "cut at %zu", cut);
        CHECK(net_chunked_done(&c));
    }
    static const char *const bad[] = {"x\r\n", "\r\n", "3\r\nabcX", "1234567890abcdef0\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", bad[i]);
        net_chunked c = {0};
        CHECK_MSG(net_chunked_feed(&c, buf, strlen(buf)) == -1, "malformed stream %zu accepted", i);
    }
    char buf[] = "4\r\nabc";   /* truncated: no error, not done */
    net_chunked c = {0};
    CHECK(net_chunked_feed(&c, buf, strlen(buf)) == 3 && !net_chunked_done(&c));
}


TEST(test_health_ready_models_metrics)
{
    resp r;
    CHECK(http(g_main.port, "GET", "/health", NULL, NULL, &r) == 0);
    CHECK(r.status == 200 && r.json && !strcmp(json_string_value(json_object_get(r.json, "status")), "ok"));
    resp_free(&r);
    CHECK(http(g_main.port, "GET", "/ready", NULL, NULL, &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(http(g_main.port, "GET", "/v1/models", NULL, NULL, &r) == 0);
    CHECK(r.status == 200);
    json_t *m = r.json ? json_array_get(json_object_get(r.json, "data"), 0) : NULL;
    const arch_hparams *hp = model_hparams(g_m);
    CHECK(m && !strcmp(json_string_value(json_object_get(m, "id")), "test-server"));
    CHECK(m && !strcmp(json_string_value(json_object_get(m, "variant")), "random"));
    CHECK(m && json_integer_value(json_object_get(m, "context_length")) == hp->n_ctx);
    CHECK(m && !strcmp(json_string_value(json_object_get(m, "quantization")), "f32"));
    CHECK(m && json_integer_value(json_object_get(m, "n_params")) == arch_n_params(hp));
    /* the kernel level (the best of this CPU unless SYNTH_CPU forces one)
     * and the thread budget (server_start passes --threads 1) */
    const char *forced = getenv("SYNTH_CPU"), *want = forced && *forced && strcmp(forced, "auto") ? forced
                                                                                                  : model_cpu_best();
    const char *cpu = m ? json_string_value(json_object_get(m, "cpu")) : NULL;
    CHECK_MSG(cpu && !strcmp(cpu, want), "/v1/models cpu %s, want %s", cpu ? cpu : "(none)", want);
    CHECK(m && json_integer_value(json_object_get(m, "threads")) == 1);
    char info[96];
    snprintf(info, sizeof info, "synth_cpu_info{level=\"%s\",best=\"%s\",act=\"q8\"}", want, model_cpu_best());
    CHECK_MSG(metric(g_main.port, info) == 1, "no metric %s", info);
    CHECK(metric(g_main.port, "synth_threads") == 1);
    resp_free(&r);
    CHECK(http(g_main.port, "GET", "/metrics", NULL, NULL, &r) == 0);
    CHECK(r.status == 200);
    char ct[128];
    CHECK(header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "text/plain"));
    CHECK(r.body && strstr(r.body, "synth_requests_total{route=\"/health\",status=\"200\"}"));
    CHECK(r.body && strstr(r.body, "# TYPE synth_time_to_first_token_seconds histogram"));
    CHECK(r.body && strstr(r.body, "synth_inter_token_latency_seconds_bucket{le=\"+Inf\"}"));
    CHECK(r.body && strstr(r.body, "synth_request_duration_seconds_count"));
    CHECK(r.body && strstr(r.body, "synth_queue_depth "));
    CHECK(r.body && strstr(r.body, "synth_running_batch_size "));
    resp_free(&r);
    /* HEAD works on GET routes and has no body */
    CHECK(http(g_main.port, "HEAD", "/health", NULL, NULL, &r) == 0);
    CHECK(r.status == 200 && r.len == 0);
    resp_free(&r);
}

TEST(test_tokenize_detokenize)
{
    const char *text;
    json_t *body, *j;
    char *b;
    int st;
    text = "the synthesizer model learns attention \xc3\xa9t\xc3\xa9!";
    body = json_pack("{s:s}", "text", text);
    b = json_dumps(body, 0);
    j = post_json(g_main.port, "/tokenize", b, &st);
    free(b);
    json_decref(body);
    CHECK(st == 200);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tok_encode(model_tok(g_m), text, strlen(text), &ids, &n) == 0);
    json_t *toks = j ? json_object_get(j, "tokens") : NULL;
    CHECK(json_array_size(toks) == n);
    for (size_t i = 0; i < n && i < json_array_size(toks); i++)
        CHECK(json_integer_value(json_array_get(toks, i)) == ids[i]);
    /* and back */
    json_t *d = json_pack("{s:O}", "tokens", toks);
    b = json_dumps(d, 0);
    json_t *j2 = post_json(g_main.port, "/detokenize", b, &st);
    free(b);
    CHECK(st == 200);
    CHECK(j2 && !strcmp(json_string_value(json_object_get(j2, "text")), text));
    json_decref(j2);
    json_decref(d);
    json_decref(j);
    free(ids);
}

/* Generate through the API and check it against sampling by hand with the
 * same seed (model_step + sampler in this process). */
/* The server's generation as a plain loop, one sequence: eos + prompt,
 * sample, feed back; when the context is full, start again from the last
 * half of it (the context shift), counted in g_ref_shifts. */
static int g_ref_shifts;
static int reference_generate(model *m, const char *prompt, int max_tokens, float temp, uint64_t seed, int32_t *out)
{
    const tok_t *t = model_tok(m);
    int32_t *ids;
    size_t n;
    tok_encode(t, prompt, strlen(prompt), &ids, &n);
    int V = model_hparams(m)->n_vocab;
    int32_t *hist = malloc((n + 1 + (size_t)max_tokens) * sizeof *hist);
    hist[0] = tok_eos(t);
    memcpy(hist + 1, ids, n * sizeof *ids);
    free(ids);
    int nh = (int)n + 1;
    model_cache *c = model_cache_create(m, 1);
    float *logits = malloc((size_t)V * sizeof *logits);
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = temp;
    sp.seed = seed;
    sampler smp;
    sampler_init(&smp, &sp);
    int k = 0, fed = 0, L = model_hparams(m)->n_ctx;
    g_ref_shifts = 0;
    while (k < max_tokens) {
        if (model_cache_len(c, 0) + (nh - fed) > L) {
            model_cache_reset(c, 0);
            fed = nh - L / 2;
            g_ref_shifts++;
        }
        model_seq q = {0, nh - fed, hist + fed, 0};
        if (model_step(m, c, 1, &q, logits)) break;
        fed = nh;
        int id = sampler_sample(&smp, logits, V, hist, nh, NULL);
        out[k++] = id;
        hist[nh++] = id;
        if (id == tok_eos(t)) break;
    }
    sampler_free(&smp);
    free(logits);
    free(hist);
    model_cache_free(c);
    return k;
}

TEST(test_generate)
{
    int st;
    json_t *j = post_json(g_main.port, "/generate",
                          "{\"prompt\":\"the model\",\"max_tokens\":12,\"seed\":5,\"logprobs\":true}", &st);
    CHECK(st == 200);
    CHECK(j && json_is_string(json_object_get(j, "text")));
    json_t *toks = j ? json_object_get(j, "tokens") : NULL;
    const char *fr = j ? json_string_value(json_object_get(j, "finish_reason")) : NULL;
    CHECK(fr && (!strcmp(fr, "length") || !strcmp(fr, "eos")));
    int32_t ref[64];
    int nref = reference_generate(g_m, "the model", 12, 1.0f, 5, ref);
    CHECK_MSG(json_array_size(toks) == (size_t)nref, "%zu tokens vs %d by hand", json_array_size(toks), nref);
    for (int i = 0; i < nref && i < (int)json_array_size(toks); i++) {
        json_t *t = json_array_get(toks, i);
        CHECK(json_integer_value(json_object_get(t, "id")) == ref[i]);
        CHECK(json_is_real(json_object_get(t, "logprob")) && json_real_value(json_object_get(t, "logprob")) <= 0);
        CHECK(json_is_string(json_object_get(t, "text")));
    }
    /* text == decode(tokens) */
    char *dec = NULL;
    size_t dl = 0;
    tok_decode(model_tok(g_m), ref, (size_t)nref, 0, &dec, &dl);
    CHECK(j && dec && !strcmp(json_string_value(json_object_get(j, "text")), dec));
    free(dec);
    json_t *u = j ? json_object_get(j, "usage") : NULL;
    CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == 2 ||
          json_integer_value(json_object_get(u, "prompt_tokens")) >= 1);
    CHECK(json_integer_value(json_object_get(u, "completion_tokens")) == nref);
    json_t *tm = j ? json_object_get(j, "timings") : NULL;
    CHECK(json_is_number(json_object_get(tm, "queue_ms")) && json_is_number(json_object_get(tm, "prefill_ms")) &&
          json_is_number(json_object_get(tm, "decode_ms")));
    json_decref(j);
    /* greedy twice: identical */
    json_t *a = post_json(g_main.port, "/generate", "{\"prompt\":\"a token\",\"max_tokens\":20,\"temperature\":0}", &st);
    json_t *b = post_json(g_main.port, "/generate", "{\"prompt\":\"a token\",\"max_tokens\":20,\"temperature\":0}", &st);
    CHECK(a && b && ids_equal(json_object_get(a, "tokens"), json_object_get(b, "tokens")));
    nref = reference_generate(g_m, "a token", 20, 0.0f, 0, ref);
    CHECK(a && json_array_size(json_object_get(a, "tokens")) == (size_t)nref);
    json_decref(a);
    json_decref(b);
    /* empty prompt: starts from end-of-text */
    j = post_json(g_main.port, "/generate", "{\"prompt\":\"\",\"max_tokens\":3}", &st);
    CHECK(st == 200);
    json_decref(j);
}

TEST(test_generate_stop)
{
    /* find the text greedy decoding produces, then stop at a piece of it */
    int st;
    json_t *a = post_json(g_main.port, "/generate", "{\"prompt\":\"the\",\"max_tokens\":30,\"temperature\":0}", &st);
    const char *full = a ? json_string_value(json_object_get(a, "text")) : NULL;
    CHECK(st == 200 && full);
    if (!full || strlen(full) < 6) {
        json_decref(a);
        return;
    }
    char stop[4];
    memcpy(stop, full + 3, 3);
    stop[3] = 0;
    const char *first = strstr(full, stop);
    json_t *req = json_pack("{s:s,s:i,s:f,s:[s]}", "prompt", "the", "max_tokens", 30, "temperature", 0.0, "stop", stop);
    char *b = json_dumps(req, 0);
    json_t *j = post_json(g_main.port, "/generate", b, &st);
    CHECK(st == 200);
    const char *txt = j ? json_string_value(json_object_get(j, "text")) : NULL;
    CHECK(txt && strlen(txt) == (size_t)(first - full) && !strncmp(txt, full, strlen(txt)));
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "finish_reason")), "stop"));
    /* streamed with the same stop: the deltas add up to the same text */
    json_object_set_new(req, "stream", json_true());
    free(b);
    b = json_dumps(req, 0);
    resp r;
    CHECK(http(g_main.port, "POST", "/generate", NULL, b, &r) == 0);
    json_t *ev[64];
    int done;
    int n = sse_parse(r.body, ev, 64, &done);
    char acc[512] = "";
    for (int i = 0; i < n; i++) {
        const char *d = ev[i] ? json_string_value(json_object_get(ev[i], "text")) : NULL;
        if (d && strlen(acc) + strlen(d) < sizeof acc) strcat(acc, d);
    }
    CHECK_MSG(txt && !strcmp(acc, txt), "streamed '%s' vs '%s'", acc, txt ? txt : "");
    CHECK(n > 0 && ev[n - 1] && !strcmp(json_string_value(json_object_get(ev[n - 1], "finish_reason")), "stop"));
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);
    free(b);
    json_decref(req);
    json_decref(j);
    json_decref(a);
}

TEST(test_generate_stream)
{
    const char *body = "{\"prompt\":\"the model\",\"max_tokens\":12,\"seed\":5,\"stream\":true,\"logprobs\":true}";
    resp r;
    CHECK(http(g_main.port, "POST", "/generate", NULL, body, &r) == 0);
    CHECK(r.status == 200);
    char ct[64];
    CHECK(header(&r, "Content-Type", ct, sizeof ct) && !strcmp(ct, "text/event-stream"));
    json_t *ev[64];
    int done;
    int n = sse_parse(r.body, ev, 64, &done);
    int32_t ref[64];
    int nref = reference_generate(g_m, "the model", 12, 1.0f, 5, ref);
    CHECK_MSG(n == nref + 1, "%d events for %d tokens", n, nref);
    char acc[1024] = "";
    for (int i = 0; i < n; i++) {
        json_t *e = ev[i];
        CHECK(e != NULL);
        if (!e) continue;
        const char *d = json_string_value(json_object_get(e, "text"));
        if (d && strlen(acc) + strlen(d) < sizeof acc) strcat(acc, d);
        if (i < n - 1) {
            json_t *t = json_object_get(e, "token");
            CHECK(i < nref && json_integer_value(json_object_get(t, "id")) == ref[i]);
            CHECK(json_is_real(json_object_get(t, "logprob")));
        } else {
            CHECK(json_is_string(json_object_get(e, "finish_reason")));
            CHECK(json_integer_value(json_object_get(json_object_get(e, "usage"), "completion_tokens")) == nref);
        }
    }
    char *dec = NULL;
    size_t dl = 0;
    tok_decode(model_tok(g_m), ref, (size_t)nref, 0, &dec, &dl);
    CHECK_MSG(dec && !strcmp(acc, dec), "stream text '%s' vs '%s'", acc, dec ? dec : "");
    free(dec);
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);
}

/* --stream-interval 4: a stream carries the same events (every token, the
 * reference loop's ids and text), but the worker wakes the loop for it only
 * at the first token, every 4th after it, and the end: for 24 tokens
 * synth_stream_wakeups_total grows by 6 (tokens 1, 5, 9, 13, 17, 21; the
 * 24th ends the stream), against 23 on the default server, and the body
 * arrives in at most 6 + 1 writes (chunks). How many writes the default
 * server needs depends on how far the loop lags the tiny model's steps. */
TEST(test_stream_interval)
{
    server sv;
    const char *extra[] = {"--stream-interval", "4", NULL};
    CHECK(server_start(&sv, "interval", NULL, extra, NULL) == 0);
    if (!sv.pid) return;
    enum { NTOK = 24 };
    const char *body = "{\"prompt\":\"the model\",\"max_tokens\":24,\"seed\":9,\"stream\":true}";
    const char *name = "synth_stream_wakeups_total";
    int32_t ref[NTOK];
    int nref = reference_generate(g_m, "the model", NTOK, 1.0f, 9, ref);
    CHECK(nref == NTOK);
    int chunks[2] = {0, 0};
    for (int v = 0; v < 2; v++) {
        int port = v ? g_main.port : sv.port;
        double before = metric(port, name);
        resp r;
        CHECK(http(port, "POST", "/generate", NULL, body, &r) == 0);
        CHECK(r.status == 200);
        chunks[v] = r.n_chunks;
        json_t *ev[NTOK + 8];
        int done, n = sse_parse(r.body, ev, NTOK + 8, &done);
        CHECK_MSG(n == nref + 1, "%d events for %d tokens", n, nref);
        int same = 0;
        for (int i = 0; i < n - 1 && i < nref; i++) {
            json_t *t = ev[i] ? json_object_get(ev[i], "token") : NULL;
            same += json_integer_value(json_object_get(t, "id")) == ref[i];
        }
        CHECK_MSG(same == nref, "%d of %d streamed ids are the reference's", same, nref);
        for (int i = 0; i < n; i++) json_decref(ev[i]);
        resp_free(&r);
        double want = before + (v ? NTOK - 1 : 6), got = wait_metric(port, name, want, 0);
        CHECK_MSG(before >= 0 && got == want, "%s grew by %g, not %g (stream interval %d)", name, got - before,
                  want - before, v ? 1 : 4);
    }
    CHECK_MSG(chunks[0] >= 1 && chunks[0] <= 7, "--stream-interval 4: %d chunks for %d tokens (at most 7)", chunks[0],
              nref);
    printf("  %d tokens streamed in %d writes at --stream-interval 4, %d at the default 1\n", nref, chunks[0],
           chunks[1]);
    CHECK(server_stop(&sv) == 0);
}

TEST(test_openai_completions)
{
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions",
                          "{\"model\":\"x\",\"prompt\":\"the model\",\"max_tokens\":12,\"seed\":5,\"logprobs\":2}", &st);
    CHECK(st == 200);
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "object")), "text_completion"));
    json_t *c = j ? json_array_get(json_object_get(j, "choices"), 0) : NULL;
    int32_t ref[64];
    int nref = reference_generate(g_m, "the model", 12, 1.0f, 5, ref);
    char *dec = NULL;
    size_t dl = 0;
    tok_decode(model_tok(g_m), ref, (size_t)nref, 0, &dec, &dl);
    CHECK(c && dec && !strcmp(json_string_value(json_object_get(c, "text")), dec));
    free(dec);
    json_t *lp = json_object_get(c, "logprobs");
    CHECK(json_array_size(json_object_get(lp, "tokens")) == (size_t)nref);
    CHECK(json_array_size(json_object_get(lp, "token_logprobs")) == (size_t)nref);
    json_t *top0 = json_array_get(json_object_get(lp, "top_logprobs"), 0);
    CHECK(json_is_object(top0) && json_object_size(top0) >= 1 && json_object_size(top0) <= 2);
    /* the top alternative's logprob is >= the sampled token's */
    if (json_is_object(top0)) {
        const char *k;
        json_t *v;
        double best = -1e30;
        json_object_foreach(top0, k, v) if (json_real_value(v) > best) best = json_real_value(v);
        CHECK(best >= json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), 0)) - 1e-6);
    }
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) == nref);
    json_decref(j);

    /* echo + max_tokens 0 + logprobs: prompt logprobs equal eval_continuation's total */
    j = post_json(g_main.port, "/v1/completions",
                  "{\"prompt\":\"the model learns\",\"max_tokens\":0,\"echo\":true,\"logprobs\":0}", &st);
    CHECK(st == 200);
    c = j ? json_array_get(json_object_get(j, "choices"), 0) : NULL;
    CHECK(c && !strcmp(json_string_value(json_object_get(c, "text")), "the model learns"));
    json_t *tl = json_object_get(json_object_get(c, "logprobs"), "token_logprobs");
    double sum = 0;
    for (size_t i = 0; i < json_array_size(tl); i++) sum += json_real_value(json_array_get(tl, i));
    double ref_lp = 0;
    int greedy = 0, nk = 0;
    CHECK(eval_continuation(g_m, "", 0, "the model learns", 16, 0, &ref_lp, &greedy, &nk) == 0);
    CHECK((int)json_array_size(tl) == nk);
    CHECK_NEAR(sum, ref_lp, 1e-3);
    json_decref(j);

    /* stream: chunks then [DONE] */
    resp r;
    CHECK(http(g_main.port, "POST", "/v1/completions", NULL,
               "{\"prompt\":\"the model\",\"max_tokens\":12,\"seed\":5,\"stream\":true}", &r) == 0);
    CHECK(r.status == 200);
    json_t *ev[64];
    int done;
    int n = sse_parse(r.body, ev, 64, &done);
    CHECK(done);
    CHECK(n == nref + 1);
    char acc[1024] = "";
    for (int i = 0; i < n; i++) {
        json_t *ch = ev[i] ? json_array_get(json_object_get(ev[i], "choices"), 0) : NULL;
        const char *d = json_string_value(json_object_get(ch, "text"));
        if (d && strlen(acc) + strlen(d) < sizeof acc) strcat(acc, d);
        if (i == n - 1) CHECK(json_is_string(json_object_get(ch, "finish_reason")));
        else CHECK(json_is_null(json_object_get(ch, "finish_reason")));
    }
    dec = NULL;
    tok_decode(model_tok(g_m), ref, (size_t)nref, 0, &dec, &dl);
    CHECK(dec && !strcmp(acc, dec));
    free(dec);
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);

    /* prompt as token ids */
    j = post_json(g_main.port, "/v1/completions", "{\"prompt\":[1,2,3],\"max_tokens\":2}", &st);
    CHECK(st == 200);
    json_decref(j);
}

/* OpenAI stream with echo and logprobs: the prompt comes first as its own
 * chunk with prompt logprobs, then one chunk per token with its logprob. */
/* lm-evaluation-harness decides is_greedy by comparing a token's
 * token_logprobs entry with the largest of its top_logprobs exactly: with
 * temperature 0 they must be the same number (one log-softmax). */
TEST(test_greedy_logprob_is_top)
{
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions",
                          "{\"prompt\":\"the model learns attention\",\"max_tokens\":10,\"temperature\":0,"
                          "\"logprobs\":3,\"echo\":true}", &st);
    CHECK(st == 200);
    json_t *lp = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs");
    json_t *tl = json_object_get(lp, "token_logprobs"), *top = json_object_get(lp, "top_logprobs");
    size_t n = json_array_size(tl);
    CHECK(n > 10 && json_array_size(top) == n);
    int checked = 0, gen_off = 0;
    for (size_t i = 1; i < n; i++) {  /* entry 0 of an echo has no context */
        json_t *t = json_array_get(top, i);
        double best = -1e30, mine = json_real_value(json_array_get(tl, i));
        const char *k;
        json_t *v;
        json_object_foreach(t, k, v) if (json_real_value(v) > best) best = json_real_value(v);
        if (i + 10 >= n) {            /* generated, greedy: exactly the best */
            gen_off += mine != best;
            checked++;
        }
    }
    CHECK(checked == 10);
    CHECK_MSG(gen_off == 0, "%d greedy tokens whose log-prob differs from the best alternative's", gen_off);
    json_decref(j);
}

TEST(test_openai_echo_stream)
{
    resp r;
    CHECK(http(g_main.port, "POST", "/v1/completions", NULL,
               "{\"prompt\":\"the model\",\"max_tokens\":5,\"seed\":3,\"stream\":true,\"echo\":true,\"logprobs\":1}",
               &r) == 0);
    CHECK(r.status == 200);
    json_t *ev[32];
    int done;
    int n = sse_parse(r.body, ev, 32, &done);
    CHECK(done && n >= 2);
    json_t *c0 = n ? json_array_get(json_object_get(ev[0], "choices"), 0) : NULL;
    CHECK(c0 && !strcmp(json_string_value(json_object_get(c0, "text")), "the model"));
    int32_t *ids = NULL;
    size_t np = 0;
    tok_encode(model_tok(g_m), "the model", 9, &ids, &np);
    json_t *lp0 = json_object_get(c0, "logprobs");
    CHECK(json_array_size(json_object_get(lp0, "token_logprobs")) == np);
    free(ids);
    int32_t ref[8];
    int nref = reference_generate(g_m, "the model", 5, 1.0f, 3, ref);
    CHECK(n == 1 + nref + 1);
    for (int i = 1; i <= nref && i < n; i++) {
        json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0);
        json_t *lp = json_object_get(c, "logprobs");
        CHECK(json_array_size(json_object_get(lp, "token_logprobs")) == 1);
        CHECK(json_object_size(json_array_get(json_object_get(lp, "top_logprobs"), 0)) == 1);
    }
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);
}

/* Regression (found by ThreadSanitizer, make tsan): the echo chunk of an
 * OpenAI stream with logprobs was formatted as soon as the stream started,
 * reading the prompt logprobs while the worker had not prefilled the prompt
 * yet (a data race; uninitialized numbers when the request waited in the
 * queue). With one batch slot held by a long generation, the queued
 * request's echo chunk must still carry the prompt logprobs of an
 * unqueued request. */
TEST(test_echo_stream_waits_for_prefill)
{
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions",
                          "{\"prompt\":\"the model learns\",\"max_tokens\":0,\"echo\":true,\"logprobs\":0}", &st);
    json_t *ref = json_object_get(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs"),
                                  "token_logprobs");
    CHECK(st == 200 && json_array_size(ref) >= 2);
    server s;
    const char *const extra[] = {"--max-batch", "1", NULL};
    CHECK(server_start(&s, "echo_queue", NULL, extra, "SYNTH_LOG_LEVEL=warn") == 0);
    if (!s.pid) {
        json_decref(j);
        return;
    }
    int a = http_send(s.port, "POST", "/generate", NULL, "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}");
    CHECK(wait_metric(s.port, "synth_running_batch_size", 1, 1) == 1);
    int b = http_send(s.port, "POST", "/v1/completions", NULL,
                      "{\"prompt\":\"the model learns\",\"max_tokens\":2,\"stream\":true,\"echo\":true,\"logprobs\":0}");
    CHECK(wait_metric(s.port, "synth_queue_depth", 1, 1) == 1);
    usleep(200000);   /* the old code sent the echo chunk now, before the prefill */
    close(a);         /* cancel the long generation: b gets the slot */
    resp r;
    CHECK(http_recv(b, &r) == 0 && r.status == 200);
    json_t *ev[8];
    int done = 0;
    int n = sse_parse(r.body ? r.body : "", ev, 8, &done);
    CHECK(done && n >= 1);
    json_t *got = n ? json_object_get(json_object_get(json_array_get(json_object_get(ev[0], "choices"), 0), "logprobs"),
                                      "token_logprobs")
                    : NULL;
    CHECK(json_array_size(got) == json_array_size(ref));
    for (size_t i = 0; i < json_array_size(ref) && i < json_array_size(got); i++) {
        json_t *x = json_array_get(ref, i), *y = json_array_get(got, i);
        if (json_is_null(x)) CHECK(json_is_null(y));
        else CHECK_MSG(json_is_number(y) && fabs(json_number_value(x) - json_number_value(y)) < 1e-4,
                       "prompt token %zu: logprob %g, unqueued %g", i, json_number_value(y), json_number_value(x));
    }
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);
    json_decref(j);
    CHECK(server_stop(&s) == 0);
}

/* The fixture text (g_text), at most 16383 bytes, NUL-terminated, read
 * once; NULL (a failed check) if it cannot be read. */
static const char *fixture_text(size_t *len)
{
    static char buf[16384];
    static size_t n;
    if (!n) {
        FILE *f = fopen(g_text, "rb");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
    }
    *len = n;
    CHECK_MSG(n > 0, "cannot read the fixture text %s", g_text);
    return n ? buf : NULL;
}

/* /score numbers against eval_text in-process and `synth score --json`. */
TEST(test_score)
{
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return;
    eval_result ref;
    float *ref_lp = NULL;
    int32_t *ref_ids = NULL;
    CHECK(eval_text(g_m, text, tl, 4, &ref, &ref_ids, &ref_lp, NULL, NULL) == 0);
    CHECK(ref.n_tokens > model_hparams(g_m)->n_ctx);   /* several windows */
    json_t *body = json_pack("{s:s,s:b}", "text", text, "token_logprobs", 1);
    char *b = json_dumps(body, 0);
    int st;
    json_t *j = post_json(g_main.port, "/score", b, &st);
    free(b);
    json_decref(body);
    CHECK(st == 200);
    CHECK(json_integer_value(json_object_get(j, "tokens")) == ref.n_tokens);
    CHECK(json_integer_value(json_object_get(j, "words")) == ref.n_words);
    CHECK_NEAR(json_real_value(json_object_get(j, "nll")), ref.nll, 1e-4 * (1 + fabs(ref.nll)));
    CHECK_NEAR(json_real_value(json_object_get(j, "perplexity")), ref.perplexity, 1e-4 * ref.perplexity);
    CHECK_NEAR(json_real_value(json_object_get(j, "word_perplexity")), ref.word_perplexity, 1e-4 * ref.word_perplexity);
    CHECK_NEAR(json_real_value(json_object_get(j, "bits_per_byte")), ref.bits_per_byte, 1e-4);
    json_t *tl_arr = json_object_get(j, "token_logprobs");
    CHECK((int64_t)json_array_size(tl_arr) == ref.n_tokens);
    int bad = 0;
    for (int64_t i = 0; i < ref.n_tokens && i < (int64_t)json_array_size(tl_arr); i++) {
        json_t *e = json_array_get(tl_arr, (size_t)i);
        if (json_integer_value(json_object_get(e, "id")) != ref_ids[i] ||
            fabs(json_real_value(json_object_get(e, "logprob")) - ref_lp[i]) > 1e-4)
            bad++;
    }
    CHECK_MSG(bad == 0, "%d token logprobs differ", bad);

    /* the CLI on the same file */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 %s score --json -m %s %s 2>/dev/null", g_synth, g_model, g_text);
    FILE *p = popen(cmd, "r");
    char out[1024] = "";
    size_t on = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[on] = 0;
    int prc = p ? pclose(p) : -1;
    CHECK_MSG(prc == 0, "synth score failed: %s", cmd);
    json_t *cli = json_loads(out, 0, NULL);
    CHECK(cli != NULL);
    if (cli) {
        CHECK(json_integer_value(json_object_get(cli, "tokens")) == json_integer_value(json_object_get(j, "tokens")));
        CHECK_NEAR(json_number_value(json_object_get(cli, "nll")), json_real_value(json_object_get(j, "nll")), 1e-4 * (1 + fabs(ref.nll)));
        CHECK_NEAR(json_number_value(json_object_get(cli, "perplexity")), json_real_value(json_object_get(j, "perplexity")), 1e-4 * ref.perplexity);
        CHECK_NEAR(json_number_value(json_object_get(cli, "word_perplexity")),
                   json_real_value(json_object_get(j, "word_perplexity")), 1e-4 * ref.word_perplexity);
        CHECK_NEAR(json_number_value(json_object_get(cli, "bits_per_byte")), json_real_value(json_object_get(j, "bits_per_byte")), 1e-4);
    }
    json_decref(cli);
    json_decref(j);

    /* texts: an array of results, each equal to scoring it alone */
    const char *t1 = "the model learns attention", *t2 = "random synthesizer";
    eval_result r1, r2;
    eval_text(g_m, t1, strlen(t1), 1, &r1, NULL, NULL, NULL, NULL);
    eval_text(g_m, t2, strlen(t2), 1, &r2, NULL, NULL, NULL, NULL);
    j = post_json(g_main.port, "/score", "{\"texts\":[\"the model learns attention\",\"random synthesizer\"]}", &st);
    CHECK(st == 200);
    json_t *res = json_object_get(j, "results");
    CHECK(json_array_size(res) == 2);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(res, 0), "nll")), r1.nll, 1e-4);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(res, 1), "nll")), r2.nll, 1e-4);
    json_decref(j);

    /* context + continuation = eval_continuation */
    double lp = 0;
    int greedy = 0, nk = 0;
    CHECK(eval_continuation(g_m, "the model", 9, " learns attention", 17, 0, &lp, &greedy, &nk) == 0);
    j = post_json(g_main.port, "/score", "{\"context\":\"the model\",\"continuation\":\" learns attention\"}", &st);
    CHECK(st == 200);
    CHECK_NEAR(json_real_value(json_object_get(j, "logprob")), lp, 1e-4);
    CHECK(json_is_boolean(json_object_get(j, "is_greedy")) && json_is_true(json_object_get(j, "is_greedy")) == (greedy != 0));
    CHECK(json_integer_value(json_object_get(j, "tokens")) == nk);
    json_decref(j);
    /* a context longer than the model's: 400, or left-truncated on request */
    char *longctx = make_text(6000, 5);
    CHECK(eval_continuation(g_m, longctx, strlen(longctx), " the model", 10, 1, &lp, &greedy, &nk) == 0);
    json_t *req = json_pack("{s:s,s:s}", "context", longctx, "continuation", " the model");
    char *b2 = json_dumps(req, 0);
    j = post_json(g_main.port, "/score", b2, &st);
    CHECK(st == 400 && !strncmp(err_msg(&(resp){.json = j}), "context:", 8));
    json_decref(j);
    free(b2);
    json_object_set_new(req, "truncate", json_true());
    json_object_set_new(req, "token_logprobs", json_true());
    b2 = json_dumps(req, 0);
    j = post_json(g_main.port, "/score", b2, &st);
    CHECK(st == 200);
    CHECK_NEAR(json_real_value(json_object_get(j, "logprob")), lp, 1e-4);
    CHECK((int)json_array_size(json_object_get(j, "token_logprobs")) == nk);
    json_decref(j);
    free(b2);
    json_decref(req);
    free(longctx);
    free(ref_lp);
    free(ref_ids);
}

/* The prefix cache: /score requests that share a context (lm-evaluation-
 * harness's multiple-choice tasks) and prompts that share a prefix reuse
 * its computed cache, with the very bits of a server that recomputes it
 * (--prefix-slots 0); one after another and concurrently (the later ones
 * wait a step for the first to be kept). The metric counts exactly the
 * eos + context tokens but the last of every request after the first. */
static json_t *score_cont(int port, const char *ctx, const char *cont)
{
    json_t *req = json_pack("{s:s,s:s,s:b}", "context", ctx, "continuation", cont, "token_logprobs", 1);
    char *b = json_dumps(req, 0);
    int st;
    json_t *j = post_json(port, "/score", b, &st);
    free(b);
    json_decref(req);
    if (st != 200) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int same_score(json_t *a, json_t *b)
{
    static const char *const keys[] = {"logprob", "is_greedy", "tokens", "token_logprobs"};
    for (int i = 0; i < 4; i++) {
        json_t *x = json_object_get(a, keys[i]);
        if (!x || !json_equal(x, json_object_get(b, keys[i]))) return 0;
    }
    return 1;
}

TEST(test_prefix_reuse)
{
    server on, off;
    const char *no_px[] = {"--prefix-slots", "0", NULL};
    CHECK(server_start(&on, "prefix", NULL, NULL, NULL) == 0);
    CHECK(server_start(&off, "noprefix", NULL, no_px, NULL) == 0);
    if (!on.pid || !off.pid) goto out;
    const char *conts[4] = {" the model learns", " a random synthesizer", " each step", " the server batch"};
    char *ctx[2] = {make_text(800, 31), make_text(700, 32)};
    int64_t want = 0;
    for (int round = 0; round < 2; round++) {
        size_t nc;
        int32_t *ids;
        CHECK(tok_encode(model_tok(g_m), ctx[round], strlen(ctx[round]), &ids, &nc) == 0);
        free(ids);
        want += 3 * (int64_t)nc;   /* eos + the context but its last token (whose logits are needed) */
        json_t *got[4] = {0}, *ref[4] = {0};
        if (round == 0) {
            for (int i = 0; i < 4; i++) got[i] = score_cont(on.port, ctx[0], conts[i]);
        } else {    /* all four in flight at once */
            int fd[4];
            for (int i = 0; i < 4; i++) {
                json_t *req = json_pack("{s:s,s:s,s:b}", "context", ctx[1], "continuation", conts[i],
                                        "token_logprobs", 1);
                char *b = json_dumps(req, 0);
                fd[i] = http_send(on.port, "POST", "/score", NULL, b);
                free(b);
                json_decref(req);
            }
            for (int i = 0; i < 4; i++) {
                resp r;
                if (fd[i] >= 0 && http_recv(fd[i], &r) == 0 && r.status == 200) got[i] = json_incref(r.json);
                if (fd[i] >= 0) resp_free(&r);
            }
        }
        for (int i = 0; i < 4; i++) {
            ref[i] = score_cont(off.port, ctx[round], conts[i]);
            CHECK_MSG(got[i] && ref[i] && same_score(got[i], ref[i]),
                      "round %d continuation %d: the reused prefix changed the numbers", round, i);
            double lp = 0;
            int greedy = 0, nk = 0;
            CHECK(eval_continuation(g_m, ctx[round], strlen(ctx[round]), conts[i], strlen(conts[i]), 0, &lp,
                                    &greedy, &nk) == 0);
            CHECK_NEAR(json_real_value(json_object_get(got[i], "logprob")), lp, 1e-4);
            json_decref(got[i]);
            json_decref(ref[i]);
        }
    }
    CHECK_MSG(metric(on.port, "synth_prefix_reused_tokens_total") == (double)want,
              "reused %.0f tokens, want %lld", metric(on.port, "synth_prefix_reused_tokens_total"),
              (long long)want);
    CHECK(metric(off.port, "synth_prefix_reused_tokens_total") == 0);
    /* a prompt sharing the first context: the tokens of the reference loop */
    char *prompt = malloc(strlen(ctx[0]) + 16);
    sprintf(prompt, "%s the model", ctx[0]);
    json_t *req = json_pack("{s:s,s:i,s:i}", "prompt", prompt, "max_tokens", 8, "seed", 5);
    char *b = json_dumps(req, 0);
    int st;
    json_t *j = post_json(on.port, "/generate", b, &st);
    int32_t refg[8];
    int nref = reference_generate(g_m, prompt, 8, 1.0f, 5, refg);
    json_t *toks = json_object_get(j, "tokens");
    CHECK(st == 200 && (int)json_array_size(toks) == nref);
    for (int i = 0; i < nref && i < (int)json_array_size(toks); i++) {
        json_t *e = json_array_get(toks, (size_t)i);
        CHECK(json_integer_value(json_is_object(e) ? json_object_get(e, "id") : e) == refg[i]);
    }
    CHECK_MSG(metric(on.port, "synth_prefix_reused_tokens_total") >= (double)want + PREFIX_MIN_TOKENS,
              "the prompt reused no prefix");
    json_decref(j);
    free(b);
    json_decref(req);
    free(prompt);
    free(ctx[0]);
    free(ctx[1]);
out:
    CHECK(server_stop(&on) == 0);
    CHECK(server_stop(&off) == 0);
}

/* Is the /v1/models field `key` the string `want`? (0 and a message if not) */
static int model_field_is(int port, const char *key, const char *want)
{
    resp r;
    if (http(port, "GET", "/v1/models", NULL, NULL, &r) != 0) return 0;
    json_t *m = r.json ? json_array_get(json_object_get(r.json, "data"), 0) : NULL;
    const char *v = m ? json_string_value(json_object_get(m, key)) : NULL;
    int ok = v && !strcmp(v, want);
    if (!ok) printf("  /v1/models %s: %s, want %s\n", key, v ? v : "(none)", want);
    resp_free(&r);
    return ok;
}

/* /score of the fixture text on a server: its nll relative to eval_text's
 * in this process (the f32 engine at the best level), or -1 on failure. */
static double score_rel_to_engine(int port)
{
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return -1;
    json_t *b = json_pack("{s:s}", "text", text);
    char *bs = json_dumps(b, 0);
    int st;
    json_t *j = post_json(port, "/score", bs, &st);
    free(bs);
    json_decref(b);
    eval_result ref;
    double rel = -1;
    if (st == 200 && eval_text(g_m, text, tl, 4, &ref, NULL, NULL, NULL, NULL) == 0 &&
        json_integer_value(json_object_get(j, "tokens")) == ref.n_tokens)
        rel = fabs(json_real_value(json_object_get(j, "nll")) / ref.nll - 1.0);
    json_decref(j);
    return rel;
}

/* --cpu scalar: the server runs the portable kernels (the level shows in
 * /v1/models, /metrics and the start-up log) and scores as the in-process
 * best level does, to float rounding. */
TEST(test_cpu_level_forced)
{
    server sv;
    const char *extra[] = {"--cpu", "scalar", NULL};
    CHECK(server_start(&sv, "scalar", NULL, extra, NULL) == 0);
    if (!sv.pid) return;
    CHECK(model_field_is(sv.port, "cpu", "scalar"));
    char info[96];
    snprintf(info, sizeof info, "synth_cpu_info{level=\"scalar\",best=\"%s\",act=\"q8\"}", model_cpu_best());
    CHECK_MSG(metric(sv.port, info) == 1, "no metric %s", info);
    double rel = score_rel_to_engine(sv.port);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "scalar kernels: /score nll off by %g relative", rel);
    CHECK(server_stop(&sv) == 0);
    char want[64], line[1024];
    snprintf(want, sizeof want, "kernels scalar of %s", model_cpu_best());
    FILE *f = fopen(sv.log, "r");
    int found = 0;
    while (f && fgets(line, sizeof line, f)) found |= strstr(line, want) != NULL;
    if (f) fclose(f);
    CHECK_MSG(found, "start-up log lacks \"%s\"", want);
}

/* --act f32: the activation mode shows in /v1/models and /metrics (the
 * default server's is q8, checked with the other fields above). */
TEST(test_act_forced)
{
    CHECK(model_field_is(g_main.port, "activations", "q8"));
    server sv;
    const char *extra[] = {"--act", "f32", NULL};
    CHECK(server_start(&sv, "act", NULL, extra, NULL) == 0);
    if (!sv.pid) return;
    CHECK(model_field_is(sv.port, "activations", "f32"));
    char info[128];
    snprintf(info, sizeof info, "synth_cpu_info{level=\"%s\",best=\"%s\",act=\"f32\"}", model_cpu(), model_cpu_best());
    CHECK_MSG(metric(sv.port, info) == 1, "no metric %s", info);
    CHECK(server_stop(&sv) == 0);
}

/* Cache types: the default server stores f16 values; --cache-type f32 says
 * so, gives a request the same tokens alone and among concurrent ones, and
 * scores as the engine with f32 values does (to the rounding of the double
 * sum of the tokens' terms, 1e-12), and within F16_SCORE_TOL (relative),
 * but not equal, of the f16 default. */
#define F16_SCORE_TOL 1e-3
TEST(test_cache_type_served)
{
    CHECK(model_field_is(g_main.port, "cache_type", "f16"));
    CHECK(model_cache_values_default(g_m) == MODEL_CACHE_F16);
    server sv;
    const char *extra[] = {"--cache-type", "f32", NULL};
    CHECK(server_start(&sv, "f32", NULL, extra, NULL) == 0);
    if (!sv.pid) return;
    CHECK(model_field_is(sv.port, "cache_type", "f32"));
    static const char body[] = "{\"prompt\":\"the model learns\",\"max_tokens\":24,\"temperature\":0.8,\"seed\":3}";
    int st;
    json_t *alone = post_json(sv.port, "/generate", body, &st);
    CHECK(st == 200);
    enum { N = 6 };
    int fd[N];
    for (int i = 0; i < N; i++) fd[i] = http_send(sv.port, "POST", "/generate", NULL, body);
    int same = 0;
    for (int i = 0; i < N; i++) {
        resp g;
        if (fd[i] >= 0 && http_recv(fd[i], &g) == 0) {
            same += g.status == 200 && ids_equal(json_object_get(g.json, "tokens"), json_object_get(alone, "tokens"));
            resp_free(&g);
        }
    }
    CHECK_MSG(same == N, "%d of %d concurrent requests got the tokens of the request alone", same, N);
    json_decref(alone);
    double rel16 = score_rel_to_engine(sv.port); /* g_m: the default, f16 */
    CHECK(model_set_cache_values(g_m, MODEL_CACHE_F32) == 0);
    double rel32 = score_rel_to_engine(sv.port);
    CHECK(model_set_cache_values(g_m, MODEL_CACHE_F16) == 0);
    CHECK_MSG(rel32 >= 0 && rel32 < 1e-12, "f32 server vs the f32 engine: /score nll off by %g relative", rel32);
    CHECK_MSG(rel16 > 1e-12 && rel16 < F16_SCORE_TOL, "f32 server vs the f16 engine: /score nll off by %g relative", rel16);
    printf("  f32 value cache: /score nll equals the f32 engine's, %.2g from the f16 default's\n", rel16);
    CHECK(server_stop(&sv) == 0);
}

/* Generation past the context on a model of 32 positions: the tokens of
 * the reference loop that starts again from the last half of the context
 * each time it fills (several shifts), streamed or not, alone or beside
 * other requests; usage.context_shifts counts them. */
TEST(test_context_shift)
{
    char path[320];
    snprintf(path, sizeof path, "%s/ctx32.gguf", g_dir);
    arch_hparams hp = test_shape(ARCH_RANDOM, 32, 64, 4);
    CHECK(write_model(path, &hp) == 0);
    model *m = NULL;
    char err[256];
    CHECK(model_load(path, &m, err, sizeof err) == 0);
    if (!m) return;
    server sv;
    CHECK(server_start(&sv, "ctx32", path, NULL, NULL) == 0);
    if (sv.pid) {
        int32_t ref[100];
        int nref = reference_generate(m, "the model learns", 100, 1.0f, 11, ref);
        int ref_shifts = g_ref_shifts;
        CHECK_MSG(nref < 40 || ref_shifts >= 2, "reference: %d tokens, %d shifts", nref, ref_shifts);
        static const char body[] = "{\"prompt\":\"the model learns\",\"max_tokens\":100,\"seed\":11}";
        int fd[4];
        for (int i = 0; i < 4; i++) fd[i] = http_send(sv.port, "POST", "/generate", NULL, body);
        for (int i = 0; i < 4; i++) {
            resp g;
            CHECK(fd[i] >= 0 && http_recv(fd[i], &g) == 0 && g.status == 200);
            json_t *toks = json_object_get(g.json, "tokens");
            int same = (int)json_array_size(toks) == nref;
            for (int k = 0; same && k < nref; k++)
                same = json_integer_value(json_object_get(json_array_get(toks, (size_t)k), "id")) == ref[k];
            CHECK_MSG(same, "request %d: %zu tokens, not the reference's %d", i, json_array_size(toks), nref);
            CHECK(json_integer_value(json_object_get(json_object_get(g.json, "usage"), "context_shifts")) ==
                  ref_shifts);
            resp_free(&g);
        }
        /* the CLI generates the same text (one rule for the context shift) */
        int st;
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s generate -m %s -p 'the model learns' -n 100 --seed 11 2>/dev/null", g_synth,
                 path);
        FILE *pp = popen(cmd, "r");
        char out[8192];
        size_t on = pp ? fread(out, 1, sizeof out - 1, pp) : 0;
        if (pp) pclose(pp);
        out[on] = 0;
        /* the CLI prints the raw bytes of its tokens (the server's JSON text
         * replaces invalid UTF-8): compare with the reference tokens' bytes */
        char want[8192];
        size_t wn = (size_t)snprintf(want, sizeof want, "the model learns");
        for (int k = 0; k < nref; k++) {
            const char *tb;
            size_t tn;
            if (ref[k] != tok_eos(model_tok(m)) && tok_token_bytes(model_tok(m), ref[k], &tb, &tn) == 0 &&
                wn + tn < sizeof want - 2) {
                memcpy(want + wn, tb, tn);
                wn += tn;
            }
        }
        want[wn++] = '\n';
        CHECK_MSG(on == wn && !memcmp(out, want, wn), "synth generate printed %zu bytes, the reference tokens make %zu",
                  on, wn);
        /* OpenAI: usage.context_shifts */
        json_t *j = post_json(sv.port, "/v1/completions",
                              "{\"prompt\":\"the model learns\",\"max_tokens\":100,\"seed\":11}", &st);
        json_int_t oshift = json_integer_value(json_object_get(json_object_get(j, "usage"), "context_shifts"));
        CHECK_MSG(st == 200 && oshift == ref_shifts, "/v1/completions: %d, %lld context shifts, want %d", st,
                  (long long)oshift, ref_shifts);

        json_decref(j);
        CHECK(server_stop(&sv) == 0);
    }
    model_free(m);
}

/* lm-evaluation-harness's remote tokenizer: GET /tokenizer_info, POST
 * /tokenize {prompt, add_special_tokens}, POST /detokenize -> {prompt};
 * the end-of-text text is its token on every route and comes back from
 * /detokenize; a prompt that starts with it gets no second one. */
static json_t *ids_of(const char *text)
{
    int32_t *ids = NULL;
    size_t n = 0;
    json_t *a = json_array();
    if (tok_encode(model_tok(g_m), text, strlen(text), &ids, &n) == 0)
        for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    free(ids);
    return a;
}

TEST(test_remote_tokenizer)
{
    const int eos = tok_eos(model_tok(g_m));
    resp r;
    CHECK(http(g_main.port, "GET", "/tokenizer_info", NULL, NULL, &r) == 0 && r.status == 200);
    CHECK(r.json && !strcmp(json_string_value(json_object_get(r.json, "eos_token")) ?
                                json_string_value(json_object_get(r.json, "eos_token")) : "", "<|endoftext|>"));
    CHECK(r.json && json_integer_value(json_object_get(r.json, "eos_token_id")) == eos);
    resp_free(&r);
    int st;
    /* eos_token_id as lm-eval finds it: encode(eos_token)[0] */
    json_t *j = post_json(g_main.port, "/tokenize", "{\"prompt\":\"<|endoftext|>\",\"add_special_tokens\":false}", &st);
    json_t *t = json_object_get(j, "tokens");
    CHECK(st == 200 && json_array_size(t) == 1 && json_integer_value(json_array_get(t, 0)) == eos);
    json_decref(j);
    /* inside a text: enc(a) + eos + enc(b); pieces spell the text */
    j = post_json(g_main.port, "/tokenize", "{\"prompt\":\"the model<|endoftext|> a token\",\"with_pieces\":true}", &st);
    json_t *want = ids_of("the model");
    json_array_append_new(want, json_integer(eos));
    json_t *tail = ids_of(" a token");
    json_array_extend(want, tail);
    json_decref(tail);
    CHECK(st == 200 && ids_equal(json_object_get(j, "tokens"), want));
    json_t *pieces = json_object_get(j, "pieces");
    char spelled[256] = "";
    for (size_t i = 0; i < json_array_size(pieces); i++)
        strncat(spelled, json_string_value(json_array_get(pieces, i)), sizeof spelled - strlen(spelled) - 1);
    CHECK_MSG(!strcmp(spelled, "the model<|endoftext|> a token"), "pieces spell '%s'", spelled);
    /* back: /detokenize writes the special token, as prompt and text */
    json_t *req = json_pack("{s:O}", "tokens", want);
    char *b = json_dumps(req, 0);
    json_t *d = post_json(g_main.port, "/detokenize", b, &st);
    CHECK(st == 200 && !strcmp(json_string_value(json_object_get(d, "prompt")), "the model<|endoftext|> a token") &&
          json_equal(json_object_get(d, "prompt"), json_object_get(d, "text")));
    json_decref(d);
    free(b);
    json_decref(req);
    json_decref(want);
    json_decref(j);
    /* add_special_tokens: eos first, once */
    j = post_json(g_main.port, "/tokenize", "{\"prompt\":\"the\",\"add_special_tokens\":true}", &st);
    t = json_object_get(j, "tokens");
    CHECK(st == 200 && json_integer_value(json_array_get(t, 0)) == eos && json_integer_value(json_array_get(t, 1)) != eos);
    json_decref(j);
    j = post_json(g_main.port, "/tokenize", "{\"prompt\":\"<|endoftext|>the\",\"add_special_tokens\":true}", &st);
    t = json_object_get(j, "tokens");
    CHECK(st == 200 && json_integer_value(json_array_get(t, 0)) == eos && json_integer_value(json_array_get(t, 1)) != eos);
    json_decref(j);
    /* a prompt starting with the end-of-text text: the tokens of the prompt without it */
    j = post_json(g_main.port, "/generate", "{\"prompt\":\"<|endoftext|>the model\",\"max_tokens\":8,\"seed\":4}", &st);
    int32_t ref[8];
    int nref = reference_generate(g_m, "the model", 8, 1.0f, 4, ref);
    json_t *toks = json_object_get(j, "tokens");
    int same = st == 200 && (int)json_array_size(toks) == nref;
    for (int k = 0; same && k < nref; k++) same = json_integer_value(json_object_get(json_array_get(toks, (size_t)k), "id")) == ref[k];
    CHECK_MSG(same, "a leading <|endoftext|> changed the generation");
    json_t *ref_ids = ids_of("the model");
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) ==
          (json_int_t)json_array_size(ref_ids));
    json_decref(ref_ids);
    json_decref(j);
    /* /score puts end-of-text before texts and contexts: one that starts
     * with it gets no second one (every number as without it, and as
     * eval_text / eval_continuation in-process) */
    static const char *const sc[][2] = {
        {"{\"text\":\"<|endoftext|>the model learns\"}", "{\"text\":\"the model learns\"}"},
        {"{\"texts\":[\"<|endoftext|>a token\",\"b\"]}", "{\"texts\":[\"a token\",\"b\"]}"},
        {"{\"context\":\"<|endoftext|>the\",\"continuation\":\" model\"}",
         "{\"context\":\"the\",\"continuation\":\" model\"}"},
        {"{\"context\":\"<|endoftext|>\",\"continuation\":\"the\"}", "{\"context\":\"\",\"continuation\":\"the\"}"},
    };
    for (int i = 0; i < 4; i++) {
        int s1, s2;
        json_t *a = post_json(g_main.port, "/score", sc[i][0], &s1), *b = post_json(g_main.port, "/score", sc[i][1], &s2);
        CHECK_MSG(s1 == 200 && s2 == 200 && json_equal(a, b), "/score %s differs from %s", sc[i][0], sc[i][1]);
        json_decref(a);
        json_decref(b);
    }
    {
        eval_result e1, e2;
        double l1, l2;
        int g1, g2, n1, n2;
        CHECK(eval_text(g_m, "<|endoftext|>the model", 22, 1, &e1, NULL, NULL, NULL, NULL) == 0 &&
              eval_text(g_m, "the model", 9, 1, &e2, NULL, NULL, NULL, NULL) == 0 && e1.nll == e2.nll &&
              e1.n_tokens == e2.n_tokens && e1.n_bytes == e2.n_bytes);
        CHECK(eval_continuation(g_m, "<|endoftext|>the", 16, " model", 6, 0, &l1, &g1, &n1) == 0 &&
              eval_continuation(g_m, "the", 3, " model", 6, 0, &l2, &g2, &n2) == 0 && l1 == l2 && n1 == n2);
    }
    /* bad forms name the field */
    j = post_json(g_main.port, "/tokenize", "{\"prompt\":\"a\",\"text\":\"b\"}", &st);
    CHECK(st == 400 && strstr(err_msg(&(resp){.json = j}), "prompt"));
    json_decref(j);
}

/* OpenAI's sampling fields served: logit_bias steers every token,
 * min_tokens holds the end-of-text back exactly that long, ignore_eos for
 * ever, presence/frequency penalties give the tokens of the in-process
 * sampler with the same fields; fields the server does not implement are
 * a 400 naming them. */
TEST(test_openai_sampling_fields)
{
    const int eos = tok_eos(model_tok(g_m));
    int st;
    char body[512];
    /* a huge bias on one token: greedy picks it every time */
    snprintf(body, sizeof body, "{\"prompt\":\"the\",\"max_tokens\":6,\"temperature\":0,\"logit_bias\":{\"%d\":100}}",
             eos == 7 ? 8 : 7);
    json_t *j = post_json(g_main.port, "/v1/completions", body, &st);
    CHECK(st == 200);
    json_t *gj = post_json(g_main.port, "/generate", body, &st);
    json_t *toks = json_object_get(gj, "tokens");
    int all = st == 200 && json_array_size(toks) == 6;
    for (size_t i = 0; all && i < 6; i++) all = json_integer_value(json_object_get(json_array_get(toks, i), "id")) == (eos == 7 ? 8 : 7);
    CHECK_MSG(all, "logit_bias +100 did not pick the token every time");
    json_decref(gj);
    json_decref(j);
    /* eos made the certain choice: min_tokens 5 gives 5 other tokens, then eos */
    snprintf(body, sizeof body,
             "{\"prompt\":\"the\",\"max_tokens\":20,\"seed\":3,\"min_tokens\":5,\"logit_bias\":{\"%d\":100}}", eos);
    gj = post_json(g_main.port, "/generate", body, &st);
    toks = json_object_get(gj, "tokens");
    CHECK_MSG(st == 200 && json_array_size(toks) == 6 &&
                  json_integer_value(json_object_get(json_array_get(toks, 5), "id")) == eos &&
                  !strcmp(json_string_value(json_object_get(gj, "finish_reason")), "eos"),
              "min_tokens 5: %zu tokens", json_array_size(toks));
    json_decref(gj);
    snprintf(body, sizeof body,
             "{\"prompt\":\"the\",\"max_tokens\":12,\"seed\":3,\"ignore_eos\":true,\"logit_bias\":{\"%d\":100}}", eos);
    gj = post_json(g_main.port, "/v1/completions", body, &st);
    CHECK(st == 200 && json_integer_value(json_object_get(json_object_get(gj, "usage"), "completion_tokens")) == 12);
    json_decref(gj);
    /* penalties: the server's tokens are the sampler's with the same fields */
    gj = post_json(g_main.port, "/generate",
                   "{\"prompt\":\"the model\",\"max_tokens\":16,\"seed\":9,\"presence_penalty\":1.5,"
                   "\"frequency_penalty\":0.8}",
                   &st);
    toks = json_object_get(gj, "tokens");
    {
        const tok_t *t = model_tok(g_m);
        int32_t *ids;
        size_t n;
        tok_encode(t, "the model", 9, &ids, &n);
        int32_t hist[64];
        hist[0] = eos;
        memcpy(hist + 1, ids, n * sizeof *ids);
        free(ids);
        int nh = (int)n + 1, fed = 0, V = model_hparams(g_m)->n_vocab, same = 1, k = 0;
        sampler_params sp;
        sampler_params_default(&sp);
        sp.seed = 9;
        sp.presence_penalty = 1.5f;
        sp.frequency_penalty = 0.8f;
        sp.eos_id = eos;
        sp.n_prompt = nh;
        sampler smp;
        sampler_init(&smp, &sp);
        model_cache *c = model_cache_create(g_m, 1);
        float *lg = malloc(sizeof(float) * (size_t)V);
        for (; k < 16 && same; k++) {
            model_seq q = {0, nh - fed, hist + fed, 0};
            if (model_step(g_m, c, 1, &q, lg)) break;
            fed = nh;
            int id = sampler_sample(&smp, lg, V, hist, nh, NULL);
            same = k < (int)json_array_size(toks) &&
                   json_integer_value(json_object_get(json_array_get(toks, (size_t)k), "id")) == id;
            hist[nh++] = id;
            if (id == eos) break;
        }
        CHECK_MSG(st == 200 && same, "penalties: token %d differs from the in-process sampler", k);
        free(lg);
        model_cache_free(c);
        sampler_free(&smp);
    }
    json_decref(gj);
    /* not implemented, or out of range: 400 naming the field */
    static const struct { const char *route, *body, *field; } bad[] = {
        {"/v1/completions", "{\"prompt\":\"a\",\"suffix\":\"b\"}", "suffix"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logit_bias\":{\"x\":1}}", "logit_bias"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logit_bias\":{\"1\":101}}", "logit_bias"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logit_bias\":{\"99999\":1}}", "logit_bias"},
        {"/v1/completions", "{\"prompt\":\"a\",\"presence_penalty\":3}", "presence_penalty"},
        {"/generate", "{\"prompt\":\"a\",\"frequency_penalty\":\"x\"}", "frequency_penalty"},
        {"/generate", "{\"prompt\":\"a\",\"max_tokens\":4,\"min_tokens\":5}", "min_tokens"},
        {"/generate", "{\"prompt\":\"a\",\"ignore_eos\":1}", "ignore_eos"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logit_bias\":{\"07\":1}}", "logit_bias"},
        {"/v1/completions", "{\"prompt\":\"a\",\"model\":3}", "model"},
        {"/v1/completions", "{\"prompt\":\"a\",\"user\":[]}", "user"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream_options\":{}}", "stream_options"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"x\":1}}", "stream_options"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
         "stream_options"},
        {"/generate", "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{}}", "stream_options"},
        {"/generate", "{\"prompt\":\"a\",\"model\":\"synth\"}", "model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = post_json(g_main.port, bad[i].route, bad[i].body, &st);
        const char *m = err_msg(&(resp){.json = j});
        CHECK_MSG(st == 400 && m && !strncmp(m, bad[i].field, strlen(bad[i].field)), "%s %s: %d '%s'", bad[i].route,
                  bad[i].body, st, m ? m : "");
        json_decref(j);
    }
}

/* One lm-evaluation-harness log-likelihood request as local-completions
 * sends and parses it: {model, prompt: [[ids]] or a string, temperature 0,
 * max_tokens 1, logprobs 1, seed 1234, echo}; the sum of
 * token_logprobs[ctxlen:-1], and is_greedy: every one of those equal to
 * the largest value of its top_logprobs. Checks that the echo lists the
 * tokens sent, one for one (plus the generated one), with text offsets
 * that spell the echoed text. Returns the sum, NAN on any failure; lp_out
 * (if not NULL) receives the array of token log-probs (a new reference). */
static double lm_eval_request(json_t *prompt, int ctxlen, size_t n_inp, int *is_greedy, json_t **lp_out)
{
    int st;
    json_t *j = post_obj(g_main.port, "/v1/completions",
                         json_pack("{s:s,s:O,s:i,s:i,s:i,s:i,s:b}", "model", "synth", "prompt", prompt, "temperature",
                                   0, "max_tokens", 1, "logprobs", 1, "seed", 1234, "echo", 1),
                         &st);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *lp = json_object_get(ch, "logprobs");
    json_t *tl = json_object_get(lp, "token_logprobs"), *tt = json_object_get(lp, "tokens"),
           *off = json_object_get(lp, "text_offset"), *top = json_object_get(lp, "top_logprobs");
    const char *text = json_string_value(json_object_get(ch, "text"));
    double sum = NAN;
    int ok = st == 200 && text && json_array_size(tl) == n_inp + 1 && json_array_size(tt) == n_inp + 1 &&
             json_array_size(off) == n_inp + 1;
    CHECK_MSG(ok, "%d, %zu log-probs for %zu tokens + 1", st, json_array_size(tl), n_inp);
    /* each token's text stands at its offset in the echoed text */
    for (size_t i = 0; ok && i < n_inp + 1; i++) {
        const char *piece = json_string_value(json_array_get(tt, i));
        size_t at = (size_t)json_integer_value(json_array_get(off, i));
        ok = piece && at + strlen(piece) <= strlen(text) && !strncmp(text + at, piece, strlen(piece));
        CHECK_MSG(ok, "token %zu '%s' is not at its text_offset %zu", i, piece ? piece : "", at);
    }
    if (ok) {
        sum = 0;
        int greedy = 1;
        for (size_t i = (size_t)ctxlen; i < n_inp; i++) {
            double x = json_real_value(json_array_get(tl, i)), best = -INFINITY;
            const char *key;
            json_t *val;
            json_object_foreach(json_array_get(top, i), key, val) {
                if (json_real_value(val) > best) best = json_real_value(val);
            }
            sum += x;
            greedy &= x == best;
        }
        if (is_greedy) *is_greedy = greedy;
        if (lp_out) *lp_out = json_incref(tl);
    }
    json_decref(j);
    return sum;
}

/* OpenAI's stream_options.include_usage: the last chunk before [DONE]
 * has no choices and the usage; the finishing chunk before it has usage
 * null. Without it the usage rides on the finishing chunk. */
TEST(test_openai_stream_usage)
{
    for (int inc = 0; inc < 2; inc++) {
        resp r;
        char body[200];
        snprintf(body, sizeof body, "{\"prompt\":\"the model\",\"max_tokens\":5,\"seed\":3,\"stream\":true%s}",
                 inc ? ",\"stream_options\":{\"include_usage\":true}" : "");
        CHECK(http(g_main.port, "POST", "/v1/completions", NULL, body, &r) == 0 && r.status == 200);
        json_t *ev[32];
        int done, n = sse_parse(r.body, ev, 32, &done);
        CHECK(done && n >= 3);
        json_t *last = n ? ev[n - 1] : NULL, *fin = inc && n > 1 ? ev[n - 2] : last;
        json_t *u = json_object_get(last, "usage");
        CHECK_MSG(json_integer_value(json_object_get(u, "completion_tokens")) >= 1 &&
                      json_integer_value(json_object_get(u, "prompt_tokens")) >= 1,
                  "include_usage %d: no usage in the last chunk", inc);
        CHECK(json_is_string(json_object_get(json_array_get(json_object_get(fin, "choices"), 0), "finish_reason")));
        if (inc) {
            CHECK(json_is_array(json_object_get(last, "choices")) && json_array_size(json_object_get(last, "choices")) == 0);
            CHECK(json_is_null(json_object_get(fin, "usage")));
        }
        for (int i = 0; i < n; i++) json_decref(ev[i]);
        resp_free(&r);
    }
}

/* lm-evaluation-harness's local-completions loglikelihood, as it sends and
 * parses it: prompt [[context + continuation ids]], max_tokens 1, echo,
 * logprobs 1, temperature 0; the sum of token_logprobs[ctxlen:-1] is
 * eval_continuation's log-likelihood and lm-eval's is_greedy (each
 * token's log-prob the largest of its top_logprobs) is
 * eval_continuation's. */
TEST(test_lm_eval_loglikelihood)
{
    static const char *const pairs[][2] = {{"the model", " learns attention"}, {"random synthesizer", " the"},
                                           {"a token of text", " window score stream"}};
    for (int c = 0; c < 3; c++) {
        const tok_t *t = model_tok(g_m);
        int32_t *ci, *ki;
        size_t nc, nk;
        tok_encode(t, pairs[c][0], strlen(pairs[c][0]), &ci, &nc);
        tok_encode(t, pairs[c][1], strlen(pairs[c][1]), &ki, &nk);
        json_t *ids = json_array();
        for (size_t i = 0; i < nc; i++) json_array_append_new(ids, json_integer(ci[i]));
        for (size_t i = 0; i < nk; i++) json_array_append_new(ids, json_integer(ki[i]));
        free(ci);
        free(ki);
        json_t *batch = json_pack("[o]", ids);
        int greedy = -1;
        double sum = lm_eval_request(batch, (int)nc, nc + nk, &greedy, NULL);
        json_decref(batch);
        double ref = 0;
        int ref_greedy = 0, n_cont = 0;
        CHECK(eval_continuation(g_m, pairs[c][0], strlen(pairs[c][0]), pairs[c][1], strlen(pairs[c][1]), 0, &ref,
                                &ref_greedy, &n_cont) == 0);
        CHECK_MSG(fabs(sum - ref) < 1e-4 && n_cont == (int)nk, "case %d: lm-eval's sum %.6f, eval_continuation %.6f",
                  c, sum, ref);
        CHECK_MSG(greedy == (ref_greedy != 0), "case %d: is_greedy %d, eval_continuation %d", c, greedy, ref_greedy);
    }
    /* lm-eval's batch_size > 1: several tokenized prompts, one choice each */
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions", "{\"prompt\":[[1,2],[3]],\"max_tokens\":1}", &st);
    CHECK(st == 200 && json_array_size(json_object_get(j, "choices")) == 2);
    json_decref(j);
}

/* OpenAI batches: several prompts (strings or token-id lists) and n > 1
 * choices per prompt in one request, each choice what the same prompt
 * gives alone with seed + its choice number, at index prompt * n + choice,
 * usage summed; log-probs per choice as alone; a client that leaves
 * cancels every choice; the forms that cannot be served are 400s. */
static json_t *one_completion(const char *prompt_json, int seed, const char *extra)
{
    char b[512];
    snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":8,\"seed\":%d%s}", prompt_json, seed, extra);
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions", b, &st);
    if (st != 200) {
        json_decref(j);
        return NULL;
    }
    return j;
}

TEST(test_openai_batch)
{
    static const char *const prompts[2] = {"\"the model\"", "\"a token of\""};
    static const char *const extras[2] = {"", ",\"logprobs\":2,\"echo\":true"};
    for (int e = 0; e < 2; e++) {
        char b[512];
        snprintf(b, sizeof b, "{\"prompt\":[%s,%s],\"n\":3,\"best_of\":3,\"max_tokens\":8,\"seed\":5%s}", prompts[0],
                 prompts[1], extras[e]);
        int st;
        json_t *j = post_json(g_main.port, "/v1/completions", b, &st);
        json_t *ch = json_object_get(j, "choices");
        CHECK_MSG(st == 200 && json_array_size(ch) == 6, "batch: %d, %zu choices", st, json_array_size(ch));
        long pt = 0, ct = 0;
        for (int i = 0; i < 6 && json_array_size(ch) == 6; i++) {
            json_t *alone = one_completion(prompts[i / 3], 5 + i % 3, extras[e]);
            json_t *a = json_array_get(json_object_get(alone, "choices"), 0), *c = json_array_get(ch, (size_t)i);
            CHECK_MSG(alone && json_integer_value(json_object_get(c, "index")) == i &&
                          json_equal(json_object_get(a, "text"), json_object_get(c, "text")) &&
                          json_equal(json_object_get(a, "logprobs"), json_object_get(c, "logprobs")) &&
                          json_equal(json_object_get(a, "finish_reason"), json_object_get(c, "finish_reason")),
                      "extras %d, choice %d differs from the prompt alone with its seed", e, i);
            json_t *u = json_object_get(alone, "usage");
            if (i % 3 == 0) pt += (long)json_integer_value(json_object_get(u, "prompt_tokens"));
            ct += (long)json_integer_value(json_object_get(u, "completion_tokens"));
            json_decref(alone);
        }
        json_t *u = json_object_get(j, "usage");
        CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == pt &&
              json_integer_value(json_object_get(u, "completion_tokens")) == ct);
        json_decref(j);
    }
    /* token-id prompts in a batch: what each gives alone */
    json_t *j = one_completion("[[5,6,7],[8,9]]", 2, "");
    json_t *a0 = one_completion("[5,6,7]", 2, ""), *a1 = one_completion("[8,9]", 2, "");
    json_t *ch = json_object_get(j, "choices");
    CHECK(j && a0 && a1 && json_array_size(ch) == 2 &&
          json_equal(json_object_get(json_array_get(ch, 0), "text"),
                     json_object_get(json_array_get(json_object_get(a0, "choices"), 0), "text")) &&
          json_equal(json_object_get(json_array_get(ch, 1), "text"),
                     json_object_get(json_array_get(json_object_get(a1, "choices"), 0), "text")));
    json_decref(j);
    json_decref(a0);
    json_decref(a1);
    /* best_of 4, n 2: the two candidates (seeds 5..8) with the highest
     * mean token log-prob, best first; usage counts all four */
    {
        json_t *cands[4];
        double mean[4];
        long all_tokens = 0;
        for (int c = 0; c < 4; c++) {
            cands[c] = one_completion("\"the model\"", 5 + c, ",\"logprobs\":0");
            json_t *tl = json_object_get(json_object_get(json_array_get(json_object_get(cands[c], "choices"), 0),
                                                         "logprobs"), "token_logprobs");
            double sum = 0;
            for (size_t i = 0; i < json_array_size(tl); i++) sum += json_real_value(json_array_get(tl, i));
            mean[c] = json_array_size(tl) ? sum / (double)json_array_size(tl) : -INFINITY;
            all_tokens += (long)json_array_size(tl);
        }
        int best = 0, second = -1;
        for (int c = 1; c < 4; c++)
            if (mean[c] > mean[best]) best = c;
        for (int c = 0; c < 4; c++)
            if (c != best && (second < 0 || mean[c] > mean[second])) second = c;
        json_t *bj = one_completion("\"the model\"", 5, ",\"n\":2,\"best_of\":4,\"logprobs\":0");
        json_t *bch = json_object_get(bj, "choices");
        CHECK_MSG(bj && json_array_size(bch) == 2 &&
                      json_equal(json_object_get(json_array_get(bch, 0), "text"),
                                 json_object_get(json_array_get(json_object_get(cands[best], "choices"), 0), "text")) &&
                      json_equal(json_object_get(json_array_get(bch, 1), "text"),
                                 json_object_get(json_array_get(json_object_get(cands[second], "choices"), 0), "text")) &&
                      json_integer_value(json_object_get(json_object_get(bj, "usage"), "completion_tokens")) == all_tokens,
                  "best_of 4: not the two best candidates (%d, %d)", best, second);
        json_decref(bj);
        for (int c = 0; c < 4; c++) json_decref(cands[c]);
    }
    /* a client that leaves cancels every choice; the server goes on (16384
     * tokens each: with 1000 the 4 choices could finish, at 15k tokens/s,
     * before the client left) */
    double before = metric(g_main.port, "synth_requests_cancelled_total");
    int fd = http_send(g_main.port, "POST", "/v1/completions", NULL,
                       "{\"prompt\":[\"the\",\"a\"],\"n\":2,\"max_tokens\":16384,\"temperature\":1}");
    CHECK(fd >= 0);
    usleep(200000);
    if (fd >= 0) close(fd);
    CHECK_MSG(wait_metric(g_main.port, "synth_requests_cancelled_total", before + 4, 1) >= before + 4,
              "the 4 choices of a request whose client left were not cancelled");
    int st;
    json_t *h = post_json(g_main.port, "/generate", "{\"prompt\":\"the\",\"max_tokens\":2}", &st);
    CHECK(st == 200);
    json_decref(h);
    /* what cannot be served */
    static const struct { const char *body, *field; } bad[] = {
        {"{\"prompt\":[\"a\",\"b\"],\"stream\":true}", "stream"},
        {"{\"prompt\":\"a\",\"n\":2,\"stream\":true}", "stream"},
        {"{\"prompt\":[\"a\",[1]]}", "prompt[1]"},
        {"{\"prompt\":\"a\",\"n\":3,\"best_of\":2}", "best_of"},
        {"{\"prompt\":\"a\",\"best_of\":2,\"stream\":true}", "stream"},
        {"{\"prompt\":\"a\",\"n\":17}", "n"},
        {"{\"prompt\":[[1],[]]}", "prompt[1]"},
        {"{\"prompt\":[\"a\",\"b\"],\"max_tokens\":1,\"logit_bias\":{\"99999\":1}}", "prompt[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = post_json(g_main.port, "/v1/completions", bad[i].body, &st);
        const char *m = err_msg(&(resp){.json = j});
        CHECK_MSG(st == 400 && m && !strncmp(m, bad[i].field, strlen(bad[i].field)), "%s: %d '%s'", bad[i].body, st,
                  m ? m : "");
        json_decref(j);
    }
    char many[1024] = "{\"prompt\":[";
    for (int i = 0; i < 65; i++) strcat(many, i ? ",\"a\"" : "\"a\"");
    strcat(many, "]}");
    j = post_json(g_main.port, "/v1/completions", many, &st);
    CHECK(st == 400 && !strncmp(err_msg(&(resp){.json = j}), "prompt", 6));
    json_decref(j);
}

/* OpenAI echo + logprobs on a prompt longer than the context: scored with
 * /score's sliding windows, so its token log-probs are eval_text's (synth
 * score's) bits; tokens to generate continue from the prompt's last
 * model_context_keep tokens, as the in-process reference does. */
TEST(test_echo_long_prompt)
{
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return;
    eval_result ref;
    float *ref_lp = NULL;
    int32_t *ref_ids = NULL;
    CHECK(eval_text(g_m, text, tl, 4, &ref, &ref_ids, &ref_lp, NULL, NULL) == 0);
    CHECK(ref.n_tokens > model_hparams(g_m)->n_ctx);
    json_t *req = json_pack("{s:s,s:i,s:b,s:i}", "prompt", text, "max_tokens", 0, "echo", 1, "logprobs", 1);
    char *b = json_dumps(req, 0);
    int st;
    json_t *j = post_json(g_main.port, "/v1/completions", b, &st);
    free(b);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    json_t *lp = json_object_get(json_object_get(c, "logprobs"), "token_logprobs");
    CHECK_MSG(st == 200 && (int64_t)json_array_size(lp) == ref.n_tokens, "%d, %zu log-probs for %lld tokens", st,
              json_array_size(lp), (long long)ref.n_tokens);
    int bad = 0;
    for (int64_t i = 0; i < ref.n_tokens && i < (int64_t)json_array_size(lp); i++)
        bad += (float)json_real_value(json_array_get(lp, (size_t)i)) != ref_lp[i];
    CHECK_MSG(bad == 0, "%d of %lld echo log-probs differ from eval_text's", bad, (long long)ref.n_tokens);
    CHECK(json_string_value(json_object_get(c, "text")) && strlen(json_string_value(json_object_get(c, "text"))) == tl);
    json_decref(j);
    /* with tokens to generate (lm-eval's log-likelihood asks one): the
     * same prompt log-probs, then tokens from the prompt's last half */
    json_object_set_new(req, "max_tokens", json_integer(4));
    json_object_set_new(req, "seed", json_integer(7));
    b = json_dumps(req, 0);
    j = post_json(g_main.port, "/v1/completions", b, &st);
    free(b);
    c = json_array_get(json_object_get(j, "choices"), 0);
    lp = json_object_get(json_object_get(c, "logprobs"), "token_logprobs");
    CHECK_MSG(st == 200 && (int64_t)json_array_size(lp) == ref.n_tokens + 4, "%d, %zu log-probs", st,
              json_array_size(lp));
    bad = 0;
    for (int64_t i = 0; i < ref.n_tokens && i < (int64_t)json_array_size(lp); i++)
        bad += (float)json_real_value(json_array_get(lp, (size_t)i)) != ref_lp[i];
    CHECK_MSG(bad == 0, "%d prompt log-probs differ with max_tokens 4", bad);
    {   /* the reference: a fresh cache fed the last model_context_keep tokens of [eos, text] */
        const int keep = model_context_keep(g_m), V = model_hparams(g_m)->n_vocab;
        int64_t np = ref.n_tokens + 1;
        int32_t *hist = malloc(sizeof(int32_t) * (size_t)(np + 4));
        hist[0] = tok_eos(model_tok(g_m));
        memcpy(hist + 1, ref_ids, sizeof(int32_t) * (size_t)ref.n_tokens);
        model_cache *mc = model_cache_create(g_m, 1);
        float *lg = malloc(sizeof(float) * (size_t)V);
        sampler_params sp;
        sampler_params_default(&sp);
        sp.seed = 7;
        sp.eos_id = hist[0];
        sp.n_prompt = (int)np;
        sampler smp;
        sampler_init(&smp, &sp);
        model_seq q = {0, keep, hist + np - keep, 0};
        int nh = (int)np;
        char *want = NULL;
        size_t wl = 0;
        for (int k = 0; k < 4; k++) {
            if (model_step(g_m, mc, 1, &q, lg)) break;
            int id = sampler_sample(&smp, lg, V, hist, nh, NULL);
            hist[nh++] = id;
            q = (model_seq){0, 1, hist + nh - 1, 0};
            if (id == hist[0]) break;
        }
        tok_decode(model_tok(g_m), hist + np, (size_t)(nh - np), 0, &want, &wl);
        const char *got = json_string_value(json_object_get(c, "text"));
        CHECK_MSG(got && strlen(got) == tl + wl && !memcmp(got + tl, want, wl), "the tokens after a long prompt differ");
        /* without echo and log-probs: the same tokens (the prompt read from
         * its last half, one context shift said); /generate: 400 */
        json_t *plain = json_pack("{s:s,s:i,s:i}", "prompt", text, "max_tokens", 4, "seed", 7);
        char *pb = json_dumps(plain, 0);
        json_t *pj = post_json(g_main.port, "/v1/completions", pb, &st);
        const char *pt = json_string_value(json_object_get(json_array_get(json_object_get(pj, "choices"), 0), "text"));
        CHECK_MSG(st == 200 && pt && strlen(pt) == wl && !memcmp(pt, want, wl) &&
                      json_integer_value(json_object_get(json_object_get(pj, "usage"), "context_shifts")) == 1,
                  "long prompt without echo: %d", st);
        json_decref(pj);
        pj = post_json(g_main.port, "/generate", pb, &st);
        CHECK(st == 400 && !strncmp(err_msg(&(resp){.json = pj}), "prompt:", 7));
        json_decref(pj);
        free(pb);
        json_decref(plain);
        free(want);
        sampler_free(&smp);
        free(lg);
        model_cache_free(mc);
        free(hist);
    }
    json_decref(j);
    json_decref(req);
    free(ref_lp);
    free(ref_ids);
}

/* lm-evaluation-harness's loglikelihood_rolling (perplexity tasks) with
 * max_length 256, as its TemplateAPI does it: the prefix token is
 * encode(tokenizer_info.eos_token)[0]; windows of get_rolling_token_windows
 * (max_seq_len = max_length - 2, context_len 1) made disjoint; each
 * request (context + continuation)[-(max_length - 1):] with ctxlen. The
 * first window starts with the end-of-text token, which must be echoed
 * (not dropped as the server's own), else every index is one off. Each
 * window's sum equals the in-process model_score of the sequence the
 * server runs (end-of-text, then the window without a second one). The
 * same first window as a string (tokenized_requests=False: lm-eval sends
 * /detokenize's text) gives the same numbers. */
TEST(test_lm_eval_rolling)
{
    enum { MAX_LENGTH = 256, API_MAX = MAX_LENGTH - 1, SEQ = API_MAX - 1 };
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return;
    if (tl > 2500) tl = 2500;
    /* the remote tokenizer, as RemoteTokenizer uses it */
    resp r;
    CHECK(http(g_main.port, "GET", "/tokenizer_info", NULL, NULL, &r) == 0 && r.status == 200);
    json_t *eos_tok = json_incref(json_object_get(r.json, "eos_token"));
    resp_free(&r);
    int st;
    json_t *j = post_obj(g_main.port, "/tokenize", json_pack("{s:O,s:b}", "prompt", eos_tok, "add_special_tokens", 0),
                         &st);
    json_decref(eos_tok);
    const int prefix = (int)json_integer_value(json_array_get(json_object_get(j, "tokens"), 0));
    CHECK(st == 200 && prefix == tok_eos(model_tok(g_m)));
    json_decref(j);
    j = post_obj(g_main.port, "/tokenize", json_pack("{s:s%,s:b}", "prompt", text, tl, "add_special_tokens", 0), &st);
    json_t *toks = json_object_get(j, "tokens");
    size_t n = json_array_size(toks);
    CHECK_MSG(st == 200 && n > 2 * SEQ, "%zu tokens: too few for three windows", n);
    int32_t *t = malloc((n + 1) * sizeof *t), *seq = malloc((MAX_LENGTH + 1) * sizeof *seq);
    float *ref = malloc((MAX_LENGTH + 1) * sizeof *ref);
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)json_integer_value(json_array_get(toks, i));
    json_decref(j);
    int windows = 0, bad = 0;
    double total = 0, total_ref = 0;
    size_t predicted = 0;
    while (predicted < n) {
        /* get_rolling_token_windows + make_disjoint_window */
        int32_t ctx[API_MAX + 1];
        size_t nctx, c0, nk;
        if (predicted == 0) {
            nk = n < SEQ ? n : SEQ;
            ctx[0] = prefix;
            nctx = 1; /* [prefix] + t[:nk-1], of which the first len - (nk - 1) */
            c0 = 0;
        } else {
            nk = n - predicted < SEQ ? n - predicted : SEQ;
            size_t end = predicted + nk;
            /* input t[end - SEQ - 1, end - 1), its first SEQ - (nk - 1) */
            nctx = SEQ - (nk - 1);
            for (size_t i = 0; i < nctx; i++) ctx[i] = t[end - SEQ - 1 + i];
            c0 = predicted;
        }
        predicted += nk;
        /* _loglikelihood_tokens: (ctx + cont)[-API_MAX:], ctxlen */
        size_t all = nctx + nk, cut = all > API_MAX ? all - API_MAX : 0, n_inp = all - cut;
        int ctxlen = (int)nctx - (int)cut;
        CHECK(ctxlen > 0);
        int32_t inp[API_MAX + 1];
        for (size_t i = 0; i < n_inp; i++) inp[i] = i + cut < nctx ? ctx[i + cut] : t[c0 + i + cut - nctx];
        json_t *ids = json_array();
        for (size_t i = 0; i < n_inp; i++) json_array_append_new(ids, json_integer(inp[i]));
        json_t *lps = NULL, *batch = json_pack("[O]", ids);
        double sum = lm_eval_request(batch, ctxlen, n_inp, NULL, &lps);
        json_decref(batch);
        /* the reference: the sequence the server runs */
        int lead = inp[0] != prefix, ns = (int)n_inp + lead;
        seq[0] = prefix;
        memcpy(seq + lead, inp, n_inp * sizeof *inp);
        const int32_t *tp = seq, *gp = seq + 1;
        int nt = ns - 1;
        CHECK(model_score(g_m, 1, &tp, &gp, &nt, ref, NULL) == 0);
        double sref = 0;
        for (int i = ctxlen; i < (int)n_inp; i++) {
            double want = ref[i - 1 + lead];
            sref += want;
            double got = json_real_value(json_array_get(lps, (size_t)i));
            bad += !(fabs(got - want) < 1e-5);
        }
        CHECK_MSG(fabs(sum - sref) < 1e-5 * (double)n_inp, "window %d: lm-eval's sum %.6f, model_score %.6f", windows,
                  sum, sref);
        if (windows == 0) {
            /* tokenized_requests=False: the string /detokenize gives */
            json_t *d = post_obj(g_main.port, "/detokenize", json_pack("{s:O}", "tokens", ids), &st);
            const char *str = json_string_value(json_object_get(d, "prompt"));
            CHECK(st == 200 && str && !strncmp(str, "<|endoftext|>", 13));
            json_t *back = NULL, *sp = str ? json_string(str) : NULL;
            double ssum = sp ? lm_eval_request(sp, ctxlen, n_inp, NULL, &back) : NAN;
            json_decref(sp);
            CHECK_MSG(ssum == sum && json_equal(back, lps), "string prompt: %.6f, ids %.6f", ssum, sum);
            json_decref(back);
            json_decref(d);
        }
        json_decref(lps);
        json_decref(ids);
        total += sum;
        total_ref += sref;
        windows++;
    }
    CHECK_MSG(bad == 0, "%d token log-probs differ from model_score by 1e-5 or more", bad);
    CHECK(windows >= 3);
    printf("  %d windows over %zu tokens: lm-eval's log-likelihood %.4f, model_score %.4f\n", windows, n, total,
           total_ref);
    free(t);
    free(seq);
    free(ref);
}

/* The bad-input table, status by status. */
/* The scheduler puts /score windows and generation in the same steps: with
 * a small step budget a long /score takes hundreds of steps, and a stream
 * started before it must finish first (decode rows run every step) with
 * the tokens it gets alone; the /score numbers must be eval_text's bits
 * (windows cut into chunks change nothing). */
TEST(test_score_interleaves_generation)
{
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return;
    server sv;
    const char *extra[] = {"--step-tokens", "24", NULL};
    CHECK(server_start(&sv, "step24", NULL, extra, NULL) == 0);
    if (!sv.pid) return;
    const int max_tokens = 24;
    int fd = http_send(sv.port, "POST", "/generate", NULL,
                       "{\"prompt\":\"the model\",\"max_tokens\":24,\"seed\":9,\"stream\":true}");
    CHECK(fd >= 0);
    /* wait until the stream has a first token: it is decoding */
    char head[65536];
    size_t hn = 0;
    while (hn < sizeof head - 1 && !memmem(head, hn, "data:", 5)) {
        ssize_t k = recv(fd, head + hn, sizeof head - 1 - hn, 0);
        if (k <= 0) break;
        hn += (size_t)k;
    }
    CHECK(memmem(head, hn, "data:", 5) != NULL);
    json_t *body = json_pack("{s:s,s:b}", "text", text, "token_logprobs", 1);
    char *b = json_dumps(body, 0);
    int sfd = http_send(sv.port, "POST", "/score", NULL, b);
    free(b);
    json_decref(body);
    CHECK(sfd >= 0);
    size_t rn = 0;
    char *rest = read_all(fd, &rn);
    close(fd);
    /* the stream is complete; the long /score must still be running */
    struct pollfd pf = {sfd, POLLIN, 0};
    int score_ready = poll(&pf, 1, 0);
    CHECK_MSG(score_ready == 0, "/score answered before the stream that shares its steps finished");
    char *raw = malloc(hn + rn + 1);
    memcpy(raw, head, hn);
    if (rn) memcpy(raw + hn, rest, rn);
    raw[hn + rn] = 0;
    free(rest);
    resp r;
    CHECK(parse_resp(raw, hn + rn, &r) == 0);
    json_t *ev[64];
    int done, n = sse_parse(r.body, ev, 64, &done);
    int32_t ref[64];
    int nref = reference_generate(g_m, "the model", max_tokens, 1.0f, 9, ref);
    CHECK_MSG(n == nref + 1, "%d events for %d tokens", n, nref);
    int diff = 0;
    for (int i = 0; i < n - 1 && i < nref; i++)
        diff += json_integer_value(json_object_get(json_object_get(ev[i], "token"), "id")) != ref[i];
    CHECK_MSG(diff == 0, "%d streamed tokens differ from the reference", diff);
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    resp_free(&r);
    /* the score: eval_text's numbers, bit for bit */
    resp sr;
    CHECK(http_recv(sfd, &sr) == 0);
    CHECK(sr.status == 200);
    eval_result ref_r;
    float *ref_lp = NULL;
    int32_t *ref_ids = NULL;
    CHECK(eval_text(g_m, text, tl, 4, &ref_r, &ref_ids, &ref_lp, NULL, NULL) == 0);
    json_t *j = sr.json;
    CHECK(json_integer_value(json_object_get(j, "tokens")) == ref_r.n_tokens);
    /* the server prints 12 significant digits (SRV_JSON_FLAGS) */
    char want[64];
    snprintf(want, sizeof want, "%.12g", ref_r.nll);
    CHECK_MSG(json_real_value(json_object_get(j, "nll")) == strtod(want, NULL), "nll %.17g vs eval_text %s",
              json_real_value(json_object_get(j, "nll")), want);
    json_t *arr = json_object_get(j, "token_logprobs");
    int bad = 0;
    for (int64_t i = 0; i < ref_r.n_tokens; i++) {
        json_t *e = json_array_get(arr, (size_t)i);
        bad += !e || (float)json_real_value(json_object_get(e, "logprob")) != ref_lp[i];
    }
    CHECK_MSG(bad == 0, "%d of %lld token log-probs differ from eval_text's", bad, (long long)ref_r.n_tokens);
    free(ref_lp);
    free(ref_ids);
    resp_free(&sr);
    /* a prompt of several step budgets, fed in chunks: the same prompt
     * log-probs and tokens as the default server's one-chunk prefill */
    int n_ctx = model_hparams(g_m)->n_ctx;
    char prompt[512];
    size_t pl = tl < sizeof prompt / 2 ? tl : sizeof prompt / 2;
    memcpy(prompt, text, pl);
    prompt[pl] = 0;
    int32_t *pt = NULL;
    size_t npt = 0;
    CHECK(tok_encode(model_tok(g_m), prompt, pl, &pt, &npt) == 0);
    CHECK_MSG(npt > 3 * 24 && (int)npt + 8 < n_ctx, "prompt of %zu tokens (context %d)", npt, n_ctx);
    free(pt);
    json_t *req = json_pack("{s:s,s:i,s:b,s:i,s:i}", "prompt", prompt, "max_tokens", 6, "echo", 1, "logprobs", 2,
                            "seed", 4);
    char *rb = json_dumps(req, 0);
    int st1, st2;
    json_t *chunked = post_json(sv.port, "/v1/completions", rb, &st1);
    json_t *whole = post_json(g_main.port, "/v1/completions", rb, &st2);
    CHECK(st1 == 200 && st2 == 200);
    json_t *c1 = json_array_get(json_object_get(chunked, "choices"), 0);
    json_t *c2 = json_array_get(json_object_get(whole, "choices"), 0);
    CHECK(c1 && c2 && json_equal(json_object_get(c1, "logprobs"), json_object_get(c2, "logprobs")));
    CHECK(c1 && c2 && json_equal(json_object_get(c1, "text"), json_object_get(c2, "text")));
    free(rb);
    json_decref(req);
    json_decref(chunked);
    json_decref(whole);
    CHECK(server_stop(&sv) == 0);
}

TEST(test_bad_input)
{
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *field;   /* the message must start with it */
    } cases[] = {
        {"POST", "/generate", "{", 400, "body"},
        {"POST", "/generate", "[1,2]", 400, "body"},
        {"POST", "/generate", "", 400, "body"},
        {"POST", "/generate", "{\"max_tokens\":5}", 400, "prompt"},
        {"POST", "/generate", "{\"prompt\":5}", 400, "prompt"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokens\":\"5\"}", 400, "max_tokens"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokens\":0}", 400, "max_tokens"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokens\":-3}", 400, "max_tokens"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokens\":2.5}", 400, "max_tokens"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokens\":100000}", 400, "max_tokens"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"temperature\":-1}", 400, "temperature"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"temperature\":\"hot\"}", 400, "temperature"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"top_p\":0}", 400, "top_p"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"top_p\":1.5}", 400, "top_p"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"top_k\":-1}", 400, "top_k"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"min_p\":2}", 400, "min_p"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"repetition_penalty\":0}", 400, "repetition_penalty"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"seed\":-1}", 400, "seed"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"stop\":[1]}", 400, "stop[0]"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"stop\":[\"\"]}", 400, "stop[0]"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"stream\":1}", 400, "stream"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"logprobs\":\"yes\"}", 400, "logprobs"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"max_tokenz\":5}", 400, "max_tokenz"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"prompt\":\"b\"}", 400, "body"},
        {"POST", "/generate", "{\"prompt\":\"a\",\"timeout_ms\":0}", 400, "timeout_ms"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"n\":0}", 400, "n"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"logprobs\":9}", 400, "logprobs"},
        {"POST", "/v1/completions", "{\"prompt\":[1,99999]}", 400, "prompt[1]"},
        {"POST", "/v1/completions", "{}", 400, "prompt"},
        {"POST", "/score", "{}", 400, "text"},
        {"POST", "/score", "{\"text\":\"\"}", 400, "text"},
        {"POST", "/score", "{\"text\":\"a\",\"texts\":[\"b\"]}", 400, "text"},
        {"POST", "/score", "{\"texts\":[\"a\",3]}", 400, "texts[1]"},
        {"POST", "/score", "{\"texts\":[]}", 400, "texts"},
        {"POST", "/score", "{\"context\":\"a\"}", 400, "continuation"},
        {"POST", "/score", "{\"text\":\"a\",\"token_logprobs\":\"y\"}", 400, "token_logprobs"},
        {"POST", "/tokenize", "{\"text\":1}", 400, "text"},
        {"POST", "/tokenize", "{\"txt\":\"a\"}", 400, "txt"},
        {"POST", "/detokenize", "{\"tokens\":[1,-2]}", 400, "tokens[1]"},
        {"POST", "/detokenize", "{\"tokens\":[1,1000000]}", 400, "tokens[1]"},
        {"POST", "/detokenize", "{\"tokens\":\"1 2\"}", 400, "tokens"},
        {"GET", "/nope", NULL, 404, NULL},
        {"POST", "/generate/x", "{}", 404, NULL},
        {"GET", "/generate", NULL, 405, NULL},
        {"DELETE", "/score", NULL, 405, NULL},
        {"POST", "/health", "{}", 405, NULL},
        {"PUT", "/metrics", NULL, 405, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        int rc = http(g_main.port, cases[i].method, cases[i].path, NULL, cases[i].body, &r);
        CHECK_MSG(rc == 0 && r.status == cases[i].status, "%s %s %s: status %d, want %d", cases[i].method,
                  cases[i].path, cases[i].body ? cases[i].body : "", r.status, cases[i].status);
        CHECK_MSG(err_type(&r) != NULL, "%s %s: no {error:{type}} in '%s'", cases[i].method, cases[i].path,
                  r.body ? r.body : "");
        if (cases[i].field)
            CHECK_MSG(!strncmp(err_msg(&r), cases[i].field, strlen(cases[i].field)) &&
                          err_msg(&r)[strlen(cases[i].field)] == ':',
                      "%s: message '%s' does not name %s", cases[i].body, err_msg(&r), cases[i].field);
        resp_free(&r);
    }
    /* prompt + max_tokens beyond the context: 400, unless truncation is asked */
    char *text = make_text(5000, 3);
    json_t *req = json_pack("{s:s,s:i}", "prompt", text, "max_tokens", 10);
    char *b = json_dumps(req, 0);
    int st;
    json_t *j = post_json(g_main.port, "/generate", b, &st);
    CHECK(st == 400 && !strncmp(err_msg(&(resp){.json = j}), "prompt:", 7));
    json_decref(j);
    free(b);
    json_object_set_new(req, "truncate", json_true());
    b = json_dumps(req, 0);
    j = post_json(g_main.port, "/generate", b, &st);
    CHECK(st == 200);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) ==
          model_hparams(g_m)->n_ctx - 10);
    json_decref(j);
    free(b);
    json_decref(req);
    free(text);
    /* exactly the context: eos + max_tokens - 1 fed tokens == n_ctx */
    int L = model_hparams(g_m)->n_ctx;
    char big[160];
    snprintf(big, sizeof big, "{\"prompt\":\"\",\"max_tokens\":%d,\"temperature\":0}", L);
    j = post_json(g_main.port, "/generate", big, &st);
    CHECK_MSG(st == 200, "full context: %d", st);
    json_decref(j);
    /* one token more than the context holds: the generation goes on from
     * the last half of the context, once (test_context_shift checks the
     * tokens) */
    snprintf(big, sizeof big, "{\"prompt\":\"\",\"max_tokens\":%d,\"temperature\":0}", L + 1);
    j = post_json(g_main.port, "/generate", big, &st);
    CHECK_MSG(st == 200, "past the context: %d", st);
    json_t *u = json_object_get(j, "usage");
    int n_out = (int)json_integer_value(json_object_get(u, "completion_tokens"));
    CHECK_MSG(json_integer_value(json_object_get(u, "context_shifts")) == (n_out == L + 1),
              "%d tokens, %d context shifts", n_out, (int)json_integer_value(json_object_get(u, "context_shifts")));
    json_decref(j);
    /* the server is still fine */
    resp r;
    CHECK(http(g_main.port, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
}

/* 40 concurrent requests with fixed seeds (8 with OpenAI's sampling fields)
 * return what each returns alone. */
TEST(test_concurrent_equals_alone)
{
    enum { N = 40 };
    static char bodies[N][320];
    json_t *alone[N];
    static const char *const prompts[] = {"the model", "a token", "random attention", "", "the server batch",
                                          "dense layer of keys", "text", "stream score window"};
    /* the last 8 with OpenAI's sampling fields (the sampler's general path) */
    static const char *const openai[] = {",\"presence_penalty\":1.2,\"frequency_penalty\":0.7",
                                         ",\"logit_bias\":{\"7\":3,\"12\":-2},\"min_tokens\":6",
                                         ",\"ignore_eos\":true,\"frequency_penalty\":-0.5",
                                         ",\"min_tokens\":4,\"presence_penalty\":0.4,\"logit_bias\":{\"3\":1.5}"};
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"prompt\":\"%s\",\"max_tokens\":%d,\"seed\":%d,\"temperature\":%s,\"top_k\":%d%s%s}",
                 prompts[i % 8], 8 + (i * 7) % 40, 1000 + i, i % 5 == 0 ? "0" : "0.9", i % 3 == 0 ? 0 : 40,
                 i % 4 == 0 ? ",\"repetition_penalty\":1.3" : "", i >= 32 ? openai[i % 4] : "");
        int st;
        alone[i] = post_json(g_main.port, "/generate", bodies[i], &st);
        CHECK(st == 200);
    }
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = http_send(g_main.port, "POST", "/generate", NULL, bodies[i]);
    int same = 0;
    for (int i = 0; i < N; i++) {
        resp r;
        CHECK(fds[i] >= 0 && http_recv(fds[i], &r) == 0);
        CHECK(r.status == 200);
        int eq = r.json && alone[i] && ids_equal(json_object_get(r.json, "tokens"), json_object_get(alone[i], "tokens"));
        CHECK_MSG(eq, "request %d differs batched vs alone", i);
        same += eq;
        resp_free(&r);
        json_decref(alone[i]);
    }
    double mx = metric(g_main.port, "synth_max_batch_size");
    printf("  %d/%d identical; largest batch seen %g\n", same, N, mx);
    CHECK(mx >= 2);
}

/* Every attention variant through the real server: the shipped model is
 * random, but `synth serve` serves any checkpoint, and the variants take
 * different engine paths (a key cache for vanilla and the mixtures, the
 * per-sequence dense/factorized synthesis, precomputed softmax(R)). For
 * each, a small model is written and served; /v1/models names the variant,
 * /score equals eval_text in-process, /generate equals a token-by-token
 * reference (model_step + sampler), and requests sent together (batched)
 * equal the same requests sent alone. */
static void check_variant_served(arch_variant v, const char *text, size_t tl)
{
    const char *vn = arch_variant_name(v);
    arch_hparams hp = test_shape(v, 128, 64, 8);   /* the text spans several 128-token windows */
    char path[400], name[64];
    snprintf(path, sizeof path, "%s/variant-%d.gguf", g_dir, (int)v);
    snprintf(name, sizeof name, "variant-%d", (int)v);
    char err[256];
    model *m = NULL;
    CHECK_MSG(write_model(path, &hp) == 0 && model_load(path, &m, err, sizeof err) == 0, "%s: fixture", vn);
    if (!m) return;
    server s;
    CHECK_MSG(server_start(&s, name, path, NULL, "SYNTH_LOG_LEVEL=warn") == 0, "%s: server start", vn);
    if (s.pid <= 0) {
        model_free(m);
        return;
    }
    resp r;
    CHECK(http(s.port, "GET", "/v1/models", NULL, NULL, &r) == 0);
    json_t *mi = r.json ? json_array_get(json_object_get(r.json, "data"), 0) : NULL;
    const char *got = mi ? json_string_value(json_object_get(mi, "variant")) : NULL;
    CHECK_MSG(got && !strcmp(got, vn), "%s: /v1/models says %s", vn, got ? got : "(none)");
    resp_free(&r);

    eval_result ref;
    CHECK(eval_text(m, text, tl, 4, &ref, NULL, NULL, NULL, NULL) == 0);
    CHECK(ref.n_tokens > hp.n_ctx);
    json_t *body = json_pack("{s:s%}", "text", text, tl);
    char *b = json_dumps(body, 0);
    int st;
    json_t *j = post_json(s.port, "/score", b, &st);
    free(b);
    json_decref(body);
    CHECK_MSG(st == 200, "%s: /score status %d", vn, st);
    CHECK(json_integer_value(json_object_get(j, "tokens")) == ref.n_tokens);
    double nll = json_real_value(json_object_get(j, "nll"));
    CHECK_MSG(fabs(nll - ref.nll) <= 1e-4 * (1 + fabs(ref.nll)), "%s: /score nll %.6f vs eval_text %.6f", vn, nll,
              ref.nll);
    json_decref(j);

    enum { N = 6 };
    static const char *const prompts[N] = {"the model", "a token", "", "dense layer of keys", "text", "stream"};
    char bodies[N][200];
    json_t *alone[N];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"prompt\":\"%s\",\"max_tokens\":%d,\"seed\":%d,\"temperature\":%s}",
                 prompts[i], 10 + 9 * i, 70 + i, i % 2 ? "0.8" : "0");
        alone[i] = post_json(s.port, "/generate", bodies[i], &st);
        CHECK(st == 200);
    }
    int32_t refg[80];
    int nref = reference_generate(m, "the model", 10, 0.0f, 70, refg);
    json_t *toks = alone[0] ? json_object_get(alone[0], "tokens") : NULL;
    int same = json_array_size(toks) == (size_t)nref;
    for (int i = 0; same && i < nref; i++)
        same = json_integer_value(json_object_get(json_array_get(toks, (size_t)i), "id")) == refg[i];
    CHECK_MSG(same, "%s: /generate differs from the model_step reference", vn);
    int fds[N], eq = 0;
    for (int i = 0; i < N; i++) fds[i] = http_send(s.port, "POST", "/generate", NULL, bodies[i]);
    for (int i = 0; i < N; i++) {
        CHECK(fds[i] >= 0 && http_recv(fds[i], &r) == 0);
        eq += r.status == 200 && r.json && alone[i] &&
              ids_equal(json_object_get(r.json, "tokens"), json_object_get(alone[i], "tokens"));
        resp_free(&r);
        json_decref(alone[i]);
    }
    CHECK_MSG(eq == N, "%s: %d of %d requests equal batched and alone", vn, eq, N);
    CHECK_MSG(server_stop(&s) == 0, "%s: server exit (log %s)", vn, s.log);
    model_free(m);
    printf("  %-18s served: score nll %.3f over %lld tokens, %d/%d batched == alone\n", vn, ref.nll,
           (long long)ref.n_tokens, eq, N);
}

TEST(test_every_variant_served)
{
    size_t tl;
    const char *text = fixture_text(&tl);
    if (!text) return;
    tl = tl < 4095 ? tl : 4095; /* a shorter text: eight servers score it */
    for (int v = 0; v < ARCH_N_VARIANTS; v++) check_variant_served((arch_variant)v, text, tl);
}

/* A client that leaves mid-generation frees its slot at once. */
TEST(test_disconnect_frees_slot)
{
    double c0 = metric(g_main.port, "synth_requests_cancelled_total");
    double g0 = metric(g_main.port, "synth_generated_tokens_total");
    /* streaming: read the first event, then hang up */
    int fd = http_send(g_main.port, "POST", "/generate", NULL,
                       "{\"prompt\":\"the\",\"max_tokens\":1000,\"temperature\":0,\"stream\":true}");
    CHECK(fd >= 0);
    char buf[512];
    ssize_t k = recv(fd, buf, sizeof buf, 0);
    CHECK(k > 0);
    close(fd);
    double c1 = wait_metric(g_main.port, "synth_requests_cancelled_total", c0 + 1, 1);
    CHECK_MSG(c1 == c0 + 1, "cancelled %g -> %g", c0, c1);
    CHECK(wait_metric(g_main.port, "synth_running_batch_size", 0, 0) == 0);
    double g1 = metric(g_main.port, "synth_generated_tokens_total");
    CHECK_MSG(g1 - g0 < 1000, "generated %g tokens for a client that left", g1 - g0);
    /* non-streaming: wait until it runs, then hang up */
    fd = http_send(g_main.port, "POST", "/generate", NULL, "{\"prompt\":\"the\",\"max_tokens\":1000,\"temperature\":0}");
    CHECK(fd >= 0);
    CHECK(wait_metric(g_main.port, "synth_running_batch_size", 1, 1) >= 1);
    close(fd);
    double c2 = wait_metric(g_main.port, "synth_requests_cancelled_total", c1 + 1, 1);
    CHECK_MSG(c2 == c1 + 1, "cancelled %g -> %g", c1, c2);
    CHECK(wait_metric(g_main.port, "synth_running_batch_size", 0, 0) == 0);
    double g2 = metric(g_main.port, "synth_generated_tokens_total");
    CHECK_MSG(g2 - g1 < 1000, "generated %g tokens for a client that left", g2 - g1);
    /* and the server still answers */
    int st;
    json_t *j = post_json(g_main.port, "/generate", "{\"prompt\":\"a\",\"max_tokens\":2}", &st);
    CHECK(st == 200);
    json_decref(j);
}

TEST(test_deadline)
{
    int st;
    json_t *j = post_json(g_main.port, "/generate", "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0,\"timeout_ms\":5}", &st);
    CHECK(st == 504);
    CHECK(j && !strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "timeout_error"));
    json_decref(j);
}

/* --request-timeout is the default deadline; the request's field wins. */
TEST(test_deadline_flag)
{
    server s;
    const char *const extra[] = {"--request-timeout", "1", NULL};
    CHECK(server_start(&s, "deadline", NULL, extra, "SYNTH_LOG_LEVEL=warn") == 0);
    if (!s.pid) return;
    int st;
    json_t *j = post_json(s.port, "/generate", "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}", &st);
    CHECK_MSG(st == 504, "flag deadline: %d", st);
    json_decref(j);
    j = post_json(s.port, "/generate", "{\"prompt\":\"a\",\"max_tokens\":3,\"timeout_ms\":60000}", &st);
    CHECK_MSG(st == 200, "field deadline: %d", st);
    json_decref(j);
    CHECK(server_stop(&s) == 0);
    /* SYNTH_LOG_LEVEL=warn: no access-log lines */
    FILE *f = fopen(s.log, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, "\"path\"") != NULL;
    if (f) fclose(f);
    CHECK(n == 0);
}

/* API key, body limit, queue limit, idle timeout: a second server. */
TEST(test_limits)
{
    server s;
    const char *const extra[] = {"--max-body", "4096", "--max-batch", "1", "--max-queue", "1", "--idle-timeout", "1",
                                 NULL};
    CHECK(server_start(&s, "limits", NULL, extra, "SYNTH_API_KEY=s3cret-key") == 0);
    if (!s.pid) return;
    resp r;
    /* 401 everywhere but /health and /ready */
    const char *routes[][2] = {{"POST", "/generate"}, {"POST", "/score"}, {"POST", "/tokenize"},
                               {"POST", "/detokenize"}, {"GET", "/metrics"}, {"GET", "/v1/models"},
                               {"POST", "/v1/completions"}};
    for (int i = 0; i < 7; i++) {
        const char *body = routes[i][0][0] == 'P' ? "{\"text\":\"a\"}" : NULL;
        CHECK(http(s.port, routes[i][0], routes[i][1], NULL, body, &r) == 0);
        CHECK_MSG(r.status == 401 && err_type(&r) && !strcmp(err_type(&r), "authentication_error"), "%s: %d",
                  routes[i][1], r.status);
        resp_free(&r);
        CHECK(http(s.port, routes[i][0], routes[i][1], "Authorization: Bearer s3cret-kez\r\n", body, &r) == 0);
        CHECK(r.status == 401);
        resp_free(&r);
        CHECK(http(s.port, routes[i][0], routes[i][1], "X-API-Key: s3cret-key-longer\r\n", body, &r) == 0);
        CHECK(r.status == 401);
        resp_free(&r);
    }
    CHECK(http(s.port, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
    CHECK(http(s.port, "GET", "/ready", NULL, NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
    CHECK(http(s.port, "POST", "/tokenize", "Authorization: Bearer s3cret-key\r\n", "{\"text\":\"a\"}", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(http(s.port, "POST", "/tokenize", "X-API-Key: s3cret-key\r\n", "{\"text\":\"a\"}", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    const char *auth = "X-API-Key: s3cret-key\r\n";
    g_auth = auth;

    /* 413 from Content-Length alone: the body is never sent */
    int fd = net_connect(s.port, 60);
    const char *h = "POST /generate HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret-key\r\nContent-Length: 100000\r\n\r\n";
    CHECK(net_send_all(fd, h, strlen(h)) == 0);
    CHECK(http_recv(fd, &r) == 0);
    CHECK_MSG(r.status == 413, "status %d", r.status);
    CHECK(err_type(&r) && !strcmp(err_type(&r), "request_too_large"));
    resp_free(&r);
    /* 413 for a chunked body that grows past the limit */
    fd = net_connect(s.port, 60);
    h = "POST /generate HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret-key\r\nTransfer-Encoding: chunked\r\n\r\n";
    net_send_all(fd, h, strlen(h));
    static char chunk[2100];
    int n = sprintf(chunk, "800\r\n");
    memset(chunk + n, 'a', 2048);
    memcpy(chunk + n + 2048, "\r\n", 2);
    for (int i = 0; i < 4; i++) net_send_all(fd, chunk, (size_t)n + 2050);
    net_send_all(fd, "0\r\n\r\n", 5);
    CHECK(http_recv(fd, &r) == 0);
    CHECK_MSG(r.status == 413, "chunked: status %d", r.status);
    resp_free(&r);

    /* queue full: one running, one queued, the third gets 503 + Retry-After */
    int a = http_send(s.port, "POST", "/generate", auth, "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}");
    CHECK(wait_metric(s.port, "synth_running_batch_size", 1, 1) == 1);
    int b = http_send(s.port, "POST", "/generate", auth, "{\"prompt\":\"b\",\"max_tokens\":4}");
    CHECK(wait_metric(s.port, "synth_queue_depth", 1, 1) == 1);
    CHECK(http(s.port, "POST", "/generate", auth, "{\"prompt\":\"c\",\"max_tokens\":4}", &r) == 0);
    char ra[16];
    CHECK_MSG(r.status == 503, "status %d", r.status);
    CHECK(header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1);
    CHECK(err_type(&r) && !strcmp(err_type(&r), "overloaded_error"));
    resp_free(&r);
    CHECK(http_recv(a, &r) == 0 && r.status == 200);
    resp_free(&r);
    CHECK(http_recv(b, &r) == 0 && r.status == 200);
    resp_free(&r);

    /* an idle client (headers never finished) is dropped after --idle-timeout */
    fd = net_connect(s.port, 60);
    net_send_all(fd, "GET /health HTTP/1.1\r\n", 22);
    char c;
    ssize_t k = recv(fd, &c, 1, 0);   /* 0 (closed) within the 60 s receive timeout */
    CHECK(k <= 0);
    close(fd);
    g_auth = NULL;
    CHECK(server_stop(&s) == 0);
}

/* Header limit: the request line and headers must fit --max-header bytes
 * (default 32 KiB): 431 for headers beyond, 414 for a longer URL. */
static int status_of_raw(int port, const char *head_start, size_t fill, const char *head_end)
{
    int fd = net_connect(port, 60);
    if (fd < 0) return -1;
    char *big = malloc(fill);
    memset(big, 'a', fill);
    net_send_all(fd, head_start, strlen(head_start));
    net_send_all(fd, big, fill);
    net_send_all(fd, head_end, strlen(head_end));
    free(big);
    resp r;
    int st = http_recv(fd, &r) == 0 ? r.status : -1;
    resp_free(&r);
    return st;
}

TEST(test_header_limit)
{
    const char *hs = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", *he = "\r\nConnection: close\r\n\r\n";
    int st = status_of_raw(g_main.port, hs, 20000, he);
    CHECK_MSG(st == 200, "20 KB header: %d", st);
    st = status_of_raw(g_main.port, hs, 40000, he);
    CHECK_MSG(st == 431, "40 KB header, default limit: %d", st);
    st = status_of_raw(g_main.port, "GET /", 40000, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_MSG(st == 414, "40 KB URL, default limit: %d", st);
    server s;
    const char *const extra[] = {"--max-header", "131072", NULL};
    CHECK(server_start(&s, "maxheader", NULL, extra, "SYNTH_LOG_LEVEL=warn") == 0);
    if (!s.pid) return;
    st = status_of_raw(s.port, hs, 100000, he);
    CHECK_MSG(st == 200, "100 KB header, --max-header 128 KiB: %d", st);
    st = status_of_raw(s.port, hs, 140000, he);
    CHECK_MSG(st == 431, "140 KB header, --max-header 128 KiB: %d", st);
    CHECK(server_stop(&s) == 0);
}

/* --max-connections: clients beyond the limit wait in the listen backlog
 * and are served as soon as a connection closes. Regression (found while
 * writing SECURITY.md): MHD re-arms its listening socket only on its next
 * run, which nothing triggered, so after the limit had been reached new
 * clients waited up to --idle-timeout (60 s here) even with free slots. */
TEST(test_connection_limit)
{
    server s;
    const char *const extra[] = {"--max-connections", "2", "--idle-timeout", "60", NULL};
    CHECK(server_start(&s, "maxconn", NULL, extra, "SYNTH_LOG_LEVEL=warn") == 0);
    if (!s.pid) return;
    int a = net_connect(s.port, 60), b = net_connect(s.port, 60);
    CHECK(a >= 0 && b >= 0);
    net_send_all(a, "GET /hea", 8);   /* two idle clients hold both connections */
    net_send_all(b, "GET /hea", 8);
    usleep(300000);
    int c = http_send(s.port, "GET", "/health", NULL, NULL);
    CHECK(c >= 0);
    struct pollfd pf = {c, POLLIN, 0};
    CHECK_MSG(poll(&pf, 1, 500) == 0, "a third client was answered at the limit of 2");
    close(a);
    pf.revents = 0;
    CHECK_MSG(poll(&pf, 1, 10000) == 1, "the waiting client was not served within 10 s of a free slot");
    resp r;
    CHECK(http_recv(c, &r) == 0 && r.status == 200);
    resp_free(&r);
    /* and again, now that the limit was reached once */
    CHECK(http(s.port, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
    close(b);
    CHECK(server_stop(&s) == 0);
}

/* SIGTERM with requests in flight: they finish, new ones get 503, exit 0. */
TEST(test_sigterm_drain)
{
    server s;
    const char *const extra[] = {"--drain-timeout", "60", NULL};
    CHECK(server_start(&s, "drain", NULL, extra, NULL) == 0);
    if (!s.pid) return;
    int a = http_send(s.port, "POST", "/generate", NULL, "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}");
    int b = http_send(s.port, "POST", "/generate", NULL,
                      "{\"prompt\":\"b\",\"max_tokens\":1000,\"temperature\":0,\"stream\":true}");
    CHECK(wait_metric(s.port, "synth_running_batch_size", 2, 1) >= 2);
    kill(s.pid, SIGTERM);
    resp r;
    /* /ready turns 503 while /health stays 200 */
    int ready = 0;
    for (int i = 0; i < 500 && ready != 503; i++) {
        if (http(s.port, "GET", "/ready", NULL, NULL, &r) == 0) ready = r.status;
        resp_free(&r);
        if (ready != 503) usleep(2000);
    }
    CHECK_MSG(ready == 503, "/ready %d while draining", ready);
    CHECK(http(s.port, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
    CHECK(http(s.port, "POST", "/generate", NULL, "{\"prompt\":\"c\",\"max_tokens\":4}", &r) == 0);
    CHECK_MSG(r.status == 503, "new request during drain: %d", r.status);
    resp_free(&r);
    /* the in-flight ones complete in full */
    CHECK(http_recv(a, &r) == 0 && r.status == 200);
    json_t *u = json_object_get(r.json, "usage");
    const char *fr = json_string_value(json_object_get(r.json, "finish_reason"));
    CHECK(fr && (json_integer_value(json_object_get(u, "completion_tokens")) == 1000 || !strcmp(fr, "eos")));
    resp_free(&r);
    CHECK(http_recv(b, &r) == 0 && r.status == 200);
    json_t *ev[1];
    int done;
    CHECK(r.body && strstr(r.body, "\"finish_reason\""));
    (void)ev;
    (void)done;
    resp_free(&r);
    CHECK_MSG(server_wait(&s) == 0, "exit status not 0 (log %s)", s.log);
}

/* Drain timeout: what is still running is cut, the process still exits 0
 * and cleanly (under ASan this also checks the shutdown for leaks). */
TEST(test_drain_timeout)
{
    server s;
    const char *const extra[] = {"--drain-timeout", "0.05", NULL};
    CHECK(server_start(&s, "drain_timeout", NULL, extra, NULL) == 0);
    if (!s.pid) return;
    int a = http_send(s.port, "POST", "/generate", NULL, "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}");
    int b = http_send(s.port, "POST", "/generate", NULL,
                      "{\"prompt\":\"b\",\"max_tokens\":1000,\"temperature\":0,\"stream\":true}");
    int c = http_send(s.port, "POST", "/score", NULL, "{\"text\":\"the model\"}");
    CHECK(wait_metric(s.port, "synth_running_batch_size", 2, 1) >= 2);
    kill(s.pid, SIGTERM);
    CHECK_MSG(server_wait(&s) == 0, "exit status not 0 (log %s)", s.log);
    resp r;
    int fds[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        http_recv(fds[i], &r);   /* whatever arrived: a full answer, a 503, or a cut stream */
        resp_free(&r);
    }
}

TEST(test_second_signal_exits_now)
{
    server s;
    CHECK(server_start(&s, "twice", NULL, NULL, NULL) == 0);
    if (!s.pid) return;
    int a = http_send(s.port, "POST", "/generate", NULL, "{\"prompt\":\"a\",\"max_tokens\":1000,\"temperature\":0}");
    CHECK(wait_metric(s.port, "synth_running_batch_size", 1, 1) >= 1);
    kill(s.pid, SIGTERM);
    usleep(20000);
    kill(s.pid, SIGTERM);
    int st = server_wait(&s);
    CHECK_MSG(st == 128 + SIGTERM, "exit %d", st);
    resp r;
    http_recv(a, &r);
    resp_free(&r);
}

TEST(test_access_log)
{
    FILE *f = fopen(g_main.log, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[4096];
    int n = 0, ok = 1;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j) {
            ok = 0;
            continue;
        }
        if (json_object_get(j, "status") && json_object_get(j, "path")) {
            n++;
            ok &= json_is_string(json_object_get(j, "time")) && json_is_string(json_object_get(j, "method")) &&
                  json_is_number(json_object_get(j, "latency_ms"));
        }
        json_decref(j);
    }
    fclose(f);
    CHECK(ok);
    CHECK(n > 50);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--fixture")) {
        snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
        mkdir(g_dir, 0755);
        return write_fixture(g_dir) ? 1 : 0;
    }
    signal(SIGPIPE, SIG_IGN);
    g_synth = getenv("SYNTH") ? getenv("SYNTH") : "./synth";
    if (access(g_synth, X_OK) != 0) {
        printf("test_server: no synth binary at %s (set SYNTH)\n", g_synth);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/test_server.XXXXXX");
    if (!mkdtemp(g_dir) || write_fixture(g_dir)) {
        printf("test_server: cannot write the fixture\n0 passed, 1 failed\n");
        return 1;
    }
    char err[256];
    if (model_load(g_model, &g_m, err, sizeof err)) {
        printf("test_server: %s\n0 passed, 1 failed\n", err);
        return 1;
    }
    if (server_start(&g_main, "main", NULL, NULL, NULL)) {
        printf("test_server: server did not start\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_chunked_decoder);
    RUN(test_health_ready_models_metrics);
    RUN(test_tokenize_detokenize);
    RUN(test_remote_tokenizer);
    RUN(test_openai_sampling_fields);
    RUN(test_lm_eval_loglikelihood);
    RUN(test_openai_batch);
    RUN(test_echo_long_prompt);
    RUN(test_lm_eval_rolling);
    RUN(test_generate);
    RUN(test_generate_stop);
    RUN(test_generate_stream);
    RUN(test_stream_interval);
    RUN(test_openai_completions);
    RUN(test_openai_echo_stream);
    RUN(test_openai_stream_usage);
    RUN(test_greedy_logprob_is_top);
    RUN(test_echo_stream_waits_for_prefill);
    RUN(test_score);
    RUN(test_score_interleaves_generation);
    RUN(test_prefix_reuse);
    RUN(test_cpu_level_forced);
    RUN(test_act_forced);
    RUN(test_cache_type_served);
    RUN(test_context_shift);
    RUN(test_bad_input);
    RUN(test_concurrent_equals_alone);
    RUN(test_every_variant_served);
    RUN(test_disconnect_frees_slot);
    RUN(test_deadline);
    RUN(test_deadline_flag);
    RUN(test_limits);
    RUN(test_connection_limit);
    RUN(test_header_limit);
    RUN(test_sigterm_drain);
    RUN(test_drain_timeout);
    RUN(test_second_signal_exits_now);
    int st = server_stop(&g_main);
    RUN(test_access_log);
    test_cur_name = "main_server_exit";
    CHECK_MSG(st == 0, "main server exit status %d (log %s)", st, g_main.log);
    if (st) test_n_failed++;
    else test_n_passed++;
    model_free(g_m);
    if (!test_n_failed) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        if (system(cmd)) {}
    } else {
        printf("logs kept in %s\n", g_dir);
    }
    return test_summary();
}
