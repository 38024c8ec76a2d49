/* cmd_serve.c - `synth serve`: flags (each also a SYNTH_* environment
 * variable; a flag wins over the variable) -> srv_config -> srv_run. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "srv_core.h"

typedef enum { F_STR, F_INT, F_SIZE, F_DOUBLE, F_LEVEL, F_CACHE } flag_kind;

typedef struct {
    const char *name;   /* --name */
    char short_name;
    const char *env;
    flag_kind kind;
    void *dst;
    long long lo, hi;   /* integer range */
    const char *help;
} flag;

static const char *const levels[] = {"error", "warn", "info", "debug"};

static int set_flag(const flag *f, const char *v)
{
    char *end;
    errno = 0;
    switch (f->kind) {
    case F_STR:
        *(const char **)f->dst = v;
        return 0;
    case F_INT:
    case F_SIZE: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < f->lo || x > f->hi) {
            fprintf(stderr, "synth serve: --%s: expected an integer in [%lld, %lld], got '%s'\n", f->name, f->lo,
                    f->hi, v);
            return -1;
        }
        if (f->kind == F_INT) *(int *)f->dst = (int)x;
        else *(size_t *)f->dst = (size_t)x;
        return 0;
    }
    case F_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= (double)f->lo && x <= (double)f->hi)) {
            fprintf(stderr, "synth serve: --%s: expected a number in [%lld, %lld], got '%s'\n", f->name, f->lo,
                    f->hi, v);
            return -1;
        }
        *(double *)f->dst = x;
        return 0;
    }
    case F_LEVEL:
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, levels[i])) {
                *(int *)f->dst = i;
                return 0;
            }
        fprintf(stderr, "synth serve: --%s: expected error, warn, info or debug, got '%s'\n", f->name, v);
        return -1;
    case F_CACHE: {
        /* checked where it is read, so a bad $SYNTH_CACHE_TYPE is named as such */
        char name[48];
        snprintf(name, sizeof name, "--%s", f->name);
        return cli_cache_type("serve", name, v, (model_cache_type *)f->dst);
    }
    }
    return -1;
}

static void usage(FILE *out, const flag *flags, int n)
{
    fprintf(out, "usage: synth serve [options]\n\nHTTP inference server: POST /generate /score /tokenize "
                 "/detokenize /v1/completions, GET /health /ready /metrics /v1/models /v1/attention,\n"
                 "and the playground page at GET /.\n\noptions (each "
                 "also an environment variable):\n");
    for (int i = 0; i < n; i++) {
        char name[40];
        snprintf(name, sizeof name, "%s%c%s--%s", flags[i].short_name ? "-" : "",
                 flags[i].short_name ? flags[i].short_name : ' ', flags[i].short_name ? ", " : "  ",
                 flags[i].name);
        fprintf(out, "  %-26s %-24s %s\n", name, flags[i].env, flags[i].help);
    }
}

/* The flags' environment variables, then the command line (which wins):
 * --name VALUE, --name=VALUE or -x VALUE. 0: set; 1: --help printed; 2: a
 * bad flag or value (the message printed). */
