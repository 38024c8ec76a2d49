/*
 * tok.c - GPT-2 byte-level BPE: byte mapping, pre-tokenization, encoding
 * with a shared piece cache, decoding, learning merges, GGUF keys.
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

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_EOS_STR "<|endoftext|>"
#define TOK_CACHE_MAX_PIECE 128           /* longer pieces are not cached */
#define TOK_CACHE_MAX_BYTES (32u << 20)   /* clear the cache beyond this */
#define TOK_LEARN_MAX_PIECE 1024          /* tok_learn splits longer pieces */

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

/* ---------------------------------------------------------------- mapping */

static int tok_byte_printable(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* Code point of a byte: itself if printable, else 256 + its rank among the
 * 68 non-printable bytes (0..32, 127..160, 173 in increasing order). */
static int tok_byte_cp(int b)
{
    if (tok_byte_printable(b))
        return b;
    if (b <= 32)
        return 256 + b;
    if (b <= 160)
        return 256 + 33 + (b - 127);
    return 256 + 67; /* 173 */
}

/* Inverse of tok_byte_cp; -1 for code points outside the mapping. */
static int tok_cp_byte(int cp)
{
    if (cp < 256)
        return tok_byte_printable(cp) ? cp : -1;
    int n = cp - 256;
    if (n < 33)
        return n;
    if (n < 67)
        return 127 + (n - 33);
    if (n == 67)
        return 173;
    return -1;
}

int tok_byte_to_utf8(uint8_t b, char out[2])
{
    int cp = tok_byte_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Mapped string -> raw bytes into out (capacity >= strlen(s)). Returns the
 * byte count or -1 if s is not a sequence of mapped code points. */
static long tok_unmap(const char *s, size_t len, uint8_t *out)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    long n = 0;
    while (i < len) {
        int cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
            if (cp < 0x80)
                return -1; /* overlong */
            i += 2;
        } else {
            return -1;
        }
        int b = tok_cp_byte(cp);
        if (b < 0)
            return -1;
        out[n++] = (uint8_t)b;
    }
    return n;
}

/* Raw bytes -> mapped UTF-8 into out (capacity >= 2 * len + 1), NUL-terminated. */
static size_t tok_map(const uint8_t *raw, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (size_t)tok_byte_to_utf8(raw[i], out + n);
    out[n] = '\0';
    return n;
}

/* ------------------------------------------------------------- hash maps */

static uint64_t tok_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t tok_hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001B3ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k++)
        w |= (uint64_t)p[i] << (8 * k);
    h = (h ^ w) * 0x100000001B3ULL;
    return (uint32_t)tok_mix64(h);
}

/* u64 key -> u32 value, open addressing, linear probing. Empty: UINT64_MAX. */
typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n; /* cap: power of two */
} tok_pmap;

static void pmap_free(tok_pmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static int pmap_get(const tok_pmap *m, uint64_t key, uint32_t *val)
{
    if (m->cap == 0)
        return 0;
    size_t mask = m->cap - 1, i = tok_mix64(key) & mask;
    for (;;) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return 1;
        }
        if (m->keys[i] == UINT64_MAX)
            return 0;
        i = (i + 1) & mask;
    }
}

static int pmap_grow(tok_pmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *nk = malloc(ncap * sizeof(*nk));
    uint32_t *nv = malloc(ncap * sizeof(*nv));
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return TOK_ENOMEM;
    }
    memset(nk, 0xFF, ncap * sizeof(*nk));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == UINT64_MAX)
            continue;
        size_t j = tok_mix64(m->keys[i]) & (ncap - 1);
        while (nk[j] != UINT64_MAX)
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

/* Find key; if absent insert it with val. *slot_val points at the stored
 * value (valid until the next insertion). Returns 1 if inserted, 0 if it
 * was present, or TOK_ENOMEM. */
static int pmap_upsert(tok_pmap *m, uint64_t key, uint32_t val, uint32_t **slot_val)
{
    if ((m->n + 1) * 2 > m->cap && pmap_grow(m) < 0)
        return TOK_ENOMEM;
    size_t mask = m->cap - 1, i = tok_mix64(key) & mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key)
        i = (i + 1) & mask;
    if (m->keys[i] == key) {
        *slot_val = &m->vals[i];
        return 0;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    *slot_val = &m->vals[i];
    return 1;
}

