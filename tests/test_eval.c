/*
 * test_eval.c - the scoring protocol of eval.h: window planning (every text
 * token scored exactly once, context >= L/2 after the first window) for many
 * (n_text, L), word counting against hand counts, and eval_text /
 * eval_continuation on tiny models against the naive reference forward of
 * tests/ref_naive.h (log-probs summed by hand over the planned windows).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "eval.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "test.h"
#include "fixture.h"
#include "tok.h"
#include "ref_naive.h"

void openblas_set_num_threads(int n);

/* ---------------- eval_plan_windows ---------------- */

/* Check the plan of (n_text, L) against the protocol of eval.h. Returns the
 * number of problems (each reported once). */
static int check_plan(int64_t n_text, int L)
{
    int64_t n = eval_plan_windows(n_text, L, NULL, 0);
    if (n_text == 0) {
        CHECK_MSG(n == 0, "n_text 0 L %d: %lld windows", L, (long long)n);
        return n != 0;
    }
    if (n < 1 || n > 2 * n_text + 2) {
        CHECK_MSG(0, "n_text %lld L %d: window count %lld", (long long)n_text, L, (long long)n);
        return 1;
    }
    eval_window *w = malloc(sizeof *w * (size_t)(n + 1));
    memset(&w[n], 0x5A, sizeof w[n]);
    int64_t n2 = eval_plan_windows(n_text, L, w, n);
    eval_window canary;
    memset(&canary, 0x5A, sizeof canary);
    CHECK_MSG(n2 == n && memcmp(&w[n], &canary, sizeof canary) == 0, "n_text %lld L %d: count %lld then %lld, or wrote past cap",
              (long long)n_text, L, (long long)n, (long long)n2);
    uint8_t *seen = calloc((size_t)n_text, 1);
    const int stride = L / 2;
    int bad = 0;
    for (int64_t i = 0; i < n && !bad; i++) {
        const eval_window *x = &w[i];
        int64_t want_len = n_text - x->start < L ? n_text - x->start : L;
        /* inputs s[start .. start+len-1] must exist and have targets in s[1 .. n_text] */
        if (x->start < 0 || x->len < 1 || x->len > L || x->start + x->len > n_text) {
            CHECK_MSG(0, "n_text %lld L %d window %lld: start %lld len %d out of range", (long long)n_text, L,
                      (long long)i, (long long)x->start, x->len);
            bad = 1;
            break;
        }
        if (x->first_scored < 0 || x->first_scored >= x->len) {
            CHECK_MSG(0, "n_text %lld L %d window %lld: first_scored %d of len %d scores nothing", (long long)n_text, L,
                      (long long)i, x->first_scored, x->len);
            bad = 1;
            break;
        }
        if (i == 0 && (x->start != 0 || x->first_scored != 0)) {
            CHECK_MSG(0, "n_text %lld L %d: first window start %lld first_scored %d", (long long)n_text, L,
                      (long long)x->start, x->first_scored);
            bad = 1;
        }
        /* context of the first scored target: first_scored + 1 inputs */
        if (i > 0 && x->first_scored < L / 2) {
            CHECK_MSG(0, "n_text %lld L %d window %lld: first scored target has %d tokens of context, < L/2",
                      (long long)n_text, L, (long long)i, x->first_scored + 1);
            bad = 1;
        }
        /* the documented plan: window w starts at w * (L/2) and covers up to L inputs */
        if (x->start != i * stride || x->len != want_len) {
            CHECK_MSG(0, "n_text %lld L %d window %lld: start %lld len %d, want %lld %lld", (long long)n_text, L,
                      (long long)i, (long long)x->start, x->len, (long long)(i * stride), (long long)want_len);
            bad = 1;
        }
        for (int o = x->first_scored; o < x->len; o++) seen[x->start + o]++; /* target s[start+1+o] = text token start+o */
    }
    for (int64_t t = 0; t < n_text && !bad; t++)
        if (seen[t] != 1) {
            CHECK_MSG(0, "n_text %lld L %d: text token %lld scored %d times", (long long)n_text, L, (long long)t, seen[t]);
            bad = 1;
        }
    /* a small cap receives a prefix of the plan */
    if (n > 1 && !bad) {
        eval_window part[2];
        memset(part, 0x5A, sizeof part);
        CHECK(eval_plan_windows(n_text, L, part, 1) == n);
        CHECK(memcmp(&part[0], &w[0], sizeof part[0]) == 0 && memcmp(&part[1], &canary, sizeof canary) == 0);
    }
    free(seen);
    free(w);
    return bad;
}

