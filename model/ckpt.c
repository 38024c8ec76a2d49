/*
 * ckpt.c - Synthesizer checkpoints on GGUF: the metadata schema (documented
 * in weights/README.md), writing, validation of hparams and tensors, and
 * conversion between tensor types.
 */
#include "ckpt.h"
#include "quant.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCH_NAME "synthesizer"
#define QUANT_VERSION 2 /* ggml's quantization_version of the q8_0/q4_0 layouts */

static void errf(char *err, size_t errlen, const char *fn, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    int n = snprintf(err, errlen, "%s: ", fn);
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

int ckpt_file_type(uint32_t type)
{
    switch (type) {
    case QUANT_F32: return CKPT_FTYPE_F32;
    case QUANT_F16: return CKPT_FTYPE_F16;
    case QUANT_Q8_0: return CKPT_FTYPE_Q8_0;
    case QUANT_Q4_0: return CKPT_FTYPE_Q4_0;
    default: return -1;
    }
}

static int is_quantized(uint32_t type) { return type == QUANT_Q8_0 || type == QUANT_Q4_0; }

/* The tensor list of hp (malloc'd, *n entries). */
static arch_tensor *tensor_list(const arch_hparams *hp, int *n)
{
    *n = arch_tensors(hp, NULL, 0);
    arch_tensor *ts = malloc((size_t)*n * sizeof *ts + 1);
    if (ts) arch_tensors(hp, ts, *n);
    return ts;
}

/* GGUF ne of a row-major shape: reversed. */
static void shape_to_ne(const arch_tensor *t, int64_t ne[GGUF_MAX_DIMS])
{
    for (int i = 0; i < GGUF_MAX_DIMS; i++) ne[i] = 1;
    for (int i = 0; i < t->n_dims; i++) ne[i] = t->shape[t->n_dims - 1 - i];
}

/* ---- writing ---- */

static int check_desc(const ckpt_desc *d, char *err, size_t errlen, const char *fn)
{
    char msg[200];
    if (!d || !d->hp) { errf(err, errlen, fn, "NULL descriptor"); return GGUF_EINVAL; }
    if (arch_hparams_validate(d->hp, msg, sizeof msg)) { errf(err, errlen, fn, "%s", msg); return GGUF_EINVAL; }
    if (d->n_vocab != d->hp->n_vocab || !d->vocab) {
        errf(err, errlen, fn, "vocabulary has %d strings, hparams say n_vocab %d", d->n_vocab, d->hp->n_vocab);
        return GGUF_EINVAL;
    }
    for (int i = 0; i < d->n_vocab; i++)
        if (!d->vocab[i]) { errf(err, errlen, fn, "vocabulary string %d is NULL", i); return GGUF_EINVAL; }
    if (d->n_merges < 0 || (d->n_merges > 0 && !d->merges)) { errf(err, errlen, fn, "bad merges"); return GGUF_EINVAL; }
    for (int i = 0; i < d->n_merges; i++)
        if (!d->merges[i]) { errf(err, errlen, fn, "merge %d is NULL", i); return GGUF_EINVAL; }
    if (d->eos_id >= d->n_vocab) {
        errf(err, errlen, fn, "eos id %d out of range [0, %d)", d->eos_id, d->n_vocab);
        return GGUF_EINVAL;
    }
    if (ckpt_file_type(d->type) < 0) { errf(err, errlen, fn, "unsupported tensor type %u", d->type); return GGUF_EINVAL; }
    if (!d->tensors) { errf(err, errlen, fn, "NULL tensor list"); return GGUF_EINVAL; }
    return 0;
}

static int set_metadata(gguf_writer *w, const ckpt_desc *d)
{
    const arch_hparams *hp = d->hp;
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", ARCH_NAME);
    rc |= gguf_writer_set_str(w, "general.name", d->name ? d->name : ARCH_NAME);
    rc |= gguf_writer_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    rc |= gguf_writer_set_u32(w, "general.file_type", (uint32_t)ckpt_file_type(d->type));
    if (is_quantized(d->type)) rc |= gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".context_length", (uint32_t)hp->n_ctx);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".embedding_length", (uint32_t)hp->n_embd);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".block_count", (uint32_t)hp->n_layer);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".feed_forward_length", (uint32_t)hp->n_ff);
    rc |= gguf_writer_set_str(w, ARCH_NAME ".feed_forward_activation", arch_ffn_name(hp->ffn));
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".attention.head_count", (uint32_t)hp->n_head);
    rc |= gguf_writer_set_str(w, ARCH_NAME ".attention.variant", arch_variant_name(hp->variant));
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".attention.factorized_rank", (uint32_t)hp->fr_rank);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".attention.factorized_dense_a", (uint32_t)hp->fd_a);
    rc |= gguf_writer_set_u32(w, ARCH_NAME ".attention.factorized_dense_b", (uint32_t)hp->fd_b);
    rc |= gguf_writer_set_f32(w, ARCH_NAME ".attention.layer_norm_epsilon", hp->ln_eps);
    rc |= gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", d->vocab, (uint64_t)d->n_vocab);
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", d->merges, (uint64_t)d->n_merges);
    if (d->eos_id >= 0) rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)d->eos_id);
    return rc ? GGUF_ENOMEM : 0; /* arguments were checked: only allocation can fail */
}

