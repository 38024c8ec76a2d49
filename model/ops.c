/*
 * ops.c - forward kernels (see ops.h).
 *
 * Vectorization: the hot loops work on v8f, a GCC vector of 8 floats. GCC
 * lowers it to one AVX register with -march=native (or two SSE registers
 * without AVX), so the code stays portable C; a few conversions GCC does
 * badly through vector extensions (int8 -> float, f16 -> f32, FMA in ISO C
 * mode) use AVX2/F16C/FMA intrinsics under #if, with plain C fallbacks.
 * Loads and stores go through memcpy (unaligned vector moves).
 * Tails shorter than 8 are padded into a temporary vector, so every element
 * goes through exactly the same arithmetic whatever its position.
 */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant.h"

#include "vec.h"

/* ---- thread pool ----
 * A job lives on the dispatcher's stack. Helpers pick it up under pool_mu
 * (taking a reference), grab task indices with an atomic counter, and drop
 * the reference when no task is left; the dispatcher unpublishes the job
 * under pool_mu and waits for the references to reach zero before
 * returning, so no helper can touch a finished job. */
#define OPS_MAX_THREADS 16
#ifndef OPS_SPIN
#define OPS_SPIN 2000 /* polls of the generation before an idle helper sleeps */
#endif

typedef struct {
    ops_task_fn fn;
    void *ctx;
    int n;
    atomic_int next, done, refs;
} pool_job;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t pool_dispatch = PTHREAD_MUTEX_INITIALIZER; /* one region at a time */
static pool_job *pool_cur;       /* under pool_mu */
static atomic_uint pool_gen;     /* bumped for every published job */
static int pool_threads = 1;     /* caller + helpers */

static void run_tasks(pool_job *j, int thread)
{
    int i;
    while ((i = atomic_fetch_add(&j->next, 1)) < j->n) {
        j->fn(j->ctx, i, thread);
        atomic_fetch_add(&j->done, 1);
    }
}

static void *pool_helper(void *arg)
{
    const int thread = (int)(intptr_t)arg;
    unsigned seen = atomic_load(&pool_gen);
    for (;;) {
        /* spin a little (the next job of a step usually follows at once) */
        for (int k = 0; k < OPS_SPIN && atomic_load_explicit(&pool_gen, memory_order_acquire) == seen; k++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        pthread_mutex_lock(&pool_mu);
        while (atomic_load(&pool_gen) == seen) pthread_cond_wait(&pool_cv, &pool_mu);
        seen = atomic_load(&pool_gen);
        pool_job *j = pool_cur;
        if (j) atomic_fetch_add(&j->refs, 1);
        pthread_mutex_unlock(&pool_mu);
        if (j) {
            run_tasks(j, thread);
            atomic_fetch_sub(&j->refs, 1);
        }
    }
    return NULL;
}

static void pool_init(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("SYNTH_THREADS");
    int n = env && atoi(env) > 0 ? atoi(env) : (ncpu > 0 ? (int)ncpu : 1);
    if (n > OPS_MAX_THREADS) n = OPS_MAX_THREADS;
    pool_threads = 1;
    for (int t = 1; t < n; t++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, pool_helper, (void *)(intptr_t)t) == 0) pool_threads++;
        pthread_attr_destroy(&at);
    }
}

int ops_n_threads(void)
{
    pthread_once(&pool_once, pool_init);
    return pool_threads;
}

void ops_parallel_for(int n, ops_task_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (n == 1 || ops_n_threads() == 1 || pthread_mutex_trylock(&pool_dispatch) != 0) {
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    pool_job j = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.refs, 0);
    pthread_mutex_lock(&pool_mu);
    pool_cur = &j;
    atomic_fetch_add_explicit(&pool_gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
    run_tasks(&j, 0);
    while (atomic_load(&j.done) < n) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&pool_mu);
    pool_cur = NULL;
    pthread_mutex_unlock(&pool_mu);
    while (atomic_load(&j.refs) > 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_unlock(&pool_dispatch);
}

float ops_exp(float x)
{
    return v8_exp(v8_set1(x))[0];
}

void ops_exp_inplace(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_exp(v8_load(x + i)));
    if (i < n) v8_store_tail(x + i, v8_exp(v8_load_tail(x + i, (int)(n - i), 0.0f)), (int)(n - i));
}

