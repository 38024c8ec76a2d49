/*
 * test_tok.c - the GPT-2 byte mapping, hand-worked BPE encodings, piece
 * boundaries, a naive reference BPE, round trips on random bytes, tok_learn
 * (hand-worked, determinism, compression), bad vocabularies, GGUF keys and
 * concurrent encoding.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "test.h"
#include "tok.h"

static uint64_t rng_state = 0x1234567;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Reference of the mapping, written as GPT-2's bytes_to_unicode builds it:
 * the printable bytes first, then the rest numbered from 256 in order. */
static int ref_cp[256];
static void ref_mapping(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        ref_cp[b] = printable ? b : 256 + n++;
    }
}

/* UTF-8 of the reference code point of byte b */
static void ref_str(int b, char *out)
{
    int cp = ref_cp[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A vocabulary of the 256 byte tokens (in byte order, ids = bytes), one
 * token per merge (its concatenation, unless already present), then eos if
 * with_eos. Strings are malloc'd; free with tok_free_strings. */
static char **build_vocab(const char *const *merges, int n_merges, int with_eos, int *n_vocab)
{
    char **v = calloc(256 + (size_t)n_merges + 1, sizeof(*v));
    int n = 0;
    for (int b = 0; b < 256; b++) {
        v[n] = calloc(3, 1);
        ref_str(b, v[n++]);
    }
    for (int i = 0; i < n_merges; i++) {
        const char *sp = strchr(merges[i], ' ');
        size_t l = (size_t)(sp - merges[i]);
        char *s = malloc(strlen(merges[i]));
        memcpy(s, merges[i], l);
        strcpy(s + l, sp + 1);
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= strcmp(v[j], s) == 0;
        if (dup)
            free(s);
        else
            v[n++] = s;
    }
    if (with_eos)
        v[n++] = strdup("<|endoftext|>");
    *n_vocab = n;
    return v;
}

static tok_t *build_tok(const char *const *merges, int n_merges)
{
    int nv;
    char **v = build_vocab(merges, n_merges, 1, &nv);
    tok_t *t = NULL;
    char err[256];
    int r = tok_create((const char *const *)v, nv, merges, n_merges, nv - 1, &t, err, sizeof err);
    CHECK_MSG(r == 0, "tok_create: %s", err);
    tok_free_strings(v, nv);
    return t;
}

/* encode and compare with the expected ids */
static int encodes_to(const tok_t *t, const char *text, size_t len, const int32_t *want, size_t nwant)
{
    int32_t *ids;
    size_t n;
    if (tok_encode(t, text, len, &ids, &n) != 0)
        return 0;
    int ok = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof(*ids)) == 0);
    if (!ok) {
        printf("  \"%.*s\" ->", (int)len, text);
        for (size_t i = 0; i < n; i++)
            printf(" %d", ids[i]);
        printf("\n");
    }
    free(ids);
    return ok;
}

static int tok_id_of(const tok_t *t, const char *str)
{
    for (int i = 0; i < tok_n_vocab(t); i++)
        if (strcmp(tok_vocab_str(t, i), str) == 0)
            return i;
    return -1;
}

TEST(test_mapping)
{
    ref_mapping();
    int seen_cp[400] = {0};
    for (int b = 0; b < 256; b++) {
        char got[2], want[3];
        int n = tok_byte_to_utf8((uint8_t)b, got);
        ref_str(b, want);
        CHECK(n == (int)strlen(want) && memcmp(got, want, (size_t)n) == 0);
        CHECK(ref_cp[b] < 400 && !seen_cp[ref_cp[b]]);
        seen_cp[ref_cp[b]] = 1;
    }
    /* well-known points: space is U+0120 'Ġ', newline U+010A 'Ċ', 0xAD U+0143 */
    char s[2];
    CHECK(tok_byte_to_utf8(' ', s) == 2 && (uint8_t)s[0] == 0xC4 && (uint8_t)s[1] == 0xA0);
    CHECK(tok_byte_to_utf8('\n', s) == 2 && (uint8_t)s[0] == 0xC4 && (uint8_t)s[1] == 0x8A);
    CHECK(tok_byte_to_utf8(0xAD, s) == 2 && (uint8_t)s[0] == 0xC5 && (uint8_t)s[1] == 0x83);
    CHECK(tok_byte_to_utf8('A', s) == 1 && s[0] == 'A');
    CHECK(tok_byte_to_utf8(0xE9, s) == 2 && (uint8_t)s[0] == 0xC3 && (uint8_t)s[1] == 0xA9);
    /* the inverse: every token of a byte vocabulary gives back its byte */
    tok_t *t = build_tok(NULL, 0);
    if (!t)
        return;
    for (int b = 0; b < 256; b++) {
        const char *bytes;
        size_t len;
        CHECK(tok_token_bytes(t, b, &bytes, &len) == 0 && len == 1 && (uint8_t)bytes[0] == b);
    }
    tok_free(t);
}

