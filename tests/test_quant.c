/*
 * test_quant.c - tensor encodings (weights/quant.h) against independent
 * references: f16 values computed with ldexp, nearest-even rounding found by
 * search over all halves, hand-built blocks with known bytes, and derived
 * error bounds for q8_0 / q4_0.
 */
#include "quant.h"
#include "test.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

/* ---- small deterministic PRNG (independent of the code under test) ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1.0p-53; }
static float rnd_normal(void)
{
    double u1 = rnd_unit() + 1e-300, u2 = rnd_unit();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Reference value of a half from its fields (binary16: 1 sign, 5 exponent,
 * 10 mantissa bits, bias 15). */
static double half_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp((double)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

TEST(test_f16_all_halves)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_f16_to_f32((uint16_t)h);
        double ref = half_ref((uint16_t)h);
        if (isnan(ref)) {
            uint16_t back = quant_f32_to_f16(f);
            /* a nan stays a nan with its sign; quiet nans round trip exactly */
            if (!isnan(f) || (back & 0x7c00) != 0x7c00 || !(back & 0x3ff) || (back & 0x8000) != (h & 0x8000) ||
                ((h & 0x200) && back != h))
                bad++;
            continue;
        }
        if ((double)f != ref || !!signbit(f) != (int)(h >> 15)) bad++;
        if (quant_f32_to_f16(f) != h) bad++; /* exact round trip incl. -0, subnormals, inf */
    }
    CHECK_MSG(bad == 0, "%d halves wrong", bad);
}

TEST(test_f16_row_matches_scalar)
{
    /* the row path (F16C when available) must agree bit for bit; an odd
     * byte offset checks unaligned sources */
    uint8_t *raw = malloc(2 * 65536 + 1);
    float *out = malloc(65536 * sizeof(float));
    for (uint32_t h = 0; h < 65536; h++) memcpy(raw + 1 + 2 * h, &(uint16_t){(uint16_t)h}, 2);
    quant_dequantize_row(QUANT_F16, raw + 1, out, 65536);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float s = quant_f16_to_f32((uint16_t)h);
        if (memcmp(&s, &out[h], 4) != 0 && !(isnan(s) && isnan(out[h]))) bad++;
    }
    CHECK_MSG(bad == 0, "%d row conversions differ from scalar", bad);
    free(raw);
    free(out);
}

/* Nearest half to x by search over the sorted positive halves, ties to the
 * even mantissa; 0x7c00 when |x| rounds past the largest finite half. */
