/*
 * model.c - inference engine of the Synthesizer LM (see model.h, arch.h).
 *
 * Reading order: loading (tensor table, precomputed static attention), the
 * cache, then the forward pass forward() from top to bottom: embeddings,
 * blocks (attention with its variants, FFN), final norm; then model_step
 * (logits for the requested rows) and model_score (log-softmax in row
 * chunks).
 *
 * Notation: d = n_embd, H = n_head, dh = d / H, L = n_ctx, F = n_ff,
 * V = n_vocab, T = number of rows (appended tokens of all sequences) in a
 * step. Activations are row-major [T, d] matrices; head h of a row is the
 * column slice [h*dh, (h+1)*dh).
 */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"
#include "gguf.h"
#include "kern.h"
#include "ops.h"
#include "quant.h"

/* Rows of one attention chunk (logits scratch is ATT_ROWS x L floats). */
#define ATT_ROWS 64
/* Rows of one vocabulary-projection chunk in model_score. */
#define SCORE_ROWS 128
/* Rows of one forward pass in model_score (sequences are never split). */
#define SCORE_MAX_ROWS 8192
/* Sliced steps (model_step_scored): at most this many slices, and none
 * more than SLICE_MAX_SKEW times the even share of the step's estimated
 * cost. */
#define MAX_SLICES 16
#define SLICE_MAX_SKEW 1.5
/* A thread's share of a sliced step follows its measured speed, kept
 * within this factor of the threads' mean speed. */
#define SLICE_SPEED_RANGE 2.0
/* Weight of the newest measurement in a thread's running speed; parts
 * shorter than SLICE_SPEED_MIN_S seconds are not measured (timer and
 * wake-up noise would swamp them). */
#define SLICE_SPEED_NEW 0.25
#define SLICE_SPEED_MIN_S 100e-6
/* A step of many sequences is cut into up to SLICE_PARTS_PER_THREAD parts
 * per thread (model_cache_set_parts_per_thread), each of at least
 * SLICE_MIN_SEQS sequences, claimed by whichever thread comes free. */
#define SLICE_PARTS_PER_THREAD 4
#define SLICE_MIN_SEQS 4
/* Each part streams all the packed weights once: it gets at least one
 * sequence per SLICE_BYTES_PER_SEQ bytes of them, so that pass is paid for
 * by enough rows. The shipped size (6.4 MB) keeps parts of 6+; a model 5x
 * larger (29 MB, beyond the caches) decoded 64 sequences at 7,065-7,536
 * tokens/s in 2 parts of 32 against 4,930-4,994 in 8 parts of 8. */
#define SLICE_BYTES_PER_SEQ (1 << 20)

/* One tensor of the checkpoint, read in place from the mapping. Matrices
 * (and 3-D tensors, as [outer*mid, inner]) are seen through w; f is the
 * data as floats when the type is f32 (always true for vectors). */
typedef struct {
    ops_mat w;
    const float *f;
} mtensor;

struct model {
    gguf_file *gf;
    tok_t *tok;
    arch_hparams hp;
    char name[128];
    uint32_t file_type;
    const char *quant_name;
    int64_t n_params;
    mtensor glob[T_N_GLOBAL];   /* token_embd, position_embd, output_norm */
    mtensor *layer;             /* [n_layer][T_N_LAYER_KINDS], by kind - T_N_GLOBAL */
    size_t lin_scratch;         /* floats: enough for ops_linear on any weight */
    size_t pass_bytes;          /* packed weights one pass over the network reads (plan_parts) */
    float *P;                   /* [n_layer, H, L, L] causal softmax(R), static variants */
    int recompute;              /* debug: ignore P and recompute softmax(R) per call */
    model_cache *score_cache;   /* reused by model_score (not thread-safe) */
    model_cache_type cache_values; /* of caches model_cache_create makes (model_set_cache_values) */
    float **owned;              /* f32 copies of f16 small tensors */
    int n_owned;
};

struct model_cache {
    const model *m;
    int n_slots;
    int *len;       /* [n_slots] tokens stored per slot */
    float *v;       /* [n_slots, n_layer, L, d] values (MODEL_CACHE_F32), or NULL */
    uint16_t *vh;   /* [n_slots, n_layer, L, d] values as IEEE halves (MODEL_CACHE_F16), or NULL */
    float *k;       /* [n_slots, n_layer, H, Lp/16, dh, 16] keys in blocks of 16 positions (vanilla parts), or NULL */
    int *mark;      /* [n_slots] scratch for the duplicate-slot check */
    int *dec;       /* [n_slots] scratch: indices of the decoding sequences */
    /* scratch arenas of the forward pass, grown as needed: arena 0 for an
     * unsliced step, arena i for slice i of a sliced one */
    float *buf[MAX_SLICES];
    size_t cap[MAX_SLICES]; /* floats in buf[i] */
    int invariant;  /* batch-invariant linear layers (model_cache_set_batch_invariant) */
    long sliced;    /* steps run as several parts (model_cache_sliced_steps) */
    /* speed[t]: pool thread t's recent rate on sliced steps, estimated cost
     * per second (0: not measured); plan_parts cuts in proportion to it.
     * speed_fixed: set by model_cache_fix_thread_speeds, not measured. */
    double speed[MAX_SLICES];
    int speed_fixed;
    int parts_per_thread; /* model_cache_set_parts_per_thread */
    int last_np, last_cut[MAX_SLICES + 1]; /* the last step's parts (model_cache_last_parts) */
    /* model_attention: when probe != NULL, attend_head copies the attention
     * weights of (probe_layer, probe_head) into probe [len, probe_ld], row =
     * position; NULL in every other cache */
    float *probe;
    int probe_layer, probe_head, probe_ld;
};

static const mtensor *lt(const model *m, int il, arch_kind k)
{
    return &m->layer[(size_t)il * T_N_LAYER_KINDS + (k - T_N_GLOBAL)];
}

