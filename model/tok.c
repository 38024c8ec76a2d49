/*
 * tok.c - GPT-2 byte-level BPE: the tokenizer object, encoding with a
 * shared piece cache, decoding, GGUF keys (the byte mapping, hash maps and
 * pre-tokenizer are in tok_impl.c, learning merges in tok_learn.c).
 *
 * Encoding runs BPE inside each pre-tokenized piece with GPT-2's semantics:
 * repeatedly take the lowest-ranked adjacent pair present and merge all of
 * its occurrences left to right. Done with per-rank buckets of pair
 * positions and a heap of the non-empty ranks, one rank at a time
 * ("rounds"); pairs created during a round are queued only after it, which
 * makes the result identical to the reference loop while staying fast on
 * long pieces.
 *
 * The piece cache (piece bytes -> ids) is shared by all callers of one tok_t
 * and protected by a mutex held only for the lookup/insert, never during BPE.
 * It is cleared when it grows past TOK_CACHE_MAX_BYTES.
 */
#include "tok.h"
#include "tok_impl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_CACHE_MAX_PIECE 128           /* longer pieces are not cached */
#define TOK_CACHE_MAX_BYTES (32u << 20)   /* clear the cache beyond this */

const char *tok_strerror(int err)
{
    switch (err) {
    case TOK_OK: return "success";
    case TOK_EFORMAT: return "inconsistent vocabulary or merges";
    case TOK_ENOMEM: return "out of memory";
    case TOK_EINVAL: return "invalid argument";
    default: return "unknown tokenizer error";
    }
}

static void tok_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ the tok_t */

struct tok {
    int n_vocab, eos_id, n_merges;
    char **vocab;          /* [n_vocab] mapped strings, owned */
    uint8_t *raw;          /* raw bytes of all tokens */
    size_t *raw_off;       /* [n_vocab + 1] */
    int32_t byte_id[256];
    tok_pmap merges;       /* (left << 32 | right) -> merge index (rank) */
    int32_t *merge_res;    /* [n_merges] result token of each merge */
    int32_t *merge_l, *merge_r; /* [n_merges] its left and right tokens */
    pthread_mutex_t lock;  /* protects cache and cache_ids */
    tok_smap cache;        /* piece bytes -> (offset in cache_ids, count) */
    int32_t *cache_ids;
    size_t cache_nids, cache_capids;
};