/* Build a writer holding all keys and tensors. Quantized copies are
 * allocated into bufs[i] (freed by the caller); f32 tensors are referenced. */
static int build_writer(const ckpt_desc *d, gguf_writer **out, void ***bufs_out, int *n_out, char *err,
                        size_t errlen, const char *fn)
{
    int n, rc;
    arch_tensor *ts = tensor_list(d->hp, &n);
    void **bufs = calloc((size_t)n + 1, sizeof *bufs);
    gguf_writer *w = gguf_writer_create();
    if (!ts || !bufs || !w) { rc = GGUF_ENOMEM; errf(err, errlen, fn, "out of memory"); goto fail; }
    if ((rc = set_metadata(w, d))) { errf(err, errlen, fn, "out of memory"); goto fail; }
    for (int i = 0; i < n; i++) {
        const arch_tensor *t = &ts[i];
        const float *src = d->tensors[i];
        if (!src) { rc = GGUF_EINVAL; errf(err, errlen, fn, "tensor '%s' is NULL", t->name); goto fail; }
        for (int64_t e = 0; e < t->n_elem; e++)
            if (!isfinite(src[e])) {
                rc = GGUF_EINVAL;
                errf(err, errlen, fn, "tensor '%s' element %lld is not finite", t->name, (long long)e);
                goto fail;
            }
        uint32_t type = t->quantizable ? d->type : QUANT_F32;
        size_t nbytes = quant_row_size(type, (uint64_t)t->n_elem);
        const void *data = src;
        if (type != QUANT_F32) {
            if (!(bufs[i] = malloc(nbytes))) { rc = GGUF_ENOMEM; errf(err, errlen, fn, "out of memory"); goto fail; }
            /* rows are contiguous and hold whole blocks (inner dim % 32 == 0
             * for quantizable tensors), so the tensor is one long row */
            quant_quantize_row(type, src, bufs[i], t->n_elem);
            data = bufs[i];
        }
        int64_t ne[GGUF_MAX_DIMS];
        shape_to_ne(t, ne);
        if ((rc = gguf_writer_add_tensor(w, t->name, type, (uint32_t)t->n_dims, ne, data, nbytes))) {
            errf(err, errlen, fn, "cannot add tensor '%s': %s", t->name, gguf_strerror(rc));
            goto fail;
        }
    }
    free(ts);
    *out = w;
    *bufs_out = bufs;
    *n_out = n;
    return 0;
fail:
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    gguf_writer_free(w);
    return rc;
}

static void free_bufs(void **bufs, int n)
{
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
}

int ckpt_write(const ckpt_desc *d, const char *path, char *err, size_t errlen)
{
    static const char fn[] = "ckpt_write";
    gguf_writer *w;
    void **bufs;
    int n;
    if (err && errlen) err[0] = 0;
    if (!path) { errf(err, errlen, fn, "NULL path"); return GGUF_EINVAL; }
    int rc = check_desc(d, err, errlen, fn);
    if (rc || (rc = build_writer(d, &w, &bufs, &n, err, errlen, fn))) return rc;
    rc = gguf_writer_write(w, path, err, errlen);
    gguf_writer_free(w);
    free_bufs(bufs, n);
    return rc;
}