void ops_gelu_tanh(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_gelu(v8_load(x + i)));
    if (i < n) v8_store_tail(x + i, v8_gelu(v8_load_tail(x + i, (int)(n - i), 0.0f)), (int)(n - i));
}

/* ---- softmax / logsumexp ---- */
static float row_max(const float *x, int n)
{
    v8f m = v8_set1(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) m = v8_max(m, v8_load(x + i));
    float mx = v8_hmax(m);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* sum_i exp(x[i] - mx); if out != NULL the exps are stored there. */
static float row_sum_exp(const float *x, int n, float mx, float *out)
{
    v8f s = v8_set1(0.0f), vm = v8_set1(mx);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f e = v8_exp(v8_load(x + i) - vm);
        if (out) v8_store(out + i, e);
        s += e;
    }
    if (i < n) {
        /* padding with mx - 200 makes the padded lanes contribute ~0 */
        v8f e = v8_exp(v8_load_tail(x + i, n - i, mx - 200.0f) - vm);
        for (int j = n - i; j < 8; j++) e[j] = 0.0f;
        if (out) v8_store_tail(out + i, e, n - i);
        s += e;
    }
    return v8_hsum(s);
}

void ops_softmax(float *x, int n)
{
    float mx = row_max(x, n);
    float inv = 1.0f / row_sum_exp(x, n, mx, x);
    int i = 0;
    v8f vi = v8_set1(inv);
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_load(x + i) * vi);
    for (; i < n; i++) x[i] *= inv;
}

float ops_logsumexp(const float *x, int n, int *argmax)
{
    float mx = row_max(x, n);
    if (argmax) {
        int a = 0;
        for (int i = 0; i < n; i++)
            if (x[i] == mx) { a = i; break; }
        *argmax = a;
    }
    return mx + logf(row_sum_exp(x, n, mx, NULL));
}

