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
    atomic_int sleeping; /* the dispatcher waits on pool_done_cv for done == n */
} pool_job;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done_cv = PTHREAD_COND_INITIALIZER; /* a sleeping dispatcher's job is done */
static pthread_mutex_t pool_dispatch = PTHREAD_MUTEX_INITIALIZER; /* one region at a time */
static pool_job *pool_cur;       /* under pool_mu */
static atomic_uint pool_gen;     /* bumped for every published job */
static int pool_created = 1;     /* caller + helper threads started (under pool_mu) */
static atomic_int pool_active;   /* threads that take tasks, <= pool_created; 0: not set up yet */

/* > 0 while this thread runs tasks of a region: a region opened inside a
 * task runs serially on that thread (as thread 0), whatever the pool is
 * doing, so a task may size its scratch for one thread. */
static _Thread_local int pool_depth;

static void run_tasks(pool_job *j, int thread)
{
    int i;
    pool_depth++;
    while ((i = atomic_fetch_add(&j->next, 1)) < j->n) {
        j->fn(j->ctx, i, thread);
        /* the last task wakes a dispatcher that went to sleep (its flag is
         * set before it reads done, and done is counted here before the
         * flag is read: one of the two sees the other) */
        if (atomic_fetch_add(&j->done, 1) + 1 == j->n && atomic_load(&j->sleeping)) {
            pthread_mutex_lock(&pool_mu);
            pthread_cond_signal(&pool_done_cv);
            pthread_mutex_unlock(&pool_mu);
        }
    }
    pool_depth--;
}

/* pool_gen when helper t was started (under pool_mu, so before any job
 * published after it): a helper that starts late still takes that job. */
static unsigned pool_gen_at_start[OPS_MAX_THREADS];

static void *pool_helper(void *arg)
{
    const int thread = (int)(intptr_t)arg;
    unsigned seen = pool_gen_at_start[thread];
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
        /* a helper beyond the budget (ops_set_threads lowered it) sits out */
        pool_job *j = thread < atomic_load(&pool_active) ? pool_cur : NULL;
        if (j) atomic_fetch_add(&j->refs, 1);
        pthread_mutex_unlock(&pool_mu);
        if (j) {
            run_tasks(j, thread);
            atomic_fetch_sub(&j->refs, 1);
        }
    }
    return NULL;
}

/* Start helpers until n threads exist (caller + n - 1); under pool_mu. */
static void pool_grow(int n)
{
    for (int t = pool_created; t < n; t++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pool_gen_at_start[t] = atomic_load(&pool_gen);
        if (pthread_create(&th, &at, pool_helper, (void *)(intptr_t)t) == 0) pool_created++;
        pthread_attr_destroy(&at);
    }
}

static int default_threads(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("SYNTH_THREADS");
    return env && atoi(env) > 0 ? atoi(env) : (ncpu > 0 ? (int)ncpu : 1);
}

void openblas_set_num_threads(int n); /* OpenBLAS's own API (not in cblas.h) */

/* Size the pool to n threads (<= 0: the default); returns the budget. */
static int pool_setup(int n)
{
    if (n <= 0) n = default_threads();
    if (n > OPS_MAX_THREADS) n = OPS_MAX_THREADS;
    pthread_mutex_lock(&pool_dispatch); /* no region runs while the budget changes */
    pthread_mutex_lock(&pool_mu);
    pool_grow(n);
    atomic_store(&pool_active, n < pool_created ? n : pool_created);
    n = atomic_load(&pool_active);
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&pool_dispatch);
    return n;
}

int ops_set_threads(int n)
{
    n = pool_setup(n);
    openblas_set_num_threads(n);
    return n;
}

int ops_n_threads(void)
{
    int n = atomic_load(&pool_active);
    return n > 0 ? n : pool_setup(0);
}

