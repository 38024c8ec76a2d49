/*
 * test_attention.c - model_attention (model.h), the attention probe behind
 * `synth plot-attention`, against a naive computation written from arch.h:
 * the residual stream entering layer l comes from the naive reference
 * forward of tests/ref_naive.h run on the first l layers only (their
 * tensors are a prefix of the arch_tensors() list), then LayerNorm,
 * the variant's logits (ref_synth_logits, plus q.k / sqrt(dh) and the
 * sigmoid(alpha) mix for vanilla parts) and a causal softmax, in double.
 *
 * Every variant, f32 and q8_0 checkpoints (the reference runs on the
 * dequantized stored tensors), every layer and head, full-context and
 * shorter sequences, a context longer than one attention chunk (160 > 64
 * rows), n = 1, the static tables, and the argument checks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "test.h"
#include "fixture.h"
#include "ref_naive.h"

void openblas_set_num_threads(int n);

/* f32 rounding through a few layers of O(1) activations, as in
 * test_forward_ref's tolerance on logits. */
#define TOL 1e-4

typedef struct {
    arch_hparams hp;
    ref_vocab voc;
    void *buf;
    size_t size;
    model *m;
    float **deq;      /* stored tensors, dequantized (arch_tensors order) */
    int np;
    ref_model rm;
    char what[96];
} fixture;

static arch_hparams tiny_hp(arch_variant v, int L, int n_vocab)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    hp.variant = v;
    hp.n_vocab = n_vocab;
    hp.n_embd = 32;
    hp.n_layer = 3;
    hp.n_head = 2;
    hp.n_ff = 64;
    hp.n_ctx = L;
    hp.fr_rank = 4;
    hp.fd_a = L == 16 ? 4 : 16;
    hp.fd_b = L / hp.fd_a;
    return hp;
}

static void fixture_free(fixture *f)
{
    model_free(f->m);
    free(f->buf);
    ref_model_free(&f->rm);
    ref_free_params(f->deq, f->np);
    ref_vocab_free(&f->voc);
    memset(f, 0, sizeof *f);
}