/* 256 byte tokens only, in a shuffled order: one token per byte, found
 * through the vocabulary. */
TEST(test_bytes_only_shuffled)
{
    ref_mapping();
    char *v[256];
    int perm[256];
    for (int i = 0; i < 256; i++)
        perm[i] = i;
    for (int i = 255; i > 0; i--) {
        int j = (int)(rnd() % (uint32_t)(i + 1)), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    int id_of_byte[256];
    for (int i = 0; i < 256; i++) {
        v[i] = calloc(3, 1);
        ref_str(perm[i], v[i]);
        id_of_byte[perm[i]] = i;
    }
    tok_t *t = NULL;
    char err[256];
    CHECK(tok_create((const char *const *)v, 256, NULL, 0, -1, &t, err, sizeof err) == 0);
    if (t) {
        CHECK(tok_n_vocab(t) == 256 && tok_eos(t) == -1);
        char text[1000];
        for (int i = 0; i < 1000; i++)
            text[i] = (char)rnd();
        int32_t *ids;
        size_t n;
        CHECK(tok_encode(t, text, sizeof text, &ids, &n) == 0);
        CHECK(n == sizeof text);
        int ok = 1;
        for (size_t i = 0; i < n && i < sizeof text; i++)
            ok &= ids[i] == id_of_byte[(uint8_t)text[i]];
        CHECK(ok);
        char *back;
        size_t blen;
        CHECK(tok_decode(t, ids, n, 0, &back, &blen) == 0);
        CHECK(blen == sizeof text && memcmp(back, text, blen) == 0);
        free(back);
        free(ids);
        tok_free(t);
    }
    for (int i = 0; i < 256; i++)
        free(v[i]);
}

/* Hand-worked: merges 0 "h e", 1 "l l", 2 "Ġ t", 3 "Ġt he", 4 "he ll",
 * 5 "hell o" make tokens 256 he, 257 ll, 258 Ġt, 259 Ġthe, 260 hell,
 * 261 hello. "hello the hell" has pieces "hello", " the", " hell":
 *   hello: h e l l o -> he l l o -> he ll o -> hell o -> hello   [261]
 *   " the": Ġ t h e -> Ġ t he -> Ġt he -> Ġthe                  [259]
 *   " hell": Ġ h e l l -> Ġ he l l -> Ġ he ll -> Ġ hell     [32, 260] */
TEST(test_hand_bpe)
{
    const char *m[] = {"h e", "l l", "\xC4\xA0 t", "\xC4\xA0t he", "he ll", "hell o"};
    tok_t *t = build_tok(m, 6);
    if (!t)
        return;
    CHECK(tok_n_vocab(t) == 263 && tok_eos(t) == 262);
    CHECK(strcmp(tok_vocab_str(t, 259), "\xC4\xA0the") == 0);
    const int32_t want[] = {261, 259, 32, 260};
    CHECK(encodes_to(t, "hello the hell", 14, want, 4));
    const int32_t want2[] = {'h', 256, 'l', 'o'}; /* "hhelo": h he l o, no "l o" merge */
    CHECK(encodes_to(t, "hhelo", 5, want2, 4));
    CHECK(encodes_to(t, "", 0, NULL, 0));
    tok_free(t);

    /* GPT-2 merges every occurrence of the best pair before looking at the
     * pairs this creates: with 0 "aa a", 1 "a a", "aaaa" is aa aa (not
     * aaa a), "aaa" is aa a -> aaa, and "aaaaa" is aa aa a -> aa aaa.
     * Tokens: 256 aaa, 257 aa. */
    const char *m2[] = {"aa a", "a a"};
    int nv;
    char **v = build_vocab(m2, 2, 0, &nv);
    /* build_vocab adds the merge results in merge order: "aaa" needs "aa"
     * to exist for the merge check, which it does (id 257) */
    tok_t *t2 = NULL;
    char err[256];
    CHECK(tok_create((const char *const *)v, nv, m2, 2, -1, &t2, err, sizeof err) == 0);
    if (t2) {
        const int32_t w4[] = {257, 257}, w3[] = {256}, w5[] = {257, 256};
        CHECK(encodes_to(t2, "aaaa", 4, w4, 2));
        CHECK(encodes_to(t2, "aaa", 3, w3, 1));
        CHECK(encodes_to(t2, "aaaaa", 5, w5, 2));
        tok_free(t2);
    }
    tok_free_strings(v, nv);
}

/* Merges that would cross piece boundaries never apply. */
TEST(test_piece_boundaries)
{
    const char *m[] = {
        "a '",        /* crosses "a" | "'s" */
        "' s",        /* the contraction itself */
        "\xC4\xA0 \xC4\xA0", /* two spaces */
        "\xC4\xA0 y",
        "1 a",        /* digit | letter */
        "\xC3\x83 \xC2\xA9", /* bytes C3 A9 ("é") are letters */
        "\xC3\x83\xC2\xA9 t",
        "\xC4\x8A \xC4\x8A", /* "\n\n" */
        "\xC4\xA0 !", "\xC4\xA0! !",
        "x \xC4\xA0",
        "r e", "' re",
    };
    tok_t *t = build_tok(m, 13);
    if (!t)
        return;
    int a_s = tok_id_of(t, "'s"), sp2 = tok_id_of(t, "\xC4\xA0\xC4\xA0"), spy = tok_id_of(t, "\xC4\xA0y");
    int et = tok_id_of(t, "\xC3\x83\xC2\xA9t"), nl2 = tok_id_of(t, "\xC4\x8A\xC4\x8A");
    int bang = tok_id_of(t, "\xC4\xA0!!"), re = tok_id_of(t, "'re");
    CHECK(a_s > 0 && sp2 > 0 && spy > 0 && et > 0 && nl2 > 0 && bang > 0 && re > 0);
    const int32_t w1[] = {'a', a_s, 'b'};
    CHECK(encodes_to(t, "a'sb", 4, w1, 3));
    /* "x  y": "x", " " (the run gives its last space away), " y" */
    const int32_t w2[] = {'x', ' ', spy};
    CHECK(encodes_to(t, "x  y", 4, w2, 3));
    /* trailing spaces stay one piece */
    const int32_t w3[] = {'x', sp2, ' '};
    CHECK(encodes_to(t, "x   ", 4, w3, 3));
    const int32_t w4[] = {'1', 'a'};
    CHECK(encodes_to(t, "1a", 2, w4, 2));
    const int32_t w5[] = {et};
    CHECK(encodes_to(t, "\xC3\xA9t", 3, w5, 1));
    /* "\n\nA": "\n", "\n", "A"; but "\n\n" at the end is one piece */
    const int32_t w6[] = {'\n', '\n', 'A'}, w7[] = {'A', nl2};
    CHECK(encodes_to(t, "\n\nA", 3, w6, 3));
    CHECK(encodes_to(t, "A\n\n", 3, w7, 2));
    const int32_t w8[] = {'a', bang};
    CHECK(encodes_to(t, "a !!", 4, w8, 2));
    /* "'re" is a contraction even before letters; "'x" is punctuation */
    const int32_t w9[] = {re, 'd'}, w10[] = {'\'', 'x'};
    CHECK(encodes_to(t, "'red", 4, w9, 2));
    CHECK(encodes_to(t, "'x", 2, w10, 2));
    /* eos is never produced from text */
    const char *eos = "<|endoftext|>";
    int32_t *ids;
    size_t n;
    CHECK(tok_encode(t, eos, strlen(eos), &ids, &n) == 0);
    int has_eos = 0;
    for (size_t i = 0; i < n; i++)
        has_eos |= ids[i] == tok_eos(t);
    CHECK(n == strlen(eos) && !has_eos);
    free(ids);
    tok_free(t);
}

/* ---- naive reference BPE (GPT-2's loop) on byte strings ---- */

typedef struct {
    const char *s;
    size_t n;
} bstr;

static int naive_rank(const tok_t *t, char **merges, int nm, bstr a, bstr b)
{
    (void)t;
    for (int r = 0; r < nm; r++) {
        /* compare through the raw bytes of the merge halves */
        const char *sp = strchr(merges[r], ' ');
        char la[64], lb[64];
        size_t ll = (size_t)(sp - merges[r]);
        if (ll >= sizeof la || strlen(sp + 1) >= sizeof lb)
            continue;
        memcpy(la, merges[r], ll);
        la[ll] = 0;
        strcpy(lb, sp + 1);
        /* map a and b and compare */
        char ma[128], mb[128];
        size_t k = 0;
        for (size_t i = 0; i < a.n && k + 2 < sizeof ma; i++)
            k += (size_t)tok_byte_to_utf8((uint8_t)a.s[i], ma + k);
        ma[k] = 0;
        k = 0;
        for (size_t i = 0; i < b.n && k + 2 < sizeof mb; i++)
            k += (size_t)tok_byte_to_utf8((uint8_t)b.s[i], mb + k);
        mb[k] = 0;
        if (strcmp(la, ma) == 0 && strcmp(lb, mb) == 0)
            return r;
    }
    return -1;
}

/* GPT-2's bpe(): repeatedly the lowest-ranked pair, merged everywhere
 * left to right. Returns the number of symbols; syms point into s. */
static int naive_bpe(const tok_t *t, char **merges, int nm, const char *s, size_t n, bstr *sym)
{
    int k = (int)n;
    for (int i = 0; i < k; i++)
        sym[i] = (bstr){s + i, 1};
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < k; i++) {
            int r = naive_rank(t, merges, nm, sym[i], sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best))
                best = r;
        }
        if (best < 0)
            return k;
        int j = 0;
        for (int i = 0; i < k;) {
            if (i + 1 < k && naive_rank(t, merges, nm, sym[i], sym[i + 1]) == best) {
                sym[j++] = (bstr){sym[i].s, sym[i].n + sym[i + 1].n};
                i += 2;
            } else {
                sym[j++] = sym[i++];
            }
        }
        k = j;
    }
}

