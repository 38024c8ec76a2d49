/*
 * bench_kernels.c - the linear-layer kernels alone (model/kern.h through
 * ops_linear), on the shapes of the shipped model (d 256, d_ff 1024, vocab
 * 8192) and of one about 5x larger (d 512, d_ff 2048), for 1..64 rows:
 *
 *   (a) the roofline of this run: OpenBLAS sgemm peak and the int8
 *       dot-product peak (AVX-512 VNNI vpdpbusd on registers);
 *   (b) GFLOP/s of y[n, rows] = x[n, cols] W^T for q8_0 weights:
 *         packed  the batch-invariant packed kernels (design b: weights
 *                 converted to f32 once per tile, register-blocked fma),
 *                 at every CPU level this machine has;
 *         int8    design (a), a prototype kept here only to measure it:
 *                 activations quantized per 32-block to int8, exact
 *                 integer dot products with vpdpbusd, blocks summed in
 *                 float in a fixed order (as llama.cpp does for q8_0); its
 *                 error against the f32 result is printed too;
 *         sgemm   dequantize a block of rows + OpenBLAS sgemm (the
 *                 non-invariant path scoring uses for big batches);
 *   (c) the packed kernels on f32, f16 and q4_0 weights at 1 and 64 rows.
 *
 * Usage: bench_kernels [seconds per measurement, default 0.3]
 * One thread (model_set_threads(1): the engine pool and OpenBLAS). Numbers are comparable only within one run.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "ckpt.h"
#include "kern.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "tok.h"

#define BENCH_PROG "bench_kernels"
#include "bench_common.inc"

static uint64_t rs = 99;
static float frand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* ---- design (a): int8 activations x q8_0 weights with VNNI (prototype) ----
 * Weights per panel of 16 outputs and 32-block b: int8 w[8][16][4] (k quad,
 * output, k within the quad: vpdpbusd's layout), f32 d[16], and
 * 128 * sum_k w (vpdpbusd multiplies unsigned by signed, so activations are
 * stored as q + 128 and the offset is taken back out exactly). */
#if defined(__x86_64__)
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#include <immintrin.h>

typedef struct {
    int64_t rows, cols, np;
    int8_t *w;    /* [np][nb][8][16][4] */
    float *d;     /* [np][nb][16] */
    int32_t *s;   /* [np][nb][16] 128 * sum of the block's weights */
} i8mat;

static void i8_pack(i8mat *m, const uint8_t *q8, int64_t rows, int64_t cols)
{
    const int64_t nb = cols / 32, np = (rows + 15) / 16;
    m->rows = rows, m->cols = cols, m->np = np;
    m->w = calloc((size_t)(np * nb * 512), 1);
    m->d = calloc((size_t)(np * nb * 16), sizeof(float));
    m->s = calloc((size_t)(np * nb * 16), sizeof(int32_t));
    for (int64_t o = 0; o < rows; o++)
        for (int64_t b = 0; b < nb; b++) {
            quant_block_q8_0 blk;
            memcpy(&blk, q8 + ((size_t)o * nb + b) * sizeof blk, sizeof blk);
            int64_t p = o / 16, l = o % 16, base = (p * nb + b);
            m->d[base * 16 + l] = quant_f16_to_f32(blk.d);
            int32_t sum = 0;
            for (int k = 0; k < 32; k++) {
                m->w[base * 512 + (k / 4) * 64 + l * 4 + k % 4] = blk.qs[k];
                sum += blk.qs[k];
            }
            m->s[base * 16 + l] = 128 * sum;
        }
}

/* x [n, cols] -> u8 (q + 128) [n, cols] and scales [n, nb] */
static void i8_quant_rows(int n, const float *x, int64_t cols, uint8_t *xq, float *dx)
{
    const int64_t nb = cols / 32;
    for (int r = 0; r < n; r++)
        for (int64_t b = 0; b < nb; b++) {
            const float *v = x + (size_t)r * cols + b * 32;
            float mx = 0;
            for (int k = 0; k < 32; k++) mx = fabsf(v[k]) > mx ? fabsf(v[k]) : mx;
            float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
            dx[r * nb + b] = d;
            for (int k = 0; k < 32; k++) xq[(size_t)r * cols + b * 32 + k] = (uint8_t)(lrintf(v[k] * id) + 128);
        }
}

