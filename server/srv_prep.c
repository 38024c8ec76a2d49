/*
 * srv_prep.c - the pool stage of `synth serve` (see srv_prep.h): on libuv's
 * thread pool, one request at a time, never the loop or the worker thread.
 */
#include "srv_prep.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_json.h"
#include "srv_log.h"

void srv_req_fail(srv_req *r, int status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
    va_end(ap);
    r->err_status = status;
    snprintf(r->err_type, sizeof r->err_type, "%s", type);
}

/* The one mapping of a tokenizer failure (every route): encoding valid
 * UTF-8-or-not bytes fails only when memory runs out, a server error. */
static void tok_failed(srv_req *r, const char *field, int rc)
{
    srv_req_fail(r, 500, "server_error", "%s: tok_encode: %s", field, tok_strerror(rc));
}

/* ---- the pool stage: parse, tokenize, validate against the model ---- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t deadline_of(srv_server *s, srv_req *r, int64_t req_ms)
{
    int64_t ms = req_ms > 0 ? req_ms : s->cfg.request_timeout_ms;
    return ms > 0 ? r->t_arrive + (uint64_t)ms * 1000000ull : 0;
}

static int score_item_init(srv_server *s, srv_req *r, srv_score_item *it, const int32_t *a, size_t na,
                           const int32_t *b, size_t nb);

/* it->win: eval_plan_windows' windows over the item's it->n_text tokens
 * (every token scored once, as synth score does). 0, or -1 (memory). */
static int plan_item_windows(srv_server *s, srv_score_item *it)
{
    int64_t nw = eval_plan_windows(it->n_text, s->n_ctx, NULL, 0);
    if (nw <= 0 || !(it->win = malloc((size_t)nw * sizeof *it->win))) return -1;
    it->n_win = (int)eval_plan_windows(it->n_text, s->n_ctx, it->win, nw);
    return 0;
}

/* An echo-only request (max_tokens 0, logprobs) whose prompt is longer than
 * the context: one score item over [eos, prompt] with eval_plan_windows'
 * windows (every token scored once, as synth score does); r->hist holds
 * the same stream for the token texts of the answer. 0 or -1 (memory). */
static int echo_windows(srv_server *s, srv_req *r, const int32_t *ids, size_t n)
{
    r->echo_windows = 1;
    r->sc.token_logprobs = 1;
    r->n_prompt_text = (int)n;
    r->n_prompt = 1 + (int)n;
    r->n_hist = r->n_prompt;
    r->max_new = 0;
    if (!(r->hist = malloc((size_t)r->n_prompt * sizeof *r->hist)) || !(r->items = calloc(1, sizeof *r->items)))
        return -1;
    r->hist[0] = s->eos;
    memcpy(r->hist + 1, ids, n * sizeof *ids);
    r->n_items = 1;
    srv_score_item *it = &r->items[0];
    return score_item_init(s, r, it, ids, n, NULL, 0) || plan_item_windows(s, it) ? -1 : 0;
}

/* The prompt of a parsed generation request as token ids: its text
 * encoded, or its ids checked against the vocabulary and copied (and
 * decoded into g->prompt, which echo needs: "<|endoftext|>" written back,
 * as /detokenize does). *ids is the caller's to free. 0, or -1 with r
 * failed. */
static int prompt_tokens(srv_server *s, srv_req *r, int32_t **ids, size_t *n)
{
    srv_gen_params *g = &r->gen;
    if (g->prompt) {
        int rc = tok_encode_special(s->tok, g->prompt, g->prompt_len, ids, n);
        if (rc) tok_failed(r, "prompt", rc);
        return rc ? -1 : 0;
    }
    for (int i = 0; i < g->n_prompt_ids; i++)
        if (g->prompt_ids[i] >= s->n_vocab) {
            srv_req_fail(r, 400, "invalid_request_error", "prompt[%d]: token id %d out of range [0, %d)", i,
                    g->prompt_ids[i], s->n_vocab);
            return -1;
        }
    *n = (size_t)g->n_prompt_ids;
    if (!(*ids = malloc((*n ? *n : 1) * sizeof **ids))) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return -1;
    }
    memcpy(*ids, g->prompt_ids, *n * sizeof **ids);
    char *txt = NULL;
    size_t tl = 0;
    if (tok_decode(s->tok, *ids, *n, 1, &txt, &tl) == 0) {
        g->prompt = txt;
        g->prompt_len = tl;
    }
    return 0;
}

