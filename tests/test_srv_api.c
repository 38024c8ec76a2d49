/*
 * test_srv_api.c - the server's request parsers (server/srv_api.c) as pure
 * functions: defaults, every field's type and range, error messages naming
 * the field, and a bounded mutation fuzz (random byte edits of valid bodies:
 * the parser must return 0 with sane values or -1 with a message that names
 * a field, and never crash or leak - run under ASan).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_api.h"
#include "test.h"

static char err[256];

static int gen(const char *body, int openai, srv_gen_params *p)
{
    err[0] = 0;
    return srv_parse_generate(body, strlen(body), openai, p, err, sizeof err);
}

/* The message starts with "field:" */
static int names(const char *field)
{
    size_t n = strlen(field);
    return !strncmp(err, field, n) && err[n] == ':';
}

TEST(test_generate_defaults)
{
    srv_gen_params p;
    CHECK(gen("{\"prompt\":\"hi\"}", 0, &p) == 0);
    CHECK(p.prompt_len == 2 && !memcmp(p.prompt, "hi", 2));
    CHECK(p.max_tokens == 64);
    CHECK(p.sp.temperature == 1.0f && p.sp.top_k == 0 && p.sp.top_p == 1.0f && p.sp.min_p == 0.0f);
    CHECK(p.sp.repetition_penalty == 1.0f && !p.seed_set);
    CHECK(p.n_stop == 0 && !p.logprobs && !p.stream && !p.truncate && p.timeout_ms == 0);
    srv_gen_params_free(&p);
    CHECK(gen("{\"prompt\":\"hi\"}", 1, &p) == 0);
    CHECK(p.max_tokens == 16 && p.logprobs == -1 && !p.echo);
    srv_gen_params_free(&p);
}

