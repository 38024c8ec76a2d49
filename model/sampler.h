/*
 * sampler.h - choosing the next token from logits.
 *
 * Order of operations: repetition penalty over the history (logit > 0
 * divided by the penalty, < 0 multiplied, as llama.cpp); logit_bias added;
 * OpenAI's presence and frequency penalties over the generated tokens
 * (logit -= presence * [count > 0] + frequency * count); the end-of-text
 * token removed while fewer than min_tokens were generated, or always with
 * ignore_eos; then temperature; with
 * temperature == 0 the argmax is taken (ties: lowest id). Otherwise top_k,
 * then softmax, then top_p (smallest set with cumulative mass >= top_p),
 * then min_p (keep p >= min_p * p_max), renormalize, and draw with the
 * sampler's own PRNG (xoshiro256**, seeded by splitmix64 from the seed), so
 * the same seed and logits always give the same token (across platforms up
 * to the last-bit rounding of libm's expf, which could move a draw sitting
 * exactly on a boundary).
 *
 * Threading: a sampler belongs to one request; no shared state.
 */
#ifndef SAMPLER_H
#define SAMPLER_H

#include <stddef.h>
#include <stdint.h>

/* The ranges of the parameters (the server's API uses the same ones). */
#define SAMPLER_MAX_TEMPERATURE 100.0f
#define SAMPLER_MIN_REPETITION_PENALTY 0.01f
#define SAMPLER_MAX_REPETITION_PENALTY 100.0f
#define SAMPLER_MAX_PENALTY 2.0f          /* |presence|, |frequency| (OpenAI's) */
#define SAMPLER_MAX_BIAS 100.0f           /* |logit_bias| (OpenAI's) */

typedef struct {
    float temperature;        /* 0: greedy; default 1.0 */
    int top_k;                /* 0: off */
    float top_p;              /* 1.0: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1.0: off */
    float presence_penalty;   /* 0: off; over the generated tokens */
    float frequency_penalty;  /* 0: off; over the generated tokens */
    const int32_t *bias_id;   /* logit_bias: n_bias token ids (borrowed: they */
    const float *bias;        /* must outlive the sampler) and their biases */
    int n_bias;
    int eos_id;               /* the end-of-text token, -1: none */
    int min_tokens;           /* eos removed until this many are generated */
    int ignore_eos;           /* eos always removed */
    int n_prompt;             /* the history's first n_prompt tokens are the prompt */
    uint64_t seed;
} sampler_params;

/* temperature 1, top_k 0, top_p 1, min_p 0, repetition_penalty 1, no
 * presence/frequency penalty, no bias, eos_id -1, seed 0. */
void sampler_params_default(sampler_params *p);
/* 0, or -1 with a message naming the field in err. Ranges: temperature
 * finite in [0, SAMPLER_MAX_TEMPERATURE], top_k >= 0, top_p in (0, 1],
 * min_p in [0, 1], repetition_penalty in [SAMPLER_MIN_, SAMPLER_MAX_],
 * presence/frequency in [-2, 2], biases in [-100, 100] on ids >= 0,
 * min_tokens >= 0, n_prompt >= 0. */
int sampler_params_validate(const sampler_params *p, char *err, size_t errlen);

/* A candidate token during sampling: its transformed logit, then weight. */
typedef struct {
    double v;
    int id;
} sampler_cand;

typedef struct {
    sampler_params p;
    uint64_t s[4];        /* PRNG state */
    /* scratch, grown to n_vocab on use */
    int n_cap;
    double *val;          /* [n_cap] penalized logits by token id */
    sampler_cand *cand;   /* [n_cap] */
    float *w;             /* [n_cap] sampling weights (unfiltered path) */
    int *cnt;             /* [n_cap] generated-token counts, zero between calls */
} sampler;

/* Copies *p (not validated here: call sampler_params_validate first) and
 * seeds the PRNG. */
void sampler_init(sampler *s, const sampler_params *p);
void sampler_free(sampler *s);
/* Pick a token. logits (n_vocab) are read only (the work happens in the
 * sampler's scratch). history: previously seen tokens (the first
 * p.n_prompt the prompt, the rest generated) for the penalties: the
 * repetition penalty once per distinct id of the whole history, presence
 * and frequency over the generated part; bias ids >= n_vocab are ignored;
 * ids outside [0, n_vocab) are ignored. NaN logits count as -inf; if every
 * logit is -inf the lowest id is returned. Ties in top_k / top_p order go to
 * the lower id. If logprob is not NULL it receives log softmax of the
 * *unmodified* logits at the chosen token (what the model assigned, as
 * OpenAI reports it). Each call with temperature > 0 consumes exactly one
 * PRNG draw. Returns the id, or -1 on allocation failure or bad arguments
 * (logits NULL, n_vocab < 1, history NULL with n_history > 0). */
int sampler_sample(sampler *s, const float *logits, int n_vocab, const int32_t *history, int n_history,
                   float *logprob);

/* Uniform double in [0, 1) from the sampler's PRNG (exposed for tests). */
double sampler_uniform(sampler *s);
/* log softmax of logits at index i by ops_log_softmax_z: the very bits
 * model_score, /score and the top log-probs report (so a greedy token's
 * log-prob equals the largest one exactly); rows with NaN or infinite
 * logits take a careful slower path. */
float sampler_logprob(const float *logits, int n, int i);

#endif
