/* train.c - the training loop (see train.h): data, AdamW, schedule,
 * evaluation, best checkpoint, resumable state. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "ckpt.h"
#include "gguf.h"
#include "quant.h"
#include "tok.h"
#include "train_dp.h"
#include "train_kern.h"

const char *train_strerror(int err)
{
    switch (err) {
    case TRAIN_OK: return "success";
    case TRAIN_EIO: return "I/O error";
    case TRAIN_EFORMAT: return "bad data or state file";
    case TRAIN_ENOMEM: return "out of memory";
    case TRAIN_EINVAL: return "invalid configuration";
    case TRAIN_ENAN: return "loss is not finite";
    default: return "unknown training error";
    }
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void train_config_default(train_config *c)
{
    memset(c, 0, sizeof *c);
    arch_hparams_default(&c->hp);
    c->name = "synthesizer";
    c->vocab = 8192;
    c->batch = 16;
    c->seq = 256;
    c->steps = 4000;
    c->lr = 1e-3f;
    c->min_lr = 1e-4f;
    c->warmup = 200;
    c->weight_decay = 0.1f;
    c->late_decay = -1;
    c->late_decay_start = 0.667f;
    c->beta1 = 0.9f;
    c->beta2 = 0.99f;
    c->adam_eps = 1e-8f;
    c->muon = 0;
    c->muon_momentum = 0.95f;
    c->clip = 1.0f;
    c->dropout = 0.1f;
    c->dropout_start = 0;
    c->word_dropout = 0;
    c->ema = 0;
    c->ema_every = 4;
    c->ema_start = 0;
    c->rstd = 0.02f;
    c->synth_lr_mult = 30.0f;
    c->r_tie = 0;
    c->eval_every = 250;
    c->eval_tokens = 0;
    c->patience = 0;
    c->ckpt_every = 500;
    c->seed = 1;
    c->max_minutes = 0;
    c->threads = 0;
    c->shards = 0;
}

#define BAD(...) return fail(err, errlen, TRAIN_EINVAL, __VA_ARGS__)

int train_config_validate(const train_config *c, char *err, size_t errlen)
{
    char e2[200];
    arch_hparams hp = c->hp;
    if (!c->tokenizer_path) {
        if (c->vocab < 257 || c->vocab > (1 << 20)) BAD("train: --vocab: %d out of range [257, 1048576]", c->vocab);
        hp.n_vocab = c->vocab;
    }
    if (hp.n_vocab < 2) hp.n_vocab = 2; /* set from the tokenizer later */
    if (arch_hparams_validate(&hp, e2, sizeof e2)) BAD("train: model size (--ctx --d-model --layers --heads --d-ff --rank --fd-a --fd-b): %s", e2);
    if (c->batch < 1 || c->batch > 65536) BAD("train: --batch: %d out of range [1, 65536]", c->batch);
    if (c->seq < 1 || c->seq > c->hp.n_ctx)
        BAD("train: --seq: %d out of range [1, %d] (must not exceed --ctx)", c->seq, c->hp.n_ctx);
    if ((int64_t)c->batch * c->seq > (1 << 22)) BAD("train: --batch x --seq: %lld tokens per step is too many",
                                                   (long long)c->batch * c->seq);
    if (c->steps < 0 || c->steps > (int64_t)1e12) BAD("train: --steps: must be in [0, 1e12]");
    if (c->steps == 0 && !(c->max_minutes > 0)) BAD("train: --steps 0 (auto) needs --max-minutes");
    if (!(c->lr > 0 && c->lr <= 1)) BAD("train: --lr: %g out of range (0, 1]", (double)c->lr);
    if (!(c->min_lr >= 0 && c->min_lr <= c->lr)) BAD("train: --min-lr: %g out of range [0, lr]", (double)c->min_lr);
    if (c->warmup < 0 || (c->steps > 0 && c->warmup > c->steps)) BAD("train: --warmup: must be in [0, steps]");
    if (!(c->weight_decay >= 0 && c->weight_decay < 1))
        BAD("train: --weight-decay: %g out of range [0, 1)", (double)c->weight_decay);
    /* each step multiplies a weight by 1 - lr x decay: keep it positive */
    if (!(c->late_decay == -1 || (c->late_decay >= 0 && (double)c->late_decay * c->lr < 1)))
        BAD("train: --late-decay: %g out of range [0, 1 / lr) = [0, %g)", (double)c->late_decay, 1.0 / c->lr);
    if (!(c->late_decay_start >= 0 && c->late_decay_start <= 1))
        BAD("train: --late-decay-start: %g out of range [0, 1]", (double)c->late_decay_start);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) BAD("train: --beta1: %g out of range [0, 1)", (double)c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) BAD("train: --beta2: %g out of range [0, 1)", (double)c->beta2);
    if (!(c->adam_eps > 0 && c->adam_eps < 1)) BAD("train: adam eps %g out of range (0, 1)", (double)c->adam_eps);
    if (!(c->muon_momentum >= 0 && c->muon_momentum < 1))
        BAD("train: --muon-momentum: %g out of range [0, 1)", (double)c->muon_momentum);
    if (!(c->clip >= 0 && isfinite(c->clip))) BAD("train: --clip: %g must be >= 0", (double)c->clip);
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("train: --dropout: %g out of range [0, 1)", (double)c->dropout);
    if (!(c->dropout_start >= 0 && c->dropout_start <= 1))
        BAD("train: --dropout-start: %g out of range [0, 1]", (double)c->dropout_start);
    if (!(c->word_dropout >= 0 && c->word_dropout < 1))
        BAD("train: --word-dropout: %g out of range [0, 1)", (double)c->word_dropout);
    if (!(c->ema >= 0 && c->ema < 1)) BAD("train: --ema: %g out of range [0, 1)", (double)c->ema);
    if (c->ema_every < 1 || c->ema_every > (int64_t)1e9) BAD("train: --ema-every: must be in [1, 1e9]");
    if (c->ema_start < 0 || c->ema_start > (int64_t)2e9) BAD("train: --ema-start: must be in [0, 2e9]");
    if (c->ema > 0 && (!c->ema_out || !*c->ema_out)) BAD("train: --ema needs --ema-out FILE (the averaged checkpoint)");
    if (c->ema > 0 && c->out_path && !strcmp(c->ema_out, c->out_path))
        BAD("train: --ema-out: '%s' is also -o; the two checkpoints need two files", c->ema_out);
    if (!(c->synth_lr_mult > 0 && c->synth_lr_mult <= 1000))
        BAD("train: --synth-lr-mult: %g out of range (0, 1000]", (double)c->synth_lr_mult);
    if (!(c->r_tie >= 0 && c->r_tie <= 1e4)) BAD("train: --r-tie: %g out of range [0, 10000]", (double)c->r_tie);
    if (c->r_tie > 0 && (!arch_has_random(c->hp.variant) || c->hp.variant == ARCH_FIXED_RANDOM))
        BAD("train: --r-tie: variant %s has no trainable R [H, L, L] (random and random+vanilla have)",
            arch_variant_name(c->hp.variant));
    if (!(c->rstd >= 0 && c->rstd < 100)) BAD("train: rstd %g out of range", (double)c->rstd);
    if (c->eval_every < 1) BAD("train: --eval-every: must be >= 1");
    if (c->eval_tokens < 0) BAD("train: --eval-tokens: must be >= 0");
    if (c->patience < 0) BAD("train: --patience: must be >= 0");
    if (c->ckpt_every < 0) BAD("train: --ckpt-every: must be >= 0");
    if (!(c->max_minutes >= 0 && c->max_minutes < 1e7)) BAD("train: --max-minutes: must be >= 0");
    if (c->stop_at < 0) BAD("train: stop_at must be >= 0");
    if (c->threads < 0 || c->threads > 256) BAD("train: --threads: %d out of range [0, 256]", c->threads);
    if (c->shards < 0 || c->shards > TRAIN_DP_MAX_SHARDS || c->shards > c->batch)
        BAD("train: --shards: %d out of range [1, %d] (and at most --batch %d)", c->shards, TRAIN_DP_MAX_SHARDS,
            c->batch);
    if (!c->train_path || !*c->train_path) BAD("train: --train: missing");
    if (!c->valid_path || !*c->valid_path) BAD("train: --valid: missing");
    if (!c->out_path || !*c->out_path) BAD("train: -o: missing");
    return 0;
}

