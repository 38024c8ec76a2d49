/*
 * srv_json.h - building the JSON answers of `synth serve` (srv_http.c)
 * from a finished or streaming request. Runs on the loop thread only.
 */
#ifndef SRV_JSON_H
#define SRV_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "srv_core.h"

/* Compact, and 12 significant digits: enough for every number we send
 * (float logprobs, double nll) without printing binary noise. */
#define SRV_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

/* A JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD. */
json_t *srv_json_bytes(const char *b, size_t n);
/* {"error": {"type", "message"}} */
char *srv_json_error(const char *type, const char *msg, size_t *len);

/* Bodies of finished requests (malloc'd JSON text); NULL on OOM. */
char *srv_json_generate(srv_server *s, srv_req *r, size_t *len);
char *srv_json_completion(srv_server *s, srv_req *r, size_t *len);
/* A request with kids (srv_core.h): one choice per kid, at its index;
 * usage summed (prompt tokens once per prompt). */
char *srv_json_completion_kids(srv_server *s, srv_req *r, size_t *len);
char *srv_json_score(srv_server *s, srv_req *r, size_t *len);
char *srv_json_models(srv_server *s, size_t *len);
/* GET /tokenizer_info: {eos_token, eos_token_id, vocab_size, model}
 * (eos_token null when the model has none). */
char *srv_json_tokenizer_info(srv_server *s, size_t *len);

/* Server-sent events for tokens sent_tok..n_out-1 (each token's text up to
 * its out_safe mark: bytes that cannot yet be cut by a stop string or a
 * split UTF-8 character wait), and the final event when final is set;
 * appended to *buf (malloc'd, grows). 0 or -1. */
int srv_sse_events(srv_server *s, srv_req *r, int n_out, int final, char **buf, size_t *len, size_t *cap);

const char *srv_finish_name(int finish, int openai);

#endif
