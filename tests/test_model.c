/*
 * test_model.c - the inference engine (model.h) on tiny models built in
 * memory (arch_init_params with every term made nonzero, ckpt_write_buffer,
 * model_load_buffer):
 *   - incremental decoding (prefill, then one token at a time, then a chunk)
 *     reproduces the full-sequence logits, for every variant;
 *   - a batch of sequences of different lengths, and a mixed prefill/decode
 *     step, give the logits of each sequence alone;
 *   - precomputed static attention equals the recomputed one;
 *   - a q8_0 checkpoint stays close to the f32 one;
 *   - model_step rejects bad input and leaves the cache unchanged;
 *   - model_static_attention is the causal softmax of R (rows sum to 1);
 *   - model_score agrees with a double-precision log-softmax of model_step
 *     logits; load errors are reported with "model_load:".
 * Correctness of the forward pass itself against a naive implementation of
 * arch.h is tests/test_forward_ref.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "gguf.h"
#include "kern.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "test.h"
#include "fixture.h"
#include "test_util.h"
#include "tok.h"

void openblas_set_num_threads(int n);

#define TOL 1e-4

static void tiny_hparams(arch_hparams *hp, arch_variant v)
{
    arch_hparams_default(hp);
    hp->n_vocab = 257; /* 256 bytes + eos */
    hp->n_ctx = 16;
    hp->n_embd = 64;
    hp->n_layer = 2;
    hp->n_head = 2;    /* d_head 32: the dense W2 is quantizable too */
    hp->n_ff = 96;
    hp->fr_rank = 4;
    hp->fd_a = 4;
    hp->fd_b = 4;
    hp->variant = v;
}

typedef struct {
    arch_hparams hp;
    int n;          /* tensors */
    float **p;      /* f32 parameters, arch_tensors() order */
    void *buf;      /* checkpoint image */
    size_t size;
    model *m;
} fixture;


/* Parameters from arch_init_params, then every tensor perturbed so biases,
 * norm weights and alpha are not trivial and the logits are O(1). */
static void make_params(fixture *f, uint64_t seed)
{
    arch_tensor *ts = calloc((size_t)f->n, sizeof *ts);
    arch_tensors(&f->hp, ts, f->n);
    f->p = calloc((size_t)f->n, sizeof *f->p);
    tu_seed(seed); /* same seed, same parameters */
    for (int i = 0; i < f->n; i++) f->p[i] = malloc(sizeof(float) * (size_t)ts[i].n_elem);
    arch_init_params(&f->hp, seed, 1.0f, f->p);
    for (int i = 0; i < f->n; i++) {
        float scale = ts[i].kind == T_TOKEN_EMBD ? 1.0f : ts[i].n_dims >= 2 ? 0.15f : 0.3f;
        if (ts[i].kind == T_RANDOM || ts[i].kind == T_RANDOM_A || ts[i].kind == T_RANDOM_B) scale = 0.5f;
        for (int64_t e = 0; e < ts[i].n_elem; e++) f->p[i][e] += scale * tu_frand();
    }
    free(ts);
}

/* Write the parameters as a checkpoint of `type` and load it. */
static int fixture_load(fixture *f, uint32_t type)
{
    char **vocab = fixture_byte_vocab(f->hp.n_vocab);
    char err[256] = "out of memory";
    int rc = vocab ? fixture_ckpt_write(&f->hp, "tiny", vocab, f->hp.n_vocab, NULL, 0, f->hp.n_vocab - 1,
                                        (const float *const *)f->p, type, &f->buf, &f->size, err, sizeof err)
                   : -1;
    CHECK_MSG(rc == 0, "fixture_ckpt_write: %s", err);
    if (rc == 0) {
        rc = model_load_buffer(f->buf, f->size, &f->m, err, sizeof err);
        CHECK_MSG(rc == 0, "model_load_buffer: %s", err);
        if (rc == 0) model_set_cache_values(f->m, MODEL_CACHE_F32); /* exact values, as the references */
    }
    if (vocab) tok_free_strings(vocab, f->hp.n_vocab);
    return rc;
}

/* A model of hparams hp with the tiny fixture's parameters */
static int fixture_init_hp(fixture *f, const arch_hparams *hp, uint32_t type, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->hp = *hp;
    f->n = arch_tensors(&f->hp, NULL, 0);
    make_params(f, seed);
    return fixture_load(f, type);
}

static int fixture_init(fixture *f, arch_variant v, uint32_t type, uint64_t seed)
{
    arch_hparams hp;
    tiny_hparams(&hp, v);
    return fixture_init_hp(f, &hp, type, seed);
}

static void fixture_free(fixture *f)
{
    model_free(f->m);
    free(f->buf);
    for (int i = 0; i < f->n; i++) free(f->p[i]);
    free(f->p);
}

static void random_tokens(int32_t *t, int n, int V)
{
    for (int i = 0; i < n; i++) t[i] = (int32_t)((tu_frand() + 1.0f) * 0.5f * (float)V) % V;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= w)) w = e; /* NaN propagates */
    }
    return w;
}

/* Logits of every position of one sequence in one step. */
static int full_logits(model *m, const int32_t *tok, int n, float *out)
{
    model_cache *c = model_cache_create(m, 1);
    model_seq s = {0, n, tok, 1};
    int rc = model_step(m, c, 1, &s, out);
    model_cache_free(c);
    return rc;
}

TEST(test_incremental_matches_full)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture f;
        if (fixture_init(&f, (arch_variant)v, QUANT_F32, 100 + v) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        int32_t tok[16];
        random_tokens(tok, L, V);
        float *full = malloc(sizeof(float) * L * V), *inc = malloc(sizeof(float) * L * V);
        CHECK(full_logits(f.m, tok, L, full) == 0);
        /* prefill 5 (all logits), decode one at a time up to 12, then a chunk of 4 */
        model_cache *c = model_cache_create(f.m, 2);
        model_seq s = {1, 5, tok, 1};
        CHECK(model_step(f.m, c, 1, &s, inc) == 0);
        for (int p = 5; p < 12; p++) {
            model_seq d = {1, 1, tok + p, 0};
            CHECK(model_step(f.m, c, 1, &d, inc + (size_t)p * V) == 0);
        }
        model_seq tail = {1, L - 12, tok + 12, 1};
        CHECK(model_step(f.m, c, 1, &tail, inc + (size_t)12 * V) == 0);
        CHECK(model_cache_len(c, 1) == L && model_cache_len(c, 0) == 0);
        double e = max_diff(full, inc, (size_t)L * V);
        CHECK_MSG(e <= TOL, "%s: incremental vs full max diff %g", arch_variant_name((arch_variant)v), e);
        /* logits_all = 0 on a chunk gives its last row */
        model_cache_reset(c, 1);
        CHECK(model_cache_len(c, 1) == 0);
        model_seq last = {1, 7, tok, 0};
        CHECK(model_step(f.m, c, 1, &last, inc) == 0);
        CHECK(max_diff(inc, full + (size_t)6 * V, V) <= TOL);
        model_cache_free(c);
        free(full);
        free(inc);
        fixture_free(&f);
    }
}

