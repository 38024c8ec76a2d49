/*
 * fuzz_gguf.c - libFuzzer target: a checkpoint from untrusted bytes.
 *
 * gguf_open_buffer on the input; on success every getter on every key and
 * tensor, then the checkpoint layer (ckpt_read_hparams, ckpt_check_tensors),
 * the tokenizer from the GGUF keys, and model_load_buffer; a model that
 * loads runs one prefill step and one decode step (fuzzed weights: NaN,
 * Inf, denormals must not crash the engine). Properties checked beyond
 * "no crash": a failure always leaves a message in err; a checkpoint that
 * passes hparams + tensors + tokenizer checks must load.
 *
 * Seeds: tests/fuzz/corpus/gguf (tiny valid models of several variants and
 * types, written by `fuzz_mkseed`), dictionary tests/fuzz/gguf.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ckpt.h"
#include "gguf.h"
#include "model.h"
#include "tok.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* one thread: coverage and timing stay deterministic */
    setenv("SYNTH_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    return 0;
}

#define REQUIRE(c)                                                                   \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "fuzz_gguf: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static volatile double g_sink;

static void touch_keys(const gguf_file *f)
{
    int64_t n = gguf_n_kv(f);
    for (int64_t i = 0; i < n; i++) {
        const char *k = gguf_kv_key(f, i);
        REQUIRE(k && *k);
        REQUIRE(gguf_find_key(f, k) == i);
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float f32;
        int b;
        const char *s;
        size_t sl;
        const char *const *strs;
        const size_t *lens;
        const double *vals;
        uint64_t na;
        (void)gguf_get_u32(f, k, &u32);
        (void)gguf_get_i32(f, k, &i32);
        (void)gguf_get_u64(f, k, &u64);
        (void)gguf_get_f32(f, k, &f32);
        (void)gguf_get_bool(f, k, &b);
        if (gguf_get_str(f, k, &s, &sl) == 0) REQUIRE(s[sl] == 0);
        if (gguf_get_arr_str(f, k, &strs, &lens, &na) == 0)
            for (uint64_t j = 0; j < na; j++) REQUIRE(strs[j][lens[j]] == 0);
        if (gguf_get_arr_num(f, k, &vals, &na) == 0 && na) {
            double sum = 0;
            for (uint64_t j = 0; j < na; j++) sum += vals[j];
            g_sink = sum;
        }
    }
    int64_t nt = gguf_n_tensors(f);
    size_t fsize = gguf_file_size(f);
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        REQUIRE(t && t->name && gguf_find_tensor(f, t->name) == t);
        REQUIRE(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        REQUIRE(t->nbytes <= fsize);
        /* read the first and last byte: ASan catches a tensor outside the image */
        if (t->nbytes) {
            volatile uint8_t x = ((const uint8_t *)t->data)[0];
            x = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)x;
        }
    }
}

static void run_model(model *m)
{
    const arch_hparams *hp = model_hparams(m);
    model_cache *c = model_cache_create(m, 1);
    if (!c) return;
    float *logits = malloc((size_t)hp->n_vocab * 3 * sizeof *logits);
    int32_t toks[3] = {0, hp->n_vocab - 1, hp->n_vocab / 2};
    int n = hp->n_ctx < 3 ? hp->n_ctx : 3;
    model_seq sq = {.slot = 0, .n_tokens = n, .tokens = toks, .logits_all = 1};
    if (logits && model_step(m, c, 1, &sq, logits) == 0 && n < hp->n_ctx) {
        sq.n_tokens = 1;
        sq.logits_all = 0;
        REQUIRE(model_step(m, c, 1, &sq, logits) == 0);
    }
    free(logits);
    model_cache_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open_buffer(data, size, &f, err, sizeof err);
    if (rc) {
        REQUIRE(f == NULL && err[0] != 0);
        return 0;
    }
    touch_keys(f);
    int valid = 0;
    arch_hparams hp;
    err[0] = 0;
    if (ckpt_read_hparams(f, &hp, err, sizeof err) == 0) {
        int nt = arch_tensors(&hp, NULL, 0);
        const gguf_tensor_info **ti = calloc((size_t)nt, sizeof *ti);
        err[0] = 0;
        if (ti && ckpt_check_tensors(f, &hp, ti, err, sizeof err) == 0) {
            for (int i = 0; i < nt; i++) REQUIRE(ti[i] != NULL);
            valid = 1;
        } else {
            REQUIRE(!ti || err[0] != 0);
        }
        free(ti);
    } else {
        REQUIRE(err[0] != 0);
    }
    tok_t *t = NULL;
    err[0] = 0;
    if (tok_from_gguf(f, &t, err, sizeof err) == 0) {
        static const char text[] = "The model's 12 tokens\n\xc3\xa9\xff";
        int32_t *ids = NULL;
        size_t n = 0;
        if (tok_encode(t, text, sizeof text - 1, &ids, &n) == 0) {
            char *out = NULL;
            size_t ol = 0;
            REQUIRE(tok_decode(t, ids, n, 0, &out, &ol) == 0);
            REQUIRE(ol == sizeof text - 1 && !memcmp(out, text, ol));
            free(out);
        }
        free(ids);
        tok_free(t);
    } else {
        REQUIRE(err[0] != 0);
        valid = 0;
    }
    gguf_close(f);

    model *m = NULL;
    err[0] = 0;
    rc = model_load_buffer(data, size, &m, err, sizeof err);
    if (rc == 0) {
        run_model(m);
        model_free(m);
    } else {
        REQUIRE(m == NULL && err[0] != 0);
        if (valid && rc != MODEL_ENOMEM) {
            fprintf(stderr, "fuzz_gguf: checks passed but model_load_buffer failed: %s\n", err);
            abort();
        }
    }
    return 0;
}