/* ---- dot / axpy ---- */
float ops_dot(const float *a, const float *b, int n)
{
    v8f s0 = v8_set1(0.0f), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = v8_fma(v8_load(a + i), v8_load(b + i), s0);
        s1 = v8_fma(v8_load(a + i + 8), v8_load(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = v8_fma(v8_load(a + i), v8_load(b + i), s0);
    float s = v8_hsum(s0 + s1);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void ops_axpy(float *y, float alpha, const float *x, int n)
{
    v8f va = v8_set1(alpha);
    int i = 0;
    for (; i + 8 <= n; i += 8) v8_store(y + i, v8_fma(va, v8_load(x + i), v8_load(y + i)));
    for (; i < n; i++) y[i] += alpha * x[i];
}

void ops_wsum_rows(int n, int m, const float *a, const float *X, int ldx, float *y)
{
    int c = 0;
    for (; c + 32 <= m; c += 32) {
        v8f y0 = v8_set1(0.0f), y1 = y0, y2 = y0, y3 = y0;
        const float *x = X + c;
        for (int j = 0; j < n; j++, x += ldx) {
            v8f aj = v8_set1(a[j]);
            y0 = v8_fma(aj, v8_load(x), y0);
            y1 = v8_fma(aj, v8_load(x + 8), y1);
            y2 = v8_fma(aj, v8_load(x + 16), y2);
            y3 = v8_fma(aj, v8_load(x + 24), y3);
        }
        v8_store(y + c, y0);
        v8_store(y + c + 8, y1);
        v8_store(y + c + 16, y2);
        v8_store(y + c + 24, y3);
    }
    if (c < m) { /* remaining columns (m not a multiple of 32) */
        memset(y + c, 0, sizeof(float) * (size_t)(m - c));
        for (int j = 0; j < n; j++) ops_axpy(y + c, a[j], X + (size_t)j * ldx + c, m - c);
    }
}

/* ---- LayerNorm ---- */
void ops_layernorm(int n, int d, const float *x, int ldx, const float *w, const float *b, float eps,
                   float *y, int ldy)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        /* two passes (mean, then centered variance): no cancellation */
        v8f s = v8_set1(0.0f);
        int i = 0;
        for (; i + 8 <= d; i += 8) s += v8_load(xr + i);
        float sum = v8_hsum(s);
        for (; i < d; i++) sum += xr[i];
        float mean = sum / (float)d;
        v8f vm = v8_set1(mean), q = v8_set1(0.0f);
        for (i = 0; i + 8 <= d; i += 8) {
            v8f c = v8_load(xr + i) - vm;
            q += c * c;
        }
        float var = v8_hsum(q);
        for (; i < d; i++) var += (xr[i] - mean) * (xr[i] - mean);
        float rstd = 1.0f / sqrtf(var / (float)d + eps);
        v8f vr = v8_set1(rstd);
        for (i = 0; i + 8 <= d; i += 8)
            v8_store(yr + i, (v8_load(xr + i) - vm) * vr * v8_load(w + i) + v8_load(b + i));
        for (; i < d; i++) yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
    }
}

/* ---- weights ---- */
int ops_mat_init(ops_mat *m, const void *data, uint32_t type, int64_t rows, int64_t cols)
{
    size_t rb = quant_row_size(type, (uint64_t)cols);
    if (rb == 0 || rows < 0) return -1;
    m->data = data;
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = rb;
    return 0;
}

ops_mat ops_mat_rows(const ops_mat *m, int64_t r0, int64_t n)
{
    ops_mat v = *m;
    v.data = (const uint8_t *)m->data + (size_t)r0 * m->row_bytes;
    v.rows = n;
    return v;
}

/* f16 -> f32 (exact for every value, inlined: it runs once per block). */
static inline float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
#if defined(__F16C__)
    return _cvtsh_ss(h);
#endif
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (ex == 0) { /* zero or subnormal: man * 2^-24 */
        float f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    bits = sign | (ex == 31 ? 0x7F800000u | (man << 13) : ((ex + 112) << 23) | (man << 13));
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Q8_0 block: f16 d, int8 qs[32]; x = d * q. */
static void dequant_q8_0(const uint8_t *src, float *dst, int64_t nblocks)
{
    for (int64_t ib = 0; ib < nblocks; ib++, src += 34, dst += 32) {
        v8f d = v8_set1(load_f16(src));
        for (int j = 0; j < 4; j++) v8_store(dst + 8 * j, d * v8_from_i8(src + 2 + 8 * j));
    }
}

/* Q4_0 block: f16 d, uint8 qs[16]; x[j] = d (lo(qs[j]) - 8), x[j+16] = d (hi(qs[j]) - 8).
 * Unpacked as 4 vectors of 8: lo[0..8), lo[8..16), hi[0..8), hi[8..16). */
static inline void q4_unpack(const uint8_t *qs, v8f d, v8f out[4])
{
#if defined(__AVX2__)
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int j = 0; j < 4; j++)
        out[j] = d * ((v8f)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[j])) - v8_set1(8.0f));
#else
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 8; k++) {
            uint8_t b = qs[8 * (j & 1) + k];
            out[j][k] = d[0] * (float)((j < 2 ? (b & 0x0F) : (b >> 4)) - 8);
        }
#endif
}

static void dequant_q4_0(const uint8_t *src, float *dst, int64_t nblocks)
{
    for (int64_t ib = 0; ib < nblocks; ib++, src += 18, dst += 32) {
        v8f w[4];
        q4_unpack(src + 2, v8_set1(load_f16(src)), w);
        for (int j = 0; j < 4; j++) v8_store(dst + 8 * j, w[j]);
    }
}

