/*
 * srv_core.h - state shared by the HTTP loop (srv_http.c) and the inference
 * worker (srv_worker.c) of `synth serve`.
 *
 * Threads:
 *   loop thread    libuv loop; libmicrohttpd in external-event mode (its epoll
 *                  fd watched by a uv_poll, its timeout by a uv_timer); owns
 *                  connections, responses, metrics rendering, signals.
 *   libuv pool     parses and tokenizes request bodies (uv_queue_work), so a
 *                  1 MiB body never stalls the loop (and /health).
 *   worker thread  the only user of the model: continuous batching of
 *                  /generate and /v1/completions with model_step, /score
 *                  windows with model_score.
 *
 * A request (srv_req) is reference counted under srv_server.mu: one ref for
 * the MHD connection (dropped by the request-completed callback), one while
 * in the pool, one while in the worker (dropped by the loop when the worker
 * reports it done). Only the loop thread drops the last ref, so uv handles
 * are always closed on the loop.
 *
 * Worker -> loop: the worker publishes outputs under mu, puts the request on
 * the notify list and calls uv_async_send; the loop resumes the suspended
 * connection. Loop -> worker: srv_worker_submit and the atomic cancel flag.
 */
#ifndef SRV_CORE_H
#define SRV_CORE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "eval.h"
#include "srv_log.h"
#include "model.h"
#include "sampler.h"
#include "srv_api.h"
#include "srv_metrics.h"

enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };

typedef struct {
    const char *model_path;
    const char *host;
    int port;                  /* 0: any free port (printed at startup) */
    int max_batch;             /* sequences decoded together */
    int max_queue;             /* requests waiting for the worker before 503 */
    size_t max_body;           /* bytes; larger bodies get 413 */
    const char *api_key;       /* NULL: no authentication */
    int64_t request_timeout_ms;/* default deadline, 0: none */
    int idle_timeout_s;        /* MHD connection timeout for slow/idle clients */
    double drain_timeout_s;
    int log_level;
    int max_connections;
    size_t max_header;         /* per-connection buffer: request line + headers (0: MHD's 32 KiB) */
    int step_tokens;           /* token budget of one model step: decode rows, prompt
                                  chunks and /score window chunks (decode rows always run) */
    int prefix_slots;          /* cache slots keeping computed prefixes for reuse (0: off) */
    model_cache_type cache_type; /* precision of the cached values (model.h) */
    int stream_interval;       /* a stream is woken every this many tokens (the first
                                  and the last at once); see srv_worker.c publish_token */
} srv_config;

/* A request answered before its body was used (srv_req.early). */
enum srv_early {
    SRV_EARLY_NONE = 0,
    SRV_EARLY_ANSWERED,   /* an error is queued; the body is ignored */
    SRV_EARLY_413,        /* a chunked body passed --max-body: the rest is counted and
                             dropped, 413 at its end (cut if it goes on past 16x) */
};

enum srv_finish {
    SRV_FIN_NONE = 0,
    SRV_FIN_LENGTH,
    SRV_FIN_STOP,
    SRV_FIN_EOS,
    SRV_FIN_CANCELLED,
    SRV_FIN_TIMEOUT,
    SRV_FIN_ERROR,
};

/* One text of a /score request, scored window by window. */
typedef struct {
    int32_t *s;               /* [eos, text tokens...], n_text + 1 */
    int64_t n_text;
    eval_window *win;
    int64_t n_win, next_win, done_win;
    int64_t cont_from;        /* SRV_SCORE_CONT: first counted target offset */
    double nll;
    int all_greedy;
    float *lp;                /* per text token, when token_logprobs */
    eval_result res;
} srv_score_item;

typedef struct srv_server srv_server;
typedef struct srv_worker srv_worker;
typedef struct srv_req srv_req;
typedef struct srv_watch srv_watch;

struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;  /* NULL once MHD reported the request complete */
    int refs;                     /* under srv->mu */
    int route;
    char method[8];
    char path[64];
    uint64_t id;
    uint64_t t_arrive;            /* uv_hrtime ns */
    srv_req *all_prev, *all_next; /* every live request (loop) */

    /* body (loop) */
    char *body;
    size_t body_len, body_cap;
    int early;                    /* enum srv_early */

    /* flow (loop) */
    int phase;
    int suspended;
    int gone;                     /* client disconnected */
    int status;                   /* HTTP status sent, for the log and metrics */
    srv_watch *watch;             /* disconnect watch while suspended */
    uv_work_t work;

    /* result of the pool stage or the worker: an error, or a response */
    int err_status;
    char err_type[32];
    char err_msg[256];
    char *resp_body;              /* prepared JSON (tokenize/detokenize) */
    size_t resp_len;

    /* parsed request */
    srv_gen_params gen;
    srv_score_params sc;
    int openai;

    /* generation (worker-owned while in the worker) */
    int32_t *hist;                /* prompt (with leading eos) then generated ids */
    int n_prompt;                 /* including the leading eos if any */
    int n_prompt_text;            /* prompt tokens from the text */
    int echo_eos;                 /* the prompt as given began with the end-of-text token (the
                                   * server's own, so not counted in n_prompt_text): echo shows it */
    int n_hist;
    int max_new;
    int top_n;                    /* OpenAI logprobs alternatives */
    int need_prompt_lp;
    float *prompt_lp;             /* [n_prompt_text] logprob of each prompt token */
    int32_t *prompt_top_id;       /* [n_prompt_text * top_n] */
    float *prompt_top_lp;
    sampler smp;
    int sampler_ready;
    int slot;
    int n_fed;                    /* prompt tokens in the cache (prefill goes in chunks) */
    int prefilled;                /* n_fed == n_prompt: decoding */
    uint64_t deadline;            /* ns, 0: none */
    atomic_int cancel;

    /* outputs published under srv->mu (elements < n_out are immutable) */
    int32_t *out_ids;             /* [max_new] */
    float *out_lp;
    size_t *out_safe;             /* text bytes safe to stream after each token */
    int32_t *out_top_id;          /* [max_new * top_n] */
    float *out_top_lp;
    int n_out;
    int n_woken;                  /* a stream's tokens the loop was woken for (--stream-interval):
                                     it sends no more than these until the end */
    char *text;                   /* generated bytes */
    size_t text_len, text_cap, safe_len;
    int n_shift;                  /* context shifts: the context filled and went on from its last half */
    int finish;
    int w_done;                   /* worker finished; its ref waits for the loop */
    int in_worker;
    int in_notify;
    srv_req *notify_next;
    srv_req *qnext;               /* worker queues */
    uint64_t t_admit, t_first, t_prev, t_end;

    /* score (worker-owned while in the worker) */
    srv_score_item *items;
    int n_items;
    int sc_failed;                /* a step with its windows failed */

    /* An OpenAI request with several prompts or n > 1: one kid per
     * (prompt, choice), each a whole generation the worker runs on its own
     * (batched with everything else). Kids are made by the pool stage, not
     * in the loop's request list, borrow the parent's parameters (its
     * prompts, stop strings, logit_bias) and are freed with the parent,
     * which holds one ref per kid and one more while kids are in the
     * worker; the parent answers when the last kid is done (srv_http.c). */
    srv_req **kids;
    int n_kids, kids_pending;
    srv_req *parent;
    int choice;                   /* a kid's index in choices[] */
    /* OpenAI echo + logprobs on a prompt longer than the context: the
     * prompt is scored like /score (one item, its sliding windows; its
     * token log-probs are the echo's, no top alternatives), then, with
     * max_tokens > 0, generation goes on from the prompt's last
     * model_context_keep tokens (prefill from hist[fed_from]) */
    int echo_windows;
    int fed_from;

    /* SSE output (loop) */
    int sse_tok;                  /* tokens already sent */
    size_t sse_text;              /* text bytes already sent */
    int sse_final;                /* final event formatted */
    int sse_echo_done;            /* OpenAI echo: prompt chunk sent */
    size_t sse_tok_bytes;         /* OpenAI text_offset of the next token */
    char *sse_buf;
    size_t sse_len, sse_off, sse_cap;
};

struct srv_server {
    srv_config cfg;
    model *m;
    const tok_t *tok;
    int n_vocab, n_ctx, eos;
    size_t max_token_bytes;       /* longest token, bounds the text buffer */
    uv_loop_t *loop;
    struct MHD_Daemon *d;
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer, drain_timer;
    uv_async_t async;
    uv_signal_t sigterm, sigint;
    srv_worker *worker;
    srv_metrics metrics;
    pthread_mutex_t mu;
    srv_req *notify_head;         /* under mu */
    /* Wake-up of the loop for request r, installed by the loop (srv_http.c)
     * before the worker starts; the worker calls it with mu held: r goes on
     * notify_head and the loop's uv_async fires. The worker knows nothing
     * else of the loop. */
    void (*notify_locked)(srv_server *s, srv_req *r);
    srv_req *all;                 /* loop */
    int64_t n_live;               /* live requests (loop) */
    int draining, stopping, exit_code;
    int n_conn;                   /* open connections (loop) */
    int rerun;                    /* run MHD again at once (loop) */
    uint64_t next_id;
    atomic_uint_fast64_t seed_ctr;
};

/* srv_worker.c */
int srv_worker_create(srv_server *s, srv_worker **out, char *err, size_t errlen);
/* Stop (cancelling everything still queued or running) and join. */
void srv_worker_free(srv_worker *w);
/* Enqueue a prepared generate or score request (takes a ref). -1: queue full. */
int srv_worker_submit(srv_worker *w, srv_req *r);
/* Wake the worker so it notices a cancel flag. */
void srv_worker_poke(srv_worker *w);

/* srv_http.c: run the server until drained; returns the exit code. */
/* The defaults of `synth serve` (model_path NULL: the caller names one). */
void srv_config_default(srv_config *cfg);
int srv_run(const srv_config *cfg);

#endif
