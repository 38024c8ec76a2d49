/* srv_json.c - JSON bodies and SSE events of the server (see srv_json.h). */
#include "srv_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Length of a valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   /* overlong */
    if (c == 0xED && p[1] >= 0xA0) return 0;  /* surrogate */
    if (c == 0xF0 && p[1] < 0x90) return 0;   /* overlong */
    if (c == 0xF4 && p[1] >= 0x90) return 0;  /* > U+10FFFF */
    return len;
}

json_t *srv_json_bytes(const char *b, size_t n)
{
    if (!b) return json_stringn("", 0);
    const unsigned char *p = (const unsigned char *)b;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (!l) break;
        i += l;
    }
    if (i == n) return json_stringn(b, n);
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (i = 0; i < n;) {
        size_t l = utf8_seq(p + i, n - i);
        if (l) {
            memcpy(o + k, p + i, l);
            k += l;
            i += l;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    json_t *j = json_stringn(o, k);
    free(o);
    return j;
}

static char *dump(json_t *j, size_t *len)
{
    if (!j) return NULL;
    char *s = json_dumps(j, SRV_JSON_FLAGS);
    json_decref(j);
    if (s) *len = strlen(s);
    return s;
}

char *srv_json_error(const char *type, const char *msg, size_t *len)
{
    json_t *e = json_pack("{s:{s:o,s:o}}", "error", "type", srv_json_bytes(type, strlen(type)), "message",
                          srv_json_bytes(msg, strlen(msg)));
    return dump(e, len);
}

const char *srv_finish_name(int finish, int openai)
{
    switch (finish) {
    case SRV_FIN_LENGTH: return "length";
    case SRV_FIN_STOP: return "stop";
    case SRV_FIN_EOS: return openai ? "stop" : "eos";
    case SRV_FIN_TIMEOUT: return "timeout";
    case SRV_FIN_CANCELLED: return "cancelled";
    default: return "error";
    }
}

static json_t *token_text(srv_server *s, int32_t id)
{
    const char *b = NULL;
    size_t n = 0;
    if (tok_token_bytes(s->tok, id, &b, &n) != 0) n = 0;
    return srv_json_bytes(b, n);
}

/* The bytes of a token in the echoed prompt: the end-of-text token stands
 * there as its text (the prompt was given with it). */
static size_t prompt_token_len(srv_server *s, int32_t id)
{
    const char *b = NULL;
    size_t n = 0;
    return tok_token_bytes(s->tok, id, &b, &n) == 0 ? n : 0;
}

/* ... and in generated text, where the end-of-text token writes nothing. */
static size_t token_len(srv_server *s, int32_t id)
{
    return id == s->eos ? 0 : prompt_token_len(s, id);
}

/* A float as JSON; NaN/inf (no context, or -inf logprob) become null. */
static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static double ms(uint64_t a, uint64_t b)
{
    return b > a ? (double)(b - a) / 1e6 : 0.0;
}

static json_t *timings(srv_req *r)
{
    uint64_t admit = r->t_admit ? r->t_admit : r->t_end;
    uint64_t first = r->n_out > 0 ? r->t_first : r->t_end;
    return json_pack("{s:f,s:f,s:f}", "queue_ms", ms(r->t_arrive, admit), "prefill_ms", ms(admit, first),
                     "decode_ms", ms(first, r->t_end));
}

static json_t *gen_token(srv_server *s, srv_req *r, int i)
{
    json_t *t = json_pack("{s:i,s:o}", "id", (json_int_t)r->out_ids[i], "text", token_text(s, r->out_ids[i]));
    if (t && r->gen.logprobs) json_object_set_new(t, "logprob", jnum(r->out_lp[i]));
    return t;
}

/* usage of a finished generation: /generate's, or OpenAI's (+ total).
 * context_shifts: how often the sequence filled the context and went on
 * from its last half (srv_worker.c); OpenAI's object has it only then. */
static json_t *usage(const srv_req *r, int openai)
{
    json_t *u = json_pack("{s:i,s:i}", "prompt_tokens", (json_int_t)r->n_prompt_text, "completion_tokens",
                          (json_int_t)r->n_out);
    if (!u) return NULL;
    if (openai) json_object_set_new(u, "total_tokens", json_integer((json_int_t)(r->n_prompt_text + r->n_out)));
    if (!openai || r->n_shift) json_object_set_new(u, "context_shifts", json_integer(r->n_shift));
    return u;
}

char *srv_json_generate(srv_server *s, srv_req *r, size_t *len)
{
    json_t *toks = json_array();
    for (int i = 0; toks && i < r->n_out; i++) json_array_append_new(toks, gen_token(s, r, i));
    json_t *o = json_pack("{s:o,s:o,s:s,s:o,s:o}", "text", srv_json_bytes(r->text, r->text_len), "tokens", toks,
                          "finish_reason", srv_finish_name(r->finish, 0), "usage", usage(r, 0), "timings",
                          timings(r));
    return dump(o, len);
}

static json_t *top_obj(srv_server *s, const int32_t *ids, const float *lps, int k)
{
    json_t *o = json_object();
    for (int j = 0; o && j < k; j++) {
        if (ids[j] < 0) continue;
        const char *b = NULL;
        size_t n = 0;
        if (tok_token_bytes(s->tok, ids[j], &b, &n) != 0) continue;
        json_t *key = srv_json_bytes(b, n);
        if (key) json_object_set_new(o, json_string_value(key), jnum(lps[j]));
        json_decref(key);
    }
    return o;
}

/* OpenAI logprobs object for echo'd prompt tokens [0, np) then generated
 * tokens [0, ng); text offsets start at off0. A prompt given with the
 * end-of-text token first lists it (null log-prob, as OpenAI's first
 * token), so the entries are the tokens sent, one for one. */
static json_t *openai_logprobs(srv_server *s, srv_req *r, int with_prompt, int g0, int g1, size_t off0)
{
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = off0;
    int k = r->top_n;
    /* a windowed echo (srv_core.h) has its log-probs in its score item */
    const float *plp = r->echo_windows && r->n_items ? r->items[0].lp : r->prompt_lp;
    if (with_prompt && r->echo_eos) {
        json_array_append_new(toks, token_text(s, s->eos));
        json_array_append_new(lps, json_null());
        json_array_append_new(tops, json_null());
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += prompt_token_len(s, s->eos);
    }
    if (with_prompt)
        for (int j = 0; j < r->n_prompt_text; j++) {
            int32_t id = r->hist[r->n_prompt - r->n_prompt_text + j];
            json_array_append_new(toks, token_text(s, id));
            json_array_append_new(lps, jnum(plp ? plp[j] : NAN));
            json_array_append_new(tops, k > 0 && r->prompt_top_id
                                            ? top_obj(s, r->prompt_top_id + (size_t)j * k,
                                                      r->prompt_top_lp + (size_t)j * k, k)
                                            : json_null());
            json_array_append_new(offs, json_integer((json_int_t)off));
            off += prompt_token_len(s, id);
        }
    for (int i = g0; i < g1; i++) {
        json_array_append_new(toks, token_text(s, r->out_ids[i]));
        json_array_append_new(lps, jnum(r->out_lp[i]));
        json_array_append_new(tops, k > 0 ? top_obj(s, r->out_top_id + (size_t)i * k,
                                                    r->out_top_lp + (size_t)i * k, k)
                                          : json_null());
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += token_len(s, r->out_ids[i]);
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

static json_t *openai_chunk(srv_server *s, srv_req *r, json_t *text, json_t *logprobs, const char *finish)
{
    char id[40];
    snprintf(id, sizeof id, "cmpl-%llu", (unsigned long long)r->id);
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:o,s:i,s:o,s:o}]}", "id", id, "object", "text_completion",
                     "created", (json_int_t)time(NULL), "model", model_name(s->m), "choices", "text", text,
                     "index", 0, "logprobs", logprobs ? logprobs : json_null(), "finish_reason",
                     finish ? json_string(finish) : json_null());
}