void ops_dequant_rows(const ops_mat *W, int64_t r0, int64_t n, float *dst)
{
    const uint8_t *src = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
    const int64_t cols = W->cols;
    switch (W->type) {
    case QUANT_F32:
        memcpy(dst, src, (size_t)n * cols * sizeof(float));
        break;
    case QUANT_Q8_0: /* rows are contiguous blocks: one pass over all of them */
        dequant_q8_0(src, dst, n * cols / 32);
        break;
    case QUANT_Q4_0:
        dequant_q4_0(src, dst, n * cols / 32);
        break;
    default:
        for (int64_t r = 0; r < n; r++) quant_dequantize_row(W->type, src + (size_t)r * W->row_bytes, dst + r * cols, cols);
        break;
    }
}

/* Rows per dequantized block. Small batches (decode) use blocks that stay
 * in L2 next to the activations; big batches use big blocks so that the
 * GEMM calls are big (each call repacks x, which costs a pass over x). */
#define OPS_BLOCK_SMALL (64 * 1024)    /* floats, n < OPS_BIG_N */
#define OPS_BLOCK_BIG (1024 * 1024)    /* floats, n >= OPS_BIG_N */
#ifndef OPS_BIG_N
#define OPS_BIG_N 16
#endif

static int64_t block_rows(const ops_mat *W, int n)
{
    int64_t target = n < OPS_BIG_N ? OPS_BLOCK_SMALL : OPS_BLOCK_BIG;
    int64_t rb = target / W->cols;
    if (rb < 16) rb = 16;
    if (rb > W->rows) rb = W->rows;
    return rb;
}

size_t ops_linear_scratch(const ops_mat *W, int n)
{
    if (W->type == QUANT_F32) return 0;
    return (size_t)block_rows(W, n) * (size_t)W->cols;
}

/* Small batches (decoding): y = x W^T straight from the q8_0/q4_0 blocks,
 * without writing dequantized rows to memory or packing them for a GEMM
 * (which would cost more than the multiply for n of a few rows). Two rows
 * of x per pass over W; each block is converted to 4 vectors of 8 floats
 * (scale applied) and multiplied into 4 independent accumulators per row,
 * so the FMA chains do not wait on each other. */
#ifndef OPS_FUSED_MAX_N
#if defined(__AVX512F__)
#define OPS_FUSED_MAX_N 16 /* measured crossover with dequantize + sgemm */
#else
#define OPS_FUSED_MAX_N 4
#endif
#endif

#if defined(__AVX512F__)
/* With AVX-512 a block of 32 weights is two 16-float vectors: one
 * sign-extension + conversion each for q8_0, and q4_0's low and high
 * nibbles are exactly the two halves. */
typedef float v16f __attribute__((vector_size(64)));

static inline v16f v16_set1(float x) { return (v16f)_mm512_set1_ps(x); }
static inline v16f v16_load(const float *p) { return (v16f)_mm512_loadu_ps(p); }
static inline v16f v16_fma(v16f a, v16f b, v16f c) { return (v16f)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
static inline float v16_hsum(v16f v)
{
    return v8_hsum(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                   __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}

static inline __attribute__((always_inline)) void fused_rows(int R, int q4, const float *x, int ldx,
                                                             const ops_mat *W, float *y, int ldy)
{
    const int64_t nb = W->cols / 32;
    const size_t bb = q4 ? 18 : 34;
    for (int64_t o = 0; o < W->rows; o++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)o * W->row_bytes;
        v16f acc[4][2];
        for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = v16_set1(0.0f);
        for (int64_t b = 0; b < nb; b++, w += bb) {
            v16f d = v16_set1(load_f16(w)), w0, w1;
            if (q4) {
                const __m128i q = _mm_loadu_si128((const __m128i *)(w + 2)), m = _mm_set1_epi8(0x0F);
                const __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
                w0 = d * ((v16f)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)) - v16_set1(8.0f));
                w1 = d * ((v16f)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)) - v16_set1(8.0f));
            } else {
                w0 = d * (v16f)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 2))));
                w1 = d * (v16f)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 18))));
            }
            for (int r = 0; r < R; r++) {
                const float *p = x + (size_t)r * ldx + b * 32;
                acc[r][0] = v16_fma(w0, v16_load(p), acc[r][0]);
                acc[r][1] = v16_fma(w1, v16_load(p + 16), acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) y[(size_t)r * ldy + o] = v16_hsum(acc[r][0] + acc[r][1]);
    }
}
#else
/* y[r] = x[r] . W^T for R (1..4, a compile-time constant after inlining)
 * rows of x at once: each block of W is converted once and used R times.
 * Two accumulators per row (even and odd 8-lane parts of the block) keep
 * enough independent FMA chains in flight. */