int train_threads(const train_config *c)
{
    if (c->threads > 0) return c->threads;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    return ncpu > 0 ? (int)(ncpu < 256 ? ncpu : 256) : 1;
}

int train_shards(const train_config *c)
{
    if (c->shards > 0) return c->shards;
    return c->batch < 2 ? 1 : 2;
}

static float lr_at(const train_config *c, int64_t steps, int64_t step)
{
    if (step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    if (steps <= c->warmup) return c->lr;
    double frac = (double)(step - c->warmup) / (double)(steps - c->warmup);
    if (frac > 1) frac = 1;
    return (float)(c->min_lr + 0.5 * (c->lr - c->min_lr) * (1 + cos(3.141592653589793 * frac)));
}

void train_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float decay, int64_t t)
{
    const float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)t))), c2 = (float)(1.0 / (1.0 - pow(beta2, (double)t)));
    tk_adamw(p, g, m, v, (size_t)n, 1.0f, lr, beta1, beta2, eps, decay, c1, c2);
}

size_t train_muon_work(int rows, int cols)
{
    const size_t k = (size_t)(rows < cols ? rows : cols);
    return 2 * (size_t)rows * (size_t)cols + 2 * k * k;
}

/* X <- a X + (b A + c A^2) X with A = X X^T, on the short side: for a
 * tall X the same map is X <- a X + X (b A + c A^2) with A = X^T X. Five
 * steps take a singular value s of the unit-norm input to about p(p(..p(s)))
 * with p(s) = a s + b s^3 + c s^5, whose slope at 0 is 3.4 (small singular
 * values grow fast) and which oscillates in [0.7, 1.2] near 1. */
void train_newton_schulz(float *X, int rows, int cols, float *work)
{
    const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
    const int wide = rows <= cols, k = wide ? rows : cols;
    const size_t n = (size_t)rows * cols;
    float *Y = work, *A = work + n, *B = A + (size_t)k * k, *cur = X, *nxt = Y;
    const double norm = sqrt(tk_sumsq(X, n));
    tk_scale(X, n, (float)(1.0 / (norm + 1e-7)));
    for (int it = 0; it < 5; it++) {
        if (wide) /* A [k, k] = X X^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, cols, 1, cur, cols, cur, cols, 0, A, k);
        else /* A [k, k] = X^T X */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, rows, 1, cur, cols, cur, cols, 0, A, k);
        memcpy(B, A, (size_t)k * k * sizeof *B); /* B = b A + c A A */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, k, k, c, A, k, A, k, b, B, k);
        memcpy(nxt, cur, n * sizeof *nxt); /* nxt = a cur + B cur (wide) or cur B (tall) */
        if (wide)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, k, 1, B, k, cur, cols, a, nxt, cols);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, k, 1, cur, cols, B, k, a, nxt, cols);
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (cur != X) memcpy(X, cur, n * sizeof *X);
}

void train_muon(float *p, const float *g, float *mom, int rows, int cols, float gscale, float lr, float mu,
                float decay, float *work)
{
    const size_t n = (size_t)rows * cols;
    float *O = work;
    for (size_t i = 0; i < n; i++) { /* Nesterov: the step looks one momentum ahead */
        const float gi = g[i] * gscale;
        mom[i] = mu * mom[i] + gi;
        O[i] = gi + mu * mom[i];
    }
    train_newton_schulz(O, rows, cols, work + n);
    /* an orthogonal [rows, cols] matrix has RMS 1 / sqrt(max dim): scale to 0.2 */
    const float s = lr * 0.2f * sqrtf((float)(rows > cols ? rows : cols)), wd = lr * decay;
    for (size_t i = 0; i < n; i++) p[i] -= s * O[i] + wd * p[i];
}

float train_lr(const train_config *c, int64_t step) { return lr_at(c, c->steps, step); }

/* Whether step (0-based) has reached the fraction frac of a schedule of
 * steps steps. A fraction of the total, like the lr's position, so --steps
 * auto moves the switch point with the budget; steps 0 (--steps auto not
 * calibrated yet) is still early. Rounded: 0.4f x 100 is 40.0000006. */
static int schedule_reached(int64_t steps, int64_t step, float frac)
{
    return steps > 0 && step >= llround((double)frac * (double)steps);
}

/* late dropout: none before dropout_start */
static float dropout_at(const train_config *c, int64_t steps, int64_t step)
{
    if (c->dropout_start > 0 && !schedule_reached(steps, step, c->dropout_start)) return 0.0f;
    return c->dropout;
}

float train_dropout(const train_config *c, int64_t step) { return dropout_at(c, c->steps, step); }

/* late weight decay: late_decay (if set) from late_decay_start on */
static float decay_at(const train_config *c, int64_t steps, int64_t step)
{
    if (c->late_decay >= 0 && schedule_reached(steps, step, c->late_decay_start)) return c->late_decay;
    return c->weight_decay;
}

float train_weight_decay(const train_config *c, int64_t step) { return decay_at(c, c->steps, step); }

/* ---- files and tokens ---- */

