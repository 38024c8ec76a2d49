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
    kern_set_act(KERN_ACT_F32); /* q8_0 on f32 activations here; the int8 mode below */
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
    kern_set_act(KERN_ACT_Q8);
}

/* The SIMD levels run the same operations in the same order: identical
 * bits on a realistic shape (when the machine has both). */
TEST(test_levels_agree)
{
    if (!kern_level_supported(KERN_AVX2) || !kern_level_supported(KERN_AVX512)) {
        printf("     (skipped: this CPU lacks AVX2 or AVX-512)\n");
        return;
    }
    kern_set_act(KERN_ACT_F32);
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
    kern_set_act(KERN_ACT_Q8);
}

/* A 3-D tensor [H, L, K] packed with groups of L rows: each head's view is
 * packed (L = 13: groups start mid-panel of an ungrouped packing) and
 * equals the naive product of that head's rows; a view that does not start
 * a group (or a multiple of 16 rows into one) is refused and falls back to
 * the unpacked path, with the same values within rounding. */
TEST(test_groups_and_views)
{
    enum { H = 3, L = 13, K = 64 };
    kern_set_act(KERN_ACT_F32); /* the f32 order; int8 views: test_i8_every_level */
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
    CHECK(kern_i8_panel_bytes(48) == 0 && kern_i8_panel_bytes(0) == 0 && kern_i8_panel_bytes(64) == 2 * KERN_I8_BLOCK);
    kern_set_act(KERN_ACT_Q8);
}

/* ---- int8 activations (kern.h idea 3) ----
 * The quantizer again, from kern.h's words: per 32-block d = amax / 127,
 * q = x / d (as x times the float 1 / d) clamped to [-127, 127] and
 * rounded to nearest even; zero or subnormal blocks are all zeros. */
static void ref_quant(const float *x, int K, int8_t *q, float *d)
{
    for (int b = 0; b < K / 32; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        float db = amax / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        if (!isfinite(id)) id = 0.0f, db = 0.0f;
        d[b] = db;
        for (int j = 0; j < 32; j++) q[32 * b + j] = (int8_t)nearbyintf(fminf(fmaxf(x[32 * b + j] * id, -127.0f), 127.0f));
    }
}

/* One output the way kern.h promises: blocks in order from +0, each
 * fma((float)exact integer dot, dw * dx, acc); wq is the q8_0 row. */
static float ref_i8_dot(const int8_t *qx, const float *dx, const uint8_t *wq, int K)
{
    float acc = 0.0f;
    for (int b = 0; b < K / 32; b++) {
        quant_block_q8_0 blk;
        memcpy(&blk, wq + (size_t)b * sizeof blk, sizeof blk);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += (int32_t)qx[32 * b + j] * blk.qs[j];
        acc = fmaf((float)isum, quant_f16_to_f32(blk.d) * dx[b], acc);
    }
    return acc;
}

/* y = x W^T in the int8 mode at level l against: the promised bits
 * (ref_i8_dot), the double product within the bound the rounding of the
 * activations allows (|x - d q| <= d / 2 per element), each row alone
 * (bit for bit), and the sentinels around y. Returns failures. */
