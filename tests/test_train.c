/* test_train.c - the trainer: finite-difference gradient checks of every
 * parameter tensor of every variant (double precision, same code as the f32
 * trainer), f32 vs f64 forward, dropout p=0, inference-engine agreement,
 * overfitting a small text, resume equivalence and seed determinism,
 * data-parallel steps against the f64 network and across thread counts,
 * the weight average against a loop over saved parameters, --r-tie
 * against a loop and its effect on R. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "arch.h"
#include "test.h"
#include "fixture.h"
#include "ckpt.h"
#include "gguf.h"
#include "model.h"
#include "net_client.h"
#include "quant.h"
#include "tok.h"
#include "train.h"
#include "train_dp.h"

/* The FFN activation of tiny_hparams: gelu, except inside test_geglu. */
static arch_ffn g_ffn = ARCH_FFN_GELU;

static void tiny_hparams(arch_hparams *hp, arch_variant v)
{
    arch_hparams_default(hp);
    hp->n_vocab = 64;
    hp->n_ctx = 8;
    hp->n_embd = 16;
    hp->n_layer = 2;
    hp->n_head = 2;
    hp->n_ff = 32;
    hp->fr_rank = 2;
    hp->fd_a = 2;
    hp->fd_b = 4;
    hp->variant = v;
    hp->ffn = g_ffn;
}

/* Params from arch_init_params plus N(0, 0.1) noise everywhere (so biases,
 * norm weights and alpha are not at special points), in double. */
static void noisy_init(train_net_d *n, uint64_t seed)
{
    train_net_d_init_params(n, seed, 0.5f);
    arch_rng r;
    arch_rng_seed(&r, seed + 99);
    double *p = train_net_d_params(n);
    for (int64_t i = 0; i < train_net_d_n_params(n); i++) p[i] += 0.1 * arch_rng_normal(&r);
}

/* tiny_hparams(v) into hp and a double-precision net of B x T with
 * noisy_init(seed); NULL (a failed check) when create refuses. */
static train_net_d *noisy_net(arch_hparams *hp, arch_variant v, int B, int T, uint64_t seed)
{
    char err[256];
    tiny_hparams(hp, v);
    train_net_d *n = train_net_d_create(hp, B, T, err, sizeof err);
    CHECK_MSG(n != NULL, "%s", err);
    if (n) noisy_init(n, seed);
    return n;
}

static void make_tokens(int32_t *in, int32_t *tg, int N, int V, uint64_t seed)
{
    arch_rng r;
    arch_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) {
        in[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)V);
        tg[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)V);
    }
}

/* Central differences with h = 1e-5 in double: truncation O(h^2) ~ 1e-10
 * and rounding ~ 1e-16 / h ~ 1e-11, so |num - ana| <= 1e-7 + 1e-5 |ana| is
 * far above the noise and far below any real mistake (a wrong term changes
 * gradients by > 1e-3 relative). Checks up to 8 entries per tensor: the
 * largest-gradient entry plus random ones. */
static void gradcheck(arch_variant v, int B, int T)
{
    arch_hparams hp;
    train_net_d *n = noisy_net(&hp, v, B, T, 7 + (uint64_t)v);
    if (!n) return;
    int N = B * T;
    int32_t in[64], tg[64];
    make_tokens(in, tg, N, hp.n_vocab, 3);
    train_net_d_zero_grad(n);
    double loss = train_net_d_forward(n, in, tg, B, T, 1, 0.0f, NULL, NULL);
    CHECK(isfinite(loss));
    train_net_d_backward(n);
    double *const *p = train_net_d_param_ptrs(n);
    double *const *g = train_net_d_grad_ptrs(n);
    arch_rng r;
    arch_rng_seed(&r, 5);
    int bad_tensors = 0;
    for (int t = 0; t < train_net_d_n_tensors(n); t++) {
        const arch_tensor *ti = train_net_d_tensor(n, t);
        int64_t ne = ti->n_elem, imax = 0;
        for (int64_t e = 0; e < ne; e++)
            if (fabs(g[t][e]) > fabs(g[t][imax])) imax = e;
        int nonzero = 0, bad = 0;
        /* frozen R of fixed_random: the gradient must be exactly zero */
        int expect_zero = ti->kind == T_RANDOM && v == ARCH_FIXED_RANDOM;
        for (int s = 0; s < 8 && !expect_zero; s++) {
            int64_t e = s == 0 ? imax : (int64_t)(arch_rng_next(&r) % (uint64_t)ne);
            double save = p[t][e], h = 1e-5;
            p[t][e] = save + h;
            double lp = train_net_d_forward(n, in, tg, B, T, 0, 0.0f, NULL, NULL);
            p[t][e] = save - h;
            double lm = train_net_d_forward(n, in, tg, B, T, 0, 0.0f, NULL, NULL);
            p[t][e] = save;
            double num = (lp - lm) / (2 * h), ana = g[t][e];
            if (ana != 0) nonzero = 1;
            if (!(fabs(num - ana) <= 1e-7 + 1e-5 * fabs(ana))) {
                if (!bad)
                    printf("  %s T=%d: %s[%lld]: analytic %.10g numeric %.10g\n", arch_variant_name(v), T,
                           ti->name, (long long)e, ana, num);
                bad = 1;
            }
        }
        if (expect_zero)
            for (int64_t e = 0; e < ne; e++) nonzero |= g[t][e] != 0;
        /* every other tensor must get some gradient */
        if (expect_zero ? nonzero : !nonzero) {
            printf("  %s: %s: gradient unexpectedly %s\n", arch_variant_name(v), ti->name,
                   expect_zero ? "nonzero" : "all zero in sample");
            bad = 1;
        }
        bad_tensors += bad;
    }
    CHECK_MSG(bad_tensors == 0, "%s: %d tensors failed the gradient check", arch_variant_name(v), bad_tensors);
    train_net_d_free(n);
}

TEST(test_gradcheck_all_variants)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        gradcheck((arch_variant)v, 2, 8);
        gradcheck((arch_variant)v, 3, 5); /* T < L: only the top-left block of R */
    }
}

/* Dropout masks fixed by reseeding the rng before every forward: the
 * backward through the dropped embeddings, residual branches and attention
 * probabilities matches central differences (same tolerance as above). */