TEST(test_generate_fields)
{
    srv_gen_params p;
    CHECK(gen("{\"prompt\":\"a\\u0000b\",\"max_tokens\":7,\"temperature\":0,\"top_k\":5,\"top_p\":0.5,"
              "\"min_p\":0.1,\"repetition_penalty\":1.2,\"seed\":18446744073,\"stop\":[\"x\",\"yz\"],"
              "\"logprobs\":true,\"stream\":true,\"truncate\":true,\"timeout_ms\":250}",
              0, &p) == 0);
    CHECK(p.prompt_len == 3 && p.prompt[1] == 0);   /* NUL kept */
    CHECK(p.max_tokens == 7 && p.sp.temperature == 0 && p.sp.top_k == 5);
    CHECK_NEAR(p.sp.top_p, 0.5, 1e-7);
    CHECK_NEAR(p.sp.min_p, 0.1, 1e-7);
    CHECK_NEAR(p.sp.repetition_penalty, 1.2, 1e-6);
    CHECK(p.seed_set && p.sp.seed == 18446744073ull);
    CHECK(p.n_stop == 2 && p.stop_len[1] == 2 && !memcmp(p.stop[1], "yz", 2));
    CHECK(p.logprobs == 1 && p.stream && p.truncate && p.timeout_ms == 250);
    srv_gen_params_free(&p);
    /* null means default */
    CHECK(gen("{\"prompt\":\"a\",\"seed\":null,\"stop\":null,\"max_tokens\":null}", 0, &p) == 0);
    CHECK(!p.seed_set && p.n_stop == 0 && p.max_tokens == 64);
    srv_gen_params_free(&p);
    /* OpenAI: stop as a string, token-id prompt, logprobs as an integer, echo */
    CHECK(gen("{\"prompt\":[5,6,7],\"stop\":\"\\n\",\"logprobs\":3,\"echo\":true,\"max_tokens\":0,\"model\":\"m\","
              "\"user\":\"u\"}",
              1, &p) == 0);
    CHECK(p.prompt == NULL && p.n_prompt_ids == 3 && p.prompt_ids[2] == 7);
    CHECK(p.n_stop == 1 && p.stop[0][0] == '\n' && p.logprobs == 3 && p.echo && p.max_tokens == 0);
    srv_gen_params_free(&p);
    CHECK(gen("{\"prompt\":[\"one\"]}", 1, &p) == 0);
    CHECK(p.prompt_len == 3 && !memcmp(p.prompt, "one", 3));
    srv_gen_params_free(&p);
    /* OpenAI's stream_options, only with stream; model may be null (lm-eval
     * sends its unset model as null) */
    CHECK(gen("{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"model\":null}", 1,
              &p) == 0 &&
          p.include_usage && p.stream);
    srv_gen_params_free(&p);
    CHECK(gen("{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}", 1, &p) == 0 &&
          !p.include_usage);
    srv_gen_params_free(&p);
    CHECK(gen("{\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}", 1, &p) == -1 &&
          names("stream_options"));
    CHECK(gen("{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"usage\":true}}", 1, &p) == -1 &&
          !strncmp(err, "stream_options.usage: unknown field", 35));
    CHECK(gen("{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0, &p) == -1 &&
          names("stream_options"));
}

TEST(test_generate_errors)
{
    static const struct {
        const char *body;
        int openai;
        const char *field;
    } cases[] = {
        {"", 0, "body"},
        {"{", 0, "body"},
        {"[]", 0, "body"},
        {"\"s\"", 0, "body"},
        {"{\"prompt\":\"a\",\"prompt\":\"b\"}", 0, "body"},
        {"{}", 0, "prompt"},
        {"{\"prompt\":null}", 0, "prompt"},
        {"{\"prompt\":[\"a\"]}", 0, "prompt"},
        {"{\"prompt\":\"a\",\"max_tokens\":0}", 0, "max_tokens"},
        {"{\"prompt\":\"a\",\"max_tokens\":1e3}", 0, "max_tokens"},
        {"{\"prompt\":\"a\",\"max_tokens\":99999999999}", 0, "max_tokens"},
        {"{\"prompt\":\"a\",\"temperature\":true}", 0, "temperature"},
        {"{\"prompt\":\"a\",\"temperature\":101}", 0, "temperature"},
        {"{\"prompt\":\"a\",\"top_k\":1.5}", 0, "top_k"},
        {"{\"prompt\":\"a\",\"top_p\":-0.1}", 0, "top_p"},
        {"{\"prompt\":\"a\",\"min_p\":-1}", 0, "min_p"},
        {"{\"prompt\":\"a\",\"repetition_penalty\":0.001}", 0, "repetition_penalty"},
        {"{\"prompt\":\"a\",\"seed\":\"1\"}", 0, "seed"},
        {"{\"prompt\":\"a\",\"stop\":5}", 0, "stop"},
        {"{\"prompt\":\"a\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\","
         "\"o\",\"p\",\"q\"]}",
         0, "stop"},
        {"{\"prompt\":\"a\",\"stop\":[\"a\",null]}", 0, "stop[1]"},
        {"{\"prompt\":\"a\",\"logprobs\":1}", 0, "logprobs"},
        {"{\"prompt\":\"a\",\"stream\":\"true\"}", 0, "stream"},
        {"{\"prompt\":\"a\",\"truncate\":0}", 0, "truncate"},
        {"{\"prompt\":\"a\",\"echo\":true}", 0, "echo"},
        {"{\"prompt\":\"a\",\"timeout_ms\":-5}", 0, "timeout_ms"},
        {"{\"prompt\":\"a\",\"n\":17}", 1, "n"},
        {"{\"prompt\":\"a\",\"n\":2,\"best_of\":1}", 1, "best_of"},
        {"{\"prompt\":\"a\",\"logprobs\":6}", 1, "logprobs"},
        {"{\"prompt\":\"a\",\"max_tokens\":0}", 1, "max_tokens"},
        {"{\"prompt\":[]}", 1, "prompt"},
        {"{\"prompt\":[1,-1]}", 1, "prompt[1]"},
        {"{\"prompt\":[1,\"a\"]}", 1, "prompt[1]"},
        {"{\"prompt\":{}}", 1, "prompt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_gen_params p;
        int rc = gen(cases[i].body, cases[i].openai, &p);
        CHECK_MSG(rc == -1 && names(cases[i].field), "'%s': rc %d, message '%s', want field %s", cases[i].body, rc,
                  err, cases[i].field);
        if (rc == 0) srv_gen_params_free(&p);
    }
}

TEST(test_score_parse)
{
    srv_score_params p;
    const char *b = "{\"text\":\"hello\",\"token_logprobs\":true}";
    CHECK(srv_parse_score(b, strlen(b), &p, err, sizeof err) == 0);
    CHECK(p.kind == SRV_SCORE_TEXT && p.n_texts == 1 && p.lens[0] == 5 && p.token_logprobs);
    srv_score_params_free(&p);
    b = "{\"texts\":[\"a\",\"bc\"]}";
    CHECK(srv_parse_score(b, strlen(b), &p, err, sizeof err) == 0);
    CHECK(p.kind == SRV_SCORE_TEXTS && p.n_texts == 2 && p.lens[1] == 2);
    srv_score_params_free(&p);
    b = "{\"context\":\"\",\"continuation\":\" x\",\"truncate\":true}";
    CHECK(srv_parse_score(b, strlen(b), &p, err, sizeof err) == 0);
    CHECK(p.kind == SRV_SCORE_CONT && p.ctx_len == 0 && p.cont_len == 2 && p.truncate);
    srv_score_params_free(&p);
    static const char *const bad[][2] = {
        {"{}", "text"},
        {"{\"text\":\"\"}", "text"},
        {"{\"text\":1}", "text"},
        {"{\"texts\":\"a\"}", "texts"},
        {"{\"texts\":[\"\"]}", "texts[0]"},
        {"{\"text\":\"a\",\"context\":\"b\",\"continuation\":\"c\"}", "text"},
        {"{\"continuation\":\"c\"}", "context"},
        {"{\"context\":\"c\",\"continuation\":\"\"}", "continuation"},
        {"{\"text\":\"a\",\"extra\":1}", "extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = srv_parse_score(bad[i][0], strlen(bad[i][0]), &p, err, sizeof err);
        CHECK_MSG(rc == -1 && names(bad[i][1]), "'%s': rc %d, '%s'", bad[i][0], rc, err);
        if (rc == 0) srv_score_params_free(&p);
    }
}

TEST(test_tokenize_parse)
{
    srv_tokenize_params tp;
    CHECK(srv_parse_tokenize("{\"text\":\"\"}", 11, &tp, err, sizeof err) == 0 && tp.len == 0 && tp.text &&
          !tp.text[0] && !tp.add_special_tokens && !tp.with_pieces);
    free(tp.text);
    CHECK(srv_parse_tokenize("{\"text\":2}", 10, &tp, err, sizeof err) == -1 && names("text") && !tp.text);
    /* lm-evaluation-harness's form */
    const char *lm = "{\"prompt\":\"ab\",\"add_special_tokens\":true,\"with_pieces\":true}";
    CHECK(srv_parse_tokenize(lm, strlen(lm), &tp, err, sizeof err) == 0 && tp.len == 2 && !strcmp(tp.text, "ab") &&
          tp.add_special_tokens && tp.with_pieces);
    free(tp.text);
    const char *both = "{\"prompt\":\"a\",\"text\":\"b\"}";
    CHECK(srv_parse_tokenize(both, strlen(both), &tp, err, sizeof err) == -1 && names("prompt") && !tp.text);
    const char *badb = "{\"prompt\":\"a\",\"add_special_tokens\":1}";
    CHECK(srv_parse_tokenize(badb, strlen(badb), &tp, err, sizeof err) == -1 && names("add_special_tokens"));
    const char *unk = "{\"prompt\":\"a\",\"model\":\"x\"}";
    CHECK(srv_parse_tokenize(unk, strlen(unk), &tp, err, sizeof err) == -1 && names("model"));
    int32_t *ids;
    int k;
    const char *b = "{\"tokens\":[0,5,2147483647]}";
    CHECK(srv_parse_detokenize(b, strlen(b), &ids, &k, err, sizeof err) == 0 && k == 3 && ids[2] == INT32_MAX);
    free(ids);
    b = "{\"tokens\":[]}";
    CHECK(srv_parse_detokenize(b, strlen(b), &ids, &k, err, sizeof err) == 0 && k == 0);
    free(ids);
    b = "{\"tokens\":[1,2147483648]}";
    CHECK(srv_parse_detokenize(b, strlen(b), &ids, &k, err, sizeof err) == -1 && names("tokens[1]") && !ids);
}

/* Error messages must be "field: what is wrong", the field without spaces
 * or colons (hostile keys are shown with '?' for such bytes). */
static int field_named(void)
{
    const char *c = strstr(err, ": ");
    if (!c || c == err) return 0;
    for (const char *p = err; p < c; p++)
        if (*p <= 32 || *p == ':' || *p >= 127) return 0;
    return 1;
}

/* Regression (found by tests/fuzz/fuzz_api): an empty unknown key gave the
 * message ": unknown field", which names no field. */
TEST(test_empty_key_named)
{
    srv_gen_params p;
    CHECK(gen("{\"\":[]}", 0, &p) == -1 && names("\"\""));
    srv_score_params sp;
    err[0] = 0;
    CHECK(srv_parse_score("{\"\":1}", 6, &sp, err, sizeof err) == -1 && names("\"\""));
}

TEST(test_mutation_fuzz)
{
    static const char *const seeds[] = {
        "{\"prompt\":\"the model\",\"max_tokens\":12,\"seed\":5,\"stop\":[\"a\"],\"logprobs\":true}",
        "{\"prompt\":[1,2,3],\"echo\":true,\"logprobs\":2,\"max_tokens\":0,\"stream\":false}",
        "{\"texts\":[\"a b\",\"c\"],\"token_logprobs\":true}",
        "{\"context\":\"x\",\"continuation\":\" y\",\"truncate\":false}",
        "{\"tokens\":[1,2,3]}",
    };
    static const char alphabet[] = "{}[]\":,0123456789-.eE+ntrufalsx\\u\x00\xff ";
    uint64_t x = 12345;
    int n_ok = 0, n_err = 0, bad_msg = 0;
    char buf[512];
    for (int it = 0; it < 20000; it++) {
        const char *s = seeds[it % 5];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(x % 4);
        for (int e = 0; e < edits; e++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(x >> 33) % (n + 1);
            int op = (int)((x >> 20) % 3);
            char c = alphabet[(x >> 40) % (sizeof alphabet - 1)];
            if (op == 0 && pos < n) buf[pos] = c;                           /* replace */
            else if (op == 1 && n + 1 < sizeof buf) {                       /* insert */
                memmove(buf + pos + 1, buf + pos, n - pos);
                buf[pos] = c;
                n++;
            } else if (pos < n) {                                            /* delete */
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
            }
        }
        int rc;
        srv_gen_params g;
        srv_score_params sc;
        srv_tokenize_params tk;
        int32_t *ids;
        int k;
        switch (it % 5) {
        case 0:
        case 1:
            rc = srv_parse_generate(buf, n, it % 2, &g, err, sizeof err);
            if (rc == 0) {
                if (g.max_tokens < 0 || (g.prompt == NULL && g.n_prompt_ids <= 0) || g.n_stop > SRV_MAX_STOP) bad_msg++;
                srv_gen_params_free(&g);
            }
            break;
        case 2:
        case 3:
            rc = srv_parse_score(buf, n, &sc, err, sizeof err);
            if (rc == 0) srv_score_params_free(&sc);
            break;
        default:
            if (srv_parse_tokenize(buf, n, &tk, err, sizeof err) == 0) free(tk.text);
            else if (!field_named()) bad_msg++;
            rc = srv_parse_detokenize(buf, n, &ids, &k, err, sizeof err);
            if (rc == 0) free(ids);
            break;
        }
        if (rc == 0) n_ok++;
        else {
            n_err++;
            if (!field_named()) {
                if (bad_msg < 5) printf("  unnamed error: '%s' for '%.*s'\n", err, (int)n, buf);
                bad_msg++;
            }
        }
    }
    printf("  %d accepted, %d rejected\n", n_ok, n_err);
    CHECK(bad_msg == 0);
    /* few mutants stay valid: most edits hit a key, and every route rejects unknown keys */
    CHECK(n_ok > 10 && n_err > 1000);
}

int main(void)
{
    RUN(test_generate_defaults);
    RUN(test_generate_fields);
    RUN(test_generate_errors);
    RUN(test_score_parse);
    RUN(test_tokenize_parse);
    RUN(test_empty_key_named);
    RUN(test_mutation_fuzz);
    return test_summary();
}