void tok_free(tok_t *t)
{
    if (!t)
        return;
    if (t->vocab) {
        for (int i = 0; i < t->n_vocab; i++)
            free(t->vocab[i]);
        free(t->vocab);
    }
    free(t->raw);
    free(t->raw_off);
    tok_pmap_free(&t->merges);
    free(t->merge_res);
    free(t->merge_l);
    free(t->merge_r);
    tok_smap_free(&t->cache);
    free(t->cache_ids);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int tok_n_vocab(const tok_t *t) { return t ? t->n_vocab : 0; }
int tok_eos(const tok_t *t) { return t ? t->eos_id : -1; }

const char *tok_vocab_str(const tok_t *t, int id)
{
    if (!t || id < 0 || id >= t->n_vocab)
        return NULL;
    return t->vocab[id];
}

int tok_token_bytes(const tok_t *t, int id, const char **bytes, size_t *len)
{
    if (!t || id < 0 || id >= t->n_vocab || !bytes || !len)
        return TOK_EINVAL;
    *bytes = (const char *)t->raw + t->raw_off[id];
    *len = t->raw_off[id + 1] - t->raw_off[id];
    return TOK_OK;
}

size_t tok_max_token_bytes(const tok_t *t)
{
    size_t best = 1;
    for (int i = 0; t && i < t->n_vocab; i++)
        if (t->raw_off[i + 1] - t->raw_off[i] > best) best = t->raw_off[i + 1] - t->raw_off[i];
    return best;
}

/* Copy the vocabulary and compute raw bytes; fills `map` (raw bytes -> id). */
static int tok_create_vocab(tok_t *t, const char *const *vocab, tok_smap *map, char *err, size_t errlen)
{
    size_t total = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (!vocab[i]) {
            tok_err(err, errlen, "tok_create: token %d is NULL", i);
            return TOK_EINVAL;
        }
        total += strlen(vocab[i]);
    }
    t->vocab = calloc((size_t)t->n_vocab, sizeof(*t->vocab));
    t->raw = malloc(total + 1);
    t->raw_off = malloc(((size_t)t->n_vocab + 1) * sizeof(*t->raw_off));
    if (!t->vocab || !t->raw || !t->raw_off)
        return TOK_ENOMEM;
    size_t off = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        size_t sl = strlen(vocab[i]);
        if (sl == 0) {
            tok_err(err, errlen, "tok_create: token %d is empty", i);
            return TOK_EFORMAT;
        }
        t->vocab[i] = malloc(sl + 1);
        if (!t->vocab[i])
            return TOK_ENOMEM;
        memcpy(t->vocab[i], vocab[i], sl + 1);
        long n = tok_unmap(vocab[i], sl, t->raw + off);
        if (n < 0) {
            if (i != t->eos_id) {
                tok_err(err, errlen, "tok_create: token %d (\"%.40s\") is not in the GPT-2 byte mapping",
                        i, vocab[i]);
                return TOK_EFORMAT;
            }
            /* a special token outside the mapping stands for its own bytes */
            memcpy(t->raw + off, vocab[i], sl);
            n = (long)sl;
        }
        t->raw_off[i] = off;
        uint32_t h = tok_hash_bytes(t->raw + off, (size_t)n);
        long prev = tok_smap_find(map, t->raw + off, (size_t)n, h);
        if (prev >= 0) {
            tok_err(err, errlen, "tok_create: token %d (\"%.40s\") duplicates token %u", i, vocab[i],
                    map->ents[prev].v0);
            return TOK_EFORMAT;
        }
        if (tok_smap_add(map, t->raw + off, (size_t)n, h, (uint32_t)i, 0) < 0)
            return TOK_ENOMEM;
        off += (size_t)n;
    }
    t->raw_off[t->n_vocab] = off;
    return TOK_OK;
}

static int tok_lookup_raw(const tok_smap *map, const uint8_t *raw, size_t n)
{
    long e = tok_smap_find(map, raw, n, tok_hash_bytes(raw, n));
    return e < 0 ? -1 : (int)map->ents[e].v0;
}

/* Parse "left right" and register the merge with rank r. */
static int tok_create_merge(tok_t *t, const tok_smap *map, const char *m, int r, char *err, size_t errlen)
{
    const char *sp = m ? strchr(m, ' ') : NULL;
    if (!sp || sp == m || sp[1] == '\0' || strchr(sp + 1, ' ')) {
        tok_err(err, errlen, "tok_create: merge %d (\"%.40s\") is not \"left right\"", r, m ? m : "(null)");
        return TOK_EFORMAT;
    }
    size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
    uint8_t *buf = malloc(ll + rl);
    if (!buf)
        return TOK_ENOMEM;
    int ret = TOK_EFORMAT;
    long nl = tok_unmap(m, ll, buf);
    long nr = nl < 0 ? -1 : tok_unmap(sp + 1, rl, buf + nl);
    if (nl < 0 || nr < 0) {
        tok_err(err, errlen, "tok_create: merge %d (\"%.40s\") is not in the GPT-2 byte mapping", r, m);
        goto out;
    }
    int a = tok_lookup_raw(map, buf, (size_t)nl);
    int b = tok_lookup_raw(map, buf + nl, (size_t)nr);
    int c = tok_lookup_raw(map, buf, (size_t)(nl + nr));
    if (a < 0 || b < 0) {
        tok_err(err, errlen, "tok_create: merge %d (\"%.40s\") names an unknown token", r, m);
        goto out;
    }
    if (c < 0) {
        tok_err(err, errlen, "tok_create: the result of merge %d (\"%.40s\") is not in the vocabulary", r, m);
        goto out;
    }
    if (c == t->eos_id) {
        tok_err(err, errlen, "tok_create: merge %d (\"%.40s\") produces the special token", r, m);
        goto out;
    }
    t->merge_res[r] = c;
    t->merge_l[r] = a;
    t->merge_r[r] = b;
    uint32_t *v;
    /* a repeated pair keeps its first (highest-priority) rank */
    ret = tok_pmap_upsert(&t->merges, (uint64_t)a << 32 | (uint32_t)b, (uint32_t)r, &v) < 0 ? TOK_ENOMEM : TOK_OK;
out:
    free(buf);
    return ret;
}

