/*
 * test_sampler.c - sampler semantics against naive references: argmax,
 * softmax distributions (chi-square), the candidate filters, repetition
 * penalty, log-softmax and seed determinism.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "test.h"

/* a tiny LCG for test data, independent of the sampler's PRNG */
static uint32_t lcg_state = 12345;
static double lcg_uniform(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (lcg_state >> 8) * (1.0 / 16777216.0);
}

static void random_logits(float *l, int n, double scale)
{
    for (int i = 0; i < n; i++)
        l[i] = (float)((lcg_uniform() * 2 - 1) * scale);
}

static int naive_argmax(const float *l, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

/* softmax(l / t) in long double */
static void naive_softmax(const float *l, int n, double t, double *p)
{
    long double m = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        if (l[i] / t > m)
            m = l[i] / t;
    for (int i = 0; i < n; i++)
        s += expl(l[i] / t - m);
    for (int i = 0; i < n; i++)
        p[i] = (double)(expl(l[i] / t - m) / s);
}

/* chi-square statistic of counts against probabilities (cells with
 * expected count 0 must have count 0, else returns +inf). */
static double chi_square(const int *cnt, const double *p, int n, int draws)
{
    double x2 = 0;
    for (int i = 0; i < n; i++) {
        double e = p[i] * draws;
        if (e == 0) {
            if (cnt[i])
                return INFINITY;
            continue;
        }
        x2 += (cnt[i] - e) * (cnt[i] - e) / e;
    }
    return x2;
}

static sampler_params params(float t, int k, float top_p, float min_p, float pen, uint64_t seed)
{
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = t;
    p.top_k = k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repetition_penalty = pen;
    p.seed = seed;
    return p;
}

TEST(test_defaults_and_validate)
{
    sampler_params p;
    char err[128];
    sampler_params_default(&p);
    CHECK(p.temperature == 1.0f && p.top_k == 0 && p.top_p == 1.0f && p.min_p == 0.0f &&
          p.repetition_penalty == 1.0f);
    CHECK(sampler_params_validate(&p, err, sizeof err) == 0);
    struct {
        sampler_params p;
        const char *field;
    } bad[] = {
        {params(-0.1f, 0, 1, 0, 1, 0), "temperature"}, {params(NAN, 0, 1, 0, 1, 0), "temperature"},
        {params(INFINITY, 0, 1, 0, 1, 0), "temperature"}, {params(1, -1, 1, 0, 1, 0), "top_k"},
        {params(1, 0, 0, 0, 1, 0), "top_p"},            {params(1, 0, 1.5f, 0, 1, 0), "top_p"},
        {params(1, 0, NAN, 0, 1, 0), "top_p"},          {params(1, 0, 1, -0.1f, 1, 0), "min_p"},
        {params(1, 0, 1, 1.1f, 1, 0), "min_p"},         {params(1, 0, 1, 0, 0, 0), "repetition_penalty"},
        {params(1, 0, 1, 0, NAN, 0), "repetition_penalty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(sampler_params_validate(&bad[i].p, err, sizeof err) == -1);
        CHECK_MSG(strstr(err, bad[i].field) != NULL, "case %zu: \"%s\" does not name %s", i, err, bad[i].field);
    }
}

TEST(test_greedy_is_argmax)
{
    sampler_params p = params(0, 0, 1, 0, 1, 1);
    sampler s;
    sampler_init(&s, &p);
    float l[300];
    for (int it = 0; it < 200; it++) {
        random_logits(l, 300, 5);
        CHECK(sampler_sample(&s, l, 300, NULL, 0, NULL) == naive_argmax(l, 300));
    }
    /* ties go to the lowest id */
    float t[5] = {1, 3, 2, 3, 3};
    CHECK(sampler_sample(&s, t, 5, NULL, 0, NULL) == 1);
    /* NaN counts as -inf; all -inf gives id 0 */
    float nn[3] = {NAN, -5, -7};
    CHECK(sampler_sample(&s, nn, 3, NULL, 0, NULL) == 1);
    float ninf[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK(sampler_sample(&s, ninf, 3, NULL, 0, NULL) == 0);
    sampler_free(&s);
    sampler_init(&s, &(sampler_params){.temperature = 1, .top_p = 1, .repetition_penalty = 1});
    CHECK(sampler_sample(&s, ninf, 3, NULL, 0, NULL) == 0);
    /* a single +inf logit takes all the mass */
    float pinf[4] = {1, INFINITY, 3, 2};
    for (int i = 0; i < 50; i++)
        CHECK(sampler_sample(&s, pinf, 4, NULL, 0, NULL) == 1);
    /* bad arguments */
    CHECK(sampler_sample(&s, NULL, 4, NULL, 0, NULL) == -1);
    CHECK(sampler_sample(&s, pinf, 0, NULL, 0, NULL) == -1);
    CHECK(sampler_sample(&s, pinf, 4, NULL, 3, NULL) == -1);
    sampler_free(&s);
}

TEST(test_top_k1_is_greedy)
{
    sampler_params p = params(1.3f, 1, 1, 0, 1, 7);
    sampler s;
    sampler_init(&s, &p);
    float l[257];
    for (int it = 0; it < 300; it++) {
        random_logits(l, 257, 2);
        CHECK(sampler_sample(&s, l, 257, NULL, 0, NULL) == naive_argmax(l, 257));
    }
    sampler_free(&s);
}

TEST(test_seed_determinism)
{
    sampler_params p = params(0.9f, 40, 0.95f, 0.01f, 1.1f, 42);
    sampler a, b, c;
    sampler_init(&a, &p);
    sampler_init(&b, &p);
    p.seed = 43;
    sampler_init(&c, &p);
    float l[500];
    int32_t hist[8] = {3, 9, 27, 81, 243, 3, 1, 2};
    int same_ab = 1, same_ac = 1;
    for (int it = 0; it < 500; it++) {
        random_logits(l, 500, 3);
        int ia = sampler_sample(&a, l, 500, hist, 8, NULL);
        int ib = sampler_sample(&b, l, 500, hist, 8, NULL);
        int ic = sampler_sample(&c, l, 500, hist, 8, NULL);
        same_ab &= ia == ib;
        same_ac &= ia == ic;
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    /* uniform() stays in [0, 1) and is reproducible from the seed */
    sampler_free(&b);
    sampler_free(&c);
    sampler_init(&b, &p);
    sampler_init(&c, &p);
    double mean = 0;
    for (int i = 0; i < 10000; i++) {
        double u = sampler_uniform(&b);
        CHECK(u >= 0 && u < 1);
        CHECK(u == sampler_uniform(&c));
        mean += u / 10000;
    }
    CHECK_NEAR(mean, 0.5, 0.02); /* sd of the mean is 0.0029 */
    sampler_free(&a);
    sampler_free(&b);
    sampler_free(&c);
}

/* 20000 draws against a reference distribution: chi-square below the
 * 0.999 quantile for the degrees of freedom (df = support - 1). */
#define N_DRAWS 20000
static const double chi2_999[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12};

static void check_distribution_hist(sampler_params p, const float *l, int n, const int32_t *hist, int n_hist,
                                    const double *ref, int line)
{
    sampler s;
    sampler_init(&s, &p);
    int cnt[16] = {0}, support = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int id = sampler_sample(&s, l, n, hist, n_hist, NULL);
        CHECK(id >= 0 && id < n);
        if (id >= 0 && id < n)
            cnt[id]++;
    }
    for (int i = 0; i < n; i++)
        support += ref[i] > 0;
    double x2 = chi_square(cnt, ref, n, N_DRAWS);
    CHECK_MSG(x2 < chi2_999[support - 1], "line %d: chi-square %.2f >= %.2f (df %d)", line, x2,
              chi2_999[support - 1], support - 1);
    sampler_free(&s);
}

static void check_distribution(sampler_params p, const float *l, int n, const double *ref, int line)
{
    check_distribution_hist(p, l, n, NULL, 0, ref, line);
}

TEST(test_distribution_matches_softmax)
{
    const float l[8] = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.0f, 1.5f, 0.2f};
    double ref[8];
    naive_softmax(l, 8, 1.0, ref);
    check_distribution(params(1, 0, 1, 0, 1, 11), l, 8, ref, __LINE__);
    naive_softmax(l, 8, 0.5, ref);
    check_distribution(params(0.5f, 0, 1, 0, 1, 12), l, 8, ref, __LINE__);
    naive_softmax(l, 8, 2.0, ref);
    check_distribution(params(2.0f, 0, 1, 0, 1, 13), l, 8, ref, __LINE__);
    /* the test can fail: a shifted reference is rejected */
    double wrong[8];
    naive_softmax(l, 8, 1.2, wrong);
    sampler s;
    sampler_params p = params(1, 0, 1, 0, 1, 11);
    sampler_init(&s, &p);
    int cnt[8] = {0};
    for (int i = 0; i < N_DRAWS; i++)
        cnt[sampler_sample(&s, l, 8, NULL, 0, NULL)]++;
    CHECK(chi_square(cnt, wrong, 8, N_DRAWS) > chi2_999[7]);
    sampler_free(&s);
}

/* The unfiltered path over a vocabulary of several blocks of 256 with a
 * ragged end: tokens in different blocks (and in the tail) are drawn with
 * their softmax probabilities, -inf and NaN logits never, and the reported
 * log-prob is sampler_logprob's. */
static void check_many_blocks(int with_nan)
{
    enum { V = 1003, K = 6 };
    static float l[V];
    const int ids[K] = {3, 255, 256, 700, 1000, 1002};
    const float val[K] = {1.0f, 0.2f, 1.7f, -0.5f, 0.9f, 0.0f};
    for (int i = 0; i < V; i++)
        l[i] = with_nan && i % 5 == 1 ? NAN : -INFINITY;
    for (int k = 0; k < K; k++)
        l[ids[k]] = val[k];
    double ref[K], z = 0;
    for (int k = 0; k < K; k++)
        z += exp(val[k] / 0.8);
    for (int k = 0; k < K; k++)
        ref[k] = exp(val[k] / 0.8) / z;
    sampler s;
    sampler_params p = params(0.8f, 0, 1, 0, 1, 21 + with_nan);
    sampler_init(&s, &p);
    int cnt[K] = {0}, other = 0, lp_off = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        float lp;
        int id = sampler_sample(&s, l, V, NULL, 0, &lp), k = 0;
        while (k < K && ids[k] != id)
            k++;
        if (k == K) {
            other++;
            continue;
        }
        cnt[k]++;
        lp_off += lp != sampler_logprob(l, V, id);
    }
    CHECK_MSG(other == 0, "%d draws of a -inf or NaN logit", other);
    CHECK(lp_off == 0);
    double x2 = chi_square(cnt, ref, K, N_DRAWS);
    CHECK_MSG(x2 < chi2_999[K - 1], "nan %d: chi-square %.2f >= %.2f", with_nan, x2, chi2_999[K - 1]);
    sampler_free(&s);
}

/* A vocabulary of several blocks of 256 with a ragged end: tokens in
 * different blocks (and in the tail) are drawn with their softmax
 * probabilities, -inf and NaN logits never, and the reported log-prob is
 * sampler_logprob's; -inf only takes the vectorized unfiltered path, NaN
 * the general one. */
TEST(test_distribution_many_blocks)
{
    check_many_blocks(0);
    check_many_blocks(1);
}

/* Reference of the filters: probabilities after top_k, top_p, min_p. */
static void naive_filtered(const float *l, int n, double t, int k, double top_p, double min_p, double *out)
{
    int order[16];
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 0; i < n; i++) /* selection sort: value desc, id asc */
        for (int j = i + 1; j < n; j++)
            if (l[order[j]] > l[order[i]] || (l[order[j]] == l[order[i]] && order[j] < order[i])) {
                int x = order[i];
                order[i] = order[j];
                order[j] = x;
            }
    int m = (k > 0 && k < n) ? k : n;
    double p[16], s = 0;
    for (int i = 0; i < m; i++)
        s += exp((l[order[i]] - l[order[0]]) / t);
    for (int i = 0; i < m; i++)
        p[i] = exp((l[order[i]] - l[order[0]]) / t) / s;
    if (top_p < 1) {
        double cum = 0;
        int j = 0;
        while (j < m && cum < top_p)
            cum += p[j++];
        m = j;
    }
    int keep[16];
    for (int i = 0; i < m; i++)
        keep[i] = p[i] >= min_p * p[0];
    s = 0;
    for (int i = 0; i < m; i++)
        s += keep[i] ? p[i] : 0;
    for (int i = 0; i < n; i++)
        out[i] = 0;
    for (int i = 0; i < m; i++)
        out[order[i]] = keep[i] ? p[i] / s : 0;
}