static int apply_flags(const flag *flags, int nf, int argc, char **argv)
{
    for (int i = 0; i < nf; i++) {
        const char *v = getenv(flags[i].env);
        if (v && *v && set_flag(&flags[i], v)) {
            fprintf(stderr, "synth serve: (from %s)\n", flags[i].env);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, flags, nf);
            return 1;
        }
        const flag *f = NULL;
        const char *val = NULL;
        for (int k = 0; k < nf && !f; k++) {
            size_t nl = strlen(flags[k].name);
            if (a[0] == '-' && a[1] == '-' && !strncmp(a + 2, flags[k].name, nl) && (a[2 + nl] == 0 || a[2 + nl] == '=')) {
                f = &flags[k];
                if (a[2 + nl] == '=') val = a + 3 + nl;
            } else if (flags[k].short_name && a[0] == '-' && a[1] == flags[k].short_name && a[2] == 0) {
                f = &flags[k];
            }
        }
        if (!f) {
            fprintf(stderr, "synth serve: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "synth serve: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        if (set_flag(f, val)) return 2;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    srv_config c;
    srv_config_default(&c);
    c.model_path = CMD_DEFAULT_MODEL;
    int timeout_ms = 0, threads = 0;
    const char *cpu = "auto", *act = model_act();
    const flag flags[] = {
        {"model", 'm', "SYNTH_MODEL", F_STR, &c.model_path, 0, 0, "checkpoint (GGUF), default " CMD_DEFAULT_MODEL},
        {"host", 0, "SYNTH_HOST", F_STR, &c.host, 0, 0, "address to listen on (default 127.0.0.1)"},
        {"port", 'p', "SYNTH_PORT", F_INT, &c.port, 0, 65535, "port (default 8080; 0: any free port)"},
        {"max-batch", 0, "SYNTH_MAX_BATCH", F_INT, &c.max_batch, 1, 1024, "sequences decoded together (32)"},
        {"max-queue", 0, "SYNTH_MAX_QUEUE", F_INT, &c.max_queue, 0, 1000000, "waiting requests before 503 (256)"},
        {"max-body", 0, "SYNTH_MAX_BODY", F_SIZE, &c.max_body, 1, 1LL << 32, "request body limit, bytes (1 MiB)"},
        {"api-key", 0, "SYNTH_API_KEY", F_STR, &c.api_key, 0, 0, "require this key (Bearer or X-API-Key)"},
        {"request-timeout", 0, "SYNTH_REQUEST_TIMEOUT", F_INT, &timeout_ms, 0, 1 << 30,
         "default request deadline, ms (0: none)"},
        {"idle-timeout", 0, "SYNTH_IDLE_TIMEOUT", F_INT, &c.idle_timeout_s, 1, 86400,
         "close idle or stalled connections after s (30)"},
        {"drain-timeout", 0, "SYNTH_DRAIN_TIMEOUT", F_DOUBLE, &c.drain_timeout_s, 0, 86400,
         "on SIGTERM, wait for requests up to s (30)"},
        {"max-connections", 0, "SYNTH_MAX_CONNECTIONS", F_INT, &c.max_connections, 1, 1000000,
         "open connections (1024)"},
        {"max-header", 0, "SYNTH_MAX_HEADER", F_SIZE, &c.max_header, 32768, 1 << 20,
         "request line + headers, bytes (32 KiB; 431/414 beyond)"},
        {"step-tokens", 0, "SYNTH_STEP_TOKENS", F_INT, &c.step_tokens, 1, 1 << 20,
         "tokens per model step: decode rows + prompt and /score chunks (512)"},
        {"stream-interval", 0, "SYNTH_STREAM_INTERVAL", F_INT, &c.stream_interval, 1, 1024,
         "streamed tokens sent together: fewer writes under load, later tokens (1)"},
        {"prefix-slots", 0, "SYNTH_PREFIX_SLOTS", F_INT, &c.prefix_slots, 0, 1024,
         "computed prompt/context prefixes kept for reuse (8; 0: off)"},
        {"threads", 't', "SYNTH_THREADS", F_INT, &threads, 0, 1024,
         "compute threads: the engine pool and OpenBLAS, one budget (0: all cores)"},
        {"cpu", 0, "SYNTH_CPU", F_STR, &cpu, 0, 0, "kernel level: auto (the best this CPU has), avx512, avx2, scalar"},
        {"act", 0, "SYNTH_ACT", F_STR, &act, 0, 0,
         "activations of q8_0 layers: q8 (int8, the default; 1.6-2x faster) or f32 (exact; test ppl 0.012% lower)"},
        {"cache-type", 0, "SYNTH_CACHE_TYPE", F_CACHE, &c.cache_type, 0, 0,
         "cached values: f16 (default: half the memory and reads) or f32 (exact values; logits differ ~1e-3)"},
        {"log-level", 0, "SYNTH_LOG_LEVEL", F_LEVEL, &c.log_level, 0, 0, "error, warn, info (default), debug"},
    };
    int rc = apply_flags(flags, (int)(sizeof flags / sizeof flags[0]), argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    c.request_timeout_ms = timeout_ms;
    char err[160];
    if (model_set_cpu(cpu, err, sizeof err) != 0) {
        fprintf(stderr, "synth serve: --cpu: %s\n", err);
        return 2;
    }
    if (model_set_act(act, err, sizeof err) != 0) {
        fprintf(stderr, "synth serve: --act: %s\n", err);
        return 2;
    }
    if (threads > 0) model_set_threads(threads);   /* capped at the pool's maximum; the log says */
    signal(SIGPIPE, SIG_IGN);
    /* glibc gives every thread that allocates an arena of its own (up to 8
     * per core): the loop, the four libuv pool threads and the worker each
     * kept their own high-water mark, and the soak test (tests/soak.py) saw
     * the resident size climb in steps from 100 to 250 MiB over 10 minutes
     * with the same working set; with two arenas it stays flat (~100 MiB).
     * MALLOC_ARENA_MAX in the environment still wins. */
    if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
    return srv_run(&c);
}
