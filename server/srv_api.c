/* srv_api.c - JSON request bodies -> validated C structs (see srv_api.h). */
#include "srv_api.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parse the body as one JSON object. Duplicate keys are rejected because
 * which one wins would otherwise be an accident of the parser. */
static json_t *load_object(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    if (!body || len == 0) {
        fail(err, errlen, "body: empty, expected a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        fail(err, errlen, "body: invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(err, errlen, "body: expected a JSON object");
        return NULL;
    }
    return root;
}

/* Reject fields the route does not know (catches typos like "max_token"). */
static int check_keys(json_t *obj, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(key, allowed[i])) ok = 1;
        if (!ok) {
            /* the key as printable ASCII, so a hostile key cannot forge the message */
            char safe[68];
            size_t n = 0;
            for (const char *p = key; *p && n < 64; p++) safe[n++] = (*p > 32 && *p < 127 && *p != ':') ? *p : '?';
            safe[n] = 0;
            /* an empty key still gets a field name in the message */
            return fail(err, errlen, "%s: unknown field", n ? safe : "\"\"");
        }
    }
    return 0;
}

/* Field absent or JSON null: keep the default. */
static json_t *field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return (v && !json_is_null(v)) ? v : NULL;
}

static int get_int(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err,
                   size_t errlen)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(err, errlen, "%s: must be an integer in [%lld, %lld]", key, (long long)lo,
                    (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int get_num(json_t *obj, const char *key, double lo, double hi, float *out, char *err,
                   size_t errlen)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= lo && x <= hi)) return fail(err, errlen, "%s: must be a number in [%g, %g]", key, lo, hi);
    *out = (float)x;
    return 0;
}

static int get_bool(json_t *obj, const char *key, int *out, char *err, size_t errlen)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return fail(err, errlen, "%s: must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* A required string field (may contain NUL bytes; jansson keeps the length). */
static int get_string(json_t *obj, const char *key, int required, char **out, size_t *len, char *err,
                      size_t errlen)
{
    json_t *v = field(obj, key);
    if (!v) return required ? fail(err, errlen, "%s: required", key) : 0;
    if (!json_is_string(v)) return fail(err, errlen, "%s: must be a string", key);
    *len = json_string_length(v);
    *out = dup_bytes(json_string_value(v), *len);
    if (!*out) return fail(err, errlen, "%s: out of memory", key);
    return 0;
}

static int get_stop(json_t *obj, srv_gen_params *p, char *err, size_t errlen)
{
    json_t *v = field(obj, "stop");
    if (!v) return 0;
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : (size_t)-1;
    if (n == (size_t)-1) return fail(err, errlen, "stop: must be a string or an array of strings");
    if (n > SRV_MAX_STOP) return fail(err, errlen, "stop: at most %d strings", SRV_MAX_STOP);
    if (n == 0) return 0;
    p->stop = calloc(n, sizeof *p->stop);
    p->stop_len = calloc(n, sizeof *p->stop_len);
    if (!p->stop || !p->stop_len) return fail(err, errlen, "stop: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(s)) return fail(err, errlen, "stop[%zu]: must be a string", i);
        size_t l = json_string_length(s);
        if (l == 0 || l > SRV_MAX_STOP_LEN)
            return fail(err, errlen, "stop[%zu]: length must be in [1, %d] bytes", i, SRV_MAX_STOP_LEN);
        p->stop[i] = dup_bytes(json_string_value(s), l);
        if (!p->stop[i]) return fail(err, errlen, "stop: out of memory");
        p->stop_len[i] = l;
        p->n_stop = (int)i + 1;
    }
    return 0;
}

/* OpenAI "prompt": a string, an array of one string, or an array of token
 * ids (what lm-evaluation-harness sends). */
/* One OpenAI prompt element: a string, or a list of token ids. */
static int one_prompt(json_t *v, const char *name, char **text, size_t *tlen, int32_t **ids, int *n_ids, char *err,
                      size_t errlen)
{
    if (json_is_string(v)) {
        *tlen = json_string_length(v);
        *text = dup_bytes(json_string_value(v), *tlen);
        return *text ? 0 : fail(err, errlen, "%s: out of memory", name);
    }
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0) return fail(err, errlen, "%s: must be a string or a non-empty array of token ids", name);
    if (!(*ids = malloc(n * sizeof **ids))) return fail(err, errlen, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return fail(err, errlen, "%s[%zu]: must be a token id", name, i);
        (*ids)[i] = (int32_t)json_integer_value(t);
    }
    *n_ids = (int)n;
    return 0;
}

