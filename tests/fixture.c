/* fixture.c - deterministic test checkpoints (fixture.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "fixture.h"

int fixture_ckpt_write(const arch_hparams *hp, const char *name, char *const *vocab, int nv, char *const *merges,
                       int nm, int eos, const float *const *params, uint32_t type, void **buf, size_t *size,
                       char *err, size_t errlen)
{
    ckpt_desc d = {.hp = hp, .name = name, .vocab = (const char *const *)vocab, .n_vocab = nv,
                   .merges = (const char *const *)merges, .n_merges = nm, .eos_id = eos,
                   .tensors = params, .type = type};
    return ckpt_write_buffer(&d, buf, size, err, errlen);
}

int fixture_ckpt_buffer(const arch_hparams *shape, const char *name, char **vocab, int nv, char **merges, int nm,
                        int eos, uint32_t type, void **buf, size_t *size)
{
    arch_hparams hp = *shape;
    hp.n_vocab = nv;
    int rc = -1, nt = arch_tensors(&hp, NULL, 0);
    arch_tensor *ts = calloc((size_t)(nt > 0 ? nt : 1), sizeof *ts);
    float **p = calloc((size_t)(nt > 0 ? nt : 1), sizeof *p);
    char err[256] = "arch_tensors failed";
    if (nt <= 0 || !ts || !p) goto out;
    arch_tensors(&hp, ts, nt);
    for (int i = 0; i < nt; i++)
        if (!(p[i] = malloc((size_t)ts[i].n_elem * sizeof **p))) goto out;
    arch_init_params(&hp, 42, 1.0f, p);
    for (int i = 0; i < nt; i++)
        if (ts[i].kind == T_TOKEN_EMBD)
            for (int64_t k = 0; k < ts[i].n_elem; k++) p[i][k] *= 5.0f;
    rc = fixture_ckpt_write(&hp, name, vocab, nv, merges, nm, eos, (const float *const *)p, type, buf, size, err,
                            sizeof err);
out:
    if (rc) fprintf(stderr, "fixture_ckpt_buffer: %s\n", err);
    if (p)
        for (int i = 0; i < nt; i++) free(p[i]);
    free(p);
    free(ts);
    return rc;
}

char **fixture_byte_vocab(int n_vocab)
{
    if (n_vocab < 257) return NULL;
    char **v = calloc((size_t)n_vocab, sizeof *v);
    if (!v) return NULL;
    for (int i = 0; i < n_vocab; i++) {
        if (!(v[i] = calloc(32, 1))) {
            tok_free_strings(v, i);
            return NULL;
        }
        if (i < 256) tok_byte_to_utf8((uint8_t)i, v[i]);
        else snprintf(v[i], 32, i == n_vocab - 1 ? "<|endoftext|>" : "<tok%d>", i);
    }
    return v;
}

const char fixture_corpus[] =
    "The Synthesizer learns attention weights without token-token dot products. "
    "It's a model; they're random, we've seen it, I'm sure we'll see it, he'd say.\n"
    "The random synthesizer is fast: 1024 tokens in 12.5 ms, 2048 tokens in 25 ms.\n"
    "  Indented   text\twith\ttabs and  double  spaces.\r\n"
    "Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 r\xc3\xa9sum\xc3\xa9.\n"
    "the model the model the model attention attention attention random random\n"
    "server batch step value head context window score stream token layer\n";

int fixture_tok_strings(int n_vocab, char ***vocab, int *nv, char ***merges, int *nm, int *eos)
{
    size_t len = sizeof fixture_corpus - 1;
    /* three copies so pairs repeat enough for n_vocab ~ 400 */
    char *t = malloc(3 * len);
    if (!t) return -1;
    for (int i = 0; i < 3; i++) memcpy(t + (size_t)i * len, fixture_corpus, len);
    int rc = tok_learn(t, 3 * len, n_vocab, vocab, nv, merges, nm, eos);
    free(t);
    return rc;
}

int fixture_tok_create(int n_vocab, tok_t **out)
{
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1;
    if (fixture_tok_strings(n_vocab, &vocab, &nv, &merges, &nm, &eos)) return -1;
    char err[256];
    int rc = tok_create((const char *const *)vocab, nv, (const char *const *)merges, nm, eos, out, err, sizeof err);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    return rc;
}

int fixture_model_buffer(arch_variant v, uint32_t type, int n_ctx, int n_layer, void **buf, size_t *size)
{
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1, rc;
    if (fixture_tok_strings(300, &vocab, &nv, &merges, &nm, &eos)) return -1;
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
