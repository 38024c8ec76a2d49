/*
 * arch.h - the Synthesizer LM definition shared by inference (model.c) and
 * training (train.c): hyperparameters, attention variants and the table of
 * tensors (names, shapes, which variants have them).
 *
 * The network (pre-LayerNorm decoder, tied output projection):
 *   x = token_embd[t] + position_embd[p]
 *   per block:  h = x + attn_output(Attn(attn_norm(x)))
 *               x = h + ffn_down(act(ffn_up(ffn_norm(h))))
 *   act: gelu    u = ffn_up(.) [F],  act(u) = gelu_tanh(u)
 *        geglu   u = ffn_up(.) [2F], act(u)[j] = gelu_tanh(u[j]) * u[F + j]
 *                (rows 0..F-1 of ffn_up are the gate, F..2F-1 the linear half;
 *                Shazeer 2020, "GLU Variants Improve Transformer")
 *   logits = output_norm(x) . token_embd^T
 * Attn, per head h (d_head = n_embd / n_head; heads are contiguous d_head
 * slices of a d-vector), v = W_v x + b_v, y = W_o concat_h(A_h v_h) + b_o,
 * A_h = causal softmax of logits S_h[i, 0..i]:
 *   random, fixed_random  S_h = R_h                         R_h [L, L]
 *   factorized_random     S_h = R1_h R2_h^T                 R1_h, R2_h [L, k]
 *   dense                 S_h[i,:] = W2_h relu(W1_h x_i + b1_h) + b2_h   [L]
 *   factorized_dense      S_h[i,j] = A_h(x_i)[j % a] * B_h(x_i)[j / a], a*b = L
 *   vanilla               S_h[i,j] = q_i . k_j / sqrt(d_head)
 *   random+vanilla,
 *   dense+vanilla         S = (1 - sigmoid(alpha_h)) * vanilla + sigmoid(alpha_h) * synth
 *
 * Shapes below are row-major [outer, ..., inner]; GGUF lists dims innermost
 * first, so shape [out, in] is stored with ne = {in, out}.
 */
#ifndef ARCH_H
#define ARCH_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ARCH_RANDOM = 0,
    ARCH_FIXED_RANDOM,
    ARCH_FACTORIZED_RANDOM,
    ARCH_DENSE,
    ARCH_FACTORIZED_DENSE,
    ARCH_VANILLA,
    ARCH_RANDOM_VANILLA,
    ARCH_DENSE_VANILLA,
    ARCH_N_VARIANTS
} arch_variant;

/* "random", "fixed_random", ..., "random+vanilla", "dense+vanilla" */
const char *arch_variant_name(arch_variant v);
int arch_variant_parse(const char *s, arch_variant *out); /* 0 or -1 */

/* The feed-forward activation (key synthesizer.feed_forward_activation). */
typedef enum {
    ARCH_FFN_GELU = 0,   /* ffn_up [F, d]: the classic MLP */
    ARCH_FFN_GEGLU,      /* ffn_up [2F, d]: gelu-gated linear unit */
    ARCH_N_FFN
} arch_ffn;

const char *arch_ffn_name(arch_ffn a);                 /* "gelu", "geglu" */
int arch_ffn_parse(const char *s, arch_ffn *out);     /* 0 or -1 */
/* Rows of ffn_up per hidden unit: 1 (gelu) or 2 (geglu). */
int arch_ffn_up_mult(arch_ffn a);

/* What a variant is made of. */
int arch_has_random(arch_variant v);      /* R [H,L,L]: random, fixed_random, random+vanilla */
int arch_has_factorized_random(arch_variant v);
int arch_has_dense(arch_variant v);       /* dense, dense+vanilla */
int arch_has_factorized_dense(arch_variant v);
int arch_has_vanilla(arch_variant v);     /* needs Q, K (and a key cache) */
int arch_has_mix(arch_variant v);         /* alpha per head */
/* Attention independent of the input: softmax(R) can be precomputed. */
int arch_is_static(arch_variant v);

typedef struct {
    int32_t n_vocab;
    int32_t n_ctx;     /* L: maximum context, also the size of R */
    int32_t n_embd;    /* d */
    int32_t n_layer;
    int32_t n_head;    /* H */
    int32_t n_ff;      /* d_ff */
    int32_t fr_rank;   /* k of factorized_random (default 8) */
    int32_t fd_a;      /* a of factorized_dense, a*b = L */
    int32_t fd_b;
    float ln_eps;      /* LayerNorm epsilon (default 1e-5) */
    arch_variant variant;
    arch_ffn ffn;      /* feed-forward activation (default gelu) */
} arch_hparams;

/* Fill the defaults of the engine: d 256, 6 layers, 4 heads, d_ff 1024,
 * L 256, vocab 8192, k 8, a = b = 16, eps 1e-5, random, gelu. */
