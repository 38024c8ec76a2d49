/* ref_naive.c - the naive reference (ref_naive.h: the specification it is
 * written from and every contract). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_naive.h"

unsigned ref_byte_codepoint(int b)
{
    int n = 0;
    for (int c = 0; c < 256; c++) {
        int self = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
        if (c == b) return self ? (unsigned)c : 256u + (unsigned)n;
        if (!self) n++;
    }
    return 0;
}

int ref_byte_utf8(int b, char out[3])
{
    unsigned cp = ref_byte_codepoint(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    out[2] = 0;
    return 2;
}

static char *ref_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Mapped string of a byte string. */
static void ref_map_bytes(const char *bytes, char *out)
{
    out[0] = 0;
    for (const char *p = bytes; *p; p++) {
        char u[3];
        ref_byte_utf8((unsigned char)*p, u);
        strcat(out, u);
    }
}

static int ref_vocab_has(const ref_vocab *v, const char *s)
{
    for (int i = 0; i < v->n_vocab; i++)
        if (strcmp(v->vocab[i], s) == 0) return 1;
    return 0;
}

/* Add merge "left right" (byte strings) if both sides exist and the result
 * is new. */
static void ref_vocab_merge(ref_vocab *v, const char *left, const char *right)
{
    char l[64], r[64], lr[128], m[160];
    ref_map_bytes(left, l);
    ref_map_bytes(right, r);
    snprintf(lr, sizeof lr, "%s%s", l, r);
    if (v->n_merges >= REF_MAX_MERGES || !ref_vocab_has(v, l) || !ref_vocab_has(v, r) || ref_vocab_has(v, lr))
        return;
    snprintf(m, sizeof m, "%s %s", l, r);
    v->merges[v->n_merges++] = ref_strdup(m);
    v->vocab[v->n_vocab++] = ref_strdup(lr);
}

void ref_vocab_build(ref_vocab *v, int n_merges)
{
    static const char *const pairs[][2] = {
        {" ", "t"}, {"t", "h"}, {"h", "e"}, {" t", "h"}, {" th", "e"}, {" ", "a"}, {"i", "n"},
        {"e", "r"}, {"a", "n"}, {" ", "s"}, {"o", "n"}, {"r", "e"}, {" ", "o"}, {"e", "d"},
        {"in", "g"}, {" ", "w"}, {"a", "t"}, {"e", "n"}, {"n", "d"}, {" a", "nd"},
    };
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        char u[3];
        ref_byte_utf8(b, u);
        v->vocab[v->n_vocab++] = ref_strdup(u);
    }
    if (n_merges > REF_MAX_MERGES) n_merges = REF_MAX_MERGES;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && v->n_merges < n_merges; i++)
        ref_vocab_merge(v, pairs[i][0], pairs[i][1]);
    for (int a = 'a'; a <= 'z' && v->n_merges < n_merges; a++)
        for (int b = 'z'; b >= 'a' && v->n_merges < n_merges; b--) {
            char l[2] = {(char)a, 0}, r[2] = {(char)b, 0};
            ref_vocab_merge(v, l, r);
        }
    v->eos = v->n_vocab;
    v->vocab[v->n_vocab++] = ref_strdup("<|endoftext|>");
}

void ref_vocab_free(ref_vocab *v)
{
    for (int i = 0; i < v->n_vocab; i++) free(v->vocab[i]);
    for (int i = 0; i < v->n_merges; i++) free(v->merges[i]);
    memset(v, 0, sizeof *v);
}

float **ref_alloc_params(const arch_hparams *hp, int *n_out)
{
    int n = arch_tensors(hp, NULL, 0);
    arch_tensor *t = calloc((size_t)n, sizeof *t);
    float **p = calloc((size_t)n, sizeof *p);
    arch_tensors(hp, t, n);
    for (int i = 0; i < n; i++) p[i] = calloc((size_t)t[i].n_elem, sizeof(float));
    free(t);
    *n_out = n;
    return p;
}

