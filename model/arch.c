/* arch.c - the model definition: variants, hyperparameters, tensor table. */
#include "arch.h"

#include <stdio.h>
#include <math.h>
#include <string.h>

static const char *const variant_names[ARCH_N_VARIANTS] = {
    "random", "fixed_random", "factorized_random", "dense",
    "factorized_dense", "vanilla", "random+vanilla", "dense+vanilla",
};

const char *arch_variant_name(arch_variant v)
{
    return (unsigned)v < ARCH_N_VARIANTS ? variant_names[v] : "?";
}

int arch_variant_parse(const char *s, arch_variant *out)
{
    for (int i = 0; i < ARCH_N_VARIANTS; i++)
        if (s && strcmp(s, variant_names[i]) == 0) {
            *out = (arch_variant)i;
            return 0;
        }
    return -1;
}

static const char *const ffn_names[ARCH_N_FFN] = {"gelu", "geglu"};

const char *arch_ffn_name(arch_ffn a) { return (unsigned)a < ARCH_N_FFN ? ffn_names[a] : "?"; }

int arch_ffn_parse(const char *s, arch_ffn *out)
{
    for (int i = 0; i < ARCH_N_FFN; i++)
        if (s && strcmp(s, ffn_names[i]) == 0) {
            *out = (arch_ffn)i;
            return 0;
        }
    return -1;
}

int arch_ffn_up_mult(arch_ffn a) { return a == ARCH_FFN_GEGLU ? 2 : 1; }

int arch_has_random(arch_variant v)
{
    return v == ARCH_RANDOM || v == ARCH_FIXED_RANDOM || v == ARCH_RANDOM_VANILLA;
}
int arch_has_factorized_random(arch_variant v) { return v == ARCH_FACTORIZED_RANDOM; }
int arch_has_dense(arch_variant v) { return v == ARCH_DENSE || v == ARCH_DENSE_VANILLA; }
int arch_has_factorized_dense(arch_variant v) { return v == ARCH_FACTORIZED_DENSE; }
int arch_has_vanilla(arch_variant v)
{
    return v == ARCH_VANILLA || v == ARCH_RANDOM_VANILLA || v == ARCH_DENSE_VANILLA;
}
int arch_has_mix(arch_variant v) { return v == ARCH_RANDOM_VANILLA || v == ARCH_DENSE_VANILLA; }
int arch_is_static(arch_variant v)
{
    return v == ARCH_RANDOM || v == ARCH_FIXED_RANDOM || v == ARCH_FACTORIZED_RANDOM;
}

void arch_hparams_default(arch_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    hp->n_vocab = 8192;
    hp->n_ctx = 256;
    hp->n_embd = 256;
    hp->n_layer = 6;
    hp->n_head = 4;
    hp->n_ff = 1024;
    hp->fr_rank = 8;
    hp->fd_a = 16;
    hp->fd_b = 16;
    hp->ln_eps = 1e-5f;
    hp->variant = ARCH_RANDOM;
    hp->ffn = ARCH_FFN_GELU;
}

