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
 * Threads: one budget of n threads for the whole process (ops_set_threads;
 * by default SYNTH_THREADS, else the online CPUs). ops_parallel_for runs
 * independent tasks on the calling thread plus n - 1 pool helpers (idle
 * helpers spin briefly, then sleep), and OpenBLAS is given the same n. The
 * two never run at once: the batch-invariant forward pass calls no BLAS at
 * all, and BLAS is never called from pool tasks, so the process keeps at
 * most n threads busy. Only one parallel region runs at a time: a
 * concurrent caller simply runs its tasks itself, and a region opened
 * inside a task always does (on that thread, as thread 0), so a task that
 * opens regions needs scratch for one thread only.
 */
#ifndef OPS_H
#define OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kern.h"

/* A weight matrix W [rows, cols] in its stored type (enum quant_type), read
 * in place (for instance from the read-only checkpoint mapping). Row r
 * starts at data + r * row_bytes. After ops_mat_pack it also owns a copy
 * in kern.h's panel layout, which the fast row-wise kernels read. */
typedef struct {
    const void *data;
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
    kern_mat pk;          /* packed copy (pk.data NULL: not packed) */
    int64_t group_rows;   /* rows per packed group (see kern.h) */
    void *pk_owned;       /* the allocation behind pk; NULL in views */
    kern_mat pk8;         /* q8_0 only: the int8-activation layout (kern.h idea 3), or data NULL */
    void *pk8_owned;      /* the allocation behind pk8; NULL in views */
} ops_mat;

/* Tasks of a parallel region: fn(ctx, task, thread) for task in [0, n);
 * thread in [0, ops_n_threads()) names the executing thread, so tasks can
 * use per-thread scratch. */
typedef void (*ops_task_fn)(void *ctx, int task, int thread);
void ops_parallel_for(int n, ops_task_fn fn, void *ctx);
/* The thread budget: n >= 1 threads (<= 0: the default), capped at 16.
 * Starts helpers as needed (a lowered budget leaves the extra ones asleep)
 * and sets OpenBLAS's threads to the same n. Waits for a running region to
 * finish; returns the budget now in force. */
int ops_set_threads(int n);
/* The budget. Without an ops_set_threads call the pool is sized on first
 * use with the default and OpenBLAS keeps its own setting. */
int ops_n_threads(void);

/* Describe data as W [rows, cols] of the given type (no copy, nothing to
 * free). 0, or -1 when the type is unknown or cols is not a multiple of
 * its block size. */
int ops_mat_init(ops_mat *m, const void *data, uint32_t type, int64_t rows, int64_t cols);
/* Make the packed copy (kern.h), in groups of group_rows rows (<= 0: one
 * group; the per-head slices of a 3-D tensor are groups, so that a view of
 * one head stays packed). 0, or -1 (out of memory, or group_rows does not
 * divide rows): the matrix then stays usable, unpacked. */
int ops_mat_pack(ops_mat *m, int64_t group_rows);
size_t ops_mat_packed_bytes(const ops_mat *m);
/* Free the packed copy (the matrix stays usable, unpacked). */
void ops_mat_free(ops_mat *m);
/* The view of rows [r0, r0+n) of m (no copy, owns nothing; packed when r0
 * starts a packed group or lies a multiple of 16 rows into one). */
ops_mat ops_mat_rows(const ops_mat *m, int64_t r0, int64_t n);

/* dst[n, W->cols] = rows [r0, r0+n) of W converted to f32. Fast paths for
 * q8_0 and q4_0 (same results as quant_dequantize_row). */
void ops_dequant_rows(const ops_mat *W, int64_t r0, int64_t n, float *dst);

/* Scratch (in floats) that ops_linear needs for W with n input rows. 0 for
 * f32 weights (used directly). Never more than ~1M floats plus one row
 * block, whatever the size of W. */
size_t ops_linear_scratch(const ops_mat *W, int n);