/* "truncate": drop the oldest of the *n prompt tokens in ids (lead: 1 when
 * the end-of-text token goes before them) so that prompt and generation fit
 * the context together (no shift) when max_tokens leaves room for half a
 * context of prompt, else down to half a context. */
static void truncate_prompt(srv_server *s, srv_req *r, int32_t *ids, size_t *n, int lead)
{
    const int max_new = r->gen.max_tokens;
    int64_t keep = (int64_t)s->n_ctx - lead - (max_new > 0 ? max_new - 1 : 0),
            half = (int64_t)model_context_keep(s->m) - lead;
    if (keep < half) keep = half;
    if (keep < 1) keep = 1;
    if ((int64_t)*n <= keep) return;
    size_t drop = *n - (size_t)keep;
    memmove(ids, ids + drop, (*n - drop) * sizeof *ids);
    *n -= drop;
    r->echo_eos = 0;
}

/* What the worker fills for a request of n prompt tokens (r->n_prompt and
 * r->max_new set): r->hist = [eos if lead, ids, room for the generated
 * tokens], the per-token outputs, and the prompt's log-probs when it is
 * echoed with them and fed whole (not tail_only: a windowed prompt's
 * log-probs come from its windows, a slid one gets none). 0, or -1: out of
 * memory (r keeps what was allocated, freed with it). */
static int alloc_outputs(srv_server *s, srv_req *r, const int32_t *ids, size_t n, int lead, int tail_only)
{
    const srv_gen_params *g = &r->gen;
    free(r->hist);   /* a windowed echo's (prompt only): room for the tokens too */
    if (!(r->hist = malloc((size_t)(r->n_prompt + r->max_new) * sizeof *r->hist))) return -1;
    if (lead) r->hist[0] = s->eos;
    memcpy(r->hist + lead, ids, n * sizeof *ids);
    r->n_hist = r->n_prompt;
    size_t mn = r->max_new > 0 ? (size_t)r->max_new : 1;
    r->out_ids = malloc(mn * sizeof *r->out_ids);
    r->out_lp = malloc(mn * sizeof *r->out_lp);
    r->out_safe = malloc(mn * sizeof *r->out_safe);
    r->text_cap = mn * s->max_token_bytes + 1;
    r->text = malloc(r->text_cap);
    if (!r->out_ids || !r->out_lp || !r->out_safe || !r->text) return -1;
    if (r->openai && g->logprobs > 0) {
        r->top_n = g->logprobs;
        r->out_top_id = malloc(mn * (size_t)r->top_n * sizeof *r->out_top_id);
        r->out_top_lp = malloc(mn * (size_t)r->top_n * sizeof *r->out_top_lp);
        if (!r->out_top_id || !r->out_top_lp) return -1;
    }
    if (tail_only || !(r->openai && g->echo && g->logprobs >= 0 && n > 0)) return 0;
    r->need_prompt_lp = 1;
    if (!(r->prompt_lp = malloc(n * sizeof *r->prompt_lp))) return -1;
    if (r->top_n) {
        r->prompt_top_id = malloc(n * (size_t)r->top_n * sizeof *r->prompt_top_id);
        r->prompt_top_lp = malloc(n * (size_t)r->top_n * sizeof *r->prompt_top_lp);
        if (!r->prompt_top_id || !r->prompt_top_lp) return -1;
    }
    return 0;
}

