/*
 * bench_server.c - load test of `synth serve` from a second process.
 *
 * Starts the real server (synth serve, like tests/test_server.c) on a free
 * loopback port and drives it with N concurrent clients (threads with
 * blocking sockets, one request per connection) for a fixed time each:
 *   /generate  64 new tokens, streamed, so the time to first token is seen
 *              by the client (the first "token" event);
 *   /score     a text of 256 tokens;
 *   /health    with wrk (keep-alive) when installed, else this client.
 * Reported per (route, clients): requests/s, tokens/s, latency p50/p99,
 * TTFT p50/p99, errors (anything but 200; 503s are counted apart), and
 * when this process started the server, CPU microseconds per token of the
 * server ("srv CPU": user + system, from /proc) and of the clients ("cli
 * CPU"): what the work cost, which the noise of a shared machine moves far
 * less than the rates (/score: per scored token).
 *
 * --api openai drives any OpenAI-compatible server (llama-server, or synth
 * serve's own /v1/completions) the same way, so one client measures both:
 * POST /v1/completions {"prompt": "the model of attention", "max_tokens":
 * 64, "temperature": 1, "stream": true, "ignore_eos": true} (ignore_eos is
 * llama-server's and synth's: the end-of-text token is never sampled). The
 * response is read as server-sent events (chunked transfer decoded with
 * net_chunked_feed): TTFT is the arrival of the first "data:" event with
 * "choices", the token count is the final event's usage.completion_tokens
 * (the number of such events if the server sends no usage), and a request
 * counts as an error unless it is a 200 that ends with usage or
 * "data: [DONE]" and has no "error" event. Reported per clients: requests/s,
 * tokens/s (aggregate), tokens per request, latency p50/p90/p99, TTFT
 * p50/p90. With --port the server is not started (no model is needed);
 * without it synth serve is started as in the default mode.
 *
 * The model: --model PATH, else the shipped CMD_DEFAULT_MODEL if present,
 * else the engine's default size (d 256, 6 layers, 4 heads, d_ff 1024,
 * L 256, vocab 8192, random variant) with random q8_0 weights and a byte
 * vocabulary padded with dummy tokens, written to a temporary file.
 *
 * Usage: bench_server [--synth PATH] [--model PATH] [--seconds S (4)]
 *                     [--clients 1,8,32,128] [--threads N] [--max-batch N]
 *                     [--port P (use a server already running there)]
 *                     [--api synth|openai|choices (synth)]
 *        bench_server --write-model PATH   (only write the default-size model)
 */
#include <arpa/inet.h>
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "ckpt.h"
#include "cmd.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "tok.h"

#include "../tests/net_client.h"
#define BENCH_PROG "bench_server"
#include "bench_common.inc"

int openblas_get_num_threads(void);

/* ---- model ---- */

/* The engine's default size with random weights, as a file. */
static int write_default_model(const char *path)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    void *buf = NULL;
    size_t size = 0;
    bench_model_image(&hp, 1.0f, &buf, &size);
    FILE *f = fopen(path, "wb");
    int rc = !f || fwrite(buf, 1, size, f) != size;
    if (f && fclose(f)) rc = 1;
    if (rc) fprintf(stderr, "bench_server: cannot write %s\n", path);
    free(buf);
    return rc;
}

/* ---- client ---- */

static int g_port;
static int g_openai;   /* --api openai */
static int g_choices;  /* --api choices */

typedef struct {
    double lat, ttft;
    int tokens, status;   /* status: HTTP status, -1 no response, -2 an incomplete or failed stream */
} sample;

typedef struct {
    const char *path, *body;
    double until;
    sample *s;
    int n, cap;
} client;

/* A connection with the POST sent (Connection: close), or -1. */
static int send_post(const client *c)
{
    int fd = net_connect(g_port, 120);
    if (fd < 0) return -1;
    char head[512];
    size_t bl = strlen(c->body);
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      c->path, bl);
    if (net_send_all(fd, head, (size_t)hn) || net_send_all(fd, c->body, bl)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on a fresh connection; counts "token" events as they stream. */
static void one_request(client *c, sample *out)
{
    memset(out, 0, sizeof *out);
    out->ttft = -1;
    double t0 = net_now();
    int fd = send_post(c);
    if (fd < 0) {
        out->status = -1;
        return;
    }
    static const char mark[] = "{\"token\":";
    size_t cap = 65536, len = 0, scanned = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
        buf[len] = 0;
        char *p = buf + scanned;
        while ((p = strstr(p, mark))) {
            if (out->tokens++ == 0) out->ttft = net_now() - t0;
            p += sizeof mark - 1;
        }
        scanned = len > sizeof mark ? len - sizeof mark : 0;
    }
    close(fd);
    out->lat = net_now() - t0;
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) out->status = -1;
    /* non-streamed /score: the scored token count is in the body */
    char *t = strstr(buf, "\"tokens\":");
    if (out->tokens == 0 && t) out->tokens = atoi(t + 9);
    free(buf);
}