/* Byte-string key -> entry index. Keys live in one arena; entries carry
 * two u32 payloads. Slots hold entry index + 1 (0 = empty). */
typedef struct {
    uint32_t off, len, hash, v0, v1;
} tok_sent;

typedef struct {
    uint32_t *slots;
    size_t cap;      /* power of two */
    tok_sent *ents;
    size_t n, ents_cap;
    uint8_t *bytes;
    size_t nbytes, bytes_cap;
} tok_smap;

static void smap_free(tok_smap *m)
{
    free(m->slots);
    free(m->ents);
    free(m->bytes);
    memset(m, 0, sizeof(*m));
}

static void smap_clear(tok_smap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->n = 0;
    m->nbytes = 0;
}

static long smap_find(const tok_smap *m, const uint8_t *k, size_t len, uint32_t h)
{
    if (m->cap == 0)
        return -1;
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (s == 0)
            return -1;
        const tok_sent *e = &m->ents[s - 1];
        if (e->hash == h && e->len == len && memcmp(m->bytes + e->off, k, len) == 0)
            return (long)(s - 1);
        i = (i + 1) & mask;
    }
}

static int smap_rehash(tok_smap *m, size_t ncap)
{
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return TOK_ENOMEM;
    for (size_t e = 0; e < m->n; e++) {
        size_t j = m->ents[e].hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = (uint32_t)(e + 1);
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

/* Add a key known to be absent. Returns the entry index or TOK_ENOMEM. */
static long smap_add(tok_smap *m, const uint8_t *k, size_t len, uint32_t h, uint32_t v0, uint32_t v1)
{
    if (len > UINT32_MAX || m->n >= UINT32_MAX - 1 || m->nbytes + len > UINT32_MAX)
        return TOK_ENOMEM;
    if ((m->n + 1) * 2 > m->cap && smap_rehash(m, m->cap ? m->cap * 2 : 256) < 0)
        return TOK_ENOMEM;
    if (m->n == m->ents_cap) {
        size_t nc = m->ents_cap ? m->ents_cap * 2 : 256;
        tok_sent *ne = realloc(m->ents, nc * sizeof(*ne));
        if (!ne)
            return TOK_ENOMEM;
        m->ents = ne;
        m->ents_cap = nc;
    }
    if (m->nbytes + len > m->bytes_cap) {
        size_t nc = m->bytes_cap ? m->bytes_cap : 4096;
        while (nc < m->nbytes + len)
            nc *= 2;
        uint8_t *nb = realloc(m->bytes, nc);
        if (!nb)
            return TOK_ENOMEM;
        m->bytes = nb;
        m->bytes_cap = nc;
    }
    if (len)
        memcpy(m->bytes + m->nbytes, k, len);
    tok_sent *e = &m->ents[m->n];
    e->off = (uint32_t)m->nbytes;
    e->len = (uint32_t)len;
    e->hash = h;
    e->v0 = v0;
    e->v1 = v1;
    m->nbytes += len;
    size_t i = h & (m->cap - 1);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (uint32_t)(m->n + 1);
    return (long)m->n++;
}

/* ----------------------------------------------------- pre-tokenization */

enum { TOK_C_LETTER, TOK_C_DIGIT, TOK_C_SPACE, TOK_C_OTHER };

/* Class of a byte: letters are ASCII letters and every byte >= 0x80 (so
 * UTF-8 text of any script stays in words); spaces are \t \n \v \f \r ' '. */
static uint8_t tok_cls_tab[256];
static pthread_once_t tok_cls_once = PTHREAD_ONCE_INIT;

static void tok_cls_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = TOK_C_OTHER;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
            k = TOK_C_LETTER;
        else if (c >= '0' && c <= '9')
            k = TOK_C_DIGIT;
        else if (c == ' ' || (c >= '\t' && c <= '\r'))
            k = TOK_C_SPACE;
        tok_cls_tab[c] = k;
    }
}

/* End of the piece that starts at i (i < n), following GPT-2's pattern
 * 's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\sLN]+|\s+(?!\S)|\s+ */