TEST(test_filters_exclude_and_renormalize)
{
    const float l[8] = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.0f, 1.5f, 0.2f};
    double ref[8];
    /* top_k = 3 keeps ids 3, 6, 0 */
    naive_filtered(l, 8, 1, 3, 1, 0, ref);
    CHECK(ref[3] > 0 && ref[6] > 0 && ref[0] > 0 && ref[1] == 0 && ref[2] == 0);
    check_distribution(params(1, 3, 1, 0, 1, 21), l, 8, ref, __LINE__);
    /* top_p = 0.6: softmax is about .19 .11 .05 .42 .06 .02 .25 .07, so
     * 3 (.42) then 6 (.67 >= .6): exactly {3, 6} */
    naive_filtered(l, 8, 1, 0, 0.6, 0, ref);
    CHECK(ref[3] > 0 && ref[6] > 0);
    CHECK(ref[0] == 0 && ref[1] == 0 && ref[2] == 0 && ref[4] == 0 && ref[5] == 0 && ref[7] == 0);
    check_distribution(params(1, 0, 0.6f, 0, 1, 22), l, 8, ref, __LINE__);
    /* min_p = 0.3: keep p >= 0.3 p_max, i.e. logit >= 2 + ln 0.3 = 0.796: {3, 6, 0} */
    naive_filtered(l, 8, 1, 0, 1, 0.3, ref);
    CHECK(ref[3] > 0 && ref[6] > 0 && ref[0] > 0 && ref[1] == 0 && ref[7] == 0);
    check_distribution(params(1, 0, 1, 0.3f, 1, 23), l, 8, ref, __LINE__);
    /* all three together, temperature 0.7 */
    naive_filtered(l, 8, 0.7, 5, 0.9, 0.05, ref);
    check_distribution(params(0.7f, 5, 0.9f, 0.05f, 1, 24), l, 8, ref, __LINE__);
}