/* Per-response state of the OpenAI stream reader. */
typedef struct {
    int events, usage, done, failed;
} sse_state;

/* Consume the complete events at the front of body[0..*len); an incomplete
 * last event stays for the next call. Events end with "\n\n" (synth and
 * llama-server both send LF line ends; CRLF-delimited SSE is not handled). */
static void sse_scan(char *body, size_t *len, sse_state *st, double t0, sample *out)
{
    size_t at = 0;
    for (;;) {
        char *e = memmem(body + at, *len - at, "\n\n", 2);
        if (!e) break;
        *e = 0;   /* the event is body[at..e) */
        const char *ev = body + at, *d = strstr(ev, "data:");
        at = (size_t)(e - body) + 2;
        if (!d) continue;   /* comments, "event:" lines alone */
        d += 5 + (d[5] == ' ');
        if (!strncmp(d, "[DONE]", 6)) {
            st->done = 1;
            continue;
        }
        if (strstr(d, "\"error\"")) st->failed = 1;
        const char *u = strstr(d, "\"completion_tokens\":");
        if (u) st->usage = atoi(u + 20);
        if (strstr(d, "\"choices\"") && st->events++ == 0) out->ttft = net_now() - t0;
    }
    memmove(body, body + at, *len - at);
    *len -= at;
}

/* One streamed /v1/completions request (see the header comment). */
static void one_request_openai(client *c, sample *out)
{
    memset(out, 0, sizeof *out);
    out->ttft = -1;
    out->status = -1;
    double t0 = net_now();
    int fd = send_post(c);
    if (fd < 0) return;
    size_t cap = 65536, len = 0;   /* headers, then the decoded body not yet scanned */
    char *buf = malloc(cap + 1);
    int in_body = 0, chunked = 0;
    net_chunked ck = {0};
    sse_state st = {0, -1, 0, 0};
    while (buf) {
        if (len + 16384 > cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) break;
            buf = nb;
        }
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) break;
        if (!in_body) {
            len += (size_t)k;
            buf[len] = 0;
            char *hend = strstr(buf, "\r\n\r\n");
            if (!hend) continue;
            *hend = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) out->status = -1;
            chunked = strcasestr(buf, "transfer-encoding: chunked") != NULL;
            in_body = 1;
            size_t rest = len - (size_t)(hend + 4 - buf);
            memmove(buf, hend + 4, rest);
            len = 0;
            k = (ssize_t)rest;
        }
        /* the k new body bytes are at buf + len */
        long got = chunked ? net_chunked_feed(&ck, buf + len, (size_t)k) : (long)k;
        if (got < 0) {
            st.failed = 1;
            break;
        }
        len += (size_t)got;
        sse_scan(buf, &len, &st, t0, out);
        if (chunked && net_chunked_done(&ck)) break;
    }
    close(fd);
    free(buf);
    out->lat = net_now() - t0;
    out->tokens = st.usage >= 0 ? st.usage : st.events;
    if (out->status == 200 && (st.failed || (!st.done && st.usage < 0))) out->status = -2;
}