int ckpt_write_buffer(const ckpt_desc *d, void **buf, size_t *size, char *err, size_t errlen)
{
    static const char fn[] = "ckpt_write_buffer";
    gguf_writer *w;
    void **bufs;
    int n;
    if (err && errlen) err[0] = 0;
    if (!buf || !size) { errf(err, errlen, fn, "NULL output"); return GGUF_EINVAL; }
    int rc = check_desc(d, err, errlen, fn);
    if (rc || (rc = build_writer(d, &w, &bufs, &n, err, errlen, fn))) return rc;
    rc = gguf_writer_write_buffer(w, buf, size);
    if (rc) errf(err, errlen, fn, "%s", gguf_strerror(rc));
    gguf_writer_free(w);
    free_bufs(bufs, n);
    return rc;
}

/* ---- reading ---- */

static int need_i32(const gguf_file *f, const char *key, int32_t *out, char *err, size_t errlen)
{
    static const char fn[] = "ckpt_read_hparams";
    uint32_t v;
    int rc = gguf_get_u32(f, key, &v);
    if (rc == GGUF_ENOTFOUND) { errf(err, errlen, fn, "missing key %s", key); return GGUF_EFORMAT; }
    if (rc) { errf(err, errlen, fn, "key %s is not an unsigned 32-bit integer", key); return GGUF_EFORMAT; }
    if (v > INT32_MAX) { errf(err, errlen, fn, "key %s = %u out of range", key, v); return GGUF_EFORMAT; }
    *out = (int32_t)v;
    return 0;
}

static int need_str(const gguf_file *f, const char *key, const char **out, char *err, size_t errlen)
{
    static const char fn[] = "ckpt_read_hparams";
    size_t len;
    int rc = gguf_get_str(f, key, out, &len);
    if (rc == GGUF_ENOTFOUND) { errf(err, errlen, fn, "missing key %s", key); return GGUF_EFORMAT; }
    if (rc) { errf(err, errlen, fn, "key %s is not a string", key); return GGUF_EFORMAT; }
    if (strlen(*out) != len) { errf(err, errlen, fn, "key %s contains a NUL byte", key); return GGUF_EFORMAT; }
    return 0;
}

int ckpt_read_hparams(const gguf_file *f, arch_hparams *hp, char *err, size_t errlen)
{
    static const char fn[] = "ckpt_read_hparams";
    const char *s;
    char msg[200];
    arch_hparams h;
    int rc;
    if (err && errlen) err[0] = 0;
    if (!f || !hp) { errf(err, errlen, fn, "NULL argument"); return GGUF_EINVAL; }
    memset(&h, 0, sizeof h);
    if ((rc = need_str(f, "general.architecture", &s, err, errlen))) return rc;
    if (strcmp(s, ARCH_NAME) != 0) {
        errf(err, errlen, fn, "general.architecture is '%.64s', expected '" ARCH_NAME "'", s);
        return GGUF_EFORMAT;
    }
    if ((rc = need_i32(f, ARCH_NAME ".context_length", &h.n_ctx, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".embedding_length", &h.n_embd, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".block_count", &h.n_layer, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".feed_forward_length", &h.n_ff, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".attention.head_count", &h.n_head, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".attention.factorized_rank", &h.fr_rank, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".attention.factorized_dense_a", &h.fd_a, err, errlen)) ||
        (rc = need_i32(f, ARCH_NAME ".attention.factorized_dense_b", &h.fd_b, err, errlen)))
        return rc;
    rc = gguf_get_f32(f, ARCH_NAME ".attention.layer_norm_epsilon", &h.ln_eps);
    if (rc) {
        errf(err, errlen, fn, rc == GGUF_ENOTFOUND ? "missing key %s" : "key %s is not a float",
             ARCH_NAME ".attention.layer_norm_epsilon");
        return GGUF_EFORMAT;
    }
    if ((rc = need_str(f, ARCH_NAME ".attention.variant", &s, err, errlen))) return rc;
    if (arch_variant_parse(s, &h.variant)) {
        errf(err, errlen, fn, "unknown attention variant '%.64s' (key " ARCH_NAME ".attention.variant)", s);
        return GGUF_EFORMAT;
    }
    /* Optional: files written before GEGLU existed have no such key. */
    h.ffn = ARCH_FFN_GELU;
    if (gguf_get_str(f, ARCH_NAME ".feed_forward_activation", &s, NULL) != GGUF_ENOTFOUND) {
        if ((rc = need_str(f, ARCH_NAME ".feed_forward_activation", &s, err, errlen))) return rc;
        if (arch_ffn_parse(s, &h.ffn)) {
            errf(err, errlen, fn, "unknown feed-forward activation '%.64s' (key " ARCH_NAME
                 ".feed_forward_activation)", s);
            return GGUF_EFORMAT;
        }
    }
    if ((rc = need_str(f, "tokenizer.ggml.model", &s, err, errlen))) return rc;
    if (strcmp(s, "gpt2") != 0) {
        errf(err, errlen, fn, "tokenizer.ggml.model is '%.64s', expected 'gpt2'", s);
        return GGUF_EFORMAT;
    }
    const char *const *toks;
    uint64_t nv;
    rc = gguf_get_arr_str(f, "tokenizer.ggml.tokens", &toks, NULL, &nv);
    if (rc) {
        errf(err, errlen, fn, rc == GGUF_ENOTFOUND ? "missing key %s" : "key %s is not a string array",
             "tokenizer.ggml.tokens");
        return GGUF_EFORMAT;
    }
    if (nv > INT32_MAX) { errf(err, errlen, fn, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)nv); return GGUF_EFORMAT; }
    h.n_vocab = (int32_t)nv;
    if (arch_hparams_validate(&h, msg, sizeof msg)) { errf(err, errlen, fn, "%s", msg); return GGUF_EFORMAT; }
    *hp = h;
    return 0;
}