/* top_k on a larger vocabulary with many ties: the draws stay inside the
 * naive top-k set (ties to the lower id) and every member shows up. */
TEST(test_top_k_large_with_ties)
{
    enum { N = 1000, K = 7 };
    float l[N];
    for (int i = 0; i < N; i++)
        l[i] = (float)((int)(lcg_uniform() * 20)); /* values 0..19, many ties */
    int inset[N] = {0};
    for (int k = 0; k < K; k++) { /* naive: repeatedly the best not yet taken */
        int b = -1;
        for (int i = 0; i < N; i++)
            if (!inset[i] && (b < 0 || l[i] > l[b]))
                b = i;
        inset[b] = 1;
    }
    sampler s;
    sampler_params p = params(1, K, 1, 0, 1, 5);
    sampler_init(&s, &p);
    int seen[N] = {0}, outside = 0;
    for (int it = 0; it < 2000; it++) {
        int id = sampler_sample(&s, l, N, NULL, 0, NULL);
        outside += !inset[id];
        seen[id] = 1;
    }
    CHECK(outside == 0);
    int all = 1;
    for (int i = 0; i < N; i++)
        if (inset[i])
            all &= seen[i];
    CHECK(all);
    sampler_free(&s);
}

TEST(test_repetition_penalty)
{
    sampler s;
    sampler_params p = params(0, 0, 1, 0, 2.0f, 0);
    sampler_init(&s, &p);
    /* positive logit divided: 2.1 / 2 = 1.05 < 2 */
    float a[3] = {2.0f, 2.1f, 0.5f};
    int32_t h1[1] = {1};
    CHECK(sampler_sample(&s, a, 3, NULL, 0, NULL) == 1);
    CHECK(sampler_sample(&s, a, 3, h1, 1, NULL) == 0);
    CHECK(a[1] == 2.1f); /* the caller's logits are untouched */
    /* negative logit multiplied: -1 * 2 = -2 < -1.2 */
    float b[2] = {-1.0f, -1.2f};
    int32_t h0[1] = {0};
    CHECK(sampler_sample(&s, b, 2, NULL, 0, NULL) == 0);
    CHECK(sampler_sample(&s, b, 2, h0, 1, NULL) == 1);
    sampler_free(&s);
    /* a repeated id is penalized once: 3 / 1.4 = 2.14 > 2, 3 / 1.4^3 < 2 */
    p = params(0, 0, 1, 0, 1.4f, 0);
    sampler_init(&s, &p);
    float c[2] = {2.0f, 3.0f};
    int32_t h3[4] = {1, 1, 1, 99}; /* 99 out of range: ignored */
    CHECK(sampler_sample(&s, c, 2, h3, 4, NULL) == 1);
    sampler_free(&s);
    /* at temperature 1 the penalized token's frequency matches the
     * softmax of the penalized logits */
    float d[4] = {1.0f, 1.5f, -0.5f, 0.2f};
    float dp[4] = {1.0f, 1.5f / 1.7f, -0.5f * 1.7f, 0.2f};
    double ref[4];
    naive_softmax(dp, 4, 1.0, ref);
    p = params(1, 0, 1, 0, 1.7f, 31);
    sampler_init(&s, &p);
    int32_t h[3] = {2, 1, 2};
    int cnt[4] = {0};
    for (int i = 0; i < N_DRAWS; i++)
        cnt[sampler_sample(&s, d, 4, h, 3, NULL)]++;
    double x2 = chi_square(cnt, ref, 4, N_DRAWS);
    CHECK_MSG(x2 < chi2_999[3], "chi-square %.2f", x2);
    double plain[4];
    naive_softmax(d, 4, 1.0, plain);
    CHECK(ref[1] < plain[1] && ref[2] < plain[2]); /* the direction itself */
    sampler_free(&s);
}

