/*
 * srv_http.c - the loop thread of `synth serve`: libuv owns the process,
 * libmicrohttpd runs in external-event mode (MHD_USE_EPOLL: its one epoll fd
 * is watched by a uv_poll, MHD_get_timeout drives a uv_timer), so there is
 * no thread per connection. See srv_core.h for the threads and the request
 * life cycle.
 *
 * A request: headers -> early checks (route 404, method 405, API key 401,
 * draining 503, Content-Length 413) -> body buffered up to --max-body ->
 * connection suspended, body parsed and tokenized in the libuv pool ->
 * submitted to the worker (503 + Retry-After when the queue is full) ->
 * worker notifies through uv_async -> connection resumed -> response. A
 * stream gets its headers at once and a callback response whose reader
 * suspends the connection until the worker publishes more tokens.
 *
 * While suspended, MHD does not see a client leave, so the connection's fd
 * is watched with a uv_poll from the request's first suspension to its end;
 * end of file there cancels the request and the worker frees its slot at
 * the next step.
 */
#include "srv_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "srv_json.h"
#include "srv_log.h"
#include "srv_prep.h"
#include "srv_static.h"

enum { PH_BODY = 0, PH_PREP, PH_WORKER, PH_DONE, PH_STREAM };

struct srv_watch {
    uv_poll_t h;
    srv_req *r;
};

/* ---- requests ---- */

static void kick(srv_server *s);
static void maybe_finish_drain(srv_server *s);

static void watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void watch_stop(srv_req *r)
{
    srv_watch *w = r->watch;
    if (!w) return;
    r->watch = NULL;
    uv_poll_stop(&w->h);
    uv_close((uv_handle_t *)&w->h, watch_closed);
}

static void req_free_fields(srv_req *r);

/* A kid (srv_core.h) with its parent: its parameters are the parent's,
 * except a prompt text it decoded from token ids itself. */
static void kid_release(srv_req *k)
{
    char *own = k->gen.prompt_ids ? k->gen.prompt : NULL;
    memset(&k->gen, 0, sizeof k->gen);
    free(own);
    req_free_fields(k);
}

static void req_free(srv_req *r)
{
    srv_server *s = r->srv;
    watch_stop(r);
    if (r->all_prev) r->all_prev->all_next = r->all_next;
    else s->all = r->all_next;
    if (r->all_next) r->all_next->all_prev = r->all_prev;
    s->n_live--;
    req_free_fields(r);
    maybe_finish_drain(s);
}

static void req_free_fields(srv_req *r)
{
    for (int i = 0; i < r->n_kids; i++) kid_release(r->kids[i]);
    free(r->kids);
    free(r->body);
    free(r->resp_body);
    srv_gen_params_free(&r->gen);
    srv_score_params_free(&r->sc);
    free(r->hist);
    free(r->prompt_lp);
    free(r->prompt_top_id);
    free(r->prompt_top_lp);
    if (r->sampler_ready) sampler_free(&r->smp);
    free(r->out_ids);
    free(r->out_lp);
    free(r->out_safe);
    free(r->out_top_id);
    free(r->out_top_lp);
    free(r->text);
    for (int i = 0; i < r->n_items; i++) {
        free(r->items[i].s);
        free(r->items[i].win);
        free(r->items[i].lp);
    }
    free(r->items);
    free(r->sse_buf);
    free(r);
}

/* Loop thread only. */
static void req_unref(srv_req *r)
{
    srv_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0) req_free(r);
}

static int route_of(const char *url)
{
    /* the paths are the metrics' route names (one table, srv_metrics.c) */
    for (int i = 0; i <= SRV_R_ATTENTION; i++)
        if (!strcmp(url, srv_route_name(i))) return i;
    if (srv_static_find(url)) return SRV_R_STATIC;   /* the page compiled into the binary */
    return SRV_R_OTHER;
}

static int route_is_get(int route)
{
    return route == SRV_R_HEALTH || route == SRV_R_READY || route == SRV_R_METRICS || route == SRV_R_MODELS ||
           route == SRV_R_TOKENIZER_INFO || route == SRV_R_ATTENTION || route == SRV_R_STATIC;
}

