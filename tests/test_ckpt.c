/*
 * test_ckpt.c - Synthesizer checkpoints (model/ckpt.h): write every variant
 * in every tensor type, read hyperparameters, metadata and tensors back,
 * reject broken checkpoints with messages naming the problem, and convert
 * between types with ckpt_quantize through files.
 */
#include "ckpt.h"
#include "model.h"
#include "quant.h"
#include "test.h"
#include "tok.h"

#include <float.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng = 0x853c49e6748fea9bull;
static double rnd_unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}
static float rnd_normal(void)
{
    double u1 = rnd_unit() + 1e-300, u2 = rnd_unit();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void tiny_hp(arch_hparams *hp, arch_variant v)
{
    arch_hparams_default(hp);
    hp->n_vocab = 300;
    hp->n_ctx = 16;
    hp->n_embd = 32;
    hp->n_layer = 2;
    hp->n_head = 2;
    hp->n_ff = 64;
    hp->fr_rank = 4;
    hp->fd_a = 4;
    hp->fd_b = 4;
    hp->ln_eps = 1e-5f;
    hp->variant = v;
}

/* 256 byte tokens (GPT-2 mapping), 43 two-letter merges, <|endoftext|>. */
typedef struct {
    char *vocab[300];
    char *merges[43];
} fake_vocab;

static void vocab_make(fake_vocab *fv)
{
    for (int b = 0; b < 256; b++) {
        char u[2];
        int n = tok_byte_to_utf8((uint8_t)b, u);
        fv->vocab[b] = calloc(3, 1);
        memcpy(fv->vocab[b], u, (size_t)n);
    }
    for (int i = 0; i < 43; i++) {
        char l = (char)('a' + i % 26), r = (char)('a' + i / 26);
        fv->vocab[256 + i] = malloc(3);
        snprintf(fv->vocab[256 + i], 3, "%c%c", l, r);
        fv->merges[i] = malloc(4);
        snprintf(fv->merges[i], 4, "%c %c", l, r);
    }
    fv->vocab[299] = strdup("<|endoftext|>");
}

static void vocab_free(fake_vocab *fv)
{
    for (int i = 0; i < 300; i++) free(fv->vocab[i]);
    for (int i = 0; i < 43; i++) free(fv->merges[i]);
}

typedef struct {
    arch_hparams hp;
    int n;
    arch_tensor *ts;
    float **p;
} params;

/* arch_init_params, then noise on the constant tensors (biases 0, norms 1,
 * alpha 0) so every stored value is distinct and checks can fail. */
static void params_make(params *P, arch_variant v, uint64_t seed)
{
    tiny_hp(&P->hp, v);
    P->n = arch_tensors(&P->hp, NULL, 0);
    P->ts = malloc((size_t)P->n * sizeof *P->ts);
    arch_tensors(&P->hp, P->ts, P->n);
    P->p = malloc((size_t)P->n * sizeof *P->p);
    for (int i = 0; i < P->n; i++) P->p[i] = malloc((size_t)P->ts[i].n_elem * sizeof(float));
    arch_init_params(&P->hp, seed, 0.5f, P->p);
    for (int i = 0; i < P->n; i++)
        if (!P->ts[i].quantizable)
            for (int64_t e = 0; e < P->ts[i].n_elem; e++) P->p[i][e] += 0.01f * rnd_normal();
}

static void params_free(params *P)
{
    for (int i = 0; i < P->n; i++) free(P->p[i]);
    free(P->p);
    free(P->ts);
}

static ckpt_desc desc_of(const params *P, const fake_vocab *fv, uint32_t type)
{
    ckpt_desc d = {&P->hp, "tiny-test", (const char *const *)fv->vocab, 300, (const char *const *)fv->merges, 43,
                   299, (const float *const *)P->p, type};
    return d;
}

static double half_val(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp((double)m, -24) : ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

/* Stored values against the f32 originals: f32 exact, f16 within half an
 * ulp (2^-11 relative, 2^-25 absolute for subnormals), q8_0 / q4_0 within
 * the per-block bounds derived in test_quant.c:
 *   q8_0: |x - x'| <= d/2 + 127 |d - d16|, d = max|x| / 127
 *   q4_0: |x - x'| <= |d| + 8 |d - d16|,  d = m / -8 (|d|/2 unless clamped)
 * plus a few float ulps of max|x| (SLACK). Returns the number of misses. */
#define SLACK_ULPS 4.0
static int compare_tensor(const float *x, const gguf_tensor_info *g, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    quant_dequantize_row(g->type, g->data, y, n);
    int bad = 0;
    if (g->type == QUANT_F32 || g->type == QUANT_F16) {
        for (int64_t i = 0; i < n; i++) {
            double tol = g->type == QUANT_F32 ? 0.0 : ldexp(fabs((double)x[i]), -11) + 0x1p-25;
            if (!(fabs((double)x[i] - (double)y[i]) <= tol)) bad++;
        }
    } else {
        size_t bb = quant_get_traits(g->type)->block_bytes;
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            double amax = 0.0, m = 0.0;
            for (int j = 0; j < 32; j++)
                if (fabs(xb[j]) > amax) { amax = fabs(xb[j]); m = xb[j]; }
            uint16_t h;
            memcpy(&h, (const uint8_t *)g->data + b * (int64_t)bb, 2);
            int q8 = g->type == QUANT_Q8_0;
            double d = q8 ? (double)((float)amax / 127.0f) : (double)((float)m / -8.0f);
            double dd = fabs(d - half_val(h));
            double bound = (q8 ? fabs(d) / 2 + 127.0 * dd : fabs(d) + 8.0 * dd) + SLACK_ULPS * FLT_EPSILON * amax;
            for (int j = 0; j < 32; j++)
                if (!(fabs((double)xb[j] - (double)y[32 * b + j]) <= bound)) bad++;
        }
    }
    free(y);
    return bad;
}

static void check_metadata(const gguf_file *f, const fake_vocab *fv, const arch_hparams *hp, uint32_t type)
{
    const char *s;
    uint32_t u;
    float fl;
    CHECK(gguf_get_str(f, "general.architecture", &s, NULL) == 0 && strcmp(s, "synthesizer") == 0);
    CHECK(gguf_get_str(f, "general.name", &s, NULL) == 0 && strcmp(s, "tiny-test") == 0);
    CHECK(gguf_get_u32(f, "general.alignment", &u) == 0 && u == 32);
    CHECK(gguf_kv_type(f, gguf_find_key(f, "general.alignment")) == GGUF_TYPE_UINT32);
    int ft = type == QUANT_F32 ? 0 : type == QUANT_F16 ? 1 : type == QUANT_Q4_0 ? 2 : 7;
    CHECK(gguf_get_u32(f, "general.file_type", &u) == 0 && (int)u == ft);
    int quantized = type == QUANT_Q8_0 || type == QUANT_Q4_0;
    if (quantized) CHECK(gguf_get_u32(f, "general.quantization_version", &u) == 0 && u == 2);
    else CHECK(gguf_find_key(f, "general.quantization_version") < 0);
    struct { const char *key; int32_t want; } ints[] = {
        {"synthesizer.context_length", hp->n_ctx},
        {"synthesizer.embedding_length", hp->n_embd},
        {"synthesizer.block_count", hp->n_layer},
        {"synthesizer.feed_forward_length", hp->n_ff},
        {"synthesizer.attention.head_count", hp->n_head},
        {"synthesizer.attention.factorized_rank", hp->fr_rank},
        {"synthesizer.attention.factorized_dense_a", hp->fd_a},
        {"synthesizer.attention.factorized_dense_b", hp->fd_b},
        {"tokenizer.ggml.eos_token_id", 299},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        CHECK_MSG(gguf_get_u32(f, ints[i].key, &u) == 0 && (int32_t)u == ints[i].want, "%s", ints[i].key);
        CHECK(gguf_kv_type(f, gguf_find_key(f, ints[i].key)) == GGUF_TYPE_UINT32);
    }
    CHECK(gguf_get_f32(f, "synthesizer.attention.layer_norm_epsilon", &fl) == 0 && fl == hp->ln_eps);
    CHECK(gguf_get_str(f, "synthesizer.attention.variant", &s, NULL) == 0 && strcmp(s, arch_variant_name(hp->variant)) == 0);
    CHECK(gguf_get_str(f, "synthesizer.feed_forward_activation", &s, NULL) == 0 && strcmp(s, arch_ffn_name(hp->ffn)) == 0);
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s, NULL) == 0 && strcmp(s, "gpt2") == 0);
    const char *const *strs;
    uint64_t n;
    CHECK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", &strs, NULL, &n) == 0 && n == 300);
    for (uint64_t i = 0; i < n && n == 300; i++) CHECK_MSG(strcmp(strs[i], fv->vocab[i]) == 0, "token %d", (int)i);
    CHECK(gguf_get_arr_str(f, "tokenizer.ggml.merges", &strs, NULL, &n) == 0 && n == 43);
    for (uint64_t i = 0; i < n && n == 43; i++) CHECK_MSG(strcmp(strs[i], fv->merges[i]) == 0, "merge %d", (int)i);
}