static size_t tok_piece_end(const uint8_t *s, size_t n, size_t i)
{
    const uint8_t *cls = tok_cls_tab;
    uint8_t c = s[i];
    if (c == '\'' && i + 1 < n) {
        uint8_t d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd')
            return i + 2;
        if (i + 2 < n) {
            uint8_t e = s[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l'))
                return i + 3;
        }
    }
    size_t j = i;
    if (c == ' ' && i + 1 < n && cls[s[i + 1]] != TOK_C_SPACE)
        j = i + 1;
    uint8_t k = cls[s[j]];
    if (k != TOK_C_SPACE) {
        size_t e = j + 1;
        while (e < n && cls[s[e]] == k)
            e++;
        return e;
    }
    size_t e = i + 1;
    while (e < n && cls[s[e]] == TOK_C_SPACE)
        e++;
    /* \s+(?!\S): a run followed by a non-space gives its last space away */
    if (e < n && e - i >= 2)
        return e - 1;
    return e;
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
    pmap_free(&t->merges);
    free(t->merge_res);
    free(t->merge_l);
    free(t->merge_r);
    smap_free(&t->cache);
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
        long prev = smap_find(map, t->raw + off, (size_t)n, h);
        if (prev >= 0) {
            tok_err(err, errlen, "tok_create: token %d (\"%.40s\") duplicates token %u", i, vocab[i],
                    map->ents[prev].v0);
            return TOK_EFORMAT;
        }
        if (smap_add(map, t->raw + off, (size_t)n, h, (uint32_t)i, 0) < 0)
            return TOK_ENOMEM;
        off += (size_t)n;
    }
    t->raw_off[t->n_vocab] = off;
    return TOK_OK;
}

static int tok_lookup_raw(const tok_smap *map, const uint8_t *raw, size_t n)
{
    long e = smap_find(map, raw, n, tok_hash_bytes(raw, n));
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
    ret = pmap_upsert(&t->merges, (uint64_t)a << 32 | (uint32_t)b, (uint32_t)r, &v) < 0 ? TOK_ENOMEM : TOK_OK;
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
    pthread_once(&tok_cls_once, tok_cls_init);
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
    smap_free(&map);
    *out = t;
    return TOK_OK;
fail:
    if (ret == TOK_ENOMEM)
        tok_err(err, errlen, "tok_create: out of memory");
    smap_free(&map);
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

/* Grow *p (elements of size sz, capacity *cap) to hold at least n. */
static int tok_grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < n)
        nc *= 2;
    void *q = realloc(*p, nc * sz);
    if (!q)
        return TOK_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int tok_out_reserve(tok_work *w, size_t extra)
{
    return tok_grow((void **)&w->out, &w->out_cap, w->nout + extra, sizeof(int32_t));
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
    if (tok_grow((void **)&w->rheap, &w->rheap_cap, w->nrheap + 1, sizeof(int32_t)) < 0)
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
    if (!pmap_get(&t->merges, (uint64_t)(uint32_t)w->id[p] << 32 | (uint32_t)w->id[w->next[p]], &m))
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
            if (tok_grow((void **)&w->round, &w->round_cap, nr + 1, sizeof(int32_t)) < 0)
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
    long e = smap_find(&t->cache, s, n, h);
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
    if (smap_find(&t->cache, s, n, h) >= 0)
        goto out; /* another thread was faster */
    size_t used = t->cache.nbytes + t->cache_nids * sizeof(int32_t) + t->cache.n * sizeof(tok_sent) +
                  t->cache.cap * sizeof(uint32_t);
    if (used > TOK_CACHE_MAX_BYTES) {
        smap_clear(&t->cache);
        t->cache_nids = 0;
    }
    if (t->cache_nids + k > t->cache_capids) {
        size_t nc = t->cache_capids ? t->cache_capids : 4096;
        while (nc < t->cache_nids + k)
            nc *= 2;
        int32_t *p = realloc(t->cache_ids, nc * sizeof(*p));
        if (!p)
            goto out;
        t->cache_ids = p;
        t->cache_capids = nc;
    }
    if (smap_add(&t->cache, s, n, h, (uint32_t)t->cache_nids, (uint32_t)k) < 0)
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

/* -------------------------------------------------------------- learning */

/* Words are the unique pieces, as symbol arrays shrinking in place. Pairs
 * carry a count (sum of word frequencies) and the list of words that
 * contained them at some point (may hold stale entries; checked on use). */
typedef struct {
    int64_t count;
    uint32_t l, r;    /* the pair itself */
    int32_t *where;
    uint32_t nwhere, capwhere;
    uint32_t stamp;   /* last merge that queued this pair for the heap */
    int merged;       /* already in the merge list */
} tok_lpair;

typedef struct {
    int64_t count;
    uint32_t l, r;
} tok_lhent;

typedef struct {
    /* words */
    int32_t *sym;        /* all symbols */
    size_t *woff;        /* [nw] offset of word w in sym */
    uint32_t *wlen;      /* [nw] current length */
    int64_t *wfreq;      /* [nw] */
    uint32_t *wstamp;    /* [nw] last merge that rewrote the word */
    size_t nw;
    /* pairs */
    tok_pmap pidx;       /* (l << 32 | r) -> index in pairs */
    tok_lpair *pairs;
    size_t npairs, cap_pairs;
    uint32_t *touched;   /* pairs that gained count in this merge */
    size_t ntouched, cap_touched;
    /* max-heap by count, then smallest l, then smallest r */
    tok_lhent *heap;
    size_t nheap, cap_heap;
    /* tokens */
    tok_smap tokmap;     /* raw bytes -> id (v0) */
    uint32_t *tok_ent;   /* [id] entry of the token in tokmap (its bytes) */
    int ntok;
    uint32_t *mleft, *mright;
    int nmerge;
} tok_learner;

static int tok_lh_before(const tok_lhent *a, const tok_lhent *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    if (a->l != b->l)
        return a->l < b->l;
    return a->r < b->r;
}

static int tok_lheap_push(tok_learner *L, int64_t count, uint32_t l, uint32_t r)
{
    if (L->nheap == L->cap_heap) {
        size_t nc = L->cap_heap ? L->cap_heap * 2 : 1024;
        tok_lhent *h = realloc(L->heap, nc * sizeof(*h));
        if (!h)
            return TOK_ENOMEM;
        L->heap = h;
        L->cap_heap = nc;
    }
    tok_lhent e = {count, l, r};
    size_t i = L->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok_lh_before(&e, &L->heap[p]))
            break;
        L->heap[i] = L->heap[p];
        i = p;
    }
    L->heap[i] = e;
    return 0;
}

