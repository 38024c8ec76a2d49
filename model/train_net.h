/*
 * train_net.h - template of the trainable network (no include guard on
 * purpose): train.h includes it twice, with TN_REAL float / TN_SUF f (the
 * trainer) and TN_REAL double / TN_SUF d (gradient checks in the tests).
 * The implementation is model/train_net.inc, instantiated by
 * model/train_net_f32.c and model/train_net_f64.c.
 *
 * llm.c style: one parameter buffer of arch_n_params() reals, a pointer per
 * tensor into it in arch_tensors() order; the same for the gradients.
 * Activations of one forward pass (B sequences x T tokens, all starting at
 * position 0) are kept for the backward pass.
 *
 * Usage per step: zero_grad, forward(train=1), backward. forward(train=1)
 * already computes the gradient of the output layer (the logits are never
 * materialized for the whole batch: [rows, vocab] chunks are softmaxed and
 * differentiated in place), so backward must follow it before the next
 * forward.
 */
#if !defined(TN_REAL) || !defined(TN_SUF)
#error "define TN_REAL and TN_SUF before including train_net.h"
#endif

#include <stdint.h>

#include "arch.h"

#define TN_CAT2(a, b) a##_##b
#define TN_CAT(a, b) TN_CAT2(a, b)
#define TN(name) TN_CAT(name, TN_SUF)
#define TN_CAT3B(a, b, c) a##_##b##_##c
#define TN_CAT3(a, b, c) TN_CAT3B(a, b, c)
#define TNP(name) TN_CAT3(train_net, TN_SUF, name) /* train_net_f_create */
#define TNT TN_CAT(train_net, TN_SUF)                /* train_net_f */

typedef struct TNT TNT;

/* Allocate for at most B sequences of T tokens (T <= n_ctx). Parameters are
 * zero: fill them (train_net_*_init_params or through params()). NULL on
 * bad sizes or out of memory (message in err). */
TNT *TNP(create)(const arch_hparams *hp, int B, int T, char *err, size_t errlen);
void TNP(free)(TNT *n);

const arch_hparams *TNP(hparams)(const TNT *n);
int TNP(n_tensors)(const TNT *n);
const arch_tensor *TNP(tensor)(const TNT *n, int i);
int64_t TNP(n_params)(const TNT *n);
TN_REAL *TNP(params)(TNT *n);  /* [n_params] contiguous */
TN_REAL *TNP(grads)(TNT *n);   /* [n_params] contiguous */
TN_REAL *const *TNP(param_ptrs)(TNT *n); /* per tensor */
TN_REAL *const *TNP(grad_ptrs)(TNT *n);
/* 1 if the optimizer updates the tensor (R of fixed_random is frozen). */
int TNP(trainable)(const TNT *n, int i);
/* arch_init_params (computed in f32) converted to TN_REAL. */
void TNP(init_params)(TNT *n, uint64_t seed, float rstd);

void TNP(zero_grad)(TNT *n);

/* Make n read owner's parameters instead of its own (which are freed):
 * the replicas of data-parallel training (train_dp.h) share one copy.
 * owner must have the same hparams and outlive n; n keeps its own
 * gradients and activations. 0, or -1 when the hparams differ. */
int TNP(share_params)(TNT *n, TNT *owner);

/* Word dropout p in [0,1) for every later training forward (0, the
 * default: off): each call draws one keep flag per token type from its rng
 * (before the dropout masks), and every position whose input is a dropped
 * type gets the position embedding alone; kept token embeddings are scaled
 * by 1/(1-p). A regularizer of the data-limited regime (embedding dropout of
 * Gal & Ghahramani's variational RNNs). 0, or -1 when p is out of range. */
int TNP(set_word_dropout)(TNT *n, float p);

/* Mean next-token cross-entropy of B sequences x T tokens: inputs and
 * targets [B*T] (ids checked: out of range gives NaN). train=1 keeps what
 * backward needs and computes the output-layer gradient (scaled for the
 * mean); dropout p in [0,1) is applied only when train=1, drawing its masks
 * from rng (may be NULL when p == 0 and word dropout is off). logits, if
 * not NULL, receives the [B*T, n_vocab] logits (tests; costs memory per
 * call). */
double TNP(forward)(TNT *n, const int32_t *inputs, const int32_t *targets, int B,
                             int T, int train, float dropout, arch_rng *rng, TN_REAL *logits);
/* Accumulate d loss / d params into the gradients for the last forward. */
void TNP(backward)(TNT *n);

#undef TN_CAT2
#undef TN_CAT
#undef TN
#undef TN_CAT3B
#undef TN_CAT3
#undef TNP
#undef TNT