static int read_file(const char *flag, const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, TRAIN_EIO, "train: %s: cannot open '%s': %s", flag, path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb) { free(b); b = NULL; }
        else b = nb;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!b) return fail(err, errlen, TRAIN_ENOMEM, "train: %s: out of memory reading '%s'", flag, path);
    if (rerr) {
        free(b);
        return fail(err, errlen, TRAIN_EIO, "train: %s: read error on '%s'", flag, path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

typedef struct {
    char **vocab, **merges;
    int n_vocab, n_merges, eos;
    tok_t *tok;
} tokset;

static void free_strs(char **s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

static void tokset_free(tokset *t)
{
    tok_free(t->tok);
    free_strs(t->vocab, t->n_vocab);
    free_strs(t->merges, t->n_merges);
    memset(t, 0, sizeof *t);
}

static char **copy_strs(const char *const *s, uint64_t n)
{
    char **o = calloc(n ? n : 1, sizeof *o);
    if (!o) return NULL;
    for (uint64_t i = 0; i < n; i++)
        if (!(o[i] = strdup(s[i]))) {
            free_strs(o, (int)i);
            return NULL;
        }
    return o;
}

static int tokset_load(tokset *t, const char *path, char *err, size_t errlen)
{
    gguf_file *f = NULL;
    char e2[256];
    int rc = gguf_open(path, &f, e2, sizeof e2);
    if (rc) return fail(err, errlen, TRAIN_EFORMAT, "train: --tokenizer: %s", e2);
    const char *const *vs = NULL, *const *ms = NULL;
    uint64_t nv = 0, nm = 0;
    uint32_t eos = 0;
    rc = gguf_get_arr_str(f, "tokenizer.ggml.tokens", &vs, NULL, &nv);
    if (rc || nv < 2 || nv > (1 << 20)) {
        gguf_close(f);
        return fail(err, errlen, TRAIN_EFORMAT, "train: --tokenizer: '%s' has no valid tokenizer.ggml.tokens", path);
    }
    if (gguf_get_arr_str(f, "tokenizer.ggml.merges", &ms, NULL, &nm)) nm = 0;
    if (nm > (1 << 20)) nm = 0;
    t->eos = gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos) == 0 && eos < nv ? (int)eos : -1;
    t->vocab = copy_strs(vs, nv);
    t->merges = copy_strs(ms, nm);
    gguf_close(f);
    if (!t->vocab || !t->merges) {
        tokset_free(t);
        return fail(err, errlen, TRAIN_ENOMEM, "train: --tokenizer: out of memory");
    }
    t->n_vocab = (int)nv;
    t->n_merges = (int)nm;
    rc = tok_create((const char *const *)t->vocab, t->n_vocab, (const char *const *)t->merges, t->n_merges, t->eos,
                    &t->tok, e2, sizeof e2);
    if (rc) return fail(err, errlen, TRAIN_EFORMAT, "train: --tokenizer: %s", e2);
    return 0;
}

static int tokset_learn(tokset *t, const char *text, size_t len, int n_vocab, char *err, size_t errlen)
{
    char e2[256];
    int rc = tok_learn(text, len, n_vocab, &t->vocab, &t->n_vocab, &t->merges, &t->n_merges, &t->eos);
    if (rc) return fail(err, errlen, rc == TOK_ENOMEM ? TRAIN_ENOMEM : TRAIN_EFORMAT, "train: tok_learn: %s",
                        tok_strerror(rc));
    rc = tok_create((const char *const *)t->vocab, t->n_vocab, (const char *const *)t->merges, t->n_merges, t->eos,
                    &t->tok, e2, sizeof e2);
    if (rc) return fail(err, errlen, TRAIN_EFORMAT, "train: learned tokenizer: %s", e2);
    return 0;
}

static uint64_t tok_hash(const tokset *t)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < t->n_vocab; i++)
        for (const char *p = t->vocab[i];; p++) {
            h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
            if (!*p) break;
        }
    for (int i = 0; i < t->n_merges; i++)
        for (const char *p = t->merges[i];; p++) {
            h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
            if (!*p) break;
        }
    return (h ^ (uint64_t)(uint32_t)t->eos) * 0x100000001b3ull;
}

/* ---- training state file ----
 * Little-endian, host layout:
 *   char magic[8] "SYNTRST\0", u32 version, u32 header_bytes,
 *   i32 hparams[11] (vocab ctx embd layer head ff rank a b variant, eps bits),
 *   u64 n_params, u64 tokenizer_hash, u64 data_hash, i64 step, i64 tokens_seen, i64 total_steps, u64 data_rng[4], u64 drop_rng[4],
 *   f64 best_valid, i32 bad_evals, i32 shards, f64 elapsed_s,
 *   f32 params[n], f32 m[n], f32 v[n],
 *   i32 has_ema, f64 best_valid_ema, f32 ema[n] (only if has_ema),
 *   u64 checksum (FNV-1a of everything before).
 */
#define STATE_MAGIC "SYNTRST"
#define STATE_VERSION 3u /* 3: the weight average; 2: shards (train_dp.h); 1 had one network and a padding word */

typedef struct {
    uint64_t tok_hash;      /* FNV-1a of the tokenizer (vocab, merges, eos) */
    uint64_t data_hash;     /* FNV-1a of the train and valid token streams */
    int64_t step, tokens_seen;
    int64_t total;          /* schedule length (resolved when --steps is auto) */
    arch_rng data_rng, drop_rng;
    double best_valid;
    double best_valid_ema;  /* INFINITY without --ema */
    int32_t bad_evals;
    int32_t shards;         /* the split of every batch: the run's result depends on it */
    double elapsed_s;
} train_state;

typedef struct {
    uint64_t h;
} fnv;

static void fnv_add(fnv *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = f->h;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    f->h = h;
}

static int wr(FILE *fp, fnv *f, const void *p, size_t n)
{
    fnv_add(f, p, n);
    return fwrite(p, 1, n, fp) == n ? 0 : -1;
}

static void hp_pack(const arch_hparams *hp, int32_t o[11])
{
    o[0] = hp->n_vocab; o[1] = hp->n_ctx; o[2] = hp->n_embd; o[3] = hp->n_layer; o[4] = hp->n_head;
    /* o[9]: the variant in the low 16 bits, the FFN activation above (gelu is
     * 0, so state files from before GEGLU still compare equal). */
    o[5] = hp->n_ff; o[6] = hp->fr_rank; o[7] = hp->fd_a; o[8] = hp->fd_b;
    o[9] = (int32_t)hp->variant | (int32_t)hp->ffn << 16;
    memcpy(&o[10], &hp->ln_eps, 4);
}

