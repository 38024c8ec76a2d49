/*
 * srv_worker.c - the inference worker: one thread, the only user of the
 * model and its cache.
 *
 * Continuous batching with one token budget per step (cfg.step_tokens).
 * Every iteration (1) drops cancelled or expired work and frees its slots,
 * (2) admits queued requests into free slots, (3) builds ONE model step:
 *   - a decode row for every sequence that is generating (always, so a
 *     long prompt or a /score text never stalls the streams); a sequence
 *     whose context is full starts again from its last half (a context
 *     shift: n_ctx / 2 tokens from position 0, one logits row);
 *   - prompt chunks of newly admitted requests, first come first served;
 *   - chunks of /score windows, each window in a score slot of the cache
 *     (slots max_batch .. max_batch + SCORE_SLOTS - 1), scored in the step
 *     itself (model_step_scored: log-probs, no logits rows);
 * within the budget; when both prompts and /score windows wait, a quarter
 * of what the decode rows leave is kept for the windows so neither starves.
 * Each request has its own sampler (own seed), and the batch-invariant
 * cache makes a sequence's logits the same bits whatever shares the step
 * and however its prompt is cut into chunks: a request gets the same tokens
 * alone or batched, and /score the same numbers as `synth score`.
 *
 * Windows are taken strictly in order (request, text, window) and fed
 * greedily, so at most one window is part-fed between steps and windows
 * finish in order: a text's log-likelihood is summed in the same order as
 * eval_text sums it.
 *
 * Prefix cache: cfg.prefix_slots more slots keep computed prefixes (the
 * first window of each /score text, each prompt once prefilled); a new
 * window or prompt that starts the same way starts from a copy of the
 * longest kept one (model_cache_copy: the bits of recomputing it).
 */
#include "srv_core.h"

#include "gen.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Windows of /score being fed at once (each holds a cache slot). */
#define SCORE_SLOTS 16
/* Least prompt/score tokens per step, even when decode rows fill the budget. */
#define MIN_CHUNK 16
/* Prefix cache: computed prefixes kept in cfg.prefix_slots cache slots of
 * their own (after the score slots), least recently used replaced; prefixes
 * shorter than PREFIX_MIN tokens are neither kept nor reused. */
#define PREFIX_MIN 16

typedef struct {
    int32_t *tok;                /* [n_ctx] the tokens whose cache the slot holds */
    int len;                     /* 0: empty */
    uint64_t used;               /* LRU clock */
} prefix_slot;

/* A /score window in a score slot. */
typedef struct {
    srv_req *r;                  /* NULL: slot free */
    srv_score_item *it;
    const eval_window *ew;
    int fed;                     /* window tokens in the cache */
    int chunk;                   /* tokens appended in the current step */
} score_slot;

struct srv_worker {
    srv_server *s;
    pthread_t th;
    int started;
    pthread_cond_t cv;           /* under s->mu */
    int stop;
    srv_req *gq_head, *gq_tail;  /* generate queue */
    srv_req *sq_head, *sq_tail;  /* score queue */
    int n_queued;
    model_cache *cache;          /* max_batch generation slots + SCORE_SLOTS */
    int max_batch;
    srv_req **run;               /* [max_batch], by slot */
    int n_run;
    srv_req **pf;                /* [max_batch] admitted, prompt not all fed, FIFO */
    int n_pf;
    srv_req *score_cur;          /* score requests being worked on, FIFO */
    score_slot ss[SCORE_SLOTS];
    int ss_order[SCORE_SLOTS];   /* busy score slots in window order */
    int n_ss;
    float *ss_lp;                /* [SCORE_SLOTS, n_ctx] log-probs of the window tokens */
    uint8_t *ss_greedy;          /* [SCORE_SLOTS, n_ctx] */
    /* step scratch, [max_batch + SCORE_SLOTS] */
    model_seq *seqs;
    model_target *tg;
    srv_req **seq_req;
    int *seq_chunk;              /* prompt tokens fed by this step (0: decode row) */
    const float **smp_row;       /* sampling: logits row, token, log-prob */
    int32_t *smp_id;
    float *smp_lp;
    float *logits;
    size_t logits_cap;
    prefix_slot *px;             /* [n_px] */
    int n_px;
    uint64_t px_clock;
};

static void queue_push(srv_req **head, srv_req **tail, srv_req *r)
{
    r->qnext = NULL;
    if (*tail) (*tail)->qnext = r;
    else *head = r;
    *tail = r;
}