static void *client_main(void *arg)
{
    client *c = arg;
    while (net_now() < c->until) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->s = realloc(c->s, (size_t)c->cap * sizeof *c->s);
        }
        if (g_openai) one_request_openai(c, &c->s[c->n++]);
        else one_request(c, &c->s[c->n++]);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double q)
{
    if (n == 0) return 0;
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

/* The server this process started (0: --port, not ours to measure). */
static pid_t g_server_pid;

/* CPU seconds (user + system) used so far by process pid, from
 * /proc/PID/stat (fields 14 and 15, in clock ticks); -1 if unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process (every client thread). */
static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void run_load(const char *name, const char *path, const char *body, int nclients, double seconds)
{
    client *cs = calloc((size_t)nclients, sizeof *cs);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    const double srv0 = g_server_pid > 0 ? proc_cpu_s(g_server_pid) : -1, cli0 = self_cpu_s();
    double t0 = net_now(), until = t0 + seconds;
    for (int i = 0; i < nclients; i++) {
        cs[i].path = path;
        cs[i].body = body;
        cs[i].until = until;
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    for (int i = 0; i < nclients; i++) pthread_join(th[i], NULL);
    double wall = net_now() - t0;
    const double srv1 = srv0 >= 0 ? proc_cpu_s(g_server_pid) : -1, cli1 = self_cpu_s();
    int total = 0;
    for (int i = 0; i < nclients; i++) total += cs[i].n;
    double *lat = malloc((size_t)(total + 1) * sizeof *lat), *ttft = malloc((size_t)(total + 1) * sizeof *ttft);
    int nok = 0, nttft = 0, n503 = 0, nerr = 0;
    long tokens = 0;
    for (int i = 0; i < nclients; i++)
        for (int k = 0; k < cs[i].n; k++) {
            sample *s = &cs[i].s[k];
            if (s->status == 200) {
                lat[nok++] = s->lat;
                tokens += s->tokens;
                if (s->ttft >= 0) ttft[nttft++] = s->ttft;
            } else if (s->status == 503) {
                n503++;
            } else {
                nerr++;
            }
        }
    qsort(lat, (size_t)nok, sizeof *lat, cmp_double);
    qsort(ttft, (size_t)nttft, sizeof *ttft, cmp_double);
    double p50 = pct(lat, nok, 0.5) * 1e3, p99 = pct(lat, nok, 0.99) * 1e3;
    double t50 = nttft ? pct(ttft, nttft, 0.5) * 1e3 : 0;
    if (g_openai) {
        printf("| %7d | %8.1f | %9.0f | %7.1f | %8.1f | %8.1f | %8.1f | %9.1f | %9.1f | %6d |\n", nclients, nok / wall,
               tokens / wall, nok ? (double)tokens / nok : 0, p50, pct(lat, nok, 0.9) * 1e3, p99, t50,
               nttft ? pct(ttft, nttft, 0.9) * 1e3 : 0, n503 + nerr);
    } else {
        /* CPU per token: what the work cost, which the machine's noise
         * (other tenants) moves far less than it moves tokens/s */
        double srv_us = srv1 >= 0 && tokens ? (srv1 - srv0) / (double)tokens * 1e6 : 0;
        double cli_us = tokens ? (cli1 - cli0) / (double)tokens * 1e6 : 0;
        printf("| %-9s | %7d | %8.1f | %9.0f | %8.1f | %8.1f | %9.1f | %9.1f | %4d | %5d | %7.1f | %7.1f |\n", name,
               nclients, nok / wall, tokens / wall, p50, p99, t50, nttft ? pct(ttft, nttft, 0.99) * 1e3 : 0, n503,
               nerr, srv_us, cli_us);
    }
    fflush(stdout);
    for (int i = 0; i < nclients; i++) free(cs[i].s);
    free(cs);
    free(th);
    free(lat);
    free(ttft);
}

/* /health with wrk (keep-alive); prints its requests/s. */
static void bench_health(double seconds)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c64 -d%ds http://127.0.0.1:%d/health 2>&1", (int)(seconds + 0.5), g_port);
    FILE *p = popen(cmd, "r");
    char line[256];
    int found = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (strstr(line, "Requests/sec") || strstr(line, "Non-2xx") || strstr(line, "Socket errors")) {
            printf("/health (wrk -t2 -c64, keep-alive): %s", line);
            found = 1;
        }
    }
    if (p) pclose(p);
    if (!found) {
        run_load("/health", "/health", "", 8, seconds);   /* no wrk: POST gets 405, shows the loop rate only */
    }
}

/* ---- server ---- */