static void gradcheck_dropout(arch_variant v, float word_dropout)
{
    arch_hparams hp;
    const int B = 2, T = 8;
    train_net_d *n = noisy_net(&hp, v, B, T, 21);
    if (!n) return;
    CHECK(train_net_d_set_word_dropout(n, word_dropout) == 0);
    int32_t in[16], tg[16];
    make_tokens(in, tg, B * T, hp.n_vocab, 8);
    arch_rng r;
    arch_rng_seed(&r, 42);
    train_net_d_zero_grad(n);
    double l0 = train_net_d_forward(n, in, tg, B, T, 1, 0.3f, &r, NULL);
    train_net_d_backward(n);
    int64_t np = train_net_d_n_params(n);
    double *g = malloc((size_t)np * sizeof *g);
    memcpy(g, train_net_d_grads(n), (size_t)np * sizeof *g);
    arch_rng_seed(&r, 42);
    CHECK(train_net_d_forward(n, in, tg, B, T, 1, 0.3f, &r, NULL) == l0);
    double *p = train_net_d_params(n);
    arch_rng pick;
    arch_rng_seed(&pick, 9);
    int bad = 0;
    for (int s = 0; s < 200; s++) {
        int64_t e = (int64_t)(arch_rng_next(&pick) % (uint64_t)np);
        double save = p[e], h = 1e-5;
        p[e] = save + h;
        arch_rng_seed(&r, 42);
        double lp = train_net_d_forward(n, in, tg, B, T, 1, 0.3f, &r, NULL);
        p[e] = save - h;
        arch_rng_seed(&r, 42);
        double lm = train_net_d_forward(n, in, tg, B, T, 1, 0.3f, &r, NULL);
        p[e] = save;
        double num = (lp - lm) / (2 * h);
        if (!(fabs(num - g[e]) <= 1e-7 + 1e-5 * fabs(g[e]))) {
            if (!bad) printf("  %s dropout (word %g): param %lld: analytic %.10g numeric %.10g\n",
                             arch_variant_name(v), (double)word_dropout, (long long)e, g[e], num);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s (word dropout %g): %d of 200 entries failed the dropout gradient check",
              arch_variant_name(v), (double)word_dropout, bad);
    free(g);
    train_net_d_free(n);
}

TEST(test_gradcheck_dropout)
{
    gradcheck_dropout(ARCH_RANDOM, 0);
    gradcheck_dropout(ARCH_DENSE_VANILLA, 0);
    gradcheck_dropout(ARCH_FACTORIZED_DENSE, 0);
    /* with word dropout (its type flags drawn first from the same rng) */
    gradcheck_dropout(ARCH_RANDOM, 0.3f);
    gradcheck_dropout(ARCH_DENSE_VANILLA, 0.3f);
}

/* Give nf the f64 network's parameters rounded to f32, and the f64 network
 * exactly those values, so the two differ only in arithmetic. */
static void share_f32_values(train_net_d *nd, train_net_f *nf)
{
    for (int64_t i = 0; i < train_net_d_n_params(nd); i++) train_net_f_params(nf)[i] = (float)train_net_d_params(nd)[i];
    for (int64_t i = 0; i < train_net_d_n_params(nd); i++) train_net_d_params(nd)[i] = train_net_f_params(nf)[i];
}

/* f32 gradients against the f64 ones, per tensor: relative to the tensor,
 * plus 1e-6 of the whole gradient for tensors whose exact gradient is ~0
 * (the key bias: softmax is invariant to it). */
static void check_grads_f32_vs_f64(train_net_d *nd, train_net_f *nf, const char *what)
{
    double all = 0;
    for (int64_t e = 0; e < train_net_d_n_params(nd); e++) all += train_net_d_grads(nd)[e] * train_net_d_grads(nd)[e];
    for (int t = 0; t < train_net_d_n_tensors(nd); t++) {
        const arch_tensor *ti = train_net_d_tensor(nd, t);
        double dn = 0, gn = 0;
        for (int64_t e = 0; e < ti->n_elem; e++) {
            double a = train_net_d_grad_ptrs(nd)[t][e], b = train_net_f_grad_ptrs(nf)[t][e];
            dn += (a - b) * (a - b);
            gn += a * a;
        }
        CHECK_MSG(sqrt(dn) <= 1e-3 * sqrt(gn) + 1e-6 * sqrt(all), "%s %s: f32 vs f64 gradient rel diff %g", what,
                  ti->name, sqrt(dn / (gn + 1e-300)));
    }
}

/* The f32 trainer computes the same loss and gradients as the f64 one
 * (relative 1e-3 on the gradient norm of each tensor: f32 rounding only). */
static void f32_vs_f64(arch_variant v)
{
    arch_hparams hp;
    tiny_hparams(&hp, v);
    char err[256];
    train_net_d *nd = train_net_d_create(&hp, 2, 8, err, sizeof err);
    train_net_f *nf = train_net_f_create(&hp, 2, 8, err, sizeof err);
    CHECK(nd && nf);
    if (nd && nf) {
        noisy_init(nd, 11);
        share_f32_values(nd, nf);
        int32_t in[16], tg[16];
        make_tokens(in, tg, 16, hp.n_vocab, 4);
        train_net_d_zero_grad(nd);
        train_net_f_zero_grad(nf);
        double ld = train_net_d_forward(nd, in, tg, 2, 8, 1, 0.0f, NULL, NULL);
        double lf = train_net_f_forward(nf, in, tg, 2, 8, 1, 0.0f, NULL, NULL);
        CHECK_NEAR(lf, ld, 1e-5 * fabs(ld));
        train_net_d_backward(nd);
        train_net_f_backward(nf);
        check_grads_f32_vs_f64(nd, nf, arch_variant_name(v));
    }
    train_net_d_free(nd);
    train_net_f_free(nf);
}

TEST(test_f32_matches_f64)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) f32_vs_f64((arch_variant)v);
}

/* Data-parallel steps (train_dp.h): the reduced gradient of S shards is
 * the gradient of the whole batch's mean loss (against the f64 network on
 * the whole batch, uneven splits included), the threads never change a
 * bit (1 vs S threads, with dropout), and evaluation handles a batch
 * smaller than S. */
static void dp_vs_f64(arch_variant v, int B, int S)
{
    arch_hparams hp;
    tiny_hparams(&hp, v);
    char err[256];
    const int T = 8;
    train_net_d *nd = train_net_d_create(&hp, B, T, err, sizeof err);
    train_dp *dp = train_dp_create(&hp, B, T, S, S, err, sizeof err);
    CHECK_MSG(nd && dp, "%s", err);
    if (!nd || !dp) return;
    train_net_f *nf = train_dp_net(dp);
    noisy_init(nd, 13);
    share_f32_values(nd, nf);
    int32_t in[64], tg[64];
    make_tokens(in, tg, B * T, hp.n_vocab, 5);
    train_net_d_zero_grad(nd);
    double ld = train_net_d_forward(nd, in, tg, B, T, 1, 0.0f, NULL, NULL);
    train_net_d_backward(nd);
    double lf = train_dp_step(dp, in, tg, B, T, 0.0f, NULL);
    CHECK_MSG(fabs(lf - ld) <= 1e-5 * fabs(ld), "%s B %d S %d: loss %.9g vs f64 %.9g", arch_variant_name(v), B, S,
              lf, ld);
    CHECK_NEAR(train_dp_loss(dp, in, tg, B, T), ld, 1e-5 * fabs(ld));
    char what[96];
    snprintf(what, sizeof what, "%s, batch %d in %d shards", arch_variant_name(v), B, S);
    check_grads_f32_vs_f64(nd, nf, what);
    train_net_d_free(nd);
    train_dp_free(dp);
}

TEST(test_data_parallel)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) dp_vs_f64((arch_variant)v, 4, 2);
    dp_vs_f64(ARCH_RANDOM, 3, 2); /* shards of 1 and 2 sequences, weighted 1/3 and 2/3 */
    dp_vs_f64(ARCH_RANDOM_VANILLA, 5, 3);

    /* 1 thread vs 2 threads with dropout: bitwise the same */
    arch_hparams hp;
    tiny_hparams(&hp, ARCH_DENSE_VANILLA);
    char err[256];
    const int B = 4, T = 8;
    train_dp *a = train_dp_create(&hp, B, T, 2, 1, err, sizeof err), *b = train_dp_create(&hp, B, T, 2, 2, err, sizeof err);
    CHECK_MSG(a && b, "%s", err);
    if (!a || !b) return;
    CHECK(train_dp_workers(a) == 1 && train_dp_workers(b) == 2 && train_dp_shards(b) == 2);
    train_net_f_init_params(train_dp_net(a), 3, 0.5f);
    train_net_f_init_params(train_dp_net(b), 3, 0.5f);
    int32_t in[32], tg[32];
    make_tokens(in, tg, B * T, hp.n_vocab, 6);
    arch_rng ra, rb;
    arch_rng_seed(&ra, 9);
    arch_rng_seed(&rb, 9);
    for (int step = 0; step < 3; step++) {
        double la = train_dp_step(a, in, tg, B, T, 0.2f, &ra), lb = train_dp_step(b, in, tg, B, T, 0.2f, &rb);
        CHECK_MSG(la == lb && isfinite(la), "step %d: loss %.9g (1 thread) vs %.9g (2 threads)", step, la, lb);
        const int64_t np = train_net_f_n_params(train_dp_net(a));
        CHECK(memcmp(train_net_f_grads(train_dp_net(a)), train_net_f_grads(train_dp_net(b)), (size_t)np * 4) == 0);
    }
    /* and with word dropout (flags drawn per shard): still bitwise the same;
     * word dropout without an rng is refused, as is p out of range */
    CHECK(train_dp_set_word_dropout(a, 0.3f) == 0 && train_dp_set_word_dropout(b, 0.3f) == 0);
    CHECK(train_dp_set_word_dropout(a, 1.0f) == -1);
    for (int step = 0; step < 2; step++) {
        double la = train_dp_step(a, in, tg, B, T, 0.0f, &ra), lb = train_dp_step(b, in, tg, B, T, 0.0f, &rb);
        CHECK_MSG(la == lb && isfinite(la), "word dropout, step %d: %.9g vs %.9g", step, la, lb);
        const int64_t np = train_net_f_n_params(train_dp_net(a));
        CHECK(memcmp(train_net_f_grads(train_dp_net(a)), train_net_f_grads(train_dp_net(b)), (size_t)np * 4) == 0);
    }
    CHECK(isnan(train_dp_step(b, in, tg, B, T, 0.0f, NULL)));
    CHECK(isfinite(train_dp_loss(b, in, tg, B, T))); /* evaluation needs no rng */
    CHECK(train_dp_set_word_dropout(a, 0) == 0 && train_dp_set_word_dropout(b, 0) == 0);
    /* evaluation of 1 sequence with 2 shards; a training step needs B >= S */
    double l1 = train_dp_loss(a, in, tg, 1, T);
    CHECK(isfinite(l1) && l1 == train_dp_loss(b, in, tg, 1, T));
    CHECK(isnan(train_dp_step(a, in, tg, 1, T, 0.0f, NULL)));
    /* bad input: out-of-range id, too large a batch, a dropout without rng */
    int32_t bad[32];
    memcpy(bad, in, sizeof bad);
    bad[20] = hp.n_vocab;
    CHECK(isnan(train_dp_step(b, bad, tg, B, T, 0.0f, NULL)));
    CHECK(isnan(train_dp_loss(b, in, tg, B + 1, T)));
    CHECK(isnan(train_dp_step(b, in, tg, B, T, 0.1f, NULL)));
    train_dp_free(a);
    train_dp_free(b);
    CHECK(train_dp_create(&hp, 2, T, 3, 1, err, sizeof err) == NULL && strstr(err, "shards"));
    CHECK(train_dp_create(&hp, 2, T, 2, 0, err, sizeof err) == NULL && strstr(err, "threads"));
}

