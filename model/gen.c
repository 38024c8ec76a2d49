/* gen.c - generation rules shared by the server and the CLI (see gen.h). */
#include "gen.h"

#include <string.h>

/* Longest suffix of text that is a proper prefix of a stop string: those
 * bytes wait until it is clear they do not start one. */
static size_t stop_holdback(const gen_stops *st, const char *text, size_t len)
{
    size_t best = 0;
    for (int i = 0; st && i < st->n; i++) {
        size_t sl = st->len[i];
        for (size_t h = (sl - 1 < len ? sl - 1 : len); h > best; h--)
            if (!memcmp(text + len - h, st->s[i], h)) {
                best = h;
                break;
            }
    }
    return best;
}

/* Bytes of an incomplete UTF-8 sequence at the end (held back so a stream
 * never splits a character; invalid bytes are not held). */
static size_t utf8_incomplete_tail(const char *t, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)t[len - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further */
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

int gen_text_append(const tok_t *tk, int32_t id, char *text, size_t cap, size_t *len, size_t *safe,
                    const gen_stops *stops)
{
    const char *b;
    size_t n;
    if (id == tok_eos(tk) || tok_token_bytes(tk, id, &b, &n) != 0) n = 0;
    const size_t old = *len;
    if (n && old + n <= cap) {
        memcpy(text + old, b, n);
        *len = old + n;
    }
    size_t end = *len;
    /* only a match that ends in the new bytes is new; the earliest start
     * of any wins (each string searched over the whole text, not only
     * before an earlier string's match: " c" ends where "c" does) */
    for (int i = 0; stops && i < stops->n; i++) {
        size_t sl = stops->len[i];
        size_t from = old + 1 > sl ? old + 1 - sl : 0;
        for (size_t p = from; p + sl <= *len && p < end; p++)
            if (!memcmp(text + p, stops->s[i], sl)) {
                end = p;
                break;
            }
    }
    if (end < *len) {
        *len = end;
        if (end > *safe) *safe = end;
        return 1;
    }
    size_t sf = end - stop_holdback(stops, text, end);
    sf -= utf8_incomplete_tail(text, sf);
    if (sf > *safe) *safe = sf;
    return 0;
}

gen_finish gen_finish_of(const tok_t *tk, int32_t id, int stopped, int n_out, int max_new)
{
    if (stopped) return GEN_STOP;
    if (id == tok_eos(tk)) return GEN_EOS;
    if (n_out >= max_new) return GEN_LENGTH;
    return GEN_GOING;
}

const char *gen_finish_name(gen_finish f)
{
    switch (f) {
    case GEN_STOP: return "stop";
    case GEN_EOS: return "eos";
    case GEN_LENGTH: return "length";
    default: return "";
    }
}