TEST(test_logprob_is_log_softmax)
{
    float l[123];
    for (int it = 0; it < 20; it++) {
        random_logits(l, 123, 8);
        long double m = -INFINITY, s = 0;
        for (int i = 0; i < 123; i++)
            m = l[i] > m ? l[i] : m;
        for (int i = 0; i < 123; i++)
            s += expl(l[i] - m);
        for (int i = 0; i < 123; i += 7) {
            double ref = (double)(l[i] - m - logl(s));
            CHECK_NEAR(sampler_logprob(l, 123, i), ref, 1e-5);
        }
    }
    /* large logits do not overflow */
    float big[3] = {1000.0f, 999.0f, -1000.0f};
    CHECK_NEAR(sampler_logprob(big, 3, 0), -log(1 + exp(-1.0)), 1e-6);
    float inf2[3] = {INFINITY, 1, INFINITY};
    CHECK_NEAR(sampler_logprob(inf2, 3, 2), -log(2.0), 1e-6);
    CHECK(sampler_logprob(inf2, 3, 1) == -INFINITY);
    CHECK(sampler_logprob(big, 3, 3) == -INFINITY);
    /* sampler_sample reports the logprob of the unmodified logits even
     * with a penalty and a temperature */
    sampler s;
    sampler_params p = params(0.7f, 0, 1, 0, 1.3f, 3);
    sampler_init(&s, &p);
    random_logits(l, 123, 3);
    int32_t hist[3] = {5, 6, 7};
    for (int it = 0; it < 50; it++) {
        float lp = 1;
        int id = sampler_sample(&s, l, 123, hist, 3, &lp);
        long double m = -INFINITY, sum = 0;
        for (int i = 0; i < 123; i++)
            m = l[i] > m ? l[i] : m;
        for (int i = 0; i < 123; i++)
            sum += expl(l[i] - m);
        CHECK_NEAR(lp, (double)(l[id] - m - logl(sum)), 1e-5);
    }
    sampler_free(&s);
}


