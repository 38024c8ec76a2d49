/*
 * gen.h - the rules of generation that do not depend on how sequences are
 * batched, shared by the server's worker (server/srv_worker.c) and
 * `synth generate` (server/cmd_model.c), so both stop for the same reasons
 * and produce the same text:
 *   - the text of the generated tokens, cut before the first stop string,
 *     and how much of it may be streamed already (bytes that could start a
 *     stop string, or an incomplete UTF-8 character, are held back);
 *   - why a sequence ends (gen_finish_of).
 * The rest of the rules live with the pieces they belong to: the prompt's
 * leading end-of-text token (tok_drop_lead_eos, tok.h), the context shift
 * (model_decode_seq, model.h), sampling (sampler.h).
 *
 * Pure functions on caller-owned buffers; thread-safe.
 */
#ifndef GEN_H
#define GEN_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* Stop strings one generation may have (the API's and the CLI's limit). */
#define GEN_MAX_STOP 16

/* Stop strings: n of them, stop[i] of len[i] >= 1 bytes (may hold NULs). */
typedef struct {
    const char *const *s;
    const size_t *len;
    int n;
} gen_stops;

/* Append token id's bytes (none for the end-of-text token or an id without
 * bytes; none either when they would pass cap) to text[0 .. *len), then cut
 * the text before the first stop string that the new bytes complete.
 * *safe (never decreasing) becomes the length that can be sent to a
 * streaming client: everything when a stop string ended the text, else all
 * but a tail that may still grow into a stop string or that ends inside a
 * UTF-8 character. Returns 1 when a stop string ended the text. */
int gen_text_append(const tok_t *tk, int32_t id, char *text, size_t cap, size_t *len, size_t *safe,
                    const gen_stops *stops);

/* Why generation ends after its n_out-th token id (1-based), checked in this
 * order: a stop string (stopped), the end-of-text token, max_new tokens. */
typedef enum { GEN_GOING = 0, GEN_STOP, GEN_EOS, GEN_LENGTH } gen_finish;
gen_finish gen_finish_of(const tok_t *tk, int32_t id, int stopped, int n_out, int max_new);
const char *gen_finish_name(gen_finish f); /* "stop", "eos", "length", "" */

#endif
