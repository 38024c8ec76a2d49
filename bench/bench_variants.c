/*
 * bench_variants.c - inference speed of every attention variant at one model
 * size, in one run (the speed columns of bench/RESULTS.md, issue 6): random
 * weights (arch_init_params) stored as q8_0, built in memory
 * (ckpt_write_buffer -> model_load_buffer), for each context length given:
 *   score     model_score on 16 sequences of L tokens        (tokens/s)
 *   decode1   model_step, 1 sequence, one token per step from position 0
 *             to L-1 (no prefill), feeding back the greedy token
 *   decode16  the same with 16 sequences per step
 * each printed as tokens/s and as a ratio to vanilla at the same context.
 *
 * Usage: bench_variants [--ctx L[,L...]] [--d-model D] [--layers N]
 *          [--heads H] [--d-ff F] [--vocab V] [--rank K] [--seconds S]
 *          [--reps R] [--csv FILE] [--cputime]
 * Defaults are the grid of bench/experiments.sh (keep them in step).
 * The machine is shared and noisy: every measurement is repeated R times,
 * the variants interleaved within a repetition, and the best rate is kept.
 * --cputime measures process CPU time instead of wall time: rates per
 * CPU-second, robust when other jobs load the machine, meaningful only
 * single-threaded (OPENBLAS_NUM_THREADS=1 SYNTH_THREADS=1; idle pool or
 * BLAS threads spinning would count otherwise).
 * --csv writes one line per (context, variant): ctx,variant,params,
 * score_tps,decode1_tps,decode16_tps,score_rel,decode1_rel,decode16_rel.
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

#define MAX_CTX 8
#define N_MEAS 3 /* score, decode1, decode16 */

static int use_cputime;