/* The linear layer: y[n, W->rows] = x[n, W->cols] . W^T (+ b[W->rows] if b
 * is not NULL). Paths:
 *   packed W, flags & OPS_ROWWISE or n <= OPS_PACKED_MAX_N: kern.h's
 *     kernels at the CPU level kern.h selected (q8_0 weights in the
 *     activation mode KERN_ACT_Q8: the rows quantized to int8 once, then
 *     the int8 kernels), big matrices split by
 *     output panels across the ops_parallel_for threads. No BLAS call, so
 *     it is also safe inside ops_parallel_for tasks (a threaded BLAS called
 *     from pool tasks would make the two pools wait on each other).
 *   unpacked W and OPS_ROWWISE (or f32 with n <= 4): one ops_dot per output
 *     element (other types dequantized into scratch a block of rows at a
 *     time).
 *   otherwise: cblas_sgemm, on f32 weights directly, on other types one
 *     dequantized block of rows at a time in scratch (>=
 *     ops_linear_scratch(W, n) floats), so W is never expanded as a whole.
 * flags: OPS_ROWWISE makes every output row a function of its input row
 * alone, computed in one fixed order whatever n is (never a GEMM whose
 * blocking depends on n). Generation uses it so a request gets
 * bit-identical logits alone or in any batch; scoring leaves it off for
 * GEMM speed on big batches. OPS_GELU applies ops_gelu_tanh to y after the
 * bias (on the packed path inside the parallel tasks, on each row's block
 * of outputs while it is in cache: no serial pass over y). */
#define OPS_ROWWISE 1
#define OPS_GELU 2
#ifndef OPS_PACKED_MAX_N
#define OPS_PACKED_MAX_N 16
#endif
void ops_linear(int n, const float *x, int ldx, const ops_mat *W, const float *b, float *y, int ldy,
                float *scratch, int flags);

/* y[n, d] = LayerNorm(x[n, d]) * w + b over each row (biased variance, eps
 * inside the square root). y may equal x (same ld). */
void ops_layernorm(int n, int d, const float *x, int ldx, const float *w, const float *b, float eps,
                   float *y, int ldy);

/* In place over n floats: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * computed as x / (1 + exp(-2u)) (the same function). */
void ops_gelu_tanh(float *x, size_t n);

/* GEGLU in place over n rows of u (row stride ld >= 2F): the first F floats
 * of each row become gelu_tanh(u[j]) * u[F + j]; the rest of the row is
 * left as scratch. */
void ops_geglu(int n, int F, float *u, int ld);

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

/* y[d] = the attention of one row over n positions, all heads at once:
 * y[c] = sum_{j<n} A[h * a_stride + j] X[j, c] for the head h = c / dh of
 * column c (kern.h's kern_wsum_fn at the selected CPU level: a fixed
 * order, so a row gets the same bits whatever else is computed). */
void ops_wsum_heads(int n, int d, int dh, const float *A, size_t a_stride, const float *X, int ldx, float *y);
/* The same over IEEE half values X [n, d] (ld ldx halves): each converted
 * exactly, so the result is ops_wsum_heads' on the converted floats. */
void ops_wsum_heads_f16(int n, int d, int dh, const float *A, size_t a_stride, const uint16_t *X, int ldx,
                        float *y);

/* y[ncol] = q[n] . K^T for keys stored in blocks of KERN_KB positions
 * (kern.h's kern_qk_fn at the selected CPU level, fixed order). */
void ops_qk_blocked(int n, int ncol, const float *q, const float *KB, float *y);

/* In place softmax of one row of n >= 1 floats. */
void ops_softmax(float *x, int n);

/* The log-softmax of a row of n >= 1 floats, the engine's only one (it
 * feeds /score, model_score, token and top log-probs, the sampler's
 * log-probs, so they agree bit for bit): *mx = max_i x[i] and the return
 * value z = log(sum_i exp(x[i] - *mx)); then log p_i = ops_log_prob(x[i],
 * *mx, z). Subtracting the max before the log keeps large logits exact to
 * float rounding. If argmax is not NULL it receives the index of the
 * largest element (lowest on ties). */
float ops_log_softmax_z(const float *x, int n, float *mx, int *argmax);
/* The same *mx and z (same bits), and, when exps is not NULL, exps[i] =
 * exp(x[i] - *mx) as summed for z: the sampler draws with them at
 * temperature 1 instead of computing them again. */
float ops_log_softmax_exps(const float *x, int n, float *mx, float *exps);
/* Index of the largest of n >= 1 floats (lowest on ties), vectorized: a
 * greedy pick without the log-softmax. */
int ops_argmax(const float *x, int n);
static inline float ops_log_prob(float xi, float mx, float z)
{
    return (xi - mx) - z;
}

#endif
