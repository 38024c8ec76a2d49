/*
 * train_kern.h - vectorized f32 kernels of the trainer (internal to
 * model/train_*). The f64 instantiation of train_net.inc keeps plain scalar
 * loops; the tests check both agree (test_f32_matches_f64).
 *
 * GCC vector extensions (8 floats; AVX with -march=native), no intrinsics.
 * exp: Cody-Waite reduction + degree-6 polynomial, relative error ~2e-7 on
 * [-87, 88] (inputs clamped there).
 */
#ifndef TRAIN_KERN_H
#define TRAIN_KERN_H

#include <stddef.h>

/* y = gelu_tanh(x) = x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) */
void tk_gelu_forward(float *y, const float *x, size_t n);
/* dx = dy * gelu'(x) (dx may alias dy) */
void tk_gelu_backward(const float *x, size_t n, const float *dy, float *dx);
/* x[i] = exp(x[i] - sub); returns the sum (double accumulation per lane). */
float tk_exp_sub_sum(float *x, size_t n, float sub);
float tk_max(const float *x, size_t n);
void tk_scale(float *x, size_t n, float s);
/* LayerNorm rows: y = (x - mu) rs w + b, saving mu, rs. */
void tk_layernorm_forward(float *Y, float *mu, float *rs, const float *X, const float *w, const float *b, int N,
                          int d, float eps);
/* dX += LN backward of dY; dw, db accumulated. */
void tk_layernorm_backward(const float *mu, const float *rs, const float *X, const float *w, int N, int d,
                           const float *dY, float *dX, float *dw, float *db);
/* Causal softmax of a [T, T] logit matrix in place (row i over 0..i). */
void tk_causal_softmax_forward(float *P, int T);
/* dS = P o (dP - rowsum(dP o P)) over j <= i, zeros after, over dP. */
void tk_causal_softmax_backward(const float *P, int T, float *dP);
/* y[i] += x[i] */
void tk_add(float *y, const float *x, size_t n);
/* y = a + b */
void tk_add3(float *y, const float *a, const float *b, size_t n);
/* y = m ? x * s : 0 (may alias) */
void tk_dropout_apply(float *y, const float *x, const unsigned char *m, size_t n, float s);
/* y[i] += sum over rows of X[N, n] */
void tk_colsum_add(float *y, const float *X, int N, int n, int ldx);

/* AdamW on n values with gradient g * gscale; c1, c2 the bias corrections
 * 1/(1-beta^t); decoupled decay p -= lr * decay * p. */
void tk_adamw(float *p, const float *g, float *m, float *v, size_t n, float gscale, float lr, float beta1,
              float beta2, float eps, float decay, float c1, float c2);
/* sum of squares (f32 per 8 lanes, f64 across blocks) */
double tk_sumsq(const float *x, size_t n);

#endif