const char *model_strerror(int err)
{
    switch (err) {
    case MODEL_OK: return "success";
    case MODEL_EIO: return "i/o error";
    case MODEL_EFORMAT: return "malformed checkpoint";
    case MODEL_ENOMEM: return "out of memory";
    case MODEL_EINVAL: return "invalid argument";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ */
/* loading                                                              */
/* ------------------------------------------------------------------ */

#define LOAD_FAIL(code, ...)                                   \
    do {                                                       \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
        return (code);                                         \
    } while (0)

/* The tensor table: ckpt_check_tensors finds every tensor of the variant
 * and validates shapes and types; quantizable matrices stay in place in
 * their stored type, the small non-quantizable tensors (norms, biases,
 * position embedding, R) are read as f32, so an f16 one gets an f32 copy. */
static int load_tensors(model *m, char *err, size_t errlen)
{
    const arch_hparams *hp = &m->hp;
    const int n = arch_tensors(hp, NULL, 0);
    arch_tensor *ts = calloc((size_t)n, sizeof *ts);
    const gguf_tensor_info **ti = calloc((size_t)n, sizeof *ti);
    m->owned = calloc((size_t)n, sizeof *m->owned);
    char e[256];
    int rc = MODEL_ENOMEM;
    if (!ts || !ti || !m->owned) {
        snprintf(err, errlen, "model_load: out of memory");
        goto done;
    }
    arch_tensors(hp, ts, n);
    if (ckpt_check_tensors(m->gf, hp, ti, e, sizeof e) != 0) {
        snprintf(err, errlen, "model_load: %s", e);
        rc = MODEL_EFORMAT;
        goto done;
    }
    int64_t first = -1;
    int mixed = 0;
    for (int i = 0; i < n; i++) {
        const arch_tensor *t = &ts[i];
        int64_t inner = t->shape[t->n_dims - 1], outer = t->n_elem / inner;
        mtensor *mt = t->layer < 0 ? &m->glob[t->kind] : &m->layer[(size_t)t->layer * T_N_LAYER_KINDS + (t->kind - T_N_GLOBAL)];
        if (ops_mat_init(&mt->w, ti[i]->data, ti[i]->type, outer, inner) != 0) {
            snprintf(err, errlen, "model_load: tensor %s has unsupported type %s", t->name,
                     quant_type_name(ti[i]->type));
            rc = MODEL_EFORMAT;
            goto done;
        }
        if (ti[i]->type == QUANT_F32) {
            mt->f = (const float *)ti[i]->data;
        } else if (!t->quantizable) {
            float *f = malloc(sizeof(float) * (size_t)t->n_elem);
            if (!f) {
                snprintf(err, errlen, "model_load: out of memory");
                goto done;
            }
            quant_dequantize_row(ti[i]->type, ti[i]->data, f, t->n_elem);
            m->owned[m->n_owned++] = f;
            mt->f = f;
            ops_mat_init(&mt->w, f, QUANT_F32, outer, inner);
        }
        /* matrices that go through ops_linear get the packed copy of the
         * row-wise kernels; the per-head slices of 3-D ones are its groups */
        if (t->n_dims >= 2 && t->kind != T_RANDOM && t->kind != T_RANDOM_A && t->kind != T_RANDOM_B &&
            t->kind != T_POS_EMBD && ops_mat_pack(&mt->w, t->n_dims == 3 ? t->shape[1] : 0) != 0) {
            snprintf(err, errlen, "model_load: out of memory packing %s", t->name);
            goto done;
        }
        if (mt->w.pk.data) m->pass_bytes += (size_t)kern_n_panels(mt->w.rows, mt->w.group_rows) * mt->w.pk.panel_bytes;
        size_t s1 = ops_linear_scratch(&mt->w, 1), sb = ops_linear_scratch(&mt->w, 1 << 30);
        if (s1 > m->lin_scratch) m->lin_scratch = s1;
        if (sb > m->lin_scratch) m->lin_scratch = sb;
        if (t->quantizable) { /* the file type name from the quantizable tensors */
            if (first < 0) first = ti[i]->type;
            else if ((int64_t)ti[i]->type != first) mixed = 1;
        }
    }
    m->quant_name = mixed ? "mixed" : quant_type_name(first < 0 ? QUANT_F32 : (uint32_t)first);
    rc = 0;
done:
    free(ts);
    free(ti);
    return rc;
}

/* The tokenizer from the tokenizer.ggml.* keys. */
static int load_tok(model *m, char *err, size_t errlen)
{
    char e[256];
    int rc = tok_from_gguf(m->gf, &m->tok, e, sizeof e);
    if (rc == TOK_ENOMEM) LOAD_FAIL(MODEL_ENOMEM, "model_load: out of memory");
    if (rc != 0) LOAD_FAIL(MODEL_EFORMAT, "model_load: %s", e);
    if (tok_n_vocab(m->tok) != m->hp.n_vocab)
        LOAD_FAIL(MODEL_EFORMAT, "model_load: %d tokens in the vocabulary, n_vocab is %d", tok_n_vocab(m->tok),
                  m->hp.n_vocab);
    return 0;
}

/* Logits of the input-independent synthesizer part for head h, rows
 * [i0, i0+ni) and columns [0, ncol): R rows (random variants) or
 * R1[i0:i0+ni] R2[0:ncol]^T (factorized). S is [ni, lds]. */
static void static_logits(const model *m, int il, int h, int i0, int ni, int ncol, float *S, int lds)
{
    const int L = m->hp.n_ctx;
    if (arch_has_random(m->hp.variant)) {
        const float *R = lt(m, il, T_RANDOM)->f + (size_t)h * L * L; /* R_h [L, L] */
        for (int i = 0; i < ni; i++) memcpy(S + (size_t)i * lds, R + (size_t)(i0 + i) * L, sizeof(float) * ncol);
    } else {
        const int k = m->hp.fr_rank;
        const float *R1 = lt(m, il, T_RANDOM_A)->f + (size_t)h * L * k; /* R1_h [L, k] */
        const float *R2 = lt(m, il, T_RANDOM_B)->f + (size_t)h * L * k; /* R2_h [L, k] */
        if (ni == 1) /* decode runs on the ops pool: no BLAS there */
            for (int j = 0; j < ncol; j++) S[j] = ops_dot(R1 + (size_t)i0 * k, R2 + (size_t)j * k, k);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, ncol, k, 1.0f, R1 + (size_t)i0 * k, k, R2,
                        k, 0.0f, S, lds);
    }
}

/* Row i of S (at position p = i0 + i) becomes softmax over columns 0..p,
 * zeros after, so a GEMM with all ncol columns stays causal. */
static void causal_softmax(float *S, int lds, int i0, int ni, int ncol)
{
    for (int i = 0; i < ni; i++) {
        float *s = S + (size_t)i * lds;
        int valid = i0 + i + 1;
        ops_softmax(s, valid);
        if (ncol > valid) memset(s + valid, 0, sizeof(float) * (size_t)(ncol - valid));
    }
}

/* P_l,h = causal softmax of the static logits, [n_layer, H, L, L]. Above
 * MODEL_MAX_PRECOMPUTE bytes (or if the allocation fails) nothing is
 * precomputed and the general attention path computes softmax(R) rows on
 * every call instead: slower, same numbers. */
#define MODEL_MAX_PRECOMPUTE ((int64_t)1 << 30)

static int precompute_static(model *m)
{
    const int64_t L = m->hp.n_ctx, H = m->hp.n_head, nl = m->hp.n_layer;
    if (nl * H * L * L > MODEL_MAX_PRECOMPUTE / (int64_t)sizeof(float)) return 0;
    size_t n = (size_t)(nl * H * L * L);
    m->P = malloc(sizeof(float) * n);
    if (!m->P) return 0;
    for (int il = 0; il < nl; il++)
        for (int h = 0; h < H; h++) {
            float *P = m->P + ((size_t)il * H + h) * L * L;
            static_logits(m, il, h, 0, (int)L, (int)L, P, (int)L);
            causal_softmax(P, (int)L, 0, (int)L, (int)L);
        }
    return 0;
}

static int load_common(model *m, char *err, size_t errlen)
{
    char e[256];
    int rc = ckpt_read_hparams(m->gf, &m->hp, e, sizeof e);
    if (rc != 0) LOAD_FAIL(MODEL_EFORMAT, "model_load: %s", e);
    if (arch_hparams_validate(&m->hp, e, sizeof e) != 0) LOAD_FAIL(MODEL_EFORMAT, "model_load: %s", e);
    m->n_params = arch_n_params(&m->hp);
    const char *name = NULL;
    if (gguf_get_str(m->gf, "general.name", &name, NULL) == 0) snprintf(m->name, sizeof m->name, "%s", name);
    uint32_t ft = 0;
    m->file_type = gguf_get_u32(m->gf, "general.file_type", &ft) == 0 ? ft : 0;
    m->layer = calloc((size_t)m->hp.n_layer * T_N_LAYER_KINDS, sizeof *m->layer);
    if (!m->layer) LOAD_FAIL(MODEL_ENOMEM, "model_load: out of memory");
    if ((rc = load_tensors(m, err, errlen)) != 0) return rc;
    if ((rc = load_tok(m, err, errlen)) != 0) return rc;
    if (arch_is_static(m->hp.variant)) precompute_static(m);
    return 0;
}

static int load_finish(model *m, int rc, model **out)
{
    if (rc != 0) {
        model_free(m);
        return rc;
    }
    m->cache_values = MODEL_CACHE_F16;
    *out = m;
    return 0;
}

int model_load(const char *path, model **out, char *err, size_t errlen)
{
    char e[256];
    if (err && errlen) err[0] = 0;
    if (!out) LOAD_FAIL(MODEL_EINVAL, "model_load: out is NULL");
    *out = NULL;
    if (!path) LOAD_FAIL(MODEL_EINVAL, "model_load: path is NULL");
    model *m = calloc(1, sizeof *m);
    if (!m) LOAD_FAIL(MODEL_ENOMEM, "model_load: out of memory");
    int rc = gguf_open(path, &m->gf, e, sizeof e);
    if (rc != 0) {
        free(m);
        LOAD_FAIL(rc == GGUF_EIO ? MODEL_EIO : rc == GGUF_ENOMEM ? MODEL_ENOMEM : MODEL_EFORMAT,
                  "model_load: %s: %s", path, e);
    }
    return load_finish(m, load_common(m, err, errlen), out);
}

int model_load_buffer(const void *buf, size_t size, model **out, char *err, size_t errlen)
{
    char e[256];
    if (err && errlen) err[0] = 0;
    if (!out) LOAD_FAIL(MODEL_EINVAL, "model_load: out is NULL");
    *out = NULL;
    if (!buf) LOAD_FAIL(MODEL_EINVAL, "model_load: buffer is NULL");
    model *m = calloc(1, sizeof *m);
    if (!m) LOAD_FAIL(MODEL_ENOMEM, "model_load: out of memory");
    int rc = gguf_open_buffer(buf, size, &m->gf, e, sizeof e);
    if (rc != 0) {
        free(m);
        LOAD_FAIL(rc == GGUF_ENOMEM ? MODEL_ENOMEM : MODEL_EFORMAT, "model_load: %s", e);
    }
    return load_finish(m, load_common(m, err, errlen), out);
}

void model_free(model *m)
{
    if (!m) return;
    model_cache_free(m->score_cache);
    for (int i = 0; i < T_N_GLOBAL; i++) ops_mat_free(&m->glob[i].w);
    for (size_t i = 0; m->layer && i < (size_t)m->hp.n_layer * T_N_LAYER_KINDS; i++) ops_mat_free(&m->layer[i].w);
    free(m->P);
    free(m->layer);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    tok_free(m->tok);
    gguf_close(m->gf);
    free(m);
}

const arch_hparams *model_hparams(const model *m) { return &m->hp; }
const tok_t *model_tok(const model *m) { return m->tok; }
const char *model_name(const model *m) { return m->name; }
uint32_t model_file_type(const model *m) { return m->file_type; }
const char *model_quant_name(const model *m) { return m->quant_name; }
int64_t model_n_params(const model *m) { return m->n_params; }
size_t model_file_size(const model *m) { return gguf_file_size(m->gf); }

const float *model_static_attention(const model *m, int layer, int head)
{
    if (!m || !m->P || layer < 0 || layer >= m->hp.n_layer || head < 0 || head >= m->hp.n_head) return NULL;
    const size_t L = (size_t)m->hp.n_ctx;
    return m->P + ((size_t)layer * m->hp.n_head + head) * L * L;
}

const float *model_mix_alpha(const model *m, int layer)
{
    if (!m || !arch_has_mix(m->hp.variant) || layer < 0 || layer >= m->hp.n_layer) return NULL;
    return lt(m, layer, T_MIX)->f;
}

void model_set_recompute(model *m, int on)
{
    if (m) m->recompute = on != 0;
}

/* ------------------------------------------------------------------ */
/* engine-wide settings                                                 */
/* ------------------------------------------------------------------ */

int model_set_threads(int n) { return ops_set_threads(n); }
int model_threads(void) { return ops_n_threads(); }

int model_set_cpu(const char *name, char *err, size_t errlen)
{
    kern_level l;
    if (err && errlen) err[0] = 0;
    if (name && strcmp(name, "auto") == 0) l = kern_best_level();
    else if (kern_level_parse(name, &l) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "model_set_cpu: unknown CPU level \"%s\" (auto, scalar, avx2, avx512)",
                     name ? name : "(null)");
        return MODEL_EINVAL;
    }
    if (kern_set_level(l) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "model_set_cpu: this CPU cannot run the %s kernels (best: %s)", kern_level_name(l),
                     kern_level_name(kern_best_level()));
        return MODEL_EINVAL;
    }
    return 0;
}