TEST(test_batch_matches_alone)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture f;
        if (fixture_init(&f, (arch_variant)v, QUANT_Q8_0, 200 + v) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        enum { NS = 4 };
        const int len[NS] = {3, 16, 7, 1}, slot[NS] = {2, 0, 4, 3};
        int32_t tok[NS][16];
        float *alone[NS];
        for (int q = 0; q < NS; q++) {
            random_tokens(tok[q], L, V);
            alone[q] = malloc(sizeof(float) * L * V);
            CHECK(full_logits(f.m, tok[q], L, alone[q]) == 0);
        }
        /* step 1: prefill the first len[q] tokens of all sequences at once */
        model_cache *c = model_cache_create(f.m, 5);
        model_seq s[NS];
        size_t rows = 0;
        for (int q = 0; q < NS; q++) {
            s[q] = (model_seq){slot[q], len[q], tok[q], 1};
            rows += (size_t)len[q];
        }
        float *lg = malloc(sizeof(float) * rows * V);
        CHECK(model_step(f.m, c, NS, s, lg) == 0);
        size_t r = 0;
        for (int q = 0; q < NS; q++, r += (size_t)len[q - 1]) {
            double e = max_diff(lg + r * V, alone[q], (size_t)len[q] * V);
            CHECK_MSG(e <= TOL, "%s: batched prefill seq %d diff %g", arch_variant_name((arch_variant)v), q, e);
        }
        /* step 2: mixed: seq 0 decodes one, seq 2 prefills 5 more, seq 3 decodes (seq 1 is full) */
        model_seq s2[3] = {{slot[0], 1, tok[0] + 3, 0}, {slot[2], 5, tok[2] + 7, 1}, {slot[3], 1, tok[3] + 1, 1}};
        float *lg2 = malloc(sizeof(float) * 7 * V);
        CHECK(model_step(f.m, c, 3, s2, lg2) == 0);
        CHECK(max_diff(lg2, alone[0] + (size_t)3 * V, V) <= TOL);
        CHECK(max_diff(lg2 + V, alone[2] + (size_t)7 * V, (size_t)5 * V) <= TOL);
        CHECK(max_diff(lg2 + 6 * V, alone[3] + (size_t)1 * V, V) <= TOL);
        CHECK(model_cache_len(c, slot[0]) == 4 && model_cache_len(c, slot[1]) == 16 &&
              model_cache_len(c, slot[2]) == 12 && model_cache_len(c, slot[3]) == 2 && model_cache_len(c, 1) == 0);
        model_cache_free(c);
        free(lg);
        free(lg2);
        for (int q = 0; q < NS; q++) free(alone[q]);
        fixture_free(&f);
    }
}

/* Sequence X prefills 5 tokens and decodes 6, once alone and once while 7
 * other sequences prefill (3..18 tokens, so some steps have more rows than
 * OPS_PACKED_MAX_N) and decode around it in the same steps. Returns the
 * number of the 7 steps whose logits for X differ in any bit, or -1 when
 * model_step fails. */
/* The value precision of the caches the invariance tests create (they run
 * for both). */
static model_cache_type g_vt = MODEL_CACHE_F32;
static model_cache *cache_new(const model *m, int n_slots)
{
    return model_cache_create_typed(m, n_slots, g_vt);
}

static int batched_vs_alone(fixture *f, int invariant)
{
    const int L = f->hp.n_ctx, V = f->hp.n_vocab;
    enum { NO = 7 };
    int32_t x[16], other[NO][24];
    random_tokens(x, L, V);
    for (int q = 0; q < NO; q++) random_tokens(other[q], L < 24 ? L : 24, V);
    float *alone = malloc(sizeof(float) * 7 * V), *lg = malloc(sizeof(float) * (NO + 1) * 24 * V);
    model_cache *c1 = cache_new(f->m, 1), *c8 = cache_new(f->m, NO + 1);
    model_cache_set_batch_invariant(c1, invariant);
    model_cache_set_batch_invariant(c8, invariant);
    int diff = 0, rc = 0;
    /* alone: prefill 5, then 6 single steps */
    model_seq s = {0, 5, x, 0};
    rc |= model_step(f->m, c1, 1, &s, alone);
    for (int i = 0; i < 6; i++) {
        s = (model_seq){0, 1, x + 5 + i, 0};
        rc |= model_step(f->m, c1, 1, &s, alone + (size_t)(i + 1) * V);
    }
    /* batched: the others start at different steps with different prompt lengths */
    int pos[NO] = {0};
    for (int step = 0; step < 7 && rc == 0; step++) {
        model_seq b[NO + 1];
        int n = 0;
        b[n++] = (model_seq){NO, step == 0 ? 5 : 1, step == 0 ? x : x + 4 + step, 0};
        for (int q = 0; q < NO; q++) {
            if (q > step + 1) continue;                 /* joins at step q - 1 */
            int want = pos[q] == 0 ? 3 + (q * 7) % 16 : 1;
            if (pos[q] + want > L || pos[q] + want > 24) continue; /* full: leaves the batch */
            b[n++] = (model_seq){q, want, other[q] + pos[q], q % 2};
            pos[q] += want;
        }
        rc |= model_step(f->m, c8, n, b, lg);
        diff += memcmp(lg, alone + (size_t)step * V, sizeof(float) * V) != 0;
    }
    model_cache_free(c1);
    model_cache_free(c8);
    free(alone);
    free(lg);
    return rc ? -1 : diff;
}

/* Batch invariance, bit for bit (the server's promise that a request gets
 * the same tokens alone or in a full batch), for every variant and weight
 * type on every kernel level this CPU has (model/kern.h); and the check is
 * sensitive: with the invariance switched off, big batches take the GEMM
 * path and the same comparison finds differences. */
TEST(test_batch_invariant_bitwise)
{
    const uint32_t types[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};
    int off_differs = 0, off_total = 0;
    for (int vt = 0; vt < 2; vt++)
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (kern_set_level((kern_level)l) != 0) continue;
        g_vt = (model_cache_type)vt;
        for (int v = 0; v < ARCH_N_VARIANTS; v++)
            for (int t = 0; t < 4; t++) {
                fixture f;
                if (fixture_init(&f, (arch_variant)v, types[t], 900 + v) != 0) { fixture_free(&f); continue; }
                int diff = batched_vs_alone(&f, 1);
                CHECK_MSG(diff == 0, "%s %s %s, %s cache: %d of 7 steps differ from the sequence alone",
                          kern_level_name((kern_level)l), arch_variant_name((arch_variant)v),
                          quant_type_name(types[t]), vt ? "f16" : "f32", diff);
                if (l == (int)kern_best_level() && vt == MODEL_CACHE_F32) {
                    off_differs += batched_vs_alone(&f, 0) > 0;
                    off_total++;
                }
                fixture_free(&f);
            }
    }
    kern_set_level(kern_best_level());
    g_vt = MODEL_CACHE_F32;
    CHECK_MSG(off_total > 0 && off_differs == off_total,
              "with batch invariance off only %d of %d variant/type pairs differ", off_differs, off_total);
}

/* Three steps on a fresh cache: NQ sequences prefill; then rows of every
 * kind (decoding rows, prefill chunks with all logits, a scored chunk);
 * then a step too uneven to be cut. Into out: the logits of the three
 * steps, then the scored log-probs and greedy flags. 0, or -1 when a step
 * fails. */
enum { NQ = 9, NQ_OUT = 64 };
static int sliced_steps(fixture *f, int32_t tok[NQ][12], float *out, size_t out_floats, long *sliced)
{
    const int V = f->hp.n_vocab;
    model_cache *c = model_cache_create_typed(f->m, NQ, g_vt);
    /* even shares whatever the threads' measured speeds (test_sliced_step_shares) */
    const double even[3] = {1, 1, 1};
    model_cache_fix_thread_speeds(c, even, 3);
    model_seq s[NQ];
    model_target tg[NQ];
    float *lg = out, lp[4];
    uint8_t gr[4];
    int rc = c ? 0 : -1, rows = 0;
    /* step 1: every sequence prefills 1 + q % 4 tokens, odd ones with all logits */
    for (int q = 0; q < NQ; q++) {
        s[q] = (model_seq){q, 1 + q % 4, tok[q], q % 2};
        rows += q % 2 ? 1 + q % 4 : 1;
    }
    rc |= c ? model_step(f->m, c, NQ, s, lg) : -1;
    lg += (size_t)rows * V;
    /* step 2: six decode, two prefill 3 more (all logits), one scores 4 */
    rows = 0;
    for (int q = 0; q < NQ; q++) {
        const int n = q == 4 ? 4 : q == 2 || q == 7 ? 3 : 1, p = 1 + q % 4;
        s[q] = (model_seq){q, n, tok[q] + p, n == 3};
        tg[q] = (model_target){q == 4 ? tok[q] + p + 1 : NULL, q == 4 ? lp : NULL, q == 4 ? gr : NULL};
        rows += q == 4 ? 0 : n == 3 ? 3 : 1;
    }
    rc |= c ? model_step_scored(f->m, c, NQ, s, tg, lg) : -1;
    lg += (size_t)rows * V;
    /* step 3: too uneven to cut (10 prefill rows beside 1 decoding row) */
    s[0] = (model_seq){0, 10, tok[0] + 2, 1};
    s[1] = (model_seq){1, 1, tok[1] + 3, 0};
    rc |= c ? model_step(f->m, c, 2, s, lg) : -1;
    lg += (size_t)11 * V;
    memcpy(lg, lp, sizeof lp);
    for (int i = 0; i < 4; i++) lg[4 + i] = gr[i];
    rc |= (size_t)(lg + 8 - out) > out_floats;
    *sliced = model_cache_sliced_steps(c);
    model_cache_free(c);
    return rc ? -1 : 0;
}