/* The completion of r (a request, or one kid) as OpenAI's response object
 * with one choice. */
static json_t *completion_object(srv_server *s, srv_req *r)
{
    json_t *text;
    if (r->gen.echo) {
        size_t pl = r->gen.prompt ? r->gen.prompt_len : 0;
        char *buf = malloc(pl + r->text_len + 1);
        if (!buf) return NULL;
        if (pl) memcpy(buf, r->gen.prompt, pl);
        if (r->text_len) memcpy(buf + pl, r->text, r->text_len);
        text = srv_json_bytes(buf, pl + r->text_len);
        free(buf);
    } else {
        text = srv_json_bytes(r->text, r->text_len);
    }
    json_t *lp = r->gen.logprobs >= 0 ? openai_logprobs(s, r, r->gen.echo, 0, r->n_out, 0) : NULL;
    return openai_chunk(s, r, text, lp, srv_finish_name(r->finish, 1));
}

char *srv_json_completion(srv_server *s, srv_req *r, size_t *len)
{
    json_t *o = completion_object(s, r);
    if (!o) return NULL;
    json_object_set_new(o, "usage", usage(r, 1));
    return dump(o, len);
}

/* Mean log-prob per generated token of a kid (best_of's ranking). */
static double mean_logprob(const srv_req *k)
{
    double sum = 0;
    for (int i = 0; i < k->n_out; i++) sum += k->out_lp[i];
    return k->n_out ? sum / k->n_out : -INFINITY;
}