#define FAIL(...) do { if (err) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int arch_hparams_validate(const arch_hparams *hp, char *err, size_t errlen)
{
    /* Limits keep every product of sizes far below 2^62 (and tensors small
     * enough to index with int64 and int for BLAS leading dimensions). */
    if ((unsigned)hp->variant >= ARCH_N_VARIANTS) FAIL("unknown attention variant %d", (int)hp->variant);
    if ((unsigned)hp->ffn >= ARCH_N_FFN) FAIL("unknown feed-forward activation %d", (int)hp->ffn);
    if (hp->n_vocab < 2 || hp->n_vocab > (1 << 20)) FAIL("n_vocab %d out of range [2, 1048576]", hp->n_vocab);
    if (hp->n_ctx < 1 || hp->n_ctx > 8192) FAIL("context_length %d out of range [1, 8192]", hp->n_ctx);
    if (hp->n_embd < 1 || hp->n_embd > 16384) FAIL("embedding_length %d out of range [1, 16384]", hp->n_embd);
    if (hp->n_layer < 1 || hp->n_layer > 256) FAIL("block_count %d out of range [1, 256]", hp->n_layer);
    if (hp->n_head < 1 || hp->n_head > hp->n_embd) FAIL("head_count %d out of range [1, %d]", hp->n_head, hp->n_embd);
    if (hp->n_embd % hp->n_head) FAIL("embedding_length %d not divisible by head_count %d", hp->n_embd, hp->n_head);
    if (hp->n_ff < 1 || hp->n_ff > 65536) FAIL("feed_forward_length %d out of range [1, 65536]", hp->n_ff);
    if (!(hp->ln_eps > 0.0f && hp->ln_eps < 1.0f)) FAIL("layer_norm_epsilon %g out of range (0, 1)", (double)hp->ln_eps);
    if (arch_has_factorized_random(hp->variant) && (hp->fr_rank < 1 || hp->fr_rank > hp->n_ctx))
        FAIL("factorized_rank %d out of range [1, %d]", hp->fr_rank, hp->n_ctx);
    if (arch_has_factorized_dense(hp->variant)) {
        if (hp->fd_a < 1 || hp->fd_b < 1 || (int64_t)hp->fd_a * hp->fd_b != hp->n_ctx)
            FAIL("factorized_dense a=%d b=%d: a*b must equal context_length %d", hp->fd_a, hp->fd_b, hp->n_ctx);
    }
    return 0;
}

typedef struct {
    const char *fmt;   /* name; %d is the layer */
    int n_dims;
} kind_name;

static const kind_name kind_names[T_N_KINDS] = {
    [T_TOKEN_EMBD] = {"token_embd.weight", 2},
    [T_POS_EMBD] = {"position_embd.weight", 2},
    [T_OUTPUT_NORM_W] = {"output_norm.weight", 1},
    [T_OUTPUT_NORM_B] = {"output_norm.bias", 1},
    [T_ATTN_NORM_W] = {"blk.%d.attn_norm.weight", 1},
    [T_ATTN_NORM_B] = {"blk.%d.attn_norm.bias", 1},
    [T_ATTN_Q_W] = {"blk.%d.attn_q.weight", 2},
    [T_ATTN_Q_B] = {"blk.%d.attn_q.bias", 1},
    [T_ATTN_K_W] = {"blk.%d.attn_k.weight", 2},
    [T_ATTN_K_B] = {"blk.%d.attn_k.bias", 1},
    [T_ATTN_V_W] = {"blk.%d.attn_v.weight", 2},
    [T_ATTN_V_B] = {"blk.%d.attn_v.bias", 1},
    [T_ATTN_O_W] = {"blk.%d.attn_output.weight", 2},
    [T_ATTN_O_B] = {"blk.%d.attn_output.bias", 1},
    [T_RANDOM] = {"blk.%d.attn_random", 3},
    [T_RANDOM_A] = {"blk.%d.attn_random_a", 3},
    [T_RANDOM_B] = {"blk.%d.attn_random_b", 3},
    [T_DENSE1_W] = {"blk.%d.attn_dense_1.weight", 2},
    [T_DENSE1_B] = {"blk.%d.attn_dense_1.bias", 1},
    [T_DENSE2_W] = {"blk.%d.attn_dense_2.weight", 3},
    [T_DENSE2_B] = {"blk.%d.attn_dense_2.bias", 2},
    [T_DENSE_A1_W] = {"blk.%d.attn_dense_a_1.weight", 2},
    [T_DENSE_A1_B] = {"blk.%d.attn_dense_a_1.bias", 1},
    [T_DENSE_A2_W] = {"blk.%d.attn_dense_a_2.weight", 3},
    [T_DENSE_A2_B] = {"blk.%d.attn_dense_a_2.bias", 2},
    [T_DENSE_B1_W] = {"blk.%d.attn_dense_b_1.weight", 2},
    [T_DENSE_B1_B] = {"blk.%d.attn_dense_b_1.bias", 1},
    [T_DENSE_B2_W] = {"blk.%d.attn_dense_b_2.weight", 3},
    [T_DENSE_B2_B] = {"blk.%d.attn_dense_b_2.bias", 2},
    [T_MIX] = {"blk.%d.attn_mix", 1},
    [T_FFN_NORM_W] = {"blk.%d.ffn_norm.weight", 1},
    [T_FFN_NORM_B] = {"blk.%d.ffn_norm.bias", 1},
    [T_FFN_UP_W] = {"blk.%d.ffn_up.weight", 2},
    [T_FFN_UP_B] = {"blk.%d.ffn_up.bias", 1},
    [T_FFN_DOWN_W] = {"blk.%d.ffn_down.weight", 2},
    [T_FFN_DOWN_B] = {"blk.%d.ffn_down.bias", 1},
};