int model_set_act(const char *name, char *err, size_t errlen)
{
    kern_act a;
    if (err && errlen) err[0] = 0;
    if (kern_act_parse(name, &a) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "model_set_act: unknown activation mode \"%s\" (q8, f32)", name ? name : "(null)");
        return MODEL_EINVAL;
    }
    kern_set_act(a);
    return 0;
}

const char *model_act(void) { return kern_act_name(kern_get_act()); }
const char *model_cpu(void) { return kern_level_name(kern_get_level()); }
const char *model_cpu_best(void) { return kern_level_name(kern_best_level()); }
const char *model_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

/* ------------------------------------------------------------------ */
/* cache                                                                */
/* ------------------------------------------------------------------ */

/* Positions of the key cache, rounded up to whole blocks of KERN_KB. */
static int cache_lp(const arch_hparams *hp)
{
    return (hp->n_ctx + KERN_KB - 1) / KERN_KB * KERN_KB;
}

model_cache *model_cache_create(const model *m, int n_slots)
{
    return m ? model_cache_create_typed(m, n_slots, m->cache_values) : NULL;
}

int model_set_cache_values(model *m, model_cache_type values)
{
    if (!m || (values != MODEL_CACHE_F32 && values != MODEL_CACHE_F16)) return MODEL_EINVAL;
    m->cache_values = values;
    return 0;
}

model_cache_type model_cache_values_default(const model *m)
{
    return m ? m->cache_values : MODEL_CACHE_F16;
}

model_cache_type model_cache_values(const model_cache *c)
{
    return c && c->vh ? MODEL_CACHE_F16 : MODEL_CACHE_F32;
}

model_cache *model_cache_create_typed(const model *m, int n_slots, model_cache_type values)
{
    if (values != MODEL_CACHE_F32 && values != MODEL_CACHE_F16) return NULL;
    if (!m || n_slots < 1) return NULL;
    const size_t per_slot = (size_t)m->hp.n_layer * cache_lp(&m->hp) * m->hp.n_embd; /* >= the values' */
    if ((size_t)n_slots > ((size_t)1 << 40) / per_slot) return NULL;
    model_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->m = m;
    c->n_slots = n_slots;
    c->invariant = 1;
    c->parts_per_thread = SLICE_PARTS_PER_THREAD;
    c->len = calloc((size_t)n_slots, sizeof *c->len);
    c->mark = calloc((size_t)n_slots, sizeof *c->mark);
    c->dec = calloc((size_t)n_slots, sizeof *c->dec);
    /* calloc: pages of unused slots are never touched */
    const size_t nv = (size_t)n_slots * m->hp.n_layer * m->hp.n_ctx * m->hp.n_embd;
    if (values == MODEL_CACHE_F16) c->vh = calloc(nv, sizeof *c->vh);
    else c->v = calloc(nv, sizeof *c->v);
    if (arch_has_vanilla(m->hp.variant))
        c->k = calloc((size_t)n_slots * m->hp.n_layer * cache_lp(&m->hp) * m->hp.n_embd, sizeof(float));
    if (!c->len || !c->mark || !c->dec || (!c->v && !c->vh) || (arch_has_vanilla(m->hp.variant) && !c->k)) {
        model_cache_free(c);
        return NULL;
    }
    return c;
}

void model_cache_set_batch_invariant(model_cache *c, int on)
{
    if (c) c->invariant = on != 0;
}

void model_cache_free(model_cache *c)
{
    if (!c) return;
    free(c->len);
    free(c->mark);
    free(c->dec);
    free(c->v);
    free(c->vh);
    free(c->k);
    for (int i = 0; i < MAX_SLICES; i++) free(c->buf[i]);
    free(c);
}

int model_cache_slots(const model_cache *c) { return c ? c->n_slots : 0; }
long model_cache_sliced_steps(const model_cache *c) { return c ? c->sliced : 0; }

int model_cache_last_parts(const model_cache *c, int *first_seq, int max)
{
    if (!c) return 0;
    for (int k = 0; first_seq && k < c->last_np && k < max; k++) first_seq[k] = c->last_cut[k];
    return c->last_np;
}

int model_cache_thread_speeds(const model_cache *c, double *speed, int max)
{
    if (!c) return 0;
    int n = max < MAX_SLICES ? max : MAX_SLICES;
    for (int t = 0; t < n; t++) speed[t] = c->speed[t];
    return n;
}

int model_cache_set_parts_per_thread(model_cache *c, int n)
{
    if (!c || n < 1 || n > MAX_SLICES) return MODEL_EINVAL;
    c->parts_per_thread = n;
    return 0;
}

void model_cache_fix_thread_speeds(model_cache *c, const double *speed, int n)
{
    if (!c) return;
    memset(c->speed, 0, sizeof c->speed);
    c->speed_fixed = speed != NULL;
    for (int t = 0; speed && t < n && t < MAX_SLICES; t++) c->speed[t] = speed[t] > 0 ? speed[t] : 0;
}

int model_cache_len(const model_cache *c, int slot)
{
    return c && slot >= 0 && slot < c->n_slots ? c->len[slot] : 0;
}

void model_cache_reset(model_cache *c, int slot)
{
    if (c && slot >= 0 && slot < c->n_slots) c->len[slot] = 0;
}

size_t model_cache_bytes(const model_cache *c)
{
    if (!c) return 0;
    const arch_hparams *hp = &c->m->hp;
    size_t v = (size_t)c->n_slots * hp->n_layer * hp->n_ctx * hp->n_embd * (c->vh ? 2 : sizeof(float));
    size_t k = c->k ? (size_t)c->n_slots * hp->n_layer * cache_lp(hp) * hp->n_embd * sizeof(float) : 0;
    size_t arenas = 0;
    for (int i = 0; i < MAX_SLICES; i++) arenas += c->cap[i] * sizeof(float);
    return v + k + arenas + (size_t)c->n_slots * 3 * sizeof(int);
}

/* Offset of one slot and layer's values [L, d] in c->v or c->vh. */
static size_t cache_v_off(const model_cache *c, int slot, int il)
{
    const arch_hparams *hp = &c->m->hp;
    return ((size_t)slot * hp->n_layer + il) * hp->n_ctx * hp->n_embd;
}

/* Keys of one slot and layer: per head h, [Lp / KERN_KB][dh][KERN_KB] at
 * h * dh * Lp (model/kern.h's kern_qk_fn layout). */
static float *cache_k_at(const model_cache *c, int slot, int il)
{
    const arch_hparams *hp = &c->m->hp;
    return c->k + ((size_t)slot * hp->n_layer + il) * (size_t)cache_lp(hp) * hp->n_embd;
}

int model_context_keep(const model *m)
{
    return m && m->hp.n_ctx >= 2 ? m->hp.n_ctx / 2 : 1;
}

int model_decode_seq(const model *m, model_cache *c, int slot, const int32_t *hist, int n_hist, model_seq *seq)
{
    *seq = (model_seq){slot, 1, hist + n_hist - 1, 0};
    if (model_cache_len(c, slot) < m->hp.n_ctx) return 0;
    const int keep = model_context_keep(m);
    model_cache_reset(c, slot);
    *seq = (model_seq){slot, keep, hist + n_hist - keep, 0};
    return 1;
}

