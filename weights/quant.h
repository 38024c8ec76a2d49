/*
 * quant.h - tensor element types of the checkpoint (ggml's F32, F16, Q8_0,
 * Q4_0) with their exact block layouts, and conversion to and from f32.
 *
 * Layouts (identical to ggml, so any GGUF reader understands our files):
 *   F32   4 bytes per element.
 *   F16   IEEE 754 binary16, 2 bytes per element.
 *   Q8_0  blocks of 32 elements: { f16 d; int8 qs[32]; }           34 bytes
 *         x[i] = d * qs[i],  d = max|x| / 127.
 *   Q4_0  blocks of 32 elements: { f16 d; uint8 qs[16]; }          18 bytes
 *         x[j]    = d * ((qs[j] & 0x0F) - 8)     for j in [0, 16)
 *         x[j+16] = d * ((qs[j] >>   4) - 8)
 *         d = m / -8 where m is the element of largest magnitude (signed).
 *
 * All functions are pure and thread-safe. Row lengths given to the
 * (de)quantizers must be a multiple of the block size; callers check with
 * quant_row_size(), which returns 0 for invalid combinations (a ragged tail
 * is ignored, never read or written). Sources need no alignment.
 *
 * Quantization reproduces ggml's reference rounding bit for bit (q8_0:
 * q = round(x / d) half away from zero; q4_0: q = min(15, floor(x / d +
 * 8.5))), with nan/inf inputs clamped instead of undefined conversions.
 * Dequantization is the inference hot path: branch-free loops that gcc -O2
 * -march=native vectorizes (f16 uses F16C when the target has it).
 */
#ifndef QUANT_H
#define QUANT_H

#include <stddef.h>
#include <stdint.h>

/* ggml type ids as stored in GGUF tensor infos. */
enum quant_type {
    QUANT_F32 = 0,
    QUANT_F16 = 1,
    QUANT_Q4_0 = 2,
    QUANT_Q8_0 = 8,
};

#define QUANT_BLOCK 32 /* elements per Q8_0 / Q4_0 block */

/* The blocks as C structs (natural layout, no padding: 34 and 18 bytes). The
 * f16 scale d is stored as its raw bits, little-endian like the whole file. */
typedef struct {
    uint16_t d;               /* f16 scale */
    int8_t qs[QUANT_BLOCK];   /* x[i] = d * qs[i] */
} quant_block_q8_0;

typedef struct {
    uint16_t d;                   /* f16 scale */
    uint8_t qs[QUANT_BLOCK / 2];  /* low nibbles: x[0..15], high: x[16..31] */
} quant_block_q4_0;

typedef struct {
    const char *name;  /* "f32", "f16", "q8_0", "q4_0" */
    int block_size;    /* elements per block (1 for f32/f16) */
    size_t block_bytes;/* bytes per block */
} quant_traits;

/* Traits of a type id, or NULL when the id is not one we support. */
const quant_traits *quant_get_traits(uint32_t type);
/* Parse "f32"|"f16"|"q8_0"|"q4_0"; returns 0 and sets *type, or -1. */
int quant_type_parse(const char *name, uint32_t *type);
const char *quant_type_name(uint32_t type); /* "?" for unknown ids */

/* Bytes taken by n elements of the type; 0 if the type is unknown, n is not
 * a multiple of the block size, or the size would overflow. */
size_t quant_row_size(uint32_t type, uint64_t n);

/* Convert n elements (n a multiple of the block size) between f32 and the
 * type. quantize of F32 copies; of F16 rounds to nearest even. src and dst
 * must not overlap. */
void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* IEEE binary16 conversions: exact for every half (subnormals, +-0, inf;
 * nan stays nan); f32 -> f16 rounds to nearest even, overflow gives inf. */
uint16_t quant_f32_to_f16(float f);
float quant_f16_to_f32(uint16_t h);

#endif
