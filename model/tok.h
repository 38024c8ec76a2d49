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
 * produced by tok_encode from text (tok_encode_special makes the literal
 * text the token); they decode to their own bytes only when tok_decode is
 * asked to (flag).
 *
 * Pre-tokenization splits text like GPT-2's pattern, with every byte >= 0x80
 * counted as a letter: contractions ('s 't 're 've 'm 'll 'd), ` ?letters`,
 * ` ?digits`, ` ?other-non-space`, whitespace runs (a run followed by a
 * non-space leaves its last space to the next piece). Whitespace is the
 * ASCII set \t \n \v \f \r and space; ` ?` is a literal space only. BPE runs
 * inside each piece with GPT-2's semantics (the lowest-ranked pair present
 * is merged everywhere, left to right, then the next); pieces up to 128
 * bytes are cached, so encoding is fast on natural text.
 *
 * decode(encode(x)) == x for every byte string x (invalid UTF-8, NUL bytes).
 *
 * Threading: a tok_t is immutable after creation except for its internal
 * piece cache (shared by all callers, bounded at 32 MB), which is protected
 * by a mutex held only for lookups and inserts; encode/decode may run
 * concurrently on one tok_t.
 */
#ifndef TOK_H
#define TOK_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

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
 * valid in the mapping, or a token appears twice. eos_id < 0: none. The
 * eos token may lie outside the mapping (its bytes are then its string);
 * it may not be a byte token nor the result of a merge. A pair listed twice
 * in merges keeps its first rank. */
int tok_create(const char *const *vocab, int n_vocab, const char *const *merges, int n_merges,
               int eos_id, tok_t **out, char *err, size_t errlen);
void tok_free(tok_t *t);

int tok_n_vocab(const tok_t *t);
int tok_eos(const tok_t *t);                    /* -1 if none */
const char *tok_vocab_str(const tok_t *t, int id);  /* stored (mapped) string */
/* Raw bytes of a token (the inverse of the byte mapping), not NUL-terminated. */
int tok_token_bytes(const tok_t *t, int id, const char **bytes, size_t *len);
/* The longest token's bytes (>= 1): n tokens decode to at most n times it. */
size_t tok_max_token_bytes(const tok_t *t);

/* Encode len bytes. *ids is malloc'd (caller frees; non-NULL even when
 * *n is 0), *n its length. */
int tok_encode(const tok_t *t, const char *text, size_t len, int32_t **ids, size_t *n);
/* tok_encode, except that every occurrence of the end-of-text token's own
 * text ("<|endoftext|>") becomes its id: what the server's routes and the
 * scoring do, so the special token round-trips through text with
 * tok_decode(with_special = 1). Without an eos token, tok_encode. */
int tok_encode_special(const tok_t *t, const char *text, size_t len, int32_t **ids, size_t *n);
/* The length of the end-of-text token's text when text starts with it,
 * else 0 (also without an eos token): where the end-of-text token is put
 * before a text anyway (scoring), a text that starts with it gets no
 * second one. */
size_t tok_eos_text_prefix(const tok_t *t, const char *text, size_t len);
/* A prompt gets one end-of-text token before it (its context), never two:
 * when ids[0..*n) starts with the end-of-text id, drop it (shift the rest,
 * *n - 1) and return 1; else 0. The CLI and the server both prepare
 * generation prompts with it. */
int tok_drop_lead_eos(const tok_t *t, int32_t *ids, size_t *n);
/* Decode ids to bytes; *out is malloc'd and NUL-terminated (the NUL not
 * counted in *len). Ids out of range: TOK_EINVAL. Special tokens (eos)
 * decode to nothing unless with_special. */
int tok_decode(const tok_t *t, const int32_t *ids, size_t n, int with_special, char **out, size_t *len);

/* Learn merges from a text so that the vocabulary reaches n_vocab tokens:
 * the 256 byte tokens (id = byte value), then one token per merge, then
 * "<|endoftext|>" last (so 257 <= n_vocab <= 2^24; its id goes to *eos_id).
 * Outputs malloc'd arrays of malloc'd strings in the GPT-2 mapping (free
 * with tok_free_strings). Counts pieces (pre-tokenized words; pieces longer
 * than 1024 bytes are cut into 1024-byte chunks) first, then classic BPE:
 * each round merges the most frequent pair (ties: smallest left id, then
 * smallest right id), so the result is deterministic; *n_merges is
 * *n_vocab_out - 257. (A token's split is fixed by its own bytes, so no
 * merge can re-spell an existing token; the code checks anyway and would
 * reuse it.) Fewer tokens are produced when no pair occurs at least twice;
 * *n_vocab_out tells the real size. Text up to 2 GB.
 * TOK_EINVAL or TOK_ENOMEM on failure. */
int tok_learn(const char *text, size_t len, int n_vocab, char ***vocab, int *n_vocab_out,
              char ***merges, int *n_merges, int *eos_id);
void tok_free_strings(char **strs, int n);

/* GPT-2 byte mapping helpers (exposed for tests and tools). Map one byte to
 * its UTF-8 encoded printable code point (1 or 2 bytes, returns the count). */
int tok_byte_to_utf8(uint8_t b, char out[2]);

/* Tokenizer from GGUF keys: tokenizer.ggml.model (must be "gpt2"),
 * tokenizer.ggml.tokens, tokenizer.ggml.merges (optional),
 * tokenizer.ggml.eos_token_id (optional). TOK_EFORMAT with
 * "tok_from_gguf: ..." in err when a key is missing or malformed. */
int tok_from_gguf(const gguf_file *f, tok_t **out, char *err, size_t errlen);
/* Set those keys (and tokenizer.ggml.token_type: 1 normal, 3 for eos) in a
 * writer. eos_id < 0: no eos key. TOK_EINVAL / TOK_ENOMEM on failure. */
int tok_write_gguf(gguf_writer *w, const char *const *vocab, int n_vocab, const char *const *merges,
                   int n_merges, int eos_id);

#endif