static srv_req *queue_pop(srv_req **head, srv_req **tail)
{
    srv_req *r = *head;
    if (r) {
        *head = r->qnext;
        if (!*head) *tail = NULL;
        r->qnext = NULL;
    }
    return r;
}

int srv_worker_submit(srv_worker *w, srv_req *r)
{
    srv_server *s = w->s;
    pthread_mutex_lock(&s->mu);
    /* Requests wait here until the worker's next iteration even when slots
     * are free, so the bound is on those beyond the free slots. */
    int free_slots = w->max_batch - w->n_run;
    if (w->stop || w->n_queued >= s->cfg.max_queue + free_slots) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    r->refs++;
    r->in_worker = 1;
    if (r->route == SRV_R_SCORE || r->echo_windows) queue_push(&w->sq_head, &w->sq_tail, r);
    else queue_push(&w->gq_head, &w->gq_tail, r);
    w->n_queued++;
    srv_metrics_gauges(&s->metrics, w->n_queued, w->n_run);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void srv_worker_poke(srv_worker *w)
{
    pthread_mutex_lock(&w->s->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->s->mu);
}

/* Hand a request back to the loop: publish the end under mu. */
static void finish_req(srv_worker *w, srv_req *r, int reason, int err_status, const char *type,
                       const char *msg)
{
    srv_server *s = w->s;
    r->t_end = srv_now_ns();
    if (reason == SRV_FIN_CANCELLED) srv_metrics_add(&s->metrics, 0, 1, 0, 0);
    if (reason == SRV_FIN_TIMEOUT) srv_metrics_add(&s->metrics, 0, 0, 1, 0);
    pthread_mutex_lock(&s->mu);
    r->finish = reason;
    if (err_status) {
        r->err_status = err_status;
        snprintf(r->err_type, sizeof r->err_type, "%s", type);
        snprintf(r->err_msg, sizeof r->err_msg, "%s", msg);
    }
    r->w_done = 1;
    s->notify_locked(s, r);
    pthread_mutex_unlock(&s->mu);
}

static void pf_remove(srv_worker *w, srv_req *r)
{
    for (int i = 0; i < w->n_pf; i++)
        if (w->pf[i] == r) {
            memmove(w->pf + i, w->pf + i + 1, sizeof *w->pf * (size_t)(w->n_pf - i - 1));
            w->n_pf--;
            return;
        }
}

static void release_slot(srv_worker *w, srv_req *r)
{
    pf_remove(w, r);
    if (r->slot >= 0) {
        model_cache_reset(w->cache, r->slot);
        w->run[r->slot] = NULL;
        w->n_run--;
        r->slot = -1;
    }
}

/* Free the score slots holding windows of r (all when r is NULL). */
static void release_score_slots(srv_worker *w, const srv_req *r)
{
    int k = 0;
    for (int i = 0; i < w->n_ss; i++) {
        int j = w->ss_order[i];
        if (!r || w->ss[j].r == r) {
            model_cache_reset(w->cache, w->max_batch + j);
            w->ss[j].r = NULL;
        } else {
            w->ss_order[k++] = j;
        }
    }
    w->n_ss = k;
}

static int expired(const srv_req *r, uint64_t now)
{
    return r->deadline && now > r->deadline;
}

/* Drop running sequences whose client left or whose deadline passed, and
 * queued requests in the same state (they never get a slot). */
static void reap(srv_worker *w, uint64_t now)
{
    for (int i = 0; i < w->max_batch; i++) {
        srv_req *r = w->run[i];
        if (!r) continue;
        if (atomic_load(&r->cancel)) {
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_CANCELLED, 0, NULL, NULL);
        } else if (expired(r, now)) {
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_TIMEOUT, 504, "timeout_error", "request deadline exceeded");
        }
    }
    srv_req **pp = &w->score_cur;
    while (*pp) {
        srv_req *r = *pp;
        int c = atomic_load(&r->cancel), t = expired(r, now);
        if (c || t) {
            *pp = r->qnext;
            r->qnext = NULL;
            release_score_slots(w, r);
            if (c) finish_req(w, r, SRV_FIN_CANCELLED, 0, NULL, NULL);
            else finish_req(w, r, SRV_FIN_TIMEOUT, 504, "timeout_error", "request deadline exceeded");
        } else {
            pp = &r->qnext;
        }
    }
}