int arch_kind_present(const arch_hparams *hp, arch_kind k)
{
    arch_variant v = hp->variant;
    switch (k) {
    case T_ATTN_Q_W: case T_ATTN_Q_B: case T_ATTN_K_W: case T_ATTN_K_B:
        return arch_has_vanilla(v);
    case T_RANDOM:
        return arch_has_random(v);
    case T_RANDOM_A: case T_RANDOM_B:
        return arch_has_factorized_random(v);
    case T_DENSE1_W: case T_DENSE1_B: case T_DENSE2_W: case T_DENSE2_B:
        return arch_has_dense(v);
    case T_DENSE_A1_W: case T_DENSE_A1_B: case T_DENSE_A2_W: case T_DENSE_A2_B:
    case T_DENSE_B1_W: case T_DENSE_B1_B: case T_DENSE_B2_W: case T_DENSE_B2_B:
        return arch_has_factorized_dense(v);
    case T_MIX:
        return arch_has_mix(v);
    default:
        return (unsigned)k < T_N_KINDS;
    }
}

void arch_kind_spec(const arch_hparams *hp, arch_kind k, int il, arch_tensor *t)
{
    const int64_t d = hp->n_embd, H = hp->n_head, L = hp->n_ctx, dh = d / H;
    const int64_t V = hp->n_vocab, F = hp->n_ff, R = hp->fr_rank, A = hp->fd_a, B = hp->fd_b;
    const int64_t Fu = F * arch_ffn_up_mult(hp->ffn); /* rows of ffn_up */
    int64_t s0 = d, s1 = 1, s2 = 1;

    memset(t, 0, sizeof *t);
    t->kind = k;
    t->layer = k >= T_N_GLOBAL ? il : -1;
    snprintf(t->name, sizeof t->name, kind_names[k].fmt, il);
    t->n_dims = kind_names[k].n_dims;
    switch (k) {
    case T_TOKEN_EMBD: s0 = V; s1 = d; break;
    case T_POS_EMBD: s0 = L; s1 = d; break;
    case T_ATTN_Q_W: case T_ATTN_K_W: case T_ATTN_V_W: case T_ATTN_O_W:
    case T_DENSE1_W: case T_DENSE_A1_W: case T_DENSE_B1_W:
        s0 = d; s1 = d; break;
    case T_RANDOM: s0 = H; s1 = L; s2 = L; break;
    case T_RANDOM_A: case T_RANDOM_B: s0 = H; s1 = L; s2 = R; break;
    case T_DENSE2_W: s0 = H; s1 = L; s2 = dh; break;
    case T_DENSE2_B: s0 = H; s1 = L; break;
    case T_DENSE_A2_W: s0 = H; s1 = A; s2 = dh; break;
    case T_DENSE_A2_B: s0 = H; s1 = A; break;
    case T_DENSE_B2_W: s0 = H; s1 = B; s2 = dh; break;
    case T_DENSE_B2_B: s0 = H; s1 = B; break;
    case T_MIX: s0 = H; break;
    case T_FFN_UP_W: s0 = Fu; s1 = d; break;
    case T_FFN_UP_B: s0 = Fu; break;
    case T_FFN_DOWN_W: s0 = d; s1 = F; break;
    default: s0 = d; break; /* norms and d-sized biases */
    }
    t->shape[0] = s0;
    t->shape[1] = t->n_dims > 1 ? s1 : 1;
    t->shape[2] = t->n_dims > 2 ? s2 : 1;
    t->n_elem = t->shape[0] * t->shape[1] * t->shape[2];
    int64_t inner = t->shape[t->n_dims - 1];
    /* Matrices read row by row (matmul weights, embedding rows). The random
     * logits stay f32: they are softmaxed once at load anyway. */
    t->quantizable = t->n_dims >= 2 && inner % 32 == 0 && k != T_RANDOM && k != T_RANDOM_A &&
                     k != T_RANDOM_B && k != T_POS_EMBD && k != T_DENSE2_B && k != T_DENSE_A2_B &&
                     k != T_DENSE_B2_B;
}