static inline __attribute__((always_inline)) void fused_rows(int R, int q4, const float *x, int ldx,
                                                             const ops_mat *W, float *y, int ldy)
{
    const int64_t nb = W->cols / 32;
    const size_t bb = q4 ? 18 : 34;
    for (int64_t o = 0; o < W->rows; o++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)o * W->row_bytes;
        v8f acc[4][2];
        for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = v8_set1(0.0f);
        for (int64_t b = 0; b < nb; b++, w += bb) {
            /* the block's 32 weights as wv[0..3], scale applied */
            v8f d = v8_set1(load_f16(w)), wv[4];
            if (q4) {
                q4_unpack(w + 2, d, wv);
            } else {
                for (int j = 0; j < 4; j++) wv[j] = d * v8_from_i8(w + 2 + 8 * j);
            }
            for (int r = 0; r < R; r++) {
                const float *p = x + (size_t)r * ldx + b * 32;
                acc[r][0] = v8_fma(wv[0], v8_load(p), acc[r][0]);
                acc[r][1] = v8_fma(wv[1], v8_load(p + 8), acc[r][1]);
                acc[r][0] = v8_fma(wv[2], v8_load(p + 16), acc[r][0]);
                acc[r][1] = v8_fma(wv[3], v8_load(p + 24), acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) y[(size_t)r * ldy + o] = v8_hsum(acc[r][0] + acc[r][1]);
    }
}

#endif

/* Rows of x per pass over W: 4 with 8-wide vectors; with AVX-512 two rows
 * per pass measured faster than four (the pass is then load-bound). */
#if defined(__AVX512F__)
#define FUSED_ROWS_PER_PASS 2
#else
#define FUSED_ROWS_PER_PASS 4
#endif

static void linear_fused_serial(int n, const float *x, int ldx, const ops_mat *W, float *y, int ldy)
{
    const int q4 = W->type == QUANT_Q4_0;
    for (int i = 0; i < n; i += FUSED_ROWS_PER_PASS) {
        const float *xi = x + (size_t)i * ldx;
        float *yi = y + (size_t)i * ldy;
        switch (n - i < FUSED_ROWS_PER_PASS ? n - i : FUSED_ROWS_PER_PASS) {
        case 1: q4 ? fused_rows(1, 1, xi, ldx, W, yi, ldy) : fused_rows(1, 0, xi, ldx, W, yi, ldy); break;
        case 2: q4 ? fused_rows(2, 1, xi, ldx, W, yi, ldy) : fused_rows(2, 0, xi, ldx, W, yi, ldy); break;
        case 3: q4 ? fused_rows(3, 1, xi, ldx, W, yi, ldy) : fused_rows(3, 0, xi, ldx, W, yi, ldy); break;
        default: q4 ? fused_rows(4, 1, xi, ldx, W, yi, ldy) : fused_rows(4, 0, xi, ldx, W, yi, ldy); break;
        }
    }
}

/* Big matrices are split by output rows across the pool (below ~128K
 * weights the wake-up would cost more than it saves). */
#define OPS_FUSED_PAR_MIN (128 * 1024)
#define OPS_FUSED_CHUNK 256 /* output rows per task */

typedef struct {
    int n, ldx, ldy;
    const float *x;
    const ops_mat *W;
    float *y;
} fused_ctx;

static void fused_task(void *ctx, int task, int thread)
{
    const fused_ctx *f = ctx;
    (void)thread;
    int64_t r0 = (int64_t)task * OPS_FUSED_CHUNK, nr = f->W->rows - r0;
    ops_mat part = ops_mat_rows(f->W, r0, nr < OPS_FUSED_CHUNK ? nr : OPS_FUSED_CHUNK);
    linear_fused_serial(f->n, f->x, f->ldx, &part, f->y + r0, f->ldy);
}

static void linear_fused(int n, const float *x, int ldx, const ops_mat *W, float *y, int ldy)
{
    if (W->rows * W->cols < OPS_FUSED_PAR_MIN || ops_n_threads() == 1) {
        linear_fused_serial(n, x, ldx, W, y, ldy);
        return;
    }
    fused_ctx f = {n, ldx, ldy, x, W, y};
    ops_parallel_for((int)((W->rows + OPS_FUSED_CHUNK - 1) / OPS_FUSED_CHUNK), fused_task, &f);
}

/* y[n, W->rows] by dot products of f32 rows; f16 weights are dequantized
 * one block of rows at a time into scratch. Each output element is one
 * ops_dot, so a row's result does not depend on n. */
static void linear_dots(int n, const float *x, int ldx, const ops_mat *W, float *y, int ldy, float *scratch)
{
    const int cols = (int)W->cols;
    const int64_t rb = W->type == QUANT_F32 ? W->rows : block_rows(W, n);
    for (int64_t r0 = 0; r0 < W->rows; r0 += rb) {
        const int64_t nr = W->rows - r0 < rb ? W->rows - r0 : rb;
        const float *wf = scratch; /* row r0 of the block */
        size_t ldw = (size_t)cols;
        if (W->type == QUANT_F32) {
            ldw = W->row_bytes / sizeof(float);
            wf = (const float *)W->data + (size_t)r0 * ldw;
        } else {
            ops_dequant_rows(W, r0, nr, scratch);
        }
        for (int r = 0; r < n; r++)
            for (int64_t o = 0; o < nr; o++)
                y[(size_t)r * ldy + r0 + o] = ops_dot(x + (size_t)r * ldx, wf + (size_t)o * ldw, cols);
    }
}

void ops_linear(int n, const float *x, int ldx, const ops_mat *W, const float *b, float *y, int ldy,
                float *scratch, int flags)
{
    const int cols = (int)W->cols;
    if (n <= 0 || W->rows <= 0) return;
    if ((flags & OPS_ROWWISE) && (W->type == QUANT_Q8_0 || W->type == QUANT_Q4_0)) {
        linear_fused(n, x, ldx, W, y, ldy);
    } else if ((flags & OPS_ROWWISE) || (W->type == QUANT_F32 && n <= 4)) {
        /* dot products: no BLAS call, so a few rows are safe inside
         * ops_parallel_for tasks, and cheaper than a GEMM setup */
        linear_dots(n, x, ldx, W, y, ldy, scratch);
    } else if (W->type == QUANT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)W->rows, cols, 1.0f, x, ldx,
                    (const float *)W->data, (int)(W->row_bytes / sizeof(float)), 0.0f, y, ldy);
    } else if (n <= OPS_FUSED_MAX_N && (W->type == QUANT_Q8_0 || W->type == QUANT_Q4_0)) {
        linear_fused(n, x, ldx, W, y, ldy);
    } else {
        int64_t rb = block_rows(W, n);
        for (int64_t r0 = 0; r0 < W->rows; r0 += rb) {
            int nr = (int)(W->rows - r0 < rb ? W->rows - r0 : rb);
            ops_dequant_rows(W, r0, nr, scratch);
            /* y[:, r0:r0+nr] = x . block^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, cols, 1.0f, x, ldx, scratch, cols,
                        0.0f, y + r0, ldy);
        }
    }
    if (b) {
        const int m = (int)W->rows;
        for (int r = 0; r < n; r++) {
            float *yr = y + (size_t)r * ldy;
            for (int i = 0; i < m; i++) yr[i] += b[i];
        }
    }
}
