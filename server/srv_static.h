/*
 * srv_static.h - the playground page of `synth serve` (GET /) and the
 * attention map endpoint it draws (GET /v1/attention).
 *
 * The page's files (server/web/: index.html, app.js, style.css,
 * favicon.svg) are compiled into the binary at build time
 * (server/srv_static_data.c includes them with the assembler's .incbin, so
 * an edit in server/web/ only needs a rebuild; tests/test_static checks
 * that every served file is embedded byte for byte). Static routes never touch the
 * filesystem and need no API key (the page itself asks for the key and
 * sends it as a header on its API calls).
 *
 * Every static answer carries its ETag (a hash of the content computed by
 * at first use) with "Cache-Control: no-cache", so a browser revalidates
 * and gets a 304 without a body while the binary is unchanged, plus a
 * strict Content-Security-Policy (scripts, styles, images and fetches from
 * the page's own origin only, no inline code, no framing).
 *
 * GET /v1/attention?layer=N&head=H (API key like every API route)
 *   -> {"object": "attention", "variant", "layer", "head", "n_layer",
 *       "n_head", "n_ctx", "rows": [[P00], [P10, P11], ...]}
 *   the precomputed causal attention of a static variant (random,
 *   fixed_random, factorized_random; model_static_attention): row i holds
 *   the i+1 weights of query position i over key positions 0..i (the zeros
 *   after the diagonal are left out), 6 significant digits.
 *   400: layer/head missing, not a decimal integer, out of range, repeated,
 *   or another query parameter; 404: the variant's attention depends on
 *   the input (or the tables were too large to precompute).
 */
#ifndef SRV_STATIC_H
#define SRV_STATIC_H

#include <microhttpd.h>
#include <stddef.h>

#include "model.h"

typedef struct {
    const char *path;           /* URL path, "/" for index.html */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *etag;           /* quoted strong validator, e.g. "\"3f2a...\"" */
} srv_static_file;

/* The embedded files (server/srv_static_data.c): count, and the i-th
 * (NULL out of range); data[len] is a NUL not counted in len. Thread-safe;
 * lengths and ETags are computed on first use. */
int srv_static_count(void);
const srv_static_file *srv_static_file_at(int i);

/* The embedded file served at this URL path (no query string), or NULL. */
const srv_static_file *srv_static_find(const char *path);

/* Does an If-None-Match header value ("*", or a comma-separated list of
 * entity tags, weak W/ ones included: RFC 9110 uses weak comparison for
 * it) match etag? NULL header: no. */
int srv_static_etag_match(const char *if_none_match, const char *etag);

/* The security headers of the page (CSP and friends), added to resp. */
void srv_static_add_security_headers(struct MHD_Response *resp);

/* Queue the answer for f on c: 200 with the bytes (no copy), or 304 when
 * the request's If-None-Match matches. *status gets the code sent. */
enum MHD_Result srv_static_queue(struct MHD_Connection *c, const srv_static_file *f, int *status);

/* Parse a decimal index in [0, n): digits only, no sign or spaces, no
 * leading zeros but "0" itself. 0 with *out set, or -1. */
int srv_static_parse_index(const char *s, int n, int *out);

/* The JSON body of /v1/attention for (layer, head) of m (malloc'd, *len
 * bytes). Returns the HTTP status: 200 with *body set; 400 (bad index) or
 * 404 (no precomputed attention) or 500 (out of memory) with a message in
 * err and *body NULL. */
int srv_attention_json(const model *m, int layer, int head, char **body, size_t *len, char *err,
                       size_t errlen);

/* GET /v1/attention on connection c: reads and validates the query (layer,
 * head, nothing else), then srv_attention_json. Same return and outputs. */
int srv_attention_request(struct MHD_Connection *c, const model *m, char **body, size_t *len, char *err,
                          size_t errlen);

#endif