/* a generated text of pseudo-words from a small alphabet */
static char *gen_text(size_t len, uint64_t seed)
{
    static const char *syl[] = {"ab", "ba", "ca", "de", "ed", "a", "b", "the", "ing", "'s", "12", "\xC3\xA9"};
    static const char *sep[] = {" ", " ", " ", ", ", ". ", "\n", "  ", "\n\n", " (", ") "};
    uint64_t save = rng_state;
    rng_state = seed;
    char *s = malloc(len + 1);
    size_t n = 0;
    while (n < len) {
        int w = 1 + (int)(rnd() % 3);
        for (int i = 0; i < w && n < len; i++) {
            const char *p = syl[rnd() % 12];
            while (*p && n < len)
                s[n++] = *p++;
        }
        const char *p = sep[rnd() % 10];
        while (*p && n < len)
            s[n++] = *p++;
    }
    s[n] = 0;
    rng_state = save;
    return s;
}

/* A tokenizer learned on text (n_vocab tokens): the strings stay in *v and
 * *m for the caller to free; NULL (a failed check) if learning fails. */
typedef struct {
    char **v, **m;
    int nv, nm, eos;
} learned;

static tok_t *learn_tok(const char *text, int n_vocab, learned *L)
{
    tok_t *t = NULL;
    char err[256];
    memset(L, 0, sizeof *L);
    CHECK(tok_learn(text, strlen(text), n_vocab, &L->v, &L->nv, &L->m, &L->nm, &L->eos) == 0);
    CHECK(tok_create((const char *const *)L->v, L->nv, (const char *const *)L->m, L->nm, L->eos, &t, err,
                     sizeof err) == 0);
    return t;
}

