/*
 * fuzz_tok.c - libFuzzer target: the tokenizer on untrusted text and ids.
 *
 * The first input byte picks a mode, the rest is the payload:
 *   0  tok_encode of the bytes on a fixed vocabulary (learned once from
 *      fixture_corpus, 400 tokens with eos); decode(encode(x)) must equal x,
 *      every id must be in range and never the eos token.
 *   1  tok_decode of the payload read as little-endian int32 ids: ids out
 *      of range must give TOK_EINVAL, in-range ids must decode, with and
 *      without special tokens, and re-encoding the decoded bytes must
 *      decode to the same bytes.
 *   2  tok_create from a fuzzed vocabulary and merges (payload lines:
 *      "v<string>" vocabulary entries after the 256 byte tokens, "m<a b>"
 *      merges, "e" marks the previous entry as eos), then encode/decode a
 *      fixed text if it is accepted.
 *   3  tok_learn on the payload (n_vocab 257..320), then tok_create on the
 *      result must succeed and round-trip the payload.
 * Dictionary: tests/fuzz/tok.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"
#include "../fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                  \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "fuzz_tok: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                \
        }                                                                           \
    } while (0)

static tok_t *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fixture_tok_create(400, &g_tok)) {
        fprintf(stderr, "fuzz_tok: cannot build the vocabulary\n");
        abort();
    }
    return 0;
}

static void roundtrip(const tok_t *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    REQUIRE(tok_encode(t, text, len, &ids, &n) == 0);
    REQUIRE(ids != NULL);
    for (size_t i = 0; i < n; i++) REQUIRE(ids[i] >= 0 && ids[i] < tok_n_vocab(t) && ids[i] != tok_eos(t));
    char *out = NULL;
    size_t ol = 0;
    REQUIRE(tok_decode(t, ids, n, 0, &out, &ol) == 0);
    REQUIRE(ol == len && !memcmp(out, text, len) && out[ol] == 0);
    free(out);
    free(ids);
}

static void decode_ids(const uint8_t *p, size_t size)
{
    size_t n = size / 4;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return;
    int in_range = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        /* mostly small ids, so most inputs are valid */
        int32_t id = (u & 0x80000000u) ? (int32_t)u : (int32_t)(u % 512);
        ids[i] = id;
        if (id < 0 || id >= tok_n_vocab(g_tok)) in_range = 0;
    }
    for (int special = 0; special < 2; special++) {
        char *out = NULL;
        size_t ol = 0;
        int rc = tok_decode(g_tok, ids, n, special, &out, &ol);
        if (!in_range) {
            REQUIRE(rc == TOK_EINVAL);
            continue;
        }
        REQUIRE(rc == 0 && out && out[ol] == 0);
        if (!special) roundtrip(g_tok, out, ol);
        free(out);
    }
    free(ids);
}

/* Mode 2: vocabulary = the 256 byte tokens + payload "v" lines; merges =
 * payload "m" lines. Bounded to 64 extra entries of each. */
static void create_fuzzed(const uint8_t *p, size_t size)
{
    enum { MAXX = 64 };
    const char *vocab[256 + MAXX];
    const char *merges[MAXX];
    char *lines[2 * MAXX];
    int nv = 0, nm = 0, nl = 0, eos = -1;
    char bytes[256][3];
    for (int b = 0; b < 256; b++) {
        int k = tok_byte_to_utf8((uint8_t)b, bytes[b]);
        bytes[b][k] = 0;
        vocab[nv++] = bytes[b];
    }
    size_t i = 0;
    while (i < size && nl < 2 * MAXX) {
        size_t j = i;
        while (j < size && p[j] != '\n') j++;
        if (j == i) {   /* empty line */
            i = j + 1;
            continue;
        }
        char kind = (char)p[i];
        char *s = malloc(j - i);
        if (!s) break;
        memcpy(s, p + i + 1, j - i - 1);
        s[j - i - 1] = 0;   /* an embedded NUL just shortens the string */
        lines[nl++] = s;
        if (kind == 'm' && nm < MAXX) merges[nm++] = s;
        else if (kind == 'e') eos = nv - 1;
        else if (nv < 256 + MAXX) vocab[nv++] = s;
        i = j + 1;
    }
    tok_t *t = NULL;
    char err[256];
    err[0] = 0;
    int rc = tok_create(vocab, nv, merges, nm, eos, &t, err, sizeof err);
    if (rc == 0) {
        static const char text[] = "the model's attention\n  42 caf\xc3\xa9 \xff\x80";
        roundtrip(t, text, sizeof text - 1);
        for (int k = 0; k < tok_n_vocab(t); k++) {
            const char *b;
            size_t bl;
            REQUIRE(tok_token_bytes(t, k, &b, &bl) == 0);
        }
        tok_free(t);
    } else {
        REQUIRE(t == NULL && err[0] != 0);
    }
    for (int k = 0; k < nl; k++) free(lines[k]);
}

static void learn(const uint8_t *p, size_t size)
{
    if (size < 1) return;
    int n_vocab = 257 + p[0] % 64;
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1;
    if (tok_learn((const char *)p + 1, size - 1, n_vocab, &vocab, &nv, &merges, &nm, &eos)) return;
    REQUIRE(nv >= 257 && nv <= n_vocab && nm == nv - 257 && eos == nv - 1);
    tok_t *t = NULL;
    char err[256];
    int rc = tok_create((const char *const *)vocab, nv, (const char *const *)merges, nm, eos, &t, err, sizeof err);
    if (rc) fprintf(stderr, "fuzz_tok: learned vocabulary rejected: %s\n", err);
    REQUIRE(rc == 0);
    roundtrip(t, (const char *)p + 1, size - 1);
    tok_free(t);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0:
        roundtrip(g_tok, (const char *)p, n);
        break;
    case 1:
        decode_ids(p, n);
        break;
    case 2:
        create_fuzzed(p, n);
        break;
    default:
        if (n <= 4096) learn(p, n);
        break;
    }
    return 0;
}