static const char *ne_str(const int64_t *ne, uint32_t n_dims, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n_dims && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "{", (long long)ne[i]);
    if (o < len) snprintf(buf + o, len - o, "}");
    return buf;
}

int ckpt_check_tensors(const gguf_file *f, const arch_hparams *hp, const gguf_tensor_info **out, char *err,
                       size_t errlen)
{
    static const char fn[] = "ckpt_check_tensors";
    int n, rc = 0;
    if (err && errlen) err[0] = 0;
    if (!f || !hp) { errf(err, errlen, fn, "NULL argument"); return GGUF_EINVAL; }
    arch_tensor *ts = tensor_list(hp, &n);
    int64_t nt = gguf_n_tensors(f);
    unsigned char *seen = calloc((size_t)nt + 1, 1);
    if (!ts || !seen) { free(ts); free(seen); errf(err, errlen, fn, "out of memory"); return GGUF_ENOMEM; }
    const gguf_tensor_info *base = gguf_tensor(f, 0);
    for (int i = 0; i < n && !rc; i++) {
        const arch_tensor *t = &ts[i];
        const gguf_tensor_info *g = gguf_find_tensor(f, t->name);
        int64_t ne[GGUF_MAX_DIMS];
        char b1[96], b2[96];
        shape_to_ne(t, ne);
        rc = GGUF_EFORMAT;
        if (!g) {
            errf(err, errlen, fn, "missing tensor '%s'", t->name);
        } else if (g->n_dims != (uint32_t)t->n_dims || memcmp(g->ne, ne, sizeof ne) != 0) {
            errf(err, errlen, fn, "tensor '%s' has ne %s, expected %s", t->name, ne_str(g->ne, g->n_dims, b1, sizeof b1),
                 ne_str(ne, (uint32_t)t->n_dims, b2, sizeof b2));
        } else if (!quant_get_traits(g->type) ||
                   (!t->quantizable && g->type != QUANT_F32 && g->type != QUANT_F16)) {
            errf(err, errlen, fn, "tensor '%s' has type %s, %s", t->name, quant_type_name(g->type),
                 t->quantizable ? "not supported" : "expected f32 or f16 (it must not be quantized)");
        } else {
            rc = 0;
            seen[g - base] = 1;
            if (out) out[i] = g;
        }
    }
    for (int64_t i = 0; i < nt && !rc; i++)
        if (!seen[i]) {
            errf(err, errlen, fn, "unexpected tensor '%.64s' (not part of a %s model)", gguf_tensor(f, i)->name,
                 arch_variant_name(hp->variant));
            rc = GGUF_EFORMAT;
        }
    free(seen);
    free(ts);
    return rc;
}

