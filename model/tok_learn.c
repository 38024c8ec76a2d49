/* tok_learn.c - learning byte-level BPE merges from a text (tok_learn in
 * tok.h): training-time only, apart from the encoder (tok.c). */
#include "tok.h"
#include "tok_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOK_LEARN_MAX_PIECE 1024          /* tok_learn splits longer pieces */

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
    if (tok_grow((void **)&L->heap, &L->cap_heap, L->nheap + 1, sizeof(tok_lhent), 1024) < 0)
        return TOK_ENOMEM;
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
    int ins = tok_pmap_upsert(&L->pidx, (uint64_t)l << 32 | r, (uint32_t)L->npairs, &pv);
    if (ins < 0)
        return TOK_ENOMEM;
    if (ins == 1) {
        if (tok_grow((void **)&L->pairs, &L->cap_pairs, L->npairs + 1, sizeof(tok_lpair), 4096) < 0)
            return TOK_ENOMEM;
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
        if (tok_grow((void **)&L->touched, &L->cap_touched, L->ntouched + 1, sizeof(uint32_t), 1024) < 0)
            return TOK_ENOMEM;
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
        long k = tok_smap_find(&pm, s + i, e - i, h);
        if (k < 0) {
            k = tok_smap_add(&pm, s + i, e - i, h, 0, 0);
            if (k < 0)
                goto out;
            if (tok_grow((void **)&cnt, &cap_cnt, (size_t)k + 1, sizeof(int64_t), 4096) < 0)
                goto out;
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
    tok_smap_free(&pm);
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
    long e = tok_smap_find(&L->tokmap, buf, n, h);
    int ret = 0;
    if (e >= 0) {
        *c = (int32_t)L->tokmap.ents[e].v0;
    } else {
        e = tok_smap_add(&L->tokmap, buf, n, h, (uint32_t)L->ntok, 0);
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
        if (!tok_pmap_get(&L->pidx, (uint64_t)top.l << 32 | top.r, &pi))
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
    tok_pmap_free(&L->pidx);
    for (size_t i = 0; i < L->npairs; i++)
        free(L->pairs[i].where);
    free(L->pairs);
    free(L->touched);
    free(L->heap);
    tok_smap_free(&L->tokmap);
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
    tok_impl_init();
    tok_learner L = {0};
    int n_target = n_vocab - 1, ret = TOK_ENOMEM;
    L.tok_ent = malloc((size_t)n_target * sizeof(*L.tok_ent));
    L.mleft = malloc((size_t)n_target * sizeof(*L.mleft));
    L.mright = malloc((size_t)n_target * sizeof(*L.mright));
    if (!L.tok_ent || !L.mleft || !L.mright)
        goto out;
    for (int b = 0; b < 256; b++) {
        uint8_t raw = (uint8_t)b;
        long e = tok_smap_add(&L.tokmap, &raw, 1, tok_hash_bytes(&raw, 1), (uint32_t)b, 0);
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

