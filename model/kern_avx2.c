/*
 * kern_avx2.c - the AVX2 level of the linear-layer kernels (kern.h):
 * kern_simd.inc with two ymm (8 floats each) per panel and 1 panel per pass
 * (6 rows x 2 = 12 accumulators of the 16 registers). Compiled with
 * -march=x86-64-v3 (AVX2, FMA, F16C) whatever ARCH is; kern.c calls it
 * only on a CPU that has them. Same operations in the same order as the
 * AVX-512 level, so the two give identical bits.
 */
#include "kern.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>

typedef __m256 vf;
#define VL 8
#define GP 1
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSTORE_N(p, v, n) _mm256_maskstore_ps(p, mask_n(n), v)
#define VLOAD_N(p, n) _mm256_maskload_ps(p, mask_n(n))
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VI8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
#define VU4(p, hi) _mm256_cvtepi32_ps(vu4((const uint8_t *)(p), hi))
#define VF16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
static inline __m256i mask_n(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i vu4(const uint8_t *p, int hi)
{
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return hi ? _mm256_srli_epi32(v, 4) : _mm256_and_si256(v, _mm256_set1_epi32(15));
}
#define SFMA(a, b, c) fmaf(a, b, c)
#define KERN_FN group_avx2
#define WSUM_FN wsum_avx2
#define QK_FN qk_avx2
#define F16_FN tof16_avx2
#define VTOF16(p, v) _mm_storeu_si128((__m128i *)(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
/* the fused kernel is faster than a converted tile up to this many rows
 * (measured per row count on q8_0, one thread) */
#define FUSED_MAX_N 4
#include "kern_simd.inc"

/* the int8-activation kernels (kern_i8.inc) without VNNI: vpmaddubsw
 * takes unsigned x signed bytes, so it gets |w| (<= 128) and q with w's
 * sign moved onto it (|q| <= 127): every pair sum is below 2^15 and
 * vpmaddwd adds the pairs exactly. */
typedef __m256i vi;
#define VIL 8
#define I8_RMAX 2
#define I8_GP 1
#define I8_ZERO() _mm256_setzero_si256()
#define I8_BCAST(p) _mm256_set1_epi32((int)i8_load_u32(p))
#define I8_LOADW(p) _mm256_loadu_si256((const __m256i *)(p))
#define I8_LOADS(p) _mm256_loadu_si256((const __m256i *)(p))
#define I8_DOT(acc, bx, w) dot4(acc, bx, w)
#define I8_FIX(acc, s) ((void)(s), (acc))
#define I8_CVT(v) _mm256_cvtepi32_ps(v)
#define VFZERO() _mm256_setzero_ps()
#define VFSET1(x) _mm256_set1_ps(x)
#define VFLOAD(p) _mm256_loadu_ps(p)
#define VFSTORE(p, v) _mm256_storeu_ps(p, v)
#define VFSTORE_N(p, v, n) _mm256_maskstore_ps(p, mask_n(n), v)
#define VFFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFMUL(a, b) _mm256_mul_ps(a, b)
#define I8_FN i8_avx2
#define I8Q_FN i8q_avx2
static inline __m256i dot4(__m256i acc, __m256i bx, __m256i w)
{
    const __m256i q = _mm256_xor_si256(bx, _mm256_set1_epi8((char)0x80)); /* u - 128 as signed bytes */
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(q, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
static inline uint32_t I8Q_AMAX(const float *x)
{
    const __m256i m = _mm256_set1_epi32(0x7fffffff);
    __m256i a = _mm256_setzero_si256();
    for (int j = 0; j < QUANT_BLOCK; j += 8)
        a = _mm256_max_epu32(a, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + j)), m));
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xB1));
    return (uint32_t)_mm_cvtsi128_si32(h);
}
static inline void I8Q_STORE(const float *x, float id, uint8_t *xq)
{
    const __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i q[4];
    for (int i = 0; i < 4; i++) /* max(v, lo): lo when v is NaN, as fmaxf */
        q[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), vid), lo), hi));
    /* the packs work per 128-bit lane: the 4-byte groups come out as
     * q0[0:4] q1[0:4] q2[0:4] q3[0:4] q0[4:8] q1[4:8] ..., put back in order */
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)xq, _mm256_xor_si256(b, _mm256_set1_epi8((char)0x80)));
}
#include "kern_i8.inc"

const kern_group_fn kern_group_avx2 = group_avx2;
const kern_i8_fn kern_i8_avx2 = i8_avx2;
const kern_i8q_fn kern_i8q_avx2 = i8q_avx2;
const kern_wsum_fn kern_wsum_avx2 = wsum_avx2;
const kern_qk_fn kern_qk_avx2 = qk_avx2;
const kern_f16_fn kern_f16_avx2 = tof16_avx2;
#else
const kern_group_fn kern_group_avx2 = 0;
const kern_i8_fn kern_i8_avx2 = 0;
const kern_i8q_fn kern_i8q_avx2 = 0;
const kern_wsum_fn kern_wsum_avx2 = 0;
const kern_qk_fn kern_qk_avx2 = 0;
const kern_f16_fn kern_f16_avx2 = 0;
#endif