/* OpenAI's prompt forms: a string, a list of token ids, or a batch of
 * either (a list of strings, a list of token-id lists; not mixed), at most
 * SRV_MAX_PROMPTS. The first prompt goes to prompt/prompt_ids, the others
 * to more[]. */
static int get_openai_prompt(json_t *obj, srv_gen_params *p, char *err, size_t errlen)
{
    json_t *v = field(obj, "prompt");
    if (!v) return fail(err, errlen, "prompt: required");
    if (!json_is_string(v) && !json_is_array(v)) return fail(err, errlen, "prompt: must be a string or an array");
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n == 0) return fail(err, errlen, "prompt: empty array");
    json_t *first = json_is_array(v) ? json_array_get(v, 0) : v;
    int batch = json_is_array(v) && (json_is_string(first) || json_is_array(first));
    if (!batch) return one_prompt(v, "prompt", &p->prompt, &p->prompt_len, &p->prompt_ids, &p->n_prompt_ids, err, errlen);
    if (n > SRV_MAX_PROMPTS) return fail(err, errlen, "prompt: at most %d prompts per request", SRV_MAX_PROMPTS);
    for (size_t i = 0; i < n; i++)
        if (json_is_string(json_array_get(v, i)) != json_is_string(first))
            return fail(err, errlen, "prompt[%zu]: the batch mixes strings and token-id lists", i);
    if (n > 1 && !(p->more = calloc(n - 1, sizeof *p->more))) return fail(err, errlen, "prompt: out of memory");
    p->n_more = (int)n - 1;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "prompt[%zu]", i);
        srv_prompt *q = i ? &p->more[i - 1] : NULL;
        if (one_prompt(json_array_get(v, i), name, q ? &q->text : &p->prompt, q ? &q->len : &p->prompt_len,
                       q ? &q->ids : &p->prompt_ids, q ? &q->n_ids : &p->n_prompt_ids, err, errlen))
            return -1;
    }
    return 0;
}

static const char *const generate_keys[] = {
    "prompt", "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
    "presence_penalty", "frequency_penalty", "logit_bias", "min_tokens", "ignore_eos",
    "seed", "stop", "logprobs", "stream", "truncate", "timeout_ms", NULL};
/* /v1/completions: OpenAI's fields the server implements (model and user
 * are accepted and not used: one model is served; n and best_of must be
 * 1), plus the /generate extensions; any other field (suffix, ...) is a
 * 400 naming it rather than silently ignored. */
static const char *const completion_keys[] = {
    "prompt", "model", "user", "n", "best_of", "echo", "max_tokens", "temperature", "top_k", "top_p", "min_p",
    "repetition_penalty", "presence_penalty", "frequency_penalty", "logit_bias", "min_tokens", "ignore_eos",
    "seed", "stop", "logprobs", "stream", "stream_options", "truncate", "timeout_ms", NULL};

/* logit_bias: {"token id": bias, ...} (OpenAI's form: ids as decimal
 * strings), at most SRV_MAX_BIAS entries; biases in [-100, 100]. The ids
 * are checked against the vocabulary later. */
static int get_logit_bias(json_t *o, srv_gen_params *p, char *err, size_t errlen)
{
    json_t *b = field(o, "logit_bias");
    if (!b) return 0;
    if (!json_is_object(b)) return fail(err, errlen, "logit_bias: must be an object {\"token id\": bias}");
    size_t n = json_object_size(b);
    if (n > SRV_MAX_BIAS) return fail(err, errlen, "logit_bias: at most %d entries", SRV_MAX_BIAS);
    p->bias_id = malloc((n ? n : 1) * sizeof *p->bias_id);
    p->bias = malloc((n ? n : 1) * sizeof *p->bias);
    if (!p->bias_id || !p->bias) return fail(err, errlen, "logit_bias: out of memory");
    const char *key;
    json_t *v;
    int k = 0;
    json_object_foreach(b, key, v) {
        char *end;
        errno = 0;
        long id = strtol(key, &end, 10);
        /* one spelling per id ("7", not "07"), so no id is biased twice */
        if (!*key || *end || errno || id < 0 || id > INT32_MAX || !(key[0] >= '0' && key[0] <= '9') ||
            (key[0] == '0' && key[1]))
            return fail(err, errlen, "logit_bias: keys must be token ids (decimal, no leading zeros)");
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (!(x >= -SAMPLER_MAX_BIAS && x <= SAMPLER_MAX_BIAS))
            return fail(err, errlen, "logit_bias[%ld]: must be a number in [-100, 100]", id);
        p->bias_id[k] = (int32_t)id;
        p->bias[k++] = (float)x;
    }
    p->sp.bias_id = p->bias_id;
    p->sp.bias = p->bias;
    p->sp.n_bias = k;
    return 0;
}