/* ema: the weight average, NULL without --ema */
static int state_save(const char *path, const arch_hparams *hp, const train_state *s, const float *params,
                      const float *m, const float *v, const float *ema, int64_t n, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return fail(err, errlen, TRAIN_EINVAL, "train: --ckpt: path too long");
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return fail(err, errlen, TRAIN_EIO, "train: --ckpt: cannot write '%s': %s", tmp, strerror(errno));
    fnv f = {0xcbf29ce484222325ull};
    char magic[8] = STATE_MAGIC;
    uint32_t ver = STATE_VERSION, hdr = 8 + 4 + 4 + 44 + 8 + 8 + 8 + 8 + 8 + 8 + 32 + 32 + 8 + 4 + 4 + 8;
    int32_t hpp[11], bad = s->bad_evals, shards = s->shards;
    hp_pack(hp, hpp);
    uint64_t np = (uint64_t)n;
    int rc = 0;
    rc |= wr(fp, &f, magic, 8);
    rc |= wr(fp, &f, &ver, 4);
    rc |= wr(fp, &f, &hdr, 4);
    rc |= wr(fp, &f, hpp, sizeof hpp);
    rc |= wr(fp, &f, &np, 8);
    rc |= wr(fp, &f, &s->tok_hash, 8);
    rc |= wr(fp, &f, &s->data_hash, 8);
    rc |= wr(fp, &f, &s->step, 8);
    rc |= wr(fp, &f, &s->tokens_seen, 8);
    rc |= wr(fp, &f, &s->total, 8);
    rc |= wr(fp, &f, s->data_rng.s, 32);
    rc |= wr(fp, &f, s->drop_rng.s, 32);
    rc |= wr(fp, &f, &s->best_valid, 8);
    rc |= wr(fp, &f, &bad, 4);
    rc |= wr(fp, &f, &shards, 4);
    rc |= wr(fp, &f, &s->elapsed_s, 8);
    rc |= wr(fp, &f, params, (size_t)n * 4);
    rc |= wr(fp, &f, m, (size_t)n * 4);
    rc |= wr(fp, &f, v, (size_t)n * 4);
    int32_t has_ema = ema != NULL;
    rc |= wr(fp, &f, &has_ema, 4);
    rc |= wr(fp, &f, &s->best_valid_ema, 8);
    if (ema) rc |= wr(fp, &f, ema, (size_t)n * 4);
    uint64_t sum = f.h;
    rc |= fwrite(&sum, 1, 8, fp) == 8 ? 0 : -1;
    if (fflush(fp)) rc = -1;
    if (fclose(fp)) rc = -1;
    if (rc || rename(tmp, path)) {
        remove(tmp);
        return fail(err, errlen, TRAIN_EIO, "train: --ckpt: writing '%s' failed", path);
    }
    return 0;
}

static int rd(FILE *fp, fnv *f, void *p, size_t n)
{
    if (fread(p, 1, n, fp) != n) return -1;
    fnv_add(f, p, n);
    return 0;
}

/* ema: where the weight average goes, NULL without --ema; a state saved
 * with the average resumes only with it and the other way round (version 2
 * files have none) */
static int state_load(const char *path, const arch_hparams *hp, train_state *s, float *params, float *m, float *v,
                      float *ema, int64_t n, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail(err, errlen, TRAIN_EIO, "train: --resume: cannot open '%s': %s", path, strerror(errno));
    fnv f = {0xcbf29ce484222325ull};
    char magic[8];
    uint32_t ver, hdr;
    int32_t hpp[11], want[11], bad, shards;
    uint64_t np, sum;
    int rc = 0;
    const char *why = "truncated file";
    if (rd(fp, &f, magic, 8) || memcmp(magic, STATE_MAGIC, 8)) { why = "not a training state file (magic)"; goto bad; }
    if (rd(fp, &f, &ver, 4)) goto bad;
    if (ver != STATE_VERSION && ver != 2) {
        why = ver == 1 ? "version 1, written before data-parallel shards: not resumable by this trainer"
                       : "unsupported version";
        goto bad;
    }
    if (rd(fp, &f, &hdr, 4) || hdr != 196) { why = "bad header size"; goto bad; }
    if (rd(fp, &f, hpp, sizeof hpp)) goto bad;
    hp_pack(hp, want);
    if (memcmp(hpp, want, sizeof hpp)) { why = "model hyperparameters differ from the flags/tokenizer"; goto bad; }
    if (rd(fp, &f, &np, 8) || np != (uint64_t)n) { why = "parameter count differs"; goto bad; }
    uint64_t th;
    if (rd(fp, &f, &th, 8)) goto bad;
    if (th != s->tok_hash) { why = "the tokenizer differs from the one of the saved run"; goto bad; }
    if (rd(fp, &f, &th, 8)) goto bad;
    if (th != s->data_hash) { why = "the --train/--valid data differ from the saved run's"; goto bad; }
    rc |= rd(fp, &f, &s->step, 8);
    rc |= rd(fp, &f, &s->tokens_seen, 8);
    rc |= rd(fp, &f, &s->total, 8);
    rc |= rd(fp, &f, s->data_rng.s, 32);
    rc |= rd(fp, &f, s->drop_rng.s, 32);
    rc |= rd(fp, &f, &s->best_valid, 8);
    rc |= rd(fp, &f, &bad, 4);
    rc |= rd(fp, &f, &shards, 4);
    rc |= rd(fp, &f, &s->elapsed_s, 8);
    if (rc) goto bad;
    if (s->step < 0 || s->total < 0 || bad < 0 || !(s->elapsed_s >= 0)) { why = "bad counters"; goto bad; }
    if (shards != s->shards) {
        fclose(fp);
        return fail(err, errlen, TRAIN_EINVAL, "train: --resume: '%s' was trained with --shards %d, not %d", path,
                    shards, s->shards);
    }
    s->bad_evals = bad;
    if (rd(fp, &f, params, (size_t)n * 4) || rd(fp, &f, m, (size_t)n * 4) || rd(fp, &f, v, (size_t)n * 4)) goto bad;
    int32_t has_ema = 0;
    s->best_valid_ema = INFINITY;
    if (ver >= 3 && (rd(fp, &f, &has_ema, 4) || rd(fp, &f, &s->best_valid_ema, 8))) goto bad;
    if (has_ema != 0 && has_ema != 1) { why = "bad weight-average flag"; goto bad; }
    if (has_ema != (ema != NULL)) {
        fclose(fp);
        return fail(err, errlen, TRAIN_EINVAL, "train: --resume: '%s' was trained %s --ema; resume %s it", path,
                    has_ema ? "with" : "without", has_ema ? "with" : "without");
    }
    if (ema && rd(fp, &f, ema, (size_t)n * 4)) goto bad;
    if (fread(&sum, 1, 8, fp) != 8) goto bad;
    if (sum != f.h) { why = "checksum mismatch"; goto bad; }
    if (fgetc(fp) != EOF) { why = "trailing bytes"; goto bad; }
    fclose(fp);
    return 0;
bad:
    fclose(fp);
    return fail(err, errlen, TRAIN_EFORMAT, "train: --resume: '%s': %s", path, why);
}

/* ---- the run ---- */

typedef struct {
    int64_t off;           /* into the parameter buffer */
    int rows, cols, lane;
} muon_mat;