static int check_i8(kern_level l, int n, int rows, int cols, const qmat *q)
{
    const int ldx = cols + 3, ldy = rows + 5;
    const size_t rb = quant_row_size(QUANT_Q8_0, (uint64_t)cols);
    float *x = malloc(sizeof(float) * n * ldx), *y = malloc(sizeof(float) * n * ldy), *y1 = malloc(sizeof(float) * (rows + 2));
    int8_t *qx = malloc((size_t)cols);
    float *dx = malloc(sizeof(float) * (size_t)cols / 32);
    for (int i = 0; i < n * ldx; i++) x[i] = tu_frand() * (1.0f + (float)(i % 7)); /* uneven blocks */
    for (int i = 0; i < n * ldy; i++) y[i] = 777.0f;
    ops_linear(n, x, ldx, &q->W, NULL, y + 2, ldy, NULL, OPS_ROWWISE);
    int bad_val = 0, bad_bits = 0, bad_edge = 0, bad_alone = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * ldx, *yi = y + (size_t)i * ldy + 2;
        ref_quant(xi, cols, qx, dx);
        for (int o = 0; o < rows; o++) {
            double s = 0, bound = 0;
            for (int k = 0; k < cols; k++) {
                double w = q->wd[(size_t)o * cols + k];
                s += (double)xi[k] * w;
                bound += fabs(w) * dx[k / 32] * 0.5;
            }
            bad_val += fabs(yi[o] - s) > bound * 1.001 + 1e-5 * (1.0 + fabs(s));
            float want = ref_i8_dot(qx, dx, q->wq + (size_t)o * rb, cols);
            bad_bits += memcmp(&want, &yi[o], sizeof want) != 0;
        }
        bad_edge += yi[-1] != 777.0f || yi[-2] != 777.0f || yi[rows] != 777.0f;
        y1[0] = y1[rows + 1] = 555.0f;
        ops_linear(1, xi, ldx, &q->W, NULL, y1 + 1, rows, NULL, OPS_ROWWISE);
        bad_alone += memcmp(y1 + 1, yi, sizeof(float) * rows) != 0 || y1[0] != 555.0f || y1[rows + 1] != 555.0f;
    }
    CHECK_MSG(bad_val == 0 && bad_bits == 0 && bad_edge == 0 && bad_alone == 0,
              "%s int8 n=%d %dx%d: %d outside the rounding bound, %d not the promised bits, %d sentinels hit, "
              "%d rows differ alone",
              kern_level_name(l), n, rows, cols, bad_val, bad_bits, bad_edge, bad_alone);
    free(x); free(y); free(y1); free(qx); free(dx);
    return bad_val + bad_bits + bad_edge + bad_alone;
}

/* Every level gives the promised bits (so the levels, the AVX-512 VNNI
 * kernel included, agree with each other and with the scalar one), for
 * the row counts on each side of the passes (1, 2, 4 rows; 2-panel
 * passes), partial panels, groups and views, and matrices big enough for
 * the pool; weights of -128 (legal in a q8_0 file, never written by our
 * quantizer) included. */
TEST(test_i8_every_level)
{
    const int shapes[][3] = {{1, 40, 64}, {2, 16, 32}, {3, 33, 128}, {4, 50, 64}, {5, 300, 96}, {8, 64, 256},
                             {9, 70, 96}, {13, 70, 32}, {64, 200, 64}, {65, 17, 96}, {2, 1100, 256}, {40, 600, 224}};
    kern_set_act(KERN_ACT_Q8);
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (kern_set_level((kern_level)l) != 0) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            qmat q;
            CHECK(qmat_init(&q, QUANT_Q8_0, shapes[s][1], shapes[s][2], 0) == 0 && q.W.pk8.data != NULL);
            if (s % 3 == 0) { /* some weights at -128 */
                const size_t rb = quant_row_size(QUANT_Q8_0, (uint64_t)shapes[s][2]);
                for (int r = 0; r < shapes[s][1]; r += 3) {
                    q.wq[(size_t)r * rb + 2 + (size_t)(r % 32)] = 0x80;
                    quant_dequantize_row(QUANT_Q8_0, q.wq + (size_t)r * rb, q.wd + (size_t)r * shapes[s][2], shapes[s][2]);
                }
                CHECK(ops_mat_pack(&q.W, 0) == 0);
            }
            check_i8((kern_level)l, shapes[s][0], shapes[s][1], shapes[s][2], &q);
            qmat_free(&q);
        }
        /* a head's view of a grouped matrix is packed in both layouts */
        qmat g;
        CHECK(qmat_init(&g, QUANT_Q8_0, 3 * 13, 64, 13) == 0);
        ops_mat v = ops_mat_rows(&g.W, 13, 13);
        CHECK(v.pk8.data != NULL && v.pk8_owned == NULL);
        float x[64], y[13];
        int8_t qx[64];
        float dx[2];
        for (int k = 0; k < 64; k++) x[k] = tu_frand();
        ops_linear(1, x, 64, &v, NULL, y, 13, NULL, OPS_ROWWISE);
        ref_quant(x, 64, qx, dx);
        int bad = 0;
        for (int o = 0; o < 13; o++) {
            float want = ref_i8_dot(qx, dx, g.wq + (size_t)(13 + o) * quant_row_size(QUANT_Q8_0, 64), 64);
            bad += memcmp(&want, &y[o], sizeof want) != 0;
        }
        CHECK_MSG(bad == 0, "%s: int8 view of head 1: %d outputs differ", kern_level_name((kern_level)l), bad);
        qmat_free(&g);
    }
    kern_set_level(kern_best_level());
}