static tok_lhent tok_lheap_pop(tok_learner *L)
{
    tok_lhent top = L->heap[0], last = L->heap[--L->nheap];
    size_t i = 0, n = L->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && tok_lh_before(&L->heap[c + 1], &L->heap[c]))
            c++;
        if (!tok_lh_before(&L->heap[c], &last))
            break;
        L->heap[i] = L->heap[c];
        i = c;
    }
    if (n)
        L->heap[i] = last;
    return top;
}

/* count[(l, r)] += delta; a positive delta records word w as a holder and
 * queues the pair for the heap. */
static int tok_lpair_add(tok_learner *L, uint32_t l, uint32_t r, int64_t delta, uint32_t w, uint32_t stamp)
{
    uint32_t *pv;
    int ins = pmap_upsert(&L->pidx, (uint64_t)l << 32 | r, (uint32_t)L->npairs, &pv);
    if (ins < 0)
        return TOK_ENOMEM;
    if (ins == 1) {
        if (L->npairs == L->cap_pairs) {
            size_t nc = L->cap_pairs ? L->cap_pairs * 2 : 4096;
            tok_lpair *np = realloc(L->pairs, nc * sizeof(*np));
            if (!np)
                return TOK_ENOMEM;
            L->pairs = np;
            L->cap_pairs = nc;
        }
        memset(&L->pairs[L->npairs], 0, sizeof(tok_lpair));
        L->pairs[L->npairs].l = l;
        L->pairs[L->npairs].r = r;
        L->pairs[L->npairs].stamp = UINT32_MAX;
        L->npairs++;
    }
    uint32_t pi = *pv;
    tok_lpair *P = &L->pairs[pi];
    P->count += delta;
    if (delta <= 0)
        return 0;
    if (P->nwhere == 0 || P->where[P->nwhere - 1] != (int32_t)w) {
        if (P->nwhere == P->capwhere) {
            uint32_t nc = P->capwhere ? P->capwhere * 2 : 4;
            int32_t *nw = realloc(P->where, (size_t)nc * sizeof(*nw));
            if (!nw)
                return TOK_ENOMEM;
            P->where = nw;
            P->capwhere = nc;
        }
        P->where[P->nwhere++] = (int32_t)w;
    }
    if (P->stamp != stamp) {
        P->stamp = stamp;
        if (L->ntouched == L->cap_touched) {
            size_t nc = L->cap_touched ? L->cap_touched * 2 : 1024;
            uint32_t *nt = realloc(L->touched, nc * sizeof(*nt));
            if (!nt)
                return TOK_ENOMEM;
            L->touched = nt;
            L->cap_touched = nc;
        }
        L->touched[L->ntouched++] = pi;
    }
    return 0;
}