/* A step's sequences are cut into parts run by the pool's threads, each
 * through the whole network (model.c, sliced steps): that must change no
 * bit of any output, for every sequence in the step (not only the first
 * part's). The same two steps give the same logits, log-probs and greedy
 * flags with thread budgets 1 (never sliced), 2 and 3, for every variant
 * and both value caches. */
TEST(test_sliced_step_bitwise)
{
    const int budget[3] = {1, 2, 3};
    for (int vt = 0; vt < 2; vt++)
        for (int v = 0; v < ARCH_N_VARIANTS; v++) {
            fixture f;
            if (fixture_init(&f, (arch_variant)v, QUANT_Q8_0, 1700 + v) != 0) { fixture_free(&f); continue; }
            g_vt = (model_cache_type)vt;
            int32_t tok[NQ][12];
            for (int q = 0; q < NQ; q++) random_tokens(tok[q], 12, f.hp.n_vocab);
            const size_t nf = (size_t)NQ_OUT * f.hp.n_vocab;
            float *ref = calloc(nf, sizeof(float)), *got = calloc(nf, sizeof(float));
            for (int b = 0; b < 3; b++) {
                model_set_threads(budget[b]);
                float *dst = b == 0 ? ref : got;
                memset(dst, 0, nf * sizeof(float));
                long sliced = -1;
                CHECK(sliced_steps(&f, tok, dst, nf, &sliced) == 0);
                /* steps 1 and 2 split (step 3 cannot) once there are 2 threads */
                CHECK_MSG(sliced == (budget[b] > 1 ? 2 : 0), "%d threads: %ld sliced steps", budget[b], sliced);
                if (b > 0)
                    CHECK_MSG(memcmp(ref, got, nf * sizeof(float)) == 0, "%s, %s cache: %d threads differ from 1",
                              arch_variant_name((arch_variant)v), vt ? "f16" : "f32", budget[b]);
            }
            model_set_threads(0);
            free(ref);
            free(got);
            fixture_free(&f);
        }
    g_vt = MODEL_CACHE_F32;
}

/* A sliced step gives each thread a share in proportion to its speed
 * (model.h): fixed speeds cut 16 equal sequences where the shares say,
 * within SLICE_SPEED_RANGE (2x the mean) — and the logits of every cut are
 * the bits of the unsliced step. Left to measure, the cache learns a
 * speed for each thread that ran a part. */
TEST(test_sliced_step_shares)
{
    enum { NS = 16 };
    /* wide enough that a part of 8 rows runs well over SLICE_SPEED_MIN_S */
    fixture f;
    arch_hparams hp;
    tiny_hparams(&hp, ARCH_RANDOM);
    hp.n_embd = 256, hp.n_ff = 1024, hp.n_head = 4, hp.n_ctx = 64;
    hp.n_layer = 6; /* 2 layers ran a part in ~110 us on the int8 kernels: too close to the threshold */
    CHECK(fixture_init_hp(&f, &hp, QUANT_Q8_0, 1800) == 0);
    const int V = f.hp.n_vocab;
    int32_t tok[NS];
    random_tokens(tok, NS, V);
    model_seq s[NS];
    for (int q = 0; q < NS; q++) s[q] = (model_seq){q, 1, &tok[q], 0};
    float *ref = calloc((size_t)NS * V, sizeof(float)), *got = calloc((size_t)NS * V, sizeof(float));
    model_set_threads(1);
    model_cache *c = model_cache_create(f.m, NS);
    CHECK(c && model_step(f.m, c, NS, s, ref) == 0);
    CHECK(model_cache_last_parts(c, NULL, 0) == 1);
    model_cache_free(c);
    struct {
        int threads;
        double speed[3];
        int first[3]; /* expected first sequence of each part */
    } cases[] = {
        {2, {1, 1}, {0, 8}},     {2, {3, 1}, {0, 12}},   {2, {1, 3}, {0, 4}},
        {2, {100, 1}, {0, 13}}, /* clamped: 2x and 0.5x the mean -> 0.8 / 0.2 */
        {3, {1, 1, 2}, {0, 4, 8}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_set_threads(cases[i].threads);
        c = model_cache_create(f.m, NS);
        CHECK(model_cache_set_parts_per_thread(c, 1) == 0); /* one part per thread: shares by speed */
        model_cache_fix_thread_speeds(c, cases[i].speed, cases[i].threads);
        memset(got, 0, (size_t)NS * V * sizeof(float));
        CHECK(c && model_step(f.m, c, NS, s, got) == 0);
        int first[3] = {-1, -1, -1};
        CHECK_MSG(model_cache_last_parts(c, first, 3) == cases[i].threads, "case %zu: %d parts", i,
                  model_cache_last_parts(c, NULL, 0));
        for (int k = 0; k < cases[i].threads; k++)
            CHECK_MSG(first[k] == cases[i].first[k], "case %zu: part %d starts at sequence %d, not %d", i, k,
                      first[k], cases[i].first[k]);
        CHECK_MSG(memcmp(ref, got, (size_t)NS * V * sizeof(float)) == 0, "case %zu: logits differ from unsliced", i);
        model_cache_free(c);
    }
    /* more parts than threads (the default, 4 per thread, at least 4
     * sequences each): 16 sequences on 2 threads are 4 even parts, claimed
     * by whichever thread is free, whatever the speeds; the same bits. The
     * count is a multiple of the threads: on 3 threads the 4 parts of 4
     * sequences become 3 parts (of 5, 6 and 5) */
    const struct { int threads, per_thread, parts, first[4]; } fine[] = {
        {2, 4, 4, {0, 4, 8, 12}}, {2, 2, 4, {0, 4, 8, 12}}, {3, 4, 3, {0, 5, 11}},
        {2, 16, 4, {0, 4, 8, 12}}, {4, 4, 4, {0, 4, 8, 12}}};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        model_set_threads(fine[i].threads);
        c = model_cache_create(f.m, NS);
        CHECK(c && model_cache_set_parts_per_thread(c, fine[i].per_thread) == 0);
        const double skew[2] = {3, 1};
        model_cache_fix_thread_speeds(c, skew, 2);
        memset(got, 0, (size_t)NS * V * sizeof(float));
        CHECK(c && model_step(f.m, c, NS, s, got) == 0);
        int first[4] = {-1, -1, -1, -1};
        CHECK_MSG(model_cache_last_parts(c, first, 4) == fine[i].parts, "fine case %zu: %d parts", i,
                  model_cache_last_parts(c, NULL, 0));
        for (int k = 0; k < fine[i].parts && k < 4; k++)
            CHECK_MSG(first[k] == fine[i].first[k], "fine case %zu: part %d starts at sequence %d, not %d", i, k,
                      first[k], fine[i].first[k]);
        CHECK_MSG(memcmp(ref, got, (size_t)NS * V * sizeof(float)) == 0, "fine case %zu: logits differ from unsliced",
                  i);
        model_cache_free(c);
    }
    c = model_cache_create(f.m, NS);
    CHECK(model_cache_set_parts_per_thread(c, 0) == MODEL_EINVAL && model_cache_set_parts_per_thread(c, 17) == MODEL_EINVAL);
    model_cache_free(c);
    /* measured: steps of 16 sequences, each part long enough to time. A
     * step counts only when each thread ran its own part (model.c,
     * update_speeds); on a busy VM the second thread can wake too late to
     * claim its part for many steps in a row, so up to 1000 steps run
     * until both speeds are known (40 were not always enough); the slots
     * are emptied whenever they fill the fixture's context */
    model_set_threads(2);
    c = model_cache_create(f.m, NS);
    CHECK(model_cache_set_parts_per_thread(c, 1) == 0);
    double sp[2] = {0, 0};
    int steps = 0;
    for (; c && steps < 1000 && !(sp[0] > 0 && sp[1] > 0); steps++) {
        if (steps % f.hp.n_ctx == 0)
            for (int q = 0; q < NS; q++) model_cache_reset(c, q);
        for (int q = 0; q < NS; q++) s[q].tokens = &tok[(q + steps) % NS];
        CHECK(model_step(f.m, c, NS, s, got) == 0);
        CHECK(model_cache_thread_speeds(c, sp, 2) == 2);
    }
    CHECK_MSG(sp[0] > 0 && sp[1] > 0, "speeds after %d sliced steps: %g %g", steps, sp[0], sp[1]);
    model_cache_free(c);
    model_set_threads(0);
    free(ref);
    free(got);
    fixture_free(&f);
}