/* The activation quantizer of every level: the scalar level's bytes and
 * scales bit for bit, and ref_quant's on finite blocks; ties (x / d = k +
 * 0.5) round to even; a NaN or an infinity makes the block's scale NaN or
 * infinite (so the outputs are NaN, not silently finite); zero and
 * subnormal blocks are zeros. */
TEST(test_i8_quantizer)
{
    enum { NB = 64, K = NB * 32 };
    float *x = malloc(sizeof(float) * K);
    for (int i = 0; i < K; i++) x[i] = tu_frand() * (float)(1 + i % 13);
    for (int j = 0; j < 32; j++) x[32 * 1 + j] = 0.0f;                    /* zeros */
    for (int j = 0; j < 32; j++) x[32 * 2 + j] = 1e-41f * (float)(j - 16); /* subnormals */
    for (int j = 0; j < 32; j++) x[32 * 3 + j] = (float)(j - 16) * 0.5f;   /* ties: amax 8 -> id 15.875 */
    x[32 * 3] = 127.0f;                                                   /* amax 127: d = 1, x / d = j/2 - 8 */
    x[32 * 4 + 5] = NAN;
    x[32 * 5 + 9] = -INFINITY;
    x[32 * 6 + 31] = 3.0e38f; /* huge but finite */
    uint8_t *q0 = malloc(K), *q1 = malloc(K);
    float d0[NB], d1[NB];
    int8_t qr[32];
    float dr[1];
    kern_i8q_scalar(x, K, q0, d0);
    for (int b = 0; b < NB; b++) {
        if (b == 4 || b == 5) continue;
        ref_quant(x + 32 * b, 32, qr, dr);
        int bad = memcmp(&dr[0], &d0[b], 4) != 0;
        for (int j = 0; j < 32; j++) bad += q0[32 * b + j] != (uint8_t)(qr[j] + 128);
        CHECK_MSG(bad == 0, "scalar quantizer block %d differs from the reference", b);
    }
    CHECK(d0[1] == 0.0f && d0[2] == 0.0f && q0[32 * 2] == 128 && q0[32 * 2 + 31] == 128);
    CHECK(d0[3] == 1.0f && q0[32 * 3 + 1] == 128 - 8 && q0[32 * 3 + 3] == 128 - 6 && q0[32 * 3 + 5] == 128 - 6 &&
          q0[32 * 3 + 7] == 128 - 4); /* -7.5 -> -8, -6.5 -> -6, -5.5 -> -6, -4.5 -> -4 */
    CHECK(isnan(d0[4]) && isinf(d0[5]) && isfinite(d0[6]));
    for (int l = 1; l < KERN_N_LEVELS; l++) {
        if (kern_set_level((kern_level)l) != 0) continue;
        memset(q1, 0, K);
        kern_i8q()(x, K, q1, d1);
        CHECK_MSG(memcmp(q0, q1, K) == 0 && memcmp(d0, d1, sizeof d0) == 0, "%s quantizer differs from scalar",
                  kern_level_name((kern_level)l));
    }
    kern_set_level(kern_best_level());
    /* a NaN activation makes its row's outputs NaN */
    qmat q;
    CHECK(qmat_init(&q, QUANT_Q8_0, 20, 64, 0) == 0);
    float xr[2 * 64], y[2 * 20];
    for (int i = 0; i < 2 * 64; i++) xr[i] = tu_frand();
    xr[64 + 40] = NAN;
    ops_linear(2, xr, 64, &q.W, NULL, y, 20, NULL, OPS_ROWWISE);
    int nan0 = 0, nan1 = 0;
    for (int o = 0; o < 20; o++) nan0 += isnan(y[o]), nan1 += isnan(y[20 + o]);
    CHECK_MSG(nan0 == 0 && nan1 == 20, "NaN input row: %d of 20 outputs NaN (clean row: %d)", nan1, nan0);
    qmat_free(&q);
    free(x); free(q0); free(q1);
}