int tok_create(const char *const *vocab, int n_vocab, const char *const *merges, int n_merges,
               int eos_id, tok_t **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!vocab || !out || n_vocab < 1 || n_vocab > (1 << 30) || n_merges < 0 ||
        (n_merges > 0 && !merges) || eos_id >= n_vocab) {
        tok_err(err, errlen, "tok_create: bad arguments (n_vocab %d, n_merges %d, eos_id %d)", n_vocab,
                n_merges, eos_id);
        return TOK_EINVAL;
    }
    tok_impl_init();
    tok_smap map = {0};
    tok_t *t = calloc(1, sizeof(*t));
    if (!t)
        return TOK_ENOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return TOK_ENOMEM;
    }
    t->n_vocab = n_vocab;
    t->eos_id = eos_id < 0 ? -1 : eos_id;
    t->n_merges = n_merges;
    int ret = tok_create_vocab(t, vocab, &map, err, errlen);
    if (ret < 0)
        goto fail;
    for (int b = 0; b < 256; b++) {
        uint8_t raw = (uint8_t)b;
        int id = tok_lookup_raw(&map, &raw, 1);
        if (id < 0 || id == t->eos_id) {
            char s[3] = {0};
            tok_byte_to_utf8(raw, s);
            tok_err(err, errlen, id < 0 ? "tok_create: no token for byte 0x%02x (\"%s\")"
                                        : "tok_create: the token of byte 0x%02x (\"%s\") is the eos token",
                    b, s);
            ret = TOK_EFORMAT;
            goto fail;
        }
        t->byte_id[b] = id;
    }
    t->merge_res = malloc(((size_t)n_merges + 1) * sizeof(*t->merge_res));
    t->merge_l = malloc(((size_t)n_merges + 1) * sizeof(*t->merge_l));
    t->merge_r = malloc(((size_t)n_merges + 1) * sizeof(*t->merge_r));
    if (!t->merge_res || !t->merge_l || !t->merge_r) {
        ret = TOK_ENOMEM;
        goto fail;
    }
    for (int r = 0; r < n_merges; r++) {
        ret = tok_create_merge(t, &map, merges[r], r, err, errlen);
        if (ret < 0)
            goto fail;
    }
    tok_smap_free(&map);
    *out = t;
    return TOK_OK;
fail:
    if (ret == TOK_ENOMEM)
        tok_err(err, errlen, "tok_create: out of memory");
    tok_smap_free(&map);
    tok_free(t);
    return ret;
}

/* ------------------------------------------------------------- encoding */

/* Per-call scratch for BPE on one piece. Pairs waiting to be merged sit in
 * per-rank buckets (singly linked lists of entries); a small min-heap holds
 * the ranks whose bucket is not empty, so a round is: pop the lowest rank,
 * take its whole bucket. The heap has at most n_merges elements (it stays
 * in cache), unlike a heap of all pair occurrences. */
typedef struct {
    int32_t *id, *prev, *next, *pend;  /* [cap] symbols of the piece */
    size_t cap;
    int32_t *bhead;                    /* [n_merges] first entry or -1 */
    int32_t *epos, *enext;             /* entries: position, next in bucket */
    size_t nent, ent_cap;
    int32_t *rheap;                    /* ranks with a non-empty bucket */
    size_t nrheap, rheap_cap;
    int32_t *round;                    /* positions of the current round */
    size_t round_cap;
    int32_t *out;                      /* the ids of the whole call */
    size_t nout, out_cap;
} tok_work;