/* Check the sampling parameters against the model (r->max_new and
 * r->n_prompt set) and start the sampler. The history it sees is r->hist:
 * the prompt, then the generated tokens (the penalties and min_tokens
 * count the latter). 0, or -1 with r failed. */
static int start_sampler(srv_server *s, srv_req *r)
{
    srv_gen_params *g = &r->gen;
    if (!g->seed_set) g->sp.seed = splitmix(atomic_fetch_add(&s->seed_ctr, 1) ^ srv_now_ns());
    for (int i = 0; i < g->sp.n_bias; i++)
        if (g->sp.bias_id[i] >= s->n_vocab) {
            srv_req_fail(r, 400, "invalid_request_error", "logit_bias: token id %d out of range [0, %d)", g->sp.bias_id[i],
                    s->n_vocab);
            return -1;
        }
    if (g->sp.min_tokens > r->max_new) {
        srv_req_fail(r, 400, "invalid_request_error", "min_tokens: %d is more than max_tokens %d", g->sp.min_tokens,
                r->max_new);
        return -1;
    }
    g->sp.eos_id = s->eos;
    g->sp.n_prompt = r->n_prompt;
    sampler_init(&r->smp, &g->sp);   /* borrows g's logit_bias arrays: the request owns both */
    r->sampler_ready = 1;
    return 0;
}

/* A generation request whose r->gen is parsed: tokenize and check its
 * prompt, fit it to the context, allocate what the worker fills, start its
 * sampler. A failure is left in r (srv_req_fail). */
static void setup_generate(srv_server *s, srv_req *r)
{
    srv_gen_params *g = &r->gen;
    int32_t *ids = NULL;
    size_t n = 0;
    if (prompt_tokens(s, r, &ids, &n)) return;
    const int lead = s->eos >= 0 ? 1 : 0, L = s->n_ctx, max_new = g->max_tokens;
    /* it is there already: no second one; echo lists it, so that the
     * echoed tokens are the ones sent (lm-evaluation-harness indexes
     * token_logprobs by them) */
    if (tok_drop_lead_eos(s->tok, ids, &n)) r->echo_eos = 1;
    if (n + (size_t)lead == 0) {
        free(ids);
        srv_req_fail(r, 400, "invalid_request_error", "prompt: empty, and the model has no end-of-text token");
        return;
    }
    /* The prompt must fit the context; generation past its end goes on
     * from the last half of the context (the worker's context shift). */
    if (g->truncate) truncate_prompt(s, r, ids, &n, lead);
    const int over = (int64_t)lead + (int64_t)n > L;
    /* a long prompt asked for its log-probs (lm-eval's log-likelihood):
     * scored with /score's windows, synth score's numbers; tokens to
     * generate continue from its last model_context_keep tokens */
    const int windowed = over && lead && r->openai && g->echo && g->logprobs >= 0;
    /* OpenAI clients send prompts without knowing the context: a long
     * one is read from its last model_context_keep tokens, a context
     * shift like those of generation (usage.context_shifts says so);
     * /generate answers 400 so its caller learns the limit */
    const int slid = over && !windowed && r->openai;
    if (over && !windowed && !slid) {
        free(ids);
        srv_req_fail(r, 400, "invalid_request_error",
                "prompt: %zu tokens exceed the context of %d tokens%s (set \"truncate\": true to drop the oldest)",
                n, L, lead ? " with the end-of-text token before them" : "");
        return;
    }
    const int echo_only = windowed && max_new == 0;   /* answered from the windows alone */
    int rc = windowed ? echo_windows(s, r, ids, n) : 0;
    if (!rc && !echo_only) {
        r->n_prompt_text = (int)n;
        r->n_prompt = lead + (int)n;
        r->max_new = max_new;
        rc = alloc_outputs(s, r, ids, n, lead, windowed || slid);
    }
    free(ids);
    if (rc) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return;
    }
    if (!echo_only) {
        if (windowed || slid) {   /* prefill the tail only */
            int keep = model_context_keep(s->m);
            r->fed_from = r->n_prompt > keep ? r->n_prompt - keep : 0;
            r->n_shift = slid;
        }
        if (start_sampler(s, r)) return;
    }
    r->deadline = deadline_of(s, r, g->timeout_ms);
}

