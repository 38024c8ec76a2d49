/*
 * vec.h - 8-float vector primitives shared by the kernels of inference
 * (ops.c) and training (train_kern.c), internal to model/.
 *
 * v8f is a GCC vector of 8 floats: one AVX register with -march=native (two
 * SSE registers without AVX), so the code stays portable C; conversions
 * GCC does badly through vector extensions (int8 -> float, FMA in ISO C
 * mode) use AVX2/FMA intrinsics under #if, with plain C fallbacks. Loads and
 * stores go through memcpy (unaligned moves). One exp and one GELU serve
 * both the forward pass and the trainer, so they compute the same function.
 */
#ifndef VEC_H
#define VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) || defined(__F16C__) || defined(__FMA__)
#include <immintrin.h>
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v8_load(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8_set1(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
/* Lane-wise select without the ?: operator (C has none for vectors). */
static inline v8f v8_select(v8i mask, v8f a, v8f b) { return (v8f)((mask & (v8i)a) | (~mask & (v8i)b)); }
static inline v8f v8_max(v8f a, v8f b) { return v8_select(a > b, a, b); }
typedef float v4f __attribute__((vector_size(16)));
static inline float v8_hsum(v8f v)
{
    v4f s = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    s += __builtin_shufflevector(s, s, 2, 3, 0, 1);
    s += __builtin_shufflevector(s, s, 1, 0, 3, 2);
    return s[0];
}
/* a * b + c, fused where the target has FMA (ISO C mode does not contract
 * a * b + c by itself). */
static inline v8f v8_fma(v8f a, v8f b, v8f c)
{
#if defined(__FMA__)
    return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}
static inline float v8_hmax(v8f v)
{
    float m = v[0];
    for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
    return m;
}
/* 8 bytes (signed or unsigned) widened to floats. GCC's generic
 * __builtin_convertvector does this lane by lane, so AVX2 gets the two
 * instructions it needs (sign/zero extend, then int -> float). */
static inline v8f v8_from_i8(const uint8_t *p)
{
#if defined(__AVX2__)
    return (v8f)_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
#else
    v8f v = v8_set1(0.0f);
    for (int i = 0; i < 8; i++) v[i] = (float)(int8_t)p[i];
    return v;
#endif
}
static inline v8f v8_from_u8(const uint8_t *p)
{
#if defined(__AVX2__)
    return (v8f)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
#else
    v8f v = v8_set1(0.0f);
    for (int i = 0; i < 8; i++) v[i] = (float)p[i];
    return v;
#endif
}

/* Load n < 8 floats, padding with `pad`. */
static inline v8f v8_load_tail(const float *p, int n, float pad)
{
    v8f v = v8_set1(pad);
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
}
static inline void v8_store_tail(float *p, v8f v, int n)
{
    for (int i = 0; i < n; i++) p[i] = v[i];
}

/* ---- exp ----
 * Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, then the Cephes
 * degree-6 polynomial for exp(r) and a scale by 2^n built in the exponent
 * bits. The clamp keeps 2^n a normal float (n in [-126, 127]), so no
 * special cases: exp(-inf) gives ~1e-38 instead of 0, which every caller
 * (softmax, sigmoid) tolerates. */
#define EXP_LO (-87.33654f)
#define EXP_HI 88.0f

/* exp and GELU are written once, for a vector type of any width (VF floats,
 * VI its int32 lanes, SET1 a broadcast, P the prefix of the names): v8 here,
 * v16 in the AVX-512 kernels (kern_avx512.c). ISO C mode contracts nothing,
 * so every width computes the same bits lane by lane. */
#define VEC_MATH_DEFINE(P, VF, VI, SET1)                                                   \
    static inline VF P##_exp(VF x)                                                         \
    {                                                                                      \
        const VF magic = SET1(12582912.0f); /* 1.5 * 2^23: rounds to integer */            \
        const VF lo = SET1(EXP_LO), hi = SET1(EXP_HI);                                     \
        x = (VF)(((x > lo) & (VI)x) | (~(x > lo) & (VI)lo)); /* NaN -> lo */              \
        x = (VF)(((x < hi) & (VI)x) | (~(x < hi) & (VI)hi));                               \
        VF n = (x * SET1(1.44269504088896341f) + magic) - magic;                           \
        VF r = x - n * SET1(0.693359375f) - n * SET1(-2.12194440e-4f);                     \
        VF p = SET1(1.9875691500e-4f);                                                     \
        p = p * r + SET1(1.3981999507e-3f);                                                \
        p = p * r + SET1(8.3334519073e-3f);                                                \
        p = p * r + SET1(4.1665795894e-2f);                                                \
        p = p * r + SET1(1.6666665459e-1f);                                                \
        p = p * r + SET1(5.0000001201e-1f);                                                \
        p = p * r * r + r + SET1(1.0f);                                                    \
        VI e = (__builtin_convertvector(n, VI) + 127) << 23;                               \
        return p * (VF)e;                                                                  \
    }                                                                                      \
    /* 0.5 x (1 + tanh(u)) = x * sigmoid(2u) = x / (1 + exp(-2u)). */                     \
    static inline VF P##_gelu(VF x)                                                        \
    {                                                                                      \
        const VF k = SET1(0.7978845608028654f); /* sqrt(2/pi) */                           \
        VF u = k * (x + SET1(0.044715f) * x * x * x);                                      \
        return x / (SET1(1.0f) + P##_exp(SET1(-2.0f) * u));                                \
    }

VEC_MATH_DEFINE(v8, v8f, v8i, v8_set1)

/* exp of one float with exactly the vector arithmetic */
static inline float v8_exp1(float x) { return v8_exp(v8_set1(x))[0]; }

/* sum_{j >= i} exp(x[j] - mx) added to the lanes of s, 8 at a time, then
 * the lanes summed; the exps are stored in out when it is not NULL. The
 * softmax's sum (ops.c) and its 16-wide version (kern_avx512.c) both end
 * here, so they add in one order. */
static inline float v8_sum_exp_from(const float *x, int n, int i, float mx, float *out, v8f s)
{
    const v8f vm = v8_set1(mx);
    for (; i + 8 <= n; i += 8) {
        v8f e = v8_exp(v8_load(x + i) - vm);
        if (out) v8_store(out + i, e);
        s += e;
    }
    if (i < n) {
        /* padding with mx - 200 makes the padded lanes contribute ~0 */
        v8f e = v8_exp(v8_load_tail(x + i, n - i, mx - 200.0f) - vm);
        for (int j = n - i; j < 8; j++) e[j] = 0.0f;
        if (out) v8_store_tail(out + i, e, n - i);
        s += e;
    }
    return v8_hsum(s);
}

#endif