static void tok_work_free(tok_work *w)
{
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->pend);
    free(w->bhead);
    free(w->epos);
    free(w->enext);
    free(w->rheap);
    free(w->round);
    free(w->out);
}

static int tok_out_reserve(tok_work *w, size_t extra)
{
    return tok_grow((void **)&w->out, &w->out_cap, w->nout + extra, sizeof(int32_t), 64);
}

static int tok_work_reserve(tok_work *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t nc = w->cap ? w->cap : 64;
    while (nc < n)
        nc *= 2;
    int32_t *a = realloc(w->id, nc * sizeof(int32_t));
    if (a) w->id = a;
    int32_t *b = realloc(w->prev, nc * sizeof(int32_t));
    if (b) w->prev = b;
    int32_t *c = realloc(w->next, nc * sizeof(int32_t));
    if (c) w->next = c;
    int32_t *d = realloc(w->pend, 2 * nc * sizeof(int32_t));
    if (d) w->pend = d;
    if (!a || !b || !c || !d)
        return TOK_ENOMEM;
    w->cap = nc;
    return 0;
}

static int tok_rheap_push(tok_work *w, int32_t r)
{
    if (tok_grow((void **)&w->rheap, &w->rheap_cap, w->nrheap + 1, sizeof(int32_t), 64) < 0)
        return TOK_ENOMEM;
    size_t i = w->nrheap++;
    while (i > 0 && w->rheap[(i - 1) / 2] > r) {
        w->rheap[i] = w->rheap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->rheap[i] = r;
    return 0;
}

static int32_t tok_rheap_pop(tok_work *w)
{
    int32_t top = w->rheap[0], last = w->rheap[--w->nrheap];
    size_t i = 0, n = w->nrheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && w->rheap[c + 1] < w->rheap[c])
            c++;
        if (w->rheap[c] >= last)
            break;
        w->rheap[i] = w->rheap[c];
        i = c;
    }
    if (n)
        w->rheap[i] = last;
    return top;
}

/* Queue the pair starting at symbol p if it is a known merge. */
static int tok_push_pair(const tok_t *t, tok_work *w, int32_t p)
{
    if (p < 0 || w->id[p] < 0 || w->next[p] < 0)
        return 0;
    uint32_t m;
    if (!tok_pmap_get(&t->merges, (uint64_t)(uint32_t)w->id[p] << 32 | (uint32_t)w->id[w->next[p]], &m))
        return 0;
    if (w->nent == w->ent_cap) {
        size_t nc = w->ent_cap ? w->ent_cap * 2 : 256;
        int32_t *a = realloc(w->epos, nc * sizeof(int32_t));
        if (a)
            w->epos = a;
        int32_t *b = realloc(w->enext, nc * sizeof(int32_t));
        if (b)
            w->enext = b;
        if (!a || !b)
            return TOK_ENOMEM;
        w->ent_cap = nc;
    }
    size_t e = w->nent++;
    w->epos[e] = p;
    w->enext[e] = w->bhead[m];
    if (w->bhead[m] < 0 && tok_rheap_push(w, (int32_t)m) < 0)
        return TOK_ENOMEM;
    w->bhead[m] = (int32_t)e;
    return 0;
}