/* OpenAI batch (several prompts, or best_of > 1): one kid per (prompt,
 * candidate), prompt p's candidates at p * best_of .. + best_of - 1;
 * candidate c of a prompt samples with seed + c when the request gave a
 * seed. Kids borrow the parent's parameters (srv_core.h). */
static void fan_out(srv_server *s, srv_req *r)
{
    const srv_gen_params *g = &r->gen;
    const int n_prompts = 1 + g->n_more, k = n_prompts * g->best_of;
    if (!(r->kids = calloc((size_t)k, sizeof *r->kids))) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return;
    }
    for (int i = 0; i < k; i++) {
        srv_req *kid = calloc(1, sizeof *kid);
        if (!kid) {
            srv_req_fail(r, 500, "server_error", "out of memory");
            return;
        }
        r->kids[r->n_kids++] = kid;
        kid->srv = s;
        kid->route = r->route;
        kid->openai = 1;
        kid->id = r->id;
        kid->t_arrive = r->t_arrive;
        kid->refs = 1;   /* the parent's */
        kid->parent = r;
        kid->choice = i;
        atomic_init(&kid->cancel, 0);
        kid->gen = *g;   /* borrowed: see kid_release in srv_http.c */
        kid->gen.more = NULL;
        kid->gen.n_more = 0;
        kid->gen.n = 1;
        const int p = i / g->best_of, c = i % g->best_of;
        if (p > 0) {
            const srv_prompt *q = &g->more[p - 1];
            kid->gen.prompt = q->text;
            kid->gen.prompt_len = q->len;
            kid->gen.prompt_ids = q->ids;
            kid->gen.n_prompt_ids = q->n_ids;
        }
        if (g->seed_set) kid->gen.sp.seed = g->sp.seed + (uint64_t)c;
        setup_generate(s, kid);
        if (kid->err_status) {
            srv_req_fail(r, kid->err_status, kid->err_type, "prompt[%d]: %s", p, kid->err_msg);
            return;
        }
    }
}

static void prep_generate(srv_server *s, srv_req *r)
{
    char err[256];
    if (srv_parse_generate(r->body, r->body_len, r->openai, &r->gen, err, sizeof err)) {
        srv_req_fail(r, 400, "invalid_request_error", "%s", err);
        return;
    }
    if (r->openai && (r->gen.n_more > 0 || r->gen.best_of > 1)) fan_out(s, r);
    else setup_generate(s, r);
}

static int score_item_init(srv_server *s, srv_req *r, srv_score_item *it, const int32_t *a, size_t na,
                           const int32_t *b, size_t nb)
{
    it->n_text = (int64_t)(na + nb);
    it->s = malloc((size_t)(it->n_text + 1) * sizeof *it->s);
    if (!it->s) return -1;
    it->s[0] = s->eos;
    if (na) memcpy(it->s + 1, a, na * sizeof *a);
    if (nb) memcpy(it->s + 1 + na, b, nb * sizeof *b);
    it->all_greedy = 1;
    if (r->sc.token_logprobs && !(it->lp = malloc((size_t)it->n_text * sizeof *it->lp))) return -1;
    return 0;
}

/* /score's continuation item: context and continuation tokenized and
 * fitted to the context as eval_continuation does (eval_plan_continuation:
 * one window, the continuation's tokens scored). 0, or -1 with r failed. */
