/*
 * kern.h - the batch-invariant linear-layer kernels of inference, internal
 * to model/ (ops.c drives them; nothing outside model/ includes this).
 *
 * Two ideas:
 *
 * 1. Packed panels. At load every weight matrix W [rows, cols] (any stored
 *    type: f32, f16, q8_0, q4_0) is copied once into panels of KERN_NR = 16
 *    output rows, stored k-major: for each k the 16 weights w[o0..o0+16, k]
 *    are adjacent. A kernel then reads, for one k, one vector of 16 outputs'
 *    weights and multiplies it by x[r, k] broadcast: the shape of a GEMM
 *    micro-kernel, with no horizontal sums. Layouts of one panel (K = cols):
 *      f32   float w[K][16]
 *      f16   uint16 w[K][16]                         (IEEE half bits)
 *      q8_0  per 32-block b: float d[16]; int8 q[32][16]        w = d * q
 *      q4_0  per 32-block b: float d[16]; uint8 q[16][16]
 *            low nibble of q[j][o] is k = 32b + j, high nibble k = 32b + j + 16;
 *            w = d * (nibble - 8)
 *    (d is the block's f16 scale converted to f32, exactly.) Rows past the
 *    matrix's end in the last panel are zeros. A matrix may be packed as
 *    several groups of group_rows rows (the per-head slices of a 3-D
 *    tensor), each group starting on a fresh panel, so a view of one group
 *    is a plain panel offset.
 *
 * 2. One reduction order, whatever the batch. Every output element
 *      y[r, o] = sum_k x[r, k] * w[o, k]
 *    is accumulated from +0 in k order 0, 1, ..., K-1, one product at a
 *    time: acc = fma(x, w, acc) on the AVX2 and AVX-512 levels (which
 *    therefore agree bit for bit), acc = acc + x * w on the scalar level;
 *    w is the weight converted to f32 exactly as quant_dequantize_row does.
 *    Nothing in that order depends on the number of rows n, on which rows
 *    share a pass over the weights, or on how outputs are split between
 *    threads, so a row's outputs are the same bits alone or in a batch of
 *    64. Within that contract a kernel is free to block: for a few rows it
 *    converts each weight in registers and uses it for all rows ("fused");
 *    for many rows it converts a group of up to 4 panels once into an f32
 *    tile [K][64] in per-thread scratch and runs a register-blocked
 *    micro-kernel (up to 6 rows x 64 outputs per pass) over it.
 *
 * 3. Int8 activations (q8_0 weights). A q8_0 matrix is also packed in a
 *    second layout, per 32-block b of a panel:
 *      float d[16]; int32 s[16] (128 * sum_j q[o][j]); int8 q[8][16][4]
 *    (q[j/4][o][j%4]: the 4 weights of output o at k = 32b + j..j+3 in one
 *    32-bit lane, the operand shape of AVX-512 VNNI's vpdpbusd). Each
 *    activation row is quantized per 32-block to int8 (kern_i8q_fn) and
 *      y[r, o] = sum_b fma((float)isum_b, d_w[o, b] * d_x[r, b], acc)
 *    from +0 in block order, isum_b the exact integer dot product of the
 *    block: the one rounding order, whatever the batch, and the same bits
 *    on every level (the scalar one uses fmaf here). Whether q8_0 layers
 *    run this way is the activation mode (kern_set_act).
 *
 * CPU levels: every level's kernels are compiled into the binary (each in
 * its own file with its own target flags, see the Makefile) and the best
 * level the CPU supports is chosen at first use; kern_set_level forces a
 * lower one (tests, SYNTH_CPU). Thread-safety: packing and the kernels are
 * pure; kern_set_level must not race with kernel calls (call it at start-up
 * or between steps).
 */
#ifndef KERN_H
#define KERN_H

#include <stddef.h>
#include <stdint.h>

#define KERN_NR 16      /* output rows per panel */
#define KERN_GROUP 4    /* panels per kernel call (64 outputs) */
#define KERN_MAX_ROWS 6 /* rows per micro-kernel pass */

typedef enum { KERN_SCALAR = 0, KERN_AVX2 = 1, KERN_AVX512 = 2, KERN_N_LEVELS = 3 } kern_level;