/* Count the unique pieces of the text and make them words of byte symbols. */
static int tok_learn_words(tok_learner *L, const uint8_t *s, size_t len)
{
    tok_smap pm = {0};
    int64_t *cnt = NULL;
    size_t cap_cnt = 0;
    int ret = TOK_ENOMEM;
    for (size_t i = 0, pend = 0; i < len;) {
        /* find each piece's end once, then cut it into chunks */
        if (i >= pend)
            pend = tok_piece_end(s, len, i);
        size_t e = pend - i > TOK_LEARN_MAX_PIECE ? i + TOK_LEARN_MAX_PIECE : pend;
        uint32_t h = tok_hash_bytes(s + i, e - i);
        long k = smap_find(&pm, s + i, e - i, h);
        if (k < 0) {
            k = smap_add(&pm, s + i, e - i, h, 0, 0);
            if (k < 0)
                goto out;
            if ((size_t)k >= cap_cnt) {
                size_t nc = cap_cnt ? cap_cnt * 2 : 4096;
                int64_t *nb = realloc(cnt, nc * sizeof(*nb));
                if (!nb)
                    goto out;
                cnt = nb;
                cap_cnt = nc;
            }
            cnt[k] = 0;
        }
        cnt[k]++;
        i = e;
    }
    L->nw = pm.n;
    size_t nw = L->nw ? L->nw : 1;
    L->sym = malloc((pm.nbytes ? pm.nbytes : 1) * sizeof(*L->sym));
    L->woff = malloc(nw * sizeof(*L->woff));
    L->wlen = malloc(nw * sizeof(*L->wlen));
    L->wfreq = malloc(nw * sizeof(*L->wfreq));
    L->wstamp = malloc(nw * sizeof(*L->wstamp));
    if (!L->sym || !L->woff || !L->wlen || !L->wfreq || !L->wstamp)
        goto out;
    for (size_t w = 0; w < L->nw; w++) {
        const tok_sent *en = &pm.ents[w];
        L->woff[w] = en->off;
        L->wlen[w] = en->len;
        L->wfreq[w] = cnt[w];
        L->wstamp[w] = UINT32_MAX;
        for (uint32_t k = 0; k < en->len; k++)
            L->sym[en->off + k] = pm.bytes[en->off + k];
    }
    ret = 0;
out:
    smap_free(&pm);
    free(cnt);
    return ret;
}

/* Rewrite word w with merge (a, b) -> c, updating pair counts locally. */
static int tok_learn_apply(tok_learner *L, uint32_t w, int32_t a, int32_t b, int32_t c, uint32_t stamp)
{
    int32_t *s = L->sym + L->woff[w];
    uint32_t n = L->wlen[w], j = 0;
    int64_t f = L->wfreq[w];
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (tok_lpair_add(L, (uint32_t)a, (uint32_t)b, -f, w, stamp) < 0)
                return TOK_ENOMEM;
            if (j > 0 && (tok_lpair_add(L, (uint32_t)s[j - 1], (uint32_t)a, -f, w, stamp) < 0 ||
                          tok_lpair_add(L, (uint32_t)s[j - 1], (uint32_t)c, f, w, stamp) < 0))
                return TOK_ENOMEM;
            if (i + 2 < n && (tok_lpair_add(L, (uint32_t)b, (uint32_t)s[i + 2], -f, w, stamp) < 0 ||
                              tok_lpair_add(L, (uint32_t)c, (uint32_t)s[i + 2], f, w, stamp) < 0))
                return TOK_ENOMEM;
            s[j++] = c;
            i += 2;
        } else {
            s[j++] = s[i++];
        }
    }
    L->wlen[w] = j;
    return 0;
}