static int score_continuation(srv_server *s, srv_req *r, srv_score_item *it)
{
    const srv_score_params *p = &r->sc;
    const int L = s->n_ctx;
    int32_t *c = NULL, *k = NULL;
    size_t nc = 0, nk = 0;
    /* a context that starts with end-of-text: that is the one before it (as eval_continuation) */
    size_t skip = tok_eos_text_prefix(s->tok, p->ctx, p->ctx_len);
    int rc = tok_encode_special(s->tok, p->ctx + skip, p->ctx_len - skip, &c, &nc);
    const char *field = "context";
    if (!rc) {
        rc = tok_encode_special(s->tok, p->cont, p->cont_len, &k, &nk);
        field = "continuation";
    }
    if (rc) {
        free(c);
        free(k);
        tok_failed(r, field, rc);
        return -1;
    }
    size_t drop = 0;
    eval_window win;
    switch (eval_plan_continuation(nc, nk, L, p->truncate, &drop, &win)) {
    case EVAL_CONT_EMPTY: srv_req_fail(r, 400, "invalid_request_error", "continuation: no tokens"); break;
    case EVAL_CONT_LONG:
        srv_req_fail(r, 400, "invalid_request_error", "continuation: %zu tokens do not fit the context of %d", nk, L);
        break;
    case EVAL_CONT_CONTEXT:
        srv_req_fail(r, 400, "invalid_request_error",
                     "context: %zu + %zu continuation tokens exceed the context of %d tokens (set \"truncate\": "
                     "true to drop the oldest)",
                     nc, nk, L);
        break;
    }
    int bad = r->err_status || score_item_init(s, r, it, c + drop, nc - drop, k, nk);
    free(c);
    free(k);
    if (r->err_status) return -1;
    if (bad || !(it->win = malloc(sizeof *it->win))) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return -1;
    }
    it->n_win = 1;
    it->win[0] = win;
    it->cont_from = (int64_t)win.first_scored;
    return 0;
}

/* /score's text number i (of "text" or "texts"): tokenized as eval_text
 * does and cut into eval_plan_windows' windows, every token scored once;
 * its word and byte counts for the word perplexity and bits per byte. 0, or
 * -1 with r failed. */
static int score_text(srv_server *s, srv_req *r, srv_score_item *it, int i)
{
    const srv_score_params *p = &r->sc;
    const char *field = p->kind == SRV_SCORE_TEXT ? "text" : "texts";
    int32_t *ids = NULL;
    size_t n = 0;
    /* as eval_text: a leading end-of-text is the one before the text */
    size_t skip = tok_eos_text_prefix(s->tok, p->texts[i], p->lens[i]);
    const char *txt = p->texts[i] + skip;
    size_t tlen = p->lens[i] - skip;
    int rc = tok_encode_special(s->tok, txt, tlen, &ids, &n);
    if (rc) {
        tok_failed(r, field, rc);
        return -1;
    }
    if (n == 0) {
        free(ids);
        srv_req_fail(r, 400, "invalid_request_error", "%s: no tokens", field);
        return -1;
    }
    int bad = score_item_init(s, r, it, ids, n, NULL, 0) || plan_item_windows(s, it);
    free(ids);
    if (bad) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return -1;
    }
    it->cont_from = INT64_MAX;
    it->res.n_tokens = it->n_text;
    it->res.n_words = eval_count_words(txt, tlen);
    it->res.n_bytes = (int64_t)tlen;
    return 0;
}

/* A /score request: parse it, then one score item per text (or the one
 * continuation item), each with its windows planned. A failure is left in
 * r (srv_req_fail). */
static void prep_score(srv_server *s, srv_req *r)
{
    char err[256];
    srv_score_params *p = &r->sc;
    if (srv_parse_score(r->body, r->body_len, p, err, sizeof err)) {
        srv_req_fail(r, 400, "invalid_request_error", "%s", err);
        return;
    }
    if (s->eos < 0) {
        srv_req_fail(r, 500, "server_error", "the model has no end-of-text token to score from");
        return;
    }
    r->deadline = deadline_of(s, r, p->timeout_ms);
    const int n_items = p->kind == SRV_SCORE_CONT ? 1 : p->n_texts;
    if (!(r->items = calloc((size_t)n_items, sizeof *r->items))) {
        srv_req_fail(r, 500, "server_error", "out of memory");
        return;
    }
    r->n_items = n_items;
    if (p->kind == SRV_SCORE_CONT) {
        score_continuation(s, r, &r->items[0]);
        return;
    }
    for (int i = 0; i < n_items; i++)
        if (score_text(s, r, &r->items[i], i)) return;
}