static int tok_cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* BPE of one piece (n >= 1 bytes); appends the ids to w->out. */
static int tok_bpe(const tok_t *t, tok_work *w, const uint8_t *s, size_t n)
{
    if (n > INT32_MAX / 2)
        return TOK_EINVAL;
    if (tok_work_reserve(w, n) < 0)
        return TOK_ENOMEM;
    for (size_t k = 0; k < n; k++) {
        w->id[k] = t->byte_id[s[k]];
        w->prev[k] = (int32_t)k - 1;
        w->next[k] = k + 1 < n ? (int32_t)k + 1 : -1;
    }
    w->nent = 0;
    w->nrheap = 0;
    if (t->n_merges > 0 && n > 1) {
        if (!w->bhead) {
            /* every bucket is empty again at the end of each piece */
            if (!(w->bhead = malloc((size_t)t->n_merges * sizeof(int32_t))))
                return TOK_ENOMEM;
            memset(w->bhead, 0xFF, (size_t)t->n_merges * sizeof(int32_t));
        }
        for (size_t k = 0; k + 1 < n; k++)
            if (tok_push_pair(t, w, (int32_t)k) < 0)
                return TOK_ENOMEM;
    }
    while (w->nrheap > 0) {
        /* one round: every occurrence of the lowest-ranked pair, left to
         * right. Occurrences of (l, r) with l != r cannot overlap, so only
         * l == r needs the positions in order. */
        int32_t rank = tok_rheap_pop(w), l = t->merge_l[rank], r = t->merge_r[rank];
        size_t nr = 0;
        for (int32_t e = w->bhead[rank]; e >= 0; e = w->enext[e]) {
            if (tok_grow((void **)&w->round, &w->round_cap, nr + 1, sizeof(int32_t), 64) < 0)
                return TOK_ENOMEM;
            w->round[nr++] = w->epos[e];
        }
        w->bhead[rank] = -1;
        if (l == r)
            qsort(w->round, nr, sizeof(int32_t), tok_cmp_i32);
        size_t npend = 0;
        for (size_t k = 0; k < nr; k++) {
            int32_t p = w->round[k], q = w->next[p];
            if (w->id[p] != l || q < 0 || w->id[q] != r)
                continue; /* stale: one side was merged since */
            w->id[p] = t->merge_res[rank];
            w->id[q] = -1;
            w->next[p] = w->next[q];
            if (w->next[q] >= 0)
                w->prev[w->next[q]] = p;
            if (w->prev[p] >= 0)
                w->pend[npend++] = w->prev[p];
            w->pend[npend++] = p;
        }
        /* pairs created by this round wait for it to end (GPT-2 order) */
        for (size_t k = 0; k < npend; k++)
            if (tok_push_pair(t, w, w->pend[k]) < 0)
                return TOK_ENOMEM;
    }
    if (tok_out_reserve(w, n) < 0)
        return TOK_ENOMEM;
    for (int32_t p = 0; p >= 0; p = w->next[p])
        w->out[w->nout++] = w->id[p];
    return 0;
}

