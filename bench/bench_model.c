/*
 * bench_model.c - throughput of the inference engine on the default model
 * size (arch_hparams_default: d 256, 6 layers, 4 heads, d_ff 1024, L 256,
 * vocab 8192) and one about 5x larger, with random weights stored as q8_0, for the `random` and
 * `vanilla` variants side by side, built in memory (arch_init_params ->
 * ckpt_write_buffer -> model_load_buffer; the vocabulary is the 256 byte
 * tokens, dummy strings "<tokN>" and "<|endoftext|>").
 *
 *   (a) OpenBLAS sgemm peak in this run (all cores), the yardstick;
 *   (b) full-sequence scoring (model_score, 256 tokens per sequence) at
 *       batch 1 and 16: tokens/s and the model FLOP rate as % of the peak;
 *   (c) decoding (model_step, one token per sequence per step) with 1, 4, 16
 *       and 64 concurrent sequences, each decoding from position 0 to L-1
 *       (no prefill): tokens/s averaged over the whole context, with the
 *       engine's default f16 value cache, and (last column) an f32 one.
 *
 *   The same tables for a model about 5x larger (d 512, 8 layers, 8 heads,
 *   d_ff 2048: 27M weights, 29 MB in q8_0, far beyond the L2 cache), so
 *   the kernels' behaviour beyond the shipped size is known.
 *
 * Usage: bench_model [seconds per measurement, default 1] [repetitions, default 3]
 *                    [default|large|both (default: both)]
 * Environment: BENCH_CPUTIME=1 (see bench_common.inc), SYNTH_THREADS (the
 * thread budget of the engine and OpenBLAS), SYNTH_CPU (kernel level).
 * The header line reports the sgemm and int8 dot-product peaks measured in
 * the same run, and the kernel level in force.
 * The machine is shared and noisy: every measurement is repeated, random
 * and vanilla alternating, and the best (highest) rate of each is reported.
 * Numbers are only comparable within one run.
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

#define BENCH_PROG "bench_model"
#include "bench_common.inc"

int openblas_get_num_threads(void);

static int reps = 3;

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

static double maxd(double a, double b) { return a > b ? a : b; }

/* The activation mode of the run (SYNTH_ACT, default q8) and the other one,
 * measured beside it in the same repetitions: on = 1 switches to the other,
 * 0 back. */
static char run_act[8];
static void bench_other_act(int on)
{
    const char *other = strcmp(run_act, "q8") == 0 ? "f32" : "q8";
    model_set_act(on ? other : run_act, NULL, 0);
}

/* (b) and (c) for one model size */
static void run_size(const char *what, const arch_hparams *base, double peak)
{
    const arch_variant vs[2] = {ARCH_RANDOM, ARCH_VANILLA};
    model *m[2];
    for (int i = 0; i < 2; i++) {
        arch_hparams hp = *base;
        hp.variant = vs[i];
        m[i] = bench_build_model(&hp, 1.0f);
    }
    printf("\n== %s: d %d, %d layers, %d heads, d_ff %d, L %d, vocab %d, q8_0\n", what, base->n_embd,
           base->n_layer, base->n_head, base->n_ff, base->n_ctx, base->n_vocab);

    printf("\n(b) scoring (model_score), %d tokens per sequence\n", base->n_ctx);
    printf("%-8s | %-12s %8s %7s | %-12s %8s %7s | %-14s | %s\n", "batch", "random tok/s", "GFLOP/s", "%peak",
           "vanilla tok/s", "GFLOP/s", "%peak", "random/vanilla", "random, other activations: tok/s");
    const int sb[2] = {1, 16};
    for (int b = 0; b < 2; b++) {
        double tps[3] = {0, 0, 0}, fr[2] = {0, 0};
        for (int r = 0; r < reps; r++) {
            for (int i = 0; i < 2; i++) {
                double t = bench_score(m[i], sb[b], 1);
                double f = t * model_flops(model_hparams(m[i]), 1, model_hparams(m[i])->n_ctx) / model_hparams(m[i])->n_ctx;
                if (t > tps[i]) tps[i] = t, fr[i] = f;
            }
            bench_other_act(1);
            tps[2] = maxd(tps[2], bench_score(m[0], sb[b], 1));
            bench_other_act(0);
        }
        printf("%-8d | %12.0f %8.1f %6.1f%% | %12.0f %8.1f %6.1f%% | %13.2fx | %8.0f (%.2fx)\n", sb[b], tps[0], fr[0] * 1e-9,
               100 * fr[0] * 1e-9 / peak, tps[1], fr[1] * 1e-9, 100 * fr[1] * 1e-9 / peak, tps[0] / tps[1], tps[2],
               tps[0] / tps[2]);
    }

    printf("\n(c) decoding (model_step, 1 token/seq/step, positions 0..%d, no prefill)\n", base->n_ctx - 1);
    printf("%-8s | %12s %8s %8s | %12s %8s | %-14s | %-38s | %s\n", "seqs", "random tok/s", "x 1seq", "GFLOP/s",
           "vanilla tok/s", "x 1seq", "random/vanilla", "random, f32 value cache: tok/s, x 1seq",
           "random, other activations: tok/s, x 1seq");
    const int db[4] = {1, 4, 16, 64};
    double base_tps[4] = {0, 0, 0, 0};
    for (int b = 0; b < 4; b++) {
        double tps[4] = {0, 0, 0, 0};
        for (int r = 0; r < reps; r++) {
            for (int i = 0; i < 2; i++) tps[i] = maxd(tps[i], bench_decode(m[i], db[b]));
            tps[2] = maxd(tps[2], bench_decode_typed(m[0], db[b], MODEL_CACHE_F32));
            bench_other_act(1);
            tps[3] = maxd(tps[3], bench_decode(m[0], db[b]));
            bench_other_act(0);
        }
        if (b == 0) memcpy(base_tps, tps, sizeof tps);
        const arch_hparams *hp = model_hparams(m[0]);
        double g = tps[0] * model_flops(hp, 1, hp->n_ctx) / hp->n_ctx * 1e-9;
        printf("%-8d | %12.0f %7.2fx %8.1f | %12.0f %7.2fx | %13.2fx | %8.0f %7.2fx %21s | %8.0f %7.2fx\n", db[b],
               tps[0], tps[0] / base_tps[0], g, tps[1], tps[1] / base_tps[1], tps[0] / tps[1], tps[2],
               tps[2] / base_tps[2], "", tps[3], tps[3] / base_tps[3]);
    }
    for (int i = 0; i < 2; i++) model_free(m[i]);
}

