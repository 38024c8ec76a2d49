/*
 * kern_scalar.c - the portable level of the linear-layer kernels (kern.h):
 * kern_simd.inc with plain floats as "vectors" of one lane. Compiled for
 * the baseline of the target (-march=x86-64 on x86), without FMA, so its
 * sums round after every multiply and add: the same order as the SIMD
 * levels, not the same bits. The fallback for CPUs without AVX2, and the
 * reference the others are tested against.
 */
#include "kern.h"

#include <string.h>

typedef float vf;
#define VL 1
#define GP 1
#define VZERO() 0.0f
#define VSET1(x) (x)
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSTORE_N(p, v, n) ((void)(n))
#define VLOAD_N(p, n) ((n) ? *(p) : 0.0f)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VSUB(a, b) ((a) - (b))
#define VI8(p) ((float)*(const int8_t *)(p))
#define VU4(p, hi) ((float)((hi) ? *(const uint8_t *)(p) >> 4 : *(const uint8_t *)(p) & 15))
#define VF16(p) quant_f16_to_f32(load_u16(p))
static inline uint16_t load_u16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}
#define SFMA(a, b, c) ((a) * (b) + (c))
#define KERN_FN group_scalar
#define WSUM_FN wsum_scalar
#define QK_FN qk_scalar
#define F16_FN tof16_scalar
#define VTOF16(p, v) (*(p) = quant_f32_to_f16(v))
#include "kern_simd.inc"

const kern_group_fn kern_group_scalar = group_scalar;
const kern_wsum_fn kern_wsum_scalar = wsum_scalar;
const kern_qk_fn kern_qk_scalar = qk_scalar;
const kern_f16_fn kern_f16_scalar = tof16_scalar;
