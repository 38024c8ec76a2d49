/*
 * kern_avx512.c - the AVX-512 level of the linear-layer kernels (kern.h):
 * kern_simd.inc with one zmm (16 floats) per panel and 4 panels per pass
 * (6 rows x 4 panels = 24 accumulators of the 32 registers). Compiled with
 * -march=x86-64-v4 whatever ARCH is (see the Makefile); kern.c calls it
 * only on a CPU that has AVX-512 F/BW/VL/DQ.
 */
#include "kern.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>
#include <math.h>

typedef __m512 vf;
#define VL 16
#define GP 4
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define VLOAD_N(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VI8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define VU4(p, hi) _mm512_cvtepi32_ps(vu4((const uint8_t *)(p), hi))
#define VF16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
static inline __m512i vu4(const uint8_t *p, int hi)
{
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    return hi ? _mm512_srli_epi32(v, 4) : _mm512_and_si512(v, _mm512_set1_epi32(15));
}
#define SFMA(a, b, c) fmaf(a, b, c)
#define KERN_FN group_avx512
#define WSUM_FN wsum_avx512
#define QK_FN qk_avx512
#define F16_FN tof16_avx512
#define VTOF16(p, v) _mm256_storeu_si256((__m256i *)(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
/* the fused kernel is faster than a converted tile up to this many rows
 * (measured per row count on q8_0, one thread) */
#define FUSED_MAX_N 9
#define WSUM_WS 16 /* a whole row of 256 values per pass: one stream through the value cache */
#include "kern_simd.inc"

/* ---- GELU and the softmax's exps, 16 lanes (kern_gelu_fn, kern_sum_exp_fn) ----
 * vec.h's exp and GELU instantiated for 16 floats: the same operations lane
 * by lane as ops.c's 8-wide versions, so the same bits. */
#include "vec.h"
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
static inline v16f v16_set1(float x) { return (v16f)_mm512_set1_ps(x); }
VEC_MATH_DEFINE(v16, v16f, v16i, v16_set1)

static void gelu_avx512(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, (__m512)v16_gelu((v16f)_mm512_loadu_ps(x + i)));
    if (i < n) { /* zeros in the unused lanes (GELU(0) = 0, nothing traps) */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, (__m512)v16_gelu((v16f)_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* ops.c's row_sum_exp, 16 exps at a time: the sum takes the two halves in
 * turn into the same 8 lanes, so it adds in ops.c's order (the same z). */
static float sum_exp_avx512(const float *x, int n, float mx, float *out)
{
    const v16f vm = v16_set1(mx);
    v8f s = v8_set1(0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f e = v16_exp((v16f)_mm512_loadu_ps(x + i) - vm);
        if (out) _mm512_storeu_ps(out + i, (__m512)e);
        s += __builtin_shufflevector(e, e, 0, 1, 2, 3, 4, 5, 6, 7);
        s += __builtin_shufflevector(e, e, 8, 9, 10, 11, 12, 13, 14, 15);
    }
    return v8_sum_exp_from(x, n, i, mx, out, s);
}

const kern_group_fn kern_group_avx512 = group_avx512;
const kern_wsum_fn kern_wsum_avx512 = wsum_avx512;
const kern_qk_fn kern_qk_avx512 = qk_avx512;
const kern_f16_fn kern_f16_avx512 = tof16_avx512;
const kern_gelu_fn kern_gelu_avx512 = gelu_avx512;
const kern_sum_exp_fn kern_sum_exp_avx512 = sum_exp_avx512;
#else
const kern_group_fn kern_group_avx512 = 0;
const kern_wsum_fn kern_wsum_avx512 = 0;
const kern_qk_fn kern_qk_avx512 = 0;
const kern_f16_fn kern_f16_avx512 = 0;
const kern_gelu_fn kern_gelu_avx512 = 0;
const kern_sum_exp_fn kern_sum_exp_avx512 = 0;
#endif
