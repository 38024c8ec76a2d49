/*
 * fuzz_api.c - libFuzzer target: the request parsers of every POST route
 * (server/srv_api.h), the pure functions that turn a body into a validated
 * request. The first byte picks the route, the rest is the body:
 *   0 /generate   1 /v1/completions   2 /score   3 /tokenize   4 /detokenize
 * Properties beyond "no crash, no leak": on failure err names a field
 * ("field: ..." with a printable field) and the outputs are empty; on
 * success every value is inside the range the server relies on.
 * Dictionary: tests/fuzz/api.dict (field names, JSON tokens).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                  \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "fuzz_api: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* "field: message" with a non-empty printable field name */
static void check_err(const char *err)
{
    const char *c = strchr(err, ':');
    REQUIRE(c && c > err && c[1] == ' ');
    for (const char *p = err; p < c; p++) REQUIRE(*p > 32 && *p < 127);
}

static void check_gen(const srv_gen_params *p, int openai)
{
    REQUIRE((p->prompt != NULL) != (p->prompt_ids != NULL));
    if (p->prompt) REQUIRE(p->prompt[p->prompt_len] == 0);
    if (p->prompt_ids) {
        REQUIRE(openai && p->n_prompt_ids > 0);
        for (int i = 0; i < p->n_prompt_ids; i++) REQUIRE(p->prompt_ids[i] >= 0);
    }
    REQUIRE(p->max_tokens >= (openai ? 0 : 1) && p->max_tokens <= SRV_MAX_TOKENS);
    REQUIRE(p->max_tokens > 0 || p->echo);
    REQUIRE(isfinite(p->sp.temperature) && p->sp.temperature >= 0);
    REQUIRE(p->sp.top_k >= 0);
    REQUIRE(p->sp.top_p > 0 && p->sp.top_p <= 1);
    REQUIRE(p->sp.min_p >= 0 && p->sp.min_p <= 1);
    REQUIRE(p->sp.repetition_penalty > 0 && isfinite(p->sp.repetition_penalty));
    REQUIRE(p->n_stop >= 0 && p->n_stop <= SRV_MAX_STOP);
    for (int i = 0; i < p->n_stop; i++) REQUIRE(p->stop_len[i] >= 1 && p->stop_len[i] <= SRV_MAX_STOP_LEN);
    REQUIRE(openai ? (p->logprobs >= -1 && p->logprobs <= SRV_MAX_TOP_LOGPROBS) : (p->logprobs == 0 || p->logprobs == 1));
    REQUIRE(p->stream == 0 || p->stream == 1);
    REQUIRE(p->truncate == 0 || p->truncate == 1);
    REQUIRE(p->echo == 0 || (openai && p->echo == 1));
    REQUIRE(p->timeout_ms >= 0 && p->timeout_ms <= INT32_MAX);
}

static void check_score(const srv_score_params *p)
{
    if (p->kind == SRV_SCORE_CONT) {
        REQUIRE(p->ctx && p->cont && p->cont_len > 0 && p->n_texts == 0);
        REQUIRE(p->ctx[p->ctx_len] == 0 && p->cont[p->cont_len] == 0);
    } else {
        REQUIRE(p->kind == SRV_SCORE_TEXT || p->kind == SRV_SCORE_TEXTS);
        REQUIRE(p->n_texts >= 1 && p->n_texts <= SRV_MAX_TEXTS);
        REQUIRE(p->kind == SRV_SCORE_TEXTS || p->n_texts == 1);
        for (int i = 0; i < p->n_texts; i++) REQUIRE(p->lens[i] > 0 && p->texts[i][p->lens[i]] == 0);
    }
    REQUIRE(p->timeout_ms >= 0 && p->timeout_ms <= INT32_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* the body in its own allocation of exactly its size: ASan sees any
     * read past the end (the server's body buffer is not NUL-terminated) */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, data + 1, len);
    char err[256];
    err[0] = 0;
    int rc;
    switch (data[0] % 5) {
    case 0:
    case 1: {
        int openai = data[0] % 5 == 1;
        srv_gen_params p;
        rc = srv_parse_generate(body, len, openai, &p, err, sizeof err);
        if (rc == 0) check_gen(&p, openai);
        else REQUIRE(p.prompt == NULL && p.prompt_ids == NULL && p.stop == NULL && p.n_stop == 0);
        srv_gen_params_free(&p);
        break;
    }
    case 2: {
        srv_score_params p;
        rc = srv_parse_score(body, len, &p, err, sizeof err);
        if (rc == 0) check_score(&p);
        else REQUIRE(p.texts == NULL && p.ctx == NULL && p.cont == NULL && p.n_texts == 0);
        srv_score_params_free(&p);
        break;
    }
    case 3: {
        srv_tokenize_params tp;
        rc = srv_parse_tokenize(body, len, &tp, err, sizeof err);
        if (rc == 0) REQUIRE(tp.text && tp.text[tp.len] == 0);
        else REQUIRE(tp.text == NULL);
        free(tp.text);
        break;
    }
    default: {
        int32_t *ids = NULL;
        int n = -1;
        rc = srv_parse_detokenize(body, len, &ids, &n, err, sizeof err);
        if (rc == 0) {
            REQUIRE(ids && n >= 0);
            for (int i = 0; i < n; i++) REQUIRE(ids[i] >= 0);
        } else {
            REQUIRE(ids == NULL && n == 0);
        }
        free(ids);
        break;
    }
    }
    REQUIRE(rc == 0 || rc == -1);
    if (rc) check_err(err);
    free(body);
    return 0;
}