/* Dropout p = 0 in training mode is exactly no dropout; p > 0 is
 * reproducible from the rng state and changes the loss. */
TEST(test_dropout)
{
    arch_hparams hp;
    train_net_d *n = noisy_net(&hp, ARCH_RANDOM_VANILLA, 2, 8, 3);
    if (!n) return;
    int32_t in[16], tg[16];
    make_tokens(in, tg, 16, hp.n_vocab, 4);
    int64_t np = train_net_d_n_params(n);
    double *g0 = malloc((size_t)np * sizeof *g0);
    arch_rng r;
    arch_rng_seed(&r, 1);
    train_net_d_zero_grad(n);
    double l0 = train_net_d_forward(n, in, tg, 2, 8, 1, 0.0f, NULL, NULL);
    train_net_d_backward(n);
    memcpy(g0, train_net_d_grads(n), (size_t)np * sizeof *g0);
    train_net_d_zero_grad(n);
    double l1 = train_net_d_forward(n, in, tg, 2, 8, 1, 0.0f, &r, NULL);
    train_net_d_backward(n);
    double l2 = train_net_d_forward(n, in, tg, 2, 8, 0, 0.5f, &r, NULL);
    CHECK(l0 == l1);
    CHECK(l0 == l2);
    CHECK(memcmp(g0, train_net_d_grads(n), (size_t)np * sizeof *g0) == 0);
    arch_rng_seed(&r, 1);
    double a = train_net_d_forward(n, in, tg, 2, 8, 1, 0.3f, &r, NULL);
    double b = train_net_d_forward(n, in, tg, 2, 8, 1, 0.3f, &r, NULL);
    arch_rng_seed(&r, 1);
    double c = train_net_d_forward(n, in, tg, 2, 8, 1, 0.3f, &r, NULL);
    CHECK(a == c);
    CHECK(a != b);
    CHECK(a != l0);
    free(g0);
    train_net_d_free(n);
}

/* Loss of one training forward with word dropout p (dropout 0), masks
 * from seed. */
static double wd_loss(train_net_d *n, const int32_t *in, const int32_t *tg, float p, uint64_t seed)
{
    arch_rng r;
    arch_rng_seed(&r, seed);
    CHECK(train_net_d_set_word_dropout(n, p) == 0);
    return train_net_d_forward(n, in, tg, 2, 8, 1, 0.0f, &r, NULL);
}

/* Word dropout drops token types, not positions: on inputs of two types
 * the loss takes at most 4 values over seeds (each type kept or dropped),
 * with the binomial frequencies of p; the all-dropped value (position
 * embeddings alone) is the same for every p, and the all-kept value is not
 * the loss without word dropout (kept embeddings scaled by 1/(1-p)). Off
 * (0) it is exactly no word dropout; bad p is refused. */
TEST(test_word_dropout)
{
    arch_hparams hp;
    train_net_d *n = noisy_net(&hp, ARCH_RANDOM, 2, 8, 5);
    if (!n) return;
    int32_t in[16], tg[16];
    make_tokens(in, tg, 16, hp.n_vocab, 11);
    for (int i = 0; i < 16; i++) in[i] = i % 3 ? 7 : 30; /* types 7 and 30 */
    const double none = train_net_d_forward(n, in, tg, 2, 8, 1, 0.0f, NULL, NULL);
    CHECK(wd_loss(n, in, tg, 0, 1) == none);
    CHECK(train_net_d_set_word_dropout(n, 1.0f) == -1 && train_net_d_set_word_dropout(n, -0.1f) == -1 &&
          train_net_d_set_word_dropout(n, NAN) == -1);
    /* on without an rng: refused */
    CHECK(train_net_d_set_word_dropout(n, 0.5f) == 0);
    CHECK(isnan(train_net_d_forward(n, in, tg, 2, 8, 1, 0.0f, NULL, NULL)));
    /* evaluation ignores it */
    CHECK(train_net_d_forward(n, in, tg, 2, 8, 0, 0.0f, NULL, NULL) == none);
    enum { S = 400 };
    const float ps[2] = {0.2f, 0.7f};
    double mode[2], rare[2];
    int mode_n[2], rare_n[2];
    for (int k = 0; k < 2; k++) {
        double val[S], u[S];
        int cnt[S], nu = 0;
        for (int s = 0; s < S; s++) {
            val[s] = wd_loss(n, in, tg, ps[k], 1000 + (uint64_t)s);
            int j = 0;
            while (j < nu && u[j] != val[s]) j++;
            if (j == nu) {
                u[nu] = val[s];
                cnt[nu++] = 0;
            }
            cnt[j]++;
        }
        CHECK_MSG(nu == 4, "p %g: %d distinct losses over %d seeds, want 4 (2 types kept or dropped)", (double)ps[k],
                  nu, S);
        int hi = 0, lo = 0;
        for (int j = 1; j < nu; j++) {
            if (cnt[j] > cnt[hi]) hi = j;
            if (cnt[j] < cnt[lo]) lo = j;
        }
        mode[k] = u[hi], mode_n[k] = cnt[hi], rare[k] = u[lo], rare_n[k] = cnt[lo];
    }
    /* expected counts of S (sd): p 0.2: both kept 256 (9.6), one kept 64 each,
     * both dropped 16 (3.9); p 0.7: both dropped 196 (10), one kept 84 each,
     * both kept 36 (5.7) */
    CHECK_MSG(mode_n[0] > 220 && mode_n[0] < 290, "p 0.2: both kept %d of %d", mode_n[0], S);
    CHECK_MSG(mode_n[1] > 160 && mode_n[1] < 235, "p 0.7: both dropped %d of %d", mode_n[1], S);
    CHECK_MSG(rare_n[0] < 35 && rare_n[1] < 60, "rarest patterns %d and %d of %d", rare_n[0], rare_n[1], S);
    CHECK_MSG(rare[0] == mode[1], "both dropped: loss %.12g at p 0.2, %.12g at p 0.7", rare[0], mode[1]);
    CHECK_MSG(mode[0] != none && rare[1] != none && mode[0] != rare[1], "both kept: %.12g (0.2), %.12g (0.7), "
              "none %.12g", mode[0], rare[1], none);
    train_net_d_free(n);
}

/* The GGUF written from the trainer's parameters gives, through the
 * inference engine (model_step), the trainer's logits within 1e-4. path: a
 * scratch file; vocab: 257 byte tokens. */