/* params(t, ...) with OpenAI's fields: n_bias biases, the penalties, and
 * the history's first n_prompt ids the prompt. */
static sampler_params openai_params(float t, uint64_t seed, const int32_t *bid, const float *bv, int n_bias, float pres,
                                   float freq, int n_prompt)
{
    sampler_params p = params(t, 0, 1, 0, 1, seed);
    p.bias_id = n_bias ? bid : NULL;
    p.bias = n_bias ? bv : NULL;
    p.n_bias = n_bias;
    p.presence_penalty = pres;
    p.frequency_penalty = freq;
    p.n_prompt = n_prompt;
    return p;
}

/* OpenAI's fields, against a naive reference of sampler.h's order
 * (repetition penalty, bias, presence + frequency over the generated part
 * of the history, end-of-text removal), greedy and in distribution. */
static void naive_openai(const float *l, int n, const int32_t *hist, int n_hist, int n_prompt, const sampler_params *p,
                         float *out)
{
    for (int j = 0; j < n; j++) out[j] = l[j];
    for (int i = 0; i < p->n_bias; i++) out[p->bias_id[i]] += p->bias[i];
    for (int j = 0; j < n; j++) {
        int c = 0;
        for (int i = n_prompt; i < n_hist; i++) c += hist[i] == j;
        if (c > 0) out[j] -= p->presence_penalty + p->frequency_penalty * (float)c;
    }
    int n_gen = n_hist - n_prompt;
    if (p->eos_id >= 0 && (p->ignore_eos || n_gen < p->min_tokens)) out[p->eos_id] = -INFINITY;
}

