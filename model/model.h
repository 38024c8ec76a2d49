/*
 * model.h - inference engine of the Synthesizer LM (definition in arch.h).
 *
 * A model handle is built from a GGUF checkpoint (weights/gguf.h). Its
 * tensors are pointers into the read-only mapping and stay in their stored
 * type (f32, f16, q8_0, q4_0). Each weight matrix also gets one copy at
 * load in the panel layout of model/kern.h (same type, same size within a
 * few percent), which the matmul kernels read: weights are converted to
 * f32 in registers or one small tile at a time, never as a whole.
 *
 * Precomputed at load, because it does not depend on the input:
 *   random / fixed_random / factorized_random: P_l,h = causal softmax of R
 *   (R = R1 R2^T for the factorized variant), [H, L, L] per layer. Attention
 *   for a chunk of positions [p0, p0+n) of a sequence is then one GEMM per
 *   head: Y[n, d_head] = P[p0:p0+n, 0:p0+n] . V[0:p0+n, head slice].
 * Caches: synthesizer variants keep only values per sequence (no query/key
 * projections at all); variants with a vanilla part also keep keys.
 *
 * Threading: model_step only reads the model, so one model may serve
 * several threads that each use their own model_cache (the scratch buffers
 * of a step live in the cache and grow as needed). model_score and
 * model_set_recompute change state owned by the model (a reused internal
 * cache), so they must not run concurrently with anything else on the same
 * model. Inside a call the work is spread over the one thread budget of
 * model_set_threads: the batch-invariant path (the default, and scoring
 * on any CPU with AVX2) runs only the engine's own kernels on the
 * ops_parallel_for pool, a step of several sequences as parts of whole
 * sequences, one thread each (model.c, "sliced steps"); the non-invariant
 * path also calls OpenBLAS GEMMs, never at the same time as the pool.
 *
 * Errors: 0 or a negative MODEL_E* code; model_strerror() names it, and
 * model_load writes "model_load: <what is wrong>" into err.
 */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "tok.h"

enum model_error {
    MODEL_OK = 0,
    MODEL_EIO = -1,      /* file could not be opened/mapped */
    MODEL_EFORMAT = -2,  /* checkpoint malformed or inconsistent */
    MODEL_ENOMEM = -3,
    MODEL_EINVAL = -4,   /* bad argument: token id, slot, length beyond context */
};
const char *model_strerror(int err);

typedef struct model model;

/* Load a checkpoint (GGUF v3). On failure *out is NULL and err names the
 * problem. The model owns the mapping and its tokenizer. */
int model_load(const char *path, model **out, char *err, size_t errlen);
/* Same from a GGUF image in memory (not copied; must outlive the model). */
int model_load_buffer(const void *buf, size_t size, model **out, char *err, size_t errlen);
void model_free(model *m);

const arch_hparams *model_hparams(const model *m);
const tok_t *model_tok(const model *m);
const char *model_name(const model *m);       /* general.name */
uint32_t model_file_type(const model *m);     /* general.file_type (0 f32, 1 f16, 2 q4_0, 7 q8_0) */
const char *model_quant_name(const model *m); /* "f32", "f16", "q8_0", "q4_0" or "mixed" */
int64_t model_n_params(const model *m);
size_t model_file_size(const model *m);
/* Precomputed causal attention of a static variant: [L, L] row-major for
 * (layer, head), row i holds softmax over 0..i and zeros after; NULL for
 * input-dependent variants, bad indices, or when the tables would exceed
 * 1 GiB in total (n_layer * H * L * L floats; the engine then recomputes the
 * softmax rows it needs on every call, with the same results). */
const float *model_static_attention(const model *m, int layer, int head);
/* The mixing logits alpha [H] of a layer of a mixture (random+vanilla,
 * dense+vanilla): S = (1 - sigmoid(alpha_h)) vanilla + sigmoid(alpha_h)
 * synthesizer. NULL for other variants or a bad layer. */