static int fixture_init(fixture *f, arch_variant v, int L, uint64_t seed, uint32_t type)
{
    char err[256] = "";
    memset(f, 0, sizeof *f);
    ref_vocab_build(&f->voc, 45);
    f->hp = tiny_hp(v, L, f->voc.n_vocab);
    snprintf(f->what, sizeof f->what, "%s L%d %s", arch_variant_name(v), L, quant_type_name(type));
    int np;
    float **p = ref_alloc_params(&f->hp, &np);
    ref_randomize(&f->hp, seed, 1.0f, p);
    int rc = fixture_ckpt_write(&f->hp, "attn-test", f->voc.vocab, f->voc.n_vocab, f->voc.merges, f->voc.n_merges,
                                f->voc.eos, (const float *const *)p, type, &f->buf, &f->size, err, sizeof err);
    ref_free_params(p, np);
    CHECK_MSG(rc == 0, "%s: fixture_ckpt_write: %s", f->what, err);
    if (rc) return -1;
    rc = model_load_buffer(f->buf, f->size, &f->m, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: model_load_buffer: %s", f->what, err);
    if (rc == 0) model_set_cache_values(f->m, MODEL_CACHE_F32); /* exact values, as the references */
    if (rc) return -1;
    /* the reference reads the stored tensors back */
    gguf_file *g = NULL;
    if (gguf_open_buffer(f->buf, f->size, &g, err, sizeof err) != 0) {
        CHECK_MSG(0, "%s: gguf_open_buffer: %s", f->what, err);
        return -1;
    }
    f->np = arch_tensors(&f->hp, NULL, 0);
    arch_tensor *t = calloc((size_t)f->np, sizeof *t);
    f->deq = calloc((size_t)f->np, sizeof *f->deq);
    arch_tensors(&f->hp, t, f->np);
    int bad = 0;
    for (int i = 0; i < f->np; i++) {
        const gguf_tensor_info *ti = gguf_find_tensor(g, t[i].name);
        f->deq[i] = calloc((size_t)t[i].n_elem, sizeof(float));
        if (!ti || ti->nbytes != quant_row_size(ti->type, (uint64_t)t[i].n_elem)) {
            CHECK_MSG(0, "%s: tensor %s missing or mis-sized", f->what, t[i].name);
            bad = 1;
            continue;
        }
        quant_dequantize_row(ti->type, ti->data, f->deq[i], t[i].n_elem);
    }
    gguf_close(g);
    free(t);
    if (!bad) CHECK(ref_model_init(&f->rm, &f->hp, (const float *const *)f->deq) == 0);
    return bad ? -1 : 0;
}

/* Naive attention weights of (il, h) for tokens[0..n): want [n, n]. */
static void naive_attention(const fixture *f, int il, int h, const int32_t *tokens, int n, double *want)
{
    const arch_hparams *hp = &f->hp;
    const int d = hp->n_embd, dh = d / hp->n_head;
    const arch_variant var = hp->variant;
    /* residual stream entering layer il: the reference on layers 0..il-1 */
    arch_hparams hp_in = *hp;
    hp_in.n_layer = il;
    ref_model pre;
    double *x = malloc(sizeof(double) * (size_t)n * d), *u = malloc(sizeof(double) * (size_t)n * d);
    double *q = malloc(sizeof(double) * (size_t)n * d), *k = malloc(sizeof(double) * (size_t)n * d);
    double *S = malloc(sizeof(double) * (size_t)n);
    CHECK(ref_model_init(&pre, &hp_in, (const float *const *)f->deq) == 0);
    CHECK(ref_forward(&pre, tokens, n, NULL, x) == 0);
    ref_model_free(&pre);
    for (int i = 0; i < n; i++) {
        ref_layernorm(x + (size_t)i * d, ref_w(&f->rm, il, T_ATTN_NORM_W), ref_w(&f->rm, il, T_ATTN_NORM_B), d,
                      hp->ln_eps, u + (size_t)i * d);
        if (arch_has_vanilla(var)) {
            ref_linear(ref_w(&f->rm, il, T_ATTN_Q_W), ref_w(&f->rm, il, T_ATTN_Q_B), u + (size_t)i * d, d, 0, d,
                       q + (size_t)i * d);
            ref_linear(ref_w(&f->rm, il, T_ATTN_K_W), ref_w(&f->rm, il, T_ATTN_K_B), u + (size_t)i * d, d, 0, d,
                       k + (size_t)i * d);
        }
    }
    for (int i = 0; i < n; i++) {
        ref_synth_logits(&f->rm, il, h, i, u + (size_t)i * d, S);
        if (arch_has_vanilla(var)) {
            double g = arch_has_mix(var) ? ref_sigmoid(ref_w(&f->rm, il, T_MIX)[h]) : 0.0;
            for (int j = 0; j <= i; j++) {
                double qk = 0.0;
                for (int e = 0; e < dh; e++) qk += q[(size_t)i * d + h * dh + e] * k[(size_t)j * d + h * dh + e];
                S[j] = (1.0 - g) * qk / sqrt((double)dh) + g * S[j];
            }
        }
        double mx = S[0], sum = 0.0;
        for (int j = 1; j <= i; j++) mx = S[j] > mx ? S[j] : mx;
        for (int j = 0; j <= i; j++) sum += exp(S[j] - mx);
        for (int j = 0; j < n; j++) want[(size_t)i * n + j] = j <= i ? exp(S[j] - mx) / sum : 0.0;
    }
    free(x); free(u); free(q); free(k); free(S);
}

static void check_fixture(fixture *f, uint64_t seed)
{
    const int L = f->hp.n_ctx, V = f->hp.n_vocab;
    const int lens[3] = {L, L / 2 + 3, 2};
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)L);
    float *A = malloc(sizeof(float) * (size_t)L * L);
    double *want = malloc(sizeof(double) * (size_t)L * L);
    arch_rng r;
    arch_rng_seed(&r, seed);
    for (int t = 0; t < L; t++) tok[t] = (int32_t)(arch_rng_next(&r) % (uint64_t)V);
    for (int li = 0; li < 3; li++) {
        const int n = lens[li];
        for (int il = 0; il < f->hp.n_layer; il++)
            for (int h = 0; h < f->hp.n_head; h++) {
                for (int e = 0; e < n * n; e++) A[e] = NAN; /* every entry must be written */
                int rc = model_attention(f->m, il, h, tok, n, A);
                CHECK_MSG(rc == 0, "%s: model_attention(%d, %d, n %d) = %d", f->what, il, h, n, rc);
                if (rc) continue;
                naive_attention(f, il, h, tok, n, want);
                double md = 0.0, rowerr = 0.0;
                for (int i = 0; i < n; i++) {
                    double s = 0.0;
                    for (int j = 0; j < n; j++) {
                        double dd = fabs((double)A[(size_t)i * n + j] - want[(size_t)i * n + j]);
                        if (!(dd <= md)) md = dd != dd ? INFINITY : dd;
                        s += A[(size_t)i * n + j];
                    }
                    rowerr = fmax(rowerr, fabs(s - 1.0));
                }
                CHECK_MSG(md <= TOL, "%s: layer %d head %d n %d: off by %g", f->what, il, h, n, md);
                CHECK_MSG(rowerr <= 1e-5, "%s: layer %d head %d n %d: a row sums to 1 +- %g", f->what, il, h, n,
                          rowerr);
                /* static variants: the rows of the precomputed table */
                const float *P = model_static_attention(f->m, il, h);
                if (P) {
                    double ps = 0.0;
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j < n; j++)
                            ps = fmax(ps, fabs((double)A[(size_t)i * n + j] - P[(size_t)i * L + j]));
                    CHECK_MSG(ps == 0.0, "%s: layer %d head %d: differs from model_static_attention by %g", f->what,
                              il, h, ps);
                }
            }
    }
    /* n = 1: the single position attends to itself */
    CHECK(model_attention(f->m, 0, 0, tok, 1, A) == 0 && A[0] == 1.0f);
    /* bad arguments: nothing written */
    A[0] = 7.0f;
    CHECK(model_attention(f->m, f->hp.n_layer, 0, tok, 2, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, -1, 0, tok, 2, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, f->hp.n_head, tok, 2, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, -1, tok, 2, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, 0, tok, 0, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, 0, tok, L + 1, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, 0, NULL, 2, A) == MODEL_EINVAL);
    CHECK(model_attention(f->m, 0, 0, tok, 2, NULL) == MODEL_EINVAL);
    CHECK(model_attention(NULL, 0, 0, tok, 2, A) == MODEL_EINVAL);
    int32_t badtok[2] = {0, (int32_t)V};
    CHECK(model_attention(f->m, 0, 0, badtok, 2, A) == MODEL_EINVAL);
    badtok[1] = -1;
    CHECK(model_attention(f->m, 0, 0, badtok, 2, A) == MODEL_EINVAL);
    CHECK(A[0] == 7.0f);
    free(tok);
    free(A);
    free(want);
}