typedef struct {
    const train_config *c;
    arch_hparams hp;
    tokset tok;
    int32_t *train_ids, *valid_ids;
    size_t n_train, n_valid;
    train_dp *dp;
    train_net_f *net;      /* shard 0 of dp: parameters, reduced gradients */
    float *m, *v;
    float *ema, *held;     /* --ema: the weight average; the parameters while it is evaluated */
    int32_t *bin, *btg;
    int *decay;            /* per tensor: weight decay applies (and Muon, with --optimizer muon) */
    muon_mat *mm;          /* --optimizer muon: the matrices it updates, */
    int n_mm, muon_lanes;  /* each assigned to one of muon_lanes lanes */
    size_t muon_work_n;    /* train_muon's scratch for the largest matrix, */
    float *muon_work;      /* one per lane */
    train_state st;
    FILE *log;
    char state_path[4096];
} run_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int tokenize(run_ctx *r, const char *flag, const char *text, size_t len, int32_t **ids, size_t *n,
                    char *err, size_t errlen)
{
    int rc = tok_encode(r->tok.tok, text, len, ids, n);
    if (rc) return fail(err, errlen, rc == TOK_ENOMEM ? TRAIN_ENOMEM : TRAIN_EFORMAT, "train: %s: tokenizing: %s",
                        flag, tok_strerror(rc));
    if (*n < (size_t)r->c->seq + 1)
        return fail(err, errlen, TRAIN_EINVAL, "train: %s: only %zu tokens, need at least --seq + 1 = %d", flag, *n,
                    r->c->seq + 1);
    return 0;
}

/* Mean loss over non-overlapping windows of T tokens of the valid stream. */
static double evaluate(run_ctx *r)
{
    const int B = r->c->batch, T = r->c->seq;
    size_t nwin = (r->n_valid - 1) / (size_t)T;
    if (r->c->eval_tokens > 0 && (size_t)(r->c->eval_tokens / T) < nwin) nwin = (size_t)(r->c->eval_tokens / T);
    if (nwin < 1) nwin = 1;
    double sum = 0;
    size_t w = 0;
    while (w < nwin) {
        int nb = (int)(nwin - w < (size_t)B ? nwin - w : (size_t)B);
        for (int b = 0; b < nb; b++) {
            memcpy(r->bin + (size_t)b * T, r->valid_ids + (w + b) * T, (size_t)T * 4);
            memcpy(r->btg + (size_t)b * T, r->valid_ids + (w + b) * T + 1, (size_t)T * 4);
        }
        sum += train_dp_loss(r->dp, r->bin, r->btg, nb, T) * nb;
        w += (size_t)nb;
    }
    return sum / (double)nwin;
}

/* The network's current parameters as an f32 checkpoint at path. */
static int save_best(run_ctx *r, const char *path, const char *flag, char *err, size_t errlen)
{
    ckpt_desc d;
    memset(&d, 0, sizeof d);
    d.hp = &r->hp;
    d.name = r->c->name ? r->c->name : "synthesizer";
    d.vocab = (const char *const *)r->tok.vocab;
    d.n_vocab = r->tok.n_vocab;
    d.merges = (const char *const *)r->tok.merges;
    d.n_merges = r->tok.n_merges;
    d.eos_id = r->tok.eos;
    d.tensors = (const float *const *)train_net_f_param_ptrs(r->net);
    d.type = QUANT_F32;
    char e2[256];
    int rc = ckpt_write(&d, path, e2, sizeof e2);
    if (rc) return fail(err, errlen, TRAIN_EIO, "train: %s: %s", flag, e2);
    return 0;
}

static int save_state(run_ctx *r, char *err, size_t errlen)
{
    return state_save(r->state_path, &r->hp, &r->st, train_net_f_params(r->net), r->m, r->v, r->ema,
                      train_net_f_n_params(r->net), err, errlen);
}

void train_tie_diagonals(float *g, int L, int T, int H, float x)
{
    for (int h = 0; h < H; h++) {
        float *G = g + (size_t)h * L * L;
        for (int k = 0; k < T; k++) { /* diagonal k: entries (i, i - k), i = k .. T-1 */
            double sum = 0;
            for (int i = k; i < T; i++) sum += G[(size_t)i * L + (i - k)];
            const float add = (float)(x * sum / (T - k));
            for (int i = k; i < T; i++) G[(size_t)i * L + (i - k)] += add;
        }
    }
}

/* --r-tie on every layer's R gradient (before the norm, so clipping sees it) */
static void tie_r_grads(run_ctx *r)
{
    float *const *gp = train_net_f_grad_ptrs(r->net);
    const arch_hparams *hp = &r->hp;
    for (int i = 0; i < train_net_f_n_tensors(r->net); i++)
        if (train_net_f_tensor(r->net, i)->kind == T_RANDOM)
            train_tie_diagonals(gp[i], hp->n_ctx, r->c->seq, hp->n_head, r->c->r_tie);
}

typedef struct {
    run_ctx *r;
    int lane;
    float gscale, lr, decay;
} muon_job;

/* One lane's share of the Muon matrices (train_dp_run_jobs: lanes run at
 * once, each with its own scratch; the matrices are disjoint). */
static void *muon_run(void *arg)
{
    const muon_job *j = arg;
    run_ctx *r = j->r;
    float *p = train_net_f_params(r->net), *g = train_net_f_grads(r->net);
    float *work = r->muon_work + (size_t)j->lane * r->muon_work_n;
    for (int k = 0; k < r->n_mm; k++) {
        const muon_mat *mm = &r->mm[k];
        if (mm->lane == j->lane)
            train_muon(p + mm->off, g + mm->off, r->m + mm->off, mm->rows, mm->cols, j->gscale, j->lr,
                       r->c->muon_momentum, j->decay, work);
    }
    return NULL;
}

