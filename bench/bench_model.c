/*
 * bench_model.c - throughput of the inference engine on the default model
 * size (arch_hparams_default: d 256, 6 layers, 4 heads, d_ff 1024, L 256,
 * vocab 8192) with random weights stored as q8_0, for the `random` and
 * `vanilla` variants side by side, built in memory (arch_init_params ->
 * ckpt_write_buffer -> model_load_buffer; the vocabulary is the 256 byte
 * tokens, dummy strings "<tokN>" and "<|endoftext|>").
 *
 *   (a) OpenBLAS sgemm peak in this run (all cores), the yardstick;
 *   (b) full-sequence scoring (model_score, 256 tokens per sequence) at
 *       batch 1 and 16: tokens/s and the model FLOP rate as % of the peak;
 *   (c) decoding (model_step, one token per sequence per step) with 1, 4, 16
 *       and 64 concurrent sequences, each decoding from position 0 to L-1
 *       (no prefill): tokens/s averaged over the whole context.
 *
 * Usage: bench_model [seconds per measurement, default 1] [repetitions, default 3]
 * Environment: BENCH_CPUTIME=1 (see now()), SYNTH_THREADS, OPENBLAS_NUM_THREADS.
 * The machine is shared and noisy: every measurement is repeated, random
 * and vanilla alternating, and the best (highest) rate of each is reported.
 * Numbers are only comparable within one run.
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "ckpt.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "tok.h"

int openblas_get_num_threads(void);

/* BENCH_CPUTIME=1: measure process CPU time instead of wall time (rates
 * per CPU-second: robust on a busy machine, meaningful only when run
 * single-threaded, SYNTH_THREADS=1 OPENBLAS_NUM_THREADS=1). */
static int use_cputime;

static double now(void)
{
    struct timespec t;
    clock_gettime(use_cputime ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double min_seconds = 1.0;
static int reps = 3;

/* ---- (a) sgemm peak ---- */
static double sgemm_gflops(int M, int N, int K)
{
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K);
    float *C = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 17) * 1e-3f;
    for (size_t i = 0; i < (size_t)N * K; i++) B[i] = (float)(i % 13) * 1e-3f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    int it = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        it++;
    } while ((t = now() - t0) < min_seconds * 0.5);
    free(A);
    free(B);
    free(C);
    return 2.0 * M * N * K * it / t * 1e-9;
}

/* ---- model construction ---- */
static model *build_model(arch_variant v)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    hp.variant = v;
    int n = arch_tensors(&hp, NULL, 0);
    arch_tensor *ts = calloc((size_t)n, sizeof *ts);
    arch_tensors(&hp, ts, n);
    float **p = calloc((size_t)n, sizeof *p);
    for (int i = 0; i < n; i++) p[i] = malloc(sizeof(float) * (size_t)ts[i].n_elem);
    arch_init_params(&hp, 1234, 1.0f, p);
    char **vocab = calloc((size_t)hp.n_vocab, sizeof *vocab);
    for (int i = 0; i < hp.n_vocab; i++) {
        vocab[i] = calloc(32, 1);
        if (i < 256) tok_byte_to_utf8((uint8_t)i, vocab[i]);
        else snprintf(vocab[i], 32, i == hp.n_vocab - 1 ? "<|endoftext|>" : "<tok%d>", i);
    }
    ckpt_desc d = {.hp = &hp, .name = "bench", .vocab = (const char *const *)vocab, .n_vocab = hp.n_vocab,
                   .eos_id = hp.n_vocab - 1, .tensors = (const float *const *)p, .type = QUANT_Q8_0};
    void *buf = NULL;
    size_t size = 0;
    char err[256];
    model *m = NULL;
    if (ckpt_write_buffer(&d, &buf, &size, err, sizeof err) != 0 ||
        model_load_buffer(buf, size, &m, err, sizeof err) != 0) {
        fprintf(stderr, "bench_model: %s\n", err);
        exit(1);
    }
    /* buf must outlive the model: leaked on purpose (process lifetime) */
    for (int i = 0; i < n; i++) free(p[i]);
    for (int i = 0; i < hp.n_vocab; i++) free(vocab[i]);
    free(p);
    free(vocab);
    free(ts);
    return m;
}