int arch_tensors(const arch_hparams *hp, arch_tensor *out, int cap)
{
    int n = 0;
    for (int k = 0; k < T_N_GLOBAL; k++) {
        if (out && n < cap) arch_kind_spec(hp, (arch_kind)k, -1, &out[n]);
        n++;
    }
    for (int il = 0; il < hp->n_layer; il++)
        for (int k = T_N_GLOBAL; k < T_N_KINDS; k++) {
            if (!arch_kind_present(hp, (arch_kind)k)) continue;
            if (out && n < cap) arch_kind_spec(hp, (arch_kind)k, il, &out[n]);
            n++;
        }
    return n;
}

int64_t arch_n_params(const arch_hparams *hp)
{
    int64_t total = 0;
    arch_tensor t;
    for (int k = 0; k < T_N_GLOBAL; k++) {
        arch_kind_spec(hp, (arch_kind)k, -1, &t);
        total += t.n_elem;
    }
    for (int k = T_N_GLOBAL; k < T_N_KINDS; k++) {
        if (!arch_kind_present(hp, (arch_kind)k)) continue;
        arch_kind_spec(hp, (arch_kind)k, 0, &t);
        total += t.n_elem * hp->n_layer;
    }
    return total;
}

/* ---- PRNG ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void arch_rng_seed(arch_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t arch_rng_next(arch_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

double arch_rng_uniform(arch_rng *r) { return (double)(arch_rng_next(r) >> 11) * 0x1.0p-53; }

float arch_rng_normal(arch_rng *r)
{
    double u1 = arch_rng_uniform(r), u2 = arch_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void arch_init_params(const arch_hparams *hp, uint64_t seed, float rstd, float *const *tensors)
{
    int n = arch_tensors(hp, NULL, 0);
    arch_tensor t;
    arch_rng rng;
    arch_rng_seed(&rng, seed);
    float proj_scale = 1.0f / sqrtf(2.0f * (float)hp->n_layer);
    int i = 0;
    for (int il = -1; il < hp->n_layer; il++) {
        int k0 = il < 0 ? 0 : T_N_GLOBAL, k1 = il < 0 ? T_N_GLOBAL : T_N_KINDS;
        for (int k = k0; k < k1; k++) {
            if (il >= 0 && !arch_kind_present(hp, (arch_kind)k)) continue;
            arch_kind_spec(hp, (arch_kind)k, il, &t);
            float *p = tensors[i++];
            float std = 0.0f, cst = 0.0f;
            switch (k) {
            case T_TOKEN_EMBD: std = 0.02f; break;
            case T_POS_EMBD: std = 0.01f; break;
            case T_OUTPUT_NORM_W: case T_ATTN_NORM_W: case T_FFN_NORM_W: cst = 1.0f; break;
            case T_ATTN_O_W: case T_FFN_DOWN_W: std = 0.02f * proj_scale; break;
            case T_RANDOM: std = rstd; break;
            case T_RANDOM_A: case T_RANDOM_B: std = sqrtf(rstd); break;
            case T_ATTN_Q_W: case T_ATTN_K_W: case T_ATTN_V_W: case T_DENSE1_W: case T_DENSE2_W:
            case T_DENSE_A1_W: case T_DENSE_A2_W: case T_DENSE_B1_W: case T_DENSE_B2_W:
            case T_FFN_UP_W: std = 0.02f; break;
            default: break; /* biases, alpha: 0 */
            }
            for (int64_t e = 0; e < t.n_elem; e++) p[e] = std > 0.0f ? std * arch_rng_normal(&rng) : cst;
        }
    }
    (void)n;
}