static double now(void)
{
    struct timespec t;
    clock_gettime(use_cputime ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double min_seconds = 1.0;

static void die(const char *what)
{
    fprintf(stderr, "bench_variants: %s\n", what);
    exit(1);
}

/* factorized_dense needs a * b = L: the largest divisor a <= sqrt(L), as
 * `synth train` chooses by default. */
static void set_fd(arch_hparams *hp)
{
    int a = 1;
    for (int x = 1; (int64_t)x * x <= hp->n_ctx; x++)
        if (hp->n_ctx % x == 0) a = x;
    hp->fd_a = a;
    hp->fd_b = hp->n_ctx / a;
}

/* A q8_0 model with random weights; the GGUF image is leaked on purpose
 * (it must outlive the model, which lives as long as the process). */
static model *build_model(const arch_hparams *hp0)
{
    arch_hparams hp = *hp0;
    set_fd(&hp);
    char err[256];
    if (arch_hparams_validate(&hp, err, sizeof err)) die(err);
    int n = arch_tensors(&hp, NULL, 0);
    arch_tensor *ts = calloc((size_t)n, sizeof *ts);
    float **p = calloc((size_t)n, sizeof *p);
    char **vocab = calloc((size_t)hp.n_vocab, sizeof *vocab);
    if (!ts || !p || !vocab) die("out of memory");
    arch_tensors(&hp, ts, n);
    for (int i = 0; i < n; i++)
        if (!(p[i] = malloc(sizeof(float) * (size_t)ts[i].n_elem))) die("out of memory");
    arch_init_params(&hp, 1234, 0.02f, p);
    for (int i = 0; i < hp.n_vocab; i++) {
        if (!(vocab[i] = calloc(32, 1))) die("out of memory");
        if (i < 256) tok_byte_to_utf8((uint8_t)i, vocab[i]);
        else snprintf(vocab[i], 32, i == hp.n_vocab - 1 ? "<|endoftext|>" : "<tok%d>", i);
    }
    ckpt_desc d = {.hp = &hp, .name = "bench", .vocab = (const char *const *)vocab, .n_vocab = hp.n_vocab,
                   .eos_id = hp.n_vocab - 1, .tensors = (const float *const *)p, .type = QUANT_Q8_0};
    void *buf = NULL;
    size_t size = 0;
    model *m = NULL;
    if (ckpt_write_buffer(&d, &buf, &size, err, sizeof err) != 0 || model_load_buffer(buf, size, &m, err, sizeof err) != 0)
        die(err);
    for (int i = 0; i < n; i++) free(p[i]);
    for (int i = 0; i < hp.n_vocab; i++) free(vocab[i]);
    free(p);
    free(vocab);
    free(ts);
    return m;
}

static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* model_score on n_seq sequences of L tokens: tokens/s. */
static double bench_score(model *m, int n_seq)
{
    const arch_hparams *hp = model_hparams(m);
    const int L = hp->n_ctx;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_seq * (L + 1));
    const int32_t **tp = malloc(sizeof *tp * (size_t)n_seq), **gp = malloc(sizeof *gp * (size_t)n_seq);
    int *nt = malloc(sizeof(int) * (size_t)n_seq);
    float *lp = malloc(sizeof(float) * (size_t)n_seq * L);
    if (!tok || !tp || !gp || !nt || !lp) die("out of memory");
    uint64_t x = 42;
    for (int i = 0; i < n_seq * (L + 1); i++) tok[i] = (int32_t)(lcg(&x) % (uint64_t)hp->n_vocab);
    for (int q = 0; q < n_seq; q++) {
        tp[q] = tok + (size_t)q * (L + 1);
        gp[q] = tp[q] + 1;
        nt[q] = L;
    }
    if (model_score(m, n_seq, tp, gp, nt, lp, NULL) != 0) die("model_score failed"); /* warm-up */
    int it = 0;
    double t0 = now(), t;
    do {
        if (model_score(m, n_seq, tp, gp, nt, lp, NULL) != 0) die("model_score failed");
        it++;
    } while ((t = now() - t0) < min_seconds);
    free(tok); free(tp); free(gp); free(nt); free(lp);
    return (double)n_seq * L * it / t;
}

/* model_step with n_seq sequences, positions 0..L-1 each: tokens/s. */
static double bench_decode(model *m, int n_seq)
{
    const arch_hparams *hp = model_hparams(m);
    const int L = hp->n_ctx, V = hp->n_vocab;
    model_cache *c = model_cache_create(m, n_seq);
    model_seq *s = calloc((size_t)n_seq, sizeof *s);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_seq);
    float *lg = malloc(sizeof(float) * (size_t)n_seq * V);
    if (!c || !s || !tok || !lg) die("out of memory");
    long tokens = 0;
    double t0 = now(), t;
    do {
        for (int q = 0; q < n_seq; q++) {
            model_cache_reset(c, q);
            tok[q] = q % V;
        }
        for (int p = 0; p < L; p++) {
            for (int q = 0; q < n_seq; q++) s[q] = (model_seq){q, 1, &tok[q], 0};
            if (model_step(m, c, n_seq, s, lg) != 0) die("model_step failed");
            for (int q = 0; q < n_seq; q++) { /* greedy feedback: a real decode */
                const float *r = lg + (size_t)q * V;
                int a = 0;
                for (int j = 1; j < V; j++)
                    if (r[j] > r[a]) a = j;
                tok[q] = a;
            }
            tokens += n_seq;
        }
    } while ((t = now() - t0) < min_seconds);
    model_cache_free(c);
    free(s); free(tok); free(lg);
    return (double)tokens / t;
}

static void print_load(const char *when)
{
    char buf[128] = "?\n";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) snprintf(buf, sizeof buf, "?\n");
        fclose(f);
    }
    printf("load average at %s: %s", when, buf);
}

static int arg_int(const char *flag, const char *v, int lo, int hi)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "bench_variants: %s: want an integer in %d..%d\n", flag, lo, hi);
        exit(2);
    }
    return (int)x;
}