static int hp_equal(const arch_hparams *a, const arch_hparams *b)
{
    return a->n_vocab == b->n_vocab && a->n_ctx == b->n_ctx && a->n_embd == b->n_embd && a->n_layer == b->n_layer &&
           a->n_head == b->n_head && a->n_ff == b->n_ff && a->fr_rank == b->fr_rank && a->fd_a == b->fd_a &&
           a->fd_b == b->fd_b && a->ln_eps == b->ln_eps && a->variant == b->variant && a->ffn == b->ffn;
}

/* Every tensor of P against file f stored as `type` (quantizable ones). */
static void check_tensors_of(const gguf_file *f, const params *P, uint32_t type, const char *what)
{
    const gguf_tensor_info **ti = calloc((size_t)P->n, sizeof *ti);
    char err[256];
    int rc = ckpt_check_tensors(f, &P->hp, ti, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: ckpt_check_tensors: %s", what, err);
    CHECK(gguf_n_tensors(f) == P->n);
    for (int i = 0; i < P->n && rc == 0; i++) {
        const arch_tensor *t = &P->ts[i];
        const gguf_tensor_info *g = ti[i];
        CHECK_MSG(strcmp(g->name, t->name) == 0, "%s: out[%d] is %s, expected %s", what, i, g->name, t->name);
        uint32_t want = t->quantizable ? type : QUANT_F32;
        CHECK_MSG(g->type == want, "%s: %s type %s", what, t->name, quant_type_name(g->type));
        /* GGUF ne is the reversed row-major shape */
        CHECK((int)g->n_dims == t->n_dims);
        for (int k = 0; k < t->n_dims; k++) CHECK(g->ne[k] == t->shape[t->n_dims - 1 - k]);
        int bad = compare_tensor(P->p[i], g, t->n_elem);
        CHECK_MSG(bad == 0, "%s: %s: %d values out of bounds", what, t->name, bad);
    }
    free(ti);
}

static const uint32_t all_types[4] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};

