/*
 * srv_prep.h - the pool stage of `synth serve`: between the loop, which
 * buffered a request's body, and the worker, which runs the model.
 *
 * Thread: libuv's thread pool (uv_queue_work from srv_http.c), one request
 * at a time; it reads the server's immutable state (model, tokenizer,
 * config) and writes only the request. The body is parsed and validated
 * (srv_api.h: a 400 names the field), prompts and texts are tokenized and
 * checked against the model, and the request leaves with one of:
 *   - what the worker runs (r->hist and sampler for generation, score
 *     items and windows for /score);
 *   - a complete answer (r->resp_body: /tokenize, /detokenize);
 *   - an error (r->err_status, r->err_type, r->err_msg).
 * The body buffer is freed either way.
 */
#ifndef SRV_PREP_H
#define SRV_PREP_H

#include "srv_core.h"

void srv_prep_request(srv_server *s, srv_req *r);
/* Record an error answer for r: HTTP status, OpenAI-style error type, and
 * a message that names the field or the problem. */
void srv_req_fail(srv_req *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