static srv_req *req_new(srv_server *s, struct MHD_Connection *c, const char *url, const char *method)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = c;
    r->refs = 1;
    r->slot = -1;
    r->id = ++s->next_id;
    r->t_arrive = srv_now_ns();
    r->route = route_of(url);
    r->openai = r->route == SRV_R_COMPLETIONS;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    atomic_init(&r->cancel, 0);
    r->all_next = s->all;
    if (s->all) s->all->all_prev = r;
    s->all = r;
    s->n_live++;
    return r;
}

/* ---- responses ---- */

static enum MHD_Result queue_body(srv_req *r, int status, char *body, size_t len, const char *ctype)
{
    srv_server *s = r->srv;
    if (!body) {
        static const char oom[] = "{\"error\":{\"type\":\"server_error\",\"message\":\"out of memory\"}}";
        body = strdup(oom);
        if (!body) return MHD_NO;
        len = strlen(body);
        status = 500;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", route_is_get(r->route) ? "GET, HEAD" : "POST");
    if (s->draining || r->early) MHD_add_response_header(resp, "Connection", "close");
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result queue_error(srv_req *r, int status, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = srv_json_error(type, msg, &len);
    return queue_body(r, status, body, len, "application/json");
}

/* ---- suspend / resume and the disconnect watch ---- */

static void client_gone(srv_req *r);

static void on_watch(uv_poll_t *h, int status, int events)
{
    srv_watch *w = h->data;
    srv_req *r = w->r;
    int fd = -1;
    if (uv_fileno((uv_handle_t *)h, &fd) != 0) return;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        /* Pipelined bytes, not a disconnect: stop watching rather than spin. */
        watch_stop(r);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && status == 0 &&
        !(events & UV_DISCONNECT))
        return;
    client_gone(r);
}

static void watch_start(srv_req *r)
{
    if (r->watch || !r->conn) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return;
    srv_watch *w = calloc(1, sizeof *w);
    if (!w) return;
    w->r = r;
    w->h.data = w;
    if (uv_poll_init_socket(r->srv->loop, &w->h, ci->connect_fd) != 0) {
        free(w);
        return;
    }
    w->h.data = w;
    if (uv_poll_start(&w->h, UV_READABLE | UV_DISCONNECT, on_watch) != 0) {
        uv_close((uv_handle_t *)&w->h, watch_closed);
        return;
    }
    r->watch = w;
}

static void suspend(srv_req *r)
{
    if (r->suspended || !r->conn) return;
    MHD_suspend_connection(r->conn);
    r->suspended = 1;
    watch_start(r);
}

/* The disconnect watch outlives the resume: a stream is suspended and
 * resumed once per token, and a watch started and stopped each time cost
 * six system calls a token (FIONBIO, libuv's epoll probe, add, two deletes)
 * on the loop thread, about a quarter of its time under 32 streaming
 * clients. It is stopped when the request completes (on_completed), the
 * client leaves (client_gone) or pipelined bytes arrive (on_watch). */
static void resume(srv_req *r)
{
    if (!r->suspended || !r->conn) return;
    r->suspended = 0;
    MHD_resume_connection(r->conn);
    kick(r->srv);
}

/* Cancel r (and its kids): the worker drops it at its next step. */
static void cancel_req(srv_req *r)
{
    atomic_store(&r->cancel, 1);
    for (int i = 0; i < r->n_kids; i++) atomic_store(&r->kids[i]->cancel, 1);
    if ((r->in_worker || r->kids_pending) && r->srv->worker) srv_worker_poke(r->srv->worker);
}

static void client_gone(srv_req *r)
{
    watch_stop(r);   /* level-triggered: it would fire again */
    r->gone = 1;
    cancel_req(r);
    resume(r);
}

/* ---- worker -> loop ---- */

/* The worker's wake-up (s->notify_locked, installed by srv_run). */
static void notify_locked(srv_server *s, srv_req *r)
{
    if (!r->in_notify) {
        r->in_notify = 1;
        r->notify_next = s->notify_head;
        s->notify_head = r;
    }
    uv_async_send(&s->async);
}

/* Resume every request the worker flagged. Entries are popped one at a
 * time under the lock: the worker may flag a request again while we process
 * it (re-linking it onto notify_head through notify_next), so a detached
 * list walked without the lock could jump onto the new list, skip entries
 * and process a freed one. */
static void process_notify(srv_server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        srv_req *r = s->notify_head;
        if (!r) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->notify_head = r->notify_next;
        r->notify_next = NULL;
        r->in_notify = 0;
        int done = r->w_done && r->in_worker;
        if (done) r->in_worker = 0;
        pthread_mutex_unlock(&s->mu);
        if (r->parent) { /* a kid: its parent answers when the last one is done */
            srv_req *p = r->parent;
            if (!done) continue;
            req_unref(r);   /* the worker's ref (the parent's keeps the kid) */
            if (--p->kids_pending == 0) {
                if (p->phase == PH_WORKER) p->phase = PH_DONE;
                resume(p);
                req_unref(p);   /* the ref held while kids were in the worker */
            }
            continue;
        }
        if (done && r->phase == PH_WORKER) r->phase = PH_DONE;
        resume(r);
        if (done) req_unref(r);   /* the worker's ref */
    }
}