char *srv_json_completion_kids(srv_server *s, srv_req *r, size_t *len)
{
    json_t *o = NULL, *choices = NULL;
    int prompt_tokens = 0, completion_tokens = 0, shifts = 0;
    const int m = r->gen.best_of, n = r->gen.n;
    for (int p0 = 0; p0 < r->n_kids; p0 += m) {
        /* this prompt's candidates, best mean log-prob first (ties: lower c) */
        srv_req *cand[SRV_MAX_CHOICES];
        for (int c = 0; c < m; c++) {
            srv_req *k = r->kids[p0 + c];
            int at = c;
            while (at > 0 && mean_logprob(cand[at - 1]) < mean_logprob(k)) {
                cand[at] = cand[at - 1];
                at--;
            }
            cand[at] = k;
            completion_tokens += k->n_out;
            shifts += k->n_shift;
        }
        prompt_tokens += r->kids[p0]->n_prompt_text;   /* once per prompt */
        for (int rank = 0; rank < n; rank++) {
            json_t *one = completion_object(s, m > n ? cand[rank] : r->kids[p0 + rank]);
            json_t *c = one ? json_incref(json_array_get(json_object_get(one, "choices"), 0)) : NULL;
            if (c) json_object_set_new(c, "index", json_integer(p0 / m * n + rank));
            if (!o && one) {
                o = json_incref(one);
                choices = json_array();
                json_object_set_new(o, "choices", choices);
            }
            json_decref(one);
            if (!c || !choices) {
                json_decref(c);
                json_decref(o);
                return NULL;
            }
            json_array_append_new(choices, c);
        }
    }
    /* the parent's own counts are the access log's */
    r->n_prompt_text = prompt_tokens;
    r->n_out = completion_tokens;
    r->n_shift = shifts;
    json_object_set_new(o, "usage", usage(r, 1));
    return dump(o, len);
}