/* R rows x 4 panels (R <= 3: 12 int + 12 float accumulators) */
static inline __attribute__((always_inline)) VNNI void i8_tile(int R, const i8mat *m, int64_t p0, const uint8_t *xq,
                                                               const float *dx, float *y, int ldy)
{
    const int64_t nb = m->cols / 32;
    __m512 f[3][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < 4; p++) f[r][p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i a[3][4];
        for (int r = 0; r < R; r++)
            for (int p = 0; p < 4; p++) a[r][p] = _mm512_setzero_si512();
        for (int qd = 0; qd < 8; qd++) {
            __m512i w[4];
            for (int p = 0; p < 4; p++) w[p] = _mm512_loadu_si512(m->w + ((p0 + p) * nb + b) * 512 + qd * 64);
            for (int r = 0; r < R; r++) {
                int32_t xv;
                memcpy(&xv, xq + (size_t)r * m->cols + b * 32 + qd * 4, 4);
                __m512i xb = _mm512_set1_epi32(xv);
                for (int p = 0; p < 4; p++) a[r][p] = _mm512_dpbusd_epi32(a[r][p], xb, w[p]);
            }
        }
        for (int p = 0; p < 4; p++) {
            const int64_t base = ((p0 + p) * nb + b) * 16;
            __m512i s = _mm512_loadu_si512(m->s + base);
            __m512 d = _mm512_loadu_ps(m->d + base);
            for (int r = 0; r < R; r++)
                f[r][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a[r][p], s)),
                                          _mm512_mul_ps(d, _mm512_set1_ps(dx[r * nb + b])), f[r][p]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < 4; p++) _mm512_storeu_ps(y + (size_t)r * ldy + p * 16, f[r][p]);
}

/* y [n, rows] (rows a multiple of 64 here), activations quantized inside */
static VNNI void i8_linear(int n, const float *x, const i8mat *m, uint8_t *xq, float *dx, float *y)
{
    i8_quant_rows(n, x, m->cols, xq, dx);
    const int64_t nb = m->cols / 32;
    for (int64_t p0 = 0; p0 < m->np; p0 += 4)
        for (int r0 = 0; r0 < n; r0 += 3) {
            const uint8_t *xr = xq + (size_t)r0 * m->cols;
            const float *dr = dx + r0 * nb;
            float *yr = y + (size_t)r0 * m->rows + p0 * 16;
            switch (n - r0 < 3 ? n - r0 : 3) {
            case 1: i8_tile(1, m, p0, xr, dr, yr, (int)m->rows); break;
            case 2: i8_tile(2, m, p0, xr, dr, yr, (int)m->rows); break;
            default: i8_tile(3, m, p0, xr, dr, yr, (int)m->rows); break;
            }
        }
}

static int have_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}
#else
static int have_vnni(void) { return 0; }
#endif

/* ---- measurements ---- */

typedef struct {
    uint32_t type;
    int64_t rows, cols;
    uint8_t *wq;
    ops_mat packed, plain;
} wmat;

static void wmat_init(wmat *w, uint32_t type, int64_t rows, int64_t cols)
{
    size_t rb = quant_row_size(type, (uint64_t)cols);
    float *f = malloc(sizeof(float) * (size_t)cols);
    w->type = type, w->rows = rows, w->cols = cols;
    w->wq = malloc(rb * (size_t)rows);
    if (!f || !w->wq) bench_die("out of memory");
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) f[k] = frand() * 0.05f;
        quant_quantize_row(type, f, w->wq + rb * (size_t)r, cols);
    }
    free(f);
    if (ops_mat_init(&w->plain, w->wq, type, rows, cols) != 0) bench_die("ops_mat_init");
    w->packed = w->plain;
    if (ops_mat_pack(&w->packed, 0) != 0) bench_die("ops_mat_pack");
}

static void wmat_free(wmat *w)
{
    ops_mat_free(&w->packed);
    free(w->wq);
}

enum { M_PACKED, M_SGEMM, M_INT8 };

/* GFLOP/s of one method on n rows, repeated for the minimum time */
static double measure(int method, const wmat *w, int n, const float *x, float *y, float *scratch, const void *i8,
                      uint8_t *xq, float *dx)
{
    long it = 0;
    double t0 = bench_now(), t;
    do {
        for (int k = 0; k < 4; k++) {
            if (method == M_PACKED) ops_linear(n, x, (int)w->cols, &w->packed, NULL, y, (int)w->rows, NULL, OPS_ROWWISE);
#if defined(__x86_64__)
            else if (method == M_INT8) i8_linear(n, x, i8, xq, dx, y);
#endif
            else ops_linear(n, x, (int)w->cols, &w->plain, NULL, y, (int)w->rows, scratch, 0);
        }
        it += 4;
    } while ((t = bench_now() - t0) < bench_min_seconds);
    (void)i8, (void)xq, (void)dx;
    return 2.0 * n * w->rows * w->cols * it / t * 1e-9;
}