static void on_async(uv_async_t *a)
{
    process_notify(a->data);
}

/* ---- MHD driven by the loop ---- */

static void on_mhd_timer(uv_timer_t *t);

static void service(srv_server *s)
{
    if (!s->d) return;
    MHD_run(s->d);
    MHD_UNSIGNED_LONG_LONG to = 0;
    int have_to = MHD_get_timeout(s->d, &to) == MHD_YES;
    if (s->rerun) {   /* see on_connection */
        s->rerun = 0;
        have_to = 1;
        to = 0;
    }
    if (have_to) {
        if (to > 3600000) to = 3600000;
        uv_timer_start(&s->mhd_timer, on_mhd_timer, to, 0);
    } else {
        uv_timer_stop(&s->mhd_timer);
    }
}

static void on_mhd_timer(uv_timer_t *t)
{
    service(t->data);
}

static void on_mhd_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    service(h->data);
}

/* Run MHD on the next loop iteration (after a resume). */
static void kick(srv_server *s)
{
    if (s->d && !s->stopping) uv_timer_start(&s->mhd_timer, on_mhd_timer, 0, 0);
}

static void work_prepare(uv_work_t *w)
{
    srv_req *r = w->data;
    srv_prep_request(r->srv, r);   /* srv_prep.c, on the pool thread */
}

/* Submit every kid of r; if the queue refuses one, r is answered 503 once
 * the kids already in the worker are cancelled and done. */
static void submit_kids(srv_server *s, srv_req *r)
{
    int refused = s->stopping || !s->worker;
    for (int i = 0; i < r->n_kids && !refused; i++) {
        if (srv_worker_submit(s->worker, r->kids[i]) != 0) refused = 1;
        else r->kids_pending++;
    }
    if (refused) {
        srv_metrics_add(&s->metrics, 0, 0, 0, 1);
        srv_req_fail(r, 503, "overloaded_error", "the request queue is full (--max-queue %d), retry later",
                     s->cfg.max_queue);
        cancel_req(r);
    }
    if (r->kids_pending) {
        pthread_mutex_lock(&s->mu);
        r->refs++;   /* released when the last kid is done (process_notify) */
        pthread_mutex_unlock(&s->mu);
        r->phase = PH_WORKER;
    }
}

static void work_done(uv_work_t *w, int status)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    if (status != 0 && !r->err_status) srv_req_fail(r, 503, "unavailable_error", "server shutting down");
    if (r->conn && !r->gone) {
        r->phase = PH_DONE;
        int needs_worker = !r->err_status && !r->resp_body;
        if (needs_worker && r->n_kids) {
            submit_kids(s, r);
        } else if (needs_worker) {
            if (s->stopping || !s->worker) {
                srv_req_fail(r, 503, "unavailable_error", "server shutting down");
            } else if (srv_worker_submit(s->worker, r) != 0) {
                srv_metrics_add(&s->metrics, 0, 0, 0, 1);
                srv_req_fail(r, 503, "overloaded_error", "the request queue is full (--max-queue %d), retry later",
                        s->cfg.max_queue);
            } else {
                r->phase = r->gen.stream ? PH_STREAM : PH_WORKER;
            }
        }
        /* A stream starts answering at once; other results resume later. */
        if (r->phase != PH_WORKER) resume(r);
    }
    req_unref(r);   /* the pool's ref */
}