static json_t *score_item(srv_server *s, srv_req *r, srv_score_item *it)
{
    json_t *o;
    if (r->sc.kind == SRV_SCORE_CONT) {
        o = json_pack("{s:f,s:b,s:i}", "logprob", -it->nll, "is_greedy", it->all_greedy, "tokens",
                      (json_int_t)(it->n_text - it->cont_from));
    } else {
        o = json_pack("{s:I,s:I,s:I,s:f,s:o,s:o,s:o}", "tokens", (json_int_t)it->res.n_tokens, "words",
                      (json_int_t)it->res.n_words, "bytes", (json_int_t)it->res.n_bytes, "nll", it->res.nll,
                      "perplexity", jnum(it->res.perplexity), "word_perplexity", jnum(it->res.word_perplexity),
                      "bits_per_byte", jnum(it->res.bits_per_byte));
    }
    if (o && it->lp) {
        json_t *a = json_array();
        int64_t from = r->sc.kind == SRV_SCORE_CONT ? it->cont_from : 0;
        for (int64_t t = from; a && t < it->n_text; t++) {
            int32_t id = it->s[t + 1];
            json_array_append_new(a, json_pack("{s:i,s:o,s:o}", "id", (json_int_t)id, "text", token_text(s, id),
                                               "logprob", jnum(it->lp[t])));
        }
        json_object_set_new(o, "token_logprobs", a);
    }
    return o;
}

char *srv_json_score(srv_server *s, srv_req *r, size_t *len)
{
    if (r->sc.kind != SRV_SCORE_TEXTS) return dump(score_item(s, r, &r->items[0]), len);
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_items; i++) json_array_append_new(a, score_item(s, r, &r->items[i]));
    return dump(json_pack("{s:o}", "results", a), len);
}

char *srv_json_models(srv_server *s, size_t *len)
{
    const arch_hparams *hp = model_hparams(s->m);
    json_t *m = json_pack("{s:s,s:s,s:i,s:s,s:s,s:i,s:i,s:s,s:I,s:I,s:i,s:i,s:i,s:s,s:s,s:i,s:s}", "id", model_name(s->m),
                          "object", "model", "created", 0, "owned_by", "synth", "variant",
                          arch_variant_name(hp->variant), "context_length", (json_int_t)hp->n_ctx, "n_vocab",
                          (json_int_t)hp->n_vocab, "quantization", model_quant_name(s->m), "n_params",
                          (json_int_t)model_n_params(s->m), "file_size", (json_int_t)model_file_size(s->m),
                          "n_layer", (json_int_t)hp->n_layer, "n_embd", (json_int_t)hp->n_embd, "n_head",
                          (json_int_t)hp->n_head, "cpu", model_cpu(), "activations", model_act(), "threads", model_threads(),
                          "cache_type", s->cfg.cache_type == MODEL_CACHE_F16 ? "f16" : "f32");
    return dump(json_pack("{s:s,s:[o]}", "object", "list", "data", m), len);
}

char *srv_json_tokenizer_info(srv_server *s, size_t *len)
{
    const char *eb = NULL;
    size_t en = 0;
    json_t *eos = s->eos >= 0 && tok_token_bytes(s->tok, s->eos, &eb, &en) == 0 ? srv_json_bytes(eb, en) : json_null();
    return dump(json_pack("{s:o,s:i,s:i,s:s}", "eos_token", eos, "eos_token_id", (json_int_t)s->eos, "vocab_size",
                          (json_int_t)s->n_vocab, "model", model_name(s->m)),
                len);
}

/* ---- server-sent events ---- */

static int sse_append(char **buf, size_t *len, size_t *cap, json_t *j)
{
    if (!j) return -1;
    char *d = json_dumps(j, SRV_JSON_FLAGS);
    json_decref(j);
    if (!d) return -1;
    size_t n = strlen(d), need = *len + n + 9;
    if (need > *cap) {
        size_t c = need * 2;
        char *p = realloc(*buf, c);
        if (!p) {
            free(d);
            return -1;
        }
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, "data: ", 6);
    memcpy(*buf + *len + 6, d, n);
    memcpy(*buf + *len + 6 + n, "\n\n", 2);
    *len += n + 8;
    free(d);
    return 0;
}

