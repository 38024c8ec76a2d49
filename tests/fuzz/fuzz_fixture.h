/*
 * fuzz_fixture.h - small deterministic fixtures shared by the fuzz targets
 * and the seed generator: a tokenizer learned from a fixed English text and
 * tiny checkpoints (every variant, every tensor type) built in memory with
 * arch_init_params + ckpt_write_buffer. Header-only (static functions) so
 * each target stays one translation unit.
 */
#ifndef FUZZ_FIXTURE_H
#define FUZZ_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "quant.h"
#include "tok.h"

#include "../fixture_ckpt.inc"

/* A fixed text with enough repetition for a few dozen BPE merges, UTF-8,
 * digits, contractions and whitespace runs (the pre-tokenizer's cases). */
static const char fz_corpus[] =
    "The Synthesizer learns attention weights without token-token dot products. "
    "It's a model; they're random, we've seen it, I'm sure we'll see it, he'd say.\n"
    "The random synthesizer is fast: 1024 tokens in 12.5 ms, 2048 tokens in 25 ms.\n"
    "  Indented   text\twith\ttabs and  double  spaces.\r\n"
    "Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 r\xc3\xa9sum\xc3\xa9.\n"
    "the model the model the model attention attention attention random random\n"
    "server batch step value head context window score stream token layer\n";

/* Learn a vocabulary of (up to) n_vocab tokens from fz_corpus. */
static inline int fz_tok_strings(int n_vocab, char ***vocab, int *nv, char ***merges, int *nm, int *eos)
{
    size_t len = sizeof fz_corpus - 1;
    /* three copies so pairs repeat enough for n_vocab ~ 400 */
    char *t = malloc(3 * len);
    if (!t) return -1;
    for (int i = 0; i < 3; i++) memcpy(t + (size_t)i * len, fz_corpus, len);
    int rc = tok_learn(t, 3 * len, n_vocab, vocab, nv, merges, nm, eos);
    free(t);
    return rc;
}

static inline int fz_tok_create(int n_vocab, tok_t **out)
{
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1;
    if (fz_tok_strings(n_vocab, &vocab, &nv, &merges, &nm, &eos)) return -1;
    char err[256];
    int rc = tok_create((const char *const *)vocab, nv, (const char *const *)merges, nm, eos, out, err, sizeof err);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    return rc;
}

/* A tiny checkpoint (d 32, 1..2 layers, 2 heads) of variant v, tensor type
 * `type`, context n_ctx (a square for factorized_dense), into a malloc'd
 * GGUF image. */
static inline int fz_model_buffer(arch_variant v, uint32_t type, int n_ctx, int n_layer, void **buf, size_t *size)
{
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1, rc;
    if (fz_tok_strings(300, &vocab, &nv, &merges, &nm, &eos)) return -1;
    arch_hparams hp;
    arch_hparams_default(&hp);
    hp.variant = v;
    hp.n_ctx = n_ctx;
    hp.n_embd = 32;
    hp.n_layer = n_layer;
    hp.n_head = 2;
    hp.n_ff = 64;
    hp.fr_rank = 2;
    hp.fd_a = 1;
    while ((hp.fd_a + 1) * (hp.fd_a + 1) <= n_ctx) hp.fd_a++;
    while (n_ctx % hp.fd_a) hp.fd_a--;
    hp.fd_b = n_ctx / hp.fd_a;
    rc = fixture_ckpt_buffer(&hp, "fuzz", vocab, nv, merges, nm, eos, type, buf, size);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    return rc;
}

#endif