int model_cache_copy(model_cache *c, int dst, int src, int n)
{
    if (!c || dst < 0 || dst >= c->n_slots || src < 0 || src >= c->n_slots || dst == src || n < 0 ||
        n > c->len[src])
        return MODEL_EINVAL;
    const arch_hparams *hp = &c->m->hp;
    const int d = hp->n_embd, dh = d / hp->n_head, Lp = cache_lp(hp), nb = (n + KERN_KB - 1) / KERN_KB;
    for (int il = 0; il < hp->n_layer; il++) {
        if (c->vh) memcpy(c->vh + cache_v_off(c, dst, il), c->vh + cache_v_off(c, src, il), sizeof *c->vh * (size_t)n * d);
        else memcpy(c->v + cache_v_off(c, dst, il), c->v + cache_v_off(c, src, il), sizeof *c->v * (size_t)n * d);
        if (!c->k) continue;
        /* whole blocks of KERN_KB positions per head; positions >= n in the
         * last block are past len, never read before they are written */
        for (int h = 0; h < hp->n_head; h++)
            memcpy(cache_k_at(c, dst, il) + (size_t)h * dh * Lp, cache_k_at(c, src, il) + (size_t)h * dh * Lp,
                   sizeof(float) * (size_t)nb * dh * KERN_KB);
    }
    c->len[dst] = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* scratch                                                              */
/* ------------------------------------------------------------------ */

/* Pointers into the cache's arena for one forward pass of T rows. */
typedef struct {
    float *x;     /* [T, d] residual stream */
    float *xn;    /* [T, d] normalized input of a sublayer */
    float *v;     /* [T, d] values of the appended rows */
    float *q, *k; /* [T, d] queries, keys (vanilla parts) */
    float *hd;    /* [T, d] dense hidden relu(W1 x + b1) (dense / factorized A) */
    float *hb;    /* [T, d] factorized dense hidden of B */
    float *att;   /* [T, d] concatenated heads */
    float *tmp;   /* [T, d] sublayer output before the residual add */
    float *ff;    /* [T, F] FFN hidden */
    /* per thread of ops_parallel_for (index t: pointer + t * stride): */
    float *S;     /* [max(ATT_ROWS, H), L] attention logits/weights of a chunk */
    float *fa, *fb; /* [ATT_ROWS, a], [ATT_ROWS, b] factorized dense factors */
    float *qk;    /* [L] one row's q.k over the positions (vanilla parts) */
    float *lin;   /* ops_linear scratch */
    int lin_flags; /* OPS_ROWWISE when the cache is batch-invariant */
    size_t S_stride, fa_stride, fb_stride, qk_stride, lin_stride;
    float *extra; /* caller's extra floats (output rows, score logits) */
    int *dec;     /* [n_seq] indices of the decoding sequences (the cache's) */
} scratch;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Carve arena `a` for T rows plus `extra` floats, with per-thread parts
 * for nt threads (the pool's budget, or 1 for a slice, which runs on one
 * thread); grows the arena first. 0 or MODEL_ENOMEM (nothing else
 * changed). */
static int scratch_get(model_cache *c, int a, int T, size_t extra, int n_threads, scratch *s)
{
    const arch_hparams *hp = &c->m->hp;
    const arch_variant var = hp->variant;
    const size_t Td = round16((size_t)T * hp->n_embd), nt = (size_t)n_threads;
    size_t sizes[15] = {
        Td, Td, Td,
        arch_has_vanilla(var) ? Td : 0, arch_has_vanilla(var) ? Td : 0,
        (arch_has_dense(var) || arch_has_factorized_dense(var)) ? Td : 0,
        arch_has_factorized_dense(var) ? Td : 0,
        Td, Td, round16((size_t)T * hp->n_ff * (size_t)arch_ffn_up_mult(hp->ffn)),
        /* per thread: */
        round16((size_t)(ATT_ROWS > hp->n_head ? ATT_ROWS : hp->n_head) * hp->n_ctx),
        /* fd_a, fd_b are validated only for factorized_dense (other
         * variants carry whatever the file says): size by them only there */
        arch_has_factorized_dense(var) ? round16((size_t)ATT_ROWS * hp->fd_a) : 0,
        arch_has_factorized_dense(var) ? round16((size_t)ATT_ROWS * hp->fd_b) : 0,
        arch_has_vanilla(var) ? round16((size_t)hp->n_ctx) : 0,
        round16(c->m->lin_scratch),
    };
    size_t total = round16(extra);
    for (int i = 0; i < 15; i++) total += sizes[i] * (i >= 10 ? nt : 1);
    if (total > c->cap[a]) {
        float *nb = aligned_alloc(64, total * sizeof(float));
        if (!nb) return MODEL_ENOMEM;
        free(c->buf[a]);
        c->buf[a] = nb;
        c->cap[a] = total;
    }
    float *p = c->buf[a];
    float **dst[15] = {&s->x, &s->xn, &s->v, &s->q, &s->k, &s->hd, &s->hb, &s->att, &s->tmp, &s->ff,
                       &s->S, &s->fa, &s->fb, &s->qk, &s->lin};
    for (int i = 0; i < 15; i++) {
        *dst[i] = sizes[i] ? p : NULL;
        p += sizes[i] * (i >= 10 ? nt : 1);
    }
    s->S_stride = sizes[10];
    s->fa_stride = sizes[11];
    s->fb_stride = sizes[12];
    s->qk_stride = sizes[13];
    s->lin_stride = sizes[14];
    s->extra = p;
    s->dec = c->dec;
    s->lin_flags = c->invariant ? OPS_ROWWISE : 0;
    return 0;
}

/* The per-thread part of the scratch for thread t. */
static scratch scratch_thread(const scratch *s, int t)
{
    scratch r = *s;
    r.S = s->S + (size_t)t * s->S_stride;
    r.fa = s->fa ? s->fa + (size_t)t * s->fa_stride : NULL;   /* NULL unless factorized_dense */
    r.fb = s->fb ? s->fb + (size_t)t * s->fb_stride : NULL;
    r.qk = s->qk ? s->qk + (size_t)t * s->qk_stride : NULL;
    r.lin = s->lin ? s->lin + (size_t)t * s->lin_stride : NULL;
    return r;
}

/* ------------------------------------------------------------------ */
/* forward pass                                                         */
/* ------------------------------------------------------------------ */

/* A sequence's rows in the step: rows [r0, r0+n) at positions [p0, p0+n). */
typedef struct {
    int slot, r0, p0, n;
} seq_rows;

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Attention logits S[ni, ncol] (ld lds) of head h for rows [i0, i0+ni) of a
 * sequence (positions p0+i0..), before the softmax, for every variant that
 * is not served by the precomputed P. */
static void attn_logits(const model *m, const model_cache *c, const scratch *s, int il, int h,
                        const seq_rows *sr, int i0, int ni, int ncol, float *S, int lds)
{
    const arch_hparams *hp = &m->hp;
    const arch_variant var = hp->variant;
    const int d = hp->n_embd, dh = d / hp->n_head, L = hp->n_ctx;
    const int pos = sr->p0 + i0;            /* position of the first row */
    const size_t row = (size_t)(sr->r0 + i0) * d + (size_t)h * dh; /* its head slice in [T, d] */
    int have_synth = 1;

    if (arch_has_random(var) || arch_has_factorized_random(var)) {
        static_logits(m, il, h, pos, ni, ncol, S, lds);
    } else if (arch_has_dense(var)) {
        /* S[i, j] = W2_h[j] . relu(W1_h x_i + b1_h) + b2_h[j], W2_h [L, dh] */
        const mtensor *w2 = lt(m, il, T_DENSE2_W);  /* [H, L, dh], head h: rows h*L.. */
        const mtensor *b2 = lt(m, il, T_DENSE2_B);  /* [H, L] */
        ops_mat W2h = ops_mat_rows(&w2->w, (int64_t)h * L, ncol);
        ops_linear(ni, s->hd + row, d, &W2h, b2->f + (size_t)h * L, S, lds, s->lin, s->lin_flags);
    } else if (arch_has_factorized_dense(var)) {
        /* S[i, j] = A_i[j % a] * B_i[j / a], A_i = W_A2_h relu(.) + b, [a]; B_i likewise [b] */
        const int a = hp->fd_a, b = hp->fd_b;
        const mtensor *wa = lt(m, il, T_DENSE_A2_W), *ba = lt(m, il, T_DENSE_A2_B); /* [H, a, dh], [H, a] */
        const mtensor *wb = lt(m, il, T_DENSE_B2_W), *bb = lt(m, il, T_DENSE_B2_B); /* [H, b, dh], [H, b] */
        ops_mat WAh = ops_mat_rows(&wa->w, (int64_t)h * a, a), WBh = ops_mat_rows(&wb->w, (int64_t)h * b, b);
        ops_linear(ni, s->hd + row, d, &WAh, ba->f + (size_t)h * a, s->fa, a, s->lin, s->lin_flags);
        ops_linear(ni, s->hb + row, d, &WBh, bb->f + (size_t)h * b, s->fb, b, s->lin, s->lin_flags);
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < ncol; j++) S[(size_t)i * lds + j] = s->fa[i * a + j % a] * s->fb[i * b + j / a];
    } else {
        have_synth = 0;
    }

    if (arch_has_vanilla(var)) {
        /* S = (1 - g) q.k / sqrt(dh) + g S,  g = sigmoid(alpha_h) (0 without a mix) */
        float g = arch_has_mix(var) ? sigmoidf(lt(m, il, T_MIX)->f[h]) : 0.0f; /* alpha [H] */
        if (have_synth)
            for (int i = 0; i < ni; i++)
                for (int j = 0; j < ncol; j++) S[(size_t)i * lds + j] *= g;
        /* keys are cached per head in blocks of KERN_KB positions (model/kern.h),
         * so one row's logits over all positions are contiguous
         * multiply-adds with no horizontal sums, the same for every row */
        const float *KB = cache_k_at(c, sr->slot, il) + (size_t)h * dh * cache_lp(hp); /* [Lp/16][dh][16] */
        const float scale = (1.0f - g) / sqrtf((float)dh);
        for (int i = 0; i < ni; i++) {
            float *qk = s->qk, *Si = S + (size_t)i * lds; /* qk [ncol] */
            ops_qk_blocked(dh, ncol, s->q + row + (size_t)i * d, KB, qk);
            for (int j = 0; j < ncol; j++) Si[j] = scale * qk[j] + (have_synth ? Si[j] : 0.0f);
        }
    }
}