/* tok_encode agrees with the naive loop on single long pieces (letters
 * only, so one pre-token each) for a learned vocabulary. */
TEST(test_against_naive_bpe)
{
    char *text = gen_text(20000, 99);
    learned L;
    tok_t *t = learn_tok(text, 400, &L);
    char **v = L.v, **m = L.m;
    int nv = L.nv, nm = L.nm;
    if (!t)
        goto out;
    static const char *letters[] = {"a", "b", "c", "d", "e", "th", "ing", "\xC3\xA9"};
    for (int it = 0; it < 40; it++) {
        char piece[300];
        size_t n = 0, target = 1 + rnd() % 250;
        while (n < target) {
            const char *p = letters[rnd() % 8];
            while (*p && n < sizeof piece - 1)
                piece[n++] = *p++;
        }
        bstr sym[300];
        int k = naive_bpe(t, m, nm, piece, n, sym);
        int32_t *ids;
        size_t ni;
        CHECK(tok_encode(t, piece, n, &ids, &ni) == 0);
        int ok = (int)ni == k;
        for (int i = 0; ok && i < k; i++) {
            const char *b;
            size_t bl;
            ok = tok_token_bytes(t, ids[i], &b, &bl) == 0 && bl == sym[i].n && memcmp(b, sym[i].s, bl) == 0;
        }
        CHECK_MSG(ok, "piece of %zu bytes: %zu tokens vs naive %d", n, ni, k);
        free(ids);
    }
    tok_free(t);
out:
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    free(text);
}