/* Model FLOPs (multiply-add = 2) of scoring n_seq sequences of n tokens:
 *   matmuls per token: 2 * (n_layer * (d*d * (2 + 2*vanilla) + 2*d*F) + d*V)
 *     (V and O projections, Q and K for vanilla, FFN up/down, the tied
 *     vocabulary projection; biases, norms, GELU, softmax not counted)
 *   attention per layer, position p (sees p+1 positions):
 *     static  2 * (p+1) * d          (P row . V)
 *     vanilla 2 * 2 * (p+1) * d      (q.k for every head, then a . V)
 *   so attention for a sequence is 2 * n_layer * d * c * n(n+1)/2, c = 1 or 2.
 * Only the causal half counts (the static GEMM also multiplies the zeros
 * above the diagonal of P; that work is not counted as useful). */
static double model_flops(const arch_hparams *hp, int n_seq, int n)
{
    const double d = hp->n_embd, F = hp->n_ff, V = hp->n_vocab, nl = hp->n_layer;
    const int van = arch_has_vanilla(hp->variant);
    double per_tok = 2.0 * (nl * (d * d * (2 + 2 * van) + 2 * d * F) + d * V);
    double att = 2.0 * nl * d * (van ? 2 : 1) * (double)n * (n + 1) / 2.0;
    return n_seq * (per_tok * n + att);
}

/* ---- (b) scoring ---- */
static double bench_score(model *m, int n_seq, double *flops_rate)
{
    const arch_hparams *hp = model_hparams(m);
    const int L = hp->n_ctx;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_seq * (L + 1));
    const int32_t **tp = malloc(sizeof *tp * (size_t)n_seq), **gp = malloc(sizeof *gp * (size_t)n_seq);
    int *nt = malloc(sizeof(int) * (size_t)n_seq);
    float *lp = malloc(sizeof(float) * (size_t)n_seq * L);
    uint8_t *gr = malloc((size_t)n_seq * L);
    uint64_t x = 42;
    for (int i = 0; i < n_seq * (L + 1); i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((x >> 33) % (uint64_t)hp->n_vocab);
    }
    for (int q = 0; q < n_seq; q++) {
        tp[q] = tok + (size_t)q * (L + 1);
        gp[q] = tp[q] + 1;
        nt[q] = L;
    }
    model_score(m, n_seq, tp, gp, nt, lp, gr); /* warm-up: allocations */
    int it = 0;
    double t0 = now(), t;
    do {
        if (model_score(m, n_seq, tp, gp, nt, lp, gr) != 0) { fprintf(stderr, "model_score failed\n"); exit(1); }
        it++;
    } while ((t = now() - t0) < min_seconds);
    *flops_rate = model_flops(hp, n_seq, L) * it / t;
    free(tok); free(tp); free(gp); free(nt); free(lp); free(gr);
    return (double)n_seq * L * it / t;
}

/* ---- (c) decoding ---- */
static double bench_decode(model *m, int n_seq)
{
    const arch_hparams *hp = model_hparams(m);
    const int L = hp->n_ctx, V = hp->n_vocab;
    model_cache *c = model_cache_create(m, n_seq);
    model_seq *s = calloc((size_t)n_seq, sizeof *s);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_seq);
    float *lg = malloc(sizeof(float) * (size_t)n_seq * V);
    if (!c || !s || !tok || !lg) { fprintf(stderr, "bench_model: out of memory\n"); exit(1); }
    long tokens = 0;
    double t0 = now(), t;
    int rounds = 0;
    do {
        for (int q = 0; q < n_seq; q++) {
            model_cache_reset(c, q);
            tok[q] = q % V;
        }
        for (int p = 0; p < L; p++) {
            for (int q = 0; q < n_seq; q++) s[q] = (model_seq){q, 1, &tok[q], 0};
            if (model_step(m, c, n_seq, s, lg) != 0) { fprintf(stderr, "model_step failed\n"); exit(1); }
            /* feed back the greedy token so the work is a real decode */
            for (int q = 0; q < n_seq; q++) {
                const float *r = lg + (size_t)q * V;
                int a = 0;
                float best = r[0];
                for (int j = 1; j < V; j++)
                    if (r[j] > best) best = r[j], a = j;
                tok[q] = a;
            }
            tokens += n_seq;
        }
        rounds++;
    } while ((t = now() - t0) < min_seconds);
    model_cache_free(c);
    free(s); free(tok); free(lg);
    return (double)tokens / t;
}

