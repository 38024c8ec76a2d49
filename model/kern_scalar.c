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

/* the int8-activation kernels (kern_i8.inc): one output per "vector",
 * plain integer arithmetic, and fmaf for the one rounding per block so the
 * bits are the SIMD levels' */
#include <math.h>
typedef int32_t vi;
#define VIL 1
#define I8_RMAX 1
#define I8_GP 1
#define I8_ZERO() 0
#define I8_BCAST(p) i8_load_u32(p)
#define I8_LOADW(p) i8_load_u32(p)
#define I8_LOADS(p) (*(p))
#define I8_DOT(acc, bx, w) ((acc) + dot4((bx), (w)))
#define I8_FIX(acc, s) ((void)(s), (acc))
#define I8_CVT(v) ((float)(v))
#define VFZERO() 0.0f
#define VFSET1(x) (x)
#define VFLOAD(p) (*(p))
#define VFSTORE(p, v) (*(p) = (v))
#define VFSTORE_N(p, v, n) ((void)(n))
#define VFFMA(a, b, c) fmaf(a, b, c)
#define VFMUL(a, b) ((a) * (b))
#define I8_FN i8_scalar
#define I8Q_FN i8q_scalar
/* sum over the 4 bytes of (u - 128) * w: u the activations' q + 128 */
static inline int32_t dot4(uint32_t u, uint32_t w)
{
    int32_t s = 0;
    for (int i = 0; i < 4; i++) s += ((int32_t)((u >> 8 * i) & 255) - 128) * (int8_t)(uint8_t)(w >> 8 * i);
    return s;
}
static inline uint32_t I8Q_AMAX(const float *x)
{
    uint32_t m = 0;
    for (int j = 0; j < QUANT_BLOCK; j++) {
        uint32_t u;
        memcpy(&u, &x[j], 4);
        u &= 0x7fffffffu;
        m = u > m ? u : m;
    }
    return m;
}
static inline void I8Q_STORE(const float *x, float id, uint8_t *xq)
{
    for (int j = 0; j < QUANT_BLOCK; j++) {
        float v = fminf(fmaxf(x[j] * id, -127.0f), 127.0f);
        xq[j] = (uint8_t)((int)rintf(v) + 128);
    }
}
#include "kern_i8.inc"

const kern_group_fn kern_group_scalar = group_scalar;
const kern_i8_fn kern_i8_scalar = i8_scalar;
const kern_i8q_fn kern_i8q_scalar = i8q_scalar;
const kern_wsum_fn kern_wsum_scalar = wsum_scalar;
const kern_qk_fn kern_qk_scalar = qk_scalar;
const kern_f16_fn kern_f16_scalar = tof16_scalar;