/* ---- SSE ---- */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_req *r = cls;
    srv_server *s = r->srv;
    if (r->sse_off >= r->sse_len) {
        r->sse_off = r->sse_len = 0;
        pthread_mutex_lock(&s->mu);
        int done = r->w_done, n_out = done ? r->n_out : r->n_woken;   /* --stream-interval */
        pthread_mutex_unlock(&s->mu);
        /* An OpenAI echo chunk waits for the first token (or the end): its
         * prompt logprobs are written by the worker's prefill, published
         * with n_out under mu. */
        if (r->sse_tok < n_out || (done && !r->sse_final))
            if (srv_sse_events(s, r, n_out, done, &r->sse_buf, &r->sse_len, &r->sse_cap))
                return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (r->sse_off < r->sse_len) {
        size_t n = r->sse_len - r->sse_off;
        if (n > max) n = max;
        memcpy(buf, r->sse_buf + r->sse_off, n);
        r->sse_off += n;
        return (ssize_t)n;
    }
    if (r->sse_final) return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    suspend(r);   /* until the worker publishes more */
    return 0;
}

static enum MHD_Result start_stream(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- the access handler ---- */

static int key_matches(const char *given, size_t glen, const char *key)
{
    /* Constant time in the given key: every byte of the configured key is
     * compared whatever the input, and the lengths are folded in. */
    size_t klen = strlen(key);
    unsigned char diff = (unsigned char)(glen != klen);
    for (size_t i = 0; i < klen; i++) diff |= (unsigned char)((i < glen ? given[i] : 0) ^ key[i]);
    return diff == 0;
}

static int authorized(srv_server *s, struct MHD_Connection *c)
{
    if (!s->cfg.api_key || !*s->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        if (key_matches(h, strlen(h), s->cfg.api_key)) return 1;
    }
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    return h && key_matches(h, strlen(h), s->cfg.api_key);
}

static enum MHD_Result respond_get(srv_server *s, srv_req *r)
{
    size_t len = 0;
    char *b;
    switch (r->route) {
    case SRV_R_HEALTH:
        return queue_body(r, 200, strdup("{\"status\":\"ok\"}"), 15, "application/json");
    case SRV_R_READY:
        if (s->draining) return queue_error(r, 503, "unavailable_error", "draining");
        return queue_body(r, 200, strdup("{\"status\":\"ready\"}"), 18, "application/json");
    case SRV_R_METRICS:
        b = srv_metrics_render(&s->metrics, &len);
        return queue_body(r, b ? 200 : 500, b, len, "text/plain; version=0.0.4; charset=utf-8");
    case SRV_R_STATIC: {
        const srv_static_file *f = srv_static_find(r->path);
        if (!f) return queue_error(r, 404, "not_found_error", "no route %s", r->path);
        return srv_static_queue(r->conn, f, &r->status);
    }
    case SRV_R_ATTENTION: {
        char err[256];
        int st = srv_attention_request(r->conn, s->m, &b, &len, err, sizeof err);
        if (st != 200)
            return queue_error(r, st, st == 404 ? "not_found_error" : st == 400 ? "invalid_request_error" : "server_error",
                               "%s", err);
        return queue_body(r, 200, b, len, "application/json");
    }
    case SRV_R_TOKENIZER_INFO:
        b = srv_json_tokenizer_info(s, &len);
        return queue_body(r, b ? 200 : 500, b, len, "application/json");
    default:
        b = srv_json_models(s, &len);
        return queue_body(r, 200, b, len, "application/json");
    }
}

static enum MHD_Result respond_done(srv_server *s, srv_req *r)
{
    size_t len = 0;
    char *b;
    if (r->err_status) return queue_error(r, r->err_status, r->err_type, "%s", r->err_msg);
    if (r->resp_body) {
        b = r->resp_body;
        r->resp_body = NULL;
        return queue_body(r, 200, b, r->resp_len, "application/json");
    }
    if (r->n_kids) {
        for (int i = 0; i < r->n_kids; i++) {
            const srv_req *k = r->kids[i];
            if (k->err_status) return queue_error(r, k->err_status, k->err_type, "%s", k->err_msg);
            if (k->finish == SRV_FIN_CANCELLED) return MHD_NO;
        }
        b = srv_json_completion_kids(s, r, &len);
        return queue_body(r, b ? 200 : 500, b, len, "application/json");
    }
    if (r->finish == SRV_FIN_CANCELLED) return MHD_NO;
    if (r->route == SRV_R_SCORE) b = srv_json_score(s, r, &len);
    else if (r->openai) b = srv_json_completion(s, r, &len);
    else b = srv_json_generate(s, r, &len);
    return queue_body(r, 200, b, len, "application/json");
}

/* First call, headers only: answer at once what does not need the body. */
static enum MHD_Result first_call(srv_server *s, srv_req *r, struct MHD_Connection *c)
{
    int is_get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    enum MHD_Result ret = MHD_YES;
    r->early = SRV_EARLY_ANSWERED;   /* set before queueing: early answers close the connection */
    if (r->route == SRV_R_OTHER)
        ret = queue_error(r, 404, "not_found_error", "no route %s", r->path);
    else if (route_is_get(r->route) ? !is_get : strcmp(r->method, "POST"))
        ret = queue_error(r, 405, "method_not_allowed_error", "%s does not accept %s", r->path, r->method);
    else if (r->route != SRV_R_HEALTH && r->route != SRV_R_READY && r->route != SRV_R_STATIC && !authorized(s, c))
        ret = queue_error(r, 401, "authentication_error", "missing or wrong API key");
    else if (s->draining && r->route != SRV_R_HEALTH && r->route != SRV_R_READY)
        ret = queue_error(r, 503, "unavailable_error", "server is shutting down");
    else {
        r->early = SRV_EARLY_NONE;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && !route_is_get(r->route)) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || *end || v > s->cfg.max_body) {
                r->early = SRV_EARLY_ANSWERED;
                ret = queue_error(r, 413, "request_too_large", "body: over the limit of %zu bytes",
                                  s->cfg.max_body);
            }
        }
    }
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r) return MHD_NO;
        *con_cls = r;
        srv_metrics_add(&s->metrics, 1, 0, 0, 0);
        return first_call(s, r, c);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->early == SRV_EARLY_413) {
            r->body_len += n;   /* counting what is dropped */
            return r->body_len > 16 * s->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (r->early || route_is_get(r->route)) return MHD_YES;
        if (r->body_len + n > s->cfg.max_body) {
            /* Chunked body past the limit: stop buffering, drop the rest and
             * answer 413 at its end; cut the connection if it goes on and on. */
            r->early = SRV_EARLY_413;
            free(r->body);
            r->body = NULL;
            r->body_cap = 0;
            r->body_len += n;
            return MHD_YES;
        }
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            while (cap < r->body_len + n) cap *= 2;
            if (cap > s->cfg.max_body) cap = s->cfg.max_body;
            char *p = realloc(r->body, cap);
            if (!p) return MHD_NO;
            r->body = p;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->early == SRV_EARLY_413) {
        r->early = SRV_EARLY_ANSWERED;
        return queue_error(r, 413, "request_too_large", "body: over the limit of %zu bytes", s->cfg.max_body);
    }
    if (r->early) return MHD_YES;
    if (r->gone) return MHD_NO;
    switch (r->phase) {
    case PH_BODY:
        if (route_is_get(r->route)) return respond_get(s, r);
        r->phase = PH_PREP;
        r->work.data = r;
        pthread_mutex_lock(&s->mu);
        r->refs++;
        pthread_mutex_unlock(&s->mu);
        suspend(r);
        if (uv_queue_work(s->loop, &r->work, work_prepare, work_done) != 0) {
            req_unref(r);
            resume(r);
            r->phase = PH_DONE;
            return queue_error(r, 500, "server_error", "cannot queue work");
        }
        return MHD_YES;
    case PH_PREP:
    case PH_WORKER:
        suspend(r);   /* resumed early (e.g. by a spurious wakeup): keep waiting */
        return MHD_YES;
    case PH_STREAM:
        if (r->status) return MHD_YES;
        return start_stream(r);
    default:
        return respond_done(s, r);
    }
}