TEST(test_every_variant_every_type)
{
    fake_vocab fv;
    vocab_make(&fv);
    for (int v = 0; v < ARCH_N_VARIANTS; v++) {
        params P;
        params_make(&P, (arch_variant)v, 1000 + (uint64_t)v);
        for (int ti = 0; ti < 4; ti++) {
            char what[64];
            snprintf(what, sizeof what, "%s/%s", arch_variant_name((arch_variant)v), quant_type_name(all_types[ti]));
            ckpt_desc d = desc_of(&P, &fv, all_types[ti]);
            void *buf = NULL;
            size_t size = 0;
            char err[256];
            int rc = ckpt_write_buffer(&d, &buf, &size, err, sizeof err);
            CHECK_MSG(rc == 0, "%s: write: %s", what, err);
            if (rc) continue;
            gguf_file *f;
            rc = gguf_open_buffer(buf, size, &f, err, sizeof err);
            CHECK_MSG(rc == 0, "%s: open: %s", what, err);
            if (rc == 0) {
                arch_hparams hp;
                rc = ckpt_read_hparams(f, &hp, err, sizeof err);
                CHECK_MSG(rc == 0 && hp_equal(&hp, &P.hp), "%s: hparams: %s", what, err);
                check_metadata(f, &fv, &P.hp, all_types[ti]);
                check_tensors_of(f, &P, all_types[ti], what);
                gguf_close(f);
            }
            free(buf);
        }
        params_free(&P);
    }
    vocab_free(&fv);
}

