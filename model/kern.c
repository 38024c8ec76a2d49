/*
 * kern.c - packing, views, CPU-level selection and per-thread scratch of
 * the linear-layer kernels (see kern.h). The kernels themselves live in
 * kern_scalar.c, kern_avx2.c and kern_avx512.c.
 */
#include "kern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "quant.h"

/* ---- packing ---- */

size_t kern_panel_bytes(uint32_t type, int64_t cols)
{
    if (cols <= 0 || quant_row_size(type, (uint64_t)cols) == 0) return 0;
    const size_t K = (size_t)cols, nb = K / QUANT_BLOCK;
    switch (type) {
    case QUANT_F32: return K * KERN_NR * sizeof(float);
    case QUANT_F16: return K * KERN_NR * sizeof(uint16_t);
    case QUANT_Q8_0: return nb * (KERN_NR * sizeof(float) + QUANT_BLOCK * KERN_NR);
    case QUANT_Q4_0: return nb * (KERN_NR * sizeof(float) + QUANT_BLOCK / 2 * KERN_NR);
    default: return 0;
    }
}

int64_t kern_n_panels(int64_t rows, int64_t group_rows)
{
    if (rows <= 0) return 0;
    if (group_rows <= 0 || group_rows > rows) group_rows = rows;
    return rows / group_rows * ((group_rows + KERN_NR - 1) / KERN_NR);
}

/* One panel: rows [r0, r0 + nr) of the source (nr <= 16; the rest zeros). */
static void pack_panel(uint8_t *dst, const uint8_t *src, size_t src_row_bytes, uint32_t type, int nr, int64_t K)
{
    const int64_t nb = K / QUANT_BLOCK;
    switch (type) {
    case QUANT_F32: {
        float *w = (float *)dst; /* [K][16] */
        for (int o = 0; o < nr; o++) {
            const uint8_t *row = src + (size_t)o * src_row_bytes;
            for (int64_t k = 0; k < K; k++) memcpy(&w[k * KERN_NR + o], row + 4 * k, 4);
        }
        break;
    }
    case QUANT_F16: {
        uint16_t *w = (uint16_t *)dst; /* [K][16] */
        for (int o = 0; o < nr; o++) {
            const uint8_t *row = src + (size_t)o * src_row_bytes;
            for (int64_t k = 0; k < K; k++) memcpy(&w[k * KERN_NR + o], row + 2 * k, 2);
        }
        break;
    }
    case QUANT_Q8_0:
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = dst + (size_t)b * (KERN_NR * 4 + QUANT_BLOCK * KERN_NR);
            float *d = (float *)blk;
            int8_t *q = (int8_t *)(blk + KERN_NR * 4); /* [32][16] */
            for (int o = 0; o < nr; o++) {
                quant_block_q8_0 s;
                memcpy(&s, src + (size_t)o * src_row_bytes + (size_t)b * sizeof s, sizeof s);
                d[o] = quant_f16_to_f32(s.d);
                for (int j = 0; j < QUANT_BLOCK; j++) q[j * KERN_NR + o] = s.qs[j];
            }
        }
        break;
    case QUANT_Q4_0:
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = dst + (size_t)b * (KERN_NR * 4 + QUANT_BLOCK / 2 * KERN_NR);
            float *d = (float *)blk;
            uint8_t *q = blk + KERN_NR * 4; /* [16][16]: the source's byte j of each row, kept as is */
            for (int o = 0; o < nr; o++) {
                quant_block_q4_0 s;
                memcpy(&s, src + (size_t)o * src_row_bytes + (size_t)b * sizeof s, sizeof s);
                d[o] = quant_f16_to_f32(s.d);
                for (int j = 0; j < QUANT_BLOCK / 2; j++) q[j * KERN_NR + o] = s.qs[j];
            }
            /* padding rows: nibbles 8 (weight 0) under a zero scale */
            for (int o = nr; o < KERN_NR; o++)
                for (int j = 0; j < QUANT_BLOCK / 2; j++) q[j * KERN_NR + o] = 0x88;
        }
        break;
    }
}

static void pack_panel_i8(uint8_t *dst, const uint8_t *src, size_t src_row_bytes, int nr, int64_t K);

/* The panels of rows `rows` in groups of group_rows, pb bytes each, in the
 * f32-kernel layout of `type` (i8 = 0) or the int8 layout (i8 = 1, q8_0). */