/* Id of the token made of tokens a and b: an existing one with the same
 * bytes (two merge paths can spell the same string) or a new one. */
static int tok_learn_token(tok_learner *L, int32_t a, int32_t b, int32_t *c)
{
    const tok_sent *ea = &L->tokmap.ents[L->tok_ent[a]], *eb = &L->tokmap.ents[L->tok_ent[b]];
    size_t n = (size_t)ea->len + eb->len;
    uint8_t *buf = malloc(n);
    if (!buf)
        return TOK_ENOMEM;
    memcpy(buf, L->tokmap.bytes + ea->off, ea->len);
    memcpy(buf + ea->len, L->tokmap.bytes + eb->off, eb->len);
    uint32_t h = tok_hash_bytes(buf, n);
    long e = smap_find(&L->tokmap, buf, n, h);
    int ret = 0;
    if (e >= 0) {
        *c = (int32_t)L->tokmap.ents[e].v0;
    } else {
        e = smap_add(&L->tokmap, buf, n, h, (uint32_t)L->ntok, 0);
        if (e < 0) {
            ret = TOK_ENOMEM;
        } else {
            L->tok_ent[L->ntok] = (uint32_t)e;
            *c = L->ntok++;
        }
    }
    free(buf);
    return ret;
}

static int tok_learn_loop(tok_learner *L, int n_target)
{
    uint32_t stamp = 0;
    while (L->ntok < n_target && L->nheap > 0) {
        tok_lhent top = tok_lheap_pop(L);
        uint32_t pi;
        if (!pmap_get(&L->pidx, (uint64_t)top.l << 32 | top.r, &pi))
            continue;
        tok_lpair *P = &L->pairs[pi];
        if (P->count != top.count) {
            /* stale entry: counts of old pairs only shrink, so re-queue */
            if (P->count > 0 && tok_lheap_push(L, P->count, top.l, top.r) < 0)
                return TOK_ENOMEM;
            continue;
        }
        if (top.count < 2)
            break;
        int32_t a = (int32_t)top.l, b = (int32_t)top.r, c;
        if (tok_learn_token(L, a, b, &c) < 0)
            return TOK_ENOMEM;
        /* a pair can come back when a merge re-spells an existing token;
         * it is merged again but listed once (tok_create keeps the first) */
        if (!P->merged) {
            P->merged = 1;
            L->mleft[L->nmerge] = (uint32_t)a;
            L->mright[L->nmerge] = (uint32_t)b;
            L->nmerge++;
        }
        stamp++;
        L->ntouched = 0;
        /* P->where is never appended to while merging (a, b): new pairs
         * contain c, which differs from a and b. Reallocation of L->pairs
         * moves the struct but not the list, so keep the list pointer. */
        int32_t *where = P->where;
        uint32_t nwhere = P->nwhere;
        P->where = NULL;
        P->nwhere = P->capwhere = 0;
        for (uint32_t k = 0; k < nwhere; k++) {
            uint32_t w = (uint32_t)where[k];
            if (L->wstamp[w] == stamp)
                continue;
            L->wstamp[w] = stamp;
            if (tok_learn_apply(L, w, a, b, c, stamp) < 0) {
                free(where);
                return TOK_ENOMEM;
            }
        }
        free(where);
        for (size_t k = 0; k < L->ntouched; k++) {
            tok_lpair *T = &L->pairs[L->touched[k]];
            if (T->count > 0 && tok_lheap_push(L, T->count, T->l, T->r) < 0)
                return TOK_ENOMEM;
        }
    }
    return 0;
}

static void tok_learner_free(tok_learner *L)
{
    free(L->sym);
    free(L->woff);
    free(L->wlen);
    free(L->wfreq);
    free(L->wstamp);
    pmap_free(&L->pidx);
    for (size_t i = 0; i < L->npairs; i++)
        free(L->pairs[i].where);
    free(L->pairs);
    free(L->touched);
    free(L->heap);
    smap_free(&L->tokmap);
    free(L->tok_ent);
    free(L->mleft);
    free(L->mright);
}

/* Mapped string of the token whose bytes are entry e of the token map. */
static char *tok_learn_str(const tok_learner *L, uint32_t e)
{
    const tok_sent *en = &L->tokmap.ents[e];
    char *str = malloc(2 * (size_t)en->len + 1);
    if (str)
        tok_map(L->tokmap.bytes + en->off, en->len, str);
    return str;
}