/* ---- conversion ---- */

/* Convert one tensor to `type` into a new buffer (*buf), or reference the
 * stored bytes when the type is unchanged. */
static int convert_tensor(const gguf_tensor_info *g, uint32_t type, const void **data, size_t *nbytes, void **buf)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < g->n_dims; d++) n *= g->ne[d];
    *buf = NULL;
    if (g->type == type) {
        *data = g->data;
        *nbytes = g->nbytes;
        return 0;
    }
    *nbytes = quant_row_size(type, (uint64_t)n);
    float *tmp = malloc((size_t)n * sizeof *tmp);
    *buf = malloc(*nbytes + 1);
    if (!tmp || !*buf) { free(tmp); free(*buf); *buf = NULL; return GGUF_ENOMEM; }
    quant_dequantize_row(g->type, g->data, tmp, n);
    quant_quantize_row(type, tmp, *buf, n);
    free(tmp);
    *data = *buf;
    return 0;
}

int ckpt_quantize(const char *in_path, const char *out_path, uint32_t type, char *err, size_t errlen)
{
    return ckpt_quantize_mixed(in_path, out_path, type, type, err, errlen);
}

int ckpt_quantize_mixed(const char *in_path, const char *out_path, uint32_t type, uint32_t embd_type, char *err,
                        size_t errlen)
{
    static const char fn[] = "ckpt_quantize";
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    const gguf_tensor_info **infos = NULL;
    arch_tensor *ts = NULL;
    void **bufs = NULL;
    arch_hparams hp;
    int n = 0, rc;
    if (err && errlen) err[0] = 0;
    if (!in_path || !out_path) { errf(err, errlen, fn, "NULL path"); return GGUF_EINVAL; }
    if (ckpt_file_type(type) < 0) { errf(err, errlen, fn, "unsupported tensor type %u", type); return GGUF_EINVAL; }
    if (ckpt_file_type(embd_type) < 0) {
        errf(err, errlen, fn, "unsupported token embedding type %u", embd_type);
        return GGUF_EINVAL;
    }
    if ((rc = gguf_open(in_path, &f, err, errlen))) return rc;
    if ((rc = ckpt_read_hparams(f, &hp, err, errlen))) goto done;
    ts = tensor_list(&hp, &n);
    infos = calloc((size_t)n + 1, sizeof *infos);
    bufs = calloc((size_t)n + 1, sizeof *bufs);
    w = gguf_writer_create();
    if (!ts || !infos || !bufs || !w) { rc = GGUF_ENOMEM; errf(err, errlen, fn, "out of memory"); goto done; }
    if ((rc = ckpt_check_tensors(f, &hp, infos, err, errlen))) goto done;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        if (strcmp(gguf_kv_key(f, i), "general.quantization_version") == 0) continue;
        if ((rc = gguf_writer_copy_kv(w, f, i))) { errf(err, errlen, fn, "out of memory"); goto done; }
    }
    rc = gguf_writer_set_u32(w, "general.file_type", (uint32_t)ckpt_file_type(type));
    if (!rc && (is_quantized(type) || is_quantized(embd_type)))
        rc = gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION);
    if (rc) { errf(err, errlen, fn, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        const gguf_tensor_info *g = infos[i];
        const void *data;
        size_t nbytes;
        uint32_t t = !ts[i].quantizable ? g->type : ts[i].kind == T_TOKEN_EMBD ? embd_type : type;
        if ((rc = convert_tensor(g, t, &data, &nbytes, &bufs[i]))) { errf(err, errlen, fn, "out of memory"); goto done; }
        if ((rc = gguf_writer_add_tensor(w, g->name, t, g->n_dims, g->ne, data, nbytes))) {
            errf(err, errlen, fn, "cannot add tensor '%s': %s", g->name, gguf_strerror(rc));
            goto done;
        }
    }
    rc = gguf_writer_write(w, out_path, err, errlen);
done:
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(infos);
    free(ts);
    gguf_writer_free(w);
    gguf_close(f);
    return rc;
}