TEST(test_round_trip_random_bytes)
{
    char *text = gen_text(30000, 7);
    learned L;
    tok_t *t = learn_tok(text, 500, &L);
    char **v = L.v, **m = L.m;
    int nv = L.nv, nm = L.nm, eos = L.eos;
    if (!t)
        goto out;
    int bad = 0;
    for (int it = 0; it < 1000; it++) {
        char buf[256];
        size_t n = rnd() % 256;
        int mode = it % 3;
        for (size_t i = 0; i < n; i++) {
            if (mode == 0) /* any byte: NUL, invalid UTF-8 */
                buf[i] = (char)rnd();
            else if (mode == 1) /* text-like */
                buf[i] = "ab cde\n'st\x00\xC3\xA9\xFF"[rnd() % 14];
            else /* a slice of the training text */
                buf[i] = text[(size_t)it * 17 + i];
        }
        int32_t *ids;
        size_t ni;
        char *back;
        size_t bl;
        if (tok_encode(t, buf, n, &ids, &ni) != 0) {
            bad++;
            continue;
        }
        if (tok_decode(t, ids, ni, 0, &back, &bl) != 0 || bl != n || memcmp(back, buf, n) != 0 || back[bl])
            bad++;
        for (size_t i = 0; i < ni; i++)
            bad += ids[i] < 0 || ids[i] >= nv || ids[i] == eos;
        free(back);
        free(ids);
    }
    CHECK_MSG(bad == 0, "%d round-trip failures", bad);
    tok_free(t);
out:
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    free(text);
}

/* tok_encode_special: the end-of-text text becomes the token, wherever
 * it stands (start, middle, end, twice in a row), the rest as tok_encode;
 * decoding with specials gives the text back, for random texts with the
 * literal spliced in; without an eos token it is tok_encode. */
TEST(test_encode_special)
{
    char *text = gen_text(20000, 11);
    learned L;
    tok_t *t = learn_tok(text, 400, &L);
    char **v = L.v, **m = L.m;
    int nv = L.nv, nm = L.nm, eos = L.eos;
    char err[256];
    if (!t) goto out;
    static const char E[] = "<|endoftext|>";
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        /* segments of the training text joined by 0-2 literals */
        char buf[512];
        size_t n = 0;
        int32_t want[600];
        size_t nw = 0;
        size_t run = 0; /* start of the text since the last literal */
        for (int sgi = 0; sgi < 3; sgi++) {
            size_t len = rnd() % 40, off = rnd() % (strlen(text) - 64);
            memcpy(buf + n, text + off, len);
            n += len;
            int k = (int)(rnd() % 3);
            if (k == 0 && sgi < 2) continue;   /* joins the next segment */
            int32_t *ids;
            size_t ni;
            if (tok_encode(t, buf + run, n - run, &ids, &ni) == 0) {
                memcpy(want + nw, ids, ni * sizeof *ids);
                nw += ni;
                free(ids);
            }
            for (; k > 0; k--) {
                memcpy(buf + n, E, sizeof E - 1);
                n += sizeof E - 1;
                want[nw++] = eos;
            }
            run = n;
        }
        int32_t *ids;
        size_t ni;
        char *back;
        size_t bl;
        if (tok_encode_special(t, buf, n, &ids, &ni) != 0) {
            bad++;
            continue;
        }
        bad += ni != nw || memcmp(ids, want, ni * sizeof *ids) != 0;
        if (tok_decode(t, ids, ni, 1, &back, &bl) == 0) {
            bad += bl != n || memcmp(back, buf, n) != 0;
            free(back);
        }
        free(ids);
    }
    CHECK_MSG(bad == 0, "%d texts with <|endoftext|> mis-encoded", bad);
    /* the leading literal, whole, is recognized; a part of it is not */
    CHECK(tok_eos_text_prefix(t, "<|endoftext|>ab", 15) == sizeof E - 1);
    CHECK(tok_eos_text_prefix(t, E, sizeof E - 2) == 0 && tok_eos_text_prefix(t, " <|endoftext|>", 14) == 0);
    /* a prompt's leading end-of-text id is dropped once (the caller puts one before it) */
    {
        const int32_t eos = tok_eos(t);
        int32_t p[4] = {eos, eos, 5, 6};
        size_t np = 4;
        CHECK(tok_drop_lead_eos(t, p, &np) == 1 && np == 3 && p[0] == eos && p[1] == 5 && p[2] == 6);
        CHECK(tok_drop_lead_eos(t, p + 1, &(size_t){2}) == 0);
        size_t n0 = 0;
        CHECK(tok_drop_lead_eos(t, p, &n0) == 0 && n0 == 0);
    }
    tok_free(t);
    /* no eos token: the literal stays text */
    CHECK(tok_create((const char *const *)v, nv - 1, (const char *const *)m, nm, -1, &t, err, sizeof err) == 0);
    if (t) {
        int32_t *a, *b2;
        size_t na, nb;
        CHECK(tok_encode_special(t, E, sizeof E - 1, &a, &na) == 0 && tok_encode(t, E, sizeof E - 1, &b2, &nb) == 0 &&
              na == nb && na > 1 && !memcmp(a, b2, na * sizeof *a));
        CHECK(tok_eos_text_prefix(t, E, sizeof E - 1) == 0);
        free(a);
        free(b2);
        tok_free(t);
    }