static double maxd(double a, double b) { return a > b ? a : b; }

/* The machine is shared: show how busy it was. */
static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) snprintf(buf, sizeof buf, "?\n");
        fclose(f);
    }
    printf("load average at %s: %s", when, buf);
}

int main(int argc, char **argv)
{
    if (argc > 1) min_seconds = atof(argv[1]);
    if (argc > 2) reps = atoi(argv[2]);
    if (!(min_seconds > 0)) min_seconds = 1.0;
    if (reps < 1) reps = 1;
    use_cputime = getenv("BENCH_CPUTIME") && atoi(getenv("BENCH_CPUTIME")) > 0;
    print_load("start");
    printf("bench_model: q8_0, d 256, 6 layers, 4 heads, d_ff 1024, L 256, vocab 8192; OpenBLAS %d threads (%s);\n"
           "best of %d runs of >= %.1f s each\n",
           openblas_get_num_threads(), openblas_get_corename(), reps, min_seconds);
    printf("ops pool threads %d; timing: %s\n", ops_n_threads(),
           use_cputime ? "process CPU time (BENCH_CPUTIME=1)" : "wall clock");

    double p1 = 0, p2 = 0;
    for (int r = 0; r < reps; r++) {
        p1 = maxd(p1, sgemm_gflops(1024, 1024, 1024));
        p2 = maxd(p2, sgemm_gflops(2048, 2048, 256));
    }
    double peak = maxd(p1, p2);
    printf("\n(a) sgemm peak: 1024x1024x1024 %.1f GFLOP/s, 2048x2048x256 %.1f GFLOP/s -> peak %.1f GFLOP/s\n",
           p1, p2, peak);

    const arch_variant vs[2] = {ARCH_RANDOM, ARCH_VANILLA};
    model *m[2];
    for (int i = 0; i < 2; i++) m[i] = build_model(vs[i]);

    printf("\n(b) scoring (model_score), 256 tokens per sequence\n");
    printf("%-8s | %-12s %8s %7s | %-12s %8s %7s | %s\n", "batch", "random tok/s", "GFLOP/s", "%peak",
           "vanilla tok/s", "GFLOP/s", "%peak", "random/vanilla");
    const int sb[2] = {1, 16};
    for (int b = 0; b < 2; b++) {
        double tps[2] = {0, 0}, fr[2] = {0, 0};
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < 2; i++) {
                double f, t = bench_score(m[i], sb[b], &f);
                if (t > tps[i]) tps[i] = t, fr[i] = f;
            }
        printf("%-8d | %12.0f %8.1f %6.1f%% | %12.0f %8.1f %6.1f%% | %.2fx\n", sb[b], tps[0], fr[0] * 1e-9,
               100 * fr[0] * 1e-9 / peak, tps[1], fr[1] * 1e-9, 100 * fr[1] * 1e-9 / peak, tps[0] / tps[1]);
    }

    printf("\n(c) decoding (model_step, 1 token/seq/step, positions 0..255, no prefill)\n");
    printf("%-8s | %12s %8s | %12s %8s | %s\n", "seqs", "random tok/s", "x 1seq", "vanilla tok/s", "x 1seq",
           "random/vanilla");
    const int db[4] = {1, 4, 16, 64};
    double base[2] = {0, 0};
    for (int b = 0; b < 4; b++) {
        double tps[2] = {0, 0};
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < 2; i++) tps[i] = maxd(tps[i], bench_decode(m[i], db[b]));
        if (b == 0) base[0] = tps[0], base[1] = tps[1];
        printf("%-8d | %12.0f %7.1fx | %12.0f %7.1fx | %.2fx\n", db[b], tps[0], tps[0] / base[0], tps[1],
               tps[1] / base[1], tps[0] / tps[1]);
    }
    for (int i = 0; i < 2; i++) model_free(m[i]);
    print_load("end");
    return 0;
}
