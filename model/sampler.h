/*
 * sampler.h - choosing the next token from logits.
 *
 * Order of operations (as in llama.cpp): repetition penalty over the history
 * (logit > 0 divided by the penalty, < 0 multiplied), then temperature; with
 * temperature == 0 the argmax is taken (ties: lowest id). Otherwise top_k,
 * then softmax, then top_p (smallest set with cumulative mass >= top_p),
 * then min_p (keep p >= min_p * p_max), renormalize, and draw with the
 * sampler's own PRNG (xoshiro256**, seeded by splitmix64 from the seed), so
 * the same seed and logits always give the same token on every platform.
 *
 * Threading: a sampler belongs to one request; no shared state.
 */
#ifndef SAMPLER_H
#define SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature;        /* 0: greedy; default 1.0 */
    int top_k;                /* 0: off */
    float top_p;              /* 1.0: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1.0: off */
    uint64_t seed;
} sampler_params;

void sampler_params_default(sampler_params *p);
/* 0, or -1 with a message naming the field in err. */
int sampler_params_validate(const sampler_params *p, char *err, size_t errlen);

typedef struct {
    sampler_params p;
    uint64_t s[4];   /* PRNG state */
    /* scratch, sized for n_vocab on first use */
    int n_cap;
    int *idx;
    float *prob;
} sampler;

void sampler_init(sampler *s, const sampler_params *p);
void sampler_free(sampler *s);
/* Pick a token. logits (n_vocab) are modified in place. history: previously
 * seen tokens (prompt and generated) for the repetition penalty. If logprob
 * is not NULL it receives log softmax of the *unmodified* logits at the
 * chosen token (what the model assigned, as OpenAI reports it). Returns the
 * id, or -1 on allocation failure. */
int sampler_sample(sampler *s, float *logits, int n_vocab, const int32_t *history, int n_history,
                   float *logprob);

/* Uniform double in [0, 1) from the sampler's PRNG (exposed for tests). */
double sampler_uniform(sampler *s);
/* log softmax of logits at index i, computed stably. */
float sampler_logprob(const float *logits, int n, int i);

#endif