static void access_log(srv_server *s, srv_req *r, double latency_s)
{
    if (s->cfg.log_level < SRV_LOG_INFO) return;
    char t[40];
    srv_log_time(t, sizeof t);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:o,s:i,s:f,s:i,s:i}", "time", t, "level", "info", "id",
                          (json_int_t)r->id, "method", r->method, "path", srv_json_bytes(r->path, strlen(r->path)),
                          "status", r->status, "latency_ms", latency_s * 1e3, "prompt_tokens",
                          r->n_prompt_text, "completion_tokens", r->n_out);
    if (!j) return;
    if (r->finish && r->route != SRV_R_SCORE) json_object_set_new(j, "finish_reason", json_string(srv_finish_name(r->finish, 0)));
    srv_log_write(j);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    watch_stop(r);
    r->conn = NULL;
    r->suspended = 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        if (!r->status || r->route == SRV_R_GENERATE || r->route == SRV_R_COMPLETIONS) {
            if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) r->status = r->status ? r->status : 408;
            else if (!r->status || r->phase == PH_STREAM) r->status = 499;   /* client went away */
        }
        r->gone = 1;
        cancel_req(r);
    }
    double lat = (double)(srv_now_ns() - r->t_arrive) / 1e9;
    srv_metrics_request(&s->metrics, r->route, r->status, lat);
    srv_metrics_add(&s->metrics, -1, 0, 0, 0);
    access_log(s, r, lat);
    req_unref(r);
}

