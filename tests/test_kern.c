/* test_kern.c - the linear-layer and attention kernels of model/kern.h on
 * every CPU level this machine supports, against naive loops:
 *   - the value: a double-precision product with the dequantized weights
 *     (within 1e-4, like test_ops' test_linear);
 *   - the order kern.h promises: a float loop over k from 0, one fmaf per
 *     term on the SIMD levels, a multiply and an add on the scalar level,
 *     must give the same bits (so SIMD levels agree with each other, and a
 *     row's result cannot depend on the batch);
 *   - batch invariance through ops_linear with the pool's threads: every
 *     row computed alone equals the same row in a batch of up to 70;
 *   - packing: partial panels, groups (per-head slices), views, and the
 *     sentinel columns around y that must stay untouched. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "ops.h"
#include "quant.h"
#include "test.h"
#include "test_util.h"


static const uint32_t types[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};

/* acc = x * w + acc the way level l does it */
static float step(kern_level l, float x, float w, float acc)
{
    return l == KERN_SCALAR ? acc + x * w : fmaf(x, w, acc);
}

/* One matrix quantized to `type`, its dequantized copy wd, and ops_mat
 * views of it (packed in groups of group_rows). */
typedef struct {
    uint8_t *wq;
    float *wd;
    ops_mat W;
} qmat;

static int qmat_init(qmat *q, uint32_t type, int rows, int cols, int64_t group_rows)
{
    size_t rb = quant_row_size(type, (uint64_t)cols);
    q->wq = malloc(rb * rows);
    q->wd = malloc(sizeof(float) * rows * cols);
    float *wf = malloc(sizeof(float) * cols);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) wf[k] = tu_frand() * (1.0f + (float)(r % 5));
        quant_quantize_row(type, wf, q->wq + r * rb, cols);
        quant_dequantize_row(type, q->wq + r * rb, q->wd + (size_t)r * cols, cols);
    }
    free(wf);
    if (ops_mat_init(&q->W, q->wq, type, rows, cols) != 0) return -1;
    return ops_mat_pack(&q->W, group_rows);
}

static void qmat_free(qmat *q)
{
    ops_mat_free(&q->W);
    free(q->wq);
    free(q->wd);
}

/* y = x W^T through ops_linear (OPS_ROWWISE, packed) at level l, checked
 * against both references; then each row alone. Returns failures. */
static int check_level(kern_level l, uint32_t type, int n, int rows, int cols)
{
    qmat q;
    if (qmat_init(&q, type, rows, cols, 0) != 0) return 1;
    const int ldx = cols + 3, ldy = rows + 5;
    float *x = malloc(sizeof(float) * n * ldx), *y = malloc(sizeof(float) * n * ldy);
    float *y1 = malloc(sizeof(float) * (rows + 2));
    for (int i = 0; i < n * ldx; i++) x[i] = tu_frand();
    for (int i = 0; i < n * ldy; i++) y[i] = 777.0f;
    ops_linear(n, x, ldx, &q.W, NULL, y + 2, ldy, NULL, OPS_ROWWISE);
    int bad_val = 0, bad_bits = 0, bad_edge = 0, bad_alone = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * ldx, *yi = y + (size_t)i * ldy + 2;
        for (int o = 0; o < rows; o++) {
            double s = 0;
            float acc = 0.0f;
            for (int k = 0; k < cols; k++) {
                s += (double)xi[k] * q.wd[(size_t)o * cols + k];
                acc = step(l, xi[k], q.wd[(size_t)o * cols + k], acc);
            }
            bad_val += fabs(yi[o] - s) > 1e-4 * (1.0 + fabs(s));
            bad_bits += memcmp(&acc, &yi[o], sizeof acc) != 0;
        }
        bad_edge += yi[-1] != 777.0f || yi[-2] != 777.0f || yi[rows] != 777.0f;
        /* the row alone */
        y1[0] = y1[rows + 1] = 555.0f;
        ops_linear(1, xi, ldx, &q.W, NULL, y1 + 1, rows, NULL, OPS_ROWWISE);
        bad_alone += memcmp(y1 + 1, yi, sizeof(float) * rows) != 0 || y1[0] != 555.0f || y1[rows + 1] != 555.0f;
    }
    CHECK_MSG(bad_val == 0 && bad_bits == 0 && bad_edge == 0 && bad_alone == 0,
              "%s %s n=%d %dx%d: %d off the double reference, %d not the promised order, %d sentinels hit, "
              "%d rows differ alone",
              kern_level_name(l), quant_type_name(type), n, rows, cols, bad_val, bad_bits, bad_edge, bad_alone);
    free(x);
    free(y);
    free(y1);
    qmat_free(&q);
    return bad_val + bad_bits + bad_edge + bad_alone;
}

