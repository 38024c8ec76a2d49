/*
 * tok_impl.h - internal to the tokenizer (model/tok*.c): the GPT-2 byte
 * mapping, the hash maps and the pre-tokenizer shared by the encoder
 * (tok.c) and the merge learner (tok_learn.c). Not part of the model API.
 */
#ifndef TOK_IMPL_H
#define TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define TOK_EOS_STR "<|endoftext|>"   /* the end-of-text token's text */

/* u64 key -> u32 value, open addressing, linear probing. Empty: UINT64_MAX. */
typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n; /* cap: power of two */
} tok_pmap;

/* byte string -> (v0, v1): entries point into one byte arena; slots hold
 * entry index + 1 (0: empty). */
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

/* GPT-2's byte <-> printable code point mapping: a mapped (UTF-8) string
 * back to its raw bytes (count, or -1 if it is not a mapped string), and
 * raw bytes to the mapped string (out holds 2 bytes per input byte). */
long tok_unmap(const char *s, size_t len, uint8_t *out);
size_t tok_map(const uint8_t *raw, size_t len, char *out);
uint32_t tok_hash_bytes(const uint8_t *p, size_t n);
/* pmap: get returns 1 and *val when found, else 0; upsert inserts an
 * absent key (1) or finds it (0), *slot_val -> the stored value, or TOK_ENOMEM. */
void tok_pmap_free(tok_pmap *m);
int tok_pmap_get(const tok_pmap *m, uint64_t key, uint32_t *val);
int tok_pmap_upsert(tok_pmap *m, uint64_t key, uint32_t val, uint32_t **slot_val);
/* smap: find returns the entry index or -1; add (a key known to be
 * absent) the new entry index or TOK_ENOMEM. */
void tok_smap_free(tok_smap *m);
void tok_smap_clear(tok_smap *m);
long tok_smap_find(const tok_smap *m, const uint8_t *k, size_t len, uint32_t h);
long tok_smap_add(tok_smap *m, const uint8_t *k, size_t len, uint32_t h, uint32_t v0, uint32_t v1);
/* Grow the array *p (elements of sz bytes, capacity *cap elements) to hold
 * at least n: capacity doubles from *cap, or from first (> 0) when it is 0.
 * 0, or TOK_ENOMEM with *p and *cap unchanged. */
int tok_grow(void **p, size_t *cap, size_t n, size_t sz, size_t first);
/* End of the pre-tokenized piece that starts at s[i] (GPT-2's pattern:
 * 's 't ..., letters, digits, other runs, spaces). */
size_t tok_piece_end(const uint8_t *s, size_t n, size_t i);

/* Build the byte-class table tok_piece_end reads (thread-safe, once):
 * call before the first tok_piece_end. */
void tok_impl_init(void);

#endif