/* Copy cached ids of a piece into w->out: 1 found, 0 not. Locks t->lock. */
static int tok_cache_get(tok_t *t, tok_work *w, const uint8_t *s, size_t n, uint32_t h)
{
    int found = 0;
    pthread_mutex_lock(&t->lock);
    long e = tok_smap_find(&t->cache, s, n, h);
    if (e >= 0) {
        const tok_sent *en = &t->cache.ents[e];
        if (tok_out_reserve(w, en->v1) == 0) {
            memcpy(w->out + w->nout, t->cache_ids + en->v0, en->v1 * sizeof(int32_t));
            w->nout += en->v1;
            found = 1;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

/* Remember ids[0..k) for a piece; failures only mean no caching. */
static void tok_cache_put(tok_t *t, const uint8_t *s, size_t n, uint32_t h, const int32_t *ids, size_t k)
{
    pthread_mutex_lock(&t->lock);
    if (tok_smap_find(&t->cache, s, n, h) >= 0)
        goto out; /* another thread was faster */
    size_t used = t->cache.nbytes + t->cache_nids * sizeof(int32_t) + t->cache.n * sizeof(tok_sent) +
                  t->cache.cap * sizeof(uint32_t);
    if (used > TOK_CACHE_MAX_BYTES) {
        tok_smap_clear(&t->cache);
        t->cache_nids = 0;
    }
    if (tok_grow((void **)&t->cache_ids, &t->cache_capids, t->cache_nids + k, sizeof(int32_t), 4096) < 0)
        goto out;
    if (tok_smap_add(&t->cache, s, n, h, (uint32_t)t->cache_nids, (uint32_t)k) < 0)
        goto out;
    memcpy(t->cache_ids + t->cache_nids, ids, k * sizeof(int32_t));
    t->cache_nids += k;
out:
    pthread_mutex_unlock(&t->lock);
}

int tok_encode(const tok_t *tc, const char *text, size_t len, int32_t **ids, size_t *n)
{
    if (ids)
        *ids = NULL;
    if (n)
        *n = 0;
    if (!tc || !ids || !n || (!text && len > 0))
        return TOK_EINVAL;
    /* the cache is the only mutable part; it has its own lock */
    tok_t *t = (tok_t *)tc;
    const uint8_t *s = (const uint8_t *)text;
    tok_work w = {0};
    int ret = tok_out_reserve(&w, len / 3 + 16);
    for (size_t i = 0; i < len && ret == 0;) {
        size_t e = tok_piece_end(s, len, i), pn = e - i;
        if (pn == 1) {
            if ((ret = tok_out_reserve(&w, 1)) == 0)
                w.out[w.nout++] = t->byte_id[s[i]];
        } else if (pn <= TOK_CACHE_MAX_PIECE) {
            uint32_t h = tok_hash_bytes(s + i, pn);
            if (!tok_cache_get(t, &w, s + i, pn, h)) {
                size_t before = w.nout;
                ret = tok_bpe(t, &w, s + i, pn);
                if (ret == 0)
                    tok_cache_put(t, s + i, pn, h, w.out + before, w.nout - before);
            }
        } else {
            ret = tok_bpe(t, &w, s + i, pn);
        }
        i = e;
    }
    if (ret < 0) {
        tok_work_free(&w);
        return ret;
    }
    *ids = w.out;
    *n = w.nout;
    w.out = NULL;
    tok_work_free(&w);
    return TOK_OK;
}

int tok_encode_special(const tok_t *t, const char *text, size_t len, int32_t **ids, size_t *n)
{
    const char *sp = NULL;
    size_t spn = 0;
    if (!t || t->eos_id < 0 || tok_token_bytes(t, t->eos_id, &sp, &spn) != TOK_OK || spn == 0 || !text)
        return tok_encode(t, text, len, ids, n);
    *ids = NULL;
    *n = 0;
    int32_t *out = NULL;
    size_t nout = 0;
    for (size_t i = 0;;) {
        const char *hit = memmem(text + i, len - i, sp, spn);
        size_t seg = hit ? (size_t)(hit - text) - i : len - i;
        int32_t *part = NULL;
        size_t np = 0;
        int rc = tok_encode(t, text + i, seg, &part, &np);
        int32_t *grown = rc ? NULL : realloc(out, (nout + np + 1) * sizeof *out);
        if (!grown) {
            free(part);
            free(out);
            return rc ? rc : TOK_ENOMEM;
        }
        out = grown;
        memcpy(out + nout, part, np * sizeof *out);
        nout += np;
        free(part);
        if (!hit) break;
        out[nout++] = t->eos_id;
        i += seg + spn;
    }
    *ids = out;
    *n = nout;
    return TOK_OK;
}

size_t tok_eos_text_prefix(const tok_t *t, const char *text, size_t len)
{
    const char *sp = NULL;
    size_t spn = 0;
    if (!t || !text || t->eos_id < 0 || tok_token_bytes(t, t->eos_id, &sp, &spn) != TOK_OK || spn == 0)
        return 0;
    return len >= spn && !memcmp(text, sp, spn) ? spn : 0;
}

int tok_drop_lead_eos(const tok_t *t, int32_t *ids, size_t *n)
{
    if (!t || t->eos_id < 0 || !ids || *n == 0 || ids[0] != t->eos_id) return 0;
    memmove(ids, ids + 1, (*n - 1) * sizeof *ids);
    (*n)--;
    return 1;
}

int tok_decode(const tok_t *t, const int32_t *ids, size_t n, int with_special, char **out, size_t *len)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!t || !out || !len || (!ids && n > 0))
        return TOK_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return TOK_EINVAL;
        if (ids[i] == t->eos_id && !with_special)
            continue;
        total += t->raw_off[ids[i] + 1] - t->raw_off[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return TOK_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == t->eos_id && !with_special)
            continue;
        size_t tl = t->raw_off[ids[i] + 1] - t->raw_off[ids[i]];
        memcpy(buf + k, t->raw + t->raw_off[ids[i]], tl);
        k += tl;
    }
    buf[k] = '\0';
    *out = buf;
    *len = k;
    return TOK_OK;
}

