/*
 * ops.h - the numeric kernels of the forward pass, shared by inference
 * (model.c) and training (train.c may reuse the forward kernels):
 * LayerNorm, GELU (tanh approximation), softmax, a fast exp, and the linear
 * layer over weights stored in any checkpoint type (weights/quant.h).
 *
 * Conventions: all matrices are row-major f32 with an explicit leading
 * dimension (ld*, in floats, >= the row length), so a kernel can read or
 * write a column slice of a wider matrix. Shapes are given as [rows, cols].
 * The transcendental kernels use ops_exp (relative error below 2e-7 on the
 * clamped range, see ops.c), vectorized with GCC vector extensions so the
 * same code runs on any x86-64 (or other) target; -march decides the width.
 *
 * All functions are pure except for the caller's output/scratch buffers and
 * are thread-safe. They do not validate shapes: callers own the checks.
 *
 * Threads: ops_parallel_for runs independent tasks on the calling thread
 * plus a process-wide pool of helper threads (one per extra online CPU, or
 * SYNTH_THREADS - 1; created on first use, idle helpers spin briefly, then
 * sleep). It is for the kernels that OpenBLAS does not thread (decode-size
 * matmuls, per-sequence attention); big GEMMs use OpenBLAS's own threads.
 * Only one parallel region runs at a time: a concurrent or nested caller
 * simply runs its tasks itself.
 */
#ifndef OPS_H
#define OPS_H

#include <stddef.h>
#include <stdint.h>

/* A weight matrix W [rows, cols] in its stored type (enum quant_type), read
 * in place (for instance from the read-only checkpoint mapping). Row r
 * starts at data + r * row_bytes. */
typedef struct {
    const void *data;
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
} ops_mat;

/* Tasks of a parallel region: fn(ctx, task, thread) for task in [0, n);
 * thread in [0, ops_n_threads()) names the executing thread, so tasks can
 * use per-thread scratch. */
typedef void (*ops_task_fn)(void *ctx, int task, int thread);
void ops_parallel_for(int n, ops_task_fn fn, void *ctx);
int ops_n_threads(void);

/* Describe data as W [rows, cols] of the given type. 0, or -1 when the type
 * is unknown or cols is not a multiple of its block size. */
int ops_mat_init(ops_mat *m, const void *data, uint32_t type, int64_t rows, int64_t cols);
/* The view of rows [r0, r0+n) of m (no copy). */
ops_mat ops_mat_rows(const ops_mat *m, int64_t r0, int64_t n);

/* dst[n, W->cols] = rows [r0, r0+n) of W converted to f32. Fast paths for
 * q8_0 and q4_0 (same results as quant_dequantize_row). */
void ops_dequant_rows(const ops_mat *W, int64_t r0, int64_t n, float *dst);

/* Scratch (in floats) that ops_linear needs for W with n input rows. 0 for
 * f32 weights (used directly). Never more than ~1M floats plus one row
 * block, whatever the size of W. */
size_t ops_linear_scratch(const ops_mat *W, int n);

/* The linear layer: y[n, W->rows] = x[n, W->cols] . W^T (+ b[W->rows] if b
 * is not NULL). f32 weights go straight to cblas_sgemm; other types are
 * dequantized one block of rows at a time into scratch (>=
 * ops_linear_scratch(W, n) floats) and multiplied into the matching column
 * slice of y, so W is never expanded as a whole. For a few rows (n <= 4,
 * or 16 with AVX-512) and q8_0/q4_0 weights a fused kernel reads the blocks
 * directly (no scratch), splitting big matrices across the
 * ops_parallel_for threads. f32 weights with n <= 4 use dot products.
 * ops_linear calls BLAS only for n > 4 (f32) or beyond the fused range,
 * so small calls are safe inside ops_parallel_for tasks (a threaded BLAS
 * called from pool tasks would make the two pools wait on each other). */
/* flags: OPS_ROWWISE makes every output row a function of its input row
 * alone, computed in one fixed order whatever n is: q8_0/q4_0 always take
 * the fused kernel, f32/f16 always dot products (f16 rows dequantized into
 * scratch first), never a GEMM whose blocking depends on n. Generation uses
 * it so a request gets bit-identical logits alone or in any batch; scoring
 * leaves it off for GEMM speed. */
#define OPS_ROWWISE 1
void ops_linear(int n, const float *x, int ldx, const ops_mat *W, const float *b, float *y, int ldy,
                float *scratch, int flags);

/* y[n, d] = LayerNorm(x[n, d]) * w + b over each row (biased variance, eps
 * inside the square root). y may equal x (same ld). */
void ops_layernorm(int n, int d, const float *x, int ldx, const float *w, const float *b, float eps,
                   float *y, int ldy);

/* In place over n floats: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * computed as x / (1 + exp(-2u)) (the same function). */
void ops_gelu_tanh(float *x, size_t n);

/* exp(x) for x clamped to [-87.3, 88]: in place over n floats. */
void ops_exp_inplace(float *x, size_t n);
/* exp of one float with the same approximation (for scalar callers). */
float ops_exp(float x);

/* sum_i a[i] b[i] and y[i] += alpha x[i] over n floats (vectorized). */
float ops_dot(const float *a, const float *b, int n);
void ops_axpy(float *y, float alpha, const float *x, int n);

/* y[m] = a[n] . X[n, m] (ld ldx): a weighted sum of n rows, computed with
 * y in registers 32 columns at a time (attention of one query). */
void ops_wsum_rows(int n, int m, const float *a, const float *X, int ldx, float *y);

/* In place softmax of one row of n >= 1 floats. */
void ops_softmax(float *x, int n);

/* log(sum_i exp(x[i])) of n >= 1 floats, computed stably; if argmax is not
 * NULL it receives the index of the largest element (lowest on ties). */
float ops_logsumexp(const float *x, int n, int *argmax);

#endif
