/* bench_train.c - training throughput of the default model size and its
 * model FLOP utilization against the OpenBLAS sgemm peak measured in the
 * same run.
 *
 *   bench_train [variant] [batch] [seq] [steps] [threads]
 *               (default random 16 256 4, threads = online CPUs)
 *   FFN=geglu D_FF=672 bench_train ...   (environment: the FFN activation
 *               and width; default gelu 1024)
 *
 * Four configurations side by side in one run: 1 thread (1 shard and 2
 * shards run one after the other), and N threads as one network with
 * OpenBLAS on N threads (the trainer before train_dp.h) and as N
 * data-parallel shards (the trainer now); the ratios to 1 thread are the
 * scaling figures. Then the optimizer's cost per step on 1 thread: AdamW
 * on all parameters, and Muon (--optimizer muon) on the decayed matrices.
 *
 * FLOPs per step = 6 P tokens + attention (forward 2 + backward 4 per
 * multiply-add, the usual 6 x params x tokens):
 *   P = n_layer * (2 d^2 [V, O] + 2 d d_ff [FFN; geglu 3 d d_ff]
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
#include <unistd.h>

#include <cblas.h>

#include "arch.h"
#include "train.h"
#include "train_dp.h"

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
    double per_layer = 2 * d * d + (1 + arch_ffn_up_mult(hp->ffn)) * d * F; /* V, O, FFN */
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

/* Steps of one configuration: shards on `threads` threads (OpenBLAS
 * threads set by train_dp_create; shards 0: one network with OpenBLAS on
 * `threads` threads, the trainer before data parallelism). */
typedef struct {
    double step_s, cpu_s, tok_s;
} run_result;

static int run_config(const arch_hparams *hp, int B, int T, int steps, int shards, int threads, const int32_t *in,
                      const int32_t *tg, run_result *out)
{
    char err[256];
    train_dp *dp = train_dp_create(hp, B, T, shards > 0 ? shards : 1, shards > 0 ? threads : 1, err, sizeof err);
    if (!dp) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (shards == 0) openblas_set_num_threads(threads);
    train_net_f_init_params(train_dp_net(dp), 1, 0.02f);
    arch_rng r;
    arch_rng_seed(&r, 7);
    /* warm-up step, then timed steps (forward + backward + gradient
     * reduction; AdamW is a few ms) */
    double t = 0, cpu = 0;
    for (int s = 0; s <= steps; s++) {
        double c0 = cpu_now(), t0 = now();
        train_dp_step(dp, in, tg, B, T, 0.1f, &r);
        if (s) {
            t += now() - t0;
            cpu += cpu_now() - c0;
        }
    }
    train_dp_free(dp);
    out->step_s = t / steps;
    out->cpu_s = cpu / steps;
    out->tok_s = B * T / out->step_s;
    return 0;
}

/* Best of 3 wall times of one optimizer update on 1 thread: AdamW over
 * all parameters (the default), and --optimizer muon's part: train_muon on
 * each decayed matrix (the trainer spreads those over its shard lanes, so
 * with N shards it costs about 1/N of this). Values are arbitrary: the
 * cost does not depend on them. */
static int bench_optimizer(const arch_hparams *hp, double *adamw_s, double *muon_s, int *n_mat)
{
    const int nt = arch_tensors(hp, NULL, 0);
    arch_tensor *t = malloc((size_t)nt * sizeof *t);
    const int64_t np = arch_n_params(hp);
    float *p = calloc((size_t)np, 4), *g = malloc((size_t)np * 4), *m = calloc((size_t)np, 4), *v = calloc((size_t)np, 4);
    size_t wn = 0;
    if (!t || !p || !g || !m || !v) goto oom;
    arch_tensors(hp, t, nt);
    for (int64_t i = 0; i < np; i++) g[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int i = 0; i < nt; i++)
        if (train_has_decay(t[i].kind) && train_muon_work((int)t[i].shape[0], (int)(t[i].n_elem / t[i].shape[0])) > wn)
            wn = train_muon_work((int)t[i].shape[0], (int)(t[i].n_elem / t[i].shape[0]));
    float *work = malloc((wn ? wn : 1) * 4);
    if (!work) goto oom;
    *adamw_s = *muon_s = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        train_adamw(p, g, m, v, np, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, rep + 1);
        double t1 = now();
        int64_t off = 0;
        *n_mat = 0;
        for (int i = 0; i < nt; off += t[i].n_elem, i++) {
            if (!train_has_decay(t[i].kind)) continue;
            train_muon(p + off, g + off, m + off, (int)t[i].shape[0], (int)(t[i].n_elem / t[i].shape[0]), 1, 1e-3f,
                       0.95f, 0.1f, work);
            ++*n_mat;
        }
        double t2 = now();
        *adamw_s = fmin(*adamw_s, t1 - t0);
        *muon_s = fmin(*muon_s, t2 - t1);
    }
    free(work);
    free(t); free(p); free(g); free(m); free(v);
    return 0;