static pid_t start_server(const char *synth, const char *model_path, const char *threads, const char *batch,
                          const char *prefix_slots)
{
    g_port = net_free_port();
    if (g_port < 0) return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", g_port);
    pid_t pid = fork();
    if (pid == 0) {
        execl(synth, synth, "serve", "-m", model_path, "--port", port, "--max-queue", "4096", "--max-batch", batch,
              "--threads", threads, "--log-level", "warn", "--max-connections", "4096", "--prefix-slots",
              prefix_slots, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        int c = net_connect(g_port, 120);
        if (c >= 0) {
            close(c);
            return pid;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    return -1;
}

/* SIGTERM (the server drains) and its exit status. */
static void stop_server(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("server exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* --api openai: /v1/completions streams only, on the server at --port or on
 * a synth serve started here. */
static int bench_openai(const char *synth, const char *model_path, const char *clients, const char *threads,
                        const char *batch, double seconds)
{
    pid_t pid = 0;
    if (!g_port) {
        if (!model_path && access(CMD_DEFAULT_MODEL, R_OK) == 0) model_path = CMD_DEFAULT_MODEL;
        if (!model_path) {
            fprintf(stderr, "bench_server: --api openai needs --port or a --model to serve\n");
            return 2;
        }
        pid = start_server(synth, model_path, threads, batch, "8");
        if (pid < 0) {
            fprintf(stderr, "bench_server: server did not start (%s)\n", synth);
            return 1;
        }
        printf("synth serve -m %s --threads %s --max-batch %s on port %d\n", model_path, threads, batch, g_port);
    }
    printf("OpenAI API at 127.0.0.1:%d: POST /v1/completions, 64 new tokens, streamed; %.0f s per row\n", g_port,
           seconds);
    bench_print_load("start");
    printf("\n| clients | req/s    | tokens/s  | tok/req | p50 ms   | p90 ms   | p99 ms   | TTFT p50  | TTFT p90  | errors |\n"
           "|---------|----------|-----------|---------|----------|----------|----------|-----------|-----------|--------|\n");
    static const char body[] = "{\"prompt\":\"the model of attention\",\"max_tokens\":64,\"temperature\":1.0,"
                               "\"stream\":true,\"ignore_eos\":true}";
    char list[64];
    snprintf(list, sizeof list, "%s", clients);
    for (char *tk = strtok(list, ","); tk; tk = strtok(NULL, ",")) {
        int n = atoi(tk);
        if (n >= 1) run_load("/v1/completions", "/v1/completions", body, n, seconds);
    }
    bench_print_load("end");
    if (pid > 0) stop_server(pid);
    return 0;
}

/* ---- --api choices: multiple-choice scoring ----
 * lm-evaluation-harness's multiple-choice tasks send, per question, one
 * context with several continuations as separate log-likelihood requests.
 * Each client asks questions one after another: a new context of CH_WORDS
 * words (its own words, so questions share nothing), then CH_N /score
 * {context, continuation} requests in turn. The same load runs against a
 * server with the prefix cache off (--prefix-slots 0, what every request
 * cost before it) and on (8), alternating, so the ratio is side by side. */
#define CH_WORDS 160
#define CH_N 4

typedef struct {
    int id;
    double until;
    int questions, errors;
    double *lat;   /* per question, seconds */
    int cap;
} ch_client;

static void ch_context(char *out, size_t cap, uint64_t seed)
{
    static const char *const words[] = {"the", "model", "of", "attention", "is", "a", "random", "matrix", "and",
                                        "learns", "to", "mix", "values", "over", "positions", "in", "context",
                                        "river", "city", "war", "game", "song", "team", "season", "north"};
    size_t n = 0;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int w = 0; w < CH_WORDS && n + 16 < cap; w++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        n += (size_t)snprintf(out + n, cap - n, "%s%s", w ? " " : "", words[(x >> 33) % 25]);
    }
}

static int post_status(const char *path, const char *body)
{
    client c = {.path = path, .body = body};
    int fd = send_post(&c);
    if (fd < 0) return -1;
    char buf[16384];
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0) break;
        len += (size_t)k;
        if (len == sizeof buf - 1) len = 64;   /* keep the status line, drop the rest */
    }
    close(fd);
    buf[len] = 0;
    int st = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1) st = -1;
    return st;
}

static void *ch_client_main(void *arg)
{
    static const char *const conts[CH_N] = {" the river", " a song of the city", " north", " the team season"};
    ch_client *c = arg;
    char ctx[4096], body[5000];
    for (int q = 0; net_now() < c->until; q++) {
        ch_context(ctx, sizeof ctx, (uint64_t)c->id << 32 | (uint64_t)q);
        double t0 = net_now();
        int ok = 1;
        for (int k = 0; k < CH_N; k++) {
            snprintf(body, sizeof body, "{\"context\":\"%s\",\"continuation\":\"%s\"}", ctx, conts[k]);
            ok &= post_status("/score", body) == 200;
        }
        if (!ok) {
            c->errors++;
            continue;
        }
        if (c->questions == c->cap) c->lat = realloc(c->lat, (size_t)(c->cap = c->cap ? 2 * c->cap : 256) * sizeof *c->lat);
        c->lat[c->questions++] = net_now() - t0;
    }
    return NULL;
}

/* Questions per second with n clients; p50 seconds per question in *p50. */
static double ch_load(int n, double seconds, double *p50, int *errors)
{
    ch_client *cs = calloc((size_t)n, sizeof *cs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    double t0 = net_now();
    for (int i = 0; i < n; i++) {
        cs[i] = (ch_client){.id = i, .until = t0 + seconds};
        pthread_create(&th[i], NULL, ch_client_main, &cs[i]);
    }
    int total = 0;
    *errors = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += cs[i].questions;
        *errors += cs[i].errors;
    }
    double wall = net_now() - t0;
    double *all = malloc((size_t)(total + 1) * sizeof *all);
    int k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, cs[i].lat, (size_t)cs[i].questions * sizeof *all);
        k += cs[i].questions;
        free(cs[i].lat);
    }
    qsort(all, (size_t)total, sizeof *all, cmp_double);
    *p50 = pct(all, total, 0.5);
    free(all);
    free(cs);
    free(th);
    return total / wall;
}