/* Parts scale with the weights (model.c, SLICE_BYTES_PER_SEQ): 32
 * sequences on 2 threads are 8 parts of 4 on a 4 MB model, but 2 parts on
 * one of 11 MB (its pass over the weights needs 11+ sequences to pay), with
 * the same bits as unsliced. */
TEST(test_parts_scale_with_weights)
{
    enum { NS = 32 };
    const int dims[2][3] = {{256, 1024, 6}, {512, 2048, 4}}, want[2] = {8, 2};
    for (int k = 0; k < 2; k++) {
        fixture f;
        arch_hparams hp;
        tiny_hparams(&hp, ARCH_RANDOM);
        hp.n_embd = dims[k][0], hp.n_ff = dims[k][1], hp.n_layer = dims[k][2], hp.n_head = 4, hp.n_ctx = 16;
        if (fixture_init_hp(&f, &hp, QUANT_Q8_0, 1900 + k) != 0) { fixture_free(&f); continue; }
        int32_t tok[NS];
        random_tokens(tok, NS, f.hp.n_vocab);
        const size_t nf = (size_t)NS * f.hp.n_vocab;
        float *lg[2] = {calloc(nf, sizeof(float)), calloc(nf, sizeof(float))};
        int parts[2] = {0, 0};
        for (int t = 0; t < 2; t++) { /* 1 thread: unsliced, the reference */
            model_set_threads(t + 1);
            model_cache *c = model_cache_create(f.m, NS);
            model_seq sq[NS];
            for (int q = 0; q < NS; q++) sq[q] = (model_seq){q, 1, &tok[q], 0};
            CHECK(c && model_step(f.m, c, NS, sq, lg[t]) == 0);
            parts[t] = model_cache_last_parts(c, NULL, 0);
            model_cache_free(c);
        }
        CHECK_MSG(parts[0] == 1 && parts[1] == want[k], "d %d: %d parts, want %d", dims[k][0], parts[1], want[k]);
        CHECK_MSG(memcmp(lg[0], lg[1], nf * sizeof(float)) == 0, "d %d: sliced logits differ", dims[k][0]);
        model_set_threads(0);
        free(lg[0]);
        free(lg[1]);
        fixture_free(&f);
    }
}

/* With batch invariance a sequence's logits do not depend on how its tokens
 * are cut into steps either (the scheduler chunks prompts by load, and a
 * cached prefix is continued rather than recomputed): the whole context in
 * one step, in chunks 5 + 1 + 10, and one token per step give the same
 * bits at every position, for every variant and weight type. */
TEST(test_chunking_invariant_bitwise)
{
    const uint32_t types[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};
    for (int vt = 0; vt < 2; vt++)
    for (int v = 0; v < ARCH_N_VARIANTS; v++)
        for (int t = 0; t < 4; t++) {
            fixture f;
            if (fixture_init(&f, (arch_variant)v, types[t], 1300 + v) != 0) { fixture_free(&f); continue; }
            g_vt = (model_cache_type)vt;
            const int L = f.hp.n_ctx, V = f.hp.n_vocab;
            int32_t tok[64];
            random_tokens(tok, L, V);
            float *ref = malloc(sizeof(float) * L * V), *got = malloc(sizeof(float) * L * V);
            model_cache *c = cache_new(f.m, 1);
            model_seq s = {0, L, tok, 1};
            CHECK(model_step(f.m, c, 1, &s, ref) == 0);
            const int cuts[2][4] = {{5, 1, L - 6, 0}, {0}};
            int diff_chunks = 0, diff_steps = 0;
            for (int mode = 0; mode < 2; mode++) {
                model_cache_reset(c, 0);
                for (int p = 0, k = 0; p < L; k++) {
                    int n = mode == 0 ? cuts[0][k] : 1;
                    s = (model_seq){0, n, tok + p, 1};
                    CHECK(model_step(f.m, c, 1, &s, got + (size_t)p * V) == 0);
                    p += n;
                }
                int d = memcmp(ref, got, sizeof(float) * L * V) != 0;
                if (mode == 0) diff_chunks = d;
                else diff_steps = d;
            }
            CHECK_MSG(!diff_chunks && !diff_steps,
                      "%s %s, %s cache: chunked prefill differs %d, token by token differs %d",
                      arch_variant_name((arch_variant)v), quant_type_name(types[t]), vt ? "f16" : "f32",
                      diff_chunks, diff_steps);
            model_cache_free(c);
            free(ref);
            free(got);
            fixture_free(&f);
        }
}

/* Engine-wide settings: the CPU level by name, with errors that name the
 * problem; the thread budget. */
TEST(test_engine_settings)
{
    char err[256];
    CHECK(model_set_cpu("auto", err, sizeof err) == 0 && strcmp(model_cpu(), model_cpu_best()) == 0);
    CHECK(model_set_cpu("scalar", err, sizeof err) == 0 && strcmp(model_cpu(), "scalar") == 0);
    CHECK(model_set_cpu("avx9", err, sizeof err) == MODEL_EINVAL && strstr(err, "unknown CPU level \"avx9\""));
    CHECK(strcmp(model_cpu(), "scalar") == 0); /* unchanged by the failure */
    CHECK(model_set_cpu(NULL, err, sizeof err) == MODEL_EINVAL);
    if (!kern_level_supported(KERN_AVX512)) {
        CHECK(model_set_cpu("avx512", err, sizeof err) == MODEL_EINVAL && strstr(err, "cannot run the avx512"));
    } else {
        CHECK(model_set_cpu("avx512", err, sizeof err) == 0 && strcmp(model_cpu(), "avx512") == 0);
    }
    CHECK(model_set_cpu("auto", NULL, 0) == 0);
    int n = model_threads();
    CHECK(model_set_threads(1) == 1 && model_threads() == 1);
    CHECK(model_set_threads(n) == n);
}

