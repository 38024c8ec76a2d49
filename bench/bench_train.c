/* bench_train.c - training throughput of the default model size and its
 * model FLOP utilization against the OpenBLAS sgemm peak measured in the
 * same run.
 *
 *   bench_train [variant] [batch] [seq] [steps]   (default random 16 256 4)
 *
 * FLOPs per step = 6 P tokens + attention (forward 2 + backward 4 per
 * multiply-add, the usual 6 x params x tokens):
 *   P = n_layer * (2 d^2 [V, O] + 2 d d_ff [FFN]
 *                  + 2 d^2 [Q, K]                  with a vanilla part
 *                  + d^2 + H T d_head [dense MLPs] for dense variants
 *                  + 2 d^2 + H (a + b) d_head       for factorized_dense)
 *       + vocab * d [tied output layer]
 *   attention = n_layer * 6 * tokens * T * d per T x T product (A.V, and
 *       Q.K^T for vanilla; the full square is multiplied, as the code does)
 * MFU = FLOPs / time / peak, peak = best sgemm GFLOP/s on 1024^3 with the
 * same OpenBLAS threads, measured before and after the steps. On a shared
 * machine the wall time is noisy; the CPU time per step is printed too
 * (with 1 thread, FLOPs / CPU time vs the peak is the stable MFU).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "arch.h"
#include "train.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_peak(void)
{
    const int n = 1024;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 10; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = now() - t;
        double g = 2.0 * n * n * n / t / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static double step_flops(const arch_hparams *hp, int B, int T)
{
    const double d = hp->n_embd, F = hp->n_ff, V = hp->n_vocab, H = hp->n_head, dh = d / H;
    const double tok = (double)B * T;
    arch_variant v = hp->variant;
    double per_layer = 2 * d * d + 2 * d * F; /* V, O, FFN */
    double att = 1;                           /* P.V */
    if (arch_has_vanilla(v)) {
        per_layer += 2 * d * d;
        att += 1; /* Q.K^T */
    }
    if (arch_has_dense(v)) per_layer += d * d + H * T * dh; /* W1, W2 (T rows used) */
    if (arch_has_factorized_dense(v)) per_layer += 2 * d * d + H * (hp->fd_a + hp->fd_b) * dh;
    double P = hp->n_layer * per_layer + V * d;
    return 6 * P * tok + hp->n_layer * att * 6 * tok * T * d;
}

int main(int argc, char **argv)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    if (argc > 1 && arch_variant_parse(argv[1], &hp.variant)) {
        fprintf(stderr, "unknown variant %s\n", argv[1]);
        return 2;
    }
    int B = argc > 2 ? atoi(argv[2]) : 16, T = argc > 3 ? atoi(argv[3]) : 256, steps = argc > 4 ? atoi(argv[4]) : 4;
    if (B < 1 || T < 1 || T > hp.n_ctx || steps < 1) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    double peak = sgemm_peak();
    char err[256];
    train_net_f *n = train_net_f_create(&hp, B, T, err, sizeof err);
    if (!n) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    train_net_f_init_params(n, 1, 0.02f);
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    arch_rng r;
    arch_rng_seed(&r, 1);
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)hp.n_vocab);
        tg[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)hp.n_vocab);
    }
    /* warm-up step, then timed steps (forward + backward; AdamW is a few ms) */
    double tf = 0, tb = 0, cpu = 0;
    for (int s = 0; s <= steps; s++) {
        double c0 = cpu_now();
        train_net_f_zero_grad(n);
        double t0 = now();
        train_net_f_forward(n, in, tg, B, T, 1, 0.1f, &r, NULL);
        double t1 = now();
        train_net_f_backward(n);
        double t2 = now();
        if (s) {
            cpu += cpu_now() - c0;
            tf += t1 - t0;
            tb += t2 - t1;
        }
    }
    /* the machine is shared: take the best of the peak before and after */
    double peak2 = sgemm_peak();
    if (peak2 > peak) peak = peak2;
    double t = (tf + tb) / steps, fl = step_flops(&hp, B, T);
    printf("bench_train: variant %s, d %d, layers %d, heads %d, d_ff %d, L %d, vocab %d, batch %d x %d, "
           "%lld params\n",
           arch_variant_name(hp.variant), hp.n_embd, hp.n_layer, hp.n_head, hp.n_ff, hp.n_ctx, hp.n_vocab, B, T,
           (long long)train_net_f_n_params(n));
    printf("OpenBLAS %s, %d threads\n", openblas_get_corename(), openblas_get_num_threads());
    printf("step %.3f s (forward %.3f, backward %.3f): %.0f tokens/s\n", t, tf / steps, tb / steps, B * T / t);
    printf("cpu time %.3f s/step (all threads; less sensitive to other load than wall time)\n", cpu / steps);
    printf("model FLOPs/step %.1f G -> %.1f GFLOP/s; sgemm peak %.1f GFLOP/s; MFU %.1f%%\n", fl / 1e9, fl / t / 1e9,
           peak, 100 * fl / t / 1e9 / peak);
    free(in);
    free(tg);
    train_net_f_free(n);
    return 0;
}
