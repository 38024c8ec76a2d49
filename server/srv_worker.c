/*
 * srv_worker.c - the inference worker: one thread, the only user of the
 * model and its cache.
 *
 * Continuous batching: every iteration (1) drops cancelled or expired
 * sequences and frees their slots, (2) admits queued requests into free
 * slots (their whole prompts are prefilled in the coming step), (3) runs one
 * model_score call over pending /score windows (bounded by a token budget),
 * (4) runs one model_step over all running sequences: new ones append their
 * prompt, the others their last sampled token. Each request has its own
 * sampler (own seed), and model_step's result for a sequence does not
 * depend on the batch, so a request gets the same tokens alone or batched.
 */
#include "srv_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srv_worker {
    srv_server *s;
    pthread_t th;
    int started;
    pthread_cond_t cv;           /* under s->mu */
    int stop;
    srv_req *gq_head, *gq_tail;  /* generate queue */
    srv_req *sq_head, *sq_tail;  /* score queue */
    int n_queued;
    model_cache *cache;
    int max_batch;
    srv_req **run;               /* [max_batch], by slot */
    int n_run;
    srv_req *score_cur;          /* score requests being worked on, FIFO */
    /* step scratch */
    model_seq *seqs;
    srv_req **seq_req;
    float *logits;
    size_t logits_cap;
    float *tmp_row;              /* n_vocab, for top-n before sampling */
    /* score scratch */
    const int32_t **sc_tok, **sc_tgt;
    int *sc_len;
    srv_score_item **sc_item;
    int64_t *sc_win;
    float *sc_lp;
    uint8_t *sc_greedy;
    size_t sc_cap;
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
    if (r->route == SRV_R_SCORE) queue_push(&w->sq_head, &w->sq_tail, r);
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
    srv_notify_locked(s, r);
    pthread_mutex_unlock(&s->mu);
}