out:
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    free(text);
}

/* Hand-worked learning: "ab ab ab ac" has pieces "ab" x1, " ab" x2,
 * " ac" x1. Pair counts: (a,b) 3, (Ġ,a) 3, (a,c) 1: the tie goes to the
 * smaller left id (Ġ = byte 32 < 'a'), so merge 0 is "Ġ a". Then
 * (Ġa,b) 2, (a,b) 1, (Ġa,c) 1: merge 1 is "Ġa b". */
TEST(test_learn_by_hand)
{
    char **v, **m;
    int nv, nm, eos;
    CHECK(tok_learn("ab ab ab ac", 11, 259, &v, &nv, &m, &nm, &eos) == 0);
    CHECK(nv == 259 && nm == 2 && eos == 258);
    if (nv == 259 && nm == 2) {
        CHECK(strcmp(m[0], "\xC4\xA0 a") == 0);
        CHECK(strcmp(m[1], "\xC4\xA0" "a b") == 0);
        CHECK(strcmp(v[256], "\xC4\xA0" "a") == 0);
        CHECK(strcmp(v[257], "\xC4\xA0" "ab") == 0);
        CHECK(strcmp(v[258], "<|endoftext|>") == 0);
        CHECK(strcmp(v['a'], "a") == 0 && strcmp(v[' '], "\xC4\xA0") == 0);
    }
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    /* no pair occurs twice: no merges, 257 tokens */
    CHECK(tok_learn("abc", 3, 1000, &v, &nv, &m, &nm, &eos) == 0);
    CHECK(nv == 257 && nm == 0 && eos == 256);
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    CHECK(tok_learn("", 0, 300, &v, &nv, &m, &nm, &eos) == 0 && nv == 257);
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    CHECK(tok_learn("abab", 4, 256, &v, &nv, &m, &nm, &eos) == TOK_EINVAL);
    CHECK(tok_learn(NULL, 4, 300, &v, &nv, &m, &nm, &eos) == TOK_EINVAL);
}

static size_t count_tokens(char **v, int nv, char **m, int nm, int eos, const char *text)
{
    tok_t *t = NULL;
    char err[256];
    if (tok_create((const char *const *)v, nv, (const char *const *)m, nm, eos, &t, err, sizeof err) != 0)
        return 0;
    int32_t *ids;
    size_t n = 0;
    if (tok_encode(t, text, strlen(text), &ids, &n) == 0)
        free(ids);
    tok_free(t);
    return n;
}

TEST(test_learn_deterministic_and_compresses)
{
    char *text = gen_text(50000, 3);
    size_t len = strlen(text);
    char **v1, **m1, **v2, **m2;
    int nv1, nm1, e1, nv2, nm2, e2;
    CHECK(tok_learn(text, len, 600, &v1, &nv1, &m1, &nm1, &e1) == 0);
    CHECK(tok_learn(text, len, 600, &v2, &nv2, &m2, &nm2, &e2) == 0);
    CHECK(nv1 == 600 && nv1 == nv2 && nm1 == nm2 && e1 == e2 && e1 == 599);
    CHECK(nm1 == nv1 - 257);
    int same = nv1 == nv2 && nm1 == nm2;
    for (int i = 0; same && i < nv1; i++)
        same = strcmp(v1[i], v2[i]) == 0;
    for (int i = 0; same && i < nm1; i++)
        same = strcmp(m1[i], m2[i]) == 0;
    CHECK(same);
    /* the vocabulary of 300 tokens learned on the same text is a prefix */
    char **v3, **m3;
    int nv3, nm3, e3;
    CHECK(tok_learn(text, len, 300, &v3, &nv3, &m3, &nm3, &e3) == 0);
    int prefix = nm3 <= nm1;
    for (int i = 0; prefix && i < nm3; i++)
        prefix = strcmp(m3[i], m1[i]) == 0;
    CHECK(prefix);
    /* more merges, fewer tokens on the training text */
    size_t n_small = count_tokens(v3, nv3, m3, nm3, e3, text);
    size_t n_big = count_tokens(v1, nv1, m1, nm1, e1, text);
    CHECK_MSG(n_big < n_small && n_small < len / 2, "%zu bytes -> %zu (300) -> %zu (600) tokens", len, n_small,
              n_big);
    /* and the learned vocabulary passes tok_create's checks (no duplicates) */
    tok_free_strings(v1, nv1);
    tok_free_strings(m1, nm1);
    tok_free_strings(v2, nv2);
    tok_free_strings(m2, nm2);
    tok_free_strings(v3, nv3);
    tok_free_strings(m3, nm3);
    free(text);
}