static int bench_choices(const char *synth, const char *model_path, const char *clients, const char *threads,
                         const char *batch, double seconds)
{
    if (!model_path && access(CMD_DEFAULT_MODEL, R_OK) == 0) model_path = CMD_DEFAULT_MODEL;
    if (!model_path) {
        fprintf(stderr, "bench_server: --api choices needs a --model\n");
        return 2;
    }
    model *m = NULL;
    char err[256], ctx[4096];
    if (model_load(model_path, &m, err, sizeof err)) {
        fprintf(stderr, "bench_server: %s\n", err);
        return 1;
    }
    ch_context(ctx, sizeof ctx, 0);
    int32_t *ids = NULL;
    size_t nt = 0;
    tok_encode(model_tok(m), ctx, strlen(ctx), &ids, &nt);
    free(ids);
    model_free(m);
    printf("multiple-choice scoring: per question a new context of %d words (%zu tokens in the first), %d /score "
           "{context, continuation} requests in turn; server --threads %s --max-batch %s; %.0f s per row, "
           "prefix cache off and on alternating\n",
           CH_WORDS, nt, CH_N, threads, batch, seconds);
    bench_print_load("start");
    printf("\n| clients | prefix slots | questions/s | p50 ms per question | errors |\n"
           "|---------|--------------|-------------|---------------------|--------|\n");
    char list[64];
    snprintf(list, sizeof list, "%s", clients);
    for (char *tk = strtok(list, ","); tk; tk = strtok(NULL, ",")) {
        int n = atoi(tk);
        if (n < 1) continue;
        double rate[2];
        for (int on = 0; on < 2; on++) {
            pid_t pid = start_server(synth, model_path, threads, batch, on ? "8" : "0");
            if (pid < 0) {
                fprintf(stderr, "bench_server: server did not start (%s)\n", synth);
                return 1;
            }
            double p50;
            int errors;
            rate[on] = ch_load(n, seconds, &p50, &errors);
            printf("| %7d | %12s | %11.1f | %19.1f | %6d |\n", n, on ? "8" : "0 (off)", rate[on], p50 * 1e3, errors);
            fflush(stdout);
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
        printf("| %7d | on / off     | %10.2fx |                     |        |\n", n, rate[0] > 0 ? rate[1] / rate[0] : 0);
    }
    bench_print_load("end");
    return 0;
}

int main(int argc, char **argv)
{
    const char *synth = getenv("SYNTH") ? getenv("SYNTH") : "./synth", *model_path = NULL;
    const char *clients = "1,8,32,128", *threads = "2", *batch = "32";
    double seconds = 4;
    if (argc == 3 && !strcmp(argv[1], "--write-model")) return write_default_model(argv[2]) ? 1 : 0;
    static const char usage[] = "usage: bench_server [--synth PATH] [--model PATH] [--seconds S] "
                                "[--clients 1,8,32,128] [--threads N] [--max-batch N] [--port P] "
                                "[--api synth|openai|choices]\n";
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_server: %s needs a value\n%s", argv[i], usage);
            return 2;
        }
        if (!strcmp(argv[i], "--synth")) synth = argv[i + 1];
        else if (!strcmp(argv[i], "--model")) model_path = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) clients = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "--max-batch")) batch = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) g_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--api") && !strcmp(argv[i + 1], "openai")) g_openai = 1;
        else if (!strcmp(argv[i], "--api") && !strcmp(argv[i + 1], "synth")) g_openai = 0;
        else if (!strcmp(argv[i], "--api") && !strcmp(argv[i + 1], "choices")) g_choices = 1;
        else if (!strcmp(argv[i], "--api")) {
            fprintf(stderr, "bench_server: --api must be synth, openai or choices, not '%s'\n", argv[i + 1]);
            return 2;
        } else {
            fprintf(stderr, "bench_server: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!(seconds > 0 && seconds <= 3600) || g_port < 0 || g_port > 65535) {
        fprintf(stderr, "bench_server: --seconds must be in (0, 3600] and --port in 0..65535\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (g_choices) return bench_choices(synth, model_path, strcmp(clients, "1,8,32,128") ? clients : "1,4", threads,
                                        batch, seconds);
    if (g_openai) return bench_openai(synth, model_path, clients, threads, batch, seconds);
    char tmpdir[] = "/tmp/bench_server.XXXXXX", tmp_model[64] = "";
    if (!model_path && access(CMD_DEFAULT_MODEL, R_OK) == 0) model_path = CMD_DEFAULT_MODEL;
    if (!model_path) {
        if (!mkdtemp(tmpdir)) return 1;
        snprintf(tmp_model, sizeof tmp_model, "%s/model.gguf", tmpdir);
        if (write_default_model(tmp_model)) return 1;
        model_path = tmp_model;
    }
    /* a text of 256 tokens for /score and a prompt for /generate */
    model *m = NULL;
    char err[256];
    if (model_load(model_path, &m, err, sizeof err)) {
        fprintf(stderr, "bench_server: %s\n", err);
        return 1;
    }
    static const char *const words[] = {"the", "model", "of", "attention", "is", "a", "random", "matrix", "and",
                                        "learns", "to", "mix", "values", "over", "positions", "in", "context"};
    char text[8192] = "";
    size_t tl = 0;
    for (int w = 0;; w++) {
        const char *x = words[(w * 7 + w / 3) % 17];
        if (tl + strlen(x) + 2 >= sizeof text) break;
        tl += (size_t)sprintf(text + tl, "%s%s", w ? " " : "", x);
        int32_t *ids;
        size_t n;
        tok_encode(model_tok(m), text, tl, &ids, &n);
        free(ids);
        if (n >= 256) break;
    }
    const arch_hparams *hp = model_hparams(m);
    printf("model %s: %s, %s, d %d, %d layers, L %d, vocab %d; server --threads %s --max-batch %s; %.0f s per row\n",
           model_path, model_name(m), arch_variant_name(hp->variant), hp->n_embd, hp->n_layer, hp->n_ctx, hp->n_vocab,
           threads, batch, seconds);
    model_free(m);
    /* the roofline beside the server figures (this process's OpenBLAS
     * threads; the server's matmuls use --threads) */
    double peak = bench_sgemm_gflops(1024, 1024, 1024);
    printf("sgemm peak in this run: %.1f GFLOP/s (1024^3, OpenBLAS %d threads, %s)\n", peak,
           openblas_get_num_threads(), openblas_get_corename());
    bench_print_load("start");
    char score_body[9000], gen_body[256];
    snprintf(score_body, sizeof score_body, "{\"text\":\"%s\"}", text);
    snprintf(gen_body, sizeof gen_body,
             "{\"prompt\":\"the model of attention\",\"max_tokens\":64,\"temperature\":1.0,\"stream\":true}");
    pid_t pid = g_port ? 0 : start_server(synth, model_path, threads, batch, "8");
    if (pid < 0) {
        fprintf(stderr, "bench_server: server did not start (%s)\n", synth);
        return 1;
    }
    g_server_pid = pid;
    printf("\n| route     | clients | req/s    | tokens/s  | p50 ms   | p99 ms   | TTFT p50  | TTFT p99  | 503  | other | "
           "srv CPU | cli CPU |\n"
           "|-----------|---------|----------|-----------|----------|----------|-----------|-----------|------|-------|"
           "---------|---------|\n");
    for (int pass = 0; pass < 2; pass++) {
        char list[64];
        snprintf(list, sizeof list, "%s", clients);
        for (char *tk = strtok(list, ","); tk; tk = strtok(NULL, ",")) {
            int n = atoi(tk);
            if (n < 1) continue;
            if (pass == 0) run_load("/generate", "/generate", gen_body, n, seconds);
            else run_load("/score", "/score", score_body, n, seconds);
        }
    }
    printf("\n");
    bench_health(seconds);
    if (pid > 0) stop_server(pid);
    if (tmp_model[0]) {
        unlink(tmp_model);
        rmdir(tmpdir);
    }
    return 0;
}