TEST(plan_windows)
{
    const int Ls[] = {2, 3, 4, 5, 7, 8, 15, 16, 17, 64, 255, 256, 1023};
    int fails = 0;
    for (size_t li = 0; li < sizeof Ls / sizeof Ls[0]; li++) {
        int64_t L = Ls[li];
        const int64_t ns[] = {0, 1, 2, 3, L - 1, L, L + 1, L + L / 2, 2 * L - 1, 2 * L, 2 * L + 1, 3 * L, 10 * L + 3};
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            if (ns[k] >= 0) fails += check_plan(ns[k], (int)L);
    }
    arch_rng r;
    arch_rng_seed(&r, 42);
    for (int k = 0; k < 300; k++) {
        int L = 2 + (int)(arch_rng_next(&r) % 300);
        int64_t n = (int64_t)(arch_rng_next(&r) % 4000);
        fails += check_plan(n, L);
    }
    CHECK(fails == 0);
}

/* The count for long texts: 1 + ceil((n - L) / stride) windows, no overflow. */
TEST(plan_windows_count_long)
{
    const int64_t ns[] = {1000000007LL, 123456789012LL};
    const int Ls[] = {2048, 8192, 4097};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++) {
            int64_t n = ns[a], L = Ls[b], st = L / 2;
            int64_t want = 1 + (n - L + st - 1) / st;
            if (a == 1 && L < 8192) continue; /* keep it fast: ~3e7 windows max */
            CHECK_NEAR((double)eval_plan_windows(n, (int)L, NULL, 0), (double)want, 0);
        }
}

/* ---------------- eval_count_words ---------------- */