static void check_variant(arch_variant v)
{
    const uint32_t types[2] = {QUANT_F32, QUANT_Q8_0};
    const int Ls[2] = {16, 160}; /* 160: more rows than one attention chunk */
    for (int ti = 0; ti < 2; ti++)
        for (int li = 0; li < 2; li++) {
            if (li == 1 && ti == 1) continue; /* the long shape once is enough */
            fixture f;
            uint64_t seed = 77 + 13 * (uint64_t)v + 5 * (uint64_t)li + (uint64_t)ti;
            if (fixture_init(&f, v, Ls[li], seed, types[ti]) == 0) check_fixture(&f, seed);
            fixture_free(&f);
        }
}

/* The static path and the general path (recompute) give the same weights. */
TEST(static_recompute_path)
{
    fixture f;
    if (fixture_init(&f, ARCH_RANDOM, 16, 5, QUANT_F32) == 0) {
        int32_t tok[16];
        float A[256], B[256];
        for (int i = 0; i < 16; i++) tok[i] = i % f.hp.n_vocab;
        CHECK(model_attention(f.m, 1, 1, tok, 16, A) == 0);
        model_set_recompute(f.m, 1);
        CHECK(model_attention(f.m, 1, 1, tok, 16, B) == 0);
        model_set_recompute(f.m, 0);
        double md = 0.0;
        for (int i = 0; i < 256; i++) md = fmax(md, fabs((double)A[i] - B[i]));
        CHECK_MSG(md <= 1e-6, "static vs recomputed differ by %g", md);
    }
    fixture_free(&f);
}

TEST(attn_random) { check_variant(ARCH_RANDOM); }
TEST(attn_fixed_random) { check_variant(ARCH_FIXED_RANDOM); }
TEST(attn_factorized_random) { check_variant(ARCH_FACTORIZED_RANDOM); }
TEST(attn_dense) { check_variant(ARCH_DENSE); }
TEST(attn_factorized_dense) { check_variant(ARCH_FACTORIZED_DENSE); }
TEST(attn_vanilla) { check_variant(ARCH_VANILLA); }
TEST(attn_random_vanilla) { check_variant(ARCH_RANDOM_VANILLA); }
TEST(attn_dense_vanilla) { check_variant(ARCH_DENSE_VANILLA); }

int main(void)
{
    openblas_set_num_threads(1);
    /* the reference's activations are exact: compare the engine's f32
     * activation mode (the int8 mode is tested in test_kern and against
     * the reference on the shipped models in test_forward_ref) */
    model_set_act("f32", NULL, 0);
    RUN(attn_random);
    RUN(attn_fixed_random);
    RUN(attn_factorized_random);
    RUN(attn_dense);
    RUN(attn_factorized_dense);
    RUN(attn_vanilla);
    RUN(attn_random_vanilla);
    RUN(attn_dense_vanilla);
    RUN(static_recompute_path);
    return test_summary();
}