static int pack_groups(kern_mat *out, void *dst, const void *src, size_t src_row_bytes, uint32_t type, int64_t rows,
                       int64_t cols, int64_t group_rows, size_t pb, int i8)
{
    if (pb == 0 || rows <= 0) return -1;
    if (group_rows <= 0) group_rows = rows;
    if (group_rows > rows || rows % group_rows != 0) return -1;
    const int64_t ppg = (group_rows + KERN_NR - 1) / KERN_NR; /* panels per group */
    uint8_t *d = dst;
    memset(d, 0, (size_t)kern_n_panels(rows, group_rows) * pb);
    for (int64_t g = 0; g < rows / group_rows; g++)
        for (int64_t p = 0; p < ppg; p++) {
            int64_t r0 = g * group_rows + p * KERN_NR, left = group_rows - p * KERN_NR;
            uint8_t *pan = d + (size_t)(g * ppg + p) * pb;
            const uint8_t *rs = (const uint8_t *)src + (size_t)r0 * src_row_bytes;
            const int nr = left < KERN_NR ? (int)left : KERN_NR;
            if (i8) pack_panel_i8(pan, rs, src_row_bytes, nr, cols);
            else pack_panel(pan, rs, src_row_bytes, type, nr, cols);
        }
    *out = (kern_mat){type, rows, cols, pb, d};
    return 0;
}

int kern_pack(kern_mat *out, void *dst, const void *src, size_t src_row_bytes, uint32_t type, int64_t rows,
              int64_t cols, int64_t group_rows)
{
    return pack_groups(out, dst, src, src_row_bytes, type, rows, cols, group_rows, kern_panel_bytes(type, cols), 0);
}

size_t kern_i8_panel_bytes(int64_t cols)
{
    if (cols <= 0 || cols % QUANT_BLOCK != 0) return 0;
    return (size_t)(cols / QUANT_BLOCK) * KERN_I8_BLOCK;
}

/* One int8-layout panel: rows [r0, r0 + nr) of q8_0 rows (the rest zeros:
 * scale 0, weights 0, s 0). */
static void pack_panel_i8(uint8_t *dst, const uint8_t *src, size_t src_row_bytes, int nr, int64_t K)
{
    for (int64_t b = 0; b < K / QUANT_BLOCK; b++) {
        uint8_t *blk = dst + (size_t)b * KERN_I8_BLOCK;
        float d[KERN_NR] = {0};
        int32_t sum[KERN_NR] = {0};
        int8_t *q = (int8_t *)(blk + KERN_NR * 8); /* [8][16][4] */
        for (int o = 0; o < nr; o++) {
            quant_block_q8_0 sb;
            memcpy(&sb, src + (size_t)o * src_row_bytes + (size_t)b * sizeof sb, sizeof sb);
            d[o] = quant_f16_to_f32(sb.d);
            for (int j = 0; j < QUANT_BLOCK; j++) {
                q[(j / 4) * 4 * KERN_NR + o * 4 + j % 4] = sb.qs[j];
                sum[o] += 128 * sb.qs[j];
            }
        }
        memcpy(blk, d, sizeof d);
        memcpy(blk + KERN_NR * 4, sum, sizeof sum);
    }
}

int kern_pack_i8(kern_mat *out, void *dst, const void *src, size_t src_row_bytes, int64_t rows, int64_t cols,
                 int64_t group_rows)
{
    if (src_row_bytes < (size_t)(cols / QUANT_BLOCK) * sizeof(quant_block_q8_0)) return -1;
    return pack_groups(out, dst, src, src_row_bytes, QUANT_Q8_0, rows, cols, group_rows, kern_i8_panel_bytes(cols), 1);
}

int kern_view(const kern_mat *m, int64_t group_rows, int64_t r0, int64_t n, kern_mat *out)
{
    if (group_rows <= 0) group_rows = m->rows;
    if (r0 < 0 || n < 0 || r0 + n > m->rows) return -1;
    const int64_t g = r0 / group_rows, in = r0 % group_rows;
    if (in % KERN_NR != 0 || in + n > group_rows) return -1;
    const int64_t ppg = (group_rows + KERN_NR - 1) / KERN_NR;
    *out = *m;
    out->data = m->data + (size_t)(g * ppg + in / KERN_NR) * m->panel_bytes;
    out->rows = n;
    return 0;
}

size_t kern_scratch_floats(const kern_mat *W)
{
    return (size_t)W->cols * KERN_NR * KERN_GROUP;
}

/* ---- per-thread scratch ---- */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local float *tl_buf;
static _Thread_local size_t tl_cap;

static void scratch_free(void *p) { free(p); }
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

float *kern_thread_scratch(size_t floats)
{
    if (floats <= tl_cap) return tl_buf;
    pthread_once(&scratch_once, scratch_init);
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    float *nb = aligned_alloc(64, bytes);
    if (!nb) return NULL;
    free(tl_buf);
    tl_buf = nb;
    tl_cap = bytes / sizeof(float);
    pthread_setspecific(scratch_key, nb); /* freed at thread exit */
    return nb;
}

/* ---- levels ---- */

static const char *const level_names[KERN_N_LEVELS] = {"scalar", "avx2", "avx512"};

const char *kern_level_name(kern_level l)
{
    return (unsigned)l < KERN_N_LEVELS ? level_names[l] : "?";
}