TEST(test_precomputed_equals_recomputed)
{
    const arch_variant vs[] = {ARCH_RANDOM, ARCH_FIXED_RANDOM, ARCH_FACTORIZED_RANDOM};
    for (int i = 0; i < 3; i++) {
        fixture f;
        if (fixture_init(&f, vs[i], QUANT_F32, 300 + i) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        int32_t tok[16];
        random_tokens(tok, L, V);
        float *a = malloc(sizeof(float) * L * V), *b = malloc(sizeof(float) * L * V);
        CHECK(full_logits(f.m, tok, L, a) == 0);
        model_set_recompute(f.m, 1);
        CHECK(full_logits(f.m, tok, L, b) == 0);
        double e = max_diff(a, b, (size_t)L * V);
        CHECK_MSG(e <= 1e-5, "%s: precomputed vs recomputed %g", arch_variant_name(vs[i]), e);
        /* and the decode path (one row at a time) */
        model_cache *c = model_cache_create(f.m, 1);
        for (int p = 0; p < L; p++) {
            model_seq d = {0, 1, tok + p, 0};
            CHECK(model_step(f.m, c, 1, &d, b + (size_t)p * V) == 0);
        }
        e = max_diff(a, b, (size_t)L * V);
        CHECK_MSG(e <= TOL, "%s: precomputed vs recomputed decode %g", arch_variant_name(vs[i]), e);
        model_set_recompute(f.m, 0);
        model_cache_free(c);
        free(a);
        free(b);
        fixture_free(&f);
    }
}

/* q8_0 keeps each weight within half a step of its block scale (max/127,
 * i.e. <= 0.4% of the block's largest weight). Bound: max |logit_q8 -
 * logit_f32| <= 1% of the spread (max - min) of the f32 logits; observed
 * 0.26%..0.36% on these models (spread ~40). */
TEST(test_q8_close_to_f32)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture a, b;
        int ra = fixture_init(&a, (arch_variant)v, QUANT_F32, 400 + v);
        int rb = fixture_init(&b, (arch_variant)v, QUANT_Q8_0, 400 + v);
        if (ra == 0 && rb == 0) {
            const int L = a.hp.n_ctx, V = a.hp.n_vocab;
            int32_t tok[16];
            random_tokens(tok, L, V);
            float *la = malloc(sizeof(float) * L * V), *lb = malloc(sizeof(float) * L * V);
            CHECK(full_logits(a.m, tok, L, la) == 0 && full_logits(b.m, tok, L, lb) == 0);
            float lo = la[0], hi = la[0];
            for (int i = 0; i < L * V; i++) { lo = la[i] < lo ? la[i] : lo; hi = la[i] > hi ? la[i] : hi; }
            double e = max_diff(la, lb, (size_t)L * V);
            CHECK_MSG(e <= 0.01 * (hi - lo) && e > 0, "%s: q8_0 vs f32 max diff %g, spread %g",
                      arch_variant_name((arch_variant)v), e, (double)(hi - lo));
            CHECK(strcmp(model_quant_name(b.m), "q8_0") == 0 && strcmp(model_quant_name(a.m), "f32") == 0);
            CHECK(model_file_size(b.m) < model_file_size(a.m));
            free(la);
            free(lb);
        }
        fixture_free(&a);
        fixture_free(&b);
    }
}

TEST(test_step_rejects_bad_input)
{
    fixture f;
    if (fixture_init(&f, ARCH_RANDOM_VANILLA, QUANT_F32, 500) != 0) { fixture_free(&f); return; }
    const int L = f.hp.n_ctx, V = f.hp.n_vocab;
    int32_t tok[16], bad_lo[2] = {3, -1}, bad_hi[2] = {V, 1};
    random_tokens(tok, L, V);
    float *ref = malloc(sizeof(float) * L * V), *lg = malloc(sizeof(float) * (L + 4) * V);
    CHECK(full_logits(f.m, tok, L, ref) == 0);
    model_cache *c = model_cache_create(f.m, 3);
    model_seq s0 = {0, 6, tok, 0}, s1 = {1, 2, tok, 0};
    model_seq ok2[2] = {s0, s1};
    CHECK(model_step(f.m, c, 2, ok2, lg) == 0);
    /* a bad step, then the cache must be exactly as before */
    model_seq dup[2] = {{0, 1, tok + 6, 0}, {0, 1, tok + 7, 0}};
    CHECK(model_step(f.m, c, 2, dup, lg) == MODEL_EINVAL);
    model_seq badtok[2] = {{0, 1, tok + 6, 0}, {1, 2, bad_lo, 0}};
    CHECK(model_step(f.m, c, 2, badtok, lg) == MODEL_EINVAL);
    badtok[1].tokens = bad_hi;
    CHECK(model_step(f.m, c, 2, badtok, lg) == MODEL_EINVAL);
    model_seq over[2] = {{1, 1, tok + 2, 0}, {0, L - 5, tok, 0}}; /* 6 + 11 > 16 */
    CHECK(model_step(f.m, c, 2, over, lg) == MODEL_EINVAL);
    model_seq range[1] = {{3, 1, tok, 0}};
    CHECK(model_step(f.m, c, 1, range, lg) == MODEL_EINVAL);
    range[0].slot = -1;
    CHECK(model_step(f.m, c, 1, range, lg) == MODEL_EINVAL);
    model_seq empty[1] = {{2, 0, tok, 0}};
    CHECK(model_step(f.m, c, 1, empty, lg) == MODEL_EINVAL);
    model_seq nulltok[1] = {{2, 1, NULL, 0}};
    CHECK(model_step(f.m, c, 1, nulltok, lg) == MODEL_EINVAL);
    CHECK(model_step(f.m, c, 1, &s0, NULL) == MODEL_EINVAL);
    CHECK(model_step(f.m, c, -1, &s0, lg) == MODEL_EINVAL);
    CHECK(model_cache_len(c, 0) == 6 && model_cache_len(c, 1) == 2 && model_cache_len(c, 2) == 0);
    /* another model's cache */
    fixture g;
    if (fixture_init(&g, ARCH_RANDOM_VANILLA, QUANT_F32, 501) == 0) {
        CHECK(model_step(g.m, c, 1, &s0, lg) == MODEL_EINVAL);
    }
    fixture_free(&g);
    /* continuing slot 0 to the full context still matches the full pass */
    model_seq rest = {0, L - 6, tok + 6, 1};
    CHECK(model_step(f.m, c, 1, &rest, lg) == 0);
    CHECK(max_diff(lg, ref + (size_t)6 * V, (size_t)(L - 6) * V) <= TOL);
    /* the context is now full: one more token overflows */
    model_seq more = {0, 1, tok, 0};
    CHECK(model_step(f.m, c, 1, &more, lg) == MODEL_EINVAL);
    CHECK(model_cache_len(c, 0) == L);
    CHECK(model_cache_create(f.m, 0) == NULL && model_cache_create(NULL, 1) == NULL);
    model_cache_free(c);
    free(ref);
    free(lg);
    fixture_free(&f);
}