TEST(test_openai_fields)
{
    const float l[6] = {1.0f, 0.4f, -0.2f, 0.9f, 0.1f, 1.2f};
    const int32_t bid[2] = {2, 0};
    const float bv[2] = {1.5f, -0.7f};
    const int32_t hist[7] = {5, 5, 1, /* prompt */ 3, 3, 1, 3};
    sampler_params p = openai_params(1, 77, bid, bv, 2, 0.3f, 0.25f, 3);
    p.eos_id = 5;
    p.min_tokens = 6;   /* 4 generated: eos is out */
    char err[128];
    CHECK(sampler_params_validate(&p, err, sizeof err) == 0);
    float ref_l[6];
    naive_openai(l, 6, hist, 7, 3, &p, ref_l);
    CHECK(isinf(ref_l[5]) && ref_l[3] < l[3] - 1.0f && ref_l[2] > l[2]); /* the reference moved what it should */
    double ref[6];
    naive_softmax(ref_l, 6, 1.0, ref);
    sampler s;
    sampler_init(&s, &p);
    int cnt[6] = {0};
    for (int i = 0; i < N_DRAWS; i++) {
        int id = sampler_sample(&s, l, 6, hist, 7, NULL);
        if (id >= 0 && id < 6) cnt[id]++;
    }
    double x2 = chi_square(cnt, ref, 6, N_DRAWS);
    CHECK_MSG(cnt[5] == 0 && x2 < chi2_999[4], "eos drawn %d times, chi-square %.2f", cnt[5], x2);
    sampler_free(&s);
    /* greedy: the argmax of the reference, also once min_tokens is met
     * (eos back in play, here the best) and with ignore_eos (never) */
    p.temperature = 0;
    const float g[6] = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 2.0f};
    int32_t h2[5] = {0, 1, 2, 3, 4};
    for (int met = 0; met < 3; met++) {
        p.n_prompt = 1;
        p.min_tokens = met == 1 ? 4 : 5;
        p.ignore_eos = met == 2;
        float rl[6];
        naive_openai(g, 6, h2, 5, 1, &p, rl);
        int want = 0;
        for (int j = 1; j < 6; j++)
            if (rl[j] > rl[want]) want = j;
        sampler_init(&s, &p);
        int got = sampler_sample(&s, g, 6, h2, 5, NULL);
        CHECK_MSG(got == want, "greedy case %d: %d, want %d", met, got, want);
        CHECK((met == 1) == (got == 5));
        sampler_free(&s);
    }
    /* ranges name the field */
    p = params(1, 0, 1, 0, 1, 0);
    p.presence_penalty = 2.5f;
    CHECK(sampler_params_validate(&p, err, sizeof err) == -1 && strstr(err, "presence_penalty"));
    p = params(1, 0, 1, 0, 1, 0);
    float big = 101.0f;
    int32_t one = 0;
    p.bias = &big;
    p.bias_id = &one;
    p.n_bias = 1;
    CHECK(sampler_params_validate(&p, err, sizeof err) == -1 && strstr(err, "logit_bias"));
}

/* The repetition penalty's reference: each distinct id of the history
 * once, positive logits divided, others multiplied. */
static void naive_repetition(float *l, int n, const int32_t *hist, int n_hist, float pen)
{
    for (int j = 0; j < n; j++) {
        int seen = 0;
        for (int i = 0; i < n_hist; i++) seen |= hist[i] == j;
        if (seen) l[j] = l[j] > 0 ? l[j] / pen : l[j] * pen;
    }
}

/* Each OpenAI field alone, then all of them with the repetition penalty,
 * the filters and a temperature, in distribution (chi-square) against the
 * naive references in sampler.h's order: repetition penalty, bias,
 * presence/frequency over the generated part, end-of-text removal, then
 * temperature and the filters. The prompt's tokens are never counted by
 * presence/frequency: the history holds ids the generated part does not. */