TEST(test_act_names)
{
    kern_act a;
    CHECK(kern_get_act() == KERN_ACT_Q8); /* the default */
    CHECK(kern_act_parse("f32", &a) == 0 && a == KERN_ACT_F32 && kern_act_parse("q8", &a) == 0 && a == KERN_ACT_Q8);
    CHECK(kern_act_parse("int8", &a) == -1 && kern_act_parse(NULL, &a) == -1);
    CHECK(!strcmp(kern_act_name(KERN_ACT_F32), "f32") && !strcmp(kern_act_name(KERN_ACT_Q8), "q8"));
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

/* GELU and the softmax's exps (kern_gelu_fn, kern_sum_exp_fn): every level
 * gives the 8-wide code's bits (the scalar level runs it), on every float
 * pattern of a sweep of the 65,536 high halves (NaN, infinities, zeros,
 * subnormals) and on softmax rows of every length up to 40 and the
 * vocabulary's 8,192; GELU also within 2e-6 of the tanh formula in double. */
static int bits_equal(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

TEST(test_math_every_level)
{
    const uint16_t lows[] = {0x0000, 0x0fff, 0x8000, 0xffff};
    const size_t n = 65536 * 4 - 5;
    float *x = malloc(sizeof(float) * 65536 * 4), *ref = malloc(sizeof(float) * 65536 * 4);
    float *y = malloc(sizeof(float) * 65536 * 4);
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (int k = 0; k < 4; k++) {
            uint32_t b = hi << 16 | lows[k];
            memcpy(&x[hi * 4 + k], &b, 4);
        }
    enum { NR = 8194 }; /* rows from row + 1: up to 8,193 logits */
    float *row = malloc(sizeof(float) * NR), *eref = malloc(sizeof(float) * NR), *e = malloc(sizeof(float) * NR);
    for (int i = 0; i < NR; i++) row[i] = 12.0f * tu_frand();
    row[5] = -INFINITY;
    row[4000] = 30.0f;
    kern_set_level(KERN_SCALAR);
    memcpy(ref, x, n * sizeof *x);
    ops_gelu_tanh(ref, n);
    for (int l = 0; l < KERN_N_LEVELS; l++) {
        if (!kern_level_supported((kern_level)l)) continue;
        kern_set_level((kern_level)l);
        const char *name = kern_level_name((kern_level)l);
        memcpy(y, x, n * sizeof *x);
        ops_gelu_tanh(y, n);
        CHECK_MSG(bits_equal(y, ref, n), "%s: GELU differs from the 8-wide bits", name);
        for (int m = 0; m < 40; m++) { /* tails alone and after whole vectors */
            memcpy(y, x + 7777, (size_t)m * sizeof *x);
            y[m] = 1234.0f;
            ops_gelu_tanh(y, (size_t)m);
            CHECK_MSG(bits_equal(y, ref + 7777, (size_t)m) && y[m] == 1234.0f, "%s: GELU of %d floats", name, m);
        }
        for (int i = 0; i < 2000; i++) {
            double v = -10.0 + 20.0 * i / 2000.0;
            float g = (float)v;
            ops_gelu_tanh(&g, 1);
            double t = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
            CHECK_MSG(fabs(g - t) <= 2e-6 * fabs(v) + 1e-7, "%s: GELU(%g) = %.9g, want %.9g", name, v, g, t);
        }
        const int lens[] = {1, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 39, 40, 8192, NR - 1};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int len = lens[li];
            float mx, mx_ref, z, z_ref;
            kern_set_level(KERN_SCALAR);
            z_ref = ops_log_softmax_exps(row + 1, len, &mx_ref, eref);
            kern_set_level((kern_level)l);
            z = ops_log_softmax_exps(row + 1, len, &mx, e);
            CHECK_MSG(memcmp(&z, &z_ref, 4) == 0 && mx == mx_ref && bits_equal(e, eref, (size_t)len),
                      "%s: softmax of %d logits: z %.9g vs %.9g", name, len, z, z_ref);
            CHECK(z == ops_log_softmax_z(row + 1, len, &mx, NULL));
        }
    }
    kern_set_level(kern_best_level());
    free(x);
    free(ref);
    free(y);
    free(row);
    free(eref);
    free(e);
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
    RUN(test_act_names);
    RUN(test_level_names);
    RUN(test_linear_every_level);
    RUN(test_levels_agree);
    RUN(test_groups_and_views);
    RUN(test_i8_every_level);
    RUN(test_i8_quantizer);
    RUN(test_wsum_every_level);
    RUN(test_qk_every_level);
    RUN(test_f16_every_level);
    RUN(test_math_every_level);
    return test_summary();
}