TEST(test_linear_every_level)
{
    /* (n, rows, cols): one and many rows (each side of the fused/tile
     * switch: 4 | 5 on AVX2, 9 | 10 on AVX-512); partial panels and
     * groups; a matrix big enough to be split across the pool's threads */
    const int shapes[][3] = {{1, 40, 64}, {2, 16, 32}, {3, 33, 128}, {4, 50, 64}, {5, 300, 96}, {7, 64, 256},
                             {9, 70, 96}, {10, 40, 64}, {13, 70, 32}, {64, 200, 64}, {65, 17, 96}, {2, 1100, 256},
                             {40, 600, 224}};
    int levels = 0;
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (!kern_level_supported((kern_level)l)) continue;
        levels++;
        CHECK(kern_set_level((kern_level)l) == 0);
        for (int t = 0; t < 4; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_level((kern_level)l, types[t], shapes[s][0], shapes[s][1], shapes[s][2]);
    }
    CHECK(levels >= 1 && kern_level_supported(KERN_SCALAR));
    kern_set_level(kern_best_level());
}

/* The SIMD levels run the same operations in the same order: identical
 * bits on a realistic shape (when the machine has both). */
TEST(test_levels_agree)
{
    if (!kern_level_supported(KERN_AVX2) || !kern_level_supported(KERN_AVX512)) {
        printf("     (skipped: this CPU lacks AVX2 or AVX-512)\n");
        return;
    }
    for (int t = 0; t < 4; t++) {
        qmat q;
        CHECK(qmat_init(&q, types[t], 300, 256, 0) == 0);
        enum { N = 9 };
        float x[N * 256], y2[N * 300], y5[N * 300];
        for (int i = 0; i < N * 256; i++) x[i] = tu_frand();
        kern_set_level(KERN_AVX2);
        ops_linear(N, x, 256, &q.W, NULL, y2, 300, NULL, OPS_ROWWISE);
        kern_set_level(KERN_AVX512);
        ops_linear(N, x, 256, &q.W, NULL, y5, 300, NULL, OPS_ROWWISE);
        CHECK_MSG(memcmp(y2, y5, sizeof y2) == 0, "%s: avx2 and avx512 differ", quant_type_name(types[t]));
        qmat_free(&q);
    }
    kern_set_level(kern_best_level());
}

/* A 3-D tensor [H, L, K] packed with groups of L rows: each head's view is
 * packed (L = 13: groups start mid-panel of an ungrouped packing) and
 * equals the naive product of that head's rows; a view that does not start
 * a group (or a multiple of 16 rows into one) is refused and falls back to
 * the unpacked path, with the same values within rounding. */
TEST(test_groups_and_views)
{
    enum { H = 3, L = 13, K = 64 };
    for (int t = 0; t < 4; t++) {
        qmat q;
        CHECK(qmat_init(&q, types[t], H * L, K, L) == 0);
        CHECK(q.W.pk.data != NULL);
        float x[2 * K], y[2 * L];
        for (int i = 0; i < 2 * K; i++) x[i] = tu_frand();
        for (int h = 0; h < H; h++) {
            for (int nrow = 1; nrow <= L; nrow += 6) {
                ops_mat v = ops_mat_rows(&q.W, (int64_t)h * L, nrow);
                CHECK(v.pk.data != NULL && v.pk_owned == NULL);
                ops_linear(2, x, K, &v, NULL, y, nrow, NULL, OPS_ROWWISE);
                int bad = 0;
                for (int i = 0; i < 2; i++)
                    for (int o = 0; o < nrow; o++) {
                        float acc = 0.0f;
                        for (int k = 0; k < K; k++)
                            acc = step(kern_get_level(), x[i * K + k], q.wd[(size_t)(h * L + o) * K + k], acc);
                        bad += memcmp(&acc, &y[i * nrow + o], sizeof acc) != 0;
                    }
                CHECK_MSG(bad == 0, "%s head %d rows %d: %d outputs differ", quant_type_name(types[t]), h, nrow, bad);
            }
        }
        ops_mat v = ops_mat_rows(&q.W, 5, 4); /* inside a group, not on a panel */
        CHECK(v.pk.data == NULL);
        float *scratch = malloc(sizeof(float) * (ops_linear_scratch(&v, 1) + 1));
        ops_linear(1, x, K, &v, NULL, y, 4, scratch, OPS_ROWWISE);
        free(scratch);
        for (int o = 0; o < 4; o++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)x[k] * q.wd[(size_t)(5 + o) * K + k];
            CHECK_NEAR(y[o], s, 1e-4);
        }
        qmat_free(&q);
    }
    /* packing refuses groups that do not divide the rows, and bad columns */
    float w[6 * 32] = {0};
    ops_mat m;
    CHECK(ops_mat_init(&m, w, QUANT_F32, 6, 32) == 0);
    CHECK(ops_mat_pack(&m, 4) == -1 && m.pk.data == NULL);
    CHECK(ops_mat_pack(&m, 3) == 0 && m.pk.data != NULL);
    CHECK(ops_mat_packed_bytes(&m) == 2 * kern_panel_bytes(QUANT_F32, 32));
    ops_mat_free(&m);
    CHECK(m.pk.data == NULL);
    CHECK(kern_panel_bytes(QUANT_Q8_0, 48) == 0 && kern_panel_bytes(QUANT_F32, 0) == 0 &&
          kern_panel_bytes(77, 32) == 0);
}

