/*
 * test_static.c - the playground page compiled into the binary and the
 * /v1/attention body (server/srv_static.h), without a server:
 *   - every file of server/web/ with a served extension is embedded byte
 *     for byte (read back from the tree; run from the repository root, as
 *     tests/run.sh does), with its content type and a distinct ETag, and
 *     nothing else is; the page stays under its 100 KB budget;
 *   - URL lookup, If-None-Match matching, index parsing: tables of cases;
 *   - srv_attention_json against a naive causal softmax (double) of the
 *     parameters written into an in-memory checkpoint: R for random and
 *     fixed_random, R1 R2^T for factorized_random; 404 for input-dependent
 *     variants, 400 for bad indices; rows are ragged (row i: i+1 weights).
 * The HTTP side (headers, 304, routing, API key) is checked end to end by
 * tests/t_browser.sh.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "model.h"
#include "quant.h"
#include "srv_static.h"
#include "test.h"
#include "fixture.h"
#include "test_util.h"
#include "tok.h"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            char *p = realloc(b, cap *= 2);
            if (!p) free(b);
            b = p;
        }
    }
    fclose(f);
    *n = len;
    return b;
}

static const char *ctype_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return NULL;
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    return NULL;
}

TEST(test_embedded_files_match_tree)
{
    DIR *d = opendir("server/web");
    CHECK_MSG(d != NULL, "cannot open server/web (run from the repository root)");
    if (!d) return;
    int seen = 0;
    size_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *ct = ctype_of(e->d_name);
        if (!ct) continue;
        char url[300], path[300];
        snprintf(url, sizeof url, "/%s", strcmp(e->d_name, "index.html") ? e->d_name : "");
        snprintf(path, sizeof path, "server/web/%s", e->d_name);
        size_t n = 0;
        char *b = slurp(path, &n);
        const srv_static_file *f = srv_static_find(url);
        CHECK_MSG(f != NULL, "%s is not embedded at %s", path, url);
        if (f && b) {
            CHECK_MSG(f->len == n && !memcmp(f->data, b, n),
                      "%s differs from its embedded copy (rebuild)", path);
            CHECK_MSG(!strcmp(f->content_type, ct), "%s: content type %s", url, f->content_type);
            CHECK(f->data[f->len] == 0);
        }
        free(b);
        total += n;
        seen++;
    }
    closedir(d);
    CHECK_MSG(seen == srv_static_count(), "%d files in server/web, %d embedded", seen, srv_static_count());
    CHECK_MSG(total < 100 * 1024, "page is %zu bytes", total);
    CHECK(srv_static_find("/") && strstr((const char *)srv_static_find("/")->data, "<!doctype html>"));
    /* ETags: quoted, 16 hex digits, one per content */
    for (int i = 0; i < srv_static_count(); i++) {
        const char *t = srv_static_file_at(i)->etag;
        CHECK_MSG(strlen(t) == 18 && t[0] == '"' && t[17] == '"' && strspn(t + 1, "0123456789abcdef") == 16,
                  "etag %s", t);
        for (int j = 0; j < i; j++) CHECK(strcmp(t, srv_static_file_at(j)->etag) != 0);
    }
    CHECK(srv_static_file_at(-1) == NULL && srv_static_file_at(srv_static_count()) == NULL);
    /* the ETag is the FNV-1a hash of the content (independent loop) */
    for (int i = 0; i < srv_static_count(); i++) {
        const srv_static_file *f = srv_static_file_at(i);
        unsigned long long h = 14695981039346656037ull;
        for (size_t k = 0; k < f->len; k++) h = (h ^ f->data[k]) * 1099511628211ull;
        char want[32];
        snprintf(want, sizeof want, "\"%016llx\"", h);
        CHECK_MSG(!strcmp(f->etag, want), "%s: etag %s, want %s", f->path, f->etag, want);
    }
}

