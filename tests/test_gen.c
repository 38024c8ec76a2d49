/*
 * test_gen.c - the generation rules shared by the server and the CLI
 * (model/gen.h): the text and stop strings against a naive reference on
 * random token streams, what may be streamed (never retracted, never a
 * split UTF-8 character, never the start of a stop string), the buffer
 * limit, and the order of the finish reasons.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "gen.h"
#include "test.h"
#include "test_util.h"
#include "tok.h"

static tok_t *byte_tok(void)
{
    char **v = fixture_byte_vocab(300);
    tok_t *t = NULL;
    char err[128];
    if (v && tok_create((const char *const *)v, 300, NULL, 0, 299, &t, err, sizeof err)) t = NULL;
    for (int i = 0; v && i < 300; i++) free(v[i]);
    free(v);
    return t;
}

/* 1 when t[0..n) ends with a UTF-8 lead byte that announces more
 * continuation bytes than follow it. */
static int ends_mid_char(const char *t, size_t n)
{
    size_t cont = 0;
    while (cont < n && cont < 3 && ((unsigned char)t[n - 1 - cont] & 0xC0) == 0x80) cont++;
    if (cont == n) return 0;
    unsigned char lead = (unsigned char)t[n - 1 - cont];
    size_t follow = lead >= 0xF0 && lead < 0xF8 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    return follow > cont;
}

static int rnd(int n) { return (int)((tu_frand() + 1.0f) * 0.5f * (float)n) % n; }

/* Naive reference: the whole text after each token; the first token after
 * which some stop string occurs ends it, cut at the earliest occurrence. */
static size_t ref_cut(const char *full, const size_t *ends, int ntok, const gen_stops *st, int *stop_tok)
{
    for (int k = 0; k < ntok; k++) {
        size_t len = ends[k], best = len + 1;
        for (int i = 0; i < st->n; i++)
            for (size_t p = 0; p + st->len[i] <= len; p++)
                if (!memcmp(full + p, st->s[i], st->len[i])) {
                    if (p < best) best = p;
                    break;
                }
        if (best <= len) {
            *stop_tok = k;
            return best;
        }
    }
    *stop_tok = -1;
    return ntok ? ends[ntok - 1] : 0;
}

TEST(test_text_vs_naive)
{
    tok_t *tk = byte_tok();
    CHECK(tk != NULL);
    if (!tk) return;
    tu_seed(11);
    /* a small alphabet (stop strings occur often) plus UTF-8 lead and
     * continuation bytes (the streamed prefix must not split them) */
    const unsigned char alpha[] = {'a', 'b', 'c', ' ', 0xC3, 0xA9, 0xE2, 0x82, 0xAC};
    for (int trial = 0; trial < 3000; trial++) {
        char sbuf[3][5];
        const char *sp[3];
        size_t sl[3];
        int ns = rnd(4);
        for (int i = 0; i < ns; i++) {
            sl[i] = 1 + (size_t)rnd(4);
            for (size_t j = 0; j < sl[i]; j++) sbuf[i][j] = (char)alpha[rnd(4)];
            sp[i] = sbuf[i];
        }
        gen_stops st = {sp, sl, ns};
        int ntok = 1 + rnd(30), ids[30];
        char full[64];
        size_t ends[30], fl = 0;
        for (int k = 0; k < ntok; k++) {
            /* byte tokens, sometimes the end-of-text token (no bytes) */
            ids[k] = rnd(10) == 0 ? tok_eos(tk) : alpha[rnd(9)];
            if (ids[k] != tok_eos(tk)) full[fl++] = (char)ids[k];
            ends[k] = fl;
        }
        int stop_tok;
        size_t want = ref_cut(full, ends, ntok, &st, &stop_tok);
        char text[64], streamed[64];
        size_t len = 0, safe = 0, shown = 0;
        int got_stop = -1;
        for (int k = 0; k < ntok; k++) {
            size_t before = safe;
            int stopped = gen_text_append(tk, ids[k], text, sizeof text, &len, &safe, &st);
            CHECK(safe >= before && safe <= len);
            /* what was streamed is never taken back */
            memcpy(streamed + shown, text + shown, safe - shown);
            shown = safe;
            CHECK(memcmp(streamed, text, shown) == 0);
            if (stopped) {
                got_stop = k;
                break;
            }
            /* the streamed prefix never cuts a character the text goes on
             * with (a lead byte followed by its continuation bytes, or
             * by nothing yet; invalid sequences are streamed as they are) */
            int split = ends_mid_char(text, safe) && (safe == len || ((unsigned char)text[safe] & 0xC0) == 0x80);
            CHECK_MSG(!split, "trial %d token %d: %zu streamed bytes end mid-character", trial, k, safe);
        }
        CHECK_MSG(got_stop == stop_tok, "trial %d: stopped at token %d, reference %d", trial, got_stop, stop_tok);
        CHECK_MSG(len == want && memcmp(text, full, want) == 0, "trial %d: text of %zu bytes, reference %zu", trial,
                  len, want);
        if (got_stop >= 0) CHECK(safe == len);
    }
    tok_free(tk);
}