void ops_parallel_for(int n, ops_task_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (n == 1 || pool_depth > 0 || ops_n_threads() == 1 || pthread_mutex_trylock(&pool_dispatch) != 0) {
        pool_depth++;
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        pool_depth--;
        return;
    }
    pool_job j = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.refs, 0);
    atomic_init(&j.sleeping, 0);
    pthread_mutex_lock(&pool_mu);
    pool_cur = &j;
    atomic_fetch_add_explicit(&pool_gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
    run_tasks(&j, 0);
    /* Wait for the tasks the helpers took. On a busy machine (the server:
     * its event loop and the clients share the cores) a helper can be
     * preempted in the middle of one: after a short spin, sleep until the
     * last task wakes us, so this core is free for whatever preempted the
     * helper. (Yielding in a loop instead kept the core busy with system
     * calls: a fifth of the worker's time under 32 clients, and the
     * preempting thread stayed on the helper's core.) */
    for (int k = 0; k < OPS_SPIN && atomic_load(&j.done) < n; k++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    if (atomic_load(&j.done) < n) {
        pthread_mutex_lock(&pool_mu);
        atomic_store(&j.sleeping, 1);
        while (atomic_load(&j.done) < n) pthread_cond_wait(&pool_done_cv, &pool_mu);
        pthread_mutex_unlock(&pool_mu);
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
    kern_gelu_fn g = kern_gelu();
    if (g) { /* a wider level: the same bits */
        g(x, n);
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_gelu(v8_load(x + i)));
    if (i < n) v8_store_tail(x + i, v8_gelu(v8_load_tail(x + i, (int)(n - i), 0.0f)), (int)(n - i));
}

void ops_geglu(int n, int F, float *u, int ld)
{
    for (int r = 0; r < n; r++) {
        float *g = u + (size_t)r * ld;
        const float *lin = g + F;
        ops_gelu_tanh(g, (size_t)F);
        for (int j = 0; j < F; j++) g[j] *= lin[j];
    }
}

/* ---- softmax / logsumexp ---- */
/* Four running maxima: one would wait on the previous compare (a chain of
 * n / 8 dependent steps over 8,192 logits). The largest value does not
 * depend on the order; of +0 and -0 either may come out, which every use
 * below treats alike (x - mx, x == mx). */
static float row_max(const float *x, int n)
{
    v8f m0 = v8_set1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = v8_max(m0, v8_load(x + i));
        m1 = v8_max(m1, v8_load(x + i + 8));
        m2 = v8_max(m2, v8_load(x + i + 16));
        m3 = v8_max(m3, v8_load(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) m0 = v8_max(m0, v8_load(x + i));
    float mx = v8_hmax(v8_max(v8_max(m0, m1), v8_max(m2, m3)));
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* sum_i exp(x[i] - mx); if out != NULL the exps are stored there. */
static float row_sum_exp(const float *x, int n, float mx, float *out)
{
    kern_sum_exp_fn f = kern_sum_exp();
    return f ? f(x, n, mx, out) : v8_sum_exp_from(x, n, 0, mx, out, v8_set1(0.0f));
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

/* The first index holding m (0 if none: a row of NaNs). */
static int first_index_of(const float *x, int n, float m)
{
    for (int i = 0; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}

int ops_argmax(const float *x, int n)
{
    return first_index_of(x, n, row_max(x, n));
}

/* ops_log_softmax_z and ops_log_softmax_exps: one computation of mx and z */
static float log_softmax(const float *x, int n, float *mx, int *argmax, float *exps)
{
    float m = row_max(x, n);
    if (argmax) *argmax = first_index_of(x, n, m);
    *mx = m;
    return logf(row_sum_exp(x, n, m, exps));
}

float ops_log_softmax_z(const float *x, int n, float *mx, int *argmax)
{
    return log_softmax(x, n, mx, argmax, NULL);
}

float ops_log_softmax_exps(const float *x, int n, float *mx, float *exps)
{
    return log_softmax(x, n, mx, NULL, exps);
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

void ops_wsum_heads(int n, int d, int dh, const float *A, size_t a_stride, const float *X, int ldx, float *y)
{
    kern_wsum()(n, d, dh, A, a_stride, X, ldx, 0, y);
}

void ops_wsum_heads_f16(int n, int d, int dh, const float *A, size_t a_stride, const uint16_t *X, int ldx,
                        float *y)
{
    kern_wsum()(n, d, dh, A, a_stride, X, ldx, 1, y);
}

void ops_qk_blocked(int n, int ncol, const float *q, const float *KB, float *y)
{
    kern_qk()(n, ncol, q, KB, y);
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
    *m = (ops_mat){.data = data, .type = type, .rows = rows, .cols = cols, .row_bytes = rb};
    return 0;
}

/* m's rows packed into a new 64-byte aligned buffer described by *out:
 * the f32-kernel layout (i8 = 0) or the int8 one (i8 = 1, q8_0). The
 * buffer, or NULL (out of memory, or a layout the matrix cannot have). */
static void *pack_new(const ops_mat *m, int64_t group_rows, int i8, kern_mat *out)
{
    const size_t pb = i8 ? kern_i8_panel_bytes(m->cols) : kern_panel_bytes(m->type, m->cols);
    const int64_t np = kern_n_panels(m->rows, group_rows);
    if (pb == 0 || np <= 0 || (size_t)np > SIZE_MAX / pb) return NULL;
    void *buf = aligned_alloc(64, ((size_t)np * pb + 63) & ~(size_t)63);
    if (buf && (i8 ? kern_pack_i8(out, buf, m->data, m->row_bytes, m->rows, m->cols, group_rows)
                   : kern_pack(out, buf, m->data, m->row_bytes, m->type, m->rows, m->cols, group_rows)) != 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

int ops_mat_pack(ops_mat *m, int64_t group_rows)
{
    if (group_rows <= 0) group_rows = m->rows;
    if (m->rows % group_rows != 0) return -1;
    kern_mat pk;
    void *buf = pack_new(m, group_rows, 0, &pk);
    if (!buf) return -1;
    ops_mat_free(m);
    m->pk = pk;
    m->pk_owned = buf;
    m->group_rows = group_rows;
    /* the int8 layout too; without it q8_0 stays on the f32 kernels */
    if (m->type == QUANT_Q8_0) m->pk8_owned = pack_new(m, group_rows, 1, &m->pk8);
    if (!m->pk8_owned) m->pk8.data = NULL;
    return 0;
}

size_t ops_mat_packed_bytes(const ops_mat *m)
{
    const int64_t np = kern_n_panels(m->rows, m->group_rows);
    return (m->pk_owned ? (size_t)np * m->pk.panel_bytes : 0) + (m->pk8_owned ? (size_t)np * m->pk8.panel_bytes : 0);
}

void ops_mat_free(ops_mat *m)
{
    if (!m) return;
    free(m->pk_owned);
    m->pk_owned = NULL;
    m->pk.data = NULL;
    free(m->pk8_owned);
    m->pk8_owned = NULL;
    m->pk8.data = NULL;
}

ops_mat ops_mat_rows(const ops_mat *m, int64_t r0, int64_t n)
{
    ops_mat v = *m;
    v.data = (const uint8_t *)m->data + (size_t)r0 * m->row_bytes;
    v.rows = n;
    v.pk_owned = v.pk8_owned = NULL; /* a view owns nothing */
    if (!m->pk.data || kern_view(&m->pk, m->group_rows, r0, n, &v.pk) != 0) v.pk.data = NULL;
    if (!v.pk.data || !m->pk8.data || kern_view(&m->pk8, m->group_rows, r0, n, &v.pk8) != 0) v.pk8.data = NULL;
    return v;
}

/* f16 -> f32 (exact for every value, inlined: it runs once per block). */
static inline float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return quant_f16_to_f32(h);
#endif
}

/* Q8_0 block: f16 d, int8 qs[32]; x = d * q. */
static void dequant_q8_0(const uint8_t *src, float *dst, int64_t nblocks)
{
    for (int64_t ib = 0; ib < nblocks; ib++, src += sizeof(quant_block_q8_0), dst += QUANT_BLOCK) {
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
    for (int64_t ib = 0; ib < nblocks; ib++, src += sizeof(quant_block_q4_0), dst += QUANT_BLOCK) {
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
        dequant_q8_0(src, dst, n * cols / QUANT_BLOCK);
        break;
    case QUANT_Q4_0:
        dequant_q4_0(src, dst, n * cols / QUANT_BLOCK);
        break;
    default:
        for (int64_t r = 0; r < n; r++) quant_dequantize_row(W->type, src + (size_t)r * W->row_bytes, dst + r * cols, cols);
        break;
    }
}

/* Rows per dequantized block of the GEMM path. Small batches use blocks
 * that stay in L2 next to the activations; big batches use big blocks so
 * that the GEMM calls are big (each call repacks x, a pass over x). */
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

/* ---- the packed kernels (kern.h) across the pool ----
 * Tasks are runs of panel groups (64 outputs); below OPS_KERN_PAR_MIN
 * multiply-adds the wake-up of the helpers costs more than it saves. */
#define OPS_KERN_PAR_MIN (96 * 1024)

typedef struct {
    const kern_mat *W;
    kern_group_fn fn;   /* the f32 kernels, or NULL: */
    kern_i8_fn fn8;     /* the int8 kernels on the quantized rows xq, xd */
    int n, ldx, ldy, groups_per_task;
    const float *x;
    float *y;
    const float *bias;  /* [W->rows] or NULL, added in the tasks */
    int gelu;           /* apply ops_gelu_tanh after the bias */
    const uint8_t *xq;  /* [n, ldq] q + 128 */
    const float *xd;    /* [n, ldd] block scales */
    int ldq, ldd;
} kern_ctx;

/* Rows per pass over a group: the x block (rows x cols floats) stays in L2
 * while the group's tile is converted and used, so many rows (scoring)
 * re-read x from L2, not memory, once per group. */
#define OPS_KERN_ROW_BLOCK 192

static void kern_groups(const kern_ctx *k, int64_t g0, int64_t g1)
{
    const kern_mat *W = k->W;
    const int64_t n_panels = (W->rows + KERN_NR - 1) / KERN_NR;
    /* the int8 kernels take no scratch: the thread's scratch may hold the
     * quantized rows (quantize_rows) */
    float *scratch = k->n > 1 && k->fn ? kern_thread_scratch(kern_scratch_floats(W)) : NULL;
    for (int r0 = 0; r0 < k->n; r0 += OPS_KERN_ROW_BLOCK) {
        const int nr = k->n - r0 < OPS_KERN_ROW_BLOCK ? k->n - r0 : OPS_KERN_ROW_BLOCK;
        for (int64_t g = g0; g < g1; g++) {
            int64_t p0 = g * KERN_GROUP, np = n_panels - p0 < KERN_GROUP ? n_panels - p0 : KERN_GROUP;
            int64_t valid = W->rows - p0 * KERN_NR;
            int nv = valid < KERN_NR * KERN_GROUP ? (int)valid : KERN_NR * KERN_GROUP;
            float *yb = k->y + (size_t)r0 * k->ldy + p0 * KERN_NR;
            if (k->fn)
                k->fn(W, p0, (int)np, nv, nr, k->x + (size_t)r0 * k->ldx, k->ldx, yb, k->ldy, scratch);
            else
                k->fn8(W, p0, (int)np, nv, nr, k->xq + (size_t)r0 * k->ldq, k->ldq, k->xd + (size_t)r0 * k->ldd,
                       k->ldd, yb, k->ldy);
            /* epilogue on the block just written: the same elementwise
             * bits as a pass over y afterwards, whatever n is */
            for (int r = 0; (k->bias || k->gelu) && r < nr; r++) {
                float *yr = yb + (size_t)r * k->ldy;
                if (k->bias) ops_axpy(yr, 1.0f, k->bias + p0 * KERN_NR, nv);
                if (k->gelu) ops_gelu_tanh(yr, (size_t)nv);
            }
        }
    }
}

static void kern_task(void *ctx, int task, int thread)
{
    const kern_ctx *k = ctx;
    (void)thread;
    const int64_t n_groups = ((k->W->rows + KERN_NR - 1) / KERN_NR + KERN_GROUP - 1) / KERN_GROUP;
    int64_t g0 = (int64_t)task * k->groups_per_task, g1 = g0 + k->groups_per_task;
    kern_groups(k, g0, g1 < n_groups ? g1 : n_groups);
}

/* The int8 path (kern.h idea 3): rows x [n, K] quantized once, on the
 * calling thread, into its kern.h scratch, described in k. The tasks only
 * read them, and the int8 kernels take no scratch of their own. 0, or -1
 * when the scratch cannot be had (the f32 kernels then run). */
static int quantize_rows(int n, const float *x, int ldx, int64_t K, kern_ctx *k)
{
    const int ldq = (int)((K + 63) & ~(int64_t)63), ldd = (int)(K / QUANT_BLOCK);
    const size_t qbytes = (size_t)n * ldq; /* a multiple of 64: the scales after it stay aligned */
    float *buf = kern_thread_scratch(qbytes / sizeof(float) + (size_t)n * ldd);
    if (!buf) return -1;
    uint8_t *xq = (uint8_t *)buf;
    float *xd = (float *)(xq + qbytes);
    const kern_i8q_fn quant = kern_i8q();
    for (int r = 0; r < n; r++) quant(x + (size_t)r * ldx, K, xq + (size_t)r * ldq, xd + (size_t)r * ldd);
    k->xq = xq, k->xd = xd, k->ldq = ldq, k->ldd = ldd;
    return 0;
}

static void linear_packed(int n, const float *x, int ldx, const ops_mat *W, const float *b, int gelu, float *y,
                          int ldy)
{
    const int64_t n_groups = ((W->rows + KERN_NR - 1) / KERN_NR + KERN_GROUP - 1) / KERN_GROUP;
    kern_ctx k = {&W->pk, kern_group(), NULL, n, ldx, ldy, 1, x, y, b, gelu, NULL, NULL, 0, 0};
    if (W->pk8.data && kern_get_act() == KERN_ACT_Q8 && quantize_rows(n, x, ldx, W->cols, &k) == 0) {
        k.W = &W->pk8;
        k.fn = NULL;
        k.fn8 = kern_i8();
    }
    const int nt = ops_n_threads();
    if (nt == 1 || n_groups == 1 || (double)n * W->rows * W->cols < OPS_KERN_PAR_MIN) {
        kern_groups(&k, 0, n_groups);
        return;
    }
    /* about 4 tasks per thread, so a thread slowed by the machine's other
     * load does not hold up the region */
    int64_t tasks = (int64_t)nt * 4 < n_groups ? (int64_t)nt * 4 : n_groups;
    k.groups_per_task = (int)((n_groups + tasks - 1) / tasks);
    ops_parallel_for((int)((n_groups + k.groups_per_task - 1) / k.groups_per_task), kern_task, &k);
}

/* y[n, W->rows] by dot products of f32 rows (unpacked weights); f16 and
 * quantized weights are dequantized one block of rows at a time into
 * scratch. Each output element is one ops_dot, so a row's result does not
 * depend on n. */
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
    if (W->pk.data && ((flags & OPS_ROWWISE) || n <= OPS_PACKED_MAX_N)) {
        linear_packed(n, x, ldx, W, b, (flags & OPS_GELU) != 0, y, ldy);
        return;
    } else if ((flags & OPS_ROWWISE) || (W->type == QUANT_F32 && n <= 4)) {
        /* dot products: no BLAS call, so a few rows are safe inside
         * ops_parallel_for tasks, and cheaper than a GEMM setup */
        linear_dots(n, x, ldx, W, y, ldy, scratch);
    } else if (W->type == QUANT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)W->rows, cols, 1.0f, x, ldx,
                    (const float *)W->data, (int)(W->row_bytes / sizeof(float)), 0.0f, y, ldy);
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
    for (int r = 0; r < n; r++) {
        float *yr = y + (size_t)r * ldy;
        if (b) ops_axpy(yr, 1.0f, b, (int)W->rows); /* y + 1 * b: one rounding, the bits of y + b */
        if (flags & OPS_GELU) ops_gelu_tanh(yr, (size_t)W->rows);
    }
}
