/*
 * quant.c - F32 / F16 / Q8_0 / Q4_0 encodings (ggml block layouts, quant.h).
 *
 * Dequantization sits on the inference hot path (matmuls expand blocks of
 * weight rows into scratch before cblas_sgemm), so its loops are written
 * branch-free over fixed 32-element blocks: gcc -O2 -march=native turns them
 * into SIMD code. Quantization runs once per checkpoint conversion and
 * follows ggml's reference rounding exactly, so our files are byte-identical
 * to what ggml's reference quantizer would produce for the same floats.
 *
 * Byte order: the file format is little-endian and so is every machine we
 * target (x86-64, aarch64); block scales are copied with memcpy, never
 * dereferenced through a cast, so unaligned source buffers are fine.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define QUANT_HAVE_F16C 1
#endif

_Static_assert(sizeof(quant_block_q8_0) == 34, "q8_0 block must be 34 bytes like ggml");
_Static_assert(sizeof(quant_block_q4_0) == 18, "q4_0 block must be 18 bytes like ggml");
_Static_assert(sizeof(float) == 4 && sizeof(uint32_t) == 4, "32-bit float");

static const quant_traits traits_f32 = {"f32", 1, 4};
static const quant_traits traits_f16 = {"f16", 1, 2};
static const quant_traits traits_q8_0 = {"q8_0", QUANT_BLOCK, sizeof(quant_block_q8_0)};
static const quant_traits traits_q4_0 = {"q4_0", QUANT_BLOCK, sizeof(quant_block_q4_0)};

const quant_traits *quant_get_traits(uint32_t type)
{
    switch (type) {
    case QUANT_F32: return &traits_f32;
    case QUANT_F16: return &traits_f16;
    case QUANT_Q8_0: return &traits_q8_0;
    case QUANT_Q4_0: return &traits_q4_0;
    default: return NULL;
    }
}

int quant_type_parse(const char *name, uint32_t *type)
{
    static const uint32_t ids[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};
    if (!name || !type) return -1;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcmp(name, quant_get_traits(ids[i])->name) == 0) {
            *type = ids[i];
            return 0;
        }
    return -1;
}

const char *quant_type_name(uint32_t type)
{
    const quant_traits *t = quant_get_traits(type);
    return t ? t->name : "?";
}

size_t quant_row_size(uint32_t type, uint64_t n)
{
    const quant_traits *t = quant_get_traits(type);
    if (!t || n % (uint64_t)t->block_size) return 0;
    uint64_t blocks = n / (uint64_t)t->block_size;
    if (blocks > SIZE_MAX / t->block_bytes) return 0;
    return (size_t)(blocks * t->block_bytes);
}

/* ---- f16 <-> f32 ---- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Branch-free (masks only) so that loops over it vectorize:
 *  normal:     rebias the exponent from 15 to 127: bits << 13 + (112 << 23)
 *  inf / nan:  the same plus another 112 << 23 lands on exponent 255,
 *              keeping the payload (a nan stays a nan)
 *  subnormal:  exactly mant * 2^-24, computed in float (no rounding: mant
 *              has 10 bits) */
static inline float f16_to_f32_inline(uint16_t h)
{
    uint32_t em = (uint32_t)h & 0x7fffu;
    uint32_t infnan = 0u - (uint32_t)(em >= 0x7c00u); /* all-ones masks */
    uint32_t sub = 0u - (uint32_t)(em < 0x0400u);
    uint32_t bits = (em << 13) + 0x38000000u + (infnan & 0x38000000u);
    bits = (bits & ~sub) | (f32_bits((float)(int32_t)em * 0x1p-24f) & sub);
    return bits_f32(bits | ((uint32_t)(h & 0x8000u) << 16));
}

float quant_f16_to_f32(uint16_t h) { return f16_to_f32_inline(h); }

/* Round to nearest, ties to even, like the hardware conversion (vcvtps2ph
 * with round-to-nearest). Overflow gives inf; nan stays a quiet nan with the
 * top payload bits kept. */
uint16_t quant_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) /* inf or nan */
        return sign | (x > 0x7f800000u ? (uint16_t)(0x7e00u | ((x >> 13) & 0x3ffu)) : 0x7c00u);
    if (x >= 0x477ff000u) /* >= 65520: halfway from 65504 to 2^16 rounds to inf */
        return sign | 0x7c00u;
    uint32_t e = x >> 23;
    if (e >= 113) { /* normal half: 2^-14 <= |f| */
        uint32_t mant = x & 0x7fffffu;
        uint32_t h = ((e - 112) << 10) | (mant >> 13);
        uint32_t rest = mant & 0x1fffu;
        /* a carry out of the mantissa correctly bumps the exponent */
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
        return sign | (uint16_t)h;
    }
    if (e < 102) /* |f| < 2^-25: rounds to zero (2^-25 itself ties to 0) */
        return sign;
    /* subnormal half: value in units of 2^-24 is m * 2^(e - 126) */
    uint32_t m = (x & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) q++; /* may carry into the smallest normal */
    return sign | (uint16_t)q;
}