int main(int argc, char **argv)
{
    if (argc > 1) bench_min_seconds = atof(argv[1]);
    if (argc > 2) reps = atoi(argv[2]);
    const char *which = argc > 3 ? argv[3] : "both";
    if (!(bench_min_seconds > 0)) bench_min_seconds = 1.0;
    if (reps < 1) reps = 1;
    if (strcmp(which, "default") && strcmp(which, "large") && strcmp(which, "both"))
        bench_die("the third argument is default, large or both");
    bench_cputime = getenv("BENCH_CPUTIME") && atoi(getenv("BENCH_CPUTIME")) > 0;
    char err[256];
    if (getenv("SYNTH_CPU") && model_set_cpu(getenv("SYNTH_CPU"), err, sizeof err) != 0) bench_die(err);
    if (getenv("SYNTH_ACT") && model_set_act(getenv("SYNTH_ACT"), err, sizeof err) != 0) bench_die(err);
    snprintf(run_act, sizeof run_act, "%s", model_act());
    model_set_threads(0); /* one budget: SYNTH_THREADS, else all cores, for the pool and OpenBLAS */
    bench_print_load("start");
    printf("bench_model: q8_0 models with random weights; threads %d (engine pool and OpenBLAS %s);\n"
           "kernels %s (best on this CPU: %s), activations %s (the last columns: %s); best of %d runs of >= %.1f s "
           "each; timing: %s\n",
           model_threads(), openblas_get_corename(), model_cpu(), model_cpu_best(), run_act,
           strcmp(run_act, "q8") == 0 ? "f32" : "q8", reps, bench_min_seconds,
           bench_cputime ? "process CPU time (BENCH_CPUTIME=1)" : "wall clock");

    double p1 = 0, p2 = 0, pi = 0;
    for (int r = 0; r < reps; r++) {
        p1 = maxd(p1, bench_sgemm_gflops(1024, 1024, 1024));
        p2 = maxd(p2, bench_sgemm_gflops(2048, 2048, 256));
        pi = maxd(pi, bench_int8_gops());
    }
    double peak = maxd(p1, p2);
    printf("\n(a) sgemm peak: 1024x1024x1024 %.1f GFLOP/s, 2048x2048x256 %.1f GFLOP/s -> peak %.1f GFLOP/s;\n"
           "    int8 dot-product peak (vpdpbusd, all threads): %s%.1f GOP/s\n",
           p1, p2, peak, pi > 0 ? "" : "not available ", pi);

    arch_hparams hp;
    arch_hparams_default(&hp);
    if (strcmp(which, "large") != 0) run_size("default size (the shipped model's)", &hp, peak);
    if (strcmp(which, "default") != 0) {
        hp.n_embd = 512, hp.n_layer = 8, hp.n_head = 8, hp.n_ff = 2048;
        run_size("about 5x larger", &hp, peak);
    }
    bench_print_load("end");
    return 0;
}