int kern_level_parse(const char *name, kern_level *l)
{
    for (int i = 0; name && i < KERN_N_LEVELS; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *l = (kern_level)i;
            return 0;
        }
    return -1;
}

static kern_group_fn level_fn(kern_level l)
{
    switch (l) {
    case KERN_SCALAR: return kern_group_scalar;
    case KERN_AVX2: return kern_group_avx2;
    case KERN_AVX512: return kern_group_avx512;
    default: return NULL;
    }
}

#if defined(__x86_64__) || defined(__i386__)
/* F16C through CPUID leaf 1 (ECX bit 29): clang 14, Debian 12's, does not
 * accept "f16c" in __builtin_cpu_supports, and the fuzz build uses clang. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_F16C) != 0;
}
#endif

int kern_level_supported(kern_level l)
{
    if (!level_fn(l)) return 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (l) {
    case KERN_SCALAR: return 1;
    case KERN_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case KERN_AVX512:
        return kern_level_supported(KERN_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    default: return 0;
    }
#else
    return l == KERN_SCALAR;
#endif
}

/* AVX-512 VNNI through CPUID leaf 7 (ECX bit 11), for the same reason;
 * asked once (in a VM, CPUID traps to the hypervisor: microseconds). */
static int cpu_has_vnni(void)
{
    static atomic_int has = -1;
    int h = atomic_load(&has);
    if (h < 0) {
        h = 0;
#if defined(__x86_64__) || defined(__i386__)
        unsigned a, b, c, d;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) h = (c & (1u << 11)) != 0;
#endif
        atomic_store(&has, h);
    }
    return h;
}

kern_level kern_best_level(void)
{
    for (int l = KERN_N_LEVELS - 1; l > 0; l--)
        if (kern_level_supported((kern_level)l)) return (kern_level)l;
    return KERN_SCALAR;
}

static atomic_int cur_level = -1;

kern_level kern_get_level(void)
{
    int l = atomic_load(&cur_level);
    if (l < 0) {
        l = (int)kern_best_level();
        int expect = -1;
        if (!atomic_compare_exchange_strong(&cur_level, &expect, l)) l = expect;
    }
    return (kern_level)l;
}

int kern_set_level(kern_level l)
{
    if (!kern_level_supported(l)) return -1;
    atomic_store(&cur_level, (int)l);
    return 0;
}

kern_group_fn kern_group(void)
{
    return level_fn(kern_get_level());
}

kern_wsum_fn kern_wsum(void)
{
    switch (kern_get_level()) {
    case KERN_AVX512: return kern_wsum_avx512;
    case KERN_AVX2: return kern_wsum_avx2;
    default: return kern_wsum_scalar;
    }
}

kern_qk_fn kern_qk(void)
{
    switch (kern_get_level()) {
    case KERN_AVX512: return kern_qk_avx512;
    case KERN_AVX2: return kern_qk_avx2;
    default: return kern_qk_scalar;
    }
}

kern_f16_fn kern_f16(void)
{
    switch (kern_get_level()) {
    case KERN_AVX512: return kern_f16_avx512;
    case KERN_AVX2: return kern_f16_avx2;
    default: return kern_f16_scalar;
    }
}

kern_gelu_fn kern_gelu(void)
{
    return kern_get_level() == KERN_AVX512 ? kern_gelu_avx512 : NULL;
}

kern_sum_exp_fn kern_sum_exp(void)
{
    return kern_get_level() == KERN_AVX512 ? kern_sum_exp_avx512 : NULL;
}

/* The int8 kernels of the current level: 0 scalar, 1 AVX2, 2 AVX-512
 * VNNI (AVX-512 without VNNI runs AVX2's: the same bits). */
static int i8_variant(void)
{
    switch (kern_get_level()) {
    case KERN_AVX512: return kern_i8_avx512vnni && cpu_has_vnni() ? 2 : 1;
    case KERN_AVX2: return 1;
    default: return 0;
    }
}

kern_i8_fn kern_i8(void)
{
    const kern_i8_fn f[3] = {kern_i8_scalar, kern_i8_avx2, kern_i8_avx512vnni};
    return f[i8_variant()];
}

kern_i8q_fn kern_i8q(void)
{
    const kern_i8q_fn f[3] = {kern_i8q_scalar, kern_i8q_avx2, kern_i8q_avx512vnni};
    return f[i8_variant()];
}

/* ---- activation mode ---- */

static atomic_int cur_act = KERN_ACT_Q8;
static const char *const act_names[2] = {"f32", "q8"};

const char *kern_act_name(kern_act a) { return (unsigned)a < 2 ? act_names[a] : "?"; }

int kern_act_parse(const char *name, kern_act *a)
{
    for (int i = 0; name && i < 2; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *a = (kern_act)i;
            return 0;
        }
    return -1;
}

void kern_set_act(kern_act a) { atomic_store(&cur_act, (int)a); }
kern_act kern_get_act(void) { return (kern_act)atomic_load(&cur_act); }