static void matches_inference(arch_variant v, const char *path, char **vocab)
{
    arch_hparams hp;
    tiny_hparams(&hp, v);
    hp.n_vocab = 257;
    hp.n_embd = 32;
    char err[256];
    const int B = 2, T = 8, V = hp.n_vocab;
    train_net_f *n = train_net_f_create(&hp, B, T, err, sizeof err);
    CHECK_MSG(n != NULL, "%s", err);
    if (!n) return;
    train_net_f_init_params(n, 5, 0.5f);
    arch_rng r;
    arch_rng_seed(&r, 77);
    float *p = train_net_f_params(n);
    for (int64_t i = 0; i < train_net_f_n_params(n); i++) p[i] += 0.05f * arch_rng_normal(&r);
    ckpt_desc d;
    memset(&d, 0, sizeof d);
    d.hp = &hp;
    d.name = "test";
    d.vocab = (const char *const *)vocab;
    d.n_vocab = 257;
    d.eos_id = 256;
    d.tensors = (const float *const *)train_net_f_param_ptrs(n);
    d.type = QUANT_F32;
    int rc = ckpt_write(&d, path, err, sizeof err);
    CHECK_MSG(rc == 0, "ckpt_write: %s", err);
    model *m = NULL;
    if (rc == 0) {
        rc = model_load(path, &m, err, sizeof err);
        CHECK_MSG(rc == 0, "model_load: %s", err);
    }
    if (rc) {
        train_net_f_free(n);
        return;
    }
    model_set_cache_values(m, MODEL_CACHE_F32); /* exact values, as the references */
    CHECK(model_hparams(m)->ffn == hp.ffn);
    int32_t in[16], tg[16];
    make_tokens(in, tg, B * T, V, 9);
    float *lt = malloc((size_t)B * T * V * sizeof(float)), *li = malloc((size_t)T * V * sizeof(float));
    train_net_f_forward(n, in, tg, B, T, 0, 0.0f, NULL, lt);
    model_cache *c = model_cache_create(m, 1);
    double maxd = 0;
    for (int b = 0; b < B; b++) {
        model_cache_reset(c, 0);
        model_seq s = {0, T, in + b * T, 1};
        rc = model_step(m, c, 1, &s, li);
        CHECK(rc == 0);
        for (int e = 0; e < T * V; e++) {
            double dd = fabs((double)li[e] - lt[(size_t)b * T * V + e]);
            if (dd > maxd) maxd = dd;
        }
    }
    CHECK_MSG(maxd <= 1e-4, "%s (%s): trainer vs inference logits differ by %g", arch_variant_name(v),
              arch_ffn_name(hp.ffn), maxd);
    model_cache_free(c);
    model_free(m);
    free(lt);
    free(li);
    train_net_f_free(n);
}

/* Runs fn with a scratch path and a byte vocabulary (for matches_inference). */
static void with_scratch_model(void (*fn)(const char *path, char **vocab))
{
    char **vocab = fixture_byte_vocab(257);
    CHECK(vocab != NULL);
    if (!vocab) return;
    char path[] = "/tmp/test_train_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        fn(path, vocab);
        unlink(path);
    }
    tok_free_strings(vocab, 257);
}

static void matches_inference_all(const char *path, char **vocab)
{
    for (int v = 0; v < ARCH_N_VARIANTS; v++) matches_inference((arch_variant)v, path, vocab);
}

TEST(test_matches_inference)
{
    with_scratch_model(matches_inference_all);
}

static void matches_inference_geglu(const char *path, char **vocab)
{
    matches_inference(ARCH_RANDOM, path, vocab);
    matches_inference(ARCH_RANDOM_VANILLA, path, vocab);
}

/* The GEGLU feed-forward (arch_ffn): central-difference gradients of every
 * tensor, f32 against f64, two shards against one network, and the
 * trainer's logits against the inference engine's, for the shipped variant
 * (random) and the mixture (random+vanilla). */
TEST(test_geglu)
{
    g_ffn = ARCH_FFN_GEGLU;
    const arch_variant vs[2] = {ARCH_RANDOM, ARCH_RANDOM_VANILLA};
    for (int i = 0; i < 2; i++) {
        gradcheck(vs[i], 2, 8);
        gradcheck(vs[i], 3, 5);
        f32_vs_f64(vs[i]);
        dp_vs_f64(vs[i], 4, 2);
    }
    with_scratch_model(matches_inference_geglu);
    g_ffn = ARCH_FFN_GELU;
}

/* ---- whole runs through train_run ---- */

typedef struct {
    double loss[512];
    int n;
    double last_valid;
} rec;

static void record(const train_progress *p, void *ud)
{
    rec *r = ud;
    if (p->phase) return;
    if (p->is_eval) { r->last_valid = p->valid_loss; return; }
    if (r->n < 512) r->loss[r->n++] = p->train_loss;
}

static char g_dir[64];

static void write_text(const char *name, int reps, int variant)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    static const char *const lines[] = {
        "the cat sat on the mat and the dog sat on the log .\n",
        "a bird in the hand is worth two in the bush .\n",
        "the quick brown fox jumps over the lazy dog .\n",
        "to be or not to be , that is the question .\n",
    };
    for (int i = 0; i < reps; i++) fputs(lines[(i + variant) % 4], f);
    fclose(f);
}

static void tiny_config(train_config *c, char *out, char *state, char *trainp, char *validp)
{
    train_config_default(c);
    tiny_hparams(&c->hp, ARCH_RANDOM);
    c->hp.n_ctx = 32;
    c->hp.n_embd = 32;
    sprintf(trainp, "%s/train.txt", g_dir);
    sprintf(validp, "%s/valid.txt", g_dir);
    sprintf(out, "%s/out.gguf", g_dir);
    sprintf(state, "%s/state.bin", g_dir);
    c->train_path = trainp;
    c->valid_path = validp;
    c->out_path = out;
    c->ckpt_path = state;
    c->vocab = 300;
    c->batch = 4;
    c->seq = 32;
    c->steps = 40;
    c->warmup = 5;
    c->lr = 3e-3f;
    c->min_lr = 3e-4f;
    c->eval_every = 10;
    c->ckpt_every = 0;
    c->dropout = 0.1f;
    c->threads = 1;
}