TEST(test_static_attention)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture f;
        if (fixture_init(&f, (arch_variant)v, QUANT_Q4_0, 600 + v) != 0) { fixture_free(&f); continue; }
        const arch_hparams *hp = &f.hp;
        const int L = hp->n_ctx, H = hp->n_head, k = hp->fr_rank;
        if (!arch_is_static(hp->variant)) {
            CHECK(model_static_attention(f.m, 0, 0) == NULL);
            fixture_free(&f);
            continue;
        }
        CHECK(model_static_attention(f.m, -1, 0) == NULL && model_static_attention(f.m, hp->n_layer, 0) == NULL);
        CHECK(model_static_attention(f.m, 0, H) == NULL && model_static_attention(f.m, 0, -1) == NULL);
        /* R (or R1 R2^T) from the f32 parameters: tensors of layer il */
        arch_tensor *ts = calloc((size_t)f.n, sizeof *ts);
        arch_tensors(hp, ts, f.n);
        for (int il = 0; il < hp->n_layer; il++) {
            const float *R = NULL, *R1 = NULL, *R2 = NULL;
            for (int i = 0; i < f.n; i++) {
                if (ts[i].layer != il) continue;
                if (ts[i].kind == T_RANDOM) R = f.p[i];
                if (ts[i].kind == T_RANDOM_A) R1 = f.p[i];
                if (ts[i].kind == T_RANDOM_B) R2 = f.p[i];
            }
            for (int h = 0; h < H; h++) {
                const float *P = model_static_attention(f.m, il, h);
                CHECK(P != NULL);
                if (!P) continue;
                for (int i = 0; i < L; i++) {
                    double logit[16], mx = -1e30, z = 0, sum = 0;
                    for (int j = 0; j <= i; j++) {
                        if (R) logit[j] = R[((size_t)h * L + i) * L + j];
                        else {
                            logit[j] = 0;
                            for (int r = 0; r < k; r++)
                                logit[j] += (double)R1[((size_t)h * L + i) * k + r] * R2[((size_t)h * L + j) * k + r];
                        }
                        mx = logit[j] > mx ? logit[j] : mx;
                    }
                    for (int j = 0; j <= i; j++) z += exp(logit[j] - mx);
                    for (int j = 0; j < L; j++) {
                        double want = j <= i ? exp(logit[j] - mx) / z : 0.0;
                        CHECK_NEAR(P[(size_t)i * L + j], want, 1e-6);
                        if (j > i) CHECK(P[(size_t)i * L + j] == 0.0f);
                        sum += P[(size_t)i * L + j];
                    }
                    CHECK_NEAR(sum, 1.0, 1e-5);
                }
            }
        }
        free(ts);
        fixture_free(&f);
    }
}