/* ---- rejections ---- */

typedef struct {
    const char *drop_key, *drop_tensor, *reshape, *retype, *variant, *arch, *extra, *ffn;
    uint32_t head_count;
    int nonq_f16; /* store every non-quantizable tensor as f16 (valid) */
} edit;

/* Copy f with one edit applied. */
static int rebuild(const gguf_file *f, const edit *e, void **buf, size_t *size)
{
    gguf_writer *w = gguf_writer_create();
    void *owned[512];
    int n_owned = 0, rc = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        if (!e->drop_key || strcmp(gguf_kv_key(f, i), e->drop_key) != 0) rc |= gguf_writer_copy_kv(w, f, i);
    if (e->variant) rc |= gguf_writer_set_str(w, "synthesizer.attention.variant", e->variant);
    if (e->ffn) rc |= gguf_writer_set_str(w, "synthesizer.feed_forward_activation", e->ffn);
    if (e->arch) rc |= gguf_writer_set_str(w, "general.architecture", e->arch);
    if (e->head_count) rc |= gguf_writer_set_u32(w, "synthesizer.attention.head_count", e->head_count);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *g = gguf_tensor(f, i);
        if (e->drop_tensor && strcmp(g->name, e->drop_tensor) == 0) continue;
        int64_t ne[4];
        memcpy(ne, g->ne, sizeof ne);
        uint32_t type = g->type;
        const void *data = g->data;
        size_t nbytes = g->nbytes;
        int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
        if (e->reshape && strcmp(g->name, e->reshape) == 0) { ne[0] = g->ne[1]; ne[1] = g->ne[0]; }
        int to_q8 = e->retype && strcmp(g->name, e->retype) == 0;
        int to_f16 = e->nonq_f16 && g->type == QUANT_F32 && strstr(g->name, "norm") != NULL;
        if (to_q8 || to_f16) {
            type = to_q8 ? QUANT_Q8_0 : QUANT_F16;
            nbytes = quant_row_size(type, (uint64_t)n);
            void *q = malloc(nbytes);
            quant_quantize_row(type, g->data, q, n);
            owned[n_owned++] = q;
            data = q;
        }
        rc |= gguf_writer_add_tensor(w, g->name, type, g->n_dims, ne, data, nbytes);
    }
    if (e->extra) {
        static const float z[32];
        rc |= gguf_writer_add_tensor(w, e->extra, QUANT_F32, 1, (const int64_t[]){32}, z, sizeof z);
    }
    rc |= gguf_writer_write_buffer(w, buf, size);
    gguf_writer_free(w);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    return rc;
}

/* Rebuild with edit e; hparams + tensor check must fail naming `needle`
 * (or pass when needle is NULL). */