/* Under mu: move queued requests into free slots / the score list; the
 * cancelled or expired ones are collected in *dead to finish unlocked. */
static void admit_locked(srv_worker *w, uint64_t now, srv_req **dead)
{
    while (w->gq_head && w->n_run < w->max_batch) {
        srv_req *r = queue_pop(&w->gq_head, &w->gq_tail);
        w->n_queued--;
        if (atomic_load(&r->cancel) || expired(r, now)) {
            r->qnext = *dead;
            *dead = r;
            continue;
        }
        int slot = 0;
        while (w->run[slot]) slot++;
        w->run[slot] = r;
        r->slot = slot;
        r->n_fed = r->fed_from;   /* 0 but for a windowed echo's tail */
        r->prefilled = 0;
        r->t_admit = now;
        w->n_run++;
        w->pf[w->n_pf++] = r;
    }
    srv_req **tail = &w->score_cur;
    while (*tail) tail = &(*tail)->qnext;
    while (w->sq_head) {
        srv_req *r = queue_pop(&w->sq_head, &w->sq_tail);
        w->n_queued--;
        r->t_admit = now;
        *tail = r;
        tail = &r->qnext;
    }
}

/* ---- generation ---- */

/* The k most likely tokens of a row, as log-probabilities (k <= 5). */
static void top_n(const float *row, int n, int k, int32_t *ids, float *lps)
{
    for (int j = 0; j < k; j++) {
        ids[j] = -1;
        lps[j] = -INFINITY;
    }
    for (int i = 0; i < n; i++) {
        float v = row[i];
        if (k == 0 || !(v > lps[k - 1])) continue;
        int j = k - 1;
        while (j > 0 && v > lps[j - 1]) {
            lps[j] = lps[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        lps[j] = v;
        ids[j] = i;
    }
    /* the engine's one log-softmax: the same bits as the token's own
     * log-prob (sampler_logprob) and /score, so a greedy token's log-prob
     * equals the best alternative's exactly */
    float mx, z = ops_log_softmax_z(row, n, &mx, NULL);
    for (int j = 0; j < k; j++)
        if (ids[j] >= 0) lps[j] = ops_log_prob(lps[j], mx, z);
}

static int reserve_logits(srv_worker *w, size_t rows)
{
    size_t need = rows * (size_t)w->s->n_vocab;
    if (need <= w->logits_cap) return 0;
    float *p = realloc(w->logits, need * sizeof *p);
    if (!p) return -1;
    w->logits = p;
    w->logits_cap = need;
    return 0;
}

/* Prompt logprobs (OpenAI echo) from the rows of one prompt chunk: the row
 * of position p (from .. from+n-1) predicts the token at p + 1; the first
 * prompt token has no context when there is no leading eos. */
static void prompt_logprobs(srv_worker *w, srv_req *r, const float *rows, int from, int n)
{
    int V = w->s->n_vocab, lead = r->n_prompt - r->n_prompt_text;
    if (from == 0 && lead == 0 && r->n_prompt_text > 0) r->prompt_lp[0] = NAN; /* like OpenAI's null */
    for (int p = from; p < from + n; p++) {
        int j = p + 1 - lead;           /* text index of the predicted token */
        if (p + 1 >= r->n_prompt || j < 0) continue;
        const float *row = rows + (size_t)(p - from) * V;
        r->prompt_lp[j] = sampler_logprob(row, V, r->hist[p + 1]);
        if (r->top_n > 0)
            top_n(row, V, r->top_n, r->prompt_top_id + (size_t)j * r->top_n, r->prompt_top_lp + (size_t)j * r->top_n);
    }
}

/* ---- prefix cache ----
 * One context with several continuations (lm-evaluation-harness's
 * multiple-choice tasks), or one system prompt before many questions, is
 * computed once: a new /score window or prompt starts from a copy of the
 * longest kept prefix it shares (model_cache_copy), which gives the very
 * bits of recomputing it (the steps are chunking-invariant). */

static int px_slot(const srv_worker *w, int i)
{
    return w->max_batch + SCORE_SLOTS + i;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int n = 0;
    while (n < na && n < nb && a[n] == b[n]) n++;
    return n;
}

/* Start cache slot `slot` (empty) from the longest kept prefix of tok[0..n),
 * at most limit tokens; returns the tokens now in the slot (0: none). */
static int prefix_reuse(srv_worker *w, int slot, const int32_t *tok, int n, int limit)
{
    int best = -1, blen = 0;
    for (int i = 0; i < w->n_px; i++) {
        int l = common_prefix(w->px[i].tok, w->px[i].len, tok, n);
        l = l < limit ? l : limit;
        if (l > blen) best = i, blen = l;
    }
    if (best < 0 || blen < PREFIX_MIN || model_cache_copy(w->cache, slot, px_slot(w, best), blen) != 0) return 0;
    w->px[best].used = ++w->px_clock;
    srv_metrics_prefix_reused(&w->s->metrics, blen);
    return blen;
}

/* Keep the first n tokens of slot `slot` (their cache is complete) as a
 * prefix, unless a kept one already covers them; a kept prefix of these
 * tokens is replaced by the longer one, else the least recently used. */
static void prefix_keep(srv_worker *w, int slot, const int32_t *tok, int n)
{
    if (n < PREFIX_MIN || w->n_px == 0) return;
    int victim = 0;
    for (int i = 0; i < w->n_px; i++) {
        prefix_slot *p = &w->px[i];
        int l = common_prefix(p->tok, p->len, tok, n);
        if (l == n) { /* already kept (maybe within a longer one) */
            p->used = ++w->px_clock;
            return;
        }
        if (p->len > 0 && l == p->len) { /* a shorter prefix of these tokens: extend it */
            victim = i;
            break;
        }
        if (w->px[i].used < w->px[victim].used) victim = i;
    }
    prefix_slot *p = &w->px[victim];
    if (model_cache_copy(w->cache, px_slot(w, victim), slot, n) != 0) return;
    memcpy(p->tok, tok, sizeof *tok * (size_t)n);
    p->len = n;
    p->used = ++w->px_clock;
}

/* 1 when a window being fed shares a keepable prefix with tok[0..n) that
 * the prefix cache does not hold yet: the new window waits a step for it. */
static int prefix_pending(const srv_worker *w, const int32_t *tok, int n, int limit)
{
    int kept = 0;
    for (int i = 0; i < w->n_px; i++) {
        int l = common_prefix(w->px[i].tok, w->px[i].len, tok, n);
        kept = l > kept ? l : kept;
    }
    for (int i = 0; i < w->n_ss; i++) {
        const score_slot *sl = &w->ss[w->ss_order[i]];
        int l = common_prefix(sl->it->s + sl->ew->start, sl->ew->len, tok, n);
        l = l < limit ? l : limit;
        if (l >= PREFIX_MIN && l > kept) return 1;
    }
    return 0;
}

/* Take the next window in order, if any: (request, text, window). */
static int next_window(srv_worker *w, srv_req **rp, srv_score_item **itp)
{
    for (srv_req *r = w->score_cur; r; r = r->qnext)
        for (int i = 0; i < r->n_items; i++)
            if (r->items[i].next_win < r->items[i].n_win) {
                *rp = r;
                *itp = &r->items[i];
                return 1;
            }
    return 0;
}

/* Add /score window chunks to the step, up to budget tokens: the part-fed
 * window first, then new windows in order (each in a free score slot).
 * Returns the tokens added. */
static int plan_score(srv_worker *w, int budget, int *nseq)
{
    int used = 0;
    for (int i = 0;; i++) {
        if (i == w->n_ss) {
            srv_req *r;
            srv_score_item *it;
            if (w->n_ss == SCORE_SLOTS || used >= budget || !next_window(w, &r, &it)) break;
            const eval_window *ew = &it->win[it->next_win];
            const int32_t *tok = it->s + ew->start;
            /* rows before first_scored are not needed: up to there a kept
             * prefix can stand in for them */
            if (prefix_pending(w, tok, ew->len, ew->first_scored)) break;
            int j = 0;
            while (w->ss[j].r) j++;
            it->next_win++;
            w->ss[j] = (score_slot){r, it, ew, 0, 0};
            w->ss[j].fed = prefix_reuse(w, w->max_batch + j, tok, ew->len, ew->first_scored);
            w->ss_order[w->n_ss++] = j;
        }
        score_slot *sl = &w->ss[w->ss_order[i]];
        int take = sl->ew->len - sl->fed;
        if (take > budget - used) take = budget - used;
        if (take <= 0) break;
        const int32_t *in = sl->it->s + sl->ew->start + sl->fed;
        int slot = w->max_batch + w->ss_order[i];
        size_t o = (size_t)w->ss_order[i] * (size_t)w->s->n_ctx + (size_t)sl->fed;
        w->seqs[*nseq] = (model_seq){slot, take, in, 0};
        w->tg[*nseq] = (model_target){in + 1, w->ss_lp + o, w->ss_greedy + o};
        w->seq_req[*nseq] = NULL;
        (*nseq)++;
        sl->chunk = take;
        used += take;
    }
    return used;
}

/* After the step: fold the fed chunks into their texts in window order,
 * free the slots of finished windows, finish the requests whose every
 * window is done (or every request with a window in the step, on error). */
static void finish_score(srv_worker *w, int rc)
{
    srv_server *s = w->s;
    int64_t n_tok = 0;
    int k = 0, n = w->n_ss;
    for (int i = 0; i < n; i++) {
        int j = w->ss_order[i];
        score_slot *sl = &w->ss[j];
        if (sl->chunk == 0) {
            w->ss_order[k++] = j;
            continue;
        }
        srv_score_item *it = sl->it;
        const eval_window *ew = sl->ew;
        const float *lp = w->ss_lp + (size_t)j * (size_t)s->n_ctx;
        const uint8_t *gr = w->ss_greedy + (size_t)j * (size_t)s->n_ctx;
        int from = sl->fed > ew->first_scored ? sl->fed : ew->first_scored;
        for (int o = from; rc == 0 && o < sl->fed + sl->chunk; o++) {
            /* target s[start + 1 + o] is text token start + o */
            int64_t t = ew->start + o;
            it->nll -= lp[o];
            if (it->lp) it->lp[t] = lp[o];
            if (o >= it->cont_from && !gr[o]) it->all_greedy = 0;
        }
        n_tok += sl->chunk;
        sl->fed += sl->chunk;
        sl->chunk = 0;
        if (rc != 0) {
            sl->r->sc_failed = 1;
        } else if (sl->fed == ew->len) {
            it->done_win++;
            if (ew->start == 0) prefix_keep(w, w->max_batch + j, it->s, ew->len);
        } else {
            w->ss_order[k++] = j;
            continue;
        }
        model_cache_reset(w->cache, w->max_batch + j);
        sl->r = NULL;
    }
    w->n_ss = k;
    srv_metrics_tokens(&s->metrics, 0, 0, rc == 0 ? n_tok : 0, 0);
    srv_req **pp = &w->score_cur;
    while (*pp) {
        srv_req *r = *pp;
        int done = 1;
        for (int i = 0; i < r->n_items; i++) done &= r->items[i].done_win == r->items[i].n_win;
        if (!done && !r->sc_failed) {
            pp = &r->qnext;
            continue;
        }
        *pp = r->qnext;
        r->qnext = NULL;
        release_score_slots(w, r);
        for (int i = 0; i < r->n_items; i++) {
            srv_score_item *it = &r->items[i];
            it->res.nll = it->nll;
            eval_finish(&it->res);
        }
        if (r->sc_failed) {
            char msg[128];
            snprintf(msg, sizeof msg, "model_step: %s", model_strerror(rc));
            finish_req(w, r, SRV_FIN_ERROR, 500, "server_error", msg);
        } else if (r->echo_windows && r->max_new > 0) {
            /* the prompt is scored: now its tokens (generation queue) */
            pthread_mutex_lock(&s->mu);
            queue_push(&w->gq_head, &w->gq_tail, r);
            w->n_queued++;
            pthread_mutex_unlock(&s->mu);
        } else {
            finish_req(w, r, SRV_FIN_LENGTH, 0, NULL, NULL);
        }
    }
}

/* The sampling of one step, spread over the engine's threads: each task
 * picks one sequence's next token from its logits row (its own sampler, so
 * the result does not depend on the thread) and its top log-probs; the
 * worker thread then publishes the tokens in order. */
typedef struct {
    srv_req **req;               /* [n] */
    const float **row;           /* [n] */
    int32_t *id;                 /* [n] out: token, -1 on allocation failure */
    float *lp;                   /* [n] out */
    int V;
} sample_batch;

static void sample_task(void *ctx, int k, int thread)
{
    (void)thread;
    sample_batch *b = ctx;
    srv_req *r = b->req[k];
    int i = r->n_out;
    if (r->top_n > 0)
        top_n(b->row[k], b->V, r->top_n, r->out_top_id + (size_t)i * r->top_n,
              r->out_top_lp + (size_t)i * r->top_n);
    b->id[k] = sampler_sample(&r->smp, b->row[k], b->V, r->hist, r->n_hist, &b->lp[k]);
}

/* Publish a sampled token of a generating sequence and finish the request
 * when it ends. Returns 1 when a token was added; *woken counts the wake-ups
 * of the loop for a stream.
 *
 * A stream's loop-side cost is per wake-up, not per token: the loop resumes
 * the connection, formats the events and writes them in one send, and the
 * client wakes once. --stream-interval k wakes the loop at the first token
 * (time to first token unchanged), then every k tokens, and at the end
 * (finish_req); the events are the same, sent k at a time. */
static int64_t publish_token(srv_worker *w, srv_req *r, int id, float lp, uint64_t now, int64_t *woken)
{
    srv_server *s = w->s;
    if (id < 0) {
        release_slot(w, r);
        finish_req(w, r, SRV_FIN_ERROR, 500, "server_error", "sampler: out of memory");
        return 0;
    }
    int i = r->n_out;
    r->hist[r->n_hist++] = id;
    r->out_ids[i] = id;
    r->out_lp[i] = lp;
    /* the text grows past what the loop thread may read (r->text_len)
     * until it is published below */
    size_t text_len = r->text_len, safe = r->safe_len;
    const gen_stops stops = {(const char *const *)r->gen.stop, r->gen.stop_len, r->gen.n_stop};
    int stopped = gen_text_append(s->tok, id, r->text, r->text_cap, &text_len, &safe, &stops);
    r->out_safe[i] = safe;
    if (i == 0) {
        r->t_first = now;
        srv_metrics_observe_ttft(&s->metrics, (double)(now - r->t_arrive) / 1e9);
    } else {
        srv_metrics_observe_itl(&s->metrics, (double)(now - r->t_prev) / 1e9);
    }
    r->t_prev = now;
    static const int fin[] = {[GEN_GOING] = SRV_FIN_NONE, [GEN_STOP] = SRV_FIN_STOP, [GEN_EOS] = SRV_FIN_EOS,
                              [GEN_LENGTH] = SRV_FIN_LENGTH};
    int reason = fin[gen_finish_of(s->tok, id, stopped, i + 1, r->max_new)];
    pthread_mutex_lock(&s->mu);
    r->n_out = i + 1;
    r->text_len = text_len;
    r->safe_len = safe;
    /* n_woken also bounds what the loop sends (sse_reader), so a stream
     * goes out in at most one write per wake-up however the loop and the
     * worker interleave */
    if (r->gen.stream && !reason && (i == 0 || i + 1 - r->n_woken >= s->cfg.stream_interval)) {
        r->n_woken = i + 1;
        s->notify_locked(s, r);
        ++*woken;
    }
    pthread_mutex_unlock(&s->mu);
    if (reason) {
        release_slot(w, r);
        finish_req(w, r, reason, 0, NULL, NULL);
    }
    return 1;
}

/* Build and run one model step (see the top of the file), then sample,
 * stream and finish what it completed. */
static void step(srv_worker *w)
{
    srv_server *s = w->s;
    const int V = s->n_vocab, budget = s->cfg.step_tokens > 0 ? s->cfg.step_tokens : 1;
    int nseq = 0;
    size_t rows = 0;
    /* decode rows */
    for (int i = 0; i < w->max_batch; i++) {
        srv_req *r = w->run[i];
        if (!r || !r->prefilled) continue;
        /* a full context goes on from its last half (model.h): one row
         * of logits, like a decode row; the step holds n_ctx / 2 more
         * tokens this once */
        r->n_shift += model_decode_seq(s->m, w->cache, r->slot, r->hist, r->n_hist, &w->seqs[nseq]);
        w->tg[nseq] = (model_target){NULL, NULL, NULL};
        w->seq_req[nseq] = r;
        w->seq_chunk[nseq++] = 0;
        rows++;
    }
    int avail = budget - nseq < MIN_CHUNK ? MIN_CHUNK : budget - nseq;
    int want_score = w->n_ss > 0 || (w->score_cur && w->n_ss < SCORE_SLOTS);
    int keep = want_score && w->n_pf > 0 ? (avail + 3) / 4 : 0;
    /* prompt chunks, first come first served */
    int pre = avail - keep;
    for (int i = 0; i < w->n_pf && pre > 0; i++) {
        srv_req *r = w->pf[i];
        /* a kept prefix stands in for the prompt's first tokens (not the
         * last: its logits are needed; none with prompt log-probs) */
        if (r->n_fed == 0 && !r->need_prompt_lp)
            r->n_fed = prefix_reuse(w, r->slot, r->hist, r->n_prompt, r->n_prompt - 1);
        int take = r->n_prompt - r->n_fed < pre ? r->n_prompt - r->n_fed : pre;
        w->seqs[nseq] = (model_seq){r->slot, take, r->hist + r->n_fed, r->need_prompt_lp};
        w->tg[nseq] = (model_target){NULL, NULL, NULL};
        w->seq_req[nseq] = r;
        w->seq_chunk[nseq++] = take;
        rows += r->need_prompt_lp ? (size_t)take : 1;
        pre -= take;
    }
    int n_gen_seq = nseq;
    /* /score window chunks in what is left */
    if (want_score) plan_score(w, keep + pre, &nseq);
    if (nseq == 0) return;
    int rc = reserve_logits(w, rows) ? MODEL_ENOMEM
                                     : model_step_scored(s->m, w->cache, nseq, w->seqs, w->tg, w->logits);
    if (n_gen_seq < nseq) finish_score(w, rc);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "model_step: %s", model_strerror(rc));
        srv_log(s, SRV_LOG_ERROR, "%s (batch of %d)", msg, nseq);
        for (int k = 0; k < n_gen_seq; k++) {
            release_slot(w, w->seq_req[k]);
            finish_req(w, w->seq_req[k], SRV_FIN_ERROR, 500, "server_error", msg);
        }
        return;
    }
    srv_metrics_step(&s->metrics, nseq);
    int64_t n_gen = 0, n_prefill = 0, n_wakes = 0;
    int n_sample = 0;
    size_t off = 0;
    for (int k = 0; k < n_gen_seq; k++) {
        srv_req *r = w->seq_req[k];
        int chunk = w->seq_chunk[k];
        size_t nrows = w->seqs[k].logits_all ? (size_t)w->seqs[k].n_tokens : 1;
        const float *row = w->logits + (off + nrows - 1) * (size_t)V;
        if (chunk > 0) {
            int lead = r->n_prompt - r->n_prompt_text;
            n_prefill += chunk - (r->n_fed == 0 && lead > 0 ? lead : 0);
            if (r->need_prompt_lp) prompt_logprobs(w, r, w->logits + off * (size_t)V, r->n_fed, chunk);
            r->n_fed += chunk;
            if (r->n_fed == r->n_prompt) {
                pf_remove(w, r);
                r->prefilled = 1;
                prefix_keep(w, r->slot, r->hist, r->n_prompt);
            }
        }
        off += nrows;
        if (!r->prefilled) continue;
        if (r->n_out >= r->max_new) {   /* max_tokens 0 (echo only) */
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_LENGTH, 0, NULL, NULL);
            continue;
        }
        w->seq_req[n_sample] = r;       /* k >= n_sample: entry k was read */
        w->smp_row[n_sample++] = row;
    }
    sample_batch sb = {w->seq_req, w->smp_row, w->smp_id, w->smp_lp, V};
    ops_parallel_for(n_sample, sample_task, &sb);
    uint64_t now = srv_now_ns();
    for (int k = 0; k < n_sample; k++)
        n_gen += publish_token(w, w->seq_req[k], w->smp_id[k], w->smp_lp[k], now, &n_wakes);
    srv_metrics_tokens(&s->metrics, n_prefill, n_gen, 0, n_wakes);
}