void ref_free_params(float **p, int n)
{
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

void ref_randomize(const arch_hparams *hp, uint64_t seed, float rstd, float **p)
{
    int n = arch_tensors(hp, NULL, 0);
    arch_tensor *t = calloc((size_t)n, sizeof *t);
    arch_rng rng;
    arch_tensors(hp, t, n);
    arch_init_params(hp, seed, rstd, p);
    arch_rng_seed(&rng, seed ^ 0xA5A5A5A5DEADBEEFull);
    double proj = 1.0 / sqrt(2.0 * hp->n_layer);
    for (int i = 0; i < n; i++) {
        int64_t ne = t[i].n_elem, inner = t[i].shape[t[i].n_dims - 1];
        double scale = 0.0, bias_std = 0.0, base = 0.0;
        switch (t[i].kind) {
        case T_TOKEN_EMBD: scale = 0.5 / 0.02; break;
        case T_POS_EMBD: scale = 0.5 / 0.01; break;
        case T_ATTN_O_W: case T_FFN_DOWN_W: scale = 1.0 / sqrt((double)inner) / (0.02 * proj); break;
        case T_ATTN_Q_W: case T_ATTN_K_W: case T_ATTN_V_W: case T_DENSE1_W: case T_DENSE_A1_W:
        case T_DENSE_B1_W: case T_FFN_UP_W:
            scale = 1.0 / sqrt((double)inner) / 0.02; break;
        case T_DENSE2_W: case T_DENSE_A2_W: case T_DENSE_B2_W:
            scale = 1.5 / sqrt((double)inner) / 0.02; break;
        case T_RANDOM: case T_RANDOM_A: case T_RANDOM_B: scale = 1.0; break;
        case T_OUTPUT_NORM_W: case T_ATTN_NORM_W: case T_FFN_NORM_W: base = 1.0; bias_std = 0.3; break;
        case T_MIX: bias_std = 1.5; break;
        default: bias_std = 0.2; break; /* biases and norm biases */
        }
        for (int64_t e = 0; e < ne; e++) {
            if (scale != 0.0) p[i][e] = (float)(p[i][e] * scale);
            else p[i][e] = (float)(base + bias_std * arch_rng_normal(&rng));
        }
        if (t[i].kind == T_MIX) /* keep alpha away from 0 so both parts are unequal */
            for (int64_t e = 0; e < ne; e++)
                if (fabsf(p[i][e]) < 0.3f) p[i][e] = p[i][e] < 0 ? -0.7f : 0.7f;
    }
    free(t);
}

int ref_model_init(ref_model *rm, const arch_hparams *hp, const float *const *p)
{
    memset(rm, 0, sizeof *rm);
    rm->hp = *hp;
    rm->n_t = arch_tensors(hp, NULL, 0);
    rm->t = calloc((size_t)rm->n_t, sizeof *rm->t);
    rm->w = calloc((size_t)rm->n_t, sizeof *rm->w);
    rm->idx = malloc(sizeof(int) * (size_t)(hp->n_layer + 1) * T_N_KINDS);
    if (!rm->t || !rm->w || !rm->idx) return -1;
    arch_tensors(hp, rm->t, rm->n_t);
    for (int i = 0; i < (hp->n_layer + 1) * T_N_KINDS; i++) rm->idx[i] = -1;
    for (int i = 0; i < rm->n_t; i++) {
        const arch_tensor *t = &rm->t[i];
        rm->w[i] = malloc(sizeof(double) * (size_t)t->n_elem);
        if (!rm->w[i]) return -1;
        for (int64_t e = 0; e < t->n_elem; e++) rm->w[i][e] = p[i][e];
        rm->idx[(t->layer + 1) * T_N_KINDS + t->kind] = i;
    }
    return 0;
}

void ref_model_free(ref_model *rm)
{
    if (rm->w)
        for (int i = 0; i < rm->n_t; i++) free(rm->w[i]);
    free(rm->w);
    free(rm->t);
    free(rm->idx);
    memset(rm, 0, sizeof *rm);
}

const double *ref_w(const ref_model *rm, int layer, arch_kind k)
{
    int i = rm->idx[(layer + 1) * T_N_KINDS + k];
    return i < 0 ? NULL : rm->w[i];
}

void ref_layernorm(const double *x, const double *w, const double *b, int d, double eps, double *out)
{
    double mean = 0.0, var = 0.0;
    for (int e = 0; e < d; e++) mean += x[e];
    mean /= d;
    for (int e = 0; e < d; e++) var += (x[e] - mean) * (x[e] - mean);
    var /= d;
    double inv = 1.0 / sqrt(var + eps);
    for (int e = 0; e < d; e++) out[e] = (x[e] - mean) * inv * w[e] + b[e];
}

void ref_linear(const double *W, const double *b, const double *x, int n_in, int o0, int n_out, double *out)
{
    for (int o = 0; o < n_out; o++) {
        double s = b ? b[o0 + o] : 0.0;
        for (int i = 0; i < n_in; i++) s += W[(int64_t)(o0 + o) * n_in + i] * x[i];
        out[o] = s;
    }
}

double ref_gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double ref_relu(double x) { return x > 0.0 ? x : 0.0; }

void ref_synth_logits(const ref_model *rm, int il, int h, int i, const double *ui, double *S)
{
    const arch_hparams *hp = &rm->hp;
    const int d = hp->n_embd, H = hp->n_head, dh = d / H, L = hp->n_ctx;
    arch_variant v = hp->variant;
    if (arch_has_random(v)) {
        const double *R = ref_w(rm, il, T_RANDOM); /* [H, L, L] */
        for (int j = 0; j <= i; j++) S[j] = R[((int64_t)h * L + i) * L + j];
    } else if (arch_has_factorized_random(v)) {
        const int k = hp->fr_rank;
        const double *R1 = ref_w(rm, il, T_RANDOM_A), *R2 = ref_w(rm, il, T_RANDOM_B); /* [H, L, k] */
        for (int j = 0; j <= i; j++) {
            double s = 0.0;
            for (int r = 0; r < k; r++) s += R1[((int64_t)h * L + i) * k + r] * R2[((int64_t)h * L + j) * k + r];
            S[j] = s;
        }
    } else if (arch_has_dense(v)) {
        double *z = malloc(sizeof(double) * (size_t)dh);
        ref_linear(ref_w(rm, il, T_DENSE1_W), ref_w(rm, il, T_DENSE1_B), ui, d, h * dh, dh, z);
        for (int e = 0; e < dh; e++) z[e] = ref_relu(z[e]);
        const double *W2 = ref_w(rm, il, T_DENSE2_W), *b2 = ref_w(rm, il, T_DENSE2_B); /* [H, L, dh], [H, L] */
        for (int j = 0; j <= i; j++) {
            double s = b2[(int64_t)h * L + j];
            for (int e = 0; e < dh; e++) s += W2[((int64_t)h * L + j) * dh + e] * z[e];
            S[j] = s;
        }
        free(z);
    } else if (arch_has_factorized_dense(v)) {
        const int a = hp->fd_a, b = hp->fd_b;
        double *z = malloc(sizeof(double) * (size_t)dh);
        double *Av = malloc(sizeof(double) * (size_t)a), *Bv = malloc(sizeof(double) * (size_t)b);
        const double *A2 = ref_w(rm, il, T_DENSE_A2_W), *bA2 = ref_w(rm, il, T_DENSE_A2_B); /* [H, a, dh], [H, a] */
        const double *B2 = ref_w(rm, il, T_DENSE_B2_W), *bB2 = ref_w(rm, il, T_DENSE_B2_B); /* [H, b, dh], [H, b] */
        ref_linear(ref_w(rm, il, T_DENSE_A1_W), ref_w(rm, il, T_DENSE_A1_B), ui, d, h * dh, dh, z);
        for (int e = 0; e < dh; e++) z[e] = ref_relu(z[e]);
        for (int p = 0; p < a; p++) {
            double s = bA2[(int64_t)h * a + p];
            for (int e = 0; e < dh; e++) s += A2[((int64_t)h * a + p) * dh + e] * z[e];
            Av[p] = s;
        }
        ref_linear(ref_w(rm, il, T_DENSE_B1_W), ref_w(rm, il, T_DENSE_B1_B), ui, d, h * dh, dh, z);
        for (int e = 0; e < dh; e++) z[e] = ref_relu(z[e]);
        for (int q = 0; q < b; q++) {
            double s = bB2[(int64_t)h * b + q];
            for (int e = 0; e < dh; e++) s += B2[((int64_t)h * b + q) * dh + e] * z[e];
            Bv[q] = s;
        }
        for (int j = 0; j <= i; j++) S[j] = Av[j % a] * Bv[j / a];
        free(z);
        free(Av);
        free(Bv);
    } else {
        for (int j = 0; j <= i; j++) S[j] = 0.0;
    }
}

int ref_forward(const ref_model *rm, const int32_t *tokens, int n, double *logits, double *hidden)
{
    const arch_hparams *hp = &rm->hp;
    const int d = hp->n_embd, H = hp->n_head, dh = d / H, F = hp->n_ff, V = hp->n_vocab;
    const double eps = hp->ln_eps;
    const arch_variant var = hp->variant;
    if (n < 1 || n > hp->n_ctx) return -1;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V) return -1;

    double *x = malloc(sizeof(double) * (size_t)n * d);
    double *u = malloc(sizeof(double) * (size_t)n * d);
    double *q = malloc(sizeof(double) * (size_t)n * d);
    double *k = malloc(sizeof(double) * (size_t)n * d);
    double *vv = malloc(sizeof(double) * (size_t)n * d);
    double *y = malloc(sizeof(double) * (size_t)n * d);
    double *o = malloc(sizeof(double) * (size_t)d);
    const int glu = hp->ffn == ARCH_FFN_GEGLU; /* ffn_up [2F, d]: gate rows, then linear rows */
    double *ff = malloc(sizeof(double) * (size_t)F * (glu ? 2 : 1));
    double *S = malloc(sizeof(double) * (size_t)n);
    double *P = malloc(sizeof(double) * (size_t)n);

    const double *E = ref_w(rm, -1, T_TOKEN_EMBD), *PE = ref_w(rm, -1, T_POS_EMBD);
    for (int i = 0; i < n; i++)
        for (int e = 0; e < d; e++) x[(int64_t)i * d + e] = E[(int64_t)tokens[i] * d + e] + PE[(int64_t)i * d + e];

    for (int il = 0; il < hp->n_layer; il++) {
        for (int i = 0; i < n; i++) {
            ref_layernorm(x + (int64_t)i * d, ref_w(rm, il, T_ATTN_NORM_W), ref_w(rm, il, T_ATTN_NORM_B), d, eps,
                          u + (int64_t)i * d);
            ref_linear(ref_w(rm, il, T_ATTN_V_W), ref_w(rm, il, T_ATTN_V_B), u + (int64_t)i * d, d, 0, d,
                       vv + (int64_t)i * d);
            if (arch_has_vanilla(var)) {
                ref_linear(ref_w(rm, il, T_ATTN_Q_W), ref_w(rm, il, T_ATTN_Q_B), u + (int64_t)i * d, d, 0, d,
                           q + (int64_t)i * d);
                ref_linear(ref_w(rm, il, T_ATTN_K_W), ref_w(rm, il, T_ATTN_K_B), u + (int64_t)i * d, d, 0, d,
                           k + (int64_t)i * d);
            }
        }
        for (int h = 0; h < H; h++)
            for (int i = 0; i < n; i++) {
                ref_synth_logits(rm, il, h, i, u + (int64_t)i * d, S);
                if (arch_has_vanilla(var)) {
                    double mix = arch_has_mix(var) ? ref_sigmoid(ref_w(rm, il, T_MIX)[h]) : 0.0;
                    for (int j = 0; j <= i; j++) {
                        double qk = 0.0;
                        for (int e = 0; e < dh; e++)
                            qk += q[(int64_t)i * d + h * dh + e] * k[(int64_t)j * d + h * dh + e];
                        qk /= sqrt((double)dh);
                        S[j] = arch_has_mix(var) ? (1.0 - mix) * qk + mix * S[j] : qk;
                    }
                }
                double mx = S[0], sum = 0.0;
                for (int j = 1; j <= i; j++) mx = S[j] > mx ? S[j] : mx;
                for (int j = 0; j <= i; j++) sum += (P[j] = exp(S[j] - mx));
                for (int e = 0; e < dh; e++) {
                    double s = 0.0;
                    for (int j = 0; j <= i; j++) s += P[j] / sum * vv[(int64_t)j * d + h * dh + e];
                    y[(int64_t)i * d + h * dh + e] = s;
                }
            }
        for (int i = 0; i < n; i++) {
            double *xi = x + (int64_t)i * d;
            ref_linear(ref_w(rm, il, T_ATTN_O_W), ref_w(rm, il, T_ATTN_O_B), y + (int64_t)i * d, d, 0, d, o);
            for (int e = 0; e < d; e++) xi[e] += o[e];
            ref_layernorm(xi, ref_w(rm, il, T_FFN_NORM_W), ref_w(rm, il, T_FFN_NORM_B), d, eps, u + (int64_t)i * d);
            ref_linear(ref_w(rm, il, T_FFN_UP_W), ref_w(rm, il, T_FFN_UP_B), u + (int64_t)i * d, d, 0,
                       glu ? 2 * F : F, ff);
            for (int f = 0; f < F; f++) ff[f] = glu ? ref_gelu(ff[f]) * ff[F + f] : ref_gelu(ff[f]);
            ref_linear(ref_w(rm, il, T_FFN_DOWN_W), ref_w(rm, il, T_FFN_DOWN_B), ff, F, 0, d, o);
            for (int e = 0; e < d; e++) xi[e] += o[e];
        }
    }
    if (hidden) memcpy(hidden, x, sizeof(double) * (size_t)n * d);
    if (logits)
        for (int i = 0; i < n; i++) {
            ref_layernorm(x + (int64_t)i * d, ref_w(rm, -1, T_OUTPUT_NORM_W), ref_w(rm, -1, T_OUTPUT_NORM_B), d, eps, o);
            for (int t = 0; t < V; t++) {
                double s = 0.0;
                for (int e = 0; e < d; e++) s += o[e] * E[(int64_t)t * d + e];
                logits[(int64_t)i * V + t] = s;
            }
        }
    free(x); free(u); free(q); free(k); free(vv); free(y); free(o); free(ff); free(S); free(P);
    return 0;
}

double ref_logprob(const double *row, int V, int t)
{
    double mx = row[0], s = 0.0;
    for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < V; i++) s += exp(row[i] - mx);
    return row[t] - mx - log(s);
}

int ref_argmax(const double *row, int V, double *gap)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (row[i] > row[best]) best = i;
    double second = -INFINITY;
    for (int i = 0; i < V; i++)
        if (i != best && row[i] > second) second = row[i];
    if (gap) *gap = row[best] - second;
    return best;
}

void ref_static_attention(const ref_model *rm, int il, int h, double *out)
{
    const int L = rm->hp.n_ctx;
    double *S = malloc(sizeof(double) * (size_t)L);
    for (int i = 0; i < L; i++) {
        ref_synth_logits(rm, il, h, i, NULL, S);
        double mx = S[0], sum = 0.0;
        for (int j = 1; j <= i; j++) mx = S[j] > mx ? S[j] : mx;
        for (int j = 0; j <= i; j++) sum += exp(S[j] - mx);
        for (int j = 0; j < L; j++) out[(int64_t)i * L + j] = j <= i ? exp(S[j] - mx) / sum : 0.0;
    }
    free(S);
}
