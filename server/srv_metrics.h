/*
 * srv_metrics.h - the server's Prometheus metrics: request counters by route
 * and status, gauges (queue depth, running batch, in-flight requests),
 * token totals, and histograms of time to first token, inter-token latency
 * and request latency. Updated from the loop and the worker thread, so every
 * update takes the metrics' own mutex (cheap next to a model step).
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Routes, also used by the HTTP layer to dispatch. */
enum srv_route {
    SRV_R_GENERATE = 0,
    SRV_R_COMPLETIONS,
    SRV_R_SCORE,
    SRV_R_TOKENIZE,
    SRV_R_DETOKENIZE,
    SRV_R_HEALTH,
    SRV_R_READY,
    SRV_R_METRICS,
    SRV_R_MODELS,
    SRV_R_TOKENIZER_INFO, /* GET /tokenizer_info (lm-evaluation-harness) */
    SRV_R_ATTENTION,    /* GET /v1/attention (srv_static.h) */
    SRV_R_STATIC,       /* the embedded playground page (srv_static.h) */
    SRV_R_OTHER,
    SRV_R_N
};
const char *srv_route_name(int route);

#define SRV_HIST_MAX_BUCKETS 16
typedef struct {
    int n;                                  /* finite bucket bounds */
    double le[SRV_HIST_MAX_BUCKETS];        /* upper bounds, seconds */
    uint64_t count[SRV_HIST_MAX_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t total;
} srv_hist;

#define SRV_N_STATUS 13
typedef struct {
    pthread_mutex_t mu;
    uint64_t requests[SRV_R_N][SRV_N_STATUS];
    int64_t queue_depth, running, inflight, max_batch_seen;
    uint64_t steps, step_seqs;
    uint64_t prompt_tokens, generated_tokens, scored_tokens, cancelled, timeouts, rejected_full;
    uint64_t prefix_reused_tokens, stream_wakeups;
    char cpu[16], cpu_best[16];   /* kernel level in force, best of this CPU */
    char act[8];                  /* activation mode of q8_0 layers (q8, f32) */
    int threads;
    srv_hist ttft, itl, latency;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int route, int status, double latency_s);
void srv_metrics_observe_ttft(srv_metrics *m, double s);
void srv_metrics_observe_itl(srv_metrics *m, double s);
/* stream_wakeups: times the worker woke the loop for a stream's new
 * tokens (one per token at --stream-interval 1; the end is not counted). */
void srv_metrics_tokens(srv_metrics *m, int64_t prompt, int64_t generated, int64_t scored, int64_t stream_wakeups);
/* n prompt or window tokens taken from the prefix cache, not recomputed. */
void srv_metrics_prefix_reused(srv_metrics *m, int64_t n);
/* The engine's kernel level, activation mode and thread count, for
 * synth_cpu_info and synth_threads (set once at start-up). */
void srv_metrics_engine(srv_metrics *m, const char *cpu, const char *cpu_best, const char *act, int threads);
void srv_metrics_gauges(srv_metrics *m, int64_t queue_depth, int64_t running);
/* One model_step over n_seq sequences. */
void srv_metrics_step(srv_metrics *m, int n_seq);
void srv_metrics_add(srv_metrics *m, int64_t d_inflight, int64_t d_cancelled, int64_t d_timeouts,
                     int64_t d_rejected);
/* Prometheus text exposition (version 0.0.4); malloc'd, *len bytes. */
char *srv_metrics_render(srv_metrics *m, size_t *len);

#endif