/* One optimizer step on a fresh batch; returns the training loss. */
static double train_step(run_ctx *r)
{
    const train_config *c = r->c;
    const int B = c->batch, T = c->seq;
    const size_t span = r->n_train - (size_t)T; /* offsets 0..span-1 keep targets in range */
    for (int b = 0; b < B; b++) {
        size_t off = (size_t)(arch_rng_next(&r->st.data_rng) % span);
        memcpy(r->bin + (size_t)b * T, r->train_ids + off, (size_t)T * 4);
        memcpy(r->btg + (size_t)b * T, r->train_ids + off + 1, (size_t)T * 4);
    }
    double loss = train_dp_step(r->dp, r->bin, r->btg, B, T, dropout_at(c, r->st.total, r->st.step), &r->st.drop_rng);
    if (!isfinite(loss)) return loss;
    float *g = train_net_f_grads(r->net), *p = train_net_f_params(r->net);
    const int64_t np = train_net_f_n_params(r->net);
    if (c->r_tie > 0) tie_r_grads(r);
    double norm = sqrt(tk_sumsq(g, (size_t)np));
    if (!isfinite(norm)) return NAN;
    float gscale = c->clip > 0 && norm > c->clip ? (float)(c->clip / norm) : 1.0f;
    float lr = lr_at(c, r->st.total, r->st.step), decay = decay_at(c, r->st.total, r->st.step);
    const double t = (double)(r->st.step + 1);
    const float c1 = (float)(1.0 / (1.0 - pow(c->beta1, t))), c2 = (float)(1.0 / (1.0 - pow(c->beta2, t)));
    const int nt = train_net_f_n_tensors(r->net);
    int64_t off = 0;
    for (int i = 0; i < nt; i++) {
        const arch_tensor *ti = train_net_f_tensor(r->net, i);
        int64_t ne = ti->n_elem;
        /* the synthetic attention logits get a weak, noisy gradient (summed
         * over the batch); an lr multiplier lets them move off uniform */
        int synth = ti->kind == T_RANDOM || ti->kind == T_RANDOM_A || ti->kind == T_RANDOM_B;
        float tlr = synth ? lr * c->synth_lr_mult : lr;
        if (train_net_f_trainable(r->net, i) && !(c->muon && r->decay[i])) /* Muon's: below */
            tk_adamw(p + off, g + off, r->m + off, r->v + off, (size_t)ne, gscale, tlr, c->beta1, c->beta2,
                     c->adam_eps, r->decay[i] ? decay : 0.0f, c1, c2);
        off += ne;
    }
    if (c->muon) {
        muon_job jobs[TRAIN_DP_MAX_SHARDS];
        for (int w = 0; w < r->muon_lanes; w++) jobs[w] = (muon_job){r, w, gscale, lr, decay};
        train_dp_run_jobs(r->dp, r->muon_lanes, muon_run, jobs, sizeof jobs[0]);
    }
    r->st.step++;
    r->st.tokens_seen += (int64_t)B * T;
    if (r->ema && r->st.step % c->ema_every == 0) {
        /* the n-th update after ema_start: a running mean while
         * n / (n + 1) < D, then the EMA; up to and including the first
         * update after ema_start (n <= 0) the average is the parameters */
        const double n = (double)(r->st.step / c->ema_every - c->ema_start / c->ema_every - 1);
        const float d = n <= 0 ? 0.0f : (float)fmin((double)c->ema, n / (n + 1));
        for (int64_t i = 0; i < np; i++) r->ema[i] = d * r->ema[i] + (1 - d) * p[i];
    }
    return loss;
}

int train_has_decay(arch_kind k)
{
    switch (k) {
    case T_ATTN_Q_W: case T_ATTN_K_W: case T_ATTN_V_W: case T_ATTN_O_W: case T_DENSE1_W: case T_DENSE2_W:
    case T_DENSE_A1_W: case T_DENSE_A2_W: case T_DENSE_B1_W: case T_DENSE_B2_W: case T_FFN_UP_W:
    case T_FFN_DOWN_W:
        return 1;
    default:
        return 0;
    }
}

static void ctx_free(run_ctx *r)
{
    tokset_free(&r->tok);
    free(r->train_ids);
    free(r->valid_ids);
    train_dp_free(r->dp);
    free(r->m);
    free(r->v);
    free(r->ema);
    free(r->held);
    free(r->bin);
    free(r->btg);
    free(r->decay);
    free(r->muon_work);
    free(r->mm);
    if (r->log) fclose(r->log);
}

static void report(train_progress_fn fn, void *ud, const char *phase)
{
    if (!fn) return;
    train_progress p;
    memset(&p, 0, sizeof p);
    p.phase = phase;
    fn(&p, ud);
}

/* Load texts, set up the tokenizer, tokenize. */
static int prepare_data(run_ctx *r, train_progress_fn fn, void *ud, char *err, size_t errlen)
{
    const train_config *c = r->c;
    char *ttext = NULL, *vtext = NULL;
    size_t tlen = 0, vlen = 0;
    int rc = read_file("--train", c->train_path, &ttext, &tlen, err, errlen);
    if (!rc) rc = read_file("--valid", c->valid_path, &vtext, &vlen, err, errlen);
    if (!rc && tlen < 64) rc = fail(err, errlen, TRAIN_EINVAL, "train: --train: '%s' is empty or tiny (%zu bytes)",
                                    c->train_path, tlen);
    if (!rc && vlen < 16) rc = fail(err, errlen, TRAIN_EINVAL, "train: --valid: '%s' is empty or tiny (%zu bytes)",
                                    c->valid_path, vlen);
    if (!rc) {
        if (c->tokenizer_path) {
            rc = tokset_load(&r->tok, c->tokenizer_path, err, errlen);
        } else {
            report(fn, ud, "learning BPE merges...");
            rc = tokset_learn(&r->tok, ttext, tlen, c->vocab, err, errlen);
        }
    }
    if (!rc) {
        report(fn, ud, "tokenizing...");
        rc = tokenize(r, "--train", ttext, tlen, &r->train_ids, &r->n_train, err, errlen);
    }
    if (!rc) rc = tokenize(r, "--valid", vtext, vlen, &r->valid_ids, &r->n_valid, err, errlen);
    free(ttext);
    free(vtext);
    return rc;
}

/* --optimizer muon: the trainable decayed matrices, spread over the dp's
 * lanes largest first, each to the lane with the least work so far (a
 * Newton-Schulz step costs about rows x cols x min(rows, cols)), and one
 * scratch per lane. -1: out of memory. */
static int muon_setup(run_ctx *r)
{
    const int nt = train_net_f_n_tensors(r->net);
    double load[TRAIN_DP_MAX_SHARDS] = {0};
    r->muon_lanes = train_dp_workers(r->dp);
    if (!(r->mm = calloc((size_t)nt, sizeof *r->mm))) return -1;
    int64_t off = 0;
    for (int i = 0; i < nt; i++) {
        const arch_tensor *ti = train_net_f_tensor(r->net, i);
        if (r->decay[i] && train_net_f_trainable(r->net, i)) {
            muon_mat *mm = &r->mm[r->n_mm++];
            *mm = (muon_mat){off, (int)ti->shape[0], (int)(ti->n_elem / ti->shape[0]), 0};
            const size_t w = train_muon_work(mm->rows, mm->cols);
            if (w > r->muon_work_n) r->muon_work_n = w;
        }
        off += ti->n_elem;
    }
    int *done = calloc((size_t)r->n_mm + 1, sizeof *done);
    if (!done) return -1;
    for (int n = 0; n < r->n_mm; n++) {
        int best = -1, lane = 0;
        double cost = -1;
        for (int k = 0; k < r->n_mm; k++) { /* the largest matrix not yet placed */
            const double ck = (double)r->mm[k].rows * r->mm[k].cols * fmin(r->mm[k].rows, r->mm[k].cols);
            if (!done[k] && ck > cost) { cost = ck; best = k; }
        }
        for (int w = 1; w < r->muon_lanes; w++)
            if (load[w] < load[lane]) lane = w;
        r->mm[best].lane = lane;
        load[lane] += cost;
        done[best] = 1;
    }
    free(done);
    r->muon_work = malloc((size_t)r->muon_lanes * r->muon_work_n * sizeof(float));
    return r->muon_work ? 0 : -1;
}