static void expect_edit(const gguf_file *good, const edit *e, const char *what, const char *needle)
{
    void *buf;
    size_t size;
    CHECK_MSG(rebuild(good, e, &buf, &size) == 0, "%s: rebuild failed", what);
    gguf_file *f;
    char err[256] = "";
    int rc = gguf_open_buffer(buf, size, &f, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: open: %s", what, err);
    if (rc == 0) {
        arch_hparams hp;
        rc = ckpt_read_hparams(f, &hp, err, sizeof err);
        if (rc == 0) rc = ckpt_check_tensors(f, &hp, NULL, err, sizeof err);
        if (!needle) CHECK_MSG(rc == 0, "%s: rejected: %s", what, err);
        else {
            CHECK_MSG(rc == GGUF_EFORMAT, "%s: accepted", what);
            CHECK_MSG(strstr(err, needle) != NULL && (strncmp(err, "ckpt_read_hparams: ", 19) == 0 ||
                                                       strncmp(err, "ckpt_check_tensors: ", 20) == 0),
                      "%s: message '%s' lacks '%s'", what, err, needle);
        }
        gguf_close(f);
    }
    free(buf);
}

TEST(test_broken_checkpoints_rejected)
{
    fake_vocab fv;
    vocab_make(&fv);
    params P;
    params_make(&P, ARCH_DENSE_VANILLA, 7);
    ckpt_desc d = desc_of(&P, &fv, QUANT_Q8_0);
    void *buf;
    size_t size;
    char err[256];
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == 0);
    gguf_file *good;
    CHECK(gguf_open_buffer(buf, size, &good, err, sizeof err) == 0);

    edit none = {0};
    expect_edit(good, &none, "unchanged copy", NULL);
    edit f16 = {.nonq_f16 = 1};
    expect_edit(good, &f16, "norms stored f16", NULL);
    edit e1 = {.drop_tensor = "blk.1.attn_dense_2.bias"};
    expect_edit(good, &e1, "missing tensor", "missing tensor 'blk.1.attn_dense_2.bias'");
    edit e2 = {.reshape = "blk.0.ffn_up.weight"};
    expect_edit(good, &e2, "wrong shape", "'blk.0.ffn_up.weight' has ne {64, 32}, expected {32, 64}");
    edit e3 = {.variant = "sparse_magic"};
    expect_edit(good, &e3, "unknown variant", "unknown attention variant 'sparse_magic'");
    edit e4 = {.retype = "blk.0.attn_norm.weight"};
    expect_edit(good, &e4, "quantized norm", "'blk.0.attn_norm.weight' has type q8_0");
    edit e5 = {.extra = "blk.0.attn_random"};
    expect_edit(good, &e5, "extra tensor", "unexpected tensor 'blk.0.attn_random'");
    edit e6 = {.drop_key = "synthesizer.block_count"};
    expect_edit(good, &e6, "missing key", "missing key synthesizer.block_count");
    edit e7 = {.drop_key = "tokenizer.ggml.tokens"};
    expect_edit(good, &e7, "missing vocab", "tokenizer.ggml.tokens");
    edit e8 = {.arch = "llama"};
    expect_edit(good, &e8, "other architecture", "'llama'");
    edit e9 = {.head_count = 3};
    expect_edit(good, &e9, "head count not dividing d", "head_count");
    edit e10 = {.drop_key = "synthesizer.attention.layer_norm_epsilon"};
    expect_edit(good, &e10, "missing eps", "layer_norm_epsilon");
    /* a variant with other tensors: random wants attn_random, has no dense */
    edit e11 = {.variant = "random"};
    expect_edit(good, &e11, "variant/tensors mismatch", "blk.0.attn_random");
    edit e12 = {.drop_key = "synthesizer.attention.variant"};
    expect_edit(good, &e12, "missing variant", "synthesizer.attention.variant");
    edit e13 = {.ffn = "swiglu"};
    expect_edit(good, &e13, "unknown activation", "unknown feed-forward activation 'swiglu'");
    /* geglu wants ffn_up twice as tall as the file's gelu tensors */
    edit e14 = {.ffn = "geglu"};
    expect_edit(good, &e14, "activation/tensors mismatch", "'blk.0.ffn_up.weight' has ne {32, 64}, expected {32, 128}");
    /* files from before the key: gelu */
    edit e15 = {.drop_key = "synthesizer.feed_forward_activation"};
    expect_edit(good, &e15, "no activation key", NULL);

    /* a file with a key of the wrong type */
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(good); i++) gguf_writer_copy_kv(w, good, i);
    gguf_writer_set_str(w, "synthesizer.context_length", "sixteen");
    void *b2;
    size_t s2;
    CHECK(gguf_writer_write_buffer(w, &b2, &s2) == 0);
    gguf_file *f2;
    arch_hparams hp;
    CHECK(gguf_open_buffer(b2, s2, &f2, err, sizeof err) == 0);
    CHECK(ckpt_read_hparams(f2, &hp, err, sizeof err) == GGUF_EFORMAT && strstr(err, "context_length") != NULL);
    gguf_close(f2);
    free(b2);
    gguf_writer_free(w);

    gguf_close(good);
    free(buf);
    params_free(&P);
    vocab_free(&fv);
}

