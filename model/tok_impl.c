/* tok_impl.c - the tokenizer's shared machinery (see tok_impl.h): byte
 * mapping, hashing, hash maps, pre-tokenization. */
#include "tok_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"

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
long tok_unmap(const char *s, size_t len, uint8_t *out)
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
size_t tok_map(const uint8_t *raw, size_t len, char *out)
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

uint32_t tok_hash_bytes(const uint8_t *p, size_t n)
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


void tok_pmap_free(tok_pmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

int tok_pmap_get(const tok_pmap *m, uint64_t key, uint32_t *val)
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

static int tok_pmap_grow(tok_pmap *m)
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
int tok_pmap_upsert(tok_pmap *m, uint64_t key, uint32_t val, uint32_t **slot_val)
{
    if ((m->n + 1) * 2 > m->cap && tok_pmap_grow(m) < 0)
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


void tok_smap_free(tok_smap *m)
{
    free(m->slots);
    free(m->ents);
    free(m->bytes);
    memset(m, 0, sizeof(*m));
}

void tok_smap_clear(tok_smap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->n = 0;
    m->nbytes = 0;
}

long tok_smap_find(const tok_smap *m, const uint8_t *k, size_t len, uint32_t h)
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

static int tok_smap_rehash(tok_smap *m, size_t ncap)
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

int tok_grow(void **p, size_t *cap, size_t n, size_t sz, size_t first)
{
    if (n <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < n) {
        if (nc > SIZE_MAX / 2)
            return TOK_ENOMEM;
        nc *= 2;
    }
    if (nc > SIZE_MAX / sz)
        return TOK_ENOMEM;
    void *q = realloc(*p, nc * sz);
    if (!q)
        return TOK_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* Add a key known to be absent. Returns the entry index or TOK_ENOMEM. */
long tok_smap_add(tok_smap *m, const uint8_t *k, size_t len, uint32_t h, uint32_t v0, uint32_t v1)
{
    if (len > UINT32_MAX || m->n >= UINT32_MAX - 1 || m->nbytes + len > UINT32_MAX)
        return TOK_ENOMEM;
    if ((m->n + 1) * 2 > m->cap && tok_smap_rehash(m, m->cap ? m->cap * 2 : 256) < 0)
        return TOK_ENOMEM;
    if (tok_grow((void **)&m->ents, &m->ents_cap, m->n + 1, sizeof(tok_sent), 256) < 0 ||
        tok_grow((void **)&m->bytes, &m->bytes_cap, m->nbytes + len, 1, 4096) < 0)
        return TOK_ENOMEM;
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

static void tok_cls_init(void);

void tok_impl_init(void)
{
    pthread_once(&tok_cls_once, tok_cls_init);
}

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
size_t tok_piece_end(const uint8_t *s, size_t n, size_t i)
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

