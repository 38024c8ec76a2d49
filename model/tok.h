/*
 * tok.h - byte-level BPE tokenizer (GPT-2 style) and the learning of merges.
 *
 * Vocabulary strings use GPT-2's byte-to-printable mapping (bytes 33..126,
 * 161..172, 174..255 map to themselves as code points; the other 68 bytes
 * map to U+0100.. in order), stored UTF-8 encoded, exactly as llama.cpp and
 * Hugging Face store them. Merges are "left right" strings in priority order
 * (index 0 merges first). A vocabulary of the 256 byte tokens and no merges
 * is valid (one token per byte). The id of a byte is looked up in the
 * vocabulary, never assumed. Special tokens (like "<|endoftext|>") are never
 * produced by tok_encode from text; they decode to their own bytes only when
 * tok_decode is asked to (flag).
 *
 * Pre-tokenization splits text like GPT-2's pattern, with every byte >= 0x80
 * counted as a letter: contractions ('s 't 're 've 'm 'll 'd), ` ?letters`,
 * ` ?digits`, ` ?other-non-space`, whitespace runs (a run followed by a
 * non-space leaves its last space to the next piece). BPE runs inside each
 * piece; pieces are cached, so encoding is fast on natural text.
 *
 * decode(encode(x)) == x for every byte string x (invalid UTF-8, NUL bytes).
 *
 * Threading: a tok_t is immutable after creation except for its internal
 * piece cache, which is protected; encode/decode may run concurrently.
 */
#ifndef TOK_H
#define TOK_H

#include <stddef.h>
#include <stdint.h>

enum tok_error {
    TOK_OK = 0,
    TOK_EFORMAT = -1,  /* vocabulary/merges inconsistent (see err) */
    TOK_ENOMEM = -2,
    TOK_EINVAL = -3,   /* id out of range, bad argument */
};
const char *tok_strerror(int err);

typedef struct tok tok_t;

/* Build from vocabulary strings (GPT-2 mapped, NUL-terminated) and merges.
 * Fails (TOK_EFORMAT, message in err) when a byte has no token, a merge names
 * an unknown token or its result is not in the vocabulary, a string is not
 * valid in the mapping, or a token appears twice. eos_id < 0: none. */
int tok_create(const char *const *vocab, int n_vocab, const char *const *merges, int n_merges,
               int eos_id, tok_t **out, char *err, size_t errlen);
void tok_free(tok_t *t);

int tok_n_vocab(const tok_t *t);
int tok_eos(const tok_t *t);                    /* -1 if none */
const char *tok_vocab_str(const tok_t *t, int id);  /* stored (mapped) string */
/* Raw bytes of a token (the inverse of the byte mapping), not NUL-terminated. */
int tok_token_bytes(const tok_t *t, int id, const char **bytes, size_t *len);

/* Encode len bytes. *ids is malloc'd (caller frees), *n its length. */
int tok_encode(const tok_t *t, const char *text, size_t len, int32_t **ids, size_t *n);
/* Decode ids to bytes; *out is malloc'd and NUL-terminated (the NUL not
 * counted in *len). Ids out of range: TOK_EINVAL. Special tokens (eos)
 * decode to nothing unless with_special. */
int tok_decode(const tok_t *t, const int32_t *ids, size_t n, int with_special, char **out, size_t *len);

/* Learn merges from a text so that the vocabulary reaches n_vocab tokens:
 * 256 byte tokens, then one token per merge, then "<|endoftext|>" last
 * (so n_vocab >= 257). Outputs malloc'd arrays of malloc'd strings in the
 * GPT-2 mapping (free with tok_free_strings). Counts pieces (pre-tokenized
 * words) first, so it is fast on a large text. Fewer merges are produced
 * when no pair occurs at least twice; *n_vocab_out tells the real size. */
int tok_learn(const char *text, size_t len, int n_vocab, char ***vocab, int *n_vocab_out,
              char ***merges, int *n_merges, int *eos_id);
void tok_free_strings(char **strs, int n);

/* GPT-2 byte mapping helpers (exposed for tests and tools). Map one byte to
 * its UTF-8 encoded printable code point (1 or 2 bytes, returns the count). */
int tok_byte_to_utf8(uint8_t b, char out[2]);

#endif
