/*
 * srv_api.h - request bodies of the HTTP API parsed and validated into plain
 * C structs. The parsers are pure functions of the body bytes (no model, no
 * server state), so they can be unit-tested and fuzzed on their own; checks
 * that need the model (token ids against the vocabulary, prompt length
 * against the context) happen later, in srv_http.c.
 *
 * Every parser returns 0, or -1 with a message in err that starts with the
 * offending field ("max_tokens: must be an integer in [0, 16384]"); the
 * server sends it as a 400 invalid_request_error.
 *
 * The HTTP API of `synth serve` (JSON in and out; a JSON null field means
 * its default; unknown fields are 400 except on /v1/completions):
 *
 * POST /generate {prompt, max_tokens 64, temperature 1, top_k 0, top_p 1,
 *     min_p 0, repetition_penalty 1, presence_penalty 0, frequency_penalty
 *     0 (OpenAI's, over the generated tokens, in [-2, 2]), logit_bias
 *     {"id": bias in [-100, 100]} (at most 1024), min_tokens 0 (end-of-text
 *     held back until then; <= max_tokens), ignore_eos false, seed (random
 *     if absent), stop: string or [strings], logprobs false, stream false,
 *     truncate false, timeout_ms} (the sampler's order: sampler.h)
 *   -> {text, tokens: [{id, text, logprob (if logprobs)}], finish_reason
 *      "length"|"stop"|"eos", usage {prompt_tokens, completion_tokens},
 *      timings {queue_ms, prefill_ms, decode_ms}}
 *   The prompt is preceded by the end-of-text token (as in scoring), so an
 *   empty prompt is allowed. `text` stops before a stop string; `tokens`
 *   lists every sampled token. The prompt must fit the context (400)
 *   unless truncate drops its oldest tokens (so that prompt + max_tokens
 *   fit when they can). Generation past the end of the context goes on
 *   from its last half, computed again from position 0 (the model learned
 *   absolute positions); usage.context_shifts counts how often (OpenAI's
 *   usage has the field when it is not 0).
 *   stream: text/event-stream, one "data: {token: {...}, text: delta}" per
 *   token (deltas hold back bytes that may start a stop string or split a
 *   UTF-8 character), then "data: {text, finish_reason, usage, timings}".
 * POST /v1/completions - OpenAI: {prompt (a string, [ids], or a batch of
 *     up to 64: [strings] or [[ids], ...]), n (choices per prompt, 1..16),
 *     best_of (candidates per prompt, n..16: the n with the highest mean
 *     token log-prob are answered, best first); several prompts, n > 1
 *     or best_of > 1: no stream; every candidate is a generation of its
 *     own, batched by the worker, candidate c of a prompt seeded seed + c;
 *     choices[prompt * n + rank]; usage summed over every candidate),
 *     max_tokens 16 (0 allowed with echo), temperature, top_p, top_k,
 *     min_p, repetition_penalty, presence_penalty, frequency_penalty,
 *     logit_bias, min_tokens, ignore_eos, stop, seed, stream,
 *     stream_options {include_usage} (with stream only), logprobs (0..5 or
 *     bool), echo, model and user (strings, accepted, unused)}; any other
 *     field (suffix, ...) is a 400 naming it.
 *   A prompt longer than the context (400 on /generate): with echo +
 *     logprobs it is scored with /score's sliding windows (the token
 *     log-probs are synth score's; top_logprobs null); tokens to generate
 *     continue from its last half (without echo + logprobs: read from its
 *     last half, usage.context_shifts 1)
 *   -> {id, object "text_completion", created, model, choices: [{text,
 *      index, logprobs: {tokens, token_logprobs, top_logprobs, text_offset}
 *      | null, finish_reason "stop"|"length"}], usage}; stream: chunks of
 *      the same shape, the last with finish_reason and usage (with
 *      include_usage: usage null there, then a chunk with choices [] and
 *      the usage), then "data: [DONE]". echo lists the prompt's tokens as
 *      sent: a leading end-of-text token given by the client too (null
 *      log-prob), though usage.prompt_tokens does not count it.
 * POST /score {text} | {texts: [...]} | {context, continuation};
 *     token_logprobs false, truncate false (context), timeout_ms
 *   -> per text {tokens, words, bytes, nll, perplexity, word_perplexity,
 *      bits_per_byte, token_logprobs?: [{id, text, logprob}]} (texts:
 *      {results: [...]}); context: {logprob, is_greedy, tokens}. Same
 *      windows and numbers as `synth score` (eval.h).
 * POST /tokenize {text | prompt, add_special_tokens false, with_pieces
 *     false} -> {tokens: [ids], pieces?: [strings]}; POST /detokenize
 *     {tokens} -> {text, prompt} (the same string under both names).
 * GET /tokenizer_info -> {eos_token, eos_token_id, vocab_size, model}.
 *   These three are lm-evaluation-harness's remote-tokenizer protocol.
 *   The end-of-text token's text ("<|endoftext|>") is that token on every
 *   route (prompts, /score texts, /tokenize) and /detokenize writes it
 *   back; a prompt, /score text or context that starts with it gets no
 *   second one (it is the one the server puts first).
 * GET /health (200 while the process runs), /ready (503 while draining),
 *     /metrics (Prometheus text), /v1/models (OpenAI's list; the model
 *     object adds variant, sizes, quantization, cpu: the kernel level in
 *     force, threads: the compute budget).
 * GET / (the playground page and its files, compiled in, no API key) and
 *     GET /v1/attention?layer=N&head=H (precomputed attention of the
 *     static variants): see srv_static.h.
 * Errors: {"error": {"type", "message"}}: 400 invalid_request_error,
 *   401 authentication_error, 404 not_found_error, 405
 *   method_not_allowed_error (+Allow), 413 request_too_large, 500
 *   server_error, 503 overloaded_error / unavailable_error (+Retry-After),
 *   504 timeout_error (deadline passed).
 */