static uint16_t f16_nearest_ref(float x)
{
    double a = fabs((double)x);
    uint16_t s = signbit(x) ? 0x8000 : 0;
    if (a >= 65520.0) return s | 0x7c00; /* 65520 = halfway to 2^16: ties to even (inf) */
    int lo = 0, hi = 0x7bff;              /* largest h with value <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (half_ref((uint16_t)mid) <= a) lo = mid; else hi = mid - 1;
    }
    if (lo == 0x7bff) return s | 0x7bff;
    double d0 = a - half_ref((uint16_t)lo), d1 = half_ref((uint16_t)(lo + 1)) - a;
    int h = d0 < d1 ? lo : d1 < d0 ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
    return s | (uint16_t)h;
}

TEST(test_f32_to_f16_round_nearest_even)
{
    int bad = 0;
    /* random bit patterns concentrated on the half range, plus edge cases */
    for (int i = 0; i < 200000 && bad < 10; i++) {
        uint32_t exp = 95 + (uint32_t)(rnd64() % 50); /* 2^-32 .. 2^17 */
        uint32_t u = (uint32_t)(rnd64() & 0x807fffffu) | (exp << 23);
        if (i % 4 == 0) u &= ~0x0fffu; /* more ties and near-ties */
        if (i % 8 == 1) u = (u & ~0x1fffu) | 0x1000u; /* exact normal ties */
        float x = bits_to_f32(u);
        uint16_t got = quant_f32_to_f16(x), want = f16_nearest_ref(x);
        if (got != want) {
            bad++;
            printf("  x=%a got %04x want %04x\n", (double)x, got, want);
        }
    }
    const float edges[] = {65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e30f, 0x1p-24f, 0x1p-25f, 0x1.000002p-25f,
                           0x1.8p-24f, 0x1.8p-23f, 0x1p-14f, 0x1.ffcp-15f, 0x1.ffep-15f, 0x1.ffdp-15f, 1e-30f,
                           0x1.002p0f, 0x1.006p0f, 0x1.001p0f, 0x1.0030001p0f, 0.0f, 1.0f / 3.0f, 2049.0f, 2051.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int sgn = 0; sgn < 2; sgn++) {
            float x = sgn ? -edges[i] : edges[i];
            uint16_t got = quant_f32_to_f16(x), want = f16_nearest_ref(x);
            CHECK_MSG(got == want, "x=%a got %04x want %04x", (double)x, got, want);
        }
    CHECK(bad == 0);
    CHECK(quant_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(quant_f32_to_f16(-INFINITY) == 0xfc00);
    uint16_t n = quant_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    CHECK(quant_f32_to_f16(-0.0f) == 0x8000);
    /* the row quantizer rounds the same way */
    float xs[5] = {1.0f, 0x1.002p0f, 0x1.006p0f, -65520.0f, 0x1p-25f};
    uint16_t hs[5];
    quant_quantize_row(QUANT_F16, xs, hs, 5);
    for (int i = 0; i < 5; i++) CHECK(hs[i] == f16_nearest_ref(xs[i]));
}

TEST(test_traits_and_sizes)
{
    CHECK(quant_get_traits(QUANT_F32)->block_bytes == 4 && quant_get_traits(QUANT_F32)->block_size == 1);
    CHECK(quant_get_traits(QUANT_F16)->block_bytes == 2);
    CHECK(quant_get_traits(QUANT_Q8_0)->block_bytes == 34 && quant_get_traits(QUANT_Q8_0)->block_size == 32);
    CHECK(quant_get_traits(QUANT_Q4_0)->block_bytes == 18 && quant_get_traits(QUANT_Q4_0)->block_size == 32);
    CHECK(quant_get_traits(3) == NULL && quant_get_traits(99) == NULL && quant_get_traits(UINT32_MAX) == NULL);
    CHECK(QUANT_F32 == 0 && QUANT_F16 == 1 && QUANT_Q4_0 == 2 && QUANT_Q8_0 == 8); /* ggml ids */
    CHECK(quant_row_size(QUANT_F32, 7) == 28);
    CHECK(quant_row_size(QUANT_F16, 7) == 14);
    CHECK(quant_row_size(QUANT_Q8_0, 64) == 68);
    CHECK(quant_row_size(QUANT_Q4_0, 96) == 54);
    CHECK(quant_row_size(QUANT_Q8_0, 33) == 0);
    CHECK(quant_row_size(QUANT_Q4_0, 16) == 0);
    CHECK(quant_row_size(99, 32) == 0);
    CHECK(quant_row_size(QUANT_F32, UINT64_MAX / 2) == 0); /* overflow */
    CHECK(quant_row_size(QUANT_Q8_0, UINT64_MAX - 31) == 0);
    uint32_t t = 12345;
    CHECK(quant_type_parse("q8_0", &t) == 0 && t == QUANT_Q8_0);
    CHECK(quant_type_parse("q4_0", &t) == 0 && t == QUANT_Q4_0);
    CHECK(quant_type_parse("f16", &t) == 0 && t == QUANT_F16);
    CHECK(quant_type_parse("f32", &t) == 0 && t == QUANT_F32);
    CHECK(quant_type_parse("q4_1", &t) == -1 && quant_type_parse("", &t) == -1 && quant_type_parse(NULL, &t) == -1);
    CHECK(strcmp(quant_type_name(QUANT_Q4_0), "q4_0") == 0 && strcmp(quant_type_name(77), "?") == 0);
}

/* Hand-built blocks: bytes at known positions (ggml layout). */
TEST(test_q8_0_layout)
{
    /* d = 63.5 / 127 = 0.5 exactly (f16 0x3800); x = d * q */
    float x[32] = {63.5f, -0.5f, 1.0f, -63.5f};
    uint8_t b[34];
    memset(b, 0xAA, sizeof b);
    quant_quantize_row(QUANT_Q8_0, x, b, 32);
    const uint8_t want[6] = {0x00, 0x38, 0x7f, 0xff, 0x02, 0x81};
    CHECK(memcmp(b, want, 6) == 0);
    for (int i = 6; i < 34; i++) CHECK(b[i] == 0);
    float y[32];
    quant_dequantize_row(QUANT_Q8_0, b, y, 32);
    for (int i = 0; i < 32; i++) CHECK(y[i] == x[i]);
    /* and a block built by hand decodes as d * q */
    uint8_t h[34] = {0x00, 0x3c}; /* d = 1.0 */
    for (int i = 0; i < 32; i++) h[2 + i] = (uint8_t)(int8_t)(i - 16);
    quant_dequantize_row(QUANT_Q8_0, h, y, 32);
    for (int i = 0; i < 32; i++) CHECK(y[i] == (float)(i - 16));
}

TEST(test_q4_0_layout)
{
    /* largest magnitude -4 -> d = -4 / -8 = 0.5 (0x3800); q = x / d + 8 */
    float x[32] = {-4.0f, 3.5f};
    x[16] = 1.0f;
    x[17] = -0.5f;
    uint8_t b[18];
    memset(b, 0xAA, sizeof b);
    quant_quantize_row(QUANT_Q4_0, x, b, 32);
    /* qs[0] = q(x0)=0 | q(x16)=10 << 4; qs[1] = q(x1)=15 | q(x17)=7 << 4 */
    const uint8_t want[4] = {0x00, 0x38, 0xA0, 0x7F};
    CHECK(memcmp(b, want, 4) == 0);
    for (int i = 4; i < 18; i++) CHECK_MSG(b[i] == 0x88, "byte %d = %02x", i, b[i]);
    float y[32];
    quant_dequantize_row(QUANT_Q4_0, b, y, 32);
    for (int i = 0; i < 32; i++) CHECK(y[i] == x[i]);
    /* positive extreme: +4 -> d = -0.5 (0xB800), +4 maps to q = 0 */
    float p[32] = {4.0f};
    quant_quantize_row(QUANT_Q4_0, p, b, 32);
    CHECK(b[0] == 0x00 && b[1] == 0xB8 && b[2] == 0x80);
    /* by hand: d = 2, nibbles low 0..15, high 15..0 */
    uint8_t h[18] = {0x00, 0x40};
    for (int j = 0; j < 16; j++) h[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    quant_dequantize_row(QUANT_Q4_0, h, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == 2.0f * (float)(j - 8));
        CHECK(y[j + 16] == 2.0f * (float)(7 - j));
    }
}

/*
 * Error bounds, per block of 32 with d the f32 scale and d16 the stored f16:
 *
 * q8_0: d = max|x| / 127 and q = round(x / d), so |x / d| <= 127 and
 *   |x - d q| <= d / 2. The stored scale differs from d by |d - d16|, and
 *   |q| <= 127, hence  |x - d16 q| <= d / 2 + 127 |d - d16|.
 * q4_0: d = m / -8 (m the signed element of largest magnitude), so x / d is
 *   in [-8, 8] and q = clamp(floor(x / d + 8.5), 0, 15) - 8. Rounding gives
 *   |x / d - q| <= 1/2 except where the clamp bites (x / d > 7.5, i.e. x
 *   within |d|/2 of -m), where q = 7 and |x / d - q| <= 1. With |q| <= 8:
 *   |x - d16 q| <= |d| / 2 + 8 |d - d16|   (|d| + ... in the clamped case).
 * Both add the float rounding of x * (1/d) (a few ulps of max|x|): SLACK.
 * |d - d16| itself is checked to be a correct f16 rounding: at most
 * 2^-11 |d| for normal halves, 2^-25 for subnormal ones.
 */
#define Q8_QMAX 127.0
#define Q4_QMAX 8.0
#define SLACK_ULPS 4.0

static int check_block_bounds(uint32_t type, const float *x, const char *what)
{
    int bad = 0;
    uint8_t b[34];
    float y[32];
    double amax = 0.0, m = 0.0;
    for (int j = 0; j < 32; j++)
        if (fabs(x[j]) > amax) { amax = fabs(x[j]); m = x[j]; }
    quant_quantize_row(type, x, b, 32);
    quant_dequantize_row(type, b, y, 32);
    double d = type == QUANT_Q8_0 ? (double)((float)amax / 127.0f) : (double)((float)m / -8.0f);
    uint16_t hd;
    memcpy(&hd, b, 2);
    double d16 = half_ref(hd);
    double dd = fabs(d - d16);
    /* the stored scale is d correctly rounded to f16 */
    if (hd != f16_nearest_ref((float)d)) { bad++; printf("  %s: scale %04x is not f16(%g)\n", what, hd, d); }
    if (dd > ldexp(fabs(d), -11) + 0x1p-25) { bad++; printf("  %s: |d - d16| = %g too large\n", what, dd); }
    double slack = SLACK_ULPS * FLT_EPSILON * amax;
    for (int j = 0; j < 32; j++) {
        double e = fabs((double)x[j] - (double)y[j]), bound;
        if (type == QUANT_Q8_0) bound = fabs(d) / 2 + Q8_QMAX * dd + slack;
        else {
            int clamped = d != 0.0 && (double)x[j] / d > 7.5 - 1e-6;
            bound = fabs(d) * (clamped ? 1.0 : 0.5) + Q4_QMAX * dd + slack;
        }
        if (!(e <= bound)) {
            bad++;
            if (bad < 5) printf("  %s: x[%d] = %.9g -> %.9g, error %g > bound %g\n", what, j, x[j], y[j], e, bound);
        }
    }
    return bad;
}

static void adversarial_blocks(uint32_t type)
{
    float x[32];
    const char *tn = quant_type_name(type);
    char what[64];
    for (int kind = 0; kind < 12; kind++) {
        for (int j = 0; j < 32; j++) {
            switch (kind) {
            case 0: x[j] = 0.0f; break;                                       /* all zeros */
            case 1: x[j] = j == 5 ? 1e4f : 1e-3f * rnd_normal(); break;       /* one huge value */
            case 2: x[j] = -fabsf(rnd_normal()) - 0.1f; break;                /* all negative */
            case 3: x[j] = j == 0 ? 3.0f : j == 1 ? -3.0f : 0.1f * (float)j;  break; /* +max and -max */
            case 4: x[j] = 1.0f; break;                                       /* constant */
            case 5: x[j] = -1.0f; break;
            case 6: x[j] = 1e-7f * rnd_normal(); break;                       /* d subnormal in f16 */
            case 7: x[j] = j % 2 ? 5000.0f : -5000.0f; break;
            case 8: x[j] = (float)(j - 16) / 16.0f; break;                    /* ramp */
            case 9: x[j] = j == 31 ? -7.0f : 7.0f * (float)j / 31.0f; break;
            case 10: x[j] = j == 3 ? -1e-30f : 0.0f; break;                   /* scale rounds to 0 */
            default: x[j] = 100.0f * rnd_normal(); break;
            }
        }
        snprintf(what, sizeof what, "%s adversarial %d", tn, kind);
        CHECK(check_block_bounds(type, x, what) == 0);
    }
    /* zeros decode to exact zeros */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    uint8_t b[34];
    float y[32];
    quant_quantize_row(type, x, b, 32);
    quant_dequantize_row(type, b, y, 32);
    for (int j = 0; j < 32; j++) CHECK(y[j] == 0.0f);
    /* non-finite input must not crash or hit undefined conversions */
    for (int j = 0; j < 32; j++) x[j] = j == 1 ? NAN : j == 2 ? INFINITY : j == 3 ? -INFINITY : 1.0f;
    quant_quantize_row(type, x, b, 32);
    quant_dequantize_row(type, b, y, 32);
}

TEST(test_q8_0_bounds)
{
    float x[32];
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        float scale = powf(10.0f, (float)(rnd_unit() * 8.0 - 5.0)); /* 1e-5 .. 1e3 */
        for (int j = 0; j < 32; j++) x[j] = scale * rnd_normal();
        bad += check_block_bounds(QUANT_Q8_0, x, "q8_0 random");
        if (bad > 5) break;
    }
    CHECK(bad == 0);
    adversarial_blocks(QUANT_Q8_0);
}