TEST(test_openai_fields_each)
{
    const float l[8] = {0.6f, -0.4f, 1.1f, 0.3f, 0.9f, -0.1f, 0.7f, 0.2f};
    /* prompt {4, 4, 7}; generated 2 x3, 6 x1, 0 x1 */
    const int32_t hist[8] = {4, 4, 7, 2, 6, 2, 0, 2};
    const int n_prompt = 3, n_hist = 8, eos = 3;
    const int32_t bid[3] = {5, 1, 2};
    const float bv[3] = {2.0f, -1.5f, 0.25f};
    static const struct {
        const char *what;
        int bias;
        float pres, freq;
        int min_tokens, ignore_eos;
        float pen, temp, top_p;
        int top_k, moves; /* moves: the reference differs from plain softmax */
    } cases[] = {
        {"logit_bias", 1, 0, 0, 0, 0, 1, 1, 1, 0, 1},
        {"presence_penalty", 0, 0.8f, 0, 0, 0, 1, 1, 1, 0, 1},
        {"frequency_penalty", 0, 0, 0.6f, 0, 0, 1, 1, 1, 0, 1},
        {"negative penalties", 0, -0.5f, -0.4f, 0, 0, 1, 1, 1, 0, 1},
        {"min_tokens not met", 0, 0, 0, 6, 0, 1, 1, 1, 0, 1},
        {"min_tokens met", 0, 0, 0, 5, 0, 1, 1, 1, 0, 0},
        {"ignore_eos", 0, 0, 0, 0, 1, 1, 1, 1, 0, 1},
        {"all, with repetition penalty and filters", 1, 0.7f, 0.3f, 6, 0, 1.3f, 0.7f, 0.95f, 6, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sampler_params p = openai_params(cases[c].temp, 100 + c, bid, bv, cases[c].bias ? 3 : 0, cases[c].pres,
                                         cases[c].freq, n_prompt);
        p.top_k = cases[c].top_k;
        p.top_p = cases[c].top_p;
        p.repetition_penalty = cases[c].pen;
        p.min_tokens = cases[c].min_tokens;
        p.ignore_eos = cases[c].ignore_eos;
        p.eos_id = eos;
        char err[128];
        CHECK_MSG(sampler_params_validate(&p, err, sizeof err) == 0, "%s: %s", cases[c].what, err);
        float rl[8], tl[8];
        memcpy(rl, l, sizeof rl);
        naive_repetition(rl, 8, hist, n_hist, cases[c].pen);
        naive_openai(rl, 8, hist, n_hist, n_prompt, &p, tl);
        double ref[8];
        naive_filtered(tl, 8, cases[c].temp, cases[c].top_k, cases[c].top_p, 0, ref);
        /* the reference moved the distribution (the case tests something) */
        double plain[8];
        naive_softmax(l, 8, 1.0, plain);
        double moved = 0;
        for (int j = 0; j < 8; j++) moved += fabs(ref[j] - plain[j]);
        CHECK_MSG(cases[c].moves ? moved > 0.05 : moved < 1e-6, "%s: reference moved %.3g", cases[c].what, moved);
        check_distribution_hist(p, l, 8, hist, n_hist, ref, __LINE__ + (int)c * 1000);
    }
}

/* ignore_eos without filters takes the fast whole-vocabulary draw
 * (sampler_draw_all) with the end-of-text token weighing 0: over several
 * blocks of 256, eos (the best logit, in the third block) is never drawn,
 * the rest follow the softmax without it (chi-square), and the log-prob
 * is the unmodified model's. When every other weight underflows beside
 * eos, the draw falls back to the general path and still avoids eos. */
TEST(test_ignore_eos_fast_path)
{
    enum { V = 1003, K = 5, EOS = 600 };
    static float l[V];
    const int32_t ids[K] = {3, 300, 599, 601, 1002};
    for (int i = 0; i < V; i++) l[i] = -40.0f + (float)(i % 5) * 0.01f; /* negligible mass */
    const float base[K] = {0.7f, 1.1f, 0.2f, 1.3f, -0.4f};
    for (int k = 0; k < K; k++) l[ids[k]] = base[k];
    l[EOS] = 3.0f;
    sampler_params p = params(1, 0, 1, 0, 1, 91);
    p.eos_id = EOS;
    p.ignore_eos = 1;
    double ref[K], z = 0;
    for (int k = 0; k < K; k++) z += exp((double)base[k]);
    for (int k = 0; k < K; k++) ref[k] = exp((double)base[k]) / z;
    sampler s;
    sampler_init(&s, &p);
    int cnt[K] = {0}, eos = 0, other = 0, lp_bad = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        float lp = 0;
        int id = sampler_sample(&s, l, V, NULL, 0, &lp), k = 0;
        while (k < K && ids[k] != id) k++;
        if (id == EOS) eos++;
        else if (k == K) other++;
        else cnt[k]++;
        lp_bad += id >= 0 && id < V && lp != sampler_logprob(l, V, id);
    }
    sampler_free(&s);
    double x2 = chi_square(cnt, ref, K, N_DRAWS);
    CHECK_MSG(eos == 0 && other < 5 && x2 < chi2_999[K - 1], "eos %d, elsewhere %d, chi-square %.2f", eos, other,
              x2);
    CHECK_MSG(lp_bad == 0, "%d log-probs differ from sampler_logprob", lp_bad);
    /* everything but eos underflows in float: the general path draws */
    for (int i = 0; i < V; i++) l[i] = -300.0f;
    l[EOS] = 300.0f;
    l[17] = -299.0f;
    sampler_init(&s, &p);
    for (int i = 0; i < 50; i++) {
        int id = sampler_sample(&s, l, V, NULL, 0, NULL);
        CHECK_MSG(id >= 0 && id < V && id != EOS, "draw %d: %d", i, id);
    }
    sampler_free(&s);
}