static void prep_tokenize(srv_server *s, srv_req *r)
{
    char err[256];
    srv_tokenize_params tp;
    if (srv_parse_tokenize(r->body, r->body_len, &tp, err, sizeof err)) {
        srv_req_fail(r, 400, "invalid_request_error", "%s", err);
        return;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tok_encode_special(s->tok, tp.text, tp.len, &ids, &n);
    free(tp.text);
    if (rc) {
        tok_failed(r, "text", rc);
        return;
    }
    /* add_special_tokens: the end-of-text the server puts before prompts
     * and texts (not twice) */
    const int lead = tp.add_special_tokens && s->eos >= 0 && !(n > 0 && ids[0] == s->eos);
    json_t *a = json_array(), *pieces = tp.with_pieces ? json_array() : NULL;
    if (lead && a) json_array_append_new(a, json_integer(s->eos));
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    for (size_t i = 0; pieces && i < n + (size_t)lead; i++) {
        int32_t id = lead ? (i == 0 ? s->eos : ids[i - 1]) : ids[i];
        const char *tb = NULL;
        size_t tn = 0;
        tok_token_bytes(s->tok, id, &tb, &tn);
        json_array_append_new(pieces, srv_json_bytes(tb, tn));
    }
    free(ids);
    json_t *o = a ? json_pack("{s:o}", "tokens", a) : NULL;
    if (o && pieces) json_object_set_new(o, "pieces", pieces);
    else json_decref(pieces);
    r->resp_body = o ? json_dumps(o, SRV_JSON_FLAGS) : NULL;
    json_decref(o);
    if (!r->resp_body) srv_req_fail(r, 500, "server_error", "out of memory");
    else r->resp_len = strlen(r->resp_body);
}

static void prep_detokenize(srv_server *s, srv_req *r)
{
    char err[256];
    int32_t *ids = NULL;
    int n = 0;
    if (srv_parse_detokenize(r->body, r->body_len, &ids, &n, err, sizeof err)) {
        srv_req_fail(r, 400, "invalid_request_error", "%s", err);
        return;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] >= s->n_vocab) {
            srv_req_fail(r, 400, "invalid_request_error", "tokens[%d]: token id %d out of range [0, %d)", i, ids[i],
                    s->n_vocab);
            free(ids);
            return;
        }
    char *text = NULL;
    size_t tl = 0;
    int rc = tok_decode(s->tok, ids, (size_t)n, 1, &text, &tl);   /* "<|endoftext|>" written back */
    free(ids);
    if (rc) {
        srv_req_fail(r, 500, "server_error", "tok_decode: %s", tok_strerror(rc));
        return;
    }
    /* "prompt": lm-evaluation-harness's name for the same string */
    json_t *o = json_pack("{s:o,s:o}", "text", srv_json_bytes(text, tl), "prompt", srv_json_bytes(text, tl));
    free(text);
    r->resp_body = o ? json_dumps(o, SRV_JSON_FLAGS) : NULL;
    json_decref(o);
    if (!r->resp_body) srv_req_fail(r, 500, "server_error", "out of memory");
    else r->resp_len = strlen(r->resp_body);
}

void srv_prep_request(srv_server *s, srv_req *r)
{
    switch (r->route) {
    case SRV_R_GENERATE:
    case SRV_R_COMPLETIONS: prep_generate(s, r); break;
    case SRV_R_SCORE: prep_score(s, r); break;
    case SRV_R_TOKENIZE: prep_tokenize(s, r); break;
    case SRV_R_DETOKENIZE: prep_detokenize(s, r); break;
    default: srv_req_fail(r, 500, "server_error", "no handler"); break;
    }
    free(r->body);   /* parsed: the body is not needed any more */
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}