/* ---- rows ---- */

static void dequant_f16(const uint8_t *restrict src, float *restrict dst, int64_t n)
{
    int64_t i = 0;
#ifdef QUANT_HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#endif
    /* portable path: copy a chunk to aligned halves, then a branch-free
     * loop the vectorizer handles */
    uint16_t h[32];
    for (; i + 32 <= n; i += 32) {
        memcpy(h, src + 2 * i, sizeof h);
        for (int j = 0; j < 32; j++) dst[i + j] = f16_to_f32_inline(h[j]);
    }
    for (; i < n; i++) {
        memcpy(h, src + 2 * i, 2);
        dst[i] = f16_to_f32_inline(h[0]);
    }
}

static inline float load_scale(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return f16_to_f32_inline(h);
}

static void dequant_q8_0(const uint8_t *restrict src, float *restrict dst, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * (int64_t)sizeof(quant_block_q8_0);
        const int8_t *restrict qs = (const int8_t *)(blk + 2);
        const float d = load_scale(blk);
        float *restrict y = dst + b * QUANT_BLOCK;
        for (int j = 0; j < QUANT_BLOCK; j++) y[j] = d * (float)qs[j];
    }
}

/* Two passes over the 16 packed bytes (low nibbles, then high) instead of
 * one pass storing y[j] and y[j + 16]: contiguous stores vectorize. */
static void dequant_q4_0(const uint8_t *restrict src, float *restrict dst, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * (int64_t)sizeof(quant_block_q4_0);
        const uint8_t *restrict qs = blk + 2;
        const float d = load_scale(blk);
        float *restrict y = dst + b * QUANT_BLOCK;
        for (int j = 0; j < QUANT_BLOCK / 2; j++) y[j] = d * (float)((int)(qs[j] & 0x0f) - 8);
        for (int j = 0; j < QUANT_BLOCK / 2; j++) y[j + QUANT_BLOCK / 2] = d * (float)((int)(qs[j] >> 4) - 8);
    }
}

void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    if (n <= 0) return;
    switch (type) {
    case QUANT_F32: memcpy(dst, src, (size_t)n * 4); break;
    case QUANT_F16: dequant_f16(src, dst, n); break;
    /* only whole blocks: a ragged tail is a caller bug (see quant.h) */
    case QUANT_Q8_0: dequant_q8_0(src, dst, n / QUANT_BLOCK); break;
    case QUANT_Q4_0: dequant_q4_0(src, dst, n / QUANT_BLOCK); break;
    default: break;
    }
}

/* ggml's reference q8_0: d = max|x| / 127, q = round(x / d) (half away from
 * zero), computed with the f32 scale (the f16 one is only what is stored).
 * Clamping first keeps a nan or inf input from reaching the int conversion. */
static void quant_q8_0(const float *x, uint8_t *dst, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x += QUANT_BLOCK) {
        uint8_t *blk = dst + b * (int64_t)sizeof(quant_block_q8_0);
        float amax = 0.0f;
        for (int j = 0; j < QUANT_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t hd = quant_f32_to_f16(d);
        memcpy(blk, &hd, 2);
        for (int j = 0; j < QUANT_BLOCK; j++) {
            float v = x[j] * id;
            v = v > 127.0f ? 127.0f : v;
            v = v < -127.0f ? -127.0f : v;
            v = v == v ? v : 0.0f;
            blk[2 + j] = (uint8_t)(int8_t)(int)roundf(v);
        }
    }
}

/* ggml's reference q4_0: m = the element of largest magnitude (with sign),
 * d = m / -8 so that m maps to -8 exactly, q = floor(x / d + 8.5) clamped to
 * 15 (the opposite extreme -m would be +8, one step out of range). */
static void quant_q4_0(const float *x, uint8_t *dst, int64_t nb)
{
    const int half = QUANT_BLOCK / 2;
    for (int64_t b = 0; b < nb; b++, x += QUANT_BLOCK) {
        uint8_t *blk = dst + b * (int64_t)sizeof(quant_block_q4_0);
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QUANT_BLOCK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t hd = quant_f32_to_f16(d);
        memcpy(blk, &hd, 2);
        for (int j = 0; j < half; j++) {
            int q[2];
            for (int k = 0; k < 2; k++) {
                float v = x[j + k * half] * id + 8.5f;
                v = v == v && v > 0.0f ? v : 0.0f;
                v = v < 15.0f ? v : 15.0f;
                q[k] = (int)v;
            }
            blk[2 + j] = (uint8_t)(q[0] | (q[1] << 4));
        }
    }
}

void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    if (n <= 0) return;
    switch (type) {
    case QUANT_F32: memcpy(dst, src, (size_t)n * 4); break;
    case QUANT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = quant_f32_to_f16(src[i]);
            memcpy((uint8_t *)dst + 2 * i, &h, 2);
        }
        break;
    case QUANT_Q8_0: quant_q8_0(src, dst, n / QUANT_BLOCK); break;
    case QUANT_Q4_0: quant_q4_0(src, dst, n / QUANT_BLOCK); break;
    default: break;
    }
}