static int setup(run_ctx *r, char *err, size_t errlen)
{
    const train_config *c = r->c;
    char e2[256];
    r->hp = c->hp;
    r->hp.n_vocab = r->tok.n_vocab;
    if (arch_hparams_validate(&r->hp, e2, sizeof e2))
        return fail(err, errlen, TRAIN_EINVAL, "train: model with the tokenizer's vocabulary: %s", e2);
    r->dp = train_dp_create(&r->hp, c->batch, c->seq, train_shards(c), train_threads(c), e2, sizeof e2);
    if (!r->dp) return fail(err, errlen, TRAIN_ENOMEM, "train: %s", e2);
    train_dp_set_word_dropout(r->dp, c->word_dropout); /* in range: validated */
    r->net = train_dp_net(r->dp);
    const int64_t np = train_net_f_n_params(r->net);
    const int nt = train_net_f_n_tensors(r->net);
    r->m = calloc((size_t)np, sizeof(float));
    r->v = calloc((size_t)np, sizeof(float));
    r->bin = malloc((size_t)c->batch * c->seq * sizeof(int32_t));
    r->btg = malloc((size_t)c->batch * c->seq * sizeof(int32_t));
    r->decay = calloc((size_t)nt, sizeof(int));
    if (!r->m || !r->v || !r->bin || !r->btg || !r->decay) return fail(err, errlen, TRAIN_ENOMEM, "train: out of memory");
    for (int i = 0; i < nt; i++) r->decay[i] = train_has_decay(train_net_f_tensor(r->net, i)->kind);
    if (c->muon && muon_setup(r)) return fail(err, errlen, TRAIN_ENOMEM, "train: out of memory (--optimizer muon)");
    train_net_f_init_params(r->net, c->seed, c->rstd);
    if (c->ema > 0) {
        r->ema = malloc((size_t)np * sizeof(float));
        r->held = malloc((size_t)np * sizeof(float));
        if (!r->ema || !r->held) return fail(err, errlen, TRAIN_ENOMEM, "train: out of memory (--ema)");
        memcpy(r->ema, train_net_f_params(r->net), (size_t)np * sizeof(float));
    }
    memset(&r->st, 0, sizeof r->st);
    arch_rng_seed(&r->st.data_rng, c->seed ^ 0x5DA7A5EEDull);
    arch_rng_seed(&r->st.drop_rng, c->seed ^ 0xD50B0D0Bull);
    r->st.best_valid = INFINITY;
    r->st.best_valid_ema = INFINITY;
    r->st.shards = train_shards(c);
    r->st.tok_hash = tok_hash(&r->tok);
    fnv dh = {0xcbf29ce484222325ull};
    fnv_add(&dh, r->train_ids, r->n_train * sizeof *r->train_ids);
    fnv_add(&dh, r->valid_ids, r->n_valid * sizeof *r->valid_ids);
    r->st.data_hash = dh.h;
    const char *sp = c->ckpt_path;
    int nn = sp ? snprintf(r->state_path, sizeof r->state_path, "%s", sp)
                : snprintf(r->state_path, sizeof r->state_path, "%s.state", c->out_path);
    if (nn < 0 || nn >= (int)sizeof r->state_path) return fail(err, errlen, TRAIN_EINVAL, "train: --ckpt: path too long");
    if (c->resume_path) {
        int rc = state_load(c->resume_path, &r->hp, &r->st, train_net_f_params(r->net), r->m, r->v, r->ema, np, err,
                            errlen);
        if (rc) return rc;
    }
    if (c->log_path) {
        r->log = fopen(c->log_path, c->resume_path ? "a" : "w");
        if (!r->log) return fail(err, errlen, TRAIN_EIO, "train: --log: cannot write '%s': %s", c->log_path, strerror(errno));
        if (!c->resume_path || ftell(r->log) == 0)
            fprintf(r->log, "step,train_loss,valid_loss,lr,tokens_per_s,elapsed_s%s\n", r->ema ? ",valid_loss_ema" : "");
        fflush(r->log);
    }
    return 0;
}

/* The weight average's validation loss; its best is written to --ema-out.
 * The replicas share shard 0's parameters, so the average is swapped in
 * for the evaluation and the parameters are put back bit for bit. */
static int eval_average(run_ctx *r, train_progress *p, char *err, size_t errlen)
{
    float *params = train_net_f_params(r->net);
    const size_t bytes = (size_t)train_net_f_n_params(r->net) * sizeof(float);
    memcpy(r->held, params, bytes);
    memcpy(params, r->ema, bytes);
    double vl = evaluate(r);
    int rc = 0;
    p->valid_loss_ema = vl;
    p->saved_ema = 0;
    if (vl < r->st.best_valid_ema) {
        r->st.best_valid_ema = vl;
        rc = save_best(r, r->c->ema_out, "--ema-out", err, errlen);
        p->saved_ema = !rc;
    }
    memcpy(params, r->held, bytes);
    p->best_valid_ema = r->st.best_valid_ema;
    return rc;
}

/* Evaluate (the parameters, then their average), keep the best
 * checkpoints, log a CSV row, report. */
static int eval_and_keep(run_ctx *r, train_progress *p, double loss, train_progress_fn fn, void *ud, char *err,
                         size_t errlen)
{
    double vl = evaluate(r);
    int rc = 0;
    p->is_eval = 1;
    p->valid_loss = vl;
    p->saved = 0;
    if (vl < r->st.best_valid) {
        r->st.best_valid = vl;
        r->st.bad_evals = 0;
        rc = save_best(r, r->c->out_path, "-o", err, errlen);
        p->saved = !rc;
    } else {
        r->st.bad_evals++;
    }
    p->best_valid = r->st.best_valid;
    if (!rc && r->ema) rc = eval_average(r, p, err, errlen);
    if (r->log) {
        fprintf(r->log, "%lld,%.6f,%.6f,%.6g,%.1f,%.1f", (long long)r->st.step, loss, vl, p->lr, p->tokens_per_s,
                r->st.elapsed_s);
        if (r->ema) fprintf(r->log, ",%.6f", p->valid_loss_ema);
        fputc('\n', r->log);
        fflush(r->log);
    }
    if (fn) fn(p, ud);
    return rc;
}

/* --steps auto: the schedule length that fills what is left of the time
 * budget. per_step: wall seconds per step outside evaluations (the step,
 * progress callbacks, checkpoints); eval_s: seconds of one evaluation,
 * measured, or < 0 before the first one: then modelled from the step time
 * (a forward pass ~ 0.35 of a step). Called after every step while the
 * total is this run's own, so a rate that changes after the warm-up moves
 * the end of the cosine with it instead of --max-minutes cutting it short. */
static int64_t auto_steps(run_ctx *r, double per_step, double eval_s, double left)
{
    const train_config *c = r->c;
    if (eval_s < 0) {
        size_t nwin = (r->n_valid - 1) / (size_t)c->seq;
        if (c->eval_tokens > 0 && (size_t)(c->eval_tokens / c->seq) < nwin) nwin = (size_t)(c->eval_tokens / c->seq);
        eval_s = 0.35 * per_step * (double)((nwin + (size_t)c->batch - 1) / (size_t)c->batch);
    }
    double per = per_step + eval_s / (double)c->eval_every;
    double more = 0.97 * left / per;
    if (!(more > 0)) more = 0; /* also NaN */
    if (more > 1e11) more = 1e11;
    return r->st.step + (int64_t)more;
}

