/*
 * fuzz_http.c - libFuzzer target: the HTTP server end to end, in process.
 *
 * LLVMFuzzerInitialize writes a tiny model (tests/fixture.h,
 * random variant, q8_0, context 64) to a temporary file and starts the real
 * server (srv_run: libuv loop + libmicrohttpd + the inference worker) on a
 * thread, on a free loopback port, with small limits (body 64 KiB, batch 4,
 * queue 8, API key "fuzzkey", request timeout 3 s, idle timeout 2 s). Each
 * input then goes over a fresh TCP connection; coverage counters are
 * process-wide, so the loop, pool and worker threads' code is what guides
 * the fuzzer. The first byte picks the mode:
 *   even  raw: the rest of the input is sent as is (request line, headers,
 *         body, pipelined requests, garbage); the response is read until the
 *         server closes or stays silent for 50 ms.
 *   odd   structured: byte 1 picks the method and route, byte 2 flags
 *         (bit 0 no API key, bit 1 chunked body, bit 2 hang up after the
 *         first response bytes), the rest is the body. The request is
 *         complete and asks for Connection: close, so the server must answer
 *         within 10 s with one of the designed statuses (200 400 401 404 405
 *         413 503 504) - anything else, or silence, aborts (a finding).
 * Connections are closed with SO_LINGER 0 (RST): no TIME_WAIT pile-up at
 * thousands of connections per second, and the server sees abrupt resets.
 * Dictionary: tests/fuzz/http.dict (methods, routes, headers, JSON fields).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "quant.h"
#include "../fixture.h"
#include "srv_core.h"

#include "../net_client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_port;
static char g_model[512];
static srv_config g_cfg;

static void *server_main(void *arg)
{
    (void)arg;
    int rc = srv_run(&g_cfg);
    fprintf(stderr, "fuzz_http: the server stopped (exit code %d)\n", rc);
    abort();
    return NULL;
}

static void close_rst(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Read until EOF, an error, `idle_ms` without data, or `total_s` in all.
 * Returns bytes read into buf (up to cap; the rest is drained); *eof set
 * when the server closed. */
