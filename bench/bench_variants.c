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
#include <pthread.h>
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

#define BENCH_PROG "bench_variants"
#include "bench_common.inc"

int openblas_get_num_threads(void);

#define MAX_CTX 8
#define N_MEAS 3 /* score, decode1, decode16 */

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
            bench_cputime = 1;
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
            bench_min_seconds = atof(v);
            if (!(bench_min_seconds > 0 && bench_min_seconds < 3600)) { fprintf(stderr, "bench_variants: --seconds: want > 0\n"); return 2; }
        } else if (!strcmp(a, "--csv")) csv_path = v;
        else { fprintf(stderr, "bench_variants: unknown option '%s'\n", a); return 2; }
    }
    FILE *csv = NULL;
    if (csv_path && !(csv = fopen(csv_path, "w"))) { fprintf(stderr, "bench_variants: cannot write %s\n", csv_path); return 1; }
    if (csv) fprintf(csv, "ctx,variant,params,score_tps,decode1_tps,decode16_tps,score_rel,decode1_rel,decode16_rel\n");

    bench_print_load("start");
    printf("bench_variants: q8_0 random weights, d %d, %d layers, %d heads, d_ff %d, vocab %d, rank %d;\n"
           "OpenBLAS %d threads (%s), ops pool %d threads; best of %d runs of >= %.1f s each; timing: %s\n",
           hp.n_embd, hp.n_layer, hp.n_head, hp.n_ff, hp.n_vocab, hp.fr_rank, openblas_get_num_threads(),
           openblas_get_corename(), ops_n_threads(), reps, bench_min_seconds,
           bench_cputime ? "process CPU time (--cputime)" : "wall clock");
    printf("sgemm peak in this run: %.1f GFLOP/s (1024^3)\n", bench_sgemm_gflops(1024, 1024, 1024));
    for (int ci = 0; ci < n_ctx; ci++) {
        hp.n_ctx = ctx[ci];
        if (hp.fr_rank > hp.n_ctx) hp.fr_rank = hp.n_ctx;
        model *m[ARCH_N_VARIANTS];
        double best[ARCH_N_VARIANTS][N_MEAS] = {{0}};
        for (int v = 0; v < ARCH_N_VARIANTS; v++) {
            hp.variant = (arch_variant)v;
            m[v] = bench_build_model(&hp, 0.02f);
        }
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < N_MEAS; k++)
                for (int v = 0; v < ARCH_N_VARIANTS; v++) {
                    double t = k == 0 ? bench_score(m[v], 16, 0) : bench_decode(m[v], k == 1 ? 1 : 16);
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
    bench_print_load("end");
    if (csv && fclose(csv)) { fprintf(stderr, "bench_variants: writing %s failed\n", csv_path); return 1; }
    return 0;
}