TEST(test_resume_equivalence)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    rec a = {0}, b = {0};
    int rc = train_run(&c, record, &a, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.stop_at = 20;
    rc = train_run(&c, record, &b, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(b.n == 20);
    c.stop_at = 0;
    c.resume_path = state;
    rc = train_run(&c, record, &b, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(a.n == 40 && b.n == 40);
    for (int i = 0; i < a.n && i < b.n; i++) CHECK_MSG(a.loss[i] == b.loss[i], "step %d: %.9g vs %.9g", i + 1, a.loss[i], b.loss[i]);
    CHECK(a.last_valid == b.last_valid);
    /* same seed: same curve; other seed: another */
    rec s = {0}, s2 = {0}, o = {0};
    c.resume_path = NULL;
    c.steps = 10;
    rc = train_run(&c, record, &s, NULL, err, sizeof err);
    rc |= train_run(&c, record, &s2, NULL, err, sizeof err);
    c.seed = 2;
    rc |= train_run(&c, record, &o, NULL, err, sizeof err);
    CHECK(rc == 0);
    int same = s.n == 10 && s2.n == 10;
    for (int i = 0; i < 10; i++) same &= s.loss[i] == s2.loss[i];
    CHECK(same);
    CHECK(o.loss[5] != s.loss[5]);
}

/* The progress callback of test_auto_steps_slowdown: after the warm-up it
 * sleeps twice the warm-up's mean wall time per step, so the run's rate
 * drops to a third of the rate --steps auto first measured. */
typedef struct {
    int64_t warmup;
    double t0, warm_s;          /* start; wall seconds of the warm-up */
    int64_t total_at_warmup;    /* the schedule fixed from the warm-up */
    int64_t last_step, last_total;
    double last_lr;
} slowdown;

static void slow_after_warmup(const train_progress *p, void *ud)
{
    slowdown *s = ud;
    if (p->phase || p->is_eval) return;
    if (s->t0 == 0) s->t0 = net_now();
    s->last_step = p->step;
    s->last_total = p->steps;
    s->last_lr = p->lr;
    if (p->step == s->warmup) {
        s->warm_s = net_now() - s->t0;
        s->total_at_warmup = p->steps;
    }
    if (p->step > s->warmup) {
        double d = 2 * s->warm_s / (double)s->warmup;
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* --steps auto when the rate falls after the warm-up (it did in a real run:
 * 5,045 tokens/s in the warm-up, 4,772 after): the schedule still ends,
 * with the lr at (or near) its floor, inside the time budget, instead of
 * --max-minutes cutting the cosine short (before the fix, the total was
 * fixed at the warm-up's rate and this run stopped at about a third of it). */
TEST(test_auto_steps_slowdown)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.steps = 0;
    c.max_minutes = 0.06; /* 3.6 s */
    c.warmup = 40;
    c.eval_every = 25;
    slowdown sd = {.warmup = c.warmup};
    train_summary s;
    int rc = train_run(&c, slow_after_warmup, &sd, &s, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* the cosine ran to (within 10% of) its end: the lr is within 5% of
     * its range above the floor. Not exactly the end: on a loaded machine
     * the last steps can take longer than the rate measured so far, and
     * then --max-minutes stops the run a few steps short. */
    CHECK_MSG(sd.last_lr <= c.min_lr + 0.05 * (c.lr - c.min_lr), "last lr %g (step %lld of %lld), floor %g",
              sd.last_lr, (long long)sd.last_step, (long long)sd.last_total, (double)c.min_lr);
    CHECK(s.steps_done == sd.last_step);
    /* the total followed the slower rate down, and the budget was used */
    CHECK_MSG(sd.last_total < sd.total_at_warmup * 0.8, "total %lld, at the warm-up %lld", (long long)sd.last_total,
              (long long)sd.total_at_warmup);
    CHECK_MSG(s.elapsed_s > 0.75 * 60 * c.max_minutes && s.elapsed_s < 60 * c.max_minutes + 1, "elapsed %.2f s",
              s.elapsed_s);
}

/* A tiny model learns a small repetitive text: after 300 steps the
 * validation loss (same kind of text) is below 0.5 nats per token, far below
 * the ~5.7 of a uniform guess over 300 tokens. */
/* test_overfit_small_text's schedule: 300 steps at lr 1e-2, no dropout */
static void overfit_config(train_config *c)
{
    c->steps = 300;
    c->eval_every = 100;
    c->warmup = 20;
    c->lr = 1e-2f;
    c->dropout = 0;
}

TEST(test_overfit_small_text)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    overfit_config(&c);
    train_summary s;
    int rc = train_run(&c, NULL, NULL, &s, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_MSG(s.best_valid < 0.5, "best valid loss %g", s.best_valid);
    CHECK(s.steps_done == 300);
    /* the best checkpoint loads in the inference engine */
    model *m = NULL;
    rc = model_load(out, &m, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    model_free(m);
}

/* --optimizer muon in a whole run: it changes the curve (the flag is in
 * effect), a stopped and resumed run matches the uninterrupted one bit for
 * bit (the momentum lives in the state's first-moment buffer), two lanes
 * match one, and the tiny
 * model learns the small text as test_overfit_small_text's AdamW does. */
TEST(test_muon_run)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    rec adam = {0}, a = {0}, b = {0};
    int rc = train_run(&c, record, &adam, NULL, err, sizeof err);
    c.muon = 1;
    rc |= train_run(&c, record, &a, NULL, err, sizeof err);
    c.stop_at = 20;
    rc |= train_run(&c, record, &b, NULL, err, sizeof err);
    c.stop_at = 0;
    c.resume_path = state;
    rc |= train_run(&c, record, &b, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(a.n == 40 && b.n == 40 && adam.n == 40);
    for (int i = 0; i < a.n && i < b.n; i++) CHECK_MSG(a.loss[i] == b.loss[i], "step %d: %.9g vs %.9g", i + 1, a.loss[i], b.loss[i]);
    CHECK(a.last_valid == b.last_valid);
    CHECK(adam.loss[0] == a.loss[0] && adam.loss[5] != a.loss[5]); /* same first batch, then other weights */
    /* two lanes (2 threads, 2 shards: the matrices split between them)
     * give the one-lane run's curve bit for bit */
    rec l1 = {0}, l2 = {0};
    c.resume_path = NULL;
    c.steps = 12;
    c.shards = 2;
    rc = train_run(&c, record, &l1, NULL, err, sizeof err);
    c.threads = 2;
    rc |= train_run(&c, record, &l2, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(l1.n == 12 && l2.n == 12);
    for (int i = 0; i < l1.n && i < l2.n; i++) CHECK_MSG(l1.loss[i] == l2.loss[i], "step %d: %.9g vs %.9g", i + 1, l1.loss[i], l2.loss[i]);
    tiny_config(&c, out, state, tp, vp);
    c.muon = 1;
    overfit_config(&c);
    train_summary s;
    rc = train_run(&c, NULL, NULL, &s, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_MSG(s.best_valid < 0.5, "best valid loss %g", s.best_valid);
}

TEST(test_bad_config)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.seq = 33; /* > ctx 32 */
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--seq"));
    tiny_config(&c, out, state, tp, vp);
    c.lr = -1;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--lr"));
    tiny_config(&c, out, state, tp, vp);
    c.dropout_start = 1.5f;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--dropout-start"));
    tiny_config(&c, out, state, tp, vp);
    c.word_dropout = 1;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--word-dropout"));
    tiny_config(&c, out, state, tp, vp);
    c.late_decay = 2.0f / c.lr; /* a step would flip the weights' signs */
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--late-decay"));
    c.late_decay = NAN;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--late-decay"));
    c.late_decay = 0.5f;
    c.late_decay_start = -0.1f;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--late-decay-start"));
    tiny_config(&c, out, state, tp, vp);
    c.hp.n_head = 3;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "head_count"));
    tiny_config(&c, out, state, tp, vp);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.txt", g_dir);
    c.train_path = missing;
    CHECK(train_run(&c, NULL, NULL, NULL, err, sizeof err) == TRAIN_EIO && strstr(err, "--train"));
    tiny_config(&c, out, state, tp, vp);
    c.resume_path = tp; /* not a state file */
    CHECK(train_run(&c, NULL, NULL, NULL, err, sizeof err) == TRAIN_EFORMAT && strstr(err, "--resume"));
}

/* C [m, n] = A [m, k] B [k, n], or A^T B with A stored [k, m] (plain loops) */
static void mm_ref(double *C, const double *A, const double *B, int m, int k, int n, int at)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++) s += (at ? A[(size_t)l * m + i] : A[(size_t)i * k + l]) * B[(size_t)l * n + j];
            C[(size_t)i * n + j] = s;
        }
}

/* Newton-Schulz on X [m, n] in double, always in the X <- p(X X^T) X form
 * (no short-side trick): `steps` quintic steps (Muon's coefficients) or,
 * with cubic, X <- 1.5 X - 0.5 X X^T X, which converges to the polar
 * factor U V^T. */
static void ns_ref(double *X, int m, int n, int steps, int cubic)
{
    double *A = malloc(sizeof(double) * m * m), *B = malloc(sizeof(double) * m * m), *Y = malloc(sizeof(double) * m * n);
    double *Xt = malloc(sizeof(double) * m * n), ss = 0;
    for (int i = 0; i < m * n; i++) ss += X[i] * X[i];
    for (int i = 0; i < m * n; i++) X[i] /= sqrt(ss) + 1e-7;
    const double a = cubic ? 1.5 : 3.4445, b = cubic ? -0.5 : -4.7750, c = cubic ? 0 : 2.0315;
    for (int it = 0; it < steps; it++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) Xt[(size_t)j * m + i] = X[(size_t)i * n + j];
        mm_ref(A, X, Xt, m, n, m, 0);
        mm_ref(B, A, A, m, m, m, 0);
        for (int i = 0; i < m * m; i++) B[i] = b * A[i] + c * B[i];
        mm_ref(Y, B, X, m, m, n, 0);
        for (int i = 0; i < m * n; i++) X[i] = a * X[i] + Y[i];
    }
    free(A); free(B); free(Y); free(Xt);
}

/* Muon's Newton-Schulz (BLAS, short side) against the plain double loop of
 * the same iteration, for wide, tall, square and one-row matrices; its
 * distance from the true polar factor within the quintic's band; and two
 * Muon steps (momentum, scale, decay) against the textbook formulas. */
TEST(test_muon)
{
    const int shapes[][2] = {{5, 9}, {9, 5}, {16, 16}, {1, 7}, {40, 24}};
    arch_rng r;
    arch_rng_seed(&r, 11);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int m = shapes[si][0], n = shapes[si][1];
        float *X = malloc(sizeof(float) * m * n), *work = malloc(sizeof(float) * train_muon_work(m, n));
        double *Xd = malloc(sizeof(double) * m * n), *P = malloc(sizeof(double) * m * n);
        for (int i = 0; i < m * n; i++) P[i] = Xd[i] = X[i] = 3 * arch_rng_normal(&r);
        train_newton_schulz(X, m, n, work);
        ns_ref(Xd, m, n, 5, 0);
        ns_ref(P, m, n, 200, 1);
        double dmax = 0, dpol = 0, pn = 0;
        for (int i = 0; i < m * n; i++) {
            dmax = fmax(dmax, fabs(X[i] - Xd[i]));
            dpol += (X[i] - P[i]) * (X[i] - P[i]);
            pn += P[i] * P[i];
        }
        /* f32 BLAS against the f64 loop: the iteration's slope near 0 is
         * 3.4 per step, so rounding grows by at most 3.4^5 ~ 500 x 1e-7 */
        CHECK(dmax < 1e-4);
        /* the polar factor has all singular values 1 (pn = min(m, n)); X
         * has the same singular vectors and values p^5(s), which oscillate
         * in about [0.68, 1.13] once grown (a unit row vector ends at
         * 0.697), so |X - P| <= 0.33 |P| for matrices whose smallest
         * singular value is not far below the others (measured: 0.18-0.30) */
        CHECK_NEAR(pn, m < n ? m : n, 1e-6 * pn);
        CHECK(sqrt(dpol / pn) < 0.33);
        free(X); free(work); free(Xd); free(P);
    }
    /* two Muon steps on a [6, 10] matrix */
    enum { m = 6, n = 10, N = m * n };
    float p[N], g[N], mom[N] = {0}, work[2 * N + 2 * m * m];
    double pd[N], md[N] = {0}, O[N];
    CHECK(train_muon_work(m, n) <= sizeof work / sizeof work[0]);
    for (int i = 0; i < N; i++) pd[i] = p[i] = arch_rng_normal(&r);
    const double lr = 0.01, mu = 0.9, decay = 0.2, gscale = 0.5;
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < N; i++) g[i] = arch_rng_normal(&r);
        train_muon(p, g, mom, m, n, (float)gscale, (float)lr, (float)mu, (float)decay, work);
        for (int i = 0; i < N; i++) {
            md[i] = mu * md[i] + gscale * g[i];
            O[i] = gscale * g[i] + mu * md[i];
        }
        ns_ref(O, m, n, 5, 0);
        for (int i = 0; i < N; i++) pd[i] -= lr * 0.2 * sqrt(10.0) * O[i] + lr * decay * pd[i];
    }
    for (int i = 0; i < N; i++) {
        CHECK_NEAR(p[i], pd[i], 1e-5);
        CHECK_NEAR(mom[i], md[i], 1e-5);
    }
}