TEST(test_score_matches_step)
{
    const arch_variant vs[] = {ARCH_RANDOM, ARCH_DENSE_VANILLA, ARCH_FACTORIZED_DENSE};
    for (int iv = 0; iv < 3; iv++) {
        fixture f;
        if (fixture_init(&f, vs[iv], QUANT_Q8_0, 700 + iv) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        enum { NS = 3 };
        const int n[NS] = {16, 5, 11};
        int32_t tok[NS][16], tgt[NS][16];
        const int32_t *tp[NS], *gp[NS];
        for (int q = 0; q < NS; q++) {
            random_tokens(tok[q], L, V);
            random_tokens(tgt[q], L, V);
            tp[q] = tok[q];
            gp[q] = tgt[q];
        }
        /* make one target the argmax so greedy is exercised both ways */
        float *lg = malloc(sizeof(float) * L * V);
        CHECK(full_logits(f.m, tok[1], n[1], lg) == 0);
        int am = 0;
        for (int j = 1; j < V; j++) am = lg[(size_t)2 * V + j] > lg[(size_t)2 * V + am] ? j : am;
        tgt[1][2] = am;
        float lp[32];
        uint8_t gr[32];
        CHECK(model_score(f.m, NS, tp, gp, n, lp, gr) == 0);
        int off = 0, n_greedy = 0, bitwise_off = 0;
        for (int q = 0; q < NS; q++) {
            CHECK(full_logits(f.m, tok[q], n[q], lg) == 0);
            for (int i = 0; i < n[q]; i++) {
                const float *row = lg + (size_t)i * V;
                double mx = row[0], z = 0;
                int a = 0;
                for (int j = 1; j < V; j++)
                    if (row[j] > mx) { mx = row[j]; a = j; }
                for (int j = 0; j < V; j++) z += exp(row[j] - mx);
                CHECK_NEAR(lp[off + i], row[tgt[q][i]] - mx - log(z), TOL);
                CHECK(gr[off + i] == (a == tgt[q][i]));
                /* scoring is batch-invariant: the very bits of
                 * generation's logits and log-softmax */
                float fmx, fz = ops_log_softmax_z(row, V, &fmx, NULL);
                float want = ops_log_prob(row[tgt[q][i]], fmx, fz);
                bitwise_off += memcmp(&want, &lp[off + i], sizeof want) != 0;
                n_greedy += gr[off + i];
            }
            off += n[q];
        }
        CHECK(n_greedy >= 1);
        CHECK_MSG(bitwise_off == 0, "%s: %d log-probs of model_score differ from model_step's in some bit",
                  arch_variant_name(vs[iv]), bitwise_off);
        /* bad input */
        int bad_n[NS] = {16, 0, 11};
        CHECK(model_score(f.m, NS, tp, gp, bad_n, lp, gr) == MODEL_EINVAL);
        bad_n[1] = L + 1;
        CHECK(model_score(f.m, NS, tp, gp, bad_n, lp, gr) == MODEL_EINVAL);
        tgt[2][3] = V;
        CHECK(model_score(f.m, NS, tp, gp, n, lp, gr) == MODEL_EINVAL);
        CHECK(model_score(f.m, NS, tp, gp, n, lp, NULL) == MODEL_EINVAL);
        tgt[2][3] = 0;
        CHECK(model_score(f.m, NS, tp, gp, n, lp, NULL) == 0);
        free(lg);
        fixture_free(&f);
    }
}

/* What the server's scheduler does: scoring windows fed in chunks, in their
 * own slots, in the same steps as generating sequences. Their log-probs
 * and greedy flags must be model_score's bits; the generating sequences'
 * logits must be what they get alone. */
TEST(test_step_scored_interleaved)
{
    const arch_variant vs[] = {ARCH_RANDOM, ARCH_DENSE_VANILLA};
    for (int iv = 0; iv < 2; iv++) {
        fixture f;
        if (fixture_init(&f, vs[iv], QUANT_Q8_0, 900 + iv) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        int32_t tok[2][16], tgt[2][16], gen[16];
        const int n[2] = {16, 9};
        const int32_t *tp[2] = {tok[0], tok[1]}, *gp[2] = {tgt[0], tgt[1]};
        random_tokens(tok[0], L, V);
        random_tokens(tok[1], L, V);
        random_tokens(tgt[0], L, V);
        random_tokens(tgt[1], L, V);
        random_tokens(gen, L, V);
        float want_lp[25], got_lp[25];
        uint8_t want_gr[25], got_gr[25];
        CHECK(model_score(f.m, 2, tp, gp, n, want_lp, want_gr) == 0);
        float *alone = malloc(sizeof(float) * (size_t)L * V), *lg = malloc(sizeof(float) * 2 * V);
        CHECK(full_logits(f.m, gen, L, alone) == 0);
        model_cache *c = model_cache_create(f.m, 3);
        /* chunks: window 0 in 5 + 7 + 4 tokens, window 1 in 9 + nothing;
         * slot 2 generates one token per step after a 4-token prefill */
        const int c0[4] = {5, 7, 4, 0}, c1[4] = {0, 9, 0, 0};
        int f0 = 0, f1 = 0, g = 0, differ = 0;
        for (int st = 0; st < 4; st++) {
            model_seq sq[3];
            model_target tg[3];
            int k = 0, gk = 4 > g ? 4 - g : 1;
            sq[k] = (model_seq){2, gk, gen + g, 0};
            tg[k++] = (model_target){NULL, NULL, NULL};
            if (c0[st]) {
                sq[k] = (model_seq){0, c0[st], tok[0] + f0, 0};
                tg[k++] = (model_target){tgt[0] + f0, got_lp + f0, got_gr + f0};
                f0 += c0[st];
            }
            if (c1[st]) {
                sq[k] = (model_seq){1, c1[st], tok[1] + f1, 0};
                tg[k++] = (model_target){tgt[1] + f1, got_lp + 16 + f1, got_gr + 16 + f1};
                f1 += c1[st];
            }
            CHECK(model_step_scored(f.m, c, k, sq, tg, lg) == 0);
            g += gk;
            differ += memcmp(lg, alone + (size_t)(g - 1) * V, sizeof(float) * V) != 0;
        }
        CHECK(f0 == 16 && f1 == 9);
        CHECK_MSG(memcmp(got_lp, want_lp, sizeof want_lp) == 0, "%s: chunked scored log-probs differ from model_score",
                  arch_variant_name(vs[iv]));
        CHECK(memcmp(got_gr, want_gr, sizeof want_gr) == 0);
        CHECK_MSG(differ == 0, "%s: %d generation rows changed by scored neighbours", arch_variant_name(vs[iv]), differ);
        /* bad input: target out of range, scored without logprob, logits
         * missing for an unscored sequence; nothing changes */
        model_cache_reset(c, 0);
        int32_t bad = V;
        model_seq one = {0, 1, tok[0], 0};
        model_target t1 = {&bad, got_lp, NULL}, t2 = {tgt[0], NULL, NULL};
        CHECK(model_step_scored(f.m, c, 1, &one, &t1, NULL) == MODEL_EINVAL);
        CHECK(model_step_scored(f.m, c, 1, &one, &t2, NULL) == MODEL_EINVAL);
        CHECK(model_step_scored(f.m, c, 1, &one, NULL, NULL) == MODEL_EINVAL);
        CHECK(model_cache_len(c, 0) == 0);
        model_cache_free(c);
        free(alone);
        free(lg);
        fixture_free(&f);
    }
}

/* A prefix copied from another slot and continued gives the bits of
 * computing the whole sequence (every variant, so the keys of the vanilla
 * parts are copied right too). */
TEST(test_cache_copy_prefix)
{
    for (int vt = 0; vt < 2; vt++)
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture f;
        if (fixture_init(&f, (arch_variant)v, QUANT_Q8_0, 950 + v) != 0) { fixture_free(&f); continue; }
        g_vt = (model_cache_type)vt;
        const int L = f.hp.n_ctx, V = f.hp.n_vocab, P = 11; /* part of the first key block of 16 positions */
        int32_t a[16], b[16];
        random_tokens(a, L, V);
        memcpy(b, a, sizeof(int32_t) * P);
        random_tokens(b + P, L - P, V);
        model_cache *c = cache_new(f.m, 3);
        float *lg = malloc(sizeof(float) * (size_t)L * V), *ref = malloc(sizeof(float) * (size_t)L * V);
        model_seq s0 = {0, L, a, 0};
        CHECK(model_step(f.m, c, 1, &s0, lg) == 0);
        CHECK(model_cache_copy(c, 1, 0, P) == 0);
        CHECK(model_cache_len(c, 1) == P);
        model_seq s1 = {1, L - P, b + P, 1}, s2 = {2, L, b, 1};
        CHECK(model_step(f.m, c, 1, &s1, lg) == 0);
        CHECK(model_step(f.m, c, 1, &s2, ref) == 0);
        CHECK_MSG(memcmp(lg, ref + (size_t)P * V, sizeof(float) * (size_t)(L - P) * V) == 0,
                  "%s: continuing a copied prefix differs from computing it", arch_variant_name((arch_variant)v));
        /* bad arguments change nothing */
        CHECK(model_cache_copy(c, 1, 1, 0) == MODEL_EINVAL);
        CHECK(model_cache_copy(c, 1, 0, L + 1) == MODEL_EINVAL);
        CHECK(model_cache_copy(c, 3, 0, 1) == MODEL_EINVAL);
        CHECK(model_cache_copy(c, 1, -1, 1) == MODEL_EINVAL);
        CHECK(model_cache_len(c, 1) == L);
        model_cache_free(c);
        free(lg);
        free(ref);
        fixture_free(&f);
    }
    g_vt = MODEL_CACHE_F32;
}

/* model_decode_seq, the CLI's and the server's decode rule: below a full
 * slot it feeds the last token alone; at a full slot it resets the slot
 * and feeds the last n_ctx / 2 tokens from position 0, whose logits equal
 * (bitwise: chunking invariance) a fresh slot fed those tokens. */
TEST(test_decode_seq_context_shift)
{
    fixture f;
    if (fixture_init(&f, ARCH_RANDOM, QUANT_Q8_0, 970) != 0) { fixture_free(&f); return; }
    const int L = f.hp.n_ctx, V = f.hp.n_vocab, keep = model_context_keep(f.m);
    CHECK(keep == L / 2);
    int32_t h[3 * 16];
    random_tokens(h, 2 * L, V);
    model_cache *c = cache_new(f.m, 2);
    float *lg = malloc(sizeof(float) * (size_t)V), *ref = malloc(sizeof(float) * (size_t)V);
    model_seq s = {0, L - 1, h, 0};
    CHECK(model_step(f.m, c, 1, &s, lg) == 0);
    /* one free position: the last token alone */
    CHECK(model_decode_seq(f.m, c, 0, h, L, &s) == 0);
    CHECK(s.slot == 0 && s.n_tokens == 1 && s.tokens == h + L - 1 && s.logits_all == 0);
    CHECK(model_step(f.m, c, 1, &s, lg) == 0 && model_cache_len(c, 0) == L);
    /* full: the slot is reset and the last half fed again */
    CHECK(model_decode_seq(f.m, c, 0, h, L + 1, &s) == 1);
    CHECK(model_cache_len(c, 0) == 0);
    CHECK(s.slot == 0 && s.n_tokens == keep && s.tokens == h + L + 1 - keep);
    CHECK(model_step(f.m, c, 1, &s, lg) == 0 && model_cache_len(c, 0) == keep);
    model_seq r = {1, keep, h + L + 1 - keep, 0};
    CHECK(model_step(f.m, c, 1, &r, ref) == 0);
    CHECK_MSG(memcmp(lg, ref, sizeof(float) * (size_t)V) == 0, "the shifted row differs from a fresh slot");
    model_cache_free(c);
    free(lg);
    free(ref);
    fixture_free(&f);
}

/* An f16 value cache against the f32 one: the same logits up to the
 * rounding of each stored value to binary16 (relative 2^-11), within
 * F16_CACHE_TOL on these random-weight models, for every variant; half the
 * value bytes; a bad type is refused. */
#define F16_CACHE_TOL 1e-2
TEST(test_cache_f16_close_to_f32)
{
    double worst = 0;
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        fixture f;
        if (fixture_init(&f, (arch_variant)v, QUANT_F32, 1700 + v) != 0) { fixture_free(&f); continue; }
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        int32_t tok[64];
        random_tokens(tok, L, V);
        float *a = malloc(sizeof(float) * L * V), *b = malloc(sizeof(float) * L * V);
        model_cache *c32 = model_cache_create(f.m, 1), *c16 = model_cache_create_typed(f.m, 1, MODEL_CACHE_F16);
        CHECK(model_cache_values(c32) == MODEL_CACHE_F32 && model_cache_values(c16) == MODEL_CACHE_F16);
        model_seq s = {0, L, tok, 1};
        CHECK(model_step(f.m, c32, 1, &s, a) == 0);
        CHECK(model_step(f.m, c16, 1, &s, b) == 0);
        double dmax = max_diff(a, b, (size_t)L * V);
        worst = dmax > worst ? dmax : worst;
        CHECK_MSG(dmax < F16_CACHE_TOL, "%s: f16 cache logits differ by %g", arch_variant_name((arch_variant)v), dmax);
        CHECK(memcmp(a, b, sizeof(float) * L * V) != 0); /* the values were rounded */
        CHECK(model_cache_bytes(c16) < model_cache_bytes(c32));
        model_cache_free(c32);
        model_cache_free(c16);
        free(a);
        free(b);
        fixture_free(&f);
    }
    printf("  f16 value cache: largest logit difference %.3g (bound %g)\n", worst, F16_CACHE_TOL);
    fixture f;
    if (fixture_init(&f, ARCH_RANDOM, QUANT_F32, 1800) == 0) CHECK(model_cache_create_typed(f.m, 1, (model_cache_type)7) == NULL);
    fixture_free(&f);
}

