/* srv_static.c - the embedded playground page and GET /v1/attention (see
 * srv_static.h). Runs on the loop thread; no state of its own. */
#include "srv_static.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"

/* No inline script or style, nothing from another origin, no plugins, no
 * framing, forms post nowhere. Styles set through the CSSOM from app.js
 * (element.style.x = ...) are not inline style and stay allowed. */
#define SRV_CSP                                                                                               \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "          \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const srv_static_file *srv_static_find(const char *path)
{
    if (!path) return NULL;
    for (int i = 0; i < srv_static_count(); i++)
        if (!strcmp(path, srv_static_file_at(i)->path)) return srv_static_file_at(i);
    return NULL;
}

/* One entity tag of a list: skip "W/", compare the quoted opaque part. */
int srv_static_etag_match(const char *h, const char *etag)
{
    if (!h || !etag) return 0;
    size_t el = strlen(etag);
    const char *p = h;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) return 0;
        if (*p == '*') return 1;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        if (*p != '"') return 0;   /* malformed list: no match (a 200 is always safe) */
        const char *q = strchr(p + 1, '"');
        if (!q) return 0;
        size_t n = (size_t)(q - p) + 1;
        if (n == el && !memcmp(p, etag, n)) return 1;
        p = q + 1;
    }
}

void srv_static_add_security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", SRV_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

enum MHD_Result srv_static_queue(struct MHD_Connection *c, const srv_static_file *f, int *status)
{
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    int st = srv_static_etag_match(inm, f->etag) ? 304 : 200;
    /* The bytes live in the binary: MHD_RESPMEM_PERSISTENT sends them
     * without a copy (the cast drops const only for MHD's signature). */
    struct MHD_Response *resp = MHD_create_response_from_buffer(st == 200 ? f->len : 0, (void *)f->data,
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (st == 200) MHD_add_response_header(resp, "Content-Type", f->content_type);
    MHD_add_response_header(resp, "ETag", f->etag);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    srv_static_add_security_headers(resp);
    *status = st;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)st, resp);
    MHD_destroy_response(resp);
    return ret;
}

int srv_static_parse_index(const char *s, int n, int *out)
{
    if (!s || !*s || strlen(s) > 9) return -1;
    if (s[0] == '0' && s[1]) return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v >= n) return -1;
    *out = (int)v;
    return 0;
}

/* ---- /v1/attention ---- */

typedef struct {
    char *b;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *s, const char *t, size_t n)
{
    if (s->oom) return;
    if (s->len + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 4096;
        while (c < s->len + n + 1) c *= 2;
        char *p = realloc(s->b, c);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->b = p;
        s->cap = c;
    }
    memcpy(s->b + s->len, t, n);
    s->len += n;
    s->b[s->len] = 0;
}

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    char t[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof t) {
        s->oom = 1;
        return;
    }
    sb_put(s, t, (size_t)n);
}

int srv_attention_json(const model *m, int layer, int head, char **body, size_t *len, char *err, size_t errlen)
{
    *body = NULL;
    *len = 0;
    const arch_hparams *hp = model_hparams(m);
    if (layer < 0 || layer >= hp->n_layer) {
        snprintf(err, errlen, "layer: must be an integer in [0, %d)", hp->n_layer);
        return 400;
    }
    if (head < 0 || head >= hp->n_head) {
        snprintf(err, errlen, "head: must be an integer in [0, %d)", hp->n_head);
        return 400;
    }
    if (!arch_is_static(hp->variant)) {
        snprintf(err, errlen,
                 "attention: variant %s computes its attention from the input; only random, fixed_random "
                 "and factorized_random have a precomputed map",
                 arch_variant_name(hp->variant));
        return 404;
    }
    const float *P = model_static_attention(m, layer, head); /* [L, L] row-major, causal */
    if (!P) {
        snprintf(err, errlen, "attention: this model's attention tables are too large to precompute");
        return 404;
    }
    const int L = hp->n_ctx;
    sbuf s = {0};
    sb_printf(&s,
              "{\"object\":\"attention\",\"variant\":\"%s\",\"layer\":%d,\"head\":%d,\"n_layer\":%d,"
              "\"n_head\":%d,\"n_ctx\":%d,\"rows\":[",
              arch_variant_name(hp->variant), layer, head, hp->n_layer, hp->n_head, L);
    for (int i = 0; i < L && !s.oom; i++) {
        sb_put(&s, i ? ",[" : "[", i ? 2 : 1);
        for (int j = 0; j <= i; j++) {
            float v = P[(size_t)i * L + j];
            /* softmax weights are finite and in [0, 1]; guard the JSON anyway */
            if (!(v >= 0.0f && v <= 1.0f)) v = 0.0f;
            sb_printf(&s, j ? ",%.6g" : "%.6g", (double)v);
        }
        sb_put(&s, "]", 1);
    }
    sb_put(&s, "]}", 2);
    if (s.oom) {
        free(s.b);
        snprintf(err, errlen, "attention: out of memory");
        return 500;
    }
    *body = s.b;
    *len = s.len;
    return 200;
}

typedef struct {
    const char *layer, *head;
    int n_layer, n_head;
    char bad[64];
} query;

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    query *q = cls;
    if (q->bad[0]) return MHD_NO;
    const char **slot = NULL;
    int *count = NULL;
    if (key && !strcmp(key, "layer")) slot = &q->layer, count = &q->n_layer;
    else if (key && !strcmp(key, "head")) slot = &q->head, count = &q->n_head;
    if (!slot) {
        snprintf(q->bad, sizeof q->bad, "%.40s: unknown query parameter", key ? key : "");
        return MHD_NO;
    }
    if (++*count > 1) {
        snprintf(q->bad, sizeof q->bad, "%s: given more than once", key);
        return MHD_NO;
    }
    *slot = value ? value : "";
    return MHD_YES;
}

int srv_attention_request(struct MHD_Connection *c, const model *m, char **body, size_t *len, char *err,
                          size_t errlen)
{
    *body = NULL;
    *len = 0;
    query q = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, &q);
    if (q.bad[0]) {
        snprintf(err, errlen, "%s", q.bad);
        return 400;
    }
    const arch_hparams *hp = model_hparams(m);
    int layer = -1, head = -1;
    if (srv_static_parse_index(q.layer, hp->n_layer, &layer)) {
        snprintf(err, errlen, "layer: must be an integer in [0, %d)", hp->n_layer);
        return 400;
    }
    if (srv_static_parse_index(q.head, hp->n_head, &head)) {
        snprintf(err, errlen, "head: must be an integer in [0, %d)", hp->n_head);
        return 400;
    }
    return srv_attention_json(m, layer, head, body, len, err, errlen);
}