static void release_slot(srv_worker *w, srv_req *r)
{
    if (r->slot >= 0) {
        model_cache_reset(w->cache, r->slot);
        w->run[r->slot] = NULL;
        w->n_run--;
        r->slot = -1;
    }
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
        r->prefilled = 0;
        r->t_admit = now;
        w->n_run++;
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

/* ---- /score windows ---- */

static int score_reserve(srv_worker *w, size_t nwin, size_t ntok)
{
    if (nwin <= (size_t)w->max_batch && ntok <= w->sc_cap) return 0;
    size_t cap = ntok > w->sc_cap ? ntok : w->sc_cap;
    float *lp = realloc(w->sc_lp, cap * sizeof *lp);
    if (!lp) return -1;
    w->sc_lp = lp;
    uint8_t *g = realloc(w->sc_greedy, cap);
    if (!g) return -1;
    w->sc_greedy = g;
    w->sc_cap = cap;
    return 0;
}

static int item_finished(const srv_score_item *it)
{
    return it->done_win == it->n_win;
}

static void score_step(srv_worker *w)
{
    srv_server *s = w->s;
    int nw = 0;
    size_t ntok = 0;
    size_t budget = (size_t)(s->cfg.score_batch_tokens > 0 ? s->cfg.score_batch_tokens : 1);
    /* Take windows in request order until the budget or the batch is full
     * (at least one window, whatever its size). */
    for (srv_req *r = w->score_cur; r && nw < w->max_batch; r = r->qnext) {
        for (int i = 0; i < r->n_items && nw < w->max_batch; i++) {
            srv_score_item *it = &r->items[i];
            while (it->next_win < it->n_win && nw < w->max_batch) {
                const eval_window *ew = &it->win[it->next_win];
                if (nw > 0 && ntok + (size_t)ew->len > budget) goto collected;
                w->sc_tok[nw] = it->s + ew->start;
                w->sc_tgt[nw] = it->s + ew->start + 1;
                w->sc_len[nw] = ew->len;
                w->sc_item[nw] = it;
                w->sc_win[nw] = it->next_win;
                ntok += (size_t)ew->len;
                nw++;
                it->next_win++;
            }
        }
    }
collected:
    if (nw == 0) return;
    int rc = score_reserve(w, (size_t)nw, ntok) ? MODEL_ENOMEM
             : model_score(s->m, nw, w->sc_tok, w->sc_tgt, w->sc_len, w->sc_lp, w->sc_greedy);
    size_t off = 0;
    for (int k = 0; k < nw; k++) {
        srv_score_item *it = w->sc_item[k];
        const eval_window *ew = &it->win[w->sc_win[k]];
        if (rc == 0) {
            for (int j = ew->first_scored; j < ew->len; j++) {
                /* target s[start + 1 + j] is text token start + j */
                int64_t t = ew->start + j;
                float lp = w->sc_lp[off + (size_t)j];
                it->nll -= lp;
                if (it->lp) it->lp[t] = lp;
                if (j >= it->cont_from && !w->sc_greedy[off + (size_t)j]) it->all_greedy = 0;
            }
        }
        off += (size_t)ew->len;
        it->done_win++;
    }
    srv_metrics_tokens(&s->metrics, 0, 0, rc == 0 ? (int64_t)ntok : 0);
    /* Finish the requests whose every window is done (or all, on error). */
    srv_req **pp = &w->score_cur;
    while (*pp) {
        srv_req *r = *pp;
        int done = 1;
        for (int i = 0; i < r->n_items; i++) done &= item_finished(&r->items[i]);
        if (rc != 0 || done) {
            *pp = r->qnext;
            r->qnext = NULL;
            for (int i = 0; i < r->n_items; i++) {
                srv_score_item *it = &r->items[i];
                it->res.nll = it->nll;
                eval_finish(&it->res);
            }
            if (rc != 0) {
                char msg[128];
                snprintf(msg, sizeof msg, "model_score: %s", model_strerror(rc));
                finish_req(w, r, SRV_FIN_ERROR, 500, "server_error", msg);
            } else {
                finish_req(w, r, SRV_FIN_LENGTH, 0, NULL, NULL);
            }
        } else {
            pp = &r->qnext;
        }
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
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(row[i] - mx));
    float lse = mx + (float)log(sum);
    for (int j = 0; j < k; j++)
        if (ids[j] >= 0) lps[j] -= lse;
}

/* Longest suffix of text that is a proper prefix of a stop string: those
 * bytes are held back from the stream until it is clear they are not the
 * start of a stop string. */
static size_t stop_holdback(const srv_req *r, const char *text, size_t len)
{
    size_t best = 0;
    for (int i = 0; i < r->gen.n_stop; i++) {
        size_t sl = r->gen.stop_len[i];
        for (size_t h = (sl - 1 < len ? sl - 1 : len); h > best; h--)
            if (!memcmp(text + len - h, r->gen.stop[i], h)) {
                best = h;
                break;
            }
    }
    return best;
}

/* Bytes of an incomplete UTF-8 sequence at the end (held back so a stream
 * never splits a character; invalid bytes are not held). */
static size_t utf8_incomplete_tail(const char *t, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)t[len - back];
        if ((c & 0xC0) == 0x80) continue;     /* continuation byte: look further */
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Append a token's bytes to the text, look for stop strings; returns 1 when
 * a stop string ended the text (text_len cut before it). */
static int append_text(srv_server *s, srv_req *r, int32_t id, size_t *text_len, size_t *safe)
{
    const char *b;
    size_t n;
    if (id == s->eos || tok_token_bytes(s->tok, id, &b, &n) != 0) n = 0;
    size_t old = *text_len;
    if (n && old + n <= r->text_cap) {
        memcpy(r->text + old, b, n);
        *text_len = old + n;
    }
    size_t len = *text_len;
    for (int i = 0; i < r->gen.n_stop; i++) {
        size_t sl = r->gen.stop_len[i];
        size_t from = old + 1 > sl ? old + 1 - sl : 0;
        for (size_t p = from; p + sl <= len; p++)
            if (!memcmp(r->text + p, r->gen.stop[i], sl)) {
                if (p < len) len = p;
                break;
            }
    }
    if (len < *text_len) {
        *text_len = len;
        *safe = len > *safe ? len : *safe;
        return 1;
    }
    size_t hold = stop_holdback(r, r->text, len);
    size_t sf = len - hold;
    sf -= utf8_incomplete_tail(r->text, sf);
    if (sf > *safe) *safe = sf;
    return 0;
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

/* Prompt logprobs (OpenAI echo): rows 0..n-2 of the prefill predict the
 * prompt tokens 1..n-1; with a leading eos that is every text token. */
static void prompt_logprobs(srv_worker *w, srv_req *r, const float *rows)
{
    int V = w->s->n_vocab, lead = r->n_prompt - r->n_prompt_text;
    for (int j = 0; j < r->n_prompt_text; j++) {
        int pos = lead + j;             /* position of the token in hist */
        if (pos == 0) {
            r->prompt_lp[j] = NAN;      /* no context at all: like OpenAI's null */
            continue;
        }
        const float *row = rows + (size_t)(pos - 1) * V;
        r->prompt_lp[j] = sampler_logprob(row, V, r->hist[pos]);
        if (r->top_n > 0)
            top_n(row, V, r->top_n, r->prompt_top_id + (size_t)j * r->top_n,
                  r->prompt_top_lp + (size_t)j * r->top_n);
    }
}

static void gen_step(srv_worker *w)
{
    srv_server *s = w->s;
    int V = s->n_vocab, nseq = 0;
    size_t rows = 0;
    int64_t n_prefill = 0;
    for (int i = 0; i < w->max_batch; i++) {
        srv_req *r = w->run[i];
        if (!r) continue;
        model_seq *q = &w->seqs[nseq];
        q->slot = r->slot;
        if (!r->prefilled) {
            q->n_tokens = r->n_prompt;
            q->tokens = r->hist;
            q->logits_all = r->need_prompt_lp;
            rows += r->need_prompt_lp ? (size_t)r->n_prompt : 1;
            n_prefill += r->n_prompt_text;
        } else {
            q->n_tokens = 1;
            q->tokens = r->hist + r->n_hist - 1;
            q->logits_all = 0;
            rows += 1;
        }
        w->seq_req[nseq++] = r;
    }
    if (nseq == 0) return;
    int rc = reserve_logits(w, rows) ? MODEL_ENOMEM : model_step(s->m, w->cache, nseq, w->seqs, w->logits);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "model_step: %s", model_strerror(rc));
        srv_log(s, SRV_LOG_ERROR, "%s (batch of %d)", msg, nseq);
        for (int k = 0; k < nseq; k++) {
            release_slot(w, w->seq_req[k]);
            finish_req(w, w->seq_req[k], SRV_FIN_ERROR, 500, "server_error", msg);
        }
        return;
    }
    srv_metrics_step(&s->metrics, nseq);
    uint64_t now = srv_now_ns();
    int64_t n_gen = 0;
    size_t off = 0;
    for (int k = 0; k < nseq; k++) {
        srv_req *r = w->seq_req[k];
        size_t nrows = w->seqs[k].logits_all ? (size_t)w->seqs[k].n_tokens : 1;
        float *row = w->logits + (off + nrows - 1) * (size_t)V;
        if (!r->prefilled && r->need_prompt_lp) prompt_logprobs(w, r, w->logits + off * (size_t)V);
        off += nrows;
        r->prefilled = 1;
        if (r->n_out >= r->max_new) {      /* max_tokens 0 (echo only) */
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_LENGTH, 0, NULL, NULL);
            continue;
        }
        int i = r->n_out;
        if (r->top_n > 0)
            top_n(row, V, r->top_n, r->out_top_id + (size_t)i * r->top_n, r->out_top_lp + (size_t)i * r->top_n);
        float lp = 0;
        int id = sampler_sample(&r->smp, row, V, r->hist, r->n_hist, &lp);
        if (id < 0) {
            release_slot(w, r);
            finish_req(w, r, SRV_FIN_ERROR, 500, "server_error", "sampler: out of memory");
            continue;
        }
        n_gen++;
        r->hist[r->n_hist++] = id;
        r->out_ids[i] = id;
        r->out_lp[i] = lp;
        size_t text_len = r->text_len, safe = r->safe_len;
        int stopped = append_text(s, r, id, &text_len, &safe);
        r->out_safe[i] = safe;
        if (i == 0) {
            r->t_first = now;
            srv_metrics_observe_ttft(&s->metrics, (double)(now - r->t_arrive) / 1e9);
        } else {
            srv_metrics_observe_itl(&s->metrics, (double)(now - r->t_prev) / 1e9);
        }
        r->t_prev = now;
        int reason = stopped                 ? SRV_FIN_STOP
                     : id == s->eos          ? SRV_FIN_EOS
                     : i + 1 >= r->max_new   ? SRV_FIN_LENGTH
                                             : SRV_FIN_NONE;
        pthread_mutex_lock(&s->mu);
        r->n_out = i + 1;
        r->text_len = text_len;
        r->safe_len = safe;
        if (r->gen.stream && !reason) srv_notify_locked(s, r);
        pthread_mutex_unlock(&s->mu);
        if (reason) {
            release_slot(w, r);
            finish_req(w, r, reason, 0, NULL, NULL);
        }
    }
    srv_metrics_tokens(&s->metrics, n_prefill, n_gen, 0);
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
        if (w->score_cur) score_step(w);
        gen_step(w);
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
    pthread_cond_init(&w->cv, NULL);
    w->cache = model_cache_create(s->m, w->max_batch);
    if (!w->cache) {
        snprintf(err, errlen, "srv_worker_create: cannot allocate a cache of %d slots", w->max_batch);
        goto fail;
    }
    size_t nb = (size_t)w->max_batch;
    w->run = calloc(nb, sizeof *w->run);
    w->seqs = calloc(nb, sizeof *w->seqs);
    w->seq_req = calloc(nb, sizeof *w->seq_req);
    w->sc_tok = calloc(nb, sizeof *w->sc_tok);
    w->sc_tgt = calloc(nb, sizeof *w->sc_tgt);
    w->sc_len = calloc(nb, sizeof *w->sc_len);
    w->sc_item = calloc(nb, sizeof *w->sc_item);
    w->sc_win = calloc(nb, sizeof *w->sc_win);
    if (!w->run || !w->seqs || !w->seq_req || !w->sc_tok || !w->sc_tgt || !w->sc_len || !w->sc_item ||
        !w->sc_win)
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
    free(w->seqs);
    free(w->seq_req);
    free(w->logits);
    free(w->tmp_row);
    free(w->sc_tok);
    free(w->sc_tgt);
    free(w->sc_len);
    free(w->sc_item);
    free(w->sc_win);
    free(w->sc_lp);
    free(w->sc_greedy);
    free(w);
}