/* model_attention's probe: is (il, h) the watched layer and head? */
static int probing(const model_cache *c, int il, int h)
{
    return c->probe && il == c->probe_layer && h == c->probe_head;
}

/* Copy attention weights A [ni, ncol] (ld lda) of positions p..p+ni-1 into
 * the probe rows (columns past ncol stay as the caller zeroed them). */
static void probe_rows(const model_cache *c, int p, int ni, int ncol, const float *A, int lda)
{
    for (int i = 0; i < ni; i++)
        memcpy(c->probe + (size_t)(p + i) * c->probe_ld, A + (size_t)i * lda, sizeof(float) * (size_t)ncol);
}

/* Attention of one sequence and head: att[rows, head h] = A . V_h. */
static void attend_head(const model *m, const model_cache *c, const scratch *s, int il, int h,
                        const seq_rows *sr)
{
    const arch_hparams *hp = &m->hp;
    const int d = hp->n_embd, dh = d / hp->n_head, L = hp->n_ctx;
    const float *V = c->v + cache_v_off(c, sr->slot, il) + (size_t)h * dh; /* V_h [L, dh], ld d (f32 cache) */
    float *Y = s->att + (size_t)sr->r0 * d + (size_t)h * dh;            /* [n, dh], ld d */

    if (m->P && !m->recompute) {
        /* static: Y = P[p0:p0+n, 0:p0+n] . V[0:p0+n] (P is zero above the diagonal) */
        const float *P = model_static_attention(m, il, h) + (size_t)sr->p0 * L;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sr->n, dh, sr->p0 + sr->n, 1.0f, P, L, V, d,
                    0.0f, Y, d);
        if (probing(c, il, h)) probe_rows(c, sr->p0, sr->n, sr->p0 + sr->n, P, L);
        return;
    }
    /* general: chunks of rows; logits, causal softmax, then one GEMM */
    for (int i0 = 0; i0 < sr->n; i0 += ATT_ROWS) {
        int ni = sr->n - i0 < ATT_ROWS ? sr->n - i0 : ATT_ROWS;
        int ncol = sr->p0 + i0 + ni; /* the chunk's last row sees positions 0..ncol-1 */
        attn_logits(m, c, s, il, h, sr, i0, ni, ncol, s->S, ncol);
        causal_softmax(s->S, ncol, sr->p0 + i0, ni, ncol);
        if (probing(c, il, h)) probe_rows(c, sr->p0 + i0, ni, ncol, s->S, ncol);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, dh, ncol, 1.0f, s->S, ncol, V, d, 0.0f,
                    Y + (size_t)i0 * d, d);
    }
}

/* Decode: the single new row of a sequence (position p) attends to
 * positions 0..p: att[row, head h] = sum_j A_h[j] V[j, head h], the
 * weighted sum kept in registers (no GEMM call for a single row). */
static void attend_one(const model *m, const model_cache *c, const scratch *s, int il, const seq_rows *sr)
{
    const arch_hparams *hp = &m->hp;
    const int d = hp->n_embd, H = hp->n_head, dh = d / H, L = hp->n_ctx, p = sr->p0;
    const size_t voff = cache_v_off(c, sr->slot, il); /* values [L, d] */
    float *y = s->att + (size_t)sr->r0 * d;           /* [d] */
    /* A_h = A + h * stride: rows of the precomputed P, or logits turned into
     * weights here, [p+1] per head */
    const float *A;
    size_t stride;
    if (m->P && !m->recompute) {
        A = model_static_attention(m, il, 0) + (size_t)p * L;
        stride = (size_t)L * L;
    } else {
        for (int h = 0; h < H; h++) {
            float *S = s->S + (size_t)h * L;
            attn_logits(m, c, s, il, h, sr, 0, 1, p + 1, S, L);
            ops_softmax(S, p + 1);
        }
        A = s->S;
        stride = (size_t)L;
    }
    if (c->vh) ops_wsum_heads_f16(p + 1, d, dh, A, stride, c->vh + voff, d, y);
    else ops_wsum_heads(p + 1, d, dh, A, stride, c->v + voff, d, y);
}

static void relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* Task: one row (all heads) of the rows attended one at a time: either the
 * decoding sequence sr[dec[task]] (all_rows 0), or row `task` of the step,
 * found in sr by its offset (all_rows 1: every row). Tasks write disjoint rows of s->att
 * and call no BLAS (see attention()). */
typedef struct {
    const model *m;
    const model_cache *c;
    const scratch *s;
    int il, n_seq, all_rows;
    const seq_rows *sr;
    const int *dec;
} rows_ctx;

static void row_task(void *ctx, int task, int thread)
{
    const rows_ctx *a = ctx;
    scratch ts = scratch_thread(a->s, thread);
    if (!a->all_rows) {
        attend_one(a->m, a->c, &ts, a->il, &a->sr[a->dec[task]]);
        return;
    }
    int lo = 0, hi = a->n_seq - 1; /* the sequence holding row `task`: sr is ordered by r0 */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (a->sr[mid].r0 <= task) lo = mid;
        else hi = mid - 1;
    }
    const seq_rows *q = &a->sr[lo];
    seq_rows one = {q->slot, task, q->p0 + (task - q->r0), 1};
    attend_one(a->m, a->c, &ts, a->il, &one);
}

/* The attention sublayer: s->xn [T, d] (normalized) -> s->att [T, d] before
 * the output projection. Writes V (and K) of the new rows into the cache. */
static void attention(const model *m, model_cache *c, const scratch *s, int il, int n_seq,
                      const seq_rows *sr, int T)
{
    const arch_hparams *hp = &m->hp;
    const arch_variant var = hp->variant;
    const int d = hp->n_embd, dh = d / hp->n_head, Lp = cache_lp(hp);

    /* projections over all T rows at once */
    /* W [d, d], b [d] unless noted; y [T, d] = xn [T, d] W^T + b */
    ops_linear(T, s->xn, d, &lt(m, il, T_ATTN_V_W)->w, lt(m, il, T_ATTN_V_B)->f, s->v, d, s->lin, s->lin_flags);
    if (arch_has_vanilla(var)) {
        ops_linear(T, s->xn, d, &lt(m, il, T_ATTN_Q_W)->w, lt(m, il, T_ATTN_Q_B)->f, s->q, d, s->lin, s->lin_flags);
        ops_linear(T, s->xn, d, &lt(m, il, T_ATTN_K_W)->w, lt(m, il, T_ATTN_K_B)->f, s->k, d, s->lin, s->lin_flags);
    }
    if (arch_has_dense(var)) {
        ops_linear(T, s->xn, d, &lt(m, il, T_DENSE1_W)->w, lt(m, il, T_DENSE1_B)->f, s->hd, d, s->lin, s->lin_flags);
        relu(s->hd, (size_t)T * d);
    }
    if (arch_has_factorized_dense(var)) {
        ops_linear(T, s->xn, d, &lt(m, il, T_DENSE_A1_W)->w, lt(m, il, T_DENSE_A1_B)->f, s->hd, d, s->lin, s->lin_flags);
        ops_linear(T, s->xn, d, &lt(m, il, T_DENSE_B1_W)->w, lt(m, il, T_DENSE_B1_B)->f, s->hb, d, s->lin, s->lin_flags);
        relu(s->hd, (size_t)T * d);
        relu(s->hb, (size_t)T * d);
    }
    /* append to the caches at positions p0..p0+n-1 */
    for (int q = 0; q < n_seq; q++) {
        size_t off = cache_v_off(c, sr[q].slot, il) + (size_t)sr[q].p0 * d, nv = (size_t)sr[q].n * d;
        if (c->vh) kern_f16()(s->v + (size_t)sr[q].r0 * d, c->vh + off, (int64_t)nv);
        else memcpy(c->v + off, s->v + (size_t)sr[q].r0 * d, sizeof(float) * nv);
        if (c->k) { /* per head, blocks of KERN_KB positions: KB_h[p / 16][feature][p % 16] */
            float *KB = cache_k_at(c, sr[q].slot, il);
            for (int i = 0; i < sr[q].n; i++) {
                const int p = sr[q].p0 + i;
                const float *kr = s->k + (size_t)(sr[q].r0 + i) * d;
                for (int h = 0; h < hp->n_head; h++) {
                    float *blk = KB + (size_t)h * dh * Lp + (size_t)(p / KERN_KB) * dh * KERN_KB + p % KERN_KB;
                    for (int f = 0; f < dh; f++) blk[(size_t)f * KERN_KB] = kr[h * dh + f];
                }
            }
        }
    }
    /* Batch-invariant caches attend every row on its own (position p sees
     * positions 0..p, exactly as when decoding it), spread over the ops
     * pool (or, in a part of a sliced step, on the part's thread): a
     * sequence's results then do not depend on how its prompt was
     * cut into chunks or on what shares the step. Otherwise decoding rows
     * are spread over the pool and prefill chunks run here, one GEMM per
     * head, with OpenBLAS's threads: calling a threaded BLAS from pool
     * tasks would make the two thread pools wait on each other. */
    rows_ctx rc = {m, c, s, il, n_seq, (s->lin_flags & OPS_ROWWISE) || c->vh, sr, s->dec};
    if (rc.all_rows) {
        ops_parallel_for(T, row_task, &rc);
        return;
    }
    int n_dec = 0;
    for (int q = 0; q < n_seq; q++) {
        if (sr[q].n == 1) s->dec[n_dec++] = q;
        else
            for (int h = 0; h < hp->n_head; h++) attend_head(m, c, s, il, h, &sr[q]);
    }
    ops_parallel_for(n_dec, row_task, &rc);
}

