/*
 * eval.h - perplexity of texts (the numbers `synth score` and the server's
 * /score report) and the log-likelihood of a continuation.
 *
 * Protocol: the text is tokenized; the end-of-text token is put before it as
 * context at position 0, so the first real token is scored too. With N text
 * tokens and context L, the stream s = [eos, t_0 .. t_{N-1}] is scored with
 * windows of L tokens and stride L/2: window w starts at w*L/2 and covers
 * s[start .. start+L-1]; it scores the targets s[start+1 .. start+L] but only
 * those not scored by an earlier window, so every text token is scored
 * exactly once and, after the first window, with at least L/2 tokens of
 * context.
 *
 * Word count (WikiText convention): whitespace-separated words plus the
 * number of lines (a last line without '\n' counts too).
 *   nll             total negative log-likelihood in nats
 *   perplexity      exp(nll / n_tokens)
 *   word_perplexity exp(nll / n_words)
 *   bits_per_byte   nll / (ln 2 * n_bytes)
 */
#ifndef EVAL_H
#define EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct {
    int64_t n_tokens;   /* text tokens scored */
    int64_t n_words;    /* words + lines */
    int64_t n_bytes;
    double nll;
    double perplexity;
    double word_perplexity;
    double bits_per_byte;
} eval_result;

/* One scoring window over the stream s = [eos, text tokens...]. */
typedef struct {
    int64_t start;     /* first input position in s */
    int len;           /* inputs s[start .. start+len-1], len <= L */
    int first_scored;  /* targets at offsets >= first_scored are counted */
} eval_window;

/* Plan the windows for n_text text tokens at context L (L >= 2). Returns the
 * count; writes at most cap (out NULL to count). */
int64_t eval_plan_windows(int64_t n_text, int L, eval_window *out, int64_t cap);

/* Words + lines of a text, per the convention above. */
int64_t eval_count_words(const char *text, size_t len);

/* Fill the derived fields of r from nll, n_tokens, n_words, n_bytes. */
void eval_finish(eval_result *r);

typedef void (*eval_progress_fn)(int64_t done, int64_t total, void *ud);

/* Score a text. Windows are evaluated max_batch at a time through
 * model_score. If ids/logprobs are not NULL they receive malloc'd arrays of
 * the n_tokens text token ids and their log-probabilities. */
int eval_text(model *m, const char *text, size_t len, int max_batch, eval_result *r, int32_t **ids,
              float **logprobs, eval_progress_fn progress, void *ud);

/* The continuation protocol, one plan for eval_continuation and the
 * server's /score {context, continuation}: the stream [eos, context,
 * continuation] as one window (start 0, len nc + nk, first_scored nc: the
 * targets from the first continuation token on are counted), where the
 * context, when 1 + nc + nk > L, loses its first *drop tokens if truncate
 * is set. Returns 0, or EVAL_CONT_EMPTY (no continuation token),
 * EVAL_CONT_LONG (the continuation alone does not fit: 1 + nk > L) or
 * EVAL_CONT_CONTEXT (context + continuation do not fit, no truncate). */
enum { EVAL_CONT_EMPTY = 1, EVAL_CONT_LONG, EVAL_CONT_CONTEXT };
int eval_plan_continuation(size_t nc, size_t nk, int L, int truncate, size_t *drop, eval_window *w);

/* log p(continuation | context) summed over the continuation's tokens, and
 * whether every continuation token is the argmax (lm-evaluation-harness's
 * loglikelihood). The context is preceded by eos; context and continuation
 * are tokenized separately. MODEL_EINVAL if 1 + ctx + cont tokens > L
 * (the context is left-truncated to fit when truncate is set). */
int eval_continuation(model *m, const char *ctx, size_t ctx_len, const char *cont, size_t cont_len,
                      int truncate, double *logprob, int *is_greedy, int *n_cont_tokens);

#endif