int main(int argc, char **argv)
{
    model_set_threads(1);
    bench_min_seconds = argc > 1 && atof(argv[1]) > 0 ? atof(argv[1]) : 0.3;
    bench_print_load("start");
    printf("bench_kernels: one thread; OpenBLAS core %s; best kernel level %s; >= %.2f s per figure\n",
           openblas_get_corename(), kern_level_name(kern_best_level()), bench_min_seconds);

    double peak = bench_sgemm_gflops(1024, 1024, 1024), p2 = bench_sgemm_gflops(2048, 2048, 256);
    peak = p2 > peak ? p2 : peak;
    printf("\n(a) sgemm peak %.1f GFLOP/s", peak);
#if defined(__x86_64__)
    if (have_vnni()) printf("; int8 dot peak (vpdpbusd) %.1f GOP/s", bench_int8_gops());
#endif
    printf("\n");

    const int64_t shapes[][2] = {{256, 256}, {1024, 256}, {256, 1024}, {8192, 256},
                                 {512, 512}, {2048, 512}, {512, 2048}, {8192, 512}};
    const int ns[] = {1, 4, 16, 64};
    const int64_t maxc = 2048, maxr = 8192;
    float *x = malloc(sizeof(float) * 64 * maxc), *y = malloc(sizeof(float) * 64 * maxr);
    float *yref = malloc(sizeof(float) * 64 * maxr);
    float *scratch = malloc(sizeof(float) * (1024 * 1024 + 64 * maxc));
    uint8_t *xq = malloc(64 * maxc);
    float *dx = malloc(sizeof(float) * 64 * maxc / 32);
    if (!x || !y || !yref || !scratch || !xq || !dx) bench_die("out of memory");
    for (int i = 0; i < 64 * maxc; i++) x[i] = frand();

    printf("\n(b) q8_0, GFLOP/s (%% of the sgemm peak); int8: design (a) prototype, max |error| / max |y|\n");
    printf("%-11s %3s |", "rows x cols", "n");
    for (int l = 0; l < KERN_N_LEVELS; l++)
        if (kern_level_supported((kern_level)l)) printf(" %14s", kern_level_name((kern_level)l));
    printf(" | %14s %9s | %14s\n", "int8 (a)", "error", "sgemm");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        wmat w;
        wmat_init(&w, QUANT_Q8_0, shapes[s][0], shapes[s][1]);
#if defined(__x86_64__)
        i8mat im;
        if (have_vnni()) i8_pack(&im, w.wq, w.rows, w.cols);
#endif
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            const int n = ns[k];
            printf("%5lldx%-5lld %3d |", (long long)w.rows, (long long)w.cols, n);
            for (int l = 0; l < KERN_N_LEVELS; l++) {
                if (kern_set_level((kern_level)l) != 0) continue;
                double g = measure(M_PACKED, &w, n, x, y, scratch, NULL, NULL, NULL);
                printf(" %7.1f (%3.0f%%)", g, 100 * g / peak);
            }
            kern_set_level(kern_best_level());
#if defined(__x86_64__)
            if (have_vnni()) {
                double g = measure(M_INT8, &w, n, x, y, scratch, &im, xq, dx);
                ops_linear(n, x, (int)w.cols, &w.packed, NULL, yref, (int)w.rows, NULL, OPS_ROWWISE);
                i8_linear(n, x, &im, xq, dx, y);
                double e = 0, mx = 0;
                for (int64_t i = 0; i < n * w.rows; i++) {
                    e = fabs(y[i] - yref[i]) > e ? fabs(y[i] - yref[i]) : e;
                    mx = fabs(yref[i]) > mx ? fabs(yref[i]) : mx;
                }
                printf(" | %7.1f (%3.0f%%) %9.1e", g, 100 * g / peak, e / mx);
            } else
#endif
                printf(" | %14s %9s", "-", "-");
            double g = measure(M_SGEMM, &w, n, x, y, scratch, NULL, NULL, NULL);
            printf(" | %7.1f (%3.0f%%)\n", g, 100 * g / peak);
        }
#if defined(__x86_64__)
        if (have_vnni()) free(im.w), free(im.d), free(im.s);
#endif
        wmat_free(&w);
    }

    printf("\n(c) packed kernels at the best level by weight type, GFLOP/s, n = 1 / 64\n");
    const uint32_t types[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};
    printf("%-11s |", "rows x cols");
    for (int t = 0; t < 4; t++) printf(" %15s", quant_type_name(types[t]));
    printf("\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        printf("%5lldx%-5lld |", (long long)shapes[s][0], (long long)shapes[s][1]);
        for (int t = 0; t < 4; t++) {
            wmat w;
            wmat_init(&w, types[t], shapes[s][0], shapes[s][1]);
            double g1 = measure(M_PACKED, &w, 1, x, y, scratch, NULL, NULL, NULL);
            double g64 = measure(M_PACKED, &w, 64, x, y, scratch, NULL, NULL, NULL);
            printf(" %6.1f / %6.1f", g1, g64);
            wmat_free(&w);
        }
        printf("\n");
    }
    free(x), free(y), free(yref), free(scratch), free(xq), free(dx);
    bench_print_load("end");
    return 0;
}