/* AdamW (vectorized f32) against a double-precision loop of the textbook
 * formulas, and the schedule's end points. */
TEST(test_adamw_and_schedule)
{
    enum { n = 37 };
    float p[n], g[n], m[n] = {0}, v[n] = {0};
    double pd[n], md[n] = {0}, vd[n] = {0};
    arch_rng r;
    arch_rng_seed(&r, 3);
    for (int i = 0; i < n; i++) pd[i] = p[i] = arch_rng_normal(&r);
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < n; i++) g[i] = arch_rng_normal(&r);
        train_adamw(p, g, m, v, n, 0.01f, 0.9f, 0.99f, 1e-8f, 0.1f, t);
        for (int i = 0; i < n; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.99 * vd[i] + 0.01 * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(0.9, t)), vh = vd[i] / (1 - pow(0.99, t));
            pd[i] -= 0.01 * mh / (sqrt(vh) + 1e-8) + 0.01 * 0.1 * pd[i];
        }
    }
    for (int i = 0; i < n; i++) CHECK_NEAR(p[i], pd[i], 1e-5);
    train_config c;
    train_config_default(&c);
    c.steps = 100;
    c.warmup = 10;
    c.lr = 1e-3f;
    c.min_lr = 1e-4f;
    CHECK_NEAR(train_lr(&c, 0), 1e-4, 1e-9);
    CHECK_NEAR(train_lr(&c, 9), 1e-3, 1e-9);
    CHECK_NEAR(train_lr(&c, 10), 1e-3, 1e-9);
    CHECK_NEAR(train_lr(&c, 55), 5.5e-4, 1e-7);
    CHECK_NEAR(train_lr(&c, 100), 1e-4, 1e-9);
    /* late dropout: off before 40% of the steps, on from there */
    c.dropout = 0.1f;
    CHECK(train_dropout(&c, 0) == 0.1f && train_dropout(&c, 99) == 0.1f);
    c.dropout_start = 0.4f;
    CHECK(train_dropout(&c, 0) == 0 && train_dropout(&c, 39) == 0);
    CHECK(train_dropout(&c, 40) == 0.1f && train_dropout(&c, 99) == 0.1f);
    /* late weight decay: weight_decay before 67% of the steps, late_decay from there */
    c.weight_decay = 0.3f;
    CHECK(train_weight_decay(&c, 0) == 0.3f && train_weight_decay(&c, 99) == 0.3f);
    c.late_decay = 1.2f;
    c.late_decay_start = 0.67f;
    CHECK(train_weight_decay(&c, 0) == 0.3f && train_weight_decay(&c, 66) == 0.3f);
    CHECK(train_weight_decay(&c, 67) == 1.2f && train_weight_decay(&c, 99) == 1.2f);
    c.steps = 0; /* --steps auto before its first estimate: still early */
    CHECK(train_weight_decay(&c, 5000) == 0.3f);
}

/* --dropout-start reaches the training step: a run whose dropout starts
 * after its last step is bit for bit the run without dropout, and one that
 * starts halfway matches it exactly up to there and differs after. */