/* At --max-connections MHD takes its listening socket out of its epoll set
 * and puts it back only at the start of its next run. With external events
 * nothing triggers that run when a connection closes (the socket it would
 * report is out of the set), so waiting clients stayed in the backlog until
 * an unrelated timer (up to --idle-timeout). Run MHD once more after a close
 * at the limit. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_context;
    srv_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) s->n_conn++;
    else if (s->n_conn-- >= s->cfg.max_connections) s->rerun = 1;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    srv_server *s = cls;
    if (s->cfg.log_level < SRV_LOG_DEBUG) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    srv_log(s, SRV_LOG_DEBUG, "mhd: %s", msg);
}

/* ---- shutdown ---- */

static void begin_stop(srv_server *s)
{
    if (s->stopping) return;
    s->stopping = 1;
    uv_stop(s->loop);
}

static void maybe_finish_drain(srv_server *s)
{
    if (s->draining && s->n_live == 0) begin_stop(s);
}

static void on_drain_timeout(uv_timer_t *t)
{
    srv_server *s = t->data;
    srv_log(s, SRV_LOG_WARN, "drain timeout: cancelling %lld request(s) still in flight", (long long)s->n_live);
    begin_stop(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_server *s = h->data;
    if (s->draining) {
        srv_log(s, SRV_LOG_WARN, "second signal %d: exiting now", signum);
        _exit(128 + signum);
    }
    s->draining = 1;
    srv_log(s, SRV_LOG_INFO, "signal %d: draining %lld request(s), up to %g s", signum, (long long)s->n_live,
            s->cfg.drain_timeout_s);
    uv_timer_start(&s->drain_timer, on_drain_timeout, (uint64_t)(s->cfg.drain_timeout_s * 1000), 0);
    maybe_finish_drain(s);
}

/* ---- setup ---- */

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct addrinfo hints = {0}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

static int start_http(srv_server *s)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (resolve(s->cfg.host, s->cfg.port, &ss, &sl)) {
        srv_log(s, SRV_LOG_ERROR, "serve: cannot resolve --host %s", s->cfg.host);
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)s->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)s->cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)(s->cfg.max_header ? s->cfg.max_header : 32768), MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_END);
    if (!s->d) {
        srv_log(s, SRV_LOG_ERROR, "serve: cannot listen on %s:%d: %s", s->cfg.host, s->cfg.port, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!ei || uv_poll_init(s->loop, &s->mhd_poll, ei->epoll_fd) != 0) {
        srv_log(s, SRV_LOG_ERROR, "serve: cannot watch the HTTP daemon's epoll fd");
        return -1;
    }
    s->mhd_poll.data = s;
    uv_poll_start(&s->mhd_poll, UV_READABLE, on_mhd_poll);
    srv_log(s, SRV_LOG_INFO,
            "listening on %s:%d (model %s, batch %d, queue %d, kernels %s of %s, activations %s, %d threads)",
            s->cfg.host, pi ? (int)pi->port : s->cfg.port, model_name(s->m), s->cfg.max_batch, s->cfg.max_queue,
            model_cpu(), model_cpu_best(), model_act(), model_threads());
    service(s);
    return 0;
}