TEST(test_find)
{
    CHECK(srv_static_find("/") != NULL);
    CHECK(srv_static_find("/app.js") != NULL);
    CHECK(srv_static_find("/style.css") != NULL);
    const char *missing[] = {"", "/index.html", "/APP.JS", "/app.js/", "//app.js", "/../app.js", "/web/app.js",
                             "app.js", "/app.js%00", "/embed.py", "/generate"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        CHECK_MSG(srv_static_find(missing[i]) == NULL, "found %s", missing[i]);
    CHECK(srv_static_find(NULL) == NULL);
}

TEST(test_etag_match)
{
    const char *tag = "\"0123456789abcdef\"";
    struct {
        const char *h;
        int want;
    } cases[] = {
        {"\"0123456789abcdef\"", 1},
        {"W/\"0123456789abcdef\"", 1},
        {"*", 1},
        {"\"aaaa\", \"0123456789abcdef\"", 1},
        {"\"aaaa\",W/\"0123456789abcdef\" ", 1},
        {"  \"0123456789abcdef\"", 1},
        {"\"0123456789abcde\"", 0},
        {"\"0123456789abcdef0\"", 0},
        {"0123456789abcdef", 0},
        {"\"0123456789abcdef", 0},
        {"", 0},
        {",,", 0},
        {"W/", 0},
        {"\"x\" junk \"0123456789abcdef\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(srv_static_etag_match(cases[i].h, tag) == cases[i].want, "If-None-Match: %s", cases[i].h);
    CHECK(srv_static_etag_match(NULL, tag) == 0);
}

TEST(test_parse_index)
{
    struct {
        const char *s;
        int n, ok, want;
    } cases[] = {
        {"0", 4, 1, 0},      {"3", 4, 1, 3},      {"4", 4, 0, 0},          {"-1", 4, 0, 0},
        {"+1", 4, 0, 0},     {"01", 4, 0, 0},     {"", 4, 0, 0},           {" 1", 4, 0, 0},
        {"1 ", 4, 0, 0},     {"1.0", 4, 0, 0},    {"0x1", 4, 0, 0},        {"1e0", 4, 0, 0},
        {"99999999999999999999", 4, 0, 0},        {"123456789", 1000000000, 1, 123456789},
        {"1234567890", 2000000000, 0, 0},         {"0", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int v = -7;
        int rc = srv_static_parse_index(cases[i].s, cases[i].n, &v);
        CHECK_MSG((rc == 0) == cases[i].ok && (!cases[i].ok || v == cases[i].want), "'%s' in [0, %d): rc %d v %d",
                  cases[i].s, cases[i].n, rc, v);
    }
    int v;
    CHECK(srv_static_parse_index(NULL, 4, &v) == -1);
}

/* ---- attention ---- */

typedef struct {
    arch_hparams hp;
    arch_tensor *ts;
    float **p;
    int n;
    void *buf;
    size_t size;
    model *m;
} fixture;


static int fixture_init(fixture *f, arch_variant v)
{
    memset(f, 0, sizeof *f);
    arch_hparams_default(&f->hp);
    f->hp.n_vocab = 257;
    f->hp.n_ctx = 12;
    f->hp.n_embd = 32;
    f->hp.n_layer = 2;
    f->hp.n_head = 2;
    f->hp.n_ff = 64;
    f->hp.fr_rank = 3;
    f->hp.fd_a = 3;
    f->hp.fd_b = 4;
    f->hp.variant = v;
    f->n = arch_tensors(&f->hp, NULL, 0);
    f->ts = calloc((size_t)f->n, sizeof *f->ts);
    f->p = calloc((size_t)f->n, sizeof *f->p);
    arch_tensors(&f->hp, f->ts, f->n);
    for (int i = 0; i < f->n; i++) f->p[i] = malloc(sizeof(float) * (size_t)f->ts[i].n_elem);
    arch_init_params(&f->hp, 7, 1.0f, f->p);
    /* logits of order 1-3 so the softmax rows are far from uniform */
    for (int i = 0; i < f->n; i++)
        if (f->ts[i].kind == T_RANDOM || f->ts[i].kind == T_RANDOM_A || f->ts[i].kind == T_RANDOM_B)
            for (int64_t e = 0; e < f->ts[i].n_elem; e++) f->p[i][e] = 2.0f * tu_frand();
    char **vocab = fixture_byte_vocab(257);
    char err[256] = "out of memory";
    int rc = vocab ? fixture_ckpt_write(&f->hp, "static", vocab, 257, NULL, 0, 256, (const float *const *)f->p,
                                        QUANT_F32, &f->buf, &f->size, err, sizeof err)
                   : -1;
    CHECK_MSG(rc == 0, "fixture_ckpt_write: %s", err);
    if (rc == 0) {
        rc = model_load_buffer(f->buf, f->size, &f->m, err, sizeof err);
        CHECK_MSG(rc == 0, "model_load_buffer: %s", err);
        if (rc == 0) model_set_cache_values(f->m, MODEL_CACHE_F32); /* exact values, as the references */
    }
    if (vocab) tok_free_strings(vocab, 257);
    return rc;
}

static void fixture_free(fixture *f)
{
    model_free(f->m);
    free(f->buf);
    for (int i = 0; i < f->n; i++) free(f->p[i]);
    free(f->p);
    free(f->ts);
}

static const float *param(const fixture *f, arch_kind k, int layer)
{
    for (int i = 0; i < f->n; i++)
        if (f->ts[i].kind == k && f->ts[i].layer == layer) return f->p[i];
    return NULL;
}

/* Naive reference: logit(i, j) from the parameters, softmax over j <= i. */
static void ref_attention(const fixture *f, int layer, int head, double *P)
{
    const int L = f->hp.n_ctx, k = f->hp.fr_rank;
    const float *R = param(f, T_RANDOM, layer);
    const float *A = param(f, T_RANDOM_A, layer), *B = param(f, T_RANDOM_B, layer);
    for (int i = 0; i < L; i++) {
        double mx = -1e300, sum = 0, *row = P + (size_t)i * L;
        for (int j = 0; j <= i; j++) {
            double z = 0;
            if (R) {
                z = R[((size_t)head * L + i) * L + j];
            } else {
                for (int t = 0; t < k; t++)
                    z += (double)A[((size_t)head * L + i) * k + t] * B[((size_t)head * L + j) * k + t];
            }
            row[j] = z;
            if (z > mx) mx = z;
        }
        for (int j = 0; j <= i; j++) sum += (row[j] = exp(row[j] - mx));
        for (int j = 0; j <= i; j++) row[j] /= sum;
    }
}

static void check_variant(arch_variant v)
{
    fixture f;
    if (fixture_init(&f, v)) {
        fixture_free(&f);
        return;
    }
    const int L = f.hp.n_ctx;
    double *P = malloc(sizeof(double) * (size_t)L * L);
    for (int layer = 0; layer < f.hp.n_layer; layer++)
        for (int head = 0; head < f.hp.n_head; head++) {
            char *body = NULL, err[256] = "";
            size_t len = 0;
            int st = srv_attention_json(f.m, layer, head, &body, &len, err, sizeof err);
            CHECK_MSG(st == 200 && body && strlen(body) == len, "%s l%d h%d: %d %s", arch_variant_name(v), layer,
                      head, st, err);
            json_error_t je;
            json_t *j = body ? json_loadb(body, len, 0, &je) : NULL;
            CHECK_MSG(j != NULL, "%s: not JSON", arch_variant_name(v));
            free(body);
            if (!j) continue;
            CHECK(!strcmp(json_string_value(json_object_get(j, "variant")), arch_variant_name(v)));
            CHECK(json_integer_value(json_object_get(j, "layer")) == layer);
            CHECK(json_integer_value(json_object_get(j, "head")) == head);
            CHECK(json_integer_value(json_object_get(j, "n_ctx")) == L);
            CHECK(json_integer_value(json_object_get(j, "n_layer")) == f.hp.n_layer);
            CHECK(json_integer_value(json_object_get(j, "n_head")) == f.hp.n_head);
            ref_attention(&f, layer, head, P);
            json_t *rows = json_object_get(j, "rows");
            CHECK((int)json_array_size(rows) == L);
            double worst = 0, lo = 1;
            for (int i = 0; i < L && i < (int)json_array_size(rows); i++) {
                json_t *row = json_array_get(rows, i);
                CHECK_MSG((int)json_array_size(row) == i + 1, "row %d has %zu entries", i, json_array_size(row));
                for (int c = 0; c <= i && c < (int)json_array_size(row); c++) {
                    double got = json_number_value(json_array_get(row, c)), want = P[(size_t)i * L + c];
                    double e = fabs(got - want) / (want + 1e-6);
                    if (e > worst) worst = e;
                    if (want < lo) lo = want;
                }
            }
            /* 6 significant digits printed from float softmax */
            CHECK_MSG(worst < 1e-4, "%s l%d h%d: relative error %g", arch_variant_name(v), layer, head, worst);
            CHECK_MSG(lo < 0.05, "rows look uniform (smallest weight %g): the reference is too weak", lo);
            json_decref(j);
        }
    /* bad indices: 400 */
    char *body = (char *)1, err[256] = "";
    size_t len = 1;
    CHECK(srv_attention_json(f.m, f.hp.n_layer, 0, &body, &len, err, sizeof err) == 400 && !body && !len);
    CHECK(strstr(err, "layer") != NULL);
    CHECK(srv_attention_json(f.m, -1, 0, &body, &len, err, sizeof err) == 400);
    CHECK(srv_attention_json(f.m, 0, f.hp.n_head, &body, &len, err, sizeof err) == 400 && strstr(err, "head"));
    CHECK(srv_attention_json(f.m, 0, -1, &body, &len, err, sizeof err) == 400);
    free(P);
    fixture_free(&f);
}

TEST(test_attention_static_variants)
{
    check_variant(ARCH_RANDOM);
    check_variant(ARCH_FIXED_RANDOM);
    check_variant(ARCH_FACTORIZED_RANDOM);
}

TEST(test_attention_input_dependent_404)
{
    const arch_variant vs[] = {ARCH_DENSE, ARCH_FACTORIZED_DENSE, ARCH_VANILLA, ARCH_RANDOM_VANILLA,
                               ARCH_DENSE_VANILLA};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        fixture f;
        if (fixture_init(&f, vs[i]) == 0) {
            char *body = NULL, err[256] = "";
            size_t len = 0;
            int st = srv_attention_json(f.m, 0, 0, &body, &len, err, sizeof err);
            CHECK_MSG(st == 404 && !body && strstr(err, arch_variant_name(vs[i])), "%s: %d %s",
                      arch_variant_name(vs[i]), st, err);
            /* bad indices are still 400 first */
            CHECK(srv_attention_json(f.m, 99, 0, &body, &len, err, sizeof err) == 400);
        }
        fixture_free(&f);
    }
}

int main(void)
{
    tu_seed(12345); /* the inputs the tests were written with */
    RUN(test_embedded_files_match_tree);
    RUN(test_find);
    RUN(test_etag_match);
    RUN(test_parse_index);
    RUN(test_attention_static_variants);
    RUN(test_attention_input_dependent_404);
    return test_summary();
}