/* The attention kernel: y[c] = sum_j A[h(c)][j] V[j, c] in j order with the
 * level's multiply-add, bit for bit, for head widths that are and are not a
 * multiple of the vector width, and several n; over f32 and f16 values. */
TEST(test_wsum_every_level)
{
    /* multi-head (whole vectors per head, or not), one head (dh >= d: the
     * q.k of vanilla parts), full and partial (masked) last chunks */
    const int dims[][2] = {{256, 64}, {128, 32}, {64, 16}, {96, 48}, {36, 12}, {40, 5}, {16, 16},
                           {100, 100}, {37, 256}, {200, 64}, {24, 8}, {129, 129}, {7, 7},
                           {256, 128}, {256, 256}, {192, 96}, {160, 32}};
    float *V = malloc(sizeof(float) * 300 * 260), *A = malloc(sizeof(float) * 8 * 300);
    float *Vh = malloc(sizeof(float) * 300 * 260);
    uint16_t *H = malloc(sizeof(uint16_t) * 300 * 260);
    float y[260], yh[260];
    for (int i = 0; i < 300 * 260; i++) V[i] = tu_frand();
    for (int i = 0; i < 8 * 300; i++) A[i] = tu_frand();
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (!kern_level_supported((kern_level)l)) continue;
        kern_set_level((kern_level)l);
        for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
            const int d = dims[s][0], dh = dims[s][1], ldv = d + 4;
            for (int n = 1; n <= 257; n += 64) {
                y[d] = 999.0f;
                ops_wsum_heads(n, d, dh, A, 300, V, ldv, y);
                int bad = 0;
                for (int c = 0; c < d; c++) {
                    float acc = 0.0f;
                    double ref = 0;
                    for (int j = 0; j < n; j++) {
                        acc = step((kern_level)l, A[(c / dh) * 300 + j], V[(size_t)j * ldv + c], acc);
                        ref += (double)A[(c / dh) * 300 + j] * V[(size_t)j * ldv + c];
                    }
                    bad += memcmp(&acc, &y[c], sizeof acc) != 0 || fabs(ref - y[c]) > 1e-4;
                }
                CHECK_MSG(bad == 0 && y[d] == 999.0f, "%s wsum d=%d dh=%d n=%d: %d columns wrong",
                          kern_level_name((kern_level)l), d, dh, n, bad);
                /* the f16 value cache: halves converted exactly, then the
                 * same operations: the bits of the f32 kernel on the
                 * converted values */
                for (int i = 0; i < n * ldv; i++) {
                    H[i] = quant_f32_to_f16(V[i]);
                    Vh[i] = quant_f16_to_f32(H[i]);
                }
                ops_wsum_heads(n, d, dh, A, 300, Vh, ldv, y);
                yh[d] = 999.0f;
                ops_wsum_heads_f16(n, d, dh, A, 300, H, ldv, yh);
                CHECK_MSG(memcmp(y, yh, sizeof(float) * (size_t)d) == 0 && yh[d] == 999.0f,
                          "%s wsum of halves d=%d dh=%d n=%d differs from the converted floats'",
                          kern_level_name((kern_level)l), d, dh, n);
            }
        }
    }
    kern_set_level(kern_best_level());
    free(V);
    free(Vh);
    free(H);
    free(A);
}

/* Floats to halves for the f16 value cache: every level gives
 * quant_f32_to_f16's bits for every upper half-word of a float (each sign,
 * exponent and top mantissa bits: zeros, subnormals of both widths,
 * overflow to inf, NaNs) with low half-words at and around the rounding
 * boundaries, and a length that leaves a tail past the last vector. */
