/*
 * ref_naive.h - an independent, naive reference of the Synthesizer LM
 * forward pass, written only from the specification in model/arch.h: plain
 * loops in double precision, no BLAS, nothing from model/ except the tensor
 * table and the PRNG of arch.c. Used by tests/test_forward_ref.c,
 * tests/test_eval.c and tests/test_attention.c; a compiled unit of the
 * test support library (the Makefile's TEST_SUPPORT).
 *
 * Reading of arch.h used here (every linear layer is y = W x + b with W
 * [out, in] row-major):
 *   x_p = token_embd[t_p] + position_embd[p]
 *   per layer: u = LN(x; attn_norm), v = W_v u + b_v, for vanilla parts also
 *     q = W_q u + b_q, k = W_k u + b_k; head h uses columns [h dh, (h+1) dh).
 *     synthesizer logits of head h, row i (only j <= i are used):
 *       random/fixed_random  R[h, i, j]
 *       factorized_random    sum_r R1[h, i, r] R2[h, j, r]
 *       dense                z = relu(W1[h dh : (h+1) dh, :] u_i + b1[h dh ..])  [dh]
 *                            S[j] = W2[h, j, :] . z + b2[h, j]
 *       factorized_dense     zA = relu(A1 rows of head h . u_i + bA1), Av = A2[h] zA + bA2[h]  [a]
 *                            zB likewise with B1/B2                                      [b]
 *                            S[j] = Av[j % a] * Bv[j / a]
 *       vanilla              q_i . k_j / sqrt(dh) (head slices)
 *       mixes                (1 - sigmoid(alpha_h)) * vanilla + sigmoid(alpha_h) * synth
 *     A = softmax over j in 0..i, y_i[head h] = sum_j A[j] v_j[head h]
 *     x = x + W_o y + b_o
 *     x = x + W_down gelu_tanh(W_up LN(x; ffn_norm) + b_up) + b_down
 *   logits_p = LN(x_p; output_norm) . token_embd^T
 *   LN(x) = (x - mean) / sqrt(var + eps) * w + b, var biased (divide by d).
 */
#ifndef TESTS_REF_NAIVE_H
#define TESTS_REF_NAIVE_H
#include <stdint.h>

#include "arch.h"

/* ---- GPT-2 byte mapping, written from the description in tok.h ---- */

/* Code point of byte b: 33..126, 161..172, 174..255 map to themselves, the
 * other 68 bytes to U+0100.. in increasing byte order. */
unsigned ref_byte_codepoint(int b);

/* UTF-8 of the mapped byte into out (NUL-terminated); returns the length. */
int ref_byte_utf8(int b, char out[3]);

/* ---- a tiny vocabulary: 256 byte tokens, merges, "<|endoftext|>" last ---- */

#define REF_MAX_MERGES 256
typedef struct {
    char *vocab[256 + REF_MAX_MERGES + 1];
    char *merges[REF_MAX_MERGES];
    int n_vocab, n_merges, eos;
} ref_vocab;

/* 256 bytes (in byte order), n_merges merges (a few English ones, then
 * letter pairs), eos last: n_vocab = 257 + n_merges. */
void ref_vocab_build(ref_vocab *v, int n_merges);

void ref_vocab_free(ref_vocab *v);

/* ---- parameters ---- */

/* One malloc'd f32 array per tensor, in arch_tensors() order. */
float **ref_alloc_params(const arch_hparams *hp, int *n_out);

void ref_free_params(float **p, int n);

/* Make every term of the network matter: start from arch_init_params, then
 * rescale the matrices so activations are O(1) (std 1/sqrt(fan_in)), draw
 * nonzero biases, norm weights 1 + noise, norm biases, and alpha. */
void ref_randomize(const arch_hparams *hp, uint64_t seed, float rstd, float **p);

/* ---- the reference model ---- */

typedef struct {
    arch_hparams hp;
    int n_t;
    arch_tensor *t;
    double **w;     /* double copy of each tensor */
    int *idx;       /* [(n_layer + 1) * T_N_KINDS]: tensor index of (layer, kind) or -1 */
} ref_model;

int ref_model_init(ref_model *rm, const arch_hparams *hp, const float *const *p);

void ref_model_free(ref_model *rm);

/* Weights of (layer, kind); layer -1 for globals. NULL if absent. */
const double *ref_w(const ref_model *rm, int layer, arch_kind k);

void ref_layernorm(const double *x, const double *w, const double *b, int d, double eps, double *out);

/* out[o] = sum_i W[o, i] x[i] + b[o] for o in [o0, o0 + n_out), W [*, n_in]. */
void ref_linear(const double *W, const double *b, const double *x, int n_in, int o0, int n_out, double *out);

double ref_gelu(double x);

double ref_sigmoid(double x);

/* Synthesizer logits of head h for query position i (input u_i), j in 0..i. */
void ref_synth_logits(const ref_model *rm, int il, int h, int i, const double *ui, double *S);

/* Forward over tokens[0..n) at positions 0..n-1 (n <= L). logits [n, V]
 * (may be NULL), hidden [n, d] = the residual stream before the final norm
 * (may be NULL). Returns 0, or -1 on bad input. */
int ref_forward(const ref_model *rm, const int32_t *tokens, int n, double *logits, double *hidden);

/* log softmax of row at index t. */
double ref_logprob(const double *row, int V, int t);

/* Index of the maximum (lowest on ties) and the gap to the runner-up. */
int ref_argmax(const double *row, int V, double *gap);

/* Causal softmax of the static logits of (layer, head): out [L, L]. */
void ref_static_attention(const ref_model *rm, int il, int h, double *out);

#endif