/* logit_bias and the penalties over a vocabulary of several blocks of 256
 * (the general path over every block): the mass goes where the biases put
 * it, the distribution is the reference's, and greedy is its argmax. */
TEST(test_openai_fields_many_blocks)
{
    enum { V = 1003, K = 6 };
    static float l[V];
    const int32_t ids[K] = {2, 255, 256, 611, 1000, 1002};
    for (int i = 0; i < V; i++) l[i] = -30.0f + (float)(i % 7) * 0.01f; /* negligible, not -inf */
    const float base[K] = {1.0f, 0.5f, 1.2f, -0.3f, 0.8f, 0.0f};
    for (int k = 0; k < K; k++) l[ids[k]] = base[k];
    const int32_t bid[3] = {1002, 611, 2};
    const float bv[3] = {1.4f, 1.1f, -2.0f};
    const int32_t hist[5] = {256, 256, /* generated */ 256, 1000, 1000};
    sampler_params p = openai_params(1, 55, bid, bv, 3, 0.4f, 0.3f, 2);
    static float tl[V];
    naive_openai(l, V, hist, 5, 2, &p, tl);
    double ref[K], z = 0, rest = 0;
    for (int k = 0; k < K; k++) z += exp((double)tl[ids[k]]);
    for (int i = 0; i < V; i++) rest += exp((double)tl[i]);
    for (int k = 0; k < K; k++) ref[k] = exp((double)tl[ids[k]]) / z;
    CHECK(z / rest > 0.9999999); /* the other tokens hold < 1e-7 of the mass */
    sampler s;
    sampler_init(&s, &p);
    int cnt[K] = {0}, other = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int id = sampler_sample(&s, l, V, hist, 5, NULL), k = 0;
        while (k < K && ids[k] != id) k++;
        if (k == K) other++;
        else cnt[k]++;
    }
    sampler_free(&s);
    double x2 = chi_square(cnt, ref, K, N_DRAWS);
    CHECK_MSG(other == 0 && x2 < chi2_999[K - 1], "%d draws elsewhere, chi-square %.2f", other, x2);
    p.temperature = 0;
    sampler_init(&s, &p);
    int want = 0;
    for (int i = 1; i < V; i++)
        if (tl[i] > tl[want]) want = i;
    CHECK(want == 1002 && sampler_sample(&s, l, V, hist, 5, NULL) == want);
    sampler_free(&s);
}

int main(void)
{
    RUN(test_defaults_and_validate);
    RUN(test_greedy_is_argmax);
    RUN(test_top_k1_is_greedy);
    RUN(test_seed_determinism);
    RUN(test_distribution_matches_softmax);
    RUN(test_distribution_many_blocks);
    RUN(test_filters_exclude_and_renormalize);
    RUN(test_top_k_large_with_ties);
    RUN(test_repetition_penalty);
    RUN(test_logprob_is_log_softmax);
    RUN(test_openai_fields);
    RUN(test_openai_fields_each);
    RUN(test_openai_fields_many_blocks);
    RUN(test_ignore_eos_fast_path);
    return test_summary();
}