const float *model_mix_alpha(const model *m, int layer);
/* Debug switch (tests): on != 0 makes static variants ignore the
 * precomputed attention and recompute softmax(R) rows on every call through
 * the general attention path; 0 restores the default. */
void model_set_recompute(model *m, int on);

/* ---- engine-wide settings (every model, every thread) ----
 * For start-up (and tests between steps): they wait for a running parallel
 * region but must not race with model_step. */
/* The one thread budget: the ops pool and OpenBLAS both get n threads
 * (<= 0: SYNTH_THREADS, else the online CPUs). Returns the budget. */
int model_set_threads(int n);
int model_threads(void);
/* The CPU level of the kernels (model/kern.h): "auto" (the best this CPU
 * has, the default), or "scalar", "avx2", "avx512" to force a lower one.
 * 0, or MODEL_EINVAL with err naming the problem (an unknown name, or a
 * level this CPU lacks). */
int model_set_cpu(const char *name, char *err, size_t errlen);
const char *model_cpu(void);      /* the level in force */
const char *model_cpu_best(void); /* the best this CPU supports */
/* The activation mode of q8_0 layers (model/kern.h idea 3): "q8" (each
 * row quantized to int8 per 32-block, exact integer dot products: the
 * default) or "f32" (f32 activations, the weights converted). Both are
 * batch invariant; they differ from each other by the rounding of the
 * activations (test word perplexity of the shipped model: see README).
 * 0, or MODEL_EINVAL with err naming an unknown mode. */
int model_set_act(const char *name, char *err, size_t errlen);
const char *model_act(void);
/* The kernel family OpenBLAS selected for this CPU (its corename, e.g.
 * "SkylakeX", "Haswell"; OPENBLAS_CORETYPE overrides it); the engine's
 * GEMMs (prefill, scoring) and the trainer run on it. */
const char *model_blas_core(void);

/* ---- incremental evaluation (prefill and decode) ----
 * A cache holds, for n_slots independent sequences, each layer's values
 * (and keys where a vanilla part exists) at positions 0..len-1. */
typedef struct model_cache model_cache;

/* Precision of the cached values. F16 (the default) halves the cache's
 * memory and the bytes a decoding step reads, which is what many
 * concurrent sequences are bound by: reading every cached value once per
 * token is the random synthesizer's whole attention (bench_model, 64
 * sequences on the project's 2-core AMD EPYC: 14,455 against 11,778
 * tokens/s with F32, 2026-12-04). Each value is rounded to binary16
 * (relative error <= 2^-11, far below the q8_0 weights' 2^-8) once, when
 * it is stored; every later read converts it exactly, so batch and chunking
 * invariance hold as with F32, and the shipped model's WikiText-2 test word
 * perplexity moves by 3e-7 relative (114.858151 to 114.858118). F32 keeps
 * the values exact (the tests that compare the engine with naive f32
 * references use it). Keys (vanilla parts) stay f32. An F16 cache attends
 * every row on its own (the batch-invariant attention path) even with
 * batch invariance off. */
typedef enum { MODEL_CACHE_F32 = 0, MODEL_CACHE_F16 = 1 } model_cache_type;
/* A cache of the model's default precision (model_set_cache_values; F16
 * after loading), and one of a given precision. NULL: no memory, or a bad
 * argument. */
model_cache *model_cache_create(const model *m, int n_slots);
model_cache *model_cache_create_typed(const model *m, int n_slots, model_cache_type values);
/* The precision model_cache_create and model_score (eval.h's scoring goes
 * through it) use from now on: 0, or MODEL_EINVAL. Not thread-safe: set it
 * at start-up, before the model is shared. model_cache_values_default
 * returns it. */