int main(int argc, char **argv)
{
    arch_hparams hp;
    arch_hparams_default(&hp);
    /* the grid of bench/experiments.sh */
    hp.n_embd = 128;
    hp.n_layer = 4;
    hp.n_head = 4;
    hp.n_ff = 512;
    hp.n_vocab = 8192;
    int ctx[MAX_CTX] = {64, 512}, n_ctx = 2, reps = 3;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: bench_variants [--ctx L[,L...]] [--d-model D] [--layers N] [--heads H] [--d-ff F]\n"
                   "         [--vocab V] [--rank K] [--seconds S] [--reps R] [--csv FILE] [--cputime]\n");
            return 0;
        }
        if (!strcmp(a, "--cputime")) {
            use_cputime = 1;
            continue;
        }
        if (!v) { fprintf(stderr, "bench_variants: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--ctx")) {
            n_ctx = 0;
            for (const char *p = v; *p && n_ctx < MAX_CTX;) {
                char *end;
                long x = strtol(p, &end, 10);
                if (end == p || x < 2 || x > 8192 || (*end && *end != ',')) {
                    fprintf(stderr, "bench_variants: --ctx: want L[,L...], each in 2..8192\n");
                    return 2;
                }
                ctx[n_ctx++] = (int)x;
                p = *end ? end + 1 : end;
            }
        } else if (!strcmp(a, "--d-model")) hp.n_embd = arg_int(a, v, 1, 16384);
        else if (!strcmp(a, "--layers")) hp.n_layer = arg_int(a, v, 1, 256);
        else if (!strcmp(a, "--heads")) hp.n_head = arg_int(a, v, 1, 16384);
        else if (!strcmp(a, "--d-ff")) hp.n_ff = arg_int(a, v, 1, 65536);
        else if (!strcmp(a, "--vocab")) hp.n_vocab = arg_int(a, v, 257, 1 << 20);
        else if (!strcmp(a, "--rank")) hp.fr_rank = arg_int(a, v, 1, 8192);
        else if (!strcmp(a, "--reps")) reps = arg_int(a, v, 1, 100);
        else if (!strcmp(a, "--seconds")) {
            min_seconds = atof(v);
            if (!(min_seconds > 0 && min_seconds < 3600)) { fprintf(stderr, "bench_variants: --seconds: want > 0\n"); return 2; }
        } else if (!strcmp(a, "--csv")) csv_path = v;
        else { fprintf(stderr, "bench_variants: unknown option '%s'\n", a); return 2; }
    }
    FILE *csv = NULL;
    if (csv_path && !(csv = fopen(csv_path, "w"))) { fprintf(stderr, "bench_variants: cannot write %s\n", csv_path); return 1; }
    if (csv) fprintf(csv, "ctx,variant,params,score_tps,decode1_tps,decode16_tps,score_rel,decode1_rel,decode16_rel\n");

    print_load("start");
    printf("bench_variants: q8_0 random weights, d %d, %d layers, %d heads, d_ff %d, vocab %d, rank %d;\n"
           "OpenBLAS %d threads (%s), ops pool %d threads; best of %d runs of >= %.1f s each; timing: %s\n",
           hp.n_embd, hp.n_layer, hp.n_head, hp.n_ff, hp.n_vocab, hp.fr_rank, openblas_get_num_threads(),
           openblas_get_corename(), ops_n_threads(), reps, min_seconds,
           use_cputime ? "process CPU time (--cputime)" : "wall clock");
    for (int ci = 0; ci < n_ctx; ci++) {
        hp.n_ctx = ctx[ci];
        if (hp.fr_rank > hp.n_ctx) hp.fr_rank = hp.n_ctx;
        model *m[ARCH_N_VARIANTS];
        double best[ARCH_N_VARIANTS][N_MEAS] = {{0}};
        for (int v = 0; v < ARCH_N_VARIANTS; v++) {
            hp.variant = (arch_variant)v;
            m[v] = build_model(&hp);
        }
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < N_MEAS; k++)
                for (int v = 0; v < ARCH_N_VARIANTS; v++) {
                    double t = k == 0 ? bench_score(m[v], 16) : bench_decode(m[v], k == 1 ? 1 : 16);
                    if (t > best[v][k]) best[v][k] = t;
                }
        const double *van = best[ARCH_VANILLA];
        printf("\ncontext %d: tokens/s (ratio to vanilla)\n", hp.n_ctx);
        printf("%-18s %10s | %10s %6s | %10s %6s | %10s %6s\n", "variant", "params", "score b16", "", "decode 1",
               "", "decode 16", "");
        for (int v = 0; v < ARCH_N_VARIANTS; v++) {
            const double *b = best[v];
            printf("%-18s %10lld | %10.0f %5.2fx | %10.0f %5.2fx | %10.0f %5.2fx\n", arch_variant_name((arch_variant)v),
                   (long long)model_n_params(m[v]), b[0], b[0] / van[0], b[1], b[1] / van[1], b[2], b[2] / van[2]);
            if (csv)
                fprintf(csv, "%d,%s,%lld,%.1f,%.1f,%.1f,%.4f,%.4f,%.4f\n", hp.n_ctx, arch_variant_name((arch_variant)v),
                        (long long)model_n_params(m[v]), b[0], b[1], b[2], b[0] / van[0], b[1] / van[1], b[2] / van[2]);
            fflush(stdout);
        }
        for (int v = 0; v < ARCH_N_VARIANTS; v++) model_free(m[v]);
    }
    print_load("end");
    if (csv && fclose(csv)) { fprintf(stderr, "bench_variants: writing %s failed\n", csv_path); return 1; }
    return 0;
}