static int create_fails(char **v, int nv, const char *const *m, int nm, int eos, const char *needle)
{
    tok_t *t = NULL;
    char err[256] = "";
    int r = tok_create((const char *const *)v, nv, m, nm, eos, &t, err, sizeof err);
    int ok = r == TOK_EFORMAT && t == NULL && strstr(err, needle) != NULL;
    if (!ok)
        printf("  r=%d err=\"%s\" (wanted \"%s\")\n", r, err, needle);
    tok_free(t);
    return ok;
}

TEST(test_bad_vocabularies)
{
    const char *m[] = {"a b"};
    int nv;
    char **v = build_vocab(m, 1, 1, &nv); /* 256 bytes, "ab", eos */
    tok_t *t = NULL;
    char err[256];
    CHECK(tok_create((const char *const *)v, nv, m, 1, nv - 1, &t, err, sizeof err) == 0);
    tok_free(t);
    /* missing byte: replace byte 'q' with another token */
    char *save = v['q'];
    v['q'] = strdup("qq");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "byte 0x71"));
    free(v['q']);
    /* duplicate token */
    v['q'] = strdup("a");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "duplicates"));
    free(v['q']);
    /* not in the mapping: a raw space, a raw 0xFF, truncated UTF-8 */
    v['q'] = strdup("q ");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "mapping"));
    free(v['q']);
    v['q'] = strdup("\xFF");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "mapping"));
    free(v['q']);
    v['q'] = strdup("\xC4");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "mapping"));
    free(v['q']);
    v['q'] = strdup("");
    CHECK(create_fails(v, nv, m, 1, nv - 1, "empty"));
    free(v['q']);
    v['q'] = save;
    /* unknown merge token, missing merge result, malformed merges */
    const char *bad1[] = {"a zz"}, *bad2[] = {"b a"}, *bad3[] = {"ab"}, *bad4[] = {"a b c"};
    CHECK(create_fails(v, nv, bad1, 1, nv - 1, "unknown token"));
    CHECK(create_fails(v, nv, bad2, 1, nv - 1, "not in the vocabulary"));
    CHECK(create_fails(v, nv, bad3, 1, nv - 1, "left right"));
    CHECK(create_fails(v, nv, bad4, 1, nv - 1, "left right"));
    /* bad arguments */
    CHECK(tok_create((const char *const *)v, nv, m, 1, nv, &t, err, sizeof err) == TOK_EINVAL);
    CHECK(tok_create((const char *const *)v, nv, NULL, 1, -1, &t, err, sizeof err) == TOK_EINVAL);
    CHECK(tok_create(NULL, nv, m, 1, -1, &t, err, sizeof err) == TOK_EINVAL);
    /* eos on a byte token */
    CHECK(create_fails(v, nv, m, 1, 'x', "byte 0x78 (\"x\") is the eos token"));
    tok_free_strings(v, nv);
}

TEST(test_decode)
{
    const char *m[] = {"h e"};
    tok_t *t = build_tok(m, 1);
    if (!t)
        return;
    int eos = tok_eos(t);
    int32_t ids[] = {'x', 256, eos, 0, '!'};
    char *out;
    size_t len;
    /* x, he, eos (skipped), NUL, ! */
    CHECK(tok_decode(t, ids, 5, 0, &out, &len) == 0);
    CHECK(len == 5 && memcmp(out, "xhe\0!", 5) == 0 && out[len] == 0);
    free(out);
    CHECK(tok_decode(t, ids, 5, 1, &out, &len) == 0);
    CHECK(len == 3 + 13 + 2 && memcmp(out, "xhe<|endoftext|>\0!", 18) == 0 && out[len] == 0);
    free(out);
    int32_t bad1[] = {'a', -1}, bad2[] = {tok_n_vocab(t)};
    out = (char *)1;
    CHECK(tok_decode(t, bad1, 2, 0, &out, &len) == TOK_EINVAL && out == NULL);
    CHECK(tok_decode(t, bad2, 1, 1, &out, &len) == TOK_EINVAL);
    CHECK(tok_decode(t, NULL, 0, 0, &out, &len) == 0 && len == 0 && out && out[0] == 0);
    free(out);
    const char *b;
    size_t bl;
    CHECK(tok_token_bytes(t, tok_n_vocab(t), &b, &bl) == TOK_EINVAL);
    CHECK(tok_token_bytes(t, -1, &b, &bl) == TOK_EINVAL);
    CHECK(tok_vocab_str(t, -1) == NULL && tok_vocab_str(t, tok_n_vocab(t)) == NULL);
    tok_free(t);
}

