/* train_kern.c - vectorized f32 kernels of the trainer (see train_kern.h). */
#include "train_kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8 ld(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 set1(float x) { return (v8){x, x, x, x, x, x, x, x}; }
static inline v8 sel(v8i m, v8 a, v8 b) { return (v8)((m & (v8i)a) | (~m & (v8i)b)); }
static inline v8 vmax(v8 a, v8 b) { return sel(a > b, a, b); }
static inline v8 vmin(v8 a, v8 b) { return sel(a < b, a, b); }
static inline float hsum(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }
static inline float hmax(v8 v)
{
    float m = v[0];
    for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
    return m;
}

#define EXP_LO (-87.3f)
#define EXP_HI 88.0f

/* exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (two-part ln 2),
 * exp(r) by a degree-6 polynomial (Cephes expf coefficients). */
static inline v8 vexp(v8 x)
{
    const v8 magic = set1(12582912.0f); /* 1.5 * 2^23 rounds to an integer */
    x = vmin(vmax(x, set1(EXP_LO)), set1(EXP_HI));
    v8 n = (x * set1(1.44269504088896341f) + magic) - magic;
    v8 r = x - n * set1(0.693359375f) - n * set1(-2.12194440e-4f);
    v8 p = set1(1.9875691500e-4f);
    p = p * r + set1(1.3981999507e-3f);
    p = p * r + set1(8.3334519073e-3f);
    p = p * r + set1(4.1665795894e-2f);
    p = p * r + set1(1.6666665459e-1f);
    p = p * r + set1(5.0000001201e-1f);
    p = p * r * r + r + set1(1.0f);
    v8i e = (__builtin_convertvector(n, v8i) + 127) << 23;
    return p * (v8)e;
}

static inline float sexp(float x)
{
    v8 v = vexp(set1(x));
    return v[0];
}

#define GC 0.7978845608028654f
#define GK 0.044715f

void tk_gelu_forward(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8 v = ld(x + i);
        v8 z = set1(-2.0f * GC) * (v + set1(GK) * v * v * v);
        st(y + i, v / (set1(1.0f) + vexp(z)));
    }
    for (; i < n; i++) {
        float v = x[i];
        y[i] = v / (1.0f + sexp(-2.0f * GC * (v + GK * v * v * v)));
    }
}

void tk_gelu_backward(const float *x, size_t n, const float *dy, float *dx)
{
    size_t i = 0;
    const v8 one = set1(1.0f);
    for (; i + 8 <= n; i += 8) {
        v8 v = ld(x + i);
        v8 v2 = v * v;
        v8 s = one / (one + vexp(set1(-2.0f * GC) * (v + set1(GK) * v2 * v)));
        /* gelu' = s + 2 x s (1 - s) c (1 + 3 k x^2), s = sigmoid(2u) */
        v8 g = s + set1(2.0f * GC) * v * s * (one - s) * (one + set1(3.0f * GK) * v2);
        st(dx + i, ld(dy + i) * g);
    }
    for (; i < n; i++) {
        float v = x[i], s = 1.0f / (1.0f + sexp(-2.0f * GC * (v + GK * v * v * v)));
        dx[i] = dy[i] * (s + 2.0f * GC * v * s * (1.0f - s) * (1.0f + 3.0f * GK * v * v));
    }
}

