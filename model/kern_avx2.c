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

const kern_group_fn kern_group_avx2 = group_avx2;
const kern_wsum_fn kern_wsum_avx2 = wsum_avx2;
const kern_qk_fn kern_qk_avx2 = qk_avx2;
const kern_f16_fn kern_f16_avx2 = tof16_avx2;
#else
const kern_group_fn kern_group_avx2 = 0;
const kern_wsum_fn kern_wsum_avx2 = 0;
const kern_qk_fn kern_qk_avx2 = 0;
const kern_f16_fn kern_f16_avx2 = 0;
#endif