TEST(count_words)
{
    struct { const char *s; int64_t want; } cases[] = {
        {"", 0},
        {"hello world\n", 3},           /* 2 words + 1 line */
        {"hello world", 3},             /* last line without newline counts */
        {"\n", 1},
        {"\n\n\n", 3},                  /* empty lines count */
        {"a\n\n\n", 4},
        {"a\tb  c\n\nd", 7},            /* tabs, double space: 4 words + 3 lines */
        {"   \n  x  \n", 3},
        {"  leading and trailing  ", 4},
        {"one\ttwo\t\tthree\n four \n", 6},
        {" = Robert Boulter = \n", 5},  /* WikiText heading: = Robert Boulter = */
        {"x", 2},
        {" ", 1},
        {"\t\t", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = eval_count_words(cases[i].s, strlen(cases[i].s));
        CHECK_MSG(got == cases[i].want, "eval_count_words(\"%s\") = %lld, want %lld", cases[i].s, (long long)got,
                  (long long)cases[i].want);
    }
    /* length is respected: NUL bytes are not terminators, bytes after len ignored */
    CHECK(eval_count_words("ab cd ef", 5) == 3);       /* "ab cd" */
    CHECK(eval_count_words("a\0b c", 5) == 3);          /* "a\0b" is one word (NUL is not space) */
    CHECK(eval_count_words(NULL, 0) == 0);
}

/* ---------------- tiny models ---------------- */

typedef struct {
    arch_hparams hp;
    ref_vocab voc;
    float **p;
    int np;
    void *buf;
    size_t size;
    model *m;
    ref_model rm;
} tiny;

static void tiny_free(tiny *t)
{
    model_free(t->m);
    free(t->buf);
    ref_model_free(&t->rm);
    ref_free_params(t->p, t->np);
    ref_vocab_free(&t->voc);
    memset(t, 0, sizeof *t);
}

static int tiny_init(tiny *t, arch_variant v, int L, uint64_t seed)
{
    char err[256] = "";
    memset(t, 0, sizeof *t);
    ref_vocab_build(&t->voc, 60);
    arch_hparams_default(&t->hp);
    t->hp.variant = v;
    t->hp.n_vocab = t->voc.n_vocab;
    t->hp.n_ctx = L;
    t->hp.n_embd = 32;
    t->hp.n_layer = 2;
    t->hp.n_head = 2;
    t->hp.n_ff = 64;
    t->hp.fr_rank = 4;
    t->hp.fd_a = L % 4 == 0 ? 4 : L;
    t->hp.fd_b = L / t->hp.fd_a;
    t->p = ref_alloc_params(&t->hp, &t->np);
    ref_randomize(&t->hp, seed, 1.0f, t->p);
    int rc = fixture_ckpt_write(&t->hp, "eval-test", t->voc.vocab, t->voc.n_vocab, t->voc.merges, t->voc.n_merges,
                                t->voc.eos, (const float *const *)t->p, QUANT_F32, &t->buf, &t->size, err, sizeof err);
    CHECK_MSG(rc == 0, "fixture_ckpt_write: %s", err);
    if (rc) return -1;
    rc = model_load_buffer(t->buf, t->size, &t->m, err, sizeof err);
    CHECK_MSG(rc == 0, "model_load_buffer: %s", err);
    if (rc == 0) model_set_cache_values(t->m, MODEL_CACHE_F32); /* exact values, as the references */
    if (rc) return -1;
    return ref_model_init(&t->rm, &t->hp, (const float *const *)t->p);
}

/* Naive eval_text: s = [eos, ids], windows of the protocol (start w * (L/2),
 * up to L inputs, targets not scored before). lp [n] per text token. */
static double naive_text_nll(const tiny *t, const int32_t *ids, int64_t n, double *lp)
{
    const int L = t->hp.n_ctx, V = t->hp.n_vocab, stride = L / 2;
    int32_t *s = malloc(sizeof *s * (size_t)(n + 1));
    double *lg = malloc(sizeof(double) * (size_t)L * V);
    s[0] = (int32_t)t->voc.eos;
    if (n) memcpy(s + 1, ids, sizeof *s * (size_t)n);
    double nll = 0.0;
    int64_t scored = 0; /* text tokens 0..scored-1 done */
    for (int64_t start = 0; scored < n; start += stride) {
        int len = (int)(n - start < L ? n - start : L);
        ref_forward(&t->rm, s + start, len, lg, NULL);
        for (int o = 0; o < len; o++) {
            int64_t tt = start + o; /* text token predicted at offset o */
            if (tt < scored) continue;
            lp[tt] = ref_logprob(lg + (size_t)o * V, V, s[start + 1 + o]);
            nll -= lp[tt];
        }
        scored = start + len;
    }
    free(s);
    free(lg);
    return nll;
}

static const char sample_text[] =
    " = The Game =\n\nThe game is in the third year of the war , and then the team went to\n"
    "the north . A tower , 1 @,@ 200 feet high , stands there . Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 "
    "\"done\" it's 3.5 %\n\n\tand the end";

static void check_text(tiny *t, const char *text, size_t len, int exact_n, int64_t want_words)
{
    int32_t *ids = NULL, *eids = NULL;
    size_t n = 0;
    float *elp = NULL;
    eval_result r;
    CHECK(tok_encode(model_tok(t->m), text, len, &ids, &n) == 0);
    if (exact_n >= 0) CHECK((int)n == exact_n);
    double *lp = malloc(sizeof(double) * (n + 1));
    double want = naive_text_nll(t, ids, (int64_t)n, lp);
    const int batches[] = {1, 3, 100};
    for (int b = 0; b < 3; b++) {
        int rc = eval_text(t->m, text, len, batches[b], &r, &eids, &elp, NULL, NULL);
        CHECK_MSG(rc == 0, "eval_text: %d", rc);
        if (rc) continue;
        CHECK_MSG(r.n_tokens == (int64_t)n, "n_tokens %lld, want %zu", (long long)r.n_tokens, n);
        CHECK_MSG(fabs(r.nll - want) <= 1e-4, "len %zu batch %d: nll %.9f, naive %.9f (diff %g)", len, batches[b], r.nll,
                  want, r.nll - want);
        CHECK(r.n_bytes == (int64_t)len);
        CHECK(r.n_words == want_words);
        if (n > 0) {
            /* derived fields from the reported nll (which is checked above) */
            double ppl = exp(r.nll / (double)n), wppl = exp(r.nll / (double)want_words);
            CHECK_NEAR(r.perplexity, ppl, 1e-12 * ppl);
            CHECK_NEAR(r.bits_per_byte, r.nll / (log(2.0) * (double)len), 1e-12 * r.bits_per_byte);
            CHECK_NEAR(r.word_perplexity, wppl, 1e-12 * wppl);
            CHECK(eids && memcmp(eids, ids, n * sizeof *ids) == 0);
            double md = 0.0;
            for (size_t i = 0; i < n && elp; i++) {
                double dd = fabs((double)elp[i] - lp[i]);
                if (!(dd <= md)) md = dd != dd ? INFINITY : dd;
            }
            CHECK_MSG(elp && md <= 1e-4, "per-token log-probs off by %g", md);
        } else {
            CHECK(r.nll == 0.0);
        }
        free(eids);
        free(elp);
        eids = NULL;
        elp = NULL;
    }
    free(lp);
    free(ids);
}

static void progress_count(int64_t done, int64_t total, void *ud)
{
    int64_t *st = ud;
    if (done <= st[0] || done > total) st[2] = 1; /* must increase, never beyond total */
    st[0] = done;
    st[1] = total;
}

TEST(eval_text_matches_naive)
{
    const arch_variant vs[] = {ARCH_DENSE_VANILLA, ARCH_FACTORIZED_RANDOM, ARCH_RANDOM};
    const int Ls[] = {16, 15, 2};
    for (int k = 0; k < 3; k++) {
        tiny t;
        if (tiny_init(&t, vs[k], Ls[k], 77 + (uint64_t)k) == 0) {
            const int L = Ls[k];
            check_text(&t, sample_text, sizeof sample_text - 1, -1, eval_count_words(sample_text, sizeof sample_text - 1));
            CHECK(eval_count_words(sample_text, sizeof sample_text - 1) == 46 + 6); /* Python: len(t.split()) + lines */
            /* digits are not merged: exactly n tokens, at the window edges */
            char digits[200];
            const int ns[] = {0, 1, L - 1, L, L + 1, 2 * L, 3 * L + 1};
            for (int i = 0; i < 7; i++) {
                for (int j = 0; j < ns[i]; j++) digits[j] = (char)('0' + (j * 7 + i) % 10);
                digits[ns[i]] = 0;
                check_text(&t, digits, (size_t)ns[i], ns[i], ns[i] ? 2 : 0);
            }
            /* progress reports increasing counts up to the total */
            int64_t st[3] = {0, 0, 0};
            eval_result r;
            CHECK(eval_text(t.m, sample_text, sizeof sample_text - 1, 2, &r, NULL, NULL, progress_count, st) == 0);
            CHECK(st[2] == 0 && st[0] == st[1] && st[1] > 0);
        }
        tiny_free(&t);
    }
}

/* ---------------- eval_continuation ---------------- */

/* Naive: [eos] + ctx ids + cont ids, sum of the continuation's log-probs. */
static double naive_cont(const tiny *t, const int32_t *c, int nc, const int32_t *k, int nk, int *greedy)
{
    const int V = t->hp.n_vocab, n = 1 + nc + nk;
    int32_t *s = malloc(sizeof *s * (size_t)n);
    double *lg = malloc(sizeof(double) * (size_t)n * V);
    s[0] = (int32_t)t->voc.eos;
    if (nc) memcpy(s + 1, c, sizeof *s * (size_t)nc);
    if (nk) memcpy(s + 1 + nc, k, sizeof *s * (size_t)nk);
    ref_forward(&t->rm, s, n - 1, lg, NULL);
    double sum = 0.0;
    *greedy = 1;
    for (int j = nc; j < n - 1; j++) {
        sum += ref_logprob(lg + (size_t)j * V, V, s[j + 1]);
        if (ref_argmax(lg + (size_t)j * V, V, NULL) != s[j + 1]) *greedy = 0;
    }
    free(s);
    free(lg);
    return sum;
}

static void check_cont(tiny *t, const char *ctx, const char *cont, int want_greedy)
{
    const tok_t *tk = model_tok(t->m);
    int32_t *c = NULL, *k = NULL;
    size_t nc = 0, nk = 0;
    tok_encode(tk, ctx, strlen(ctx), &c, &nc);
    tok_encode(tk, cont, strlen(cont), &k, &nk);
    int g_ref;
    double want = naive_cont(t, c, (int)nc, k, (int)nk, &g_ref);
    double lp = NAN;
    int g = -1, nct = -1;
    int rc = eval_continuation(t->m, ctx, strlen(ctx), cont, strlen(cont), 0, &lp, &g, &nct);
    CHECK_MSG(rc == 0, "eval_continuation(\"%s\", \"%s\"): %d", ctx, cont, rc);
    if (rc == 0) {
        CHECK_MSG(fabs(lp - want) <= 1e-4, "eval_continuation(\"%s\", \"%s\") = %.9f, naive %.9f", ctx, cont, lp, want);
        CHECK_MSG(g == g_ref, "eval_continuation(\"%s\", \"%s\"): is_greedy %d, naive %d", ctx, cont, g, g_ref);
        CHECK(nct == (int)nk);
        if (want_greedy >= 0) CHECK_MSG(g_ref == want_greedy, "test setup: \"%s\" greedy %d", cont, g_ref);
    }
    free(c);
    free(k);
}

/* Build a continuation of up to 3 tokens that is greedy under the
 * reference: the argmax token's bytes, appended while the continuation
 * still encodes to exactly the chosen tokens. Returns its length (0: none). */
static int greedy_cont(tiny *t, const char *ctx, char *out, size_t cap)
{
    const tok_t *tk = model_tok(t->m);
    const int V = t->hp.n_vocab;
    int32_t *c = NULL, chosen[4];
    size_t nc = 0, used = 0;
    int nch = 0;
    tok_encode(tk, ctx, strlen(ctx), &c, &nc);
    int32_t *s = malloc(sizeof *s * (nc + 8));
    double *lg = malloc(sizeof(double) * (nc + 8) * (size_t)V);
    s[0] = (int32_t)t->voc.eos;
    if (nc) memcpy(s + 1, c, nc * sizeof *s);
    out[0] = 0;
    for (int step = 0; step < 3; step++) {
        int n = 1 + (int)nc + nch;
        ref_forward(&t->rm, s, n, lg, NULL);
        double gap;
        int best = ref_argmax(lg + (size_t)(n - 1) * V, V, &gap);
        const char *bytes;
        size_t bl;
        if (gap < 1e-3 || best == t->voc.eos || tok_token_bytes(tk, best, &bytes, &bl) || bl == 0 || used + bl >= cap)
            break;
        memcpy(out + used, bytes, bl);
        out[used + bl] = 0;
        int32_t *k = NULL;
        size_t nk = 0;
        tok_encode(tk, out, used + bl, &k, &nk);
        chosen[nch] = best;
        int same = nk == (size_t)nch + 1 && memcmp(k, chosen, nk * sizeof *k) == 0 && !memchr(out, 0, used + bl);
        free(k);
        if (!same) {
            out[used] = 0;
            break;
        }
        used += bl;
        s[n] = best;
        nch++;
    }
    free(s);
    free(lg);
    free(c);
    return nch;
}

TEST(eval_continuation_matches_naive)
{
    tiny t;
    if (tiny_init(&t, ARCH_RANDOM_VANILLA, 16, 5) == 0) {
        check_cont(&t, "the cat", " sat on", -1);
        check_cont(&t, "", "and", -1);
        check_cont(&t, "12", "3", -1);
        check_cont(&t, "x", "\xc3\xa9\n", -1);
        /* greedy continuations (is_greedy 1), and the same with its last
         * byte changed (is_greedy 0) */
        const char *ctxs[] = {"the", "in the", "a", "9", "on", "and then", "=", "we"};
        int n_greedy = 0;
        for (int i = 0; i < 8; i++) {
            char cont[64];
            if (greedy_cont(&t, ctxs[i], cont, sizeof cont) == 0) continue;
            n_greedy++;
            check_cont(&t, ctxs[i], cont, 1);
            size_t cl = strlen(cont);
            cont[cl - 1] = (char)(cont[cl - 1] == 'q' ? 'z' : 'q');
            check_cont(&t, ctxs[i], cont, -1);
        }
        CHECK(n_greedy >= 3);

        /* length limits: 1 + ctx + cont > L */
        const char *long_ctx = "0123456789012345678"; /* 19 digit tokens */
        double lp;
        int g, nct;
        CHECK(eval_continuation(t.m, long_ctx, 19, "5", 1, 0, &lp, &g, &nct) == MODEL_EINVAL);
        CHECK(eval_continuation(t.m, long_ctx, 14, "56", 2, 0, &lp, &g, &nct) == MODEL_EINVAL); /* 1+14+2 = 17 */
        CHECK(eval_continuation(t.m, long_ctx, 13, "56", 2, 0, &lp, &g, &nct) == 0);            /* exactly L */
        /* truncated: the end of the context is kept after eos */
        int rc = eval_continuation(t.m, long_ctx, 19, "56", 2, 1, &lp, &g, &nct);
        CHECK(rc == 0);
        if (rc == 0) {
            int32_t *c = NULL, *k = NULL;
            size_t nc, nk;
            tok_encode(model_tok(t.m), long_ctx + 19 - 13, 13, &c, &nc);
            tok_encode(model_tok(t.m), "56", 2, &k, &nk);
            int gr;
            double want = naive_cont(&t, c, (int)nc, k, (int)nk, &gr);
            CHECK_MSG(fabs(lp - want) <= 1e-4, "truncated continuation: %.9f, naive %.9f", lp, want);
            CHECK(g == gr && nct == 2);
            free(c);
            free(k);
        }
        /* a continuation that cannot fit even with truncation */
        CHECK(eval_continuation(t.m, "a", 1, long_ctx, 16, 1, &lp, &g, &nct) == MODEL_EINVAL);
        CHECK(eval_continuation(t.m, "a", 1, long_ctx, 15, 1, &lp, &g, &nct) == 0);
    }
    tiny_free(&t);
}

int main(void)
{
    openblas_set_num_threads(1);
    RUN(plan_windows);
    RUN(plan_windows_count_long);
    RUN(count_words);
    RUN(eval_text_matches_naive);
    RUN(eval_continuation_matches_naive);
    return test_summary();
}