/* A packed matrix or a view of some of its rows (starting on a panel). */
typedef struct {
    uint32_t type;          /* enum quant_type of the source */
    int64_t rows, cols;     /* outputs, inputs (cols: a multiple of the type's block) */
    size_t panel_bytes;     /* bytes per panel */
    const uint8_t *data;    /* the first panel */
} kern_mat;

/* Bytes of one panel of a matrix with `cols` inputs; 0 when the type is not
 * supported or cols is not a multiple of its block size. */
size_t kern_panel_bytes(uint32_t type, int64_t cols);
/* Panels of a matrix of `rows` rows packed in groups of group_rows rows
 * (group_rows <= 0: one group). */
int64_t kern_n_panels(int64_t rows, int64_t group_rows);

/* Pack W [rows, cols] of the given type (row r at src + r * src_row_bytes)
 * into dst, which holds kern_n_panels(rows, group_rows) * panel_bytes bytes,
 * and describe it in *out (all rows). 0, or -1 for an unsupported type or
 * cols, or a group_rows that does not divide rows. */
int kern_pack(kern_mat *out, void *dst, const void *src, size_t src_row_bytes, uint32_t type, int64_t rows,
              int64_t cols, int64_t group_rows);

/* The view of rows [r0, r0 + n) of a matrix packed with group_rows rows per
 * group; r0 must start a group or lie a multiple of KERN_NR rows into one
 * (returns -1 otherwise). */
int kern_view(const kern_mat *m, int64_t group_rows, int64_t r0, int64_t n, kern_mat *out);

/* The level's kernel for one group of panels:
 *   y[r, 0..valid) = x[r, 0..K) . W[o0 + 0..valid, 0..K)^T   for r in [0, n)
 * where o0 = 16 * p0 and the np <= KERN_GROUP panels from p0 hold the
 * outputs (valid <= 16 * np; outputs past valid are not written). x is
 * [n, K] with leading dimension ldx, y [n, valid] with ldy. scratch: NULL
 * (the fused kernel is used whatever n) or >= kern_scratch_floats(W)
 * floats, 64-byte aligned. */
typedef void (*kern_group_fn)(const kern_mat *W, int64_t p0, int np, int valid, int n, const float *x, int ldx,
                              float *y, int ldy, float *scratch);

/* Attention of one row over n positions, all heads at once:
 *   y[c] = sum_{j < n} A[h(c) * a_stride + j] * V[j * ldv + c],  c in [0, d),
 * h(c) = c / dh the head of column c, A_h the head's weights over the
 * positions, V [n, d] the value rows. Accumulated from 0 in j order, one
 * fused multiply-add per term on the SIMD levels (plain multiply and add
 * on the scalar level), so a row's result does not depend on which other
 * rows are computed, or how. V holds floats (f16 0) or IEEE halves (f16 1,
 * an f16 value cache): a half is converted exactly before its multiply-add,
 * so the result is the f32 kernel's on the converted values, bit for bit. */
typedef void (*kern_wsum_fn)(int n, int d, int dh, const float *A, size_t a_stride, const void *V, int ldv,
                             int f16, float *y);

/* Attention logits of one row over ncol positions:
 *   y[j] = sum_{c < n} q[c] * KB[j / KERN_KB][c][j % KERN_KB],  j < ncol,
 * accumulated from 0 in c order like kern_wsum_fn. The keys are stored in
 * blocks of KERN_KB positions, each [n][KERN_KB] (n features, k-major), so
 * appending a position writes one column of the block being filled and a
 * row's logits read the blocks front to back. */
#define KERN_KB 16
typedef void (*kern_qk_fn)(int n, int ncol, const float *q, const float *KB, float *y);

/* Floats to IEEE halves: h[i] = quant_f32_to_f16(x[i]) for i < n, the same
 * bits on every level (F16C's vcvtps2ph rounding to nearest even on the
 * SIMD levels). */
typedef void (*kern_f16_fn)(const float *x, uint16_t *h, int64_t n);

/* The forward pass's elementwise math at the level's width: GELU in place
 * (ops_gelu_tanh) and the softmax's sum_i exp(x[i] - mx), the exps stored
 * in out unless it is NULL. NULL on levels without a wider version: ops.c's
 * 8-wide code runs instead. The same bits either way (vec.h writes the
 * math once for any width, and the sum adds in one order). */