TEST(test_q4_0_bounds)
{
    float x[32];
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        float scale = powf(10.0f, (float)(rnd_unit() * 8.0 - 5.0));
        for (int j = 0; j < 32; j++) x[j] = scale * rnd_normal();
        bad += check_block_bounds(QUANT_Q4_0, x, "q4_0 random");
        if (bad > 5) break;
    }
    CHECK(bad == 0);
    adversarial_blocks(QUANT_Q4_0);
}

/* Dequantization of random bytes against a naive decode of the layout
 * (x = f16(d) * q), over many blocks and from an unaligned address. */
TEST(test_dequant_random_blocks)
{
    enum { NB = 257 };
    for (int ti = 0; ti < 2; ti++) {
        uint32_t type = ti ? QUANT_Q4_0 : QUANT_Q8_0;
        size_t bb = ti ? 18 : 34;
        uint8_t *raw = malloc(NB * bb + 1), *src = raw + 1;
        float *y = malloc(NB * 32 * sizeof(float));
        for (size_t i = 0; i < NB * bb; i++) src[i] = (uint8_t)rnd64();
        for (int b = 0; b < NB; b++) { /* finite scales, subnormal ones too */
            uint16_t h = (uint16_t)(rnd64() & 0xbbff);
            memcpy(src + b * bb, &h, 2);
        }
        quant_dequantize_row(type, src, y, NB * 32);
        int bad = 0;
        for (int b = 0; b < NB; b++) {
            const uint8_t *blk = src + b * bb;
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = (float)half_ref(h);
            for (int j = 0; j < 32; j++) {
                int q = ti ? ((j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4)) - 8) : (int8_t)blk[2 + j];
                if (y[b * 32 + j] != d * (float)q) bad++;
            }
        }
        CHECK_MSG(bad == 0, "%s: %d values differ from the naive decode", quant_type_name(type), bad);
        free(raw);
        free(y);
    }
    /* f32 copies */
    float a[3] = {1.5f, -2.0f, 3e-40f}, c[3];
    quant_dequantize_row(QUANT_F32, a, c, 3);
    CHECK(memcmp(a, c, sizeof a) == 0);
    quant_quantize_row(QUANT_F32, a, c, 3);
    CHECK(memcmp(a, c, sizeof a) == 0);
}

/* Quantizing a row of many blocks equals quantizing each block alone. */
TEST(test_rows_are_blockwise)
{
    enum { N = 32 * 9 };
    float x[N];
    uint8_t row[34 * 9], one[34];
    for (int i = 0; i < N; i++) x[i] = rnd_normal() * (float)(1 + i / 32);
    for (int ti = 0; ti < 2; ti++) {
        uint32_t type = ti ? QUANT_Q4_0 : QUANT_Q8_0;
        size_t bb = quant_get_traits(type)->block_bytes;
        quant_quantize_row(type, x, row, N);
        for (int b = 0; b < 9; b++) {
            quant_quantize_row(type, x + 32 * b, one, 32);
            CHECK(memcmp(row + b * bb, one, bb) == 0);
        }
    }
}

int main(void)
{
    RUN(test_f16_all_halves);
    RUN(test_f16_row_matches_scalar);
    RUN(test_f32_to_f16_round_nearest_even);
    RUN(test_traits_and_sizes);
    RUN(test_q8_0_layout);
    RUN(test_q4_0_layout);
    RUN(test_q8_0_bounds);
    RUN(test_q4_0_bounds);
    RUN(test_dequant_random_blocks);
    RUN(test_rows_are_blockwise);
    return test_summary();
}