static int tok_learn_output(tok_learner *L, char ***vocab, int *n_vocab_out, char ***merges, int *n_merges,
                            int *eos_id)
{
    int nv = L->ntok + 1;
    char **v = calloc((size_t)nv, sizeof(*v));
    char **m = calloc((size_t)L->nmerge + 1, sizeof(*m));
    if (!v || !m)
        goto fail;
    for (int i = 0; i < L->ntok; i++)
        if (!(v[i] = tok_learn_str(L, L->tok_ent[i])))
            goto fail;
    if (!(v[L->ntok] = strdup(TOK_EOS_STR)))
        goto fail;
    for (int i = 0; i < L->nmerge; i++) {
        char *ls = tok_learn_str(L, L->tok_ent[L->mleft[i]]);
        char *rs = tok_learn_str(L, L->tok_ent[L->mright[i]]);
        if (ls && rs) {
            size_t ll = strlen(ls), rl = strlen(rs);
            if ((m[i] = malloc(ll + rl + 2))) {
                memcpy(m[i], ls, ll);
                m[i][ll] = ' ';
                memcpy(m[i] + ll + 1, rs, rl + 1);
            }
        }
        free(ls);
        free(rs);
        if (!m[i])
            goto fail;
    }
    *vocab = v;
    *n_vocab_out = nv;
    *merges = m;
    *n_merges = L->nmerge;
    *eos_id = L->ntok;
    return 0;
fail:
    tok_free_strings(v, nv);
    tok_free_strings(m, L->nmerge);
    return TOK_ENOMEM;
}

int tok_learn(const char *text, size_t len, int n_vocab, char ***vocab, int *n_vocab_out,
              char ***merges, int *n_merges, int *eos_id)
{
    if (!vocab || !n_vocab_out || !merges || !n_merges || !eos_id)
        return TOK_EINVAL;
    *vocab = NULL;
    *merges = NULL;
    *n_vocab_out = *n_merges = 0;
    *eos_id = -1;
    /* offsets into the piece arena are 32-bit */
    if ((!text && len > 0) || n_vocab < 257 || n_vocab > (1 << 24) || len > (size_t)INT32_MAX)
        return TOK_EINVAL;
    pthread_once(&tok_cls_once, tok_cls_init);
    tok_learner L = {0};
    int n_target = n_vocab - 1, ret = TOK_ENOMEM;
    L.tok_ent = malloc((size_t)n_target * sizeof(*L.tok_ent));
    L.mleft = malloc((size_t)n_target * sizeof(*L.mleft));
    L.mright = malloc((size_t)n_target * sizeof(*L.mright));
    if (!L.tok_ent || !L.mleft || !L.mright)
        goto out;
    for (int b = 0; b < 256; b++) {
        uint8_t raw = (uint8_t)b;
        long e = smap_add(&L.tokmap, &raw, 1, tok_hash_bytes(&raw, 1), (uint32_t)b, 0);
        if (e < 0)
            goto out;
        L.tok_ent[b] = (uint32_t)e;
    }
    L.ntok = 256;
    if (tok_learn_words(&L, (const uint8_t *)text, len) < 0)
        goto out;
    for (size_t w = 0; w < L.nw; w++) {
        const int32_t *s = L.sym + L.woff[w];
        for (uint32_t k = 0; k + 1 < L.wlen[w]; k++)
            if (tok_lpair_add(&L, (uint32_t)s[k], (uint32_t)s[k + 1], L.wfreq[w], (uint32_t)w, 0) < 0)
                goto out;
    }
    for (size_t p = 0; p < L.npairs; p++)
        if (tok_lheap_push(&L, L.pairs[p].count, L.pairs[p].l, L.pairs[p].r) < 0)
            goto out;
    if (tok_learn_loop(&L, n_target) < 0)
        goto out;
    ret = tok_learn_output(&L, vocab, n_vocab_out, merges, n_merges, eos_id);
out:
    tok_learner_free(&L);
    return ret;
}

void tok_free_strings(char **strs, int n)
{
    if (!strs)
        return;
    for (int i = 0; i < n; i++)
        free(strs[i]);
    free(strs);
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
