/*
 * fixture.h - the one builder of test checkpoints: deterministic
 * vocabularies, parameters and GGUF images in memory, shared by the test
 * programs, the fuzz targets and their seed generator. A compiled unit of
 * the test support library (the Makefile's TEST_SUPPORT; the fuzz build
 * links its own copy). Every function is deterministic: the same arguments
 * give the same bytes, which the committed fuzz seeds rely on.
 *
 * Ownership: every char ** and image returned is malloc'd and the caller's
 * (free vocabularies with tok_free_strings, images with free). Errors go to
 * err (and to stderr where no err is taken); nothing here exits.
 */
#ifndef TESTS_FIXTURE_H
#define TESTS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "tok.h"

/* Write `params` (one f32 array per tensor, arch_tensors() order, for hp)
 * as a GGUF image of tensor type `type` (QUANT_*), with the tokenizer
 * strings given (merges may be NULL with nm 0; eos < 0: none), into a
 * malloc'd *buf of *size bytes. Returns 0, or ckpt_write_buffer's error
 * with the reason in err. */
int fixture_ckpt_write(const arch_hparams *hp, const char *name, char *const *vocab, int nv, char *const *merges,
                       int nm, int eos, const float *const *params, uint32_t type, void **buf, size_t *size,
                       char *err, size_t errlen);

/* The hyperparameters in *shape (n_vocab is taken from the tokenizer
 * strings), weights from arch_init_params(seed 42) with the token
 * embeddings scaled by 5 so that the logits are not flat (sampling then
 * depends on the model, not only on the seed), written as by
 * fixture_ckpt_write. Returns 0 or -1 (with the reason on stderr). */
int fixture_ckpt_buffer(const arch_hparams *shape, const char *name, char **vocab, int nv, char **merges, int nm,
                        int eos, uint32_t type, void **buf, size_t *size);

/* A byte-level vocabulary of n_vocab >= 257 strings: the 256 byte tokens
 * (tok_byte_to_utf8, in byte order), fillers "<tokI>" up to n_vocab - 2,
 * and "<|endoftext|>" last (id n_vocab - 1). NULL when out of memory. */
char **fixture_byte_vocab(int n_vocab);

/* A fixed text with enough repetition for a few dozen BPE merges, UTF-8,
 * digits, contractions and whitespace runs (the pre-tokenizer's cases). */
extern const char fixture_corpus[];

/* Learn a vocabulary of (up to) n_vocab tokens from three copies of
 * fixture_corpus (tok_learn's outputs). Returns 0 or -1. */
int fixture_tok_strings(int n_vocab, char ***vocab, int *nv, char ***merges, int *nm, int *eos);

/* The tokenizer of fixture_tok_strings(n_vocab). Returns 0 or a TOK_E*. */
int fixture_tok_create(int n_vocab, tok_t **out);

/* A tiny checkpoint (d 32, n_layer layers, 2 heads, a 300-token learned
 * vocabulary) of variant v, tensor type `type`, context n_ctx (a square
 * for factorized_dense), from fixture_ckpt_buffer. Returns 0 or -1. */
int fixture_model_buffer(arch_variant v, uint32_t type, int n_ctx, int n_layer, void **buf, size_t *size);

#endif