/* OpenAI's stream_options: {include_usage: bool}, only with stream (as
 * OpenAI's API: the options are for the stream). include_usage: the
 * usage comes in a chunk of its own, with no choices, before [DONE]. */
static int get_stream_options(json_t *o, srv_gen_params *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"include_usage", NULL};
    json_t *v = field(o, "stream_options");
    if (!v) return 0;
    if (!p->stream) return fail(err, errlen, "stream_options: only allowed with \"stream\": true");
    if (!json_is_object(v)) return fail(err, errlen, "stream_options: must be an object {\"include_usage\": bool}");
    char sub[200];
    if (check_keys(v, keys, sub, sizeof sub)) return fail(err, errlen, "stream_options.%s", sub);
    if (get_bool(v, "include_usage", &p->include_usage, sub, sizeof sub))
        return fail(err, errlen, "stream_options.%s", sub);
    return 0;
}

/* The sampling fields into p->sp (their ranges; sampler_params_validate
 * checks the whole later) and the seed. 0, or -1 with err set. */
static int get_sampling(json_t *o, srv_gen_params *p, char *err, size_t errlen)
{
    int64_t i64;
    if (get_num(o, "temperature", 0, SAMPLER_MAX_TEMPERATURE, &p->sp.temperature, err, errlen)) return -1;
    i64 = 0;
    if (get_int(o, "top_k", 0, INT32_MAX, &i64, err, errlen)) return -1;
    p->sp.top_k = (int)i64;
    if (get_num(o, "top_p", 0, 1, &p->sp.top_p, err, errlen)) return -1;
    if (p->sp.top_p <= 0) {
        fail(err, errlen, "top_p: must be a number in (0, 1]");
        return -1;
    }
    if (get_num(o, "min_p", 0, 1, &p->sp.min_p, err, errlen)) return -1;
    if (get_num(o, "repetition_penalty", SAMPLER_MIN_REPETITION_PENALTY, SAMPLER_MAX_REPETITION_PENALTY,
                &p->sp.repetition_penalty, err, errlen))
        return -1;
    if (get_num(o, "presence_penalty", -SAMPLER_MAX_PENALTY, SAMPLER_MAX_PENALTY, &p->sp.presence_penalty, err,
                errlen) ||
        get_num(o, "frequency_penalty", -SAMPLER_MAX_PENALTY, SAMPLER_MAX_PENALTY, &p->sp.frequency_penalty, err,
                errlen) ||
        get_logit_bias(o, p, err, errlen) || get_bool(o, "ignore_eos", &p->sp.ignore_eos, err, errlen))
        return -1;
    i64 = 0;
    if (get_int(o, "min_tokens", 0, SRV_MAX_TOKENS, &i64, err, errlen)) return -1;
    p->sp.min_tokens = (int)i64;
    i64 = -1;
    if (get_int(o, "seed", 0, INT64_MAX, &i64, err, errlen)) return -1;
    if (i64 >= 0) {
        p->sp.seed = (uint64_t)i64;
        p->seed_set = 1;
    }
    return 0;
}

/* OpenAI's logprobs (true/false, or how many alternatives per token) and
 * echo; max_tokens 0 only with echo (a scoring request). 0, or -1 with err
 * set. */
static int get_openai_logprobs(json_t *o, srv_gen_params *p, char *err, size_t errlen)
{
    int64_t i64;
    json_t *lp = field(o, "logprobs");
    if (lp && json_is_boolean(lp)) {
        p->logprobs = json_is_true(lp) ? 0 : -1;
    } else {
        i64 = -1;
        if (get_int(o, "logprobs", 0, SRV_MAX_TOP_LOGPROBS, &i64, err, errlen)) return -1;
        p->logprobs = (int)i64;
    }
    if (get_bool(o, "echo", &p->echo, err, errlen)) return -1;
    if (p->max_tokens == 0 && !p->echo) {
        fail(err, errlen, "max_tokens: 0 is only allowed with echo");
        return -1;
    }
    return 0;
}