void arch_hparams_default(arch_hparams *hp);
/* Check ranges and consistency (n_embd % n_head, a*b == L, limits that keep
 * every size computation below 2^62). 0, or -1 with a message in err. */
int arch_hparams_validate(const arch_hparams *hp, char *err, size_t errlen);

/* Tensor kinds. Global kinds come first, then the per-layer kinds. */
typedef enum {
    T_TOKEN_EMBD = 0,  /* [vocab, d] */
    T_POS_EMBD,        /* [L, d] */
    T_OUTPUT_NORM_W,   /* [d] */
    T_OUTPUT_NORM_B,   /* [d] */
    T_N_GLOBAL,
    /* per layer */
    T_ATTN_NORM_W = T_N_GLOBAL, /* [d] */
    T_ATTN_NORM_B,     /* [d] */
    T_ATTN_Q_W,        /* [d, d]   vanilla parts */
    T_ATTN_Q_B,        /* [d] */
    T_ATTN_K_W,        /* [d, d] */
    T_ATTN_K_B,        /* [d] */
    T_ATTN_V_W,        /* [d, d] */
    T_ATTN_V_B,        /* [d] */
    T_ATTN_O_W,        /* [d, d] */
    T_ATTN_O_B,        /* [d] */
    T_RANDOM,          /* [H, L, L] */
    T_RANDOM_A,        /* [H, L, k] */
    T_RANDOM_B,        /* [H, L, k] */
    T_DENSE1_W,        /* [d, d]   row block h = W1_h [d_head, d] */
    T_DENSE1_B,        /* [d] */
    T_DENSE2_W,        /* [H, L, d_head] */
    T_DENSE2_B,        /* [H, L] */
    T_DENSE_A1_W,      /* [d, d] */
    T_DENSE_A1_B,      /* [d] */
    T_DENSE_A2_W,      /* [H, a, d_head] */
    T_DENSE_A2_B,      /* [H, a] */
    T_DENSE_B1_W,      /* [d, d] */
    T_DENSE_B1_B,      /* [d] */
    T_DENSE_B2_W,      /* [H, b, d_head] */
    T_DENSE_B2_B,      /* [H, b] */
    T_MIX,             /* [H] alpha */
    T_FFN_NORM_W,      /* [d] */
    T_FFN_NORM_B,      /* [d] */
    T_FFN_UP_W,        /* [d_ff, d]; geglu [2 d_ff, d] */
    T_FFN_UP_B,        /* [d_ff]; geglu [2 d_ff] */
    T_FFN_DOWN_W,      /* [d, d_ff] */
    T_FFN_DOWN_B,      /* [d] */
    T_N_KINDS
} arch_kind;

#define T_N_LAYER_KINDS (T_N_KINDS - T_N_GLOBAL)
#define ARCH_MAX_NAME 48

typedef struct {
    char name[ARCH_MAX_NAME]; /* e.g. "blk.3.attn_v.weight" */
    arch_kind kind;
    int layer;                /* -1 for global tensors */
    int n_dims;               /* 1..3 */
    int64_t shape[3];         /* row-major, outer first */
    int64_t n_elem;
    int quantizable;          /* 2-D+ matrix used through matmul/row lookup,
                                 inner dim a multiple of 32 */
} arch_tensor;

/* Does the variant have this kind of tensor? */
int arch_kind_present(const arch_hparams *hp, arch_kind k);
/* Name format and shape of one kind for layer il (ignored for globals). */
void arch_kind_spec(const arch_hparams *hp, arch_kind k, int il, arch_tensor *out);
/* The full ordered tensor list of a model: globals, then each layer's kinds
 * in enum order, only those present. Returns the count; writes at most cap
 * entries (call with out=NULL, cap=0 to count). */
int arch_tensors(const arch_hparams *hp, arch_tensor *out, int cap);
/* Total number of parameters. */
int64_t arch_n_params(const arch_hparams *hp);

/* Deterministic initialization of all tensors (arch_tensors() order, one
 * array per tensor) from a seed: embeddings N(0, 0.02), position N(0, 0.01),
 * matrices N(0, 0.02) with attn_output and ffn_down scaled by
 * 1/sqrt(2 n_layer), biases 0, norm weights 1, random logits R N(0, rstd),
 * factorized R1/R2 N(0, sqrt(rstd)), alpha 0. rstd is the std of R. */
void arch_init_params(const arch_hparams *hp, uint64_t seed, float rstd, float *const *tensors);

/* The shared PRNG (xoshiro256** seeded with splitmix64): deterministic on
 * every platform; used by init, dropout and data order. */
typedef struct { uint64_t s[4]; } arch_rng;
void arch_rng_seed(arch_rng *r, uint64_t seed);
uint64_t arch_rng_next(arch_rng *r);
double arch_rng_uniform(arch_rng *r);   /* [0, 1) */
float arch_rng_normal(arch_rng *r);     /* N(0, 1), Box-Muller */

#endif