float tk_max(const float *x, size_t n)
{
    size_t i = 0;
    float m = x[0];
    if (n >= 8) {
        v8 vm = ld(x);
        for (i = 8; i + 8 <= n; i += 8) vm = vmax(vm, ld(x + i));
        m = hmax(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

float tk_exp_sub_sum(float *x, size_t n, float sub)
{
    size_t i = 0;
    v8 acc = set1(0.0f);
    const v8 vs = set1(sub);
    for (; i + 8 <= n; i += 8) {
        v8 e = vexp(ld(x + i) - vs);
        st(x + i, e);
        acc += e;
    }
    float s = hsum(acc);
    for (; i < n; i++) {
        x[i] = sexp(x[i] - sub);
        s += x[i];
    }
    return s;
}

void tk_scale(float *x, size_t n, float s)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(x + i, ld(x + i) * set1(s));
    for (; i < n; i++) x[i] *= s;
}

static float dot(const float *a, const float *b, int n)
{
    int i = 0;
    v8 acc = set1(0.0f);
    for (; i + 8 <= n; i += 8) acc += ld(a + i) * ld(b + i);
    float s = hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void tk_layernorm_forward(float *Y, float *mu, float *rs, const float *X, const float *w, const float *b, int N,
                          int d, float eps)
{
    for (int r = 0; r < N; r++) {
        const float *x = X + (size_t)r * d;
        float *y = Y + (size_t)r * d;
        int i = 0;
        v8 acc = set1(0.0f);
        for (; i + 8 <= d; i += 8) acc += ld(x + i);
        float s = hsum(acc);
        for (; i < d; i++) s += x[i];
        float m = s / (float)d;
        acc = set1(0.0f);
        for (i = 0; i + 8 <= d; i += 8) {
            v8 t = ld(x + i) - set1(m);
            acc += t * t;
        }
        float v = hsum(acc);
        for (; i < d; i++) v += (x[i] - m) * (x[i] - m);
        float rr = 1.0f / sqrtf(v / (float)d + eps);
        for (i = 0; i + 8 <= d; i += 8) st(y + i, (ld(x + i) - set1(m)) * set1(rr) * ld(w + i) + ld(b + i));
        for (; i < d; i++) y[i] = (x[i] - m) * rr * w[i] + b[i];
        mu[r] = m;
        rs[r] = rr;
    }
}

void tk_layernorm_backward(const float *mu, const float *rs, const float *X, const float *w, int N, int d,
                           const float *dY, float *dX, float *dw, float *db)
{
    for (int r = 0; r < N; r++) {
        const float *x = X + (size_t)r * d, *dy = dY + (size_t)r * d;
        float *dx = dX + (size_t)r * d;
        const v8 m = set1(mu[r]), rr = set1(rs[r]);
        v8 a1 = set1(0.0f), a2 = set1(0.0f);
        int i = 0;
        for (; i + 8 <= d; i += 8) {
            v8 xh = (ld(x + i) - m) * rr, g = ld(dy + i), gw = g * ld(w + i);
            a1 += gw;
            a2 += gw * xh;
            st(dw + i, ld(dw + i) + g * xh);
            st(db + i, ld(db + i) + g);
        }
        float s1 = hsum(a1), s2 = hsum(a2);
        for (; i < d; i++) {
            float xh = (x[i] - mu[r]) * rs[r], gw = dy[i] * w[i];
            s1 += gw;
            s2 += gw * xh;
            dw[i] += dy[i] * xh;
            db[i] += dy[i];
        }
        s1 /= (float)d;
        s2 /= (float)d;
        for (i = 0; i + 8 <= d; i += 8) {
            v8 xh = (ld(x + i) - m) * rr;
            st(dx + i, ld(dx + i) + rr * (ld(dy + i) * ld(w + i) - set1(s1) - xh * set1(s2)));
        }
        for (; i < d; i++) {
            float xh = (x[i] - mu[r]) * rs[r];
            dx[i] += rs[r] * (dy[i] * w[i] - s1 - xh * s2);
        }
    }
}

void tk_causal_softmax_forward(float *P, int T)
{
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * T;
        size_t len = (size_t)i + 1;
        float s = tk_exp_sub_sum(p, len, tk_max(p, len));
        tk_scale(p, len, 1.0f / s);
        memset(p + len, 0, (size_t)(T - 1 - i) * sizeof(float));
    }
}

void tk_causal_softmax_backward(const float *P, int T, float *dP)
{
    for (int i = 0; i < T; i++) {
        const float *p = P + (size_t)i * T;
        float *d = dP + (size_t)i * T;
        int len = i + 1, j = 0;
        float s = dot(d, p, len);
        for (; j + 8 <= len; j += 8) st(d + j, ld(p + j) * (ld(d + j) - set1(s)));
        for (; j < len; j++) d[j] = p[j] * (d[j] - s);
        memset(d + len, 0, (size_t)(T - len) * sizeof(float));
    }
}

void tk_add(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(y + i, ld(y + i) + ld(x + i));
    for (; i < n; i++) y[i] += x[i];
}

void tk_add3(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(y + i, ld(a + i) + ld(b + i));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

typedef uint8_t v8u8 __attribute__((vector_size(8)));

void tk_dropout_apply(float *y, const float *x, const unsigned char *m, size_t n, float s)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8u8 mb;
        memcpy(&mb, m + i, 8);
        v8 mf = __builtin_convertvector(__builtin_convertvector(mb, v8i), v8);
        st(y + i, ld(x + i) * mf * set1(s));
    }
    for (; i < n; i++) y[i] = m[i] ? x[i] * s : 0.0f;
}

void tk_colsum_add(float *y, const float *X, int N, int n, int ldx)
{
    for (int r = 0; r < N; r++) tk_add(y, X + (size_t)r * ldx, (size_t)n);
}

void tk_adamw(float *p, const float *g, float *m, float *v, size_t n, float gscale, float lr, float beta1,
              float beta2, float eps, float decay, float c1, float c2)
{
    const float b1 = 1 - beta1, b2 = 1 - beta2, wd = lr * decay;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8 gi = ld(g + i) * set1(gscale);
        v8 mi = set1(beta1) * ld(m + i) + set1(b1) * gi, vi = set1(beta2) * ld(v + i) + set1(b2) * gi * gi;
        st(m + i, mi);
        st(v + i, vi);
        v8 vh = vi * set1(c2), den;
        for (int k = 0; k < 8; k++) den[k] = sqrtf(vh[k]);
        v8 pi = ld(p + i);
        st(p + i, pi - set1(lr) * (mi * set1(c1)) / (den + set1(eps)) - set1(wd) * pi);
    }
    for (; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = beta1 * m[i] + b1 * gi, vi = beta2 * v[i] + b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * c1) / (sqrtf(vi * c2) + eps) + wd * p[i];
    }
}

double tk_sumsq(const float *x, size_t n)
{
    double s = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8 a = ld(x + i), q = a * a;
        s += (double)hsum(q);
    }
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