TEST(test_load_errors_and_info)
{
    fixture f;
    if (fixture_init(&f, ARCH_DENSE, QUANT_Q8_0, 800) != 0) { fixture_free(&f); return; }
    CHECK(strcmp(model_name(f.m), "tiny") == 0);
    CHECK(model_file_type(f.m) == CKPT_FTYPE_Q8_0);
    CHECK(model_n_params(f.m) == arch_n_params(&f.hp));
    CHECK(model_hparams(f.m)->variant == ARCH_DENSE && model_hparams(f.m)->n_ctx == 16);
    CHECK(tok_n_vocab(model_tok(f.m)) == f.hp.n_vocab);
    CHECK(model_file_size(f.m) == f.size);
    char err[256];
    model *m = (model *)1;
    /* truncated image */
    CHECK(model_load_buffer(f.buf, f.size / 2, &m, err, sizeof err) != 0 && m == NULL);
    CHECK(strncmp(err, "model_load: ", 12) == 0);
    /* a tensor renamed: missing */
    uint8_t *copy = malloc(f.size);
    memcpy(copy, f.buf, f.size);
    uint8_t *hit = memmem(copy, f.size, "blk.1.ffn_up.weight", 19);
    CHECK(hit != NULL);
    if (hit) hit[4] = 'X';
    CHECK(model_load_buffer(copy, f.size, &m, err, sizeof err) == MODEL_EFORMAT && m == NULL);
    CHECK(strncmp(err, "model_load: ", 12) == 0);
    free(copy);
    CHECK(model_load("/nonexistent/x.gguf", &m, err, sizeof err) == MODEL_EIO && m == NULL);
    CHECK(strncmp(err, "model_load: ", 12) == 0);
    CHECK(model_load_buffer(NULL, 10, &m, err, sizeof err) == MODEL_EINVAL);
    fixture_free(&f);
}

/* Regression (found by tests/fuzz/fuzz_gguf): the factorized_dense keys a and
 * b are only validated for that variant, yet the step scratch was sized by
 * them for every variant, so a dense checkpoint with a = 2^24 made the first
 * model_step allocate gigabytes. Any variant but factorized_dense must
 * ignore them. */
TEST(test_unused_fd_keys_ignored)
{
    fixture f;
    memset(&f, 0, sizeof f);
    tiny_hparams(&f.hp, ARCH_DENSE);
    f.hp.fd_a = 1 << 24;
    f.hp.fd_b = 1 << 20;
    f.n = arch_tensors(&f.hp, NULL, 0);
    make_params(&f, 810);
    if (fixture_load(&f, QUANT_F32) != 0) { fixture_free(&f); return; }
    model_cache *c = model_cache_create(f.m, 1);
    int32_t tok[4] = {1, 2, 3, 4};
    float *logits = malloc(sizeof(float) * (size_t)f.hp.n_vocab);
    model_seq sq = {.slot = 0, .n_tokens = 4, .tokens = tok, .logits_all = 0};
    CHECK(c && model_step(f.m, c, 1, &sq, logits) == 0);
    CHECK_MSG(model_cache_bytes(c) < (16u << 20), "cache %zu bytes", model_cache_bytes(c));
    free(logits);
    model_cache_free(c);
    fixture_free(&f);
}

/* ckpt_check_tensors allows f16 for the small non-quantizable tensors
 * (norms, biases, position embedding, R); the engine reads them through f32
 * copies. A checkpoint re-written with those tensors in f16 must give the
 * logits of an f32 checkpoint whose parameters were rounded to f16. */
TEST(test_f16_small_tensors)
{
    fixture f;
    if (fixture_init(&f, ARCH_RANDOM_VANILLA, QUANT_Q8_0, 900) != 0) { fixture_free(&f); return; }
    arch_tensor *ts = calloc((size_t)f.n, sizeof *ts);
    arch_tensors(&f.hp, ts, f.n);
    /* 1. the same image with every non-quantizable tensor stored as f16 */
    gguf_file *g = NULL;
    char err[256];
    CHECK(gguf_open_buffer(f.buf, f.size, &g, err, sizeof err) == 0);
    gguf_writer *w = gguf_writer_create();
    void **conv = calloc((size_t)f.n, sizeof *conv);
    int n_f16 = 0;
    for (int64_t i = 0; g && i < gguf_n_kv(g); i++) CHECK(gguf_writer_copy_kv(w, g, i) == 0);
    for (int i = 0; g && i < f.n; i++) {
        const gguf_tensor_info *ti = gguf_find_tensor(g, ts[i].name);
        if (!ti) { CHECK(ti != NULL); continue; }
        const void *data = ti->data;
        uint32_t type = ti->type;
        size_t nbytes = ti->nbytes;
        if (!ts[i].quantizable) {
            conv[i] = malloc((size_t)ts[i].n_elem * 2);
            quant_quantize_row(QUANT_F16, f.p[i], conv[i], ts[i].n_elem);
            data = conv[i], type = QUANT_F16, nbytes = (size_t)ts[i].n_elem * 2;
            n_f16++;
        }
        CHECK(gguf_writer_add_tensor(w, ts[i].name, type, ti->n_dims, ti->ne, data, nbytes) == 0);
    }
    void *buf16 = NULL;
    size_t size16 = 0;
    CHECK(gguf_writer_write_buffer(w, &buf16, &size16) == 0);
    CHECK(n_f16 > 10);
    /* 2. the f16-rounded parameters written the usual way (small tensors f32) */
    fixture r = f;
    r.buf = NULL;
    r.m = NULL;
    r.p = calloc((size_t)f.n, sizeof *r.p);
    for (int i = 0; i < f.n; i++) {
        r.p[i] = malloc(sizeof(float) * (size_t)ts[i].n_elem);
        if (conv[i]) quant_dequantize_row(QUANT_F16, conv[i], r.p[i], ts[i].n_elem);
        else memcpy(r.p[i], f.p[i], sizeof(float) * (size_t)ts[i].n_elem);
    }
    model *m16 = NULL;
    int rc = buf16 ? model_load_buffer(buf16, size16, &m16, err, sizeof err) : -1;
    CHECK_MSG(rc == 0, "f16 small tensors: %s", err);
    if (rc == 0) model_set_cache_values(m16, MODEL_CACHE_F32); /* exact values, as the references */
    if (rc == 0 && fixture_load(&r, QUANT_Q8_0) == 0) {
        const int L = f.hp.n_ctx, V = f.hp.n_vocab;
        int32_t tok[16];
        random_tokens(tok, L, V);
        float *a = malloc(sizeof(float) * L * V), *b = malloc(sizeof(float) * L * V);
        CHECK(full_logits(m16, tok, L, a) == 0 && full_logits(r.m, tok, L, b) == 0);
        double e = max_diff(a, b, (size_t)L * V);
        CHECK_MSG(e <= 1e-5, "f16 small tensors vs rounded f32: %g", e);
        free(a);
        free(b);
    }
    model_free(m16);
    fixture_free(&r);
    free(buf16);
    for (int i = 0; i < f.n; i++) free(conv[i]);
    free(conv);
    gguf_writer_free(w);
    gguf_close(g);
    free(ts);
    fixture_free(&f);
}

int main(void)
{
    tu_seed(99); /* the inputs the tests were written with */
    openblas_set_num_threads(1);
    RUN(test_incremental_matches_full);
    RUN(test_batch_matches_alone);
    RUN(test_batch_invariant_bitwise);
    RUN(test_sliced_step_bitwise);
    RUN(test_sliced_step_shares);
    RUN(test_parts_scale_with_weights);
    RUN(test_chunking_invariant_bitwise);
    RUN(test_engine_settings);
    RUN(test_precomputed_equals_recomputed);
    RUN(test_q8_close_to_f32);
    RUN(test_step_rejects_bad_input);
    RUN(test_static_attention);
    RUN(test_score_matches_step);
    RUN(test_step_scored_interleaved);
    RUN(test_cache_copy_prefix);
    RUN(test_decode_seq_context_shift);
    RUN(test_cache_f16_close_to_f32);
    RUN(test_load_errors_and_info);
    RUN(test_f16_small_tensors);
    RUN(test_unused_fd_keys_ignored);
    return test_summary();
}