/* Hand-worked: a stop string across tokens, held back until it is clear;
 * a UTF-8 character split across tokens, held back until complete. */
TEST(test_text_hand_worked)
{
    tok_t *tk = byte_tok();
    CHECK(tk != NULL);
    if (!tk) return;
    const char *sp[] = {"END"};
    size_t sl[] = {3};
    gen_stops st = {sp, sl, 1};
    char text[32];
    size_t len = 0, safe = 0;
    const char *in = "xyENxEND";
    int stopped = 0, k = 0;
    size_t safes[8];
    for (; in[k] && !stopped; k++) {
        stopped = gen_text_append(tk, (unsigned char)in[k], text, sizeof text, &len, &safe, &st);
        safes[k] = safe;
    }
    CHECK(stopped && k == 8 && len == 5 && memcmp(text, "xyENx", 5) == 0);
    /* "xyE" could start "END": 2 streamable; "xyEN": still 2; "xyENx": 5 */
    CHECK(safes[0] == 1 && safes[1] == 2 && safes[2] == 2 && safes[3] == 2 && safes[4] == 5 && safes[5] == 5);
    /* two stop strings completed by one token: the earlier start wins,
     * whatever their order (" c" over "c"; this once cut at "c") */
    const char *sp2[] = {"c", " c"};
    size_t sl2[] = {1, 2};
    gen_stops st2 = {sp2, sl2, 2};
    len = safe = 0;
    gen_text_append(tk, 'a', text, sizeof text, &len, &safe, &st2);
    gen_text_append(tk, ' ', text, sizeof text, &len, &safe, &st2);
    CHECK(gen_text_append(tk, 'c', text, sizeof text, &len, &safe, &st2) == 1 && len == 1 && text[0] == 'a');
    /* the euro sign E2 82 AC, one byte per token, no stop strings */
    len = safe = 0;
    gen_stops none = {NULL, NULL, 0};
    gen_text_append(tk, 'a', text, sizeof text, &len, &safe, &none);
    gen_text_append(tk, 0xE2, text, sizeof text, &len, &safe, &none);
    CHECK(len == 2 && safe == 1);
    gen_text_append(tk, 0x82, text, sizeof text, &len, &safe, &none);
    CHECK(len == 3 && safe == 1);
    gen_text_append(tk, 0xAC, text, sizeof text, &len, &safe, &none);
    CHECK(len == 4 && safe == 4);
    /* no room: the bytes are dropped, never written past cap */
    char small[2];
    len = safe = 0;
    gen_text_append(tk, 'a', small, 2, &len, &safe, NULL);
    gen_text_append(tk, 'b', small, 2, &len, &safe, NULL);
    gen_text_append(tk, 'c', small, 2, &len, &safe, NULL);
    CHECK(len == 2 && memcmp(small, "ab", 2) == 0 && safe == 2);
    /* the end-of-text token adds no bytes; out-of-range ids neither */
    gen_text_append(tk, tok_eos(tk), text, sizeof text, &len, &safe, NULL);
    gen_text_append(tk, 12345, text, sizeof text, &len, &safe, NULL);
    CHECK(len == 2);
    tok_free(tk);
}

TEST(test_finish_order)
{
    tok_t *tk = byte_tok();
    CHECK(tk != NULL);
    if (!tk) return;
    const int eos = tok_eos(tk);
    CHECK(gen_finish_of(tk, 'a', 0, 3, 10) == GEN_GOING);
    CHECK(gen_finish_of(tk, 'a', 0, 10, 10) == GEN_LENGTH);
    CHECK(gen_finish_of(tk, eos, 0, 10, 10) == GEN_EOS);  /* eos before length */
    CHECK(gen_finish_of(tk, eos, 1, 10, 10) == GEN_STOP); /* a stop string first */
    CHECK(!strcmp(gen_finish_name(GEN_STOP), "stop") && !strcmp(gen_finish_name(GEN_EOS), "eos") &&
          !strcmp(gen_finish_name(GEN_LENGTH), "length"));
    CHECK(tok_max_token_bytes(tk) == strlen("<|endoftext|>"));
    tok_free(tk);
}

int main(void)
{
    RUN(test_text_vs_naive);
    RUN(test_text_hand_worked);
    RUN(test_finish_order);
    return test_summary();
}