TEST(test_gguf_round_trip)
{
    char *text = gen_text(5000, 11);
    char **v, **m;
    int nv, nm, eos;
    CHECK(tok_learn(text, strlen(text), 320, &v, &nv, &m, &nm, &eos) == 0);
    gguf_writer *w = gguf_writer_create();
    CHECK(tok_write_gguf(w, (const char *const *)v, nv, (const char *const *)m, nm, eos) == 0);
    void *buf = NULL;
    size_t size = 0;
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    char err[256];
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    tok_t *t = NULL;
    if (f)
        CHECK(tok_from_gguf(f, &t, err, sizeof err) == 0);
    if (t) {
        CHECK(tok_n_vocab(t) == nv && tok_eos(t) == eos);
        int same = 1;
        for (int i = 0; i < nv; i++)
            same &= strcmp(tok_vocab_str(t, i), v[i]) == 0;
        CHECK(same);
        int32_t *ids;
        size_t n;
        CHECK(tok_encode(t, text, strlen(text), &ids, &n) == 0);
        CHECK(n == count_tokens(v, nv, m, nm, eos, text) && n < strlen(text));
        free(ids);
        tok_free(t);
    }
    gguf_close(f);
    free(buf);
    /* wrong model name, missing tokens */
    w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v, (uint64_t)nv);
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_writer_free(w);
    f = NULL;
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    if (f) {
        err[0] = 0;
        CHECK(tok_from_gguf(f, &t, err, sizeof err) == TOK_EFORMAT && strstr(err, "gpt2"));
        gguf_close(f);
    }
    free(buf);
    w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 3);
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_writer_free(w);
    f = NULL;
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    if (f) {
        err[0] = 0;
        CHECK(tok_from_gguf(f, &t, err, sizeof err) == TOK_EFORMAT && strstr(err, "tokenizer.ggml.tokens"));
        gguf_close(f);
    }
    free(buf);
    /* eos out of range; no merges key is fine (bytes only) */
    w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v, 256);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 256);
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_writer_free(w);
    f = NULL;
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    if (f) {
        err[0] = 0;
        CHECK(tok_from_gguf(f, &t, err, sizeof err) == TOK_EFORMAT && strstr(err, "eos_token_id"));
        gguf_close(f);
    }
    free(buf);
    w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v, 256);
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_writer_free(w);
    f = NULL;
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    if (f) {
        CHECK(tok_from_gguf(f, &t, err, sizeof err) == 0 && tok_n_vocab(t) == 256 && tok_eos(t) == -1);
        tok_free(t);
        gguf_close(f);
    }
    free(buf);
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    free(text);
}

/* Two threads encoding through one shared cache get the single-threaded
 * answers. */
typedef struct {
    const tok_t *t;
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
    int rc;
} enc_job;

static void *enc_thread(void *arg)
{
    enc_job *j = arg;
    for (int k = 0; k < 5; k++) {
        free(j->ids);
        j->rc |= tok_encode(j->t, j->text, j->len, &j->ids, &j->n);
    }
    return NULL;
}

TEST(test_concurrent_encode)
{
    char *text = gen_text(40000, 5), *text2 = gen_text(40000, 6);
    char **v, **m;
    int nv, nm, eos;
    CHECK(tok_learn(text, strlen(text), 700, &v, &nv, &m, &nm, &eos) == 0);
    tok_t *ref = NULL, *shared = NULL;
    char err[256];
    CHECK(tok_create((const char *const *)v, nv, (const char *const *)m, nm, eos, &ref, err, sizeof err) == 0);
    CHECK(tok_create((const char *const *)v, nv, (const char *const *)m, nm, eos, &shared, err, sizeof err) == 0);
    if (ref && shared) {
        enc_job j[2] = {{shared, text, strlen(text), NULL, 0, 0}, {shared, text2, strlen(text2), NULL, 0, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, enc_thread, &j[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++) {
            int32_t *ids;
            size_t n;
            CHECK(j[i].rc == 0 && tok_encode(ref, j[i].text, j[i].len, &ids, &n) == 0);
            CHECK(n == j[i].n && memcmp(ids, j[i].ids, n * sizeof(*ids)) == 0);
            free(ids);
            free(j[i].ids);
        }
    }
    tok_free(ref);
    tok_free(shared);
    tok_free_strings(v, nv);
    tok_free_strings(m, nm);
    free(text);
    free(text2);
}

int main(void)
{
    RUN(test_mapping);
    RUN(test_bytes_only_shuffled);
    RUN(test_hand_bpe);
    RUN(test_piece_boundaries);
    RUN(test_against_naive_bpe);
    RUN(test_round_trip_random_bytes);
    RUN(test_encode_special);
    RUN(test_learn_by_hand);
    RUN(test_learn_deterministic_and_compresses);
    RUN(test_bad_vocabularies);
    RUN(test_decode);
    RUN(test_gguf_round_trip);
    RUN(test_concurrent_encode);
    return test_summary();
}