oom:
    free(t); free(p); free(g); free(m); free(v);
    return -1;
}

int main(int argc, char **argv)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    if (argc > 1 && arch_variant_parse(argv[1], &hp.variant)) {
        fprintf(stderr, "unknown variant %s\n", argv[1]);
        return 2;
    }
    /* FFN=geglu D_FF=672: the GEGLU shape with the default's parameters */
    const char *ffn = getenv("FFN"), *dff = getenv("D_FF");
    if (ffn && arch_ffn_parse(ffn, &hp.ffn)) {
        fprintf(stderr, "unknown FFN %s (gelu or geglu)\n", ffn);
        return 2;
    }
    if (dff) hp.n_ff = atoi(dff);
    char err[128];
    if (arch_hparams_validate(&hp, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int B = argc > 2 ? atoi(argv[2]) : 16, T = argc > 3 ? atoi(argv[3]) : 256, steps = argc > 4 ? atoi(argv[4]) : 4;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 5 ? atoi(argv[5]) : (ncpu > 1 ? (int)(ncpu < TRAIN_DP_MAX_SHARDS ? ncpu : TRAIN_DP_MAX_SHARDS) : 2);
    if (B < 2 || T < 1 || T > hp.n_ctx || steps < 1 || threads < 1 || threads > TRAIN_DP_MAX_SHARDS || B < threads) {
        fprintf(stderr, "bad sizes (batch >= 2 and >= threads, 1 <= threads <= %d)\n", TRAIN_DP_MAX_SHARDS);
        return 2;
    }
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    if (!in || !tg) return 1;
    arch_rng r;
    arch_rng_seed(&r, 1);
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)hp.n_vocab);
        tg[i] = (int32_t)(arch_rng_next(&r) % (uint64_t)hp.n_vocab);
    }
    const double fl = step_flops(&hp, B, T);
    printf("bench_train: variant %s, d %d, layers %d, heads %d, d_ff %d (%s), L %d, vocab %d, batch %d x %d, "
           "%lld params, dropout 0.1, %d timed steps per configuration\n",
           arch_variant_name(hp.variant), hp.n_embd, hp.n_layer, hp.n_head, hp.n_ff, arch_ffn_name(hp.ffn), hp.n_ctx,
           hp.n_vocab, B, T,
           (long long)arch_n_params(&hp), steps);
    printf("model FLOPs/step %.1f G; OpenBLAS %s\n", fl / 1e9, openblas_get_corename());
    /* The configurations, interleaved with the peaks they are judged
     * against (the machine is shared: the best of two peak runs). */
    struct { const char *name; int shards, threads; } cfg[] = {
        {"1 thread, 1 shard", 1, 1},
        {"1 thread, 2 shards (serial)", 2, 1},
        {"threads: one net, BLAS xN", 0, threads},
        {"threads: N shards", threads, threads},
    };
    openblas_set_num_threads(1);
    double peak1 = sgemm_peak();
    openblas_set_num_threads(threads);
    double peakn = sgemm_peak();
    run_result res[4];
    for (int k = 0; k < 4; k++)
        if (run_config(&hp, B, T, steps, cfg[k].shards, cfg[k].threads, in, tg, &res[k])) return 1;
    openblas_set_num_threads(1);
    double p = sgemm_peak();
    if (p > peak1) peak1 = p;
    openblas_set_num_threads(threads);
    p = sgemm_peak();
    if (p > peakn) peakn = p;
    printf("sgemm peak (1024^3, best of 2): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n", peak1, threads, peakn);
    for (int k = 0; k < 4; k++) {
        int nt = cfg[k].threads;
        char name[64];
        if (k < 2) snprintf(name, sizeof name, "%s", cfg[k].name);
        else if (k == 2) snprintf(name, sizeof name, "%d threads: one net, BLAS x%d", nt, nt);
        else snprintf(name, sizeof name, "%d threads: %d shards", nt, nt);
        double gf = fl / res[k].step_s / 1e9, pk = nt > 1 ? peakn : peak1;
        printf("%-29s step %.3f s, cpu %.3f s: %6.0f tokens/s, %5.1f GFLOP/s, MFU %4.1f%% of the %d-thread peak, "
               "%.2fx the 1-thread 1-shard rate\n",
               name, res[k].step_s, res[k].cpu_s, res[k].tok_s, gf, 100 * gf / pk, nt > 1 ? threads : 1,
               res[k].tok_s / res[0].tok_s);
    }
    double adamw_s, muon_s;
    int n_mat;
    openblas_set_num_threads(1);
    if (bench_optimizer(&hp, &adamw_s, &muon_s, &n_mat)) return 1;
    printf("optimizer, 1 thread: AdamW on all parameters %.1f ms; Muon on the %d decayed matrices %.1f ms "
           "(%.0f%% of the 1-thread 1-shard step; with %d threads the trainer splits it %d ways)\n",
           1e3 * adamw_s, n_mat, 1e3 * muon_s, 100 * muon_s / res[0].step_s, threads, threads);
    free(in);
    free(tg);
    return 0;
}