TEST(test_write_rejects_bad_desc)
{
    fake_vocab fv;
    vocab_make(&fv);
    params P;
    params_make(&P, ARCH_RANDOM, 3);
    void *buf = NULL;
    size_t size;
    char err[256];
    ckpt_desc d = desc_of(&P, &fv, QUANT_F32);
    d.n_vocab = 299;
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == GGUF_EINVAL && strstr(err, "n_vocab") != NULL);
    d = desc_of(&P, &fv, 99);
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == GGUF_EINVAL && strstr(err, "type") != NULL);
    d = desc_of(&P, &fv, QUANT_F32);
    d.eos_id = 300;
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == GGUF_EINVAL && strstr(err, "eos") != NULL);
    float keep = P.p[5][3];
    P.p[5][3] = NAN;
    d = desc_of(&P, &fv, QUANT_Q8_0);
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == GGUF_EINVAL && strstr(err, P.ts[5].name) != NULL);
    P.p[5][3] = keep;
    arch_hparams bad = P.hp;
    bad.n_head = 5;
    d.hp = &bad;
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == GGUF_EINVAL && strncmp(err, "ckpt_write_buffer: ", 19) == 0);
    CHECK(buf == NULL);
    /* eos < 0: no eos key, still a valid checkpoint */
    d = desc_of(&P, &fv, QUANT_F32);
    d.eos_id = -1;
    CHECK(ckpt_write_buffer(&d, &buf, &size, err, sizeof err) == 0);
    gguf_file *f;
    arch_hparams hp;
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    CHECK(gguf_find_key(f, "tokenizer.ggml.eos_token_id") < 0 && ckpt_read_hparams(f, &hp, err, sizeof err) == 0);
    gguf_close(f);
    free(buf);
    params_free(&P);
    vocab_free(&fv);
}

/* ---- ckpt_quantize through files ---- */

static gguf_file *open_path(const char *path)
{
    gguf_file *f = NULL;
    char err[256];
    int rc = gguf_open(path, &f, err, sizeof err);
    CHECK_MSG(rc == 0, "open %s: %s", path, err);
    return f;
}

/* Same keys in the same order with the same types and values, except the
 * type-dependent ones. */
static void check_keys_copied(const gguf_file *a, const gguf_file *b)
{
    int64_t j = 0;
    for (int64_t i = 0; i < gguf_n_kv(a); i++) {
        const char *k = gguf_kv_key(a, i);
        if (strcmp(k, "general.quantization_version") == 0) continue;
        int64_t jb = gguf_find_key(b, k);
        CHECK_MSG(jb >= 0 && gguf_kv_type(b, jb) == gguf_kv_type(a, i), "key %s", k);
        CHECK_MSG(jb >= j, "key %s out of order", k);
        j = jb;
    }
    const char *const *sa, *const *sb;
    uint64_t na, nb;
    CHECK(gguf_get_arr_str(a, "tokenizer.ggml.tokens", &sa, NULL, &na) == 0);
    CHECK(gguf_get_arr_str(b, "tokenizer.ggml.tokens", &sb, NULL, &nb) == 0 && na == nb);
    for (uint64_t i = 0; i < na && na == nb; i++) CHECK(strcmp(sa[i], sb[i]) == 0);
}