typedef void (*kern_gelu_fn)(float *x, size_t n);
typedef float (*kern_sum_exp_fn)(const float *x, int n, float mx, float *out);

/* ---- int8 activations (idea 3 above) ---- */
#define KERN_I8_BLOCK (KERN_NR * 8 + QUANT_BLOCK * KERN_NR) /* bytes of a panel's 32-block */
/* Bytes of one int8-layout panel with `cols` inputs (0: not a positive
 * multiple of 32). */
size_t kern_i8_panel_bytes(int64_t cols);
/* As kern_pack, for q8_0 rows into the int8 layout (type QUANT_Q8_0,
 * panel_bytes kern_i8_panel_bytes(cols)); kern_view works on it alike. */
int kern_pack_i8(kern_mat *out, void *dst, const void *src, size_t src_row_bytes, int64_t rows, int64_t cols,
                 int64_t group_rows);
/* One activation row x [K] (K a multiple of 32) quantized: xq [K] holds
 * q + 128 (q in [-127, 127]), xd [K / 32] the blocks' scales (x ~ d * q). */
typedef void (*kern_i8q_fn)(const float *x, int64_t K, uint8_t *xq, float *xd);
/* The int8 group kernel: as kern_group_fn, on an int8-layout W and
 * quantized rows (xq [n, ldq] bytes, xd [n, ldd] scales). */
typedef void (*kern_i8_fn)(const kern_mat *W, int64_t p0, int np, int valid, int n, const uint8_t *xq, int ldq,
                           const float *xd, int ldd, float *y, int ldy);
kern_i8_fn kern_i8(void);   /* the current level's (AVX-512 without VNNI: AVX2's, same bits) */
kern_i8q_fn kern_i8q(void);

/* Activation modes: KERN_ACT_F32 (every layer in f32, ideas 1-2) or
 * KERN_ACT_Q8 (q8_0 layers on int8 activations, idea 3; the default).
 * Same thread rule as kern_set_level. */
typedef enum { KERN_ACT_F32 = 0, KERN_ACT_Q8 = 1 } kern_act;
const char *kern_act_name(kern_act a);               /* "f32", "q8" */
int kern_act_parse(const char *name, kern_act *a);   /* 0 or -1 */
void kern_set_act(kern_act a);
kern_act kern_get_act(void);

/* Floats of scratch a group kernel uses on W. */
size_t kern_scratch_floats(const kern_mat *W);
/* A per-thread 64-byte aligned buffer of at least `floats` floats, owned by
 * the calling thread (freed when it exits), or NULL if it cannot be had. */
float *kern_thread_scratch(size_t floats);

/* ---- CPU levels ---- */
const char *kern_level_name(kern_level l);           /* "scalar", "avx2", "avx512" */
int kern_level_parse(const char *name, kern_level *l); /* 0 or -1 */
kern_level kern_best_level(void);                    /* the best this CPU supports */
int kern_level_supported(kern_level l);
/* Select a level: 0, or -1 (nothing changed) when the CPU lacks it. */
int kern_set_level(kern_level l);
kern_level kern_get_level(void);
kern_group_fn kern_group(void);                      /* the current level's kernels */
kern_wsum_fn kern_wsum(void);
kern_qk_fn kern_qk(void);
kern_f16_fn kern_f16(void);
kern_gelu_fn kern_gelu(void);                        /* NULL: use the 8-wide code */
kern_sum_exp_fn kern_sum_exp(void);

/* Per-level entry points, defined by kern_scalar.c, kern_avx2.c and
 * kern_avx512.c; NULL when the level was not compiled for this target. */
extern const kern_group_fn kern_group_scalar, kern_group_avx2, kern_group_avx512;
extern const kern_wsum_fn kern_wsum_scalar, kern_wsum_avx2, kern_wsum_avx512;
extern const kern_qk_fn kern_qk_scalar, kern_qk_avx2, kern_qk_avx512;
extern const kern_f16_fn kern_f16_scalar, kern_f16_avx2, kern_f16_avx512;
extern const kern_gelu_fn kern_gelu_avx512;
extern const kern_sum_exp_fn kern_sum_exp_avx512;
extern const kern_i8_fn kern_i8_scalar, kern_i8_avx2, kern_i8_avx512vnni;
extern const kern_i8q_fn kern_i8q_scalar, kern_i8q_avx2, kern_i8q_avx512vnni;

#endif