#ifndef SRV_API_H
#define SRV_API_H

#include <stddef.h>
#include <stdint.h>

#include "gen.h"
#include "sampler.h"

#define SRV_MAX_STOP GEN_MAX_STOP /* stop strings per request */
#define SRV_MAX_STOP_LEN 256    /* bytes per stop string */
#define SRV_MAX_TOKENS 16384  /* upper bound of max_tokens: each token keeps its id, log-prob and text
                                * until the answer; past the context the generation slides */
#define SRV_MAX_TOP_LOGPROBS 5  /* OpenAI's limit for "logprobs" */
#define SRV_MAX_TEXTS 1024      /* texts of one /score request */
#define SRV_MAX_BIAS 1024       /* logit_bias entries */
#define SRV_MAX_PROMPTS 64      /* prompts of one /v1/completions request */
#define SRV_MAX_CHOICES 16      /* n: choices per prompt */

/* One more prompt of an OpenAI batch: text, or token ids. */
typedef struct {
    char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
} srv_prompt;

/* POST /generate and POST /v1/completions. */
typedef struct {
    char *prompt;             /* owned, may contain NUL bytes; NULL when token ids were given */
    size_t prompt_len;
    int32_t *prompt_ids;      /* OpenAI prompt given as token ids (range-checked later) */
    int n_prompt_ids;
    int max_tokens;           /* /generate default 64, OpenAI default 16 */
    sampler_params sp;
    int seed_set;             /* 0: the server picks a seed */
    char **stop;              /* owned strings, n_stop of them */
    size_t *stop_len;
    int n_stop;
    int logprobs;             /* /generate: 0/1; OpenAI: -1 (null) or 0..5 top alternatives */
    int stream;
    int include_usage;        /* OpenAI stream_options.include_usage: usage in a chunk of its own */
    int echo;                 /* OpenAI: prepend the prompt to the text */
    int truncate;             /* drop the oldest prompt tokens to fit the context */
    srv_prompt *more;         /* OpenAI batch: prompts 1.. (the first is prompt/prompt_ids) */
    int n_more;
    int n;                    /* OpenAI: choices per prompt (1..SRV_MAX_CHOICES) */
    int best_of;              /* candidates per prompt (n..SRV_MAX_CHOICES): the n best by mean log-prob */
    int32_t *bias_id;         /* logit_bias, owned (sp.bias_id/bias point here) */
    float *bias;
    /* sp also carries presence/frequency_penalty, min_tokens, ignore_eos */
    int64_t timeout_ms;       /* 0: the server's --request-timeout */
} srv_gen_params;

enum { SRV_SCORE_TEXT = 0, SRV_SCORE_TEXTS, SRV_SCORE_CONT };

/* POST /score: {text}, {texts: [...]}, or {context, continuation}. */
typedef struct {
    int kind;
    char **texts;             /* owned; one entry for SRV_SCORE_TEXT */
    size_t *lens;
    int n_texts;
    char *ctx, *cont;         /* SRV_SCORE_CONT */
    size_t ctx_len, cont_len;
    int token_logprobs;
    int truncate;             /* SRV_SCORE_CONT: left-truncate the context to fit */
    int64_t timeout_ms;
} srv_score_params;

int srv_parse_generate(const char *body, size_t len, int openai, srv_gen_params *out, char *err,
                       size_t errlen);
void srv_gen_params_free(srv_gen_params *p);

int srv_parse_score(const char *body, size_t len, srv_score_params *out, char *err, size_t errlen);
void srv_score_params_free(srv_score_params *p);

/* POST /tokenize: the text (malloc'd, NUL-terminated, len bytes) from
 * "text" or "prompt" (lm-evaluation-harness's name; one of the two);
 * add_special_tokens (false): put end-of-text before it as generation and
 * scoring do; with_pieces (false): also answer each token's text. */
typedef struct {
    char *text;
    size_t len;
    int add_special_tokens, with_pieces;
} srv_tokenize_params;
int srv_parse_tokenize(const char *body, size_t len, srv_tokenize_params *out, char *err, size_t errlen);
/* {tokens: [ids]} -> malloc'd ids (ids >= 0 and < 2^31 here; vocabulary later). */
int srv_parse_detokenize(const char *body, size_t len, int32_t **ids, int *n, char *err,
                         size_t errlen);

#endif