int model_set_cache_values(model *m, model_cache_type values);
model_cache_type model_cache_values_default(const model *m);
model_cache_type model_cache_values(const model_cache *c);
void model_cache_free(model_cache *c);
int model_cache_slots(const model_cache *c);
/* Diagnostics: steps on this cache that ran sliced, i.e. as parts of whole
 * sequences, one pool thread each (batch-invariant caches, 2 or more
 * threads, a step whose sequences split evenly enough). Slicing changes no
 * bit of any result; each part keeps its own scratch arena in the cache
 * (counted by model_cache_bytes). */
long model_cache_sliced_steps(const model_cache *c);
/* The parts of the last step on this cache: returns their number (1:
 * unsliced, 0: no step yet) and puts the first sequence index of each of
 * the first max parts in first_seq (may be NULL). */
int model_cache_last_parts(const model_cache *c, int *first_seq, int max);
/* A sliced step gives pool thread t the part cut for it (part t), sized
 * in proportion to the thread's speed measured on the cache's earlier
 * sliced steps (estimated cost per second, a running average; a speed
 * counts as at most twice and at least half the threads' mean), so a core
 * that other processes or a noisy host slow down gets less to do; before
 * every thread is measured the shares are even.
 * model_cache_thread_speeds copies the first max speeds (0: not measured)
 * and returns how many it copied. model_cache_fix_thread_speeds sets them
 * (n values; NULL: clear them and measure again) and stops measuring: for
 * tests. Neither changes any bit of any result, only who computes it. */
int model_cache_thread_speeds(const model_cache *c, double *speed, int max);
void model_cache_fix_thread_speeds(model_cache *c, const double *speed, int n);
/* A step of many sequences is cut into more parts than threads: up to n
 * per thread (1..16, default 4), each of at least 4 sequences, claimed by
 * whichever thread comes free, so a thread that another process preempts
 * holds the step up by one small part (the server's event loop and
 * clients share the cores). The speed-weighted shares above apply to
 * steps cut into one part per thread (n = 1, or too few sequences for
 * more). 0, or MODEL_EINVAL. Changes no bit of any result. */
int model_cache_set_parts_per_thread(model_cache *c, int n);
int model_cache_len(const model_cache *c, int slot);   /* tokens stored */
void model_cache_reset(model_cache *c, int slot);       /* empty the slot */
/* Generation past the context (the CLI and the server alike): when a
 * slot is full, reset it and feed the last model_context_keep(m) tokens
 * (n_ctx / 2, at least 1) again from position 0: the model learned
 * absolute positions, so cached rows cannot just move. */
int model_context_keep(const model *m);
/* Make slot dst hold the first n positions of slot src (n <= its length).
 * Because steps are chunking-invariant (below), continuing dst gives the
 * very bits of computing its n tokens again: a shared prefix (one context,
 * several continuations) is computed once. MODEL_EINVAL for a bad slot,
 * dst == src or n out of range. */
int model_cache_copy(model_cache *c, int dst, int src, int n);
size_t model_cache_bytes(const model_cache *c);
/* Batch invariance (on by default): every linear layer runs the packed
 * kernels of model/kern.h, whose reduction order per output element does
 * not depend on the batch, and every row is attended on its own exactly as
 * when it is decoded. A sequence's logits are then bit-identical whatever
 * other sequences share the step and however its own tokens are cut into
 * steps (one prefill, chunks, or token by token) - a sampled request
 * returns the same tokens alone or in a full batch, and a cached prefix can
 * be continued instead of recomputed. On AVX-512 this path is as fast as
 * OpenBLAS at every batch size (bench/bench_kernels). Off: batches of more
 * than OPS_PACKED_MAX_N rows use dequantize + sgemm, and prefill chunks
 * one GEMM per head (results within ~1e-5 of the invariant ones, but
 * dependent on the batch and the chunking). */
void model_cache_set_batch_invariant(model_cache *c, int on);

/* One sequence's part of a step: append n_tokens tokens to slot `slot` at
 * positions len..len+n_tokens-1 (prefill when n_tokens > 1, decode when 1). */