static void add_inplace(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* The network on T rows: tokens[T] at the positions given by sr; leaves the
 * final-normalized hidden states in s->xn [T, d] and the new V/K in the
 * cache (lengths are not updated here). */
static void forward(const model *m, model_cache *c, const scratch *s, int n_seq, const seq_rows *sr,
                    const int32_t *const *tokens, int T)
{
    const arch_hparams *hp = &m->hp;
    const int d = hp->n_embd, F = hp->n_ff, glu = hp->ffn == ARCH_FFN_GEGLU, Fu = F * arch_ffn_up_mult(hp->ffn);
    const float eps = hp->ln_eps;
    const mtensor *tok_embd = &m->glob[T_TOKEN_EMBD]; /* [V, d] */
    const float *pos_embd = m->glob[T_POS_EMBD].f;     /* [L, d] */

    /* x = token_embd[t] + position_embd[p] */
    for (int q = 0; q < n_seq; q++)
        for (int i = 0; i < sr[q].n; i++) {
            float *x = s->x + (size_t)(sr[q].r0 + i) * d;
            ops_dequant_rows(&tok_embd->w, tokens[q][i], 1, x);
            add_inplace(x, pos_embd + (size_t)(sr[q].p0 + i) * d, d);
        }

    for (int il = 0; il < hp->n_layer; il++) {
        /* h = x + attn_output(Attn(attn_norm(x))) */
        /* attn_norm w, b [d]; attn_output W [d, d], b [d] */
        ops_layernorm(T, d, s->x, d, lt(m, il, T_ATTN_NORM_W)->f, lt(m, il, T_ATTN_NORM_B)->f, eps, s->xn, d);
        attention(m, c, s, il, n_seq, sr, T);
        ops_linear(T, s->att, d, &lt(m, il, T_ATTN_O_W)->w, lt(m, il, T_ATTN_O_B)->f, s->tmp, d, s->lin, s->lin_flags);
        add_inplace(s->x, s->tmp, (size_t)T * d);
        /* x = h + ffn_down(act(ffn_up(ffn_norm(h)))) */
        /* ffn_norm w, b [d]; ffn_up W [Fu, d], b [Fu] (Fu = F, geglu 2F);
         * ffn_down W [d, F], b [d]; s->ff [T, Fu] */
        ops_layernorm(T, d, s->x, d, lt(m, il, T_FFN_NORM_W)->f, lt(m, il, T_FFN_NORM_B)->f, eps, s->xn, d);
        /* gelu is fused into the product; geglu's gate needs both halves */
        ops_linear(T, s->xn, d, &lt(m, il, T_FFN_UP_W)->w, lt(m, il, T_FFN_UP_B)->f, s->ff, Fu, s->lin,
                   glu ? s->lin_flags : s->lin_flags | OPS_GELU);
        if (glu) ops_geglu(T, F, s->ff, Fu);
        ops_linear(T, s->ff, Fu, &lt(m, il, T_FFN_DOWN_W)->w, lt(m, il, T_FFN_DOWN_B)->f, s->tmp, d, s->lin,
                   s->lin_flags);
        add_inplace(s->x, s->tmp, (size_t)T * d);
    }
    ops_layernorm(T, d, s->x, d, m->glob[T_OUTPUT_NORM_W].f, m->glob[T_OUTPUT_NORM_B].f, eps, s->xn, d);
}

/* Logits rows a step gives sequence sq: none when it is scored (tq has
 * targets), all its rows with logits_all, else its last. */
static int seq_out_rows(const model_seq *sq, const model_target *tq)
{
    return tq && tq->targets ? 0 : sq->logits_all ? sq->n_tokens : 1;
}

/* Check a step's arguments against the cache; fills sr (rows numbered
 * through the step) and *n_out, the logits rows. Nothing is modified
 * besides sr (and c->mark, restored). */
static int check_step(const model *m, model_cache *c, int n_seq, const model_seq *seqs, const model_target *tg,
                      seq_rows *sr, int *n_out)
{
    const int L = m->hp.n_ctx, V = m->hp.n_vocab;
    int64_t T = 0, nout = 0;
    int rc = 0;
    for (int q = 0; q < n_seq && rc == 0; q++) {
        const model_seq *sq = &seqs[q];
        if (sq->slot < 0 || sq->slot >= c->n_slots || c->mark[sq->slot] || sq->n_tokens < 1 || !sq->tokens ||
            sq->n_tokens > L - c->len[sq->slot]) {
            rc = MODEL_EINVAL;
            break;
        }
        for (int i = 0; i < sq->n_tokens; i++)
            if (sq->tokens[i] < 0 || sq->tokens[i] >= V) rc = MODEL_EINVAL;
        const model_target *t = tg && tg[q].targets ? &tg[q] : NULL;
        if (t) {
            if (!t->logprob) rc = MODEL_EINVAL;
            for (int i = 0; i < sq->n_tokens; i++)
                if (t->targets[i] < 0 || t->targets[i] >= V) rc = MODEL_EINVAL;
        }
        c->mark[sq->slot] = 1;
        sr[q] = (seq_rows){sq->slot, (int)T, c->len[sq->slot], sq->n_tokens};
        T += sq->n_tokens;
        nout += seq_out_rows(sq, t);
    }
    for (int q = 0; q < n_seq; q++)
        if (seqs[q].slot >= 0 && seqs[q].slot < c->n_slots) c->mark[seqs[q].slot] = 0;
    if (rc == 0 && T > (1 << 24)) rc = MODEL_EINVAL; /* keeps T * d within int64 and BLAS ints */
    *n_out = (int)nout;
    return rc;
}

/* Log-probabilities of the targets for n rows of final hidden states xn
 * [n, d], SCORE_ROWS at a time through lg [SCORE_ROWS, V], so a long
 * scored sequence never materializes its whole [n, V] logits. */
static void score_rows(const model *m, const scratch *s, const float *xn, int n, const int32_t *targets,
                       float *logprob, uint8_t *greedy, float *lg)
{
    const int d = m->hp.n_embd, V = m->hp.n_vocab;
    for (int r0 = 0; r0 < n; r0 += SCORE_ROWS) {
        int nr = n - r0 < SCORE_ROWS ? n - r0 : SCORE_ROWS;
        ops_linear(nr, xn + (size_t)r0 * d, d, &m->glob[T_TOKEN_EMBD].w, NULL, lg, V, s->lin, s->lin_flags);
        for (int i = 0; i < nr; i++) {
            const float *row = lg + (size_t)i * V;
            int am = 0;
            float mx, z = ops_log_softmax_z(row, V, &mx, greedy ? &am : NULL);
            logprob[r0 + i] = ops_log_prob(row[targets[r0 + i]], mx, z);
            if (greedy) greedy[r0 + i] = am == targets[r0 + i];
        }
    }
}

int model_step(model *m, model_cache *c, int n_seq, const model_seq *seqs, float *logits)
{
    return model_step_scored(m, c, n_seq, seqs, NULL, logits);
}

/* ---- sliced steps ----
 * A step's sequences can be cut into parts of whole sequences, each run
 * through the whole network and its outputs by one thread of the pool
 * (ops_parallel_for over the parts; the regions inside a part run
 * serially on its thread). Instead of a region per layer and sublayer
 * (about 5 per layer, each ending in a wait for the slowest thread), a
 * sliced step has one, and the element-wise work between the linear
 * layers (norms, residual adds, cache appends) runs on every core. Each
 * part passes over all weights for its own rows (converting them for
 * fewer rows), and still wins from 2 sequences up: decoding 2 / 4 / 8 /
 * 16 / 64 sequences on 2 threads went from 9.0k / 12.0k / 13.0k / 13.3k /
 * 12.5k to 9.8k / 14.2k / 17.0k / 16.4k / 13.9k tokens/s (shipped size,
 * AVX-512).
 *
 * Only batch-invariant caches are sliced: there no BLAS call is made inside
 * the step (a threaded BLAS must not run inside pool tasks), and every
 * row's result is the same bits whichever rows share its pass (kern.h), so
 * slicing changes no bit of any output. A sequence is never split: its
 * rows attend to the values its earlier rows append in the same layer. */

/* Relative cost of a sequence's rows in a step: every row pays the linear
 * layers (multiply-adds per row); a row at position p reads p + 1 cached
 * value rows (and key rows for vanilla parts) per layer, counted at 4
 * multiply-adds per byte (a core streams ~25 GB/s against ~100 G
 * multiply-adds/s). */
static double seq_cost(const model *m, const model_cache *c, const seq_rows *q)
{
    const arch_hparams *hp = &m->hp;
    const double d = hp->n_embd, lin = hp->n_layer * (4 * d * d + (1 + arch_ffn_up_mult(hp->ffn)) * d * hp->n_ff) +
                       d * hp->n_vocab;
    const double per_pos = 4.0 * hp->n_layer * d * ((c->vh ? 2 : 4) + (c->k ? 4 : 0)); /* keys: f32 */
    const double n = q->n, seen = n * q->p0 + n * (n + 1) / 2; /* positions read by its rows */
    return n * lin + per_pos * seen;
}

/* Cut sequences [0, n_seq) into np parts [cut[i], cut[i + 1]), part i
 * costing about the share w[i] (the w sum to 1) of the whole, given pre[q]
 * the cost of the sequences before q; 1 when no part costs more than
 * SLICE_MAX_SKEW times its share. */
static int cut_parts(const double *pre, int n_seq, int np, const double *w, int *cut)
{
    const double total = pre[n_seq];
    double before = 0; /* the shares of the parts before part k */
    int ok = 1;
    cut[0] = 0;
    for (int k = 1; k < np; k++) {
        /* the boundary nearest the target, leaving at least one sequence
         * to this part and to each one after it */
        const double at = (before += w[k - 1]) * total;
        int q = cut[k - 1] + 1;
        while (q < n_seq - (np - k) && pre[q + 1] <= at) q++;
        if (q < n_seq - (np - k) && at - pre[q] > pre[q + 1] - at) q++;
        cut[k] = q;
    }
    cut[np] = n_seq;
    for (int k = 0; k < np; k++) ok &= pre[cut[k + 1]] - pre[cut[k]] <= SLICE_MAX_SKEW * w[k] * total;
    return ok;
}

/* The shares of np parts, part t for pool thread t: with one part per
 * thread (np == the thread budget), in proportion to the threads' measured
 * speeds (each kept within SLICE_SPEED_RANGE of their mean, so one slow
 * measurement cannot starve a thread), even until every one of them is
 * measured; with more parts than threads, even (the threads balance
 * themselves by claiming parts as they come free). */
static void part_shares(const model_cache *c, int np, double *w)
{
    if (np != ops_n_threads()) {
        for (int i = 0; i < np; i++) w[i] = 1.0 / np;
        return;
    }
    double sum = 0;
    for (int t = 0; t < np; t++) sum += c->speed[t];
    for (int t = 0; t < np; t++) {
        if (c->speed[t] <= 0) { /* not measured: even shares */
            for (int i = 0; i < np; i++) w[i] = 1.0 / np;
            return;
        }
        double r = c->speed[t] / (sum / np);
        w[t] = r < 1 / SLICE_SPEED_RANGE ? 1 / SLICE_SPEED_RANGE : r > SLICE_SPEED_RANGE ? SLICE_SPEED_RANGE : r;
    }
    sum = 0;
    for (int t = 0; t < np; t++) sum += w[t];
    for (int t = 0; t < np; t++) w[t] /= sum;
}

/* The parts of a step: the most that cut_parts can balance, up to
 * parts_per_thread per thread while each part keeps SLICE_MIN_SEQS
 * sequences and one per SLICE_BYTES_PER_SEQ bytes of packed weights (and
 * never fewer than one part per thread); returns their number,
 * 1 meaning the step runs unsliced (then cut = {0, n_seq}).
 * Why more parts than threads: in the server the event loop and the
 * clients share the cores with the pool, and a thread preempted in the
 * middle of a half-step part held the step up while the other waited;
 * with small parts the free thread takes the rest. bench_server, 32
 * clients, 9 interleaved pairs of rounds: one part per thread 6,371-8,664
 * tokens/s, four 6,976-10,083, ahead in every pair (+15% on average).
 * Fewer than 4 sequences per part costs the kernels' multi-row speed, and
 * models beyond the caches need more (SLICE_BYTES_PER_SEQ).
 * The count is a multiple of the threads: 32 sequences of the shipped
 * model made 5 parts of 6-7, so one thread ran a third part while the other
 * waited; in 4 parts of 8, bench_server at 32 clients went from 18,633-
 * 20,346 to 19,357-22,301 tokens/s (4 interleaved pairs, ahead in each). */
static int plan_parts(const model *m, const model_cache *c, int n_seq, const seq_rows *sr, int *cut, double *cost)
{
    double w[MAX_SLICES];
    const int nt = ops_n_threads();
    size_t by_bytes = m->pass_bytes / SLICE_BYTES_PER_SEQ;
    const int min_seqs = by_bytes > SLICE_MIN_SEQS ? (by_bytes < 1024 ? (int)by_bytes : 1024) : SLICE_MIN_SEQS;
    int np = nt < 2 ? 1 : nt * c->parts_per_thread;
    if (np > n_seq / min_seqs) np = n_seq / min_seqs > nt ? n_seq / min_seqs : nt;
    np = np < MAX_SLICES ? np : MAX_SLICES;
    np = np < n_seq ? np : n_seq;
    if (np > nt) np -= np % nt; /* a multiple of the threads: see above */
    double *pre = np >= 2 && c->invariant && !c->probe ? malloc(sizeof *pre * ((size_t)n_seq + 1)) : NULL;
    if (pre) {
        pre[0] = 0;
        for (int q = 0; q < n_seq; q++) pre[q + 1] = pre[q] + seq_cost(m, c, &sr[q]);
        for (; np >= 2; np--) {
            part_shares(c, np, w);
            if (cut_parts(pre, n_seq, np, w, cut)) break;
        }
        for (int k = 0; np >= 2 && k < np; k++) cost[k] = pre[cut[k + 1]] - pre[cut[k]];
        free(pre);
    }
    if (!pre || np < 2) {
        np = 1;
        cut[0] = 0;
        cut[1] = n_seq;
    }
    return np;
}

/* One part of a step: sequences [q0, q1), rows sr[q0..q1) (renumbered
 * from 0 within the part), T rows, n_out logits rows from row out0 of the
 * step's logits; s is carved from arena `arena`. */
typedef struct {
    model *m;
    model_cache *c;
    const model_seq *seqs;
    const model_target *tg;
    const int32_t *const *toks;
    const seq_rows *sr;
    float *logits;
    int q0, q1, T, n_out, out0;
    scratch s;
} step_part;

/* Extra floats of a part's scratch: its gathered output rows [n_out, d],
 * then the scoring logits [SCORE_ROWS, V] when a sequence is scored. */
static size_t part_extra(const model *m, int n_out, int n_scored)
{
    return round16((size_t)n_out * m->hp.n_embd) + (n_scored ? (size_t)SCORE_ROWS * m->hp.n_vocab : 0);
}

/* A part through the network, then its outputs: logits rows in sequence
 * order, scored sequences into their targets. */
static void run_part(const step_part *p)
{
    const model *m = p->m;
    const int d = m->hp.n_embd, V = m->hp.n_vocab, n_seq = p->q1 - p->q0;
    const seq_rows *sr = p->sr + p->q0;
    const model_seq *seqs = p->seqs + p->q0;
    const model_target *tg = p->tg ? p->tg + p->q0 : NULL;
    forward(m, p->c, &p->s, n_seq, sr, p->toks + p->q0, p->T);

    /* logits = output rows . token_embd^T (tied), gathered in sequence order */
    float *hout = p->s.extra; /* [n_out, d] */
    int r = 0;
    for (int q = 0; q < n_seq; q++) {
        const float *xq = p->s.xn + (size_t)sr[q].r0 * d;
        if (tg && tg[q].targets) {
            score_rows(m, &p->s, xq, sr[q].n, tg[q].targets, tg[q].logprob, tg[q].greedy,
                       p->s.extra + round16((size_t)p->n_out * d));
            continue;
        }
        int first = seqs[q].logits_all ? 0 : sr[q].n - 1;
        for (int i = first; i < sr[q].n; i++, r++)
            memcpy(hout + (size_t)r * d, xq + (size_t)i * d, sizeof(float) * d);
    }
    if (p->n_out > 0)
        ops_linear(p->n_out, hout, d, &m->glob[T_TOKEN_EMBD].w, NULL, p->logits + (size_t)p->out0 * V, V,
                   p->s.lin, p->s.lin_flags);
}

/* The parts of a sliced step as one parallel region: each task claims
 * the part cut for its thread (part t for pool thread t), or any part
 * left when that one is taken (a thread can run late), and times it. */
typedef struct {
    const step_part *part;
    int np;
    atomic_int claimed[MAX_SLICES];
    int ran_by[MAX_SLICES];
    double secs[MAX_SLICES];
} step_parts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void part_task(void *ctx, int task, int thread)
{
    step_parts *sp = ctx;
    (void)task;
    int k = thread < sp->np && !atomic_exchange(&sp->claimed[thread], 1) ? thread : -1;
    for (int i = 0; k < 0 && i < sp->np; i++)
        if (!atomic_exchange(&sp->claimed[i], 1)) k = i;
    if (k < 0) return; /* cannot happen: np tasks claim np parts */
    double t0 = now_seconds();
    run_part(&sp->part[k]);
    sp->secs[k] = now_seconds() - t0;
    sp->ran_by[k] = thread;
}

/* After a sliced step: every part ran on its own thread, so the threads'
 * speeds (cost per second) are comparable; fold them into the running
 * speeds. A step where a thread took another's part says nothing. */
static void update_speeds(model_cache *c, const step_parts *sp, const double *cost)
{
    if (c->speed_fixed) return;
    for (int k = 0; k < sp->np; k++)
        if (sp->ran_by[k] != k || !(sp->secs[k] >= SLICE_SPEED_MIN_S)) return;
    for (int k = 0; k < sp->np; k++) {
        double v = cost[k] / sp->secs[k];
        c->speed[k] = c->speed[k] > 0 ? c->speed[k] + SLICE_SPEED_NEW * (v - c->speed[k]) : v;
    }
}

int model_step_scored(model *m, model_cache *c, int n_seq, const model_seq *seqs, const model_target *tg,
                      float *logits)
{
    if (!m || !c || c->m != m || n_seq < 0 || (n_seq > 0 && !seqs) || n_seq > c->n_slots) return MODEL_EINVAL;
    if (n_seq == 0) return 0;
    seq_rows *sr = malloc(sizeof *sr * (size_t)n_seq);
    const int32_t **toks = malloc(sizeof *toks * (size_t)n_seq);
    int n_out = 0, rc = MODEL_ENOMEM;
    step_part part[MAX_SLICES];
    int cut[MAX_SLICES + 1];
    double cost[MAX_SLICES];
    if (!sr || !toks) goto done;
    if ((rc = check_step(m, c, n_seq, seqs, tg, sr, &n_out)) != 0) goto done;
    if (n_out > 0 && !logits) {
        rc = MODEL_EINVAL;
        goto done;
    }
    for (int q = 0; q < n_seq; q++) toks[q] = seqs[q].tokens;

    /* the parts: their rows renumbered from 0, their scratch carved
     * (every allocation happens here, before anything is computed) */
    const int np = plan_parts(m, c, n_seq, sr, cut, cost);
    for (int k = 0, out = 0; k < np; k++) {
        step_part *p = &part[k];
        *p = (step_part){m, c, seqs, tg, toks, sr, logits, cut[k], cut[k + 1], 0, 0, out, {0}};
        int scored = 0, r0 = sr[p->q0].r0;
        for (int q = p->q0; q < p->q1; q++) {
            sr[q].r0 -= r0;
            p->T += sr[q].n;
            scored += tg && tg[q].targets;
            p->n_out += seq_out_rows(&seqs[q], tg ? &tg[q] : NULL);
        }
        out += p->n_out;
        rc = scratch_get(c, k, p->T, part_extra(m, p->n_out, scored), np > 1 ? 1 : ops_n_threads(), &p->s);
        if (rc != 0) goto done;
        if (np > 1) p->s.dec = NULL; /* shared by all parts: a sliced step attends every row on its own */
    }
    c->sliced += np > 1;
    c->last_np = np;
    memcpy(c->last_cut, cut, sizeof(int) * (size_t)(np + 1));
    if (np == 1) {
        run_part(&part[0]);
    } else {
        step_parts sp = {.part = part, .np = np};
        for (int k = 0; k < np; k++) atomic_init(&sp.claimed[k], 0), sp.ran_by[k] = -1;
        ops_parallel_for(np, part_task, &sp);
        update_speeds(c, &sp, cost);
    }
    for (int q = 0; q < n_seq; q++) c->len[sr[q].slot] += sr[q].n;
    rc = 0;
done:
    free(sr);
    free(toks);
    return rc;
}

/* ------------------------------------------------------------------ */
/* scoring                                                              */
/* ------------------------------------------------------------------ */

int model_score(model *m, int n_seq, const int32_t *const *tokens, const int32_t *const *targets,
                const int *n_tokens, float *logprob, uint8_t *greedy)
{
    if (!m || n_seq < 1 || !tokens || !targets || !n_tokens || !logprob) return MODEL_EINVAL;
    const int L = m->hp.n_ctx;
    for (int q = 0; q < n_seq; q++)
        if (n_tokens[q] < 1 || n_tokens[q] > L || !tokens[q] || !targets[q]) return MODEL_EINVAL;
    /* Groups of whole sequences with at most SCORE_MAX_ROWS rows (or one),
     * each one model_step of scored sequences from position 0 in the
     * model's own cache. Scoring is batch-invariant (measured as fast as
     * dequantize + sgemm at batch 16 on AVX-512), so its log-probabilities
     * are the very bits generation computes, whatever the windows are
     * batched with. */
    int max_group = 0;
    for (int q0 = 0; q0 < n_seq;) {
        int g = 0, rows = 0;
        while (q0 + g < n_seq && (g == 0 || rows + n_tokens[q0 + g] <= SCORE_MAX_ROWS)) rows += n_tokens[q0 + g++];
        max_group = g > max_group ? g : max_group;
        q0 += g;
    }
    model_seq *sq = malloc(sizeof *sq * (size_t)max_group);
    model_target *tg = malloc(sizeof *tg * (size_t)max_group);
    int rc = sq && tg ? 0 : MODEL_ENOMEM;
    if (!m->score_cache || m->score_cache->n_slots < max_group ||
        model_cache_values(m->score_cache) != m->cache_values) {
        model_cache_free(m->score_cache);
        m->score_cache = model_cache_create(m, max_group);
        if (!m->score_cache) rc = MODEL_ENOMEM;
    }
    model_cache *c = m->score_cache;
    size_t out = 0;
    for (int q0 = 0; rc == 0 && q0 < n_seq;) {
        int g = 0, rows = 0;
        while (q0 + g < n_seq && (g == 0 || rows + n_tokens[q0 + g] <= SCORE_MAX_ROWS)) {
            int q = q0 + g;
            model_cache_reset(c, g);
            sq[g] = (model_seq){g, n_tokens[q], tokens[q], 0};
            tg[g] = (model_target){targets[q], logprob + out + rows, greedy ? greedy + out + rows : NULL};
            rows += n_tokens[q];
            g++;
        }
        model_cache_set_batch_invariant(c, 1);
        rc = model_step_scored(m, c, g, sq, tg, NULL);
        out += (size_t)rows;
        q0 += g;
    }
    free(sq);
    free(tg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* attention probe                                                      */
/* ------------------------------------------------------------------ */

int model_attention(model *m, int layer, int head, const int32_t *tokens, int n, float *A)
{
    if (!m || !tokens || !A || layer < 0 || layer >= m->hp.n_layer || head < 0 || head >= m->hp.n_head || n < 1 ||
        n > m->hp.n_ctx)
        return MODEL_EINVAL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab) return MODEL_EINVAL;
    memset(A, 0, sizeof(float) * (size_t)n * n);
    if (n == 1) { /* one position attends to itself only (and a 1-row step would decode, unprobed) */
        A[0] = 1.0f;
        return 0;
    }
    /* f32 values: the probe reads the weights where the unsliced, batched
     * attention computes them, which an f16 cache does not use */
    model_cache *c = model_cache_create_typed(m, 1, MODEL_CACHE_F32);
    if (!c) return MODEL_ENOMEM;
    model_cache_set_batch_invariant(c, 0);
    c->probe = A;
    c->probe_layer = layer;
    c->probe_head = head;
    c->probe_ld = n;
    seq_rows sr = {0, 0, 0, n};
    scratch s;
    int rc = scratch_get(c, 0, n, 0, ops_n_threads(), &s);
    if (rc == 0) forward(m, c, &s, 1, &sr, &tokens, n);
    model_cache_free(c);
    return rc;
}
