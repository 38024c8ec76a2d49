/* train_kern.c - vectorized f32 kernels of the trainer (see train_kern.h). */
#include "train_kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vec.h"

#define GC 0.7978845608028654f
#define GK 0.044715f

void tk_gelu_forward(float *y, const float *x, size_t n)
{
    /* the inference GELU (vec.h), tail padded so every element gets the
     * same arithmetic */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(y + i, v8_gelu(v8_load(x + i)));
    if (i < n) v8_store_tail(y + i, v8_gelu(v8_load_tail(x + i, (int)(n - i), 0.0f)), (int)(n - i));
}

void tk_gelu_backward(const float *x, size_t n, const float *dy, float *dx)
{
    size_t i = 0;
    const v8f one = v8_set1(1.0f);
    for (; i + 8 <= n; i += 8) {
        v8f v = v8_load(x + i);
        v8f v2 = v * v;
        v8f s = one / (one + v8_exp(v8_set1(-2.0f * GC) * (v + v8_set1(GK) * v2 * v)));
        /* gelu' = s + 2 x s (1 - s) c (1 + 3 k x^2), s = sigmoid(2u) */
        v8f g = s + v8_set1(2.0f * GC) * v * s * (one - s) * (one + v8_set1(3.0f * GK) * v2);
        v8_store(dx + i, v8_load(dy + i) * g);
    }
    for (; i < n; i++) {
        float v = x[i], s = 1.0f / (1.0f + v8_exp1(-2.0f * GC * (v + GK * v * v * v)));
        dx[i] = dy[i] * (s + 2.0f * GC * v * s * (1.0f - s) * (1.0f + 3.0f * GK * v * v));
    }
}

float tk_max(const float *x, size_t n)
{
    size_t i = 0;
    float m = x[0];
    if (n >= 8) {
        v8f vm = v8_load(x);
        for (i = 8; i + 8 <= n; i += 8) vm = v8_max(vm, v8_load(x + i));
        m = v8_hmax(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

float tk_exp_sub_sum(float *x, size_t n, float sub)
{
    size_t i = 0;
    v8f acc = v8_set1(0.0f);
    const v8f vs = v8_set1(sub);
    for (; i + 8 <= n; i += 8) {
        v8f e = v8_exp(v8_load(x + i) - vs);
        v8_store(x + i, e);
        acc += e;
    }
    float s = v8_hsum(acc);
    for (; i < n; i++) {
        x[i] = v8_exp1(x[i] - sub);
        s += x[i];
    }
    return s;
}

void tk_scale(float *x, size_t n, float s)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_load(x + i) * v8_set1(s));
    for (; i < n; i++) x[i] *= s;
}

static float dot(const float *a, const float *b, int n)
{
    int i = 0;
    v8f acc = v8_set1(0.0f);
    for (; i + 8 <= n; i += 8) acc += v8_load(a + i) * v8_load(b + i);
    float s = v8_hsum(acc);
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
        v8f acc = v8_set1(0.0f);
        for (; i + 8 <= d; i += 8) acc += v8_load(x + i);
        float s = v8_hsum(acc);
        for (; i < d; i++) s += x[i];
        float m = s / (float)d;
        acc = v8_set1(0.0f);
        for (i = 0; i + 8 <= d; i += 8) {
            v8f t = v8_load(x + i) - v8_set1(m);
            acc += t * t;
        }
        float v = v8_hsum(acc);
        for (; i < d; i++) v += (x[i] - m) * (x[i] - m);
        float rr = 1.0f / sqrtf(v / (float)d + eps);
        for (i = 0; i + 8 <= d; i += 8) v8_store(y + i, (v8_load(x + i) - v8_set1(m)) * v8_set1(rr) * v8_load(w + i) + v8_load(b + i));
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
        const v8f m = v8_set1(mu[r]), rr = v8_set1(rs[r]);
        v8f a1 = v8_set1(0.0f), a2 = v8_set1(0.0f);
        int i = 0;
        for (; i + 8 <= d; i += 8) {
            v8f xh = (v8_load(x + i) - m) * rr, g = v8_load(dy + i), gw = g * v8_load(w + i);
            a1 += gw;
            a2 += gw * xh;
            v8_store(dw + i, v8_load(dw + i) + g * xh);
            v8_store(db + i, v8_load(db + i) + g);
        }
        float s1 = v8_hsum(a1), s2 = v8_hsum(a2);
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
            v8f xh = (v8_load(x + i) - m) * rr;
            v8_store(dx + i, v8_load(dx + i) + rr * (v8_load(dy + i) * v8_load(w + i) - v8_set1(s1) - xh * v8_set1(s2)));
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
        for (; j + 8 <= len; j += 8) v8_store(d + j, v8_load(p + j) * (v8_load(d + j) - v8_set1(s)));
        for (; j < len; j++) d[j] = p[j] * (d[j] - s);
        memset(d + len, 0, (size_t)(T - len) * sizeof(float));
    }
}

void tk_add(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(y + i, v8_load(y + i) + v8_load(x + i));
    for (; i < n; i++) y[i] += x[i];
}

void tk_add3(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(y + i, v8_load(a + i) + v8_load(b + i));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

typedef uint8_t v8u8 __attribute__((vector_size(8)));

void tk_dropout_apply(float *y, const float *x, const unsigned char *m, size_t n, float s)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8u8 mb;
        memcpy(&mb, m + i, 8);
        v8f mf = __builtin_convertvector(__builtin_convertvector(mb, v8i), v8f);
        v8_store(y + i, v8_load(x + i) * mf * v8_set1(s));
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
        v8f gi = v8_load(g + i) * v8_set1(gscale);
        v8f mi = v8_set1(beta1) * v8_load(m + i) + v8_set1(b1) * gi, vi = v8_set1(beta2) * v8_load(v + i) + v8_set1(b2) * gi * gi;
        v8_store(m + i, mi);
        v8_store(v + i, vi);
        v8f vh = vi * v8_set1(c2), den;
        for (int k = 0; k < 8; k++) den[k] = sqrtf(vh[k]);
        v8f pi = v8_load(p + i);
        v8_store(p + i, pi - v8_set1(lr) * (mi * v8_set1(c1)) / (den + v8_set1(eps)) - v8_set1(wd) * pi);
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
        v8f a = v8_load(x + i), q = a * a;
        s += (double)v8_hsum(q);
    }
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