typedef struct {
    int slot;
    int n_tokens;
    const int32_t *tokens;
    int logits_all;   /* 1: logits for every appended token; 0: only the last */
} model_seq;

/* Scoring instead of logits, for one sequence of model_step_scored: for
 * each appended token i, logprob[i] = log p(targets[i] | tokens up to i) =
 * the log-softmax of ops.h (ops_log_softmax_z) at targets[i], and greedy[i] = (argmax of
 * the logits == targets[i]) when greedy is set. This is how a scheduler
 * interleaves scoring windows (in chunks, in their own slots) with
 * generation in one step; model_score is built on it. */
typedef struct {
    const int32_t *targets;  /* [n_tokens], or NULL: this sequence gets logits */
    float *logprob;          /* [n_tokens], required with targets */
    uint8_t *greedy;         /* [n_tokens] or NULL */
} model_target;

/* Run one batched step for n_seq distinct slots. Dense layers process all
 * appended rows of all sequences (or of each part of a sliced step, see
 * model_cache_sliced_steps) as one matrix; attention is per sequence.
 * logits receives, in sequence order, n_tokens rows (logits_all) or one row
 * per sequence, each n_vocab floats. The result for a sequence does not
 * depend on the other sequences in the batch: bit for bit with a
 * batch-invariant cache (the default), within ~1e-5 otherwise.
 * MODEL_EINVAL (nothing changed) when a slot repeats, a token id is out of
 * range, or len + n_tokens would exceed n_ctx. */
int model_step(model *m, model_cache *c, int n_seq, const model_seq *seqs, float *logits);

/* The decode row of a generating sequence, the one rule of the CLI and the
 * server: hist[0..n_hist) holds its tokens so far, the last one sampled
 * and not yet fed. The row feeds that token; when the slot is full it
 * resets the slot and feeds the last model_context_keep(m) tokens again
 * from position 0 (a context shift; returns 1, else 0). n_hist must be at
 * least model_context_keep(m) when the slot is full (it is: the slot
 * holds n_ctx of those tokens). */
int model_decode_seq(const model *m, model_cache *c, int slot, const int32_t *hist, int n_hist, model_seq *seq);

/* model_step where sequence q with tg[q].targets set is scored (see
 * model_target) and adds no logits rows; logits may be NULL when every
 * sequence is scored. Also MODEL_EINVAL for a target id out of range or a
 * scored sequence without a logprob array. */
int model_step_scored(model *m, model_cache *c, int n_seq, const model_seq *seqs, const model_target *tg,
                      float *logits);

/* ---- full-sequence scoring ----
 * Evaluate n_seq independent sequences from position 0 (batched like
 * model_step, batch-invariant, using a temporary cache) and return, for
 * every position i, logprob[i] = log p(targets[i] | tokens[0..i]) =
 * the log-softmax of ops.h at targets[i] - the same bits as from
 * model_step's logits - and, if greedy != NULL, greedy[i] = (argmax of the
 * logits at i == targets[i]). Outputs are packed in sequence order.
 * n_tokens[s] <= n_ctx. */
int model_score(model *m, int n_seq, const int32_t *const *tokens, const int32_t *const *targets,
                const int *n_tokens, float *logprob, uint8_t *greedy);

/* ---- attention probe (plots, inspection) ----
 * Run the network on tokens[0..n) at positions 0..n-1 (a temporary cache)
 * and write the attention weights of one layer and head into A [n, n]
 * row-major: row i is the softmax over positions 0..i, zeros after. For
 * static variants these are the rows of softmax(causal(R)) whatever the
 * tokens. Reads the model only (thread-safe like model_step). 0,
 * MODEL_EINVAL (bad layer/head, n outside 1..n_ctx, token id out of range)
 * or MODEL_ENOMEM. */
int model_attention(model *m, int layer, int head, const int32_t *tokens, int n, float *A);

#endif