static void *worker_main(void *arg)
{
    srv_worker *w = arg;
    srv_server *s = w->s;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!w->stop && !w->gq_head && !w->sq_head && w->n_run == 0 && !w->score_cur)
            pthread_cond_wait(&w->cv, &s->mu);
        if (w->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        uint64_t now = srv_now_ns();
        srv_req *dead = NULL;
        admit_locked(w, now, &dead);
        pthread_mutex_unlock(&s->mu);
        while (dead) {
            srv_req *r = dead;
            dead = r->qnext;
            r->qnext = NULL;
            if (atomic_load(&r->cancel)) finish_req(w, r, SRV_FIN_CANCELLED, 0, NULL, NULL);
            else finish_req(w, r, SRV_FIN_TIMEOUT, 504, "timeout_error", "request deadline exceeded");
        }
        reap(w, now);
        step(w);
        reap(w, srv_now_ns());
        pthread_mutex_lock(&s->mu);
        srv_metrics_gauges(&s->metrics, w->n_queued, w->n_run);
        pthread_mutex_unlock(&s->mu);
    }
    /* Stopping: everything left is cancelled (the loop answers or drops it). */
    for (int i = 0; i < w->max_batch; i++)
        if (w->run[i]) {
            srv_req *r = w->run[i];
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_CANCELLED, 503, "unavailable_error", "server shutting down");
        }
    release_score_slots(w, NULL);
    while (w->score_cur) {
        srv_req *r = w->score_cur;
        w->score_cur = r->qnext;
        finish_req(w, r, SRV_FIN_CANCELLED, 503, "unavailable_error", "server shutting down");
    }
    pthread_mutex_lock(&s->mu);
    srv_req *rest[2] = {w->gq_head, w->sq_head};
    w->gq_head = w->gq_tail = w->sq_head = w->sq_tail = NULL;
    w->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    for (int q = 0; q < 2; q++)
        while (rest[q]) {
            srv_req *r = rest[q];
            rest[q] = r->qnext;
            finish_req(w, r, SRV_FIN_CANCELLED, 503, "unavailable_error", "server shutting down");
        }
    return NULL;
}