TEST(test_late_dropout)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.steps = 20;
    rec none = {0}, never = {0}, half = {0};
    c.dropout = 0;
    int rc = train_run(&c, record, &none, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.dropout = 0.3f;
    c.dropout_start = 1;
    rc = train_run(&c, record, &never, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.dropout_start = 0.5f;
    rc = train_run(&c, record, &half, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(none.n == 20 && never.n == 20 && half.n == 20);
    for (int i = 0; i < 20; i++) CHECK_MSG(none.loss[i] == never.loss[i], "step %d: %.9g vs %.9g", i + 1, none.loss[i], never.loss[i]);
    for (int i = 0; i < 10; i++) CHECK_MSG(none.loss[i] == half.loss[i], "step %d: %.9g vs %.9g", i + 1, none.loss[i], half.loss[i]);
    CHECK_MSG(none.loss[10] != half.loss[10], "step 11: dropout did not start (%.9g)", half.loss[10]);
}

/* --late-decay reaches the optimizer and replaces --weight-decay there:
 * decay X from the start is bit for bit --weight-decay X; a late decay
 * that starts after the last step changes nothing; one that starts at
 * step 10 (0-based) leaves the losses through step 10 alone (the loss is
 * taken before the update) and changes them from step 11 on. */
TEST(test_late_decay)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.steps = 20;
    rec base = {0}, strong = {0}, from0 = {0}, never = {0}, half = {0};
    int rc = train_run(&c, record, &base, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.weight_decay = 0.9f;
    rc = train_run(&c, record, &strong, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.weight_decay = 0.1f;
    c.late_decay = 0.9f;
    c.late_decay_start = 0;
    rc = train_run(&c, record, &from0, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.late_decay_start = 1;
    rc = train_run(&c, record, &never, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.late_decay_start = 0.5f;
    rc = train_run(&c, record, &half, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(base.n == 20 && strong.n == 20 && from0.n == 20 && never.n == 20 && half.n == 20);
    for (int i = 0; i < 20; i++) {
        CHECK_MSG(strong.loss[i] == from0.loss[i], "step %d: %.9g vs %.9g", i + 1, strong.loss[i], from0.loss[i]);
        CHECK_MSG(base.loss[i] == never.loss[i], "step %d: %.9g vs %.9g", i + 1, base.loss[i], never.loss[i]);
    }
    for (int i = 0; i <= 10; i++) CHECK_MSG(base.loss[i] == half.loss[i], "step %d: %.9g vs %.9g", i + 1, base.loss[i], half.loss[i]);
    CHECK_MSG(base.loss[11] != half.loss[11], "step 12: the late decay did not start (%.9g)", half.loss[11]);
    CHECK_MSG(base.loss[19] != strong.loss[19], "step 20: weight decay 0.9 left the loss at %.9g", strong.loss[19]);
}

/* --word-dropout reaches the training step: from the first step the loss
 * differs from the run without it, which it otherwise equals (same seed,
 * dropout 0: only the word-dropout flags are drawn). */
TEST(test_word_dropout_run)
{
    char out[128], state[128], tp[128], vp[128], err[256];
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.steps = 3;
    c.warmup = 1;
    c.dropout = 0;
    rec none = {0}, none2 = {0}, wd = {0};
    int rc = train_run(&c, record, &none, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    rc = train_run(&c, record, &none2, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.word_dropout = 0.3f;
    rc = train_run(&c, record, &wd, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(none.n == 3 && none2.n == 3 && wd.n == 3);
    CHECK(none.loss[0] == none2.loss[0] && none.loss[2] == none2.loss[2]);
    CHECK_MSG(none.loss[0] != wd.loss[0] && isfinite(wd.loss[0]), "step 1: %.9g with word dropout, %.9g without",
              wd.loss[0], none.loss[0]);
}

/* The parameters in a training state file (layout in train.c: a 196-byte
 * header, n at byte 60, then params[n]); returns n or -1. */
static int64_t state_params(const char *path, float *out, int64_t cap)
{
    FILE *f = fopen(path, "rb");
    uint64_t n = 0;
    int ok = f && fseek(f, 60, SEEK_SET) == 0 && fread(&n, 8, 1, f) == 1 && n <= (uint64_t)cap &&
             fseek(f, 196, SEEK_SET) == 0 && fread(out, 4, n, f) == n;
    if (f) fclose(f);
    return ok ? (int64_t)n : -1;
}

/* Every tensor of an f32 checkpoint, in file order, one after another;
 * returns the count or -1. */
static int64_t ckpt_params(const char *path, float *out, int64_t cap)
{
    gguf_file *g = NULL;
    char err[256];
    if (gguf_open(path, &g, err, sizeof err)) return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor_info *t = gguf_tensor(g, i);
        int64_t k = (int64_t)(t->nbytes / 4);
        if (t->type != QUANT_F32 || n + k > cap) { gguf_close(g); return -1; }
        memcpy(out + n, t->data, t->nbytes);
        n += k;
    }
    gguf_close(g);
    return n;
}

static void record_avg(const train_progress *p, void *ud)
{
    double *v = ud;
    if (!p->phase && p->is_eval) *v = p->valid_loss_ema;
}

/* --ema: the average written to --ema-out is the running mean / EMA of the
 * parameters at every ema_every-th step, recomputed here from the
 * parameters of a run stopped and resumed at those steps; the average does
 * not change training; it survives a resume bit for bit; --ema-start
 * leaves the updates up to its step out of the mean; bad flags and a
 * resume that drops it are refused. */
TEST(test_weight_average)
{
    char out[128], state[128], tp[128], vp[128], err[256], avg[128];
    enum { CAP = 1 << 20 };
    float *p2 = malloc(CAP * 4), *p4 = malloc(CAP * 4), *p6 = malloc(CAP * 4), *a = malloc(CAP * 4);
    float *e = malloc(CAP * 4), *e2 = malloc(CAP * 4);
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    sprintf(avg, "%s/avg.gguf", g_dir);
    c.steps = 6;
    c.eval_every = 6;
    c.ema_every = 2;
    /* the reference: the same run without the average, stopped at 2, 4, 6 */
    c.stop_at = 2;
    int rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    int64_t n = state_params(state, p2, CAP);
    c.resume_path = state;
    c.stop_at = 4;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(state_params(state, p4, CAP) == n);
    c.stop_at = 0;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(state_params(state, p6, CAP) == n && n > 1000);
    /* with the average (D 0.6): updates at steps 2, 4, 6 with decays
     * min(0.6, n/(n+1)) = 0, 0.5, 0.6 */
    c.resume_path = NULL;
    c.ema = 0.6f;
    c.ema_out = avg;
    double va = NAN;
    rc = train_run(&c, record_avg, &va, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK_MSG(isfinite(va) && va > 0, "average's valid loss %g", va);
    CHECK(state_params(state, a, CAP) == n);
    CHECK_MSG(memcmp(a, p6, (size_t)n * 4) == 0, "the average changed the training");
    CHECK(ckpt_params(avg, e, CAP) == n);
    double worst = 0, moved = 0;
    for (int64_t i = 0; i < n; i++) {
        double ref = 0.5 * p2[i] + 0.5 * p4[i];
        ref = 0.6 * ref + 0.4 * p6[i];
        worst = fmax(worst, fabs(e[i] - ref) / (1e-3 + fabs(ref)));
        moved = fmax(moved, fabs(ref - p6[i]));
    }
    CHECK_MSG(worst < 1e-5, "average vs loop: relative error %g", worst);
    CHECK_MSG(moved > 1e-4, "parameters did not move (%g): the check is void", moved);
    /* stop at 3 (between updates), resume: the same average bit for bit */
    c.stop_at = 3;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    c.stop_at = 0;
    c.resume_path = state;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(ckpt_params(avg, e2, CAP) == n && memcmp(e, e2, (size_t)n * 4) == 0);
    /* a state with the average resumes only with it */
    c.ema = 0;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == TRAIN_EINVAL && strstr(err, "--ema"), "rc %d: %s", rc, err);
    c.resume_path = NULL;
    /* --ema-start 3: the average is the parameters up to step 3 (its
     * update at step 2 copies them), then the running mean of the updates
     * after it, steps 4 and 6: decays 0 and min(0.6, 1/2) */
    c.ema = 0.6f;
    c.ema_start = 3;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(ckpt_params(avg, e, CAP) == n);
    worst = 0;
    double from_start = 0;
    for (int64_t i = 0; i < n; i++) {
        double ref = 0.5 * p4[i] + 0.5 * p6[i];
        worst = fmax(worst, fabs(e[i] - ref) / (1e-3 + fabs(ref)));
        from_start = fmax(from_start, fabs(ref - (0.6 * (0.5 * p2[i] + 0.5 * p4[i]) + 0.4 * p6[i])));
    }
    CHECK_MSG(worst < 1e-5, "--ema-start average vs loop: relative error %g", worst);
    CHECK_MSG(from_start > 1e-5, "the start made no difference (%g): the check is void", from_start);
    c.ema_start = -1;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--ema-start"));
    c.ema_start = 0;
    /* flags */
    c.ema = 1;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--ema"));
    c.ema = 0.9f;
    c.ema_out = NULL;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--ema-out"));
    c.ema_out = out;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--ema-out"));
    c.ema_out = avg;
    c.ema_every = 0;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--ema-every"));
    free(p2); free(p4); free(p6); free(a); free(e); free(e2);
}

/* FNV-1a 64, the state file's checksum, written out again here */
static uint64_t fnv1a(const uint8_t *b, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Writes to dst the version-2 file an older trainer would have written for
 * the version-3 state src (saved without --ema): the same bytes without the
 * 12 of the weight-average block (i32 has_ema = 0, f64 best_valid_ema)
 * before the checksum, version 2, the checksum recomputed. Checks src's own
 * checksum on the way; returns 0 on success. */
static int state_to_v2(const char *src, const char *dst)
{
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    uint8_t *b = size > 196 + 20 ? malloc((size_t)size) : NULL;
    int ok = b && fread(b, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    uint32_t ver = 0;
    int32_t has_ema = -1;
    uint64_t sum = 0;
    if (ok) {
        memcpy(&ver, b + 8, 4);
        memcpy(&has_ema, b + size - 8 - 12, 4);
        memcpy(&sum, b + size - 8, 8);
    }
    ok = ok && ver == 3 && has_ema == 0 && sum == fnv1a(b, (size_t)size - 8);
    if (ok) {
        ver = 2;
        memcpy(b + 8, &ver, 4);
        size_t m = (size_t)size - 8 - 12;
        sum = fnv1a(b, m);
        memcpy(b + m, &sum, 8);
        f = fopen(dst, "wb");
        ok = f && fwrite(b, 1, m + 8, f) == m + 8;
        if (f && fclose(f)) ok = 0;
    }
    free(b);
    return ok ? 0 : -1;
}

/* Share of R's causal part (rows 0..T-1 of each head of R [H, L, L]) that
 * is a function of distance: the sum of squares of the diagonal means
 * (each counted over its T - k entries) over the total sum of squares. */
static double toeplitz_share(const float *R, int L, int T, int H)
{
    double tot = 0, shared = 0;
    for (int h = 0; h < H; h++)
        for (int k = 0; k < T; k++) {
            double sum = 0, sq = 0;
            for (int i = k; i < T; i++) {
                double x = R[(size_t)h * L * L + (size_t)i * L + (i - k)];
                sum += x;
                sq += x * x;
            }
            tot += sq;
            shared += sum * sum / (T - k);
        }
    return tot > 0 ? shared / tot : 0;
}

/* R of layer l (the run's hparams with the vocabulary it learned) from a
 * flat parameter buffer in arch_tensors() order. */
static const float *r_of_layer(const arch_hparams *hp, const float *params, int l)
{
    arch_tensor t[256];
    int n = arch_tensors(hp, t, 256);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].kind == T_RANDOM && t[i].layer == l) return params + off;
        off += t[i].n_elem;
    }
    return NULL;
}

/* --r-tie: train_tie_diagonals against a loop that finds each entry's
 * diagonal by comparing i - j over the whole matrix; then, in training
 * from R = 0 (rstd 0), R's update is a function of distance (the tie
 * pooled each diagonal's gradient) where without the tie it is not; the
 * flag is refused for variants without a trainable R. */
TEST(test_r_tie)
{
    enum { H = 2, L = 7, T = 5 };
    float g[H * L * L], ref[H * L * L];
    arch_rng rng;
    arch_rng_seed(&rng, 5);
    for (int e = 0; e < H * L * L; e++) g[e] = ref[e] = arch_rng_normal(&rng);
    const float x = 0.7f;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j <= i; j++) {
                double sum = 0;
                int cnt = 0;
                for (int a = 0; a < T; a++)
                    for (int b = 0; b <= a; b++)
                        if (a - b == i - j) {
                            sum += g[h * L * L + a * L + b];
                            cnt++;
                        }
                ref[h * L * L + i * L + j] += (float)(x * sum / cnt);
            }
    train_tie_diagonals(g, L, T, H, x);
    double worst = 0;
    for (int e = 0; e < H * L * L; e++) worst = fmax(worst, fabs(g[e] - ref[e]));
    CHECK_MSG(worst < 1e-6, "train_tie_diagonals differs from the loop by %g", worst);

    char out[128], state[128], tp[128], vp[128], err[256];
    enum { CAP = 1 << 20 };
    float *p = malloc(CAP * 4);
    double share[2] = {0, 0};
    const float ties[2] = {0, 100};
    for (int run = 0; run < 2; run++) {
        train_config c;
        tiny_config(&c, out, state, tp, vp);
        c.rstd = 0;
        c.dropout = 0;
        c.r_tie = ties[run];
        train_summary s;
        int rc = train_run(&c, NULL, NULL, &s, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        CHECK(state_params(state, p, CAP) > 0);
        arch_hparams hp = c.hp;
        hp.n_vocab = s.n_vocab;
        for (int l = 0; l < hp.n_layer; l++) {
            const float *R = r_of_layer(&hp, p, l);
            CHECK(R != NULL);
            share[run] += toeplitz_share(R, hp.n_ctx, c.seq, hp.n_head) / hp.n_layer;
        }
    }
    /* measured: 0.56 without the tie (the gradient is partly a function of
     * distance already), 0.9997 with it */
    CHECK_MSG(share[1] > 0.99 && share[0] < 0.8, "distance share of R: %.3f without the tie, %.3f with it", share[0],
              share[1]);
    free(p);

    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.r_tie = -1;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--r-tie"));
    c.r_tie = 1;
    c.hp.variant = ARCH_VANILLA;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--r-tie"));
    c.hp.variant = ARCH_FIXED_RANDOM;
    CHECK(train_config_validate(&c, err, sizeof err) == TRAIN_EINVAL && strstr(err, "--r-tie"));
    c.hp.variant = ARCH_RANDOM_VANILLA;
    CHECK_MSG(train_config_validate(&c, err, sizeof err) == 0, "%s", err);
}

/* A version-2 state (written before the weight average existed) still
 * resumes: the run continues bit for bit as from the version-3 file of the
 * same step, and resuming it with --ema is refused. */
TEST(test_resume_version2_state)
{
    char out[128], state[128], tp[128], vp[128], err[256], v2[160];
    enum { CAP = 1 << 20 };
    float *a = malloc(CAP * 4), *b = malloc(CAP * 4);
    train_config c;
    tiny_config(&c, out, state, tp, vp);
    c.steps = 8;
    c.eval_every = 8;
    c.stop_at = 4;
    int rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    snprintf(v2, sizeof v2, "%s/state-v2.bin", g_dir);
    CHECK_MSG(state_to_v2(state, v2) == 0, "could not write %s as version 2 of %s", v2, state);
    /* from the version-3 file */
    rec r3 = {0}, r2 = {0};
    c.stop_at = 0;
    c.resume_path = state;
    rc = train_run(&c, record, &r3, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    int64_t n = ckpt_params(out, a, CAP);
    /* from the version-2 file */
    c.resume_path = v2;
    rc = train_run(&c, record, &r2, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "version 2: %s", err);
    CHECK(n > 1000 && ckpt_params(out, b, CAP) == n && memcmp(a, b, (size_t)n * 4) == 0);
    CHECK(r3.n == 4 && r2.n == 4);
    for (int i = 0; i < r3.n && i < r2.n; i++) CHECK_MSG(r3.loss[i] == r2.loss[i], "step %d: %.9g vs %.9g", i + 5, r3.loss[i], r2.loss[i]);
    /* version 2 had no average: with --ema it is refused, and so is a
     * version-2 file with a bad checksum */
    char avg[160];
    snprintf(avg, sizeof avg, "%s/avg2.gguf", g_dir);
    c.ema = 0.9f;
    c.ema_out = avg;
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == TRAIN_EINVAL && strstr(err, "--ema"), "rc %d: %s", rc, err);
    c.ema = 0;
    c.ema_out = NULL;
    FILE *f = fopen(v2, "r+b");
    int byte = f && fseek(f, 300, SEEK_SET) == 0 ? fgetc(f) : EOF; /* a parameter's byte */
    CHECK(byte != EOF && fseek(f, 300, SEEK_SET) == 0 && fputc(byte ^ 0xff, f) != EOF);
    if (f) fclose(f);
    rc = train_run(&c, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == TRAIN_EFORMAT && strstr(err, "checksum"), "rc %d: %s", rc, err);
    free(a); free(b);
}

int main(void)
{
    openblas_set_num_threads(1);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_train_dir_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    write_text("train.txt", 400, 0);
    write_text("valid.txt", 40, 1);
    RUN(test_gradcheck_all_variants);
    RUN(test_gradcheck_dropout);
    RUN(test_f32_matches_f64);
    RUN(test_data_parallel);
    RUN(test_dropout);
    RUN(test_word_dropout);
    RUN(test_adamw_and_schedule);
    RUN(test_muon);
    RUN(test_muon_run);
    RUN(test_matches_inference);
    RUN(test_geglu);
    RUN(test_bad_config);
    RUN(test_resume_equivalence);
    RUN(test_late_dropout);
    RUN(test_late_decay);
    RUN(test_word_dropout_run);
    RUN(test_weight_average);
    RUN(test_resume_version2_state);
    RUN(test_r_tie);
    RUN(test_auto_steps_slowdown);
    RUN(test_overfit_small_text);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) printf("could not remove %s\n", g_dir);
    return test_summary();
}