TEST(test_quantize_files)
{
    char dir[64], p32[96], p8[96], p4[96], pback[96], pcopy[96];
    snprintf(dir, sizeof dir, "/tmp/test_ckpt_%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(p32, sizeof p32, "%s/f32.gguf", dir);
    snprintf(p8, sizeof p8, "%s/q8.gguf", dir);
    snprintf(p4, sizeof p4, "%s/q4.gguf", dir);
    snprintf(pback, sizeof pback, "%s/back.gguf", dir);
    snprintf(pcopy, sizeof pcopy, "%s/copy.gguf", dir);
    fake_vocab fv;
    vocab_make(&fv);
    arch_variant variants[2] = {ARCH_FACTORIZED_DENSE, ARCH_RANDOM_VANILLA};
    for (int vi = 0; vi < 2; vi++) {
        params P;
        params_make(&P, variants[vi], 99 + (uint64_t)vi);
        ckpt_desc d = desc_of(&P, &fv, QUANT_F32);
        char err[256];
        CHECK_MSG(ckpt_write(&d, p32, err, sizeof err) == 0, "ckpt_write: %s", err);
        CHECK_MSG(ckpt_quantize(p32, p8, QUANT_Q8_0, err, sizeof err) == 0, "to q8_0: %s", err);
        CHECK_MSG(ckpt_quantize(p8, p4, QUANT_Q4_0, err, sizeof err) == 0, "to q4_0: %s", err);
        CHECK_MSG(ckpt_quantize(p8, pback, QUANT_F32, err, sizeof err) == 0, "to f32: %s", err);
        CHECK_MSG(ckpt_quantize(p8, pcopy, QUANT_Q8_0, err, sizeof err) == 0, "q8_0 again: %s", err);
        gguf_file *f32 = open_path(p32), *f8 = open_path(p8), *f4 = open_path(p4), *fb = open_path(pback),
                  *fc = open_path(pcopy);
        if (f32 && f8 && f4 && fb && fc) {
            arch_hparams hp;
            uint32_t u;
            CHECK(ckpt_read_hparams(f8, &hp, err, sizeof err) == 0 && hp_equal(&hp, &P.hp));
            check_metadata(f8, &fv, &P.hp, QUANT_Q8_0);
            check_metadata(fb, &fv, &P.hp, QUANT_F32);
            check_keys_copied(f32, f8);
            check_keys_copied(f8, fb);
            CHECK(gguf_get_u32(f4, "general.file_type", &u) == 0 && u == CKPT_FTYPE_Q4_0);
            check_tensors_of(f8, &P, QUANT_Q8_0, "f32->q8_0");
            /* q8 -> f32 is exact: the stored values are the q8 values */
            for (int64_t i = 0; i < gguf_n_tensors(f8); i++) {
                const gguf_tensor_info *a = gguf_tensor(f8, i), *b = gguf_find_tensor(fb, a->name);
                int64_t n = a->ne[0] * a->ne[1] * a->ne[2] * a->ne[3];
                float *x = malloc((size_t)n * 4);
                quant_dequantize_row(a->type, a->data, x, n);
                CHECK(b && b->type == QUANT_F32 && memcmp(b->data, x, (size_t)n * 4) == 0);
                /* q8 -> q4 within the q4 bound of the q8 values */
                const gguf_tensor_info *c = gguf_find_tensor(f4, a->name);
                CHECK(c && c->type == (a->type == QUANT_Q8_0 ? QUANT_Q4_0 : a->type));
                if (c) CHECK_MSG(compare_tensor(x, c, n) == 0, "q8->q4 %s", a->name);
                /* same type: bytes copied */
                const gguf_tensor_info *s = gguf_find_tensor(fc, a->name);
                CHECK(s && s->nbytes == a->nbytes && memcmp(s->data, a->data, a->nbytes) == 0);
                free(x);
            }
        }
        gguf_close(f32); gguf_close(f8); gguf_close(f4); gguf_close(fb); gguf_close(fc);
        /* q4_0 with the token embedding at q8_0: the embedding's bytes are
         * the pure q8_0 file's, every other tensor's the pure q4_0 file's */
        CHECK_MSG(ckpt_quantize(p32, p8, QUANT_Q8_0, err, sizeof err) == 0, "to q8_0: %s", err);
        CHECK_MSG(ckpt_quantize(p32, p4, QUANT_Q4_0, err, sizeof err) == 0, "to q4_0: %s", err);
        CHECK_MSG(ckpt_quantize_mixed(p32, pcopy, QUANT_Q4_0, QUANT_Q8_0, err, sizeof err) == 0, "mixed: %s", err);
        f8 = open_path(p8);
        f4 = open_path(p4);
        gguf_file *fm = open_path(pcopy);
        if (f8 && f4 && fm) {
            uint32_t u;
            CHECK(gguf_get_u32(fm, "general.file_type", &u) == 0 && u == CKPT_FTYPE_Q4_0);
            CHECK(gguf_n_tensors(fm) == gguf_n_tensors(f4));
            int n_embd = 0;
            for (int64_t i = 0; i < gguf_n_tensors(fm); i++) {
                const gguf_tensor_info *a = gguf_tensor(fm, i);
                int embd = strcmp(a->name, "token_embd.weight") == 0;
                n_embd += embd;
                const gguf_tensor_info *b = gguf_find_tensor(embd ? f8 : f4, a->name);
                CHECK_MSG(b && b->type == a->type && b->nbytes == a->nbytes && memcmp(b->data, a->data, a->nbytes) == 0,
                          "mixed: %s", a->name);
            }
            CHECK(n_embd == 1);
        }
        gguf_close(f8); gguf_close(f4); gguf_close(fm);
        model *m = NULL;
        CHECK_MSG(model_load(pcopy, &m, err, sizeof err) == 0, "mixed file loads: %s", err);
        if (m) CHECK(strcmp(model_quant_name(m), "mixed") == 0);
        model_free(m);
        /* in place */
        CHECK_MSG(ckpt_quantize(p32, p32, QUANT_F16, err, sizeof err) == 0, "in place: %s", err);
        gguf_file *fi = open_path(p32);
        if (fi) {
            check_tensors_of(fi, &P, QUANT_F16, "in place f16");
            gguf_close(fi);
        }
        params_free(&P);
    }
    char err[256];
    CHECK(ckpt_quantize("/nonexistent/in.gguf", p8, QUANT_Q8_0, err, sizeof err) == GGUF_EIO && strlen(err) > 0);
    CHECK(ckpt_quantize(p8, p4, 99, err, sizeof err) == GGUF_EINVAL && strstr(err, "ckpt_quantize") == err);
    CHECK(ckpt_quantize_mixed(p8, p4, QUANT_Q4_0, 99, err, sizeof err) == GGUF_EINVAL && strstr(err, "embedding"));
    /* a GGUF file that is not a synthesizer checkpoint */
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    CHECK(gguf_writer_write(w, pcopy, err, sizeof err) == 0);
    gguf_writer_free(w);
    CHECK(ckpt_quantize(pcopy, p4, QUANT_Q8_0, err, sizeof err) == GGUF_EFORMAT && strstr(err, "llama") != NULL);
    unlink(p32); unlink(p8); unlink(p4); unlink(pback); unlink(pcopy);
    rmdir(dir);
    vocab_free(&fv);
}

int main(void)
{
    RUN(test_every_variant_every_type);
    RUN(test_broken_checkpoints_rejected);
    RUN(test_write_rejects_bad_desc);
    RUN(test_quantize_files);
    return test_summary();
}