/* ------------------------------------------------------------------ GGUF */

int tok_from_gguf(const gguf_file *f, tok_t **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!f || !out) {
        tok_err(err, errlen, "tok_from_gguf: bad arguments");
        return TOK_EINVAL;
    }
    const char *model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, NULL) != 0) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.model missing or not a string");
        return TOK_EFORMAT;
    }
    if (strcmp(model, "gpt2") != 0) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.model is \"%.40s\", only \"gpt2\" is supported",
                model);
        return TOK_EFORMAT;
    }
    const char *const *toks, *const *merges = NULL;
    const size_t *tlens, *mlens = NULL;
    uint64_t nt, nm = 0;
    if (gguf_get_arr_str(f, "tokenizer.ggml.tokens", &toks, &tlens, &nt) != 0) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.tokens missing or not an array of strings");
        return TOK_EFORMAT;
    }
    if (nt == 0 || nt > (1u << 30)) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.tokens has %llu entries", (unsigned long long)nt);
        return TOK_EFORMAT;
    }
    int r = gguf_get_arr_str(f, "tokenizer.ggml.merges", &merges, &mlens, &nm);
    if (r == GGUF_ENOTFOUND) {
        nm = 0;
    } else if (r != 0 || nm > (1u << 30)) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.merges is not an array of strings");
        return TOK_EFORMAT;
    }
    int64_t eos = -1;
    uint32_t e32;
    r = gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &e32);
    if (r == 0) {
        if (e32 >= nt) {
            tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.eos_token_id %u out of range (%llu tokens)",
                    e32, (unsigned long long)nt);
            return TOK_EFORMAT;
        }
        eos = e32;
    } else if (r != GGUF_ENOTFOUND) {
        tok_err(err, errlen, "tok_from_gguf: tokenizer.ggml.eos_token_id is not an unsigned integer");
        return TOK_EFORMAT;
    }
    /* strings with embedded NULs would be silently truncated */
    for (uint64_t i = 0; i < nt; i++)
        if (tlens && strlen(toks[i]) != tlens[i]) {
            tok_err(err, errlen, "tok_from_gguf: token %llu contains a NUL byte", (unsigned long long)i);
            return TOK_EFORMAT;
        }
    for (uint64_t i = 0; i < nm; i++)
        if (mlens && strlen(merges[i]) != mlens[i]) {
            tok_err(err, errlen, "tok_from_gguf: merge %llu contains a NUL byte", (unsigned long long)i);
            return TOK_EFORMAT;
        }
    return tok_create(toks, (int)nt, merges, (int)nm, (int)eos, out, err, errlen);
}

static int tok_gguf_err(int r)
{
    return r == 0 ? TOK_OK : r == GGUF_ENOMEM ? TOK_ENOMEM : TOK_EINVAL;
}

int tok_write_gguf(gguf_writer *w, const char *const *vocab, int n_vocab, const char *const *merges,
                   int n_merges, int eos_id)
{
    if (!w || !vocab || n_vocab < 1 || n_merges < 0 || (n_merges > 0 && !merges) || eos_id >= n_vocab)
        return TOK_EINVAL;
    int r = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (r == 0)
        r = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", vocab, (uint64_t)n_vocab);
    if (r == 0) {
        /* llama.cpp token types: 1 normal, 3 control */
        int32_t *types = malloc((size_t)n_vocab * sizeof(*types));
        if (!types)
            return TOK_ENOMEM;
        for (int i = 0; i < n_vocab; i++)
            types[i] = i == eos_id ? 3 : 1;
        r = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n_vocab);
        free(types);
    }
    if (r == 0) {
        static const char *const none[1] = {""};
        r = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", n_merges ? merges : none, (uint64_t)n_merges);
    }
    if (r == 0 && eos_id >= 0)
        r = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos_id);
    return tok_gguf_err(r);
}