/* The wall clock of one train_run: what the progress line, the --steps auto
 * schedule and the summary read. Times in seconds from now_s(). */
typedef struct {
    double t0, elapsed0;  /* now_s() at the start; r->st.elapsed_s then (resumed runs) */
    int64_t step0;        /* r->st.step at the start */
    double budget;        /* --max-minutes, INFINITY: none */
    int64_t calib;        /* --steps auto: calibrate after this many steps */
    int own_total;        /* --steps auto and the total is this run's to set */
    double run_tokens;    /* tokens trained on in this run */
    double train_time;    /* in train_step only (no evaluations) */
    double eval_time;     /* in evaluations */
    double calib_wall;    /* wall outside evaluations at step calib */
    int64_t n_evals;
} run_clock;

static void clock_start(run_clock *k, const run_ctx *r)
{
    const train_config *c = r->c;
    memset(k, 0, sizeof *k);
    k->t0 = now_s();
    k->elapsed0 = r->st.elapsed_s;
    k->step0 = r->st.step;
    k->budget = c->max_minutes > 0 ? c->max_minutes * 60.0 : INFINITY;
    /* inside the warm-up, so the provisional schedule does not matter */
    k->calib = c->warmup > 0 && c->warmup < 20 ? c->warmup : 20;
    /* fresh, or resumed inside the warm-up (a resumed run past it keeps the
     * stored schedule) */
    k->own_total = c->steps == 0 && (r->st.total == 0 || r->st.step < c->warmup);
}

static double clock_tokens_per_s(const run_clock *k)
{
    return k->run_tokens / (k->train_time > 1e-9 ? k->train_time : 1e-9);
}

/* After a step: --steps auto re-estimates the total from the wall time per
 * step (in the warm-up the lr does not depend on the total; after it the
 * total moves by a step's worth of the remaining cosine at a time), then
 * the progress report of the step. el: seconds since k->t0. */
static void clock_step(run_ctx *r, run_clock *k, double el, double loss, train_progress *p)
{
    const int64_t done = r->st.step - k->step0;
    if (k->own_total && done == k->calib) k->calib_wall = el - k->eval_time;
    if (k->own_total && done >= k->calib) {
        /* wall time per step without the first (page-faulting) steps once possible */
        double outside = el - k->eval_time;
        double ps = done >= 2 * k->calib ? (outside - k->calib_wall) / (double)(done - k->calib) : outside / (double)done;
        r->st.total = auto_steps(r, ps, k->n_evals ? k->eval_time / (double)k->n_evals : -1, k->budget - el);
    }
    r->st.elapsed_s = k->elapsed0 + el;
    p->step = r->st.step;
    p->steps = r->st.total;
    p->train_loss = loss;
    p->lr = lr_at(r->c, r->st.total, r->st.step - 1);
    p->tokens_per_s = clock_tokens_per_s(k);
    p->elapsed_s = r->st.elapsed_s;
    p->eta_s = r->st.total ? (double)(r->st.total - r->st.step) * el / (double)done : NAN;
    if (p->eta_s > k->budget - el) p->eta_s = k->budget - el;
    p->is_eval = 0;
    p->saved = 0;
}

int train_run(const train_config *c, train_progress_fn fn, void *ud, train_summary *out, char *err, size_t errlen)
{
    int rc = train_config_validate(c, err, errlen);
    if (rc) return rc;
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.c = c;
    train_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.best_valid = INFINITY;
    sum.best_valid_ema = INFINITY;
    rc = prepare_data(&r, fn, ud, err, errlen);
    if (!rc) rc = setup(&r, err, errlen);
    if (rc) {
        ctx_free(&r);
        return rc;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%zu train tokens, %zu valid tokens, vocabulary %d, %lld parameters%s", r.n_train,
             r.n_valid, r.hp.n_vocab, (long long)train_net_f_n_params(r.net), c->resume_path ? ", resumed" : "");
    report(fn, ud, msg);
    sum.n_train_tokens = (int64_t)r.n_train;
    sum.n_valid_tokens = (int64_t)r.n_valid;
    sum.n_vocab = r.hp.n_vocab;
    if (c->steps > 0) r.st.total = c->steps; /* else: from the resumed state, or calibrated by clock_step */

    run_clock k;
    clock_start(&k, &r);
    double loss = NAN;
    int64_t last_eval = -1;
    train_progress p;
    memset(&p, 0, sizeof p);
    p.best_valid = r.st.best_valid;
    p.valid_loss = NAN;
    p.best_valid_ema = r.ema ? r.st.best_valid_ema : NAN;
    p.valid_loss_ema = NAN;
    while (r.st.total == 0 || r.st.step < r.st.total) {
        if (c->stop_at > 0 && r.st.step >= c->stop_at) break;
        if (now_s() - k.t0 >= k.budget || (c->interrupt && *c->interrupt)) {
            sum.stopped_time = 1;
            break;
        }
        double ts = now_s();
        loss = train_step(&r);
        k.train_time += now_s() - ts;
        if (!isfinite(loss)) {
            rc = fail(err, errlen, TRAIN_ENAN, "train: loss is %g at step %lld (lower --lr?)", loss,
                      (long long)r.st.step + 1);
            break;
        }
        k.run_tokens += (double)c->batch * c->seq;
        clock_step(&r, &k, now_s() - k.t0, loss, &p);
        if (fn) fn(&p, ud);
        if (r.st.step % c->eval_every == 0 || r.st.step == r.st.total) {
            last_eval = r.st.step;
            double te = now_s();
            rc = eval_and_keep(&r, &p, loss, fn, ud, err, errlen);
            k.eval_time += now_s() - te;
            k.n_evals++;
            if (rc) break;
            if (c->patience > 0 && r.st.bad_evals >= c->patience) {
                sum.stopped_early = 1;
                break;
            }
        }
        if (c->ckpt_every > 0 && r.st.step % c->ckpt_every == 0 && (rc = save_state(&r, err, errlen))) break;
    }
    /* stopped by the time budget (or resumed at the end): evaluate once more */
    if (!rc && last_eval != r.st.step && !sum.stopped_early && !(c->stop_at > 0 && r.st.step >= c->stop_at))
        rc = eval_and_keep(&r, &p, loss, fn, ud, err, errlen);
    if (!rc) rc = save_state(&r, err, errlen);
    sum.steps_done = r.st.step;
    sum.last_train_loss = loss;
    sum.best_valid = r.st.best_valid;
    sum.best_valid_ema = r.st.best_valid_ema;
    sum.tokens_per_s = clock_tokens_per_s(&k);
    sum.elapsed_s = r.st.elapsed_s;
    if (out) *out = sum;
    ctx_free(&r);
    return rc;
}