int srv_parse_generate(const char *body, size_t len, int openai, srv_gen_params *p, char *err,
                       size_t errlen)
{
    memset(p, 0, sizeof *p);
    sampler_params_default(&p->sp);
    p->max_tokens = openai ? 16 : 64;
    p->n = p->best_of = 1;
    p->logprobs = openai ? -1 : 0;
    json_t *o = load_object(body, len, err, errlen);
    if (!o) return -1;
    int64_t i64;
    int rc = -1;
    if (check_keys(o, openai ? completion_keys : generate_keys, err, errlen)) goto out;
    if (openai) {
        i64 = 1;
        if (get_int(o, "n", 1, SRV_MAX_CHOICES, &i64, err, errlen)) goto out;
        p->n = (int)i64;
        i64 = p->n;
        if (get_int(o, "best_of", p->n, SRV_MAX_CHOICES, &i64, err, errlen)) goto out;
        p->best_of = (int)i64;
        /* model and user: strings, not used (one model is served; no
         * per-user policy), but still checked like every field */
        static const char *const unused[] = {"model", "user"};
        for (int i = 0; i < 2; i++)
            if (field(o, unused[i]) && !json_is_string(field(o, unused[i]))) {
                fail(err, errlen, "%s: must be a string", unused[i]);
                goto out;
            }
        if (get_openai_prompt(o, p, err, errlen)) goto out;
    } else if (get_string(o, "prompt", 1, &p->prompt, &p->prompt_len, err, errlen)) {
        goto out;
    }
    i64 = p->max_tokens;
    if (get_int(o, "max_tokens", openai ? 0 : 1, SRV_MAX_TOKENS, &i64, err, errlen)) goto out;
    p->max_tokens = (int)i64;
    if (get_sampling(o, p, err, errlen)) goto out;
    if (get_stop(o, p, err, errlen)) goto out;
    if (openai ? get_openai_logprobs(o, p, err, errlen) : get_bool(o, "logprobs", &p->logprobs, err, errlen))
        goto out;
    if (get_bool(o, "stream", &p->stream, err, errlen)) goto out;
    if (p->stream && (p->n_more > 0 || p->best_of > 1)) {
        fail(err, errlen, "stream: only with one prompt, n = 1 and best_of = 1");
        goto out;
    }
    if (openai && get_stream_options(o, p, err, errlen)) goto out;
    if (get_bool(o, "truncate", &p->truncate, err, errlen)) goto out;
    i64 = 0;
    if (get_int(o, "timeout_ms", 1, INT32_MAX, &i64, err, errlen)) goto out;
    p->timeout_ms = i64;
    if (sampler_params_validate(&p->sp, err, errlen)) goto out;
    rc = 0;
out:
    json_decref(o);
    if (rc) srv_gen_params_free(p);
    return rc;
}

void srv_gen_params_free(srv_gen_params *p)
{
    if (!p) return;
    free(p->prompt);
    free(p->prompt_ids);
    for (int i = 0; i < p->n_stop; i++) free(p->stop[i]);
    free(p->stop);
    free(p->stop_len);
    free(p->bias_id);
    free(p->bias);
    for (int i = 0; i < p->n_more; i++) {
        free(p->more[i].text);
        free(p->more[i].ids);
    }
    free(p->more);
    memset(p, 0, sizeof *p);
}

static const char *const score_keys[] = {"text", "texts", "context", "continuation",
                                         "token_logprobs", "truncate", "timeout_ms", NULL};

static int score_texts(json_t *o, srv_score_params *p, char *err, size_t errlen)
{
    json_t *v = field(o, "texts");
    if (!json_is_array(v)) return fail(err, errlen, "texts: must be an array of strings");
    size_t n = json_array_size(v);
    if (n == 0 || n > SRV_MAX_TEXTS) return fail(err, errlen, "texts: must hold 1 to %d strings", SRV_MAX_TEXTS);
    p->texts = calloc(n, sizeof *p->texts);
    p->lens = calloc(n, sizeof *p->lens);
    if (!p->texts || !p->lens) return fail(err, errlen, "texts: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s)) return fail(err, errlen, "texts[%zu]: must be a string", i);
        if (json_string_length(s) == 0) return fail(err, errlen, "texts[%zu]: empty", i);
        p->lens[i] = json_string_length(s);
        p->texts[i] = dup_bytes(json_string_value(s), p->lens[i]);
        if (!p->texts[i]) return fail(err, errlen, "texts: out of memory");
        p->n_texts = (int)i + 1;
    }
    return 0;
}