int srv_worker_create(srv_server *s, srv_worker **out, char *err, size_t errlen)
{
    *out = NULL;
    srv_worker *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->s = s;
    w->max_batch = s->cfg.max_batch;
    w->n_px = s->cfg.prefix_slots > 0 ? s->cfg.prefix_slots : 0;
    pthread_cond_init(&w->cv, NULL);
    const int n_slots = w->max_batch + SCORE_SLOTS + w->n_px;
    w->cache = model_cache_create_typed(s->m, n_slots, s->cfg.cache_type);
    if (!w->cache) {
        snprintf(err, errlen, "srv_worker_create: cannot allocate a cache of %d slots", n_slots);
        goto fail;
    }
    if (w->n_px && !(w->px = calloc((size_t)w->n_px, sizeof *w->px))) goto oom;
    for (int i = 0; i < w->n_px; i++)
        if (!(w->px[i].tok = malloc(sizeof *w->px[i].tok * (size_t)s->n_ctx))) goto oom;
    size_t nb = (size_t)w->max_batch, ns = nb + SCORE_SLOTS, nl = (size_t)SCORE_SLOTS * (size_t)s->n_ctx;
    w->run = calloc(nb, sizeof *w->run);
    w->pf = calloc(nb, sizeof *w->pf);
    w->seqs = calloc(ns, sizeof *w->seqs);
    w->tg = calloc(ns, sizeof *w->tg);
    w->seq_req = calloc(ns, sizeof *w->seq_req);
    w->seq_chunk = calloc(ns, sizeof *w->seq_chunk);
    w->ss_lp = calloc(nl, sizeof *w->ss_lp);
    w->ss_greedy = calloc(nl, sizeof *w->ss_greedy);
    w->smp_row = calloc(nb, sizeof *w->smp_row);
    w->smp_id = calloc(nb, sizeof *w->smp_id);
    w->smp_lp = calloc(nb, sizeof *w->smp_lp);
    if (!w->run || !w->pf || !w->seqs || !w->tg || !w->seq_req || !w->seq_chunk || !w->ss_lp || !w->ss_greedy ||
        !w->smp_row || !w->smp_id || !w->smp_lp)
        goto oom;
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
        snprintf(err, errlen, "srv_worker_create: cannot start the worker thread");
        goto fail;
    }
    w->started = 1;
    *out = w;
    return 0;
oom:
    snprintf(err, errlen, "srv_worker_create: out of memory");
fail:
    srv_worker_free(w);
    return -1;
}

void srv_worker_free(srv_worker *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->s->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->s->mu);
        pthread_join(w->th, NULL);
    }
    model_cache_free(w->cache);
    pthread_cond_destroy(&w->cv);
    free(w->run);
    free(w->pf);
    free(w->seqs);
    free(w->tg);
    free(w->seq_req);
    free(w->seq_chunk);
    free(w->ss_lp);
    free(w->ss_greedy);
    free(w->smp_row);
    free(w->smp_id);
    free(w->smp_lp);
    for (int i = 0; w->px && i < w->n_px; i++) free(w->px[i].tok);
    free(w->px);
    free(w->logits);
    free(w);
}
