/*
 * kern_avx512vnni.c - the int8-activation kernels (kern.h, idea 3) of the
 * AVX-512 level on a CPU with VNNI: kern_i8.inc with one zmm per panel,
 * 4 rows x 2 panels per pass (8 int32 and 8 float accumulators). vpdpbusd
 * multiplies unsigned by signed bytes, so the activations enter as
 * u = q + 128 and each block's sum is corrected by 128 * sum w, stored with
 * the panel: exact, so the bits are the other levels'. Compiled with
 * -march=x86-64-v4 -mavx512vnni whatever ARCH is (see the Makefile);
 * kern.c calls it only on a CPU that has AVX-512 and VNNI (without VNNI
 * the AVX-512 level uses the AVX2 int8 kernels).
 */
#include "kern.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#include <string.h>

#include "quant.h"

typedef __m512 vf;
typedef __m512i vi;
#define VIL 16
#define I8_RMAX 4
#define I8_GP 2
#define I8_ZERO() _mm512_setzero_si512()
#define I8_BCAST(p) _mm512_set1_epi32((int)i8_load_u32(p))
#define I8_LOADW(p) _mm512_loadu_si512((const void *)(p))
#define I8_LOADS(p) _mm512_loadu_si512((const void *)(p))
#define I8_DOT(acc, bx, w) _mm512_dpbusd_epi32(acc, bx, w)
#define I8_FIX(acc, s) _mm512_sub_epi32(acc, s)
#define I8_CVT(v) _mm512_cvtepi32_ps(v)
#define VFZERO() _mm512_setzero_ps()
#define VFSET1(x) _mm512_set1_ps(x)
#define VFLOAD(p) _mm512_loadu_ps(p)
#define VFSTORE(p, v) _mm512_storeu_ps(p, v)
#define VFSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define VFFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFMUL(a, b) _mm512_mul_ps(a, b)
#define I8_FN i8_avx512vnni
#define I8Q_FN i8q_avx512vnni
static inline uint32_t I8Q_AMAX(const float *x)
{
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    __m512i a = _mm512_max_epu32(_mm512_and_si512(_mm512_loadu_si512((const void *)x), m),
                                 _mm512_and_si512(_mm512_loadu_si512((const void *)(x + 16)), m));
    return _mm512_reduce_max_epu32(a);
}
static inline void I8Q_STORE(const float *x, float id, uint8_t *xq)
{
    const __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int i = 0; i < 2; i++) { /* max(v, lo): lo when v is NaN, as fmaxf */
        __m512i q = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vid), lo), hi));
        __m128i b = _mm512_cvtepi32_epi8(q); /* |q| <= 127: truncation is exact */
        _mm_storeu_si128((__m128i *)(xq + 16 * i), _mm_xor_si128(b, _mm_set1_epi8((char)0x80)));
    }
}
#include "kern_i8.inc"

const kern_i8_fn kern_i8_avx512vnni = i8_avx512vnni;
const kern_i8q_fn kern_i8q_avx512vnni = i8q_avx512vnni;
#else
const kern_i8_fn kern_i8_avx512vnni = 0;
const kern_i8q_fn kern_i8q_avx512vnni = 0;
#endif