TEST(test_f16_every_level)
{
    const uint16_t lows[] = {0x0000, 0x0fff, 0x1000, 0x1001, 0x2000, 0x3000, 0x4000, 0x8000, 0xffff};
    const int64_t n = 65536 * 9 - 3;
    float *x = malloc(sizeof(float) * 65536 * 9);
    uint16_t *h = malloc(sizeof(uint16_t) * 65536 * 9);
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (int k = 0; k < 9; k++) {
            uint32_t b = hi << 16 | lows[k];
            memcpy(&x[hi * 9 + k], &b, 4);
        }
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (!kern_level_supported((kern_level)l)) continue;
        kern_set_level((kern_level)l);
        for (int64_t m = 0; m < 8; m++) { /* shorter than one vector: the tail alone */
            uint16_t hs[9] = {0};
            kern_f16()(x + 1000 * m, hs, m);
            for (int64_t i = 0; i < m; i++) CHECK(hs[i] == quant_f32_to_f16(x[1000 * m + i]));
            CHECK(hs[m] == 0);
        }
        h[n] = 0x1234;
        kern_f16()(x, h, n);
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; i++)
            if (h[i] != quant_f32_to_f16(x[i]) && bad++ == 0) first = i;
        CHECK_MSG(bad == 0 && h[n] == 0x1234, "%s: %lld of %lld halves differ (first at %lld)",
                  kern_level_name((kern_level)l), (long long)bad, (long long)n, (long long)first);
    }
    kern_set_level(kern_best_level());
    free(x);
    free(h);
}

/* The q . k kernel over keys in blocks of KERN_KB positions: the level's
 * multiply-add in feature order, bit for bit, for any number of positions
 * (whole and partial blocks, partial last chunks). */
TEST(test_qk_every_level)
{
    enum { NMAX = 80, CMAX = 300 };
    const int nblk = (CMAX + KERN_KB - 1) / KERN_KB;
    float *KB = malloc(sizeof(float) * nblk * NMAX * KERN_KB), q[NMAX], y[CMAX + 1];
    for (int i = 0; i < nblk * NMAX * KERN_KB; i++) KB[i] = tu_frand();
    for (int i = 0; i < NMAX; i++) q[i] = tu_frand();
    const int ns[] = {64, 16, 5, 80, 1};
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (kern_set_level((kern_level)l) != 0) continue;
        for (int in = 0; in < 5; in++)
            for (int ncol = 1; ncol <= CMAX; ncol += 37) {
                const int n = ns[in];
                y[ncol] = 999.0f;
                ops_qk_blocked(n, ncol, q, KB, y);
                int bad = 0;
                for (int j = 0; j < ncol; j++) {
                    float acc = 0.0f;
                    double ref = 0;
                    for (int c = 0; c < n; c++) {
                        float k = KB[(size_t)(j / KERN_KB) * n * KERN_KB + (size_t)c * KERN_KB + j % KERN_KB];
                        acc = step((kern_level)l, q[c], k, acc);
                        ref += (double)q[c] * k;
                    }
                    bad += memcmp(&acc, &y[j], sizeof acc) != 0 || fabs(ref - y[j]) > 1e-4;
                }
                CHECK_MSG(bad == 0 && y[ncol] == 999.0f, "%s qk n=%d ncol=%d: %d wrong",
                          kern_level_name((kern_level)l), n, ncol, bad);
            }
    }
    kern_set_level(kern_best_level());
    free(KB);
}

TEST(test_level_names)
{
    kern_level l;
    for (int i = 0; i < KERN_N_LEVELS; i++) {
        CHECK(kern_level_parse(kern_level_name((kern_level)i), &l) == 0 && l == (kern_level)i);
    }
    CHECK(kern_level_parse("avx1024", &l) == -1 && kern_level_parse(NULL, &l) == -1);
    CHECK(kern_get_level() == kern_best_level());
    CHECK(kern_set_level(KERN_SCALAR) == 0 && kern_get_level() == KERN_SCALAR);
    CHECK(kern_set_level((kern_level)7) == -1 && kern_get_level() == KERN_SCALAR);
    kern_set_level(kern_best_level());
    printf("     best level on this CPU: %s\n", kern_level_name(kern_best_level()));
}

int main(void)
{
    tu_seed(4242); /* the inputs the tests were written with */
    RUN(test_level_names);
    RUN(test_linear_every_level);
    RUN(test_levels_agree);
    RUN(test_groups_and_views);
    RUN(test_wsum_every_level);
    RUN(test_qk_every_level);
    RUN(test_f16_every_level);
    return test_summary();
}