int srv_parse_score(const char *body, size_t len, srv_score_params *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    json_t *o = load_object(body, len, err, errlen);
    if (!o) return -1;
    int rc = -1;
    int64_t i64 = 0;
    if (check_keys(o, score_keys, err, errlen)) goto out;
    int has_text = field(o, "text") != NULL, has_texts = field(o, "texts") != NULL;
    int has_cont = field(o, "context") != NULL || field(o, "continuation") != NULL;
    if (has_text + has_texts + has_cont != 1) {
        fail(err, errlen, "text: give exactly one of text, texts, or context with continuation");
        goto out;
    }
    if (has_text) {
        p->kind = SRV_SCORE_TEXT;
        p->texts = calloc(1, sizeof *p->texts);
        p->lens = calloc(1, sizeof *p->lens);
        if (!p->texts || !p->lens) {
            fail(err, errlen, "text: out of memory");
            goto out;
        }
        if (get_string(o, "text", 1, &p->texts[0], &p->lens[0], err, errlen)) goto out;
        p->n_texts = 1;
        if (p->lens[0] == 0) {
            fail(err, errlen, "text: empty");
            goto out;
        }
    } else if (has_texts) {
        p->kind = SRV_SCORE_TEXTS;
        if (score_texts(o, p, err, errlen)) goto out;
    } else {
        p->kind = SRV_SCORE_CONT;
        if (get_string(o, "context", 1, &p->ctx, &p->ctx_len, err, errlen)) goto out;
        if (get_string(o, "continuation", 1, &p->cont, &p->cont_len, err, errlen)) goto out;
        if (p->cont_len == 0) {
            fail(err, errlen, "continuation: empty");
            goto out;
        }
    }
    if (get_bool(o, "token_logprobs", &p->token_logprobs, err, errlen)) goto out;
    if (get_bool(o, "truncate", &p->truncate, err, errlen)) goto out;
    if (get_int(o, "timeout_ms", 1, INT32_MAX, &i64, err, errlen)) goto out;
    p->timeout_ms = i64;
    rc = 0;
out:
    json_decref(o);
    if (rc) srv_score_params_free(p);
    return rc;
}

void srv_score_params_free(srv_score_params *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_texts; i++) free(p->texts[i]);
    free(p->texts);
    free(p->lens);
    free(p->ctx);
    free(p->cont);
    memset(p, 0, sizeof *p);
}

int srv_parse_tokenize(const char *body, size_t len, srv_tokenize_params *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"text", "prompt", "add_special_tokens", "with_pieces", NULL};
    memset(out, 0, sizeof *out);
    json_t *o = load_object(body, len, err, errlen);
    if (!o) return -1;
    int rc = check_keys(o, keys, err, errlen);
    const char *name = field(o, "prompt") ? "prompt" : "text";
    if (!rc && field(o, "prompt") && field(o, "text")) rc = fail(err, errlen, "prompt: give text or prompt, not both");
    if (!rc) rc = get_string(o, name, 1, &out->text, &out->len, err, errlen);
    if (!rc) rc = get_bool(o, "add_special_tokens", &out->add_special_tokens, err, errlen);
    if (!rc) rc = get_bool(o, "with_pieces", &out->with_pieces, err, errlen);
    json_decref(o);
    if (rc) {
        free(out->text);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int srv_parse_detokenize(const char *body, size_t len, int32_t **ids, int *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"tokens", NULL};
    *ids = NULL;
    *n = 0;
    json_t *o = load_object(body, len, err, errlen);
    if (!o) return -1;
    int rc = check_keys(o, keys, err, errlen);
    json_t *v = rc ? NULL : field(o, "tokens");
    if (!rc && !json_is_array(v)) rc = fail(err, errlen, "tokens: must be an array of token ids");
    size_t cnt = rc ? 0 : json_array_size(v);
    if (!rc && cnt > INT32_MAX / 4) rc = fail(err, errlen, "tokens: too many");
    if (!rc && !(*ids = malloc((cnt ? cnt : 1) * sizeof **ids))) rc = fail(err, errlen, "tokens: out of memory");
    for (size_t i = 0; !rc && i < cnt; i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            rc = fail(err, errlen, "tokens[%zu]: must be a token id", i);
        else
            (*ids)[i] = (int32_t)json_integer_value(t);
    }
    json_decref(o);
    if (rc) {
        free(*ids);
        *ids = NULL;
        return rc;
    }
    *n = (int)cnt;
    return 0;
}