static int sse_raw(char **buf, size_t *len, size_t *cap, const char *txt)
{
    size_t n = strlen(txt);
    if (*len + n > *cap) {
        size_t c = (*len + n) * 2;
        char *p = realloc(*buf, c);
        if (!p) return -1;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, txt, n);
    *len += n;
    return 0;
}

int srv_sse_events(srv_server *s, srv_req *r, int n_out, int final, char **buf, size_t *len, size_t *cap)
{
    if (r->openai && r->gen.echo && !r->sse_echo_done) {
        size_t pl = r->gen.prompt ? r->gen.prompt_len : 0;
        /* Called once a token exists or the worker is done (sse_reader); a
         * request that ended before its prefill has no prompt logprobs. */
        json_t *lp = r->gen.logprobs >= 0 ? openai_logprobs(s, r, n_out > 0 || r->prefilled, 0, 0, 0) : NULL;
        json_t *c = openai_chunk(s, r, srv_json_bytes(r->gen.prompt, pl), lp, NULL);
        if (sse_append(buf, len, cap, c)) return -1;
        r->sse_echo_done = 1;
        r->sse_tok_bytes = pl;
    }
    for (int i = r->sse_tok; i < n_out; i++) {
        size_t end = r->out_safe[i];
        if (end < r->sse_text) end = r->sse_text;
        json_t *delta = srv_json_bytes(r->text + r->sse_text, end - r->sse_text);
        json_t *ev;
        if (r->openai) {
            json_t *lp = r->gen.logprobs >= 0 ? openai_logprobs(s, r, 0, i, i + 1, r->sse_tok_bytes) : NULL;
            ev = openai_chunk(s, r, delta, lp, NULL);
        } else {
            ev = json_pack("{s:o,s:o}", "token", gen_token(s, r, i), "text", delta);
        }
        if (sse_append(buf, len, cap, ev)) return -1;
        r->sse_tok_bytes += token_len(s, r->out_ids[i]);
        r->sse_text = end;
        r->sse_tok = i + 1;
    }
    if (!final || r->sse_final) return 0;
    r->sse_final = 1;
    if (r->err_status) {
        json_t *e = json_pack("{s:{s:s,s:s}}", "error", "type", r->err_type, "message", r->err_msg);
        if (sse_append(buf, len, cap, e)) return -1;
        return r->openai ? sse_raw(buf, len, cap, "data: [DONE]\n\n") : 0;
    }
    size_t end = r->text_len > r->sse_text ? r->text_len : r->sse_text;
    json_t *delta = srv_json_bytes(r->text + r->sse_text, end - r->sse_text);
    r->sse_text = end;
    json_t *ev;
    if (r->openai) {
        ev = openai_chunk(s, r, delta, NULL, srv_finish_name(r->finish, 1));
        /* include_usage: OpenAI's own chunk for it (no choices), else the
         * usage rides on the last chunk */
        if (ev) json_object_set_new(ev, "usage", r->gen.include_usage ? json_null() : usage(r, 1));
        if (ev && r->gen.include_usage) {
            if (sse_append(buf, len, cap, ev)) return -1;
            ev = openai_chunk(s, r, json_string(""), NULL, NULL);
            if (ev) {
                json_object_set_new(ev, "choices", json_array());
                json_object_set_new(ev, "usage", usage(r, 1));
            }
        }
    } else {
        ev = json_pack("{s:o,s:s,s:o,s:o}", "text", delta, "finish_reason", srv_finish_name(r->finish, 0), "usage",
                       usage(r, 0), "timings", timings(r));
    }
    if (sse_append(buf, len, cap, ev)) return -1;
    return r->openai ? sse_raw(buf, len, cap, "data: [DONE]\n\n") : 0;
}