/* After the loop stopped: cancel the worker's requests, release every
 * suspended connection, then stop MHD (its completed callbacks free the
 * requests) and let libuv close its handles and finish pool work. */
static void shutdown_all(srv_server *s)
{
    if (s->worker) {
        srv_worker_free(s->worker);
        s->worker = NULL;
    }
    process_notify(s);
    for (srv_req *r = s->all; r; r = r->all_next) {
        cancel_req(r);
        if (r->suspended) {
            r->gone = 1;
            resume(r);
        }
    }
    if (s->d) {
        MHD_run(s->d);
        uv_close((uv_handle_t *)&s->mhd_poll, NULL);
    }
    close_handle((uv_handle_t *)&s->mhd_timer);
    close_handle((uv_handle_t *)&s->drain_timer);
    close_handle((uv_handle_t *)&s->sigterm);
    close_handle((uv_handle_t *)&s->sigint);
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
    close_handle((uv_handle_t *)&s->async);
    uv_run(s->loop, UV_RUN_DEFAULT);
}

void srv_config_default(srv_config *c)
{
    *c = (srv_config){
        .model_path = NULL,
        .host = "127.0.0.1",
        .port = 8080,
        .max_batch = 32,
        .max_queue = 256,
        .max_body = 1 << 20,
        .api_key = NULL,
        .request_timeout_ms = 0,
        .idle_timeout_s = 30,
        .drain_timeout_s = 30,
        .log_level = SRV_LOG_INFO,
        .max_connections = 1024,
        .max_header = 32768,
        .step_tokens = 512,
        .prefix_slots = 8,
        .cache_type = MODEL_CACHE_F16,
        .stream_interval = 1,
    };
}

int srv_run(const srv_config *cfg)
{
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    int rc = 1;
    char err[512];
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    srv_metrics_init(&s->metrics);
    srv_metrics_engine(&s->metrics, model_cpu(), model_cpu_best(), model_act(), model_threads());
    atomic_init(&s->seed_ctr, 0x5EED);
    int lrc = model_load(cfg->model_path, &s->m, err, sizeof err);
    if (lrc) {
        srv_log(s, SRV_LOG_ERROR, "serve: %s", err[0] ? err : model_strerror(lrc));
        goto out_model;
    }
    if (model_set_cache_values(s->m, cfg->cache_type) != 0) {
        srv_log(s, SRV_LOG_ERROR, "serve: cache type %d is neither f32 nor f16", (int)cfg->cache_type);
        goto out_model;
    }
    s->tok = model_tok(s->m);
    s->n_vocab = model_hparams(s->m)->n_vocab;
    s->n_ctx = model_hparams(s->m)->n_ctx;
    s->eos = tok_eos(s->tok);
    s->max_token_bytes = tok_max_token_bytes(s->tok);
    s->loop = uv_default_loop();
    uv_async_init(s->loop, &s->async, on_async);
    s->async.data = s;
    uv_timer_init(s->loop, &s->mhd_timer);
    s->mhd_timer.data = s;
    uv_timer_init(s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_signal_init(s->loop, &s->sigterm);
    uv_signal_init(s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    s->notify_locked = notify_locked;
    if (srv_worker_create(s, &s->worker, err, sizeof err)) {
        srv_log(s, SRV_LOG_ERROR, "serve: %s", err);
        goto out_loop;
    }
    if (start_http(s)) goto out_loop;
    uv_run(s->loop, UV_RUN_DEFAULT);
    rc = 0;
    srv_log(s, SRV_LOG_INFO, "stopped");
out_loop:
    s->stopping = 1;
    shutdown_all(s);
    uv_loop_close(s->loop);
out_model:
    model_free(s->m);
    srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}
