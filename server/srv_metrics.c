/* srv_metrics.c - Prometheus counters, gauges and histograms (see srv_metrics.h). */
#include "srv_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const route_names[SRV_R_N] = {
    "/generate", "/v1/completions", "/score", "/tokenize", "/detokenize",
    "/health", "/ready", "/metrics", "/v1/models", "/tokenizer_info", "/v1/attention", "static", "other"};

const char *srv_route_name(int route)
{
    return (route >= 0 && route < SRV_R_N) ? route_names[route] : "other";
}

/* The statuses the server sends; anything else lands in the last slot. */
static const int status_codes[SRV_N_STATUS] = {200, 304, 400, 401, 404, 405, 408, 413, 499, 500, 503, 504, 0};

static int status_slot(int status)
{
    for (int i = 0; i < SRV_N_STATUS - 1; i++)
        if (status_codes[i] == status) return i;
    return SRV_N_STATUS - 1;
}

static void hist_init(srv_hist *h, const double *le, int n)
{
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, (size_t)n * sizeof *le);
}

static void hist_observe(srv_hist *h, double v)
{
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    h->count[i]++;
    h->sum += v;
    h->total++;
}

void srv_metrics_init(srv_metrics *m)
{
    /* Bounds in seconds: TTFT and request latency span ms to a minute,
     * inter-token latency sub-ms to a second. */
    static const double lat[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double itl[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, lat, (int)(sizeof lat / sizeof lat[0]));
    hist_init(&m->latency, lat, (int)(sizeof lat / sizeof lat[0]));
    hist_init(&m->itl, itl, (int)(sizeof itl / sizeof itl[0]));
}

void srv_metrics_destroy(srv_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void srv_metrics_request(srv_metrics *m, int route, int status, double latency_s)
{
    if (route < 0 || route >= SRV_R_N) route = SRV_R_OTHER;
    pthread_mutex_lock(&m->mu);
    m->requests[route][status_slot(status)]++;
    hist_observe(&m->latency, latency_s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe_ttft(srv_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->ttft, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe_itl(srv_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->itl, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int64_t prompt, int64_t generated, int64_t scored, int64_t stream_wakeups)
{
    pthread_mutex_lock(&m->mu);
    m->stream_wakeups += (uint64_t)stream_wakeups;
    m->prompt_tokens += (uint64_t)prompt;
    m->generated_tokens += (uint64_t)generated;
    m->scored_tokens += (uint64_t)scored;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_prefix_reused(srv_metrics *m, int64_t n)
{
    pthread_mutex_lock(&m->mu);
    m->prefix_reused_tokens += (uint64_t)n;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_engine(srv_metrics *m, const char *cpu, const char *cpu_best, const char *act, int threads)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->act, sizeof m->act, "%s", act);
    snprintf(m->cpu, sizeof m->cpu, "%s", cpu);
    snprintf(m->cpu_best, sizeof m->cpu_best, "%s", cpu_best);
    m->threads = threads;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_gauges(srv_metrics *m, int64_t queue_depth, int64_t running)
{
    pthread_mutex_lock(&m->mu);
    m->queue_depth = queue_depth;
    m->running = running;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_step(srv_metrics *m, int n_seq)
{
    pthread_mutex_lock(&m->mu);
    m->steps++;
    m->step_seqs += (uint64_t)n_seq;
    if (n_seq > m->max_batch_seen) m->max_batch_seen = n_seq;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_add(srv_metrics *m, int64_t d_inflight, int64_t d_cancelled, int64_t d_timeouts,
                     int64_t d_rejected)
{
    pthread_mutex_lock(&m->mu);
    m->inflight += d_inflight;
    m->cancelled += (uint64_t)d_cancelled;
    m->timeouts += (uint64_t)d_timeouts;
    m->rejected_full += (uint64_t)d_rejected;
    pthread_mutex_unlock(&m->mu);
}

/* A growable text buffer; on allocation failure it stops growing and the
 * render returns NULL. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 256;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void render_hist(sbuf *b, const char *name, const char *help, const srv_hist *h)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->total);
    sb_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->total);
}

static void render_counter(sbuf *b, const char *name, const char *help, const char *type, double v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

char *srv_metrics_render(srv_metrics *m, size_t *len)
{
    sbuf b = {0};
    b.cap = 8192;
    b.p = malloc(b.cap);
    if (!b.p) return NULL;
    pthread_mutex_lock(&m->mu);
    sb_printf(&b, "# HELP synth_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE synth_requests_total counter\n");
    for (int r = 0; r < SRV_R_N; r++)
        for (int s = 0; s < SRV_N_STATUS; s++)
            if (m->requests[r][s]) {
                char st[16];
                if (status_codes[s]) snprintf(st, sizeof st, "%d", status_codes[s]);
                else snprintf(st, sizeof st, "other");
                sb_printf(&b, "synth_requests_total{route=\"%s\",status=\"%s\"} %llu\n", route_names[r], st,
                          (unsigned long long)m->requests[r][s]);
            }
    if (m->cpu[0])
        sb_printf(&b,
                  "# HELP synth_cpu_info The engine's kernel level (level), the best this CPU supports (best) and "
                  "the activations of q8_0 layers (act: q8 int8, or f32).\n"
                  "# TYPE synth_cpu_info gauge\nsynth_cpu_info{level=\"%s\",best=\"%s\",act=\"%s\"} 1\n",
                  m->cpu, m->cpu_best, m->act);
    render_counter(&b, "synth_threads", "Compute threads of the engine (and OpenBLAS).", "gauge", (double)m->threads);
    render_counter(&b, "synth_queue_depth", "Requests waiting for the inference worker.", "gauge",
                   (double)m->queue_depth);
    render_counter(&b, "synth_running_batch_size", "Sequences in the running batch.", "gauge",
                   (double)m->running);
    render_counter(&b, "synth_max_batch_size", "Largest batch of one decoding step so far.", "gauge",
                   (double)m->max_batch_seen);
    render_counter(&b, "synth_decode_steps_total", "Batched model steps run.", "counter", (double)m->steps);
    render_counter(&b, "synth_decode_step_sequences_total", "Sequences summed over all steps.", "counter",
                   (double)m->step_seqs);
    render_counter(&b, "synth_requests_in_flight", "HTTP requests being handled.", "gauge",
                   (double)m->inflight);
    render_counter(&b, "synth_prompt_tokens_total", "Prompt tokens prefilled.", "counter",
                   (double)m->prompt_tokens);
    render_counter(&b, "synth_generated_tokens_total", "Tokens generated.", "counter",
                   (double)m->generated_tokens);
    render_counter(&b, "synth_scored_tokens_total", "Tokens scored by /score.", "counter",
                   (double)m->scored_tokens);
    render_counter(&b, "synth_stream_wakeups_total",
                   "Times the worker woke the event loop to send a stream's new tokens (--stream-interval).",
                   "counter", (double)m->stream_wakeups);
    render_counter(&b, "synth_prefix_reused_tokens_total",
                   "Prompt and /score tokens copied from the prefix cache instead of computed.", "counter",
                   (double)m->prefix_reused_tokens);
    render_counter(&b, "synth_requests_cancelled_total",
                   "Requests whose client went away before the end (slot freed).", "counter",
                   (double)m->cancelled);
    render_counter(&b, "synth_requests_timed_out_total", "Requests past their deadline.", "counter",
                   (double)m->timeouts);
    render_counter(&b, "synth_requests_rejected_total", "Requests refused with 503 (queue full).",
                   "counter", (double)m->rejected_full);
    render_hist(&b, "synth_time_to_first_token_seconds", "Time from arrival to the first generated token.",
                &m->ttft);
    render_hist(&b, "synth_inter_token_latency_seconds", "Time between consecutive generated tokens.",
                &m->itl);
    render_hist(&b, "synth_request_duration_seconds", "Time from arrival to the end of the response.",
                &m->latency);
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
