/*
 * sampler.c - next-token selection: repetition penalty, temperature,
 * top_k, softmax, top_p, min_p, and a draw from a private xoshiro256**.
 *
 * All arithmetic after the penalty is in double, so tiny temperatures do
 * not overflow and the result depends only on the seed and the logits.
 */
#include "sampler.h"

#include "ops.h"
#include "vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sampler_params_default(sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
    p->eos_id = -1;
}

static int sampler_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int sampler_params_validate(const sampler_params *p, char *err, size_t errlen)
{
    if (!p)
        return sampler_fail(err, errlen, "sampler: no parameters");
    /* written so that NaN fails every range check */
    if (!(p->temperature >= 0.0f && p->temperature <= SAMPLER_MAX_TEMPERATURE))
        return sampler_fail(err, errlen, "temperature must be in [0, %g] (got %g)", (double)SAMPLER_MAX_TEMPERATURE,
                            (double)p->temperature);
    if (p->top_k < 0)
        return sampler_fail(err, errlen, "top_k must be >= 0 (got %d)", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return sampler_fail(err, errlen, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return sampler_fail(err, errlen, "min_p must be in [0, 1] (got %g)", (double)p->min_p);
    if (!(p->repetition_penalty >= SAMPLER_MIN_REPETITION_PENALTY &&
          p->repetition_penalty <= SAMPLER_MAX_REPETITION_PENALTY))
        return sampler_fail(err, errlen, "repetition_penalty must be in [%g, %g] (got %g)",
                            (double)SAMPLER_MIN_REPETITION_PENALTY, (double)SAMPLER_MAX_REPETITION_PENALTY,
                            (double)p->repetition_penalty);
    if (!(p->presence_penalty >= -SAMPLER_MAX_PENALTY && p->presence_penalty <= SAMPLER_MAX_PENALTY))
        return sampler_fail(err, errlen, "presence_penalty must be in [-2, 2] (got %g)", (double)p->presence_penalty);
    if (!(p->frequency_penalty >= -SAMPLER_MAX_PENALTY && p->frequency_penalty <= SAMPLER_MAX_PENALTY))
        return sampler_fail(err, errlen, "frequency_penalty must be in [-2, 2] (got %g)",
                            (double)p->frequency_penalty);
    if (p->n_bias < 0 || (p->n_bias > 0 && (!p->bias_id || !p->bias)))
        return sampler_fail(err, errlen, "logit_bias: bad list");
    for (int i = 0; i < p->n_bias; i++)
        if (p->bias_id[i] < 0 || !(p->bias[i] >= -SAMPLER_MAX_BIAS && p->bias[i] <= SAMPLER_MAX_BIAS))
            return sampler_fail(err, errlen, "logit_bias: token %d, bias %g: ids >= 0, biases in [-100, 100]",
                                (int)p->bias_id[i], (double)p->bias[i]);
    if (p->min_tokens < 0 || p->n_prompt < 0)
        return sampler_fail(err, errlen, "%s must be >= 0", p->min_tokens < 0 ? "min_tokens" : "n_prompt");
    return 0;
}

/* ------------------------------------------------------------------ PRNG */

static uint64_t sampler_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t sampler_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t sampler_next(sampler *s)
{
    uint64_t *st = s->s;
    uint64_t r = sampler_rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = sampler_rotl(st[3], 45);
    return r;
}

double sampler_uniform(sampler *s)
{
    return (double)(sampler_next(s) >> 11) * 0x1.0p-53;
}

void sampler_init(sampler *s, const sampler_params *p)
{
    memset(s, 0, sizeof(*s));
    if (p)
        s->p = *p;
    else
        sampler_params_default(&s->p);
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->s[i] = sampler_splitmix64(&x);
}

void sampler_free(sampler *s)
{
    if (!s)
        return;
    free(s->val);
    free(s->cand);
    free(s->w);
    free(s->cnt);
    s->val = NULL;
    s->cand = NULL;
    s->w = NULL;
    s->cnt = NULL;
    s->n_cap = 0;
}

float sampler_logprob(const float *logits, int n, int i)
{
    if (!logits || n < 1 || i < 0 || i >= n || isnan(logits[i]))
        return -INFINITY;
    /* the one log-softmax of the engine; NaN or infinite logits make it
     * NaN or infinite, and those rows take the careful path below */
    float mx, z = ops_log_softmax_z(logits, n, &mx, NULL);
    if (isfinite(z) && isfinite(mx) && isfinite(logits[i]))
        return ops_log_prob(logits[i], mx, z);
    double m = -INFINITY;
    for (int j = 0; j < n; j++)
        if (logits[j] > m) /* NaN never compares greater: counts as -inf */
            m = logits[j];
    if (isinf(m)) {
        /* degenerate: the mass is shared evenly by the logits equal to m */
        int cnt = 0;
        for (int j = 0; j < n; j++)
            cnt += logits[j] == m || (m < 0 && isnan(logits[j]));
        return logits[i] == m ? (float)-log((double)cnt) : -INFINITY;
    }
    /* float exp of values <= 0 (relative error ~1e-7), summed in double */
    float mf = (float)m;
    double sum = 0.0;
    for (int j = 0; j < n; j++)
        if (!isnan(logits[j]))
            sum += expf(logits[j] - mf);
    return (float)((double)logits[i] - m - log(sum));
}

/* ------------------------------------------------------------- sampling */

static int sampler_reserve(sampler *s, int n)
{
    if (n <= s->n_cap)
        return 0;
    double *v = realloc(s->val, (size_t)n * sizeof(*v));
    if (v)
        s->val = v;
    sampler_cand *c = realloc(s->cand, (size_t)n * sizeof(*c));
    if (c)
        s->cand = c;
    float *w = realloc(s->w, (size_t)n * sizeof(*w));
    if (w)
        s->w = w;
    int *cn = realloc(s->cnt, (size_t)n * sizeof(*cn));
    if (cn) {
        memset(cn + s->n_cap, 0, (size_t)(n - s->n_cap) * sizeof(*cn)); /* zero between calls */
        s->cnt = cn;
    }
    if (!v || !c || !w || !cn)
        return -1;
    s->n_cap = n;
    return 0;
}

/* Candidate order: larger value first, then lower id. */
static int sampler_cand_cmp(const void *pa, const void *pb)
{
    const sampler_cand *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int sampler_before(const sampler_cand *a, const sampler_cand *b)
{
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

/* Move the k best candidates (sampler_before order) to c[0..k), unsorted:
 * quickselect, expected O(n). */
static void sampler_select(sampler_cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        sampler_cand pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (sampler_before(&c[i], &pivot))
                i++;
            while (sampler_before(&pivot, &c[j]))
                j--;
            if (i <= j) {
                sampler_cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

static void sampler_penalize(sampler *s, const float *logits, int n, const int32_t *hist, int n_hist)
{
    double pen = s->p.repetition_penalty;
    if (pen == 1.0)
        return;
    for (int i = 0; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= n)
            continue;
        double v = s->val[t];
        /* once per distinct id: a changed value means already penalized
         * (0 and +-inf are fixed points, penalizing them again is a no-op) */
        if (v != (double)logits[t])
            continue;
        s->val[t] = v > 0 ? v / pen : v * pen;
    }
}

/* OpenAI's penalties over the generated tokens hist[n_prompt..): each
 * distinct id once, logit -= presence + frequency * count (cnt is zero
 * again afterwards). */
static void sampler_penalize_generated(sampler *s, int n, const int32_t *hist, int n_hist)
{
    const double pres = s->p.presence_penalty, freq = s->p.frequency_penalty;
    int from = s->p.n_prompt < n_hist ? s->p.n_prompt : n_hist;
    if (pres == 0.0 && freq == 0.0)
        return;
    for (int i = from; i < n_hist; i++)
        if (hist[i] >= 0 && hist[i] < n)
            s->cnt[hist[i]]++;
    for (int i = from; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= n || s->cnt[t] == 0)
            continue;
        s->val[t] -= pres + freq * s->cnt[t];
        s->cnt[t] = 0;
    }
}

/* Everything between the logits and the temperature (sampler.h's order):
 * repetition penalty, bias, presence/frequency, end-of-text removal. */
static void sampler_transform(sampler *s, const float *logits, int n, const int32_t *hist, int n_hist)
{
    double *val = s->val;
    for (int j = 0; j < n; j++)
        val[j] = isnan(logits[j]) ? -INFINITY : (double)logits[j];
    if (n_hist > 0) /* first: it finds the ids it already penalized by val != logits */
        sampler_penalize(s, logits, n, hist, n_hist);
    for (int i = 0; i < s->p.n_bias; i++)
        if (s->p.bias_id[i] < n)
            val[s->p.bias_id[i]] += s->p.bias[i];
    if (n_hist > 0)
        sampler_penalize_generated(s, n, hist, n_hist);
    int n_gen = n_hist - (s->p.n_prompt < n_hist ? s->p.n_prompt : n_hist);
    if (s->p.eos_id >= 0 && s->p.eos_id < n && (s->p.ignore_eos || n_gen < s->p.min_tokens))
        val[s->p.eos_id] = -INFINITY;
}

static int sampler_argmax(const double *v, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* Draw from softmax(logits * inv_t) over all n tokens, the path of every
 * request without a filter or a repetition penalty, in 8-wide float
 * vectors: weights exp((logits - m) * inv_t) (m the largest logit, from the
 * log-softmax the caller computed anyway), NaN and -inf logits weigh
 * exactly 0, and the draw finds its block of SAMPLER_BLOCK tokens from the
 * block sums before scanning inside it: a few microseconds at vocab 8192
 * instead of a libm call per token. have_w: s->w already holds
 * exp(logits - m) (the log-softmax's own exps, the very bits computed here
 * when inv_t is 1), so the exps are not computed twice. Token `off` (the
 * end-of-text token while it may not be sampled; -1: none) weighs 0.
 * Returns -1 when nothing is left to draw (every weight but off's
 * underflowed): the caller then takes the general path. */
#define SAMPLER_BLOCK 256
#define SAMPLER_BLOCK_MAX (1 << 20) /* larger vocabularies take the general path */
static int sampler_draw_all(sampler *s, const float *logits, int n, float m, double inv_t, double u, int off,
                            int have_w)
{
    float *w = s->w;
    const v8f vm = v8_set1(m), vt = v8_set1((float)inv_t), ninf = v8_set1(-INFINITY), zero = v8_set1(0.0f);
    double bsum[SAMPLER_BLOCK_MAX / SAMPLER_BLOCK], tot = 0.0;
    int nb = 0;
    for (int j0 = 0; j0 < n; j0 += SAMPLER_BLOCK, nb++) {
        int j1 = j0 + SAMPLER_BLOCK < n ? j0 + SAMPLER_BLOCK : n, j = j0;
        v8f acc = zero;
        for (; j + 8 <= j1; j += 8) {
            v8f x = v8_load(logits + j);
            /* x > -inf is false for -inf and NaN */
            v8f e = v8_select(x > ninf, have_w ? v8_load(w + j) : v8_exp((x - vm) * vt), zero);
            v8_store(w + j, e);
            acc += e;
        }
        float tail = 0.0f;
        for (; j < j1; j++) {
            w[j] = logits[j] > -INFINITY ? (have_w ? w[j] : v8_exp1((logits[j] - m) * (float)inv_t)) : 0.0f;
            tail += w[j];
        }
        bsum[nb] = (double)v8_hsum(acc) + tail;
        if (off >= j0 && off < j1) {
            bsum[nb] -= w[off];
            w[off] = 0.0f;
        }
        tot += bsum[nb];
    }
    if (!(tot > 0.0))
        return -1;
    double r = u * tot;
    int b = 0;
    while (b < nb - 1 && r >= bsum[b])
        r -= bsum[b++];
    int j1 = (b + 1) * SAMPLER_BLOCK < n ? (b + 1) * SAMPLER_BLOCK : n, last = -1;
    double cum = 0.0;
    for (int j = b * SAMPLER_BLOCK; j < j1; j++) {
        if (w[j] <= 0.0f)
            continue;
        cum += w[j];
        last = j;
        if (r < cum)
            return j;
    }
    if (last >= 0)
        return last; /* rounding at the end of the block */
    for (int j = n - 1; j >= 0; j--) /* a weightless last block: the last weighted token */
        if (w[j] > 0.0f)
            return j;
    return -1; /* unreachable: tot > 0 */
}

/* Softmax weights of the n candidates c (unnormalized, the largest 1; +inf
 * logits share all the mass); returns their sum, or -1 if no candidate is
 * finite (nothing to weigh). */
static double sampler_cand_weights(sampler_cand *c, int n)
{
    double m = -INFINITY;
    for (int j = 0; j < n; j++)
        if (c[j].v > m)
            m = c[j].v;
    if (m == -INFINITY)
        return -1.0;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        c[j].v = isinf(m) ? (c[j].v == m ? 1.0 : 0.0) : (double)expf((float)(c[j].v - m));
        sum += c[j].v;
    }
    return sum;
}

/* top_p: the smallest prefix of the candidates sorted by weight holding
 * at least top_p of the mass sum; returns its length. Sorts only a growing
 * head (found by quickselect) until it holds enough: usually a few dozen
 * tokens. */
static int sampler_top_p(sampler_cand *c, int n, double top_p, double sum)
{
    double target = top_p * sum;
    int head = n < 64 ? n : 64, k;
    for (;;) {
        if (head < n)
            sampler_select(c, n, head);
        qsort(c, (size_t)head, sizeof(*c), sampler_cand_cmp);
        double cum = 0.0;
        for (k = 0; k < head && cum < target;)
            cum += c[k++].v;
        if (cum >= target || head == n)
            break;
        head = head > n / 4 ? n : head * 4;
    }
    return k > 0 ? k : 1;
}

/* min_p: keep the candidates whose weight is at least min_p of the largest
 * (which is exp(0) = 1, or 1 for the +inf group); returns how many. */
static int sampler_min_p(sampler_cand *c, int n, double min_p)
{
    int k = 0;
    for (int j = 0; j < n; j++)
        if (c[j].v >= min_p)
            c[k++] = c[j];
    return k;
}

/* The candidate at u in [0, 1) of the n weights' cumulative mass. */
static int sampler_cand_draw(const sampler_cand *c, int n, double u)
{
    double sum = 0.0;
    for (int j = 0; j < n; j++)
        sum += c[j].v;
    double r = u * sum, cum = 0.0;
    for (int j = 0; j < n; j++) {
        cum += c[j].v;
        if (r < cum)
            return c[j].id;
    }
    return c[n - 1].id;
}

int sampler_sample(sampler *s, const float *logits, int n_vocab, const int32_t *history, int n_history,
                   float *logprob)
{
    if (!s || !logits || n_vocab < 1 || (n_history > 0 && !history) || sampler_reserve(s, n_vocab) < 0)
        return -1;
    int id;
    /* drawn first: exactly one draw per call with a temperature */
    double u = s->p.temperature > 0.0f ? sampler_uniform(s) : 0.0;
    double inv_t = s->p.temperature > 0.0f ? 1.0 / (double)s->p.temperature : 0.0;
    int n_gen = n_history - (s->p.n_prompt < n_history ? s->p.n_prompt : n_history);
    int eos_off = s->p.eos_id >= 0 && (s->p.ignore_eos || n_gen < s->p.min_tokens);
    int unfiltered = (s->p.top_k <= 0 || s->p.top_k >= n_vocab) && s->p.top_p >= 1.0f && s->p.min_p <= 0.0f &&
                     (s->p.repetition_penalty == 1.0f || n_history == 0) && s->p.n_bias == 0 &&
                     ((s->p.presence_penalty == 0.0f && s->p.frequency_penalty == 0.0f) || n_gen == 0);
    if (s->p.temperature > 0.0f && unfiltered && n_vocab <= SAMPLER_BLOCK_MAX) {
        /* at temperature 1 the draw's weights are the log-softmax's exps */
        const int reuse = inv_t == 1.0;
        float mx, z = ops_log_softmax_exps(logits, n_vocab, &mx, reuse ? s->w : NULL);
        if (isfinite(mx) && isfinite(z)) { /* else NaN or infinite logits: the general path */
            id = sampler_draw_all(s, logits, n_vocab, mx, inv_t, u, eos_off ? s->p.eos_id : -1, reuse);
            if (id >= 0) {
                if (logprob)
                    *logprob = ops_log_prob(logits[id], mx, z); /* = sampler_logprob's bits */
                return id;
            }
        }
    }
    /* the general path: penalties and bias on s->val, then the filters on
     * candidates (value / temperature, id) */
    double *val = s->val;
    sampler_transform(s, logits, n_vocab, history, n_history);
    if (s->p.temperature <= 0.0f) {
        id = sampler_argmax(val, n_vocab);
    } else {
        sampler_cand *c = s->cand;
        int n = n_vocab;
        for (int j = 0; j < n; j++) {
            c[j].v = val[j] * inv_t;
            c[j].id = j;
        }
        if (s->p.top_k > 0 && s->p.top_k < n) {
            sampler_select(c, n, s->p.top_k);
            n = s->p.top_k;
        }
        const double sum = sampler_cand_weights(c, n);
        if (sum < 0) {
            id = sampler_argmax(val, n_vocab); /* nothing finite: lowest id */
        } else {
            if (s->p.top_p < 1.0f)
                n = sampler_top_p(c, n, (double)s->p.top_p, sum);
            if (s->p.min_p > 0.0f)
                n = sampler_min_p(c, n, (double)s->p.min_p);
            id = sampler_cand_draw(c, n, u);
        }
    }
    if (logprob)
        *logprob = sampler_logprob(logits, n_vocab, id);
    return id;
}