static size_t read_resp(int fd, char *buf, size_t cap, int idle_ms, double total_s, int *eof, int first_only)
{
    size_t n = 0;
    double t_end = net_now() + total_s;
    *eof = 0;
    for (;;) {
        double left = t_end - net_now();
        if (left <= 0) break;
        int wait = idle_ms > 0 && idle_ms < left * 1e3 ? idle_ms : (int)(left * 1e3) + 1;
        struct pollfd pf = {fd, POLLIN, 0};
        /* libFuzzer's -timeout alarm (SIGALRM) may land on this thread:
         * an interrupted wait is not the server's silence */
        int pr = poll(&pf, 1, wait);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        char tmp[16384];
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            *eof = 1;
            break;
        }
        size_t c = (size_t)k < cap - n ? (size_t)k : cap - n;
        memcpy(buf + n, tmp, c);
        n += c;
        if (first_only) break;
    }
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("SYNTH_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    void *buf = NULL;
    size_t size = 0;
    if (fixture_model_buffer(ARCH_RANDOM, QUANT_Q8_0, 64, 1, &buf, &size)) {
        fprintf(stderr, "fuzz_http: cannot build the model\n");
        abort();
    }
    char dir[] = "/tmp/fuzz_http.XXXXXX";
    if (!mkdtemp(dir)) abort();
    snprintf(g_model, sizeof g_model, "%s/model.gguf", dir);
    FILE *f = fopen(g_model, "wb");
    if (!f || fwrite(buf, 1, size, f) != size || fclose(f)) abort();
    free(buf);
    g_port = net_free_port();
    if (g_port < 0) abort();
    /* the serve defaults, made small so a run hits every limit */
    srv_config_default(&g_cfg);
    g_cfg.model_path = g_model;
    g_cfg.port = g_port;
    g_cfg.max_batch = 4;
    g_cfg.max_queue = 8;
    g_cfg.max_body = 65536;
    g_cfg.api_key = "fuzzkey";
    g_cfg.request_timeout_ms = 3000;
    g_cfg.idle_timeout_s = 2;
    g_cfg.drain_timeout_s = 1;
    g_cfg.log_level = SRV_LOG_ERROR;
    g_cfg.max_connections = 64;
    g_cfg.step_tokens = 256;
    g_cfg.prefix_slots = 4;
    model_set_threads(1);
    pthread_t th;
    if (pthread_create(&th, NULL, server_main, NULL)) abort();
    pthread_detach(th);
    for (int i = 0; i < 300; i++) {
        int fd = net_connect(g_port, 0);
        if (fd >= 0) {
            close(fd);
            /* the model is loaded before the daemon listens: ready */
            unlink(g_model);
            rmdir(dir);
            return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "fuzz_http: the server did not start\n");
    abort();
}

static const struct {
    const char *method, *path;
} routes[] = {
    {"POST", "/generate"}, {"POST", "/v1/completions"}, {"POST", "/score"}, {"POST", "/tokenize"},
    {"POST", "/detokenize"}, {"GET", "/health"},       {"GET", "/ready"},  {"GET", "/metrics"},
    {"GET", "/v1/models"}, {"PUT", "/generate"},       {"GET", "/generate"}, {"HEAD", "/health"},
    {"GET", "/../etc/passwd"}, {"POST", "/generate?x=1"},
};

/* On a finding: the server's gauges, to tell a stuck worker from a stuck
 * loop (no answer at all) or a full connection table. */
static void dump_state(void)
{
    static char m[1 << 16];
    int eof;
    int fd = net_connect(g_port, 0);
    if (fd < 0) return;
    const char *q = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fuzzkey\r\nConnection: close\r\n\r\n";
    size_t n = net_send_all(fd, q, strlen(q)) == 0 ? read_resp(fd, m, sizeof m - 1, 0, 5.0, &eof, 0) : 0;
    close_rst(fd);
    m[n] = 0;
    fprintf(stderr, "fuzz_http: /metrics %s\n", n ? "" : "did not answer within 5 s either");
    for (char *l = strtok(m, "\n"); l; l = strtok(NULL, "\n"))
        if (!strncmp(l, "synth_queue", 11) || !strncmp(l, "synth_running", 13) || !strncmp(l, "synth_requests_in", 17) ||
            !strncmp(l, "synth_decode_steps", 18) || !strncmp(l, "synth_scored", 12))
            fprintf(stderr, "  %s\n", l);
}

static int designed(int st)
{
    static const int ok[] = {200, 400, 401, 404, 405, 413, 503, 504};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (st == ok[i]) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static char resp[1 << 16];
    int fd = net_connect(g_port, 0);
    if (fd < 0) {
        fprintf(stderr, "fuzz_http: cannot connect to the server: %s\n", strerror(errno));
        dump_state();
        abort();
    }
    int eof;
    if (!(data[0] & 1)) {
        if (net_send_all(fd, (const char *)data + 1, size - 1) == 0) read_resp(fd, resp, sizeof resp, 50, 5.0, &eof, 0);
        close_rst(fd);
        return 0;
    }
    if (size < 3) {
        close_rst(fd);
        return 0;
    }
    int ri = data[1] % (int)(sizeof routes / sizeof routes[0]);
    int flags = data[2];
    const char *body = (const char *)data + 3;
    size_t blen = size - 3;
    char *req = malloc(blen + 512);
    if (!req) abort();
    int n = snprintf(req, 512, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", routes[ri].method,
                     routes[ri].path, (flags & 1) ? "" : "Authorization: Bearer fuzzkey\r\n");
    size_t len = (size_t)n;
    if (flags & 2) {
        len += (size_t)snprintf(req + len, 512 - len, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", blen);
        memcpy(req + len, body, blen);
        len += blen;
        memcpy(req + len, "\r\n0\r\n\r\n", 7);
        len += 7;
    } else {
        len += (size_t)snprintf(req + len, 512 - len, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
        memcpy(req + len, body, blen);
        len += blen;
    }
    int sent = net_send_all(fd, req, len) == 0;
    free(req);
    if (!sent) {   /* the server may close early (413 before the body) */
        close_rst(fd);
        return 0;
    }
    double t0 = net_now();
    size_t got = read_resp(fd, resp, sizeof resp - 1, 0, 10.0, &eof, (flags & 4) != 0);
    double waited = net_now() - t0;
    close_rst(fd);
    if (flags & 4) return 0;
    resp[got] = 0;
    int st = 0;
    if (got < 12 || sscanf(resp, "HTTP/1.%*d %d", &st) != 1 || !designed(st)) {
        fprintf(stderr, "fuzz_http: %s %s: %s (%zu bytes in %.2f s, eof %d): %.200s\n", routes[ri].method,
                routes[ri].path, got ? "undesigned status" : "no answer within 10 s", got, waited, eof, resp);
        dump_state();
        if (getenv("FUZZ_HTTP_HOLD")) {   /* debugging: time to attach gdb */
            fprintf(stderr, "fuzz_http: holding %s s (pid %d)\n", getenv("FUZZ_HTTP_HOLD"), (int)getpid());
            sleep((unsigned)atoi(getenv("FUZZ_HTTP_HOLD")));
        }
        abort();
    }
    return 0;
}
