/* test_ops.c - the forward kernels (model/ops.h) against naive double
 * precision loops and against quant_dequantize_row. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_client.h"
#include "ops.h"
#include "quant.h"
#include "test.h"
#include "test_util.h"


TEST(test_exp)
{
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double ref = exp((double)x), got = ops_exp(x);
        double rel = fabs(got - ref) / ref;
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 4e-7, "exp worst relative error %g", worst);
    /* the in-place version, with a tail, gives the same numbers */
    float v[13];
    for (int i = 0; i < 13; i++) v[i] = tu_frand() * 20.0f;
    float w[13];
    memcpy(w, v, sizeof v);
    ops_exp_inplace(w, 13);
    for (int i = 0; i < 13; i++) CHECK(w[i] == ops_exp(v[i]));
    CHECK(ops_exp(-1000.0f) < 1e-37f);
    CHECK(ops_exp(-INFINITY) < 1e-37f);
}

TEST(test_gelu)
{
    enum { N = 1003 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++) x[i] = (float)(i - N / 2) * 0.02f;
    x[0] = -100.0f;
    x[1] = 100.0f;
    float *y = malloc(N * sizeof *y);
    memcpy(y, x, N * sizeof *x);
    ops_gelu_tanh(y, N);
    for (int i = 0; i < N; i++) {
        double t = x[i];
        double ref = 0.5 * t * (1.0 + tanh(sqrt(2.0 / M_PI) * (t + 0.044715 * t * t * t)));
        CHECK_NEAR(y[i], ref, 1e-6 * (1.0 + fabs(ref)));
    }
    free(x);
    free(y);
}

TEST(test_softmax_logsumexp)
{
    for (int n = 1; n <= 37; n += 3) {
        float x[40], y[40];
        for (int i = 0; i < n; i++) x[i] = tu_frand() * 30.0f;
        memcpy(y, x, sizeof x);
        ops_softmax(y, n);
        double mx = -1e30, s = 0;
        int am = 0;
        for (int i = 0; i < n; i++)
            if (x[i] > mx) { mx = x[i]; am = i; }
        for (int i = 0; i < n; i++) s += exp(x[i] - mx);
        double tot = 0;
        for (int i = 0; i < n; i++) {
            CHECK_NEAR(y[i], exp(x[i] - mx) / s, 1e-6);
            tot += y[i];
        }
        CHECK_NEAR(tot, 1.0, 1e-5);
        int got_am = -1;
        float gmx, z = ops_log_softmax_z(x, n, &gmx, &got_am);
        CHECK(gmx == (float)mx);
        CHECK_NEAR(z, log(s), 1e-5);
        for (int i = 0; i < n; i++) CHECK_NEAR(ops_log_prob(x[i], gmx, z), x[i] - mx - log(s), 1e-5);
        CHECK(got_am == am);
        /* ops_log_softmax_exps: the same bits, and the exps it summed */
        float emx, ez, ex[40];
        memset(ex, 0xff, sizeof ex);
        ez = ops_log_softmax_exps(x, n, &emx, ex);
        CHECK(memcmp(&emx, &gmx, sizeof emx) == 0 && memcmp(&ez, &z, sizeof ez) == 0);
        for (int i = 0; i < n; i++) CHECK_NEAR(ex[i], exp(x[i] - mx), 1e-5 * exp(x[i] - mx) + 1e-30);
        CHECK(ops_log_softmax_exps(x, n, &emx, NULL) == z);
    }
    /* ties: lowest index */
    float t[4] = {1, 3, 3, 2};
    int am = -1;
    float tmx;
    ops_log_softmax_z(t, 4, &tmx, &am);
    CHECK(am == 1 && tmx == 3.0f);
    CHECK(ops_argmax(t, 4) == 1);
    /* ops_argmax against a loop, across vector widths and tails */
    for (int n = 1; n < 70; n += 3) {
        float v[70];
        for (int i = 0; i < n; i++) v[i] = (float)((i * 37) % 11);
        int want = 0;
        for (int i = 1; i < n; i++)
            if (v[i] > v[want]) want = i;
        CHECK_MSG(ops_argmax(v, n) == want, "ops_argmax n=%d: %d, want %d", n, ops_argmax(v, n), want);
    }
}

TEST(test_layernorm)
{
    enum { n = 3, d = 37, ld = 40 };
    float x[n * ld], y[n * ld], w[d], b[d];
    for (int i = 0; i < n * ld; i++) x[i] = tu_frand() * 3.0f + 1.0f;
    for (int i = 0; i < d; i++) { w[i] = tu_frand(); b[i] = tu_frand(); }
    ops_layernorm(n, d, x, ld, w, b, 1e-5f, y, ld);
    for (int r = 0; r < n; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < d; i++) m += x[r * ld + i];
        m /= d;
        for (int i = 0; i < d; i++) v += (x[r * ld + i] - m) * (x[r * ld + i] - m);
        v /= d;
        for (int i = 0; i < d; i++)
            CHECK_NEAR(y[r * ld + i], (x[r * ld + i] - m) / sqrt(v + 1e-5) * w[i] + b[i], 1e-5);
    }
    /* in place */
    ops_layernorm(n, d, x, ld, w, b, 1e-5f, x, ld);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < d; i++) CHECK(x[r * ld + i] == y[r * ld + i]);
}

/* W [rows, cols] quantized to type, then y = x W^T + b checked against a
 * double loop over the dequantized W, with y a column slice of a wider
 * matrix (ldy > rows) whose other columns must stay untouched. */
static void check_linear(uint32_t type, int n, int rows, int cols, int flags)
{
    size_t rb = quant_row_size(type, cols);
    uint8_t *wq = malloc(rb * rows);
    float *wf = malloc(sizeof(float) * rows * cols), *wd = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) wf[i] = tu_frand();
    for (int r = 0; r < rows; r++) quant_quantize_row(type, wf + (size_t)r * cols, wq + r * rb, cols);
    for (int r = 0; r < rows; r++) quant_dequantize_row(type, wq + r * rb, wd + (size_t)r * cols, cols);
    ops_mat W;
    CHECK(ops_mat_init(&W, wq, type, rows, cols) == 0);
    /* ops_dequant_rows equals the reference dequantizer exactly */
    float *dq = malloc(sizeof(float) * rows * cols);
    ops_dequant_rows(&W, 1, rows - 1, dq);
    CHECK(memcmp(dq, wd + cols, sizeof(float) * (rows - 1) * cols) == 0);

    int ldx = cols + 3, ldy = rows + 5;
    float *x = malloc(sizeof(float) * n * ldx), *y = malloc(sizeof(float) * n * ldy), *b = malloc(sizeof(float) * rows);
    for (int i = 0; i < n * ldx; i++) x[i] = tu_frand();
    for (int i = 0; i < rows; i++) b[i] = tu_frand();
    for (int i = 0; i < n * ldy; i++) y[i] = 777.0f;
    size_t ns = ops_linear_scratch(&W, n);
    float *scratch = ns ? malloc(sizeof(float) * ns) : NULL;
    ops_linear(n, x, ldx, &W, b, y + 2, ldy, scratch, flags);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < rows; o++) {
            double s = b[o];
            for (int k = 0; k < cols; k++) s += (double)x[i * ldx + k] * wd[(size_t)o * cols + k];
            if (fabs(y[i * ldy + 2 + o] - s) > 1e-4) bad++;
        }
        if (y[i * ldy] != 777.0f || y[i * ldy + 1] != 777.0f || y[i * ldy + 2 + rows] != 777.0f) bad++;
    }
    CHECK_MSG(bad == 0, "linear %s n=%d rows=%d cols=%d flags=%d: %d bad", quant_type_name(type), n, rows, cols, flags,
              bad);
    if (flags & OPS_ROWWISE) {
        /* batch invariance: every row alone gives bit-identical outputs */
        float *y1 = malloc(sizeof(float) * rows);
        int diff = 0;
        for (int i = 0; i < n; i++) {
            ops_linear(1, x + (size_t)i * ldx, ldx, &W, b, y1, rows, scratch, flags);
            diff += memcmp(y1, y + (size_t)i * ldy + 2, sizeof(float) * rows) != 0;
        }
        CHECK_MSG(diff == 0, "rowwise %s n=%d: %d rows differ from the row alone", quant_type_name(type), n, diff);
        free(y1);
    }
    /* OPS_GELU: the bits of ops_gelu_tanh over the plain result, on this
     * path and on the packed one (where it runs inside the tasks) */
    for (int packed = 0; packed < 2; packed++) {
        if (packed && ops_mat_pack(&W, 0) != 0) break;
        float *yg = malloc(sizeof(float) * n * ldy), *yp = malloc(sizeof(float) * n * ldy);
        ops_linear(n, x, ldx, &W, b, yp, ldy, scratch, flags);
        ops_linear(n, x, ldx, &W, b, yg, ldy, scratch, flags | OPS_GELU);
        int gd = 0;
        for (int i = 0; i < n; i++) {
            ops_gelu_tanh(yp + (size_t)i * ldy, (size_t)rows);
            gd += memcmp(yp + (size_t)i * ldy, yg + (size_t)i * ldy, sizeof(float) * rows) != 0;
        }
        CHECK_MSG(gd == 0, "OPS_GELU %s packed %d n=%d: %d rows differ from linear + gelu", quant_type_name(type),
                  packed, n, gd);
        free(yg);
        free(yp);
    }
    ops_mat_free(&W);
    free(wq); free(wf); free(wd); free(dq); free(x); free(y); free(b); free(scratch);
}

TEST(test_linear)
{
    const uint32_t types[] = {QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0};
    for (int t = 0; t < 4; t++) {
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 1, 40, 64, f);     /* small batches: fused kernels */
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 3, 33, 128, f);
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 5, 300, 96, f);    /* several row blocks */
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 15, 700, 96, f);   /* fused (AVX-512) or dequantize + sgemm, small blocks */
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 20, 300, 64, f);   /* dequantize + sgemm, big blocks */
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 260, 70, 32, f);   /* big-batch block size */
        for (int f = 0; f <= OPS_ROWWISE; f++) check_linear(types[t], 2, 2100, 128, f);  /* fused, split across threads */
    }
}

TEST(test_dot_axpy_wsum)
{
    float a[70], b[70], y[70], X[9 * 75], w[9];
    for (int i = 0; i < 70; i++) { a[i] = tu_frand(); b[i] = tu_frand(); }
    for (int i = 0; i < 9 * 75; i++) X[i] = tu_frand();
    for (int i = 0; i < 9; i++) w[i] = tu_frand();
    for (int n = 0; n <= 70; n += 7) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
        CHECK_NEAR(ops_dot(a, b, n), s, 1e-5);
        memcpy(y, b, sizeof y);
        ops_axpy(y, 0.5f, a, n);
        for (int i = 0; i < 70; i++) CHECK_NEAR(y[i], i < n ? b[i] + 0.5 * a[i] : b[i], 1e-6);
    }
    /* m = 70: two full 32-column passes and a 6-column tail; ld 75 */
    for (int n = 1; n <= 9; n += 4) {
        float out[71];
        out[70] = 123.0f;
        ops_wsum_rows(n, 70, w, X, 75, out);
        for (int c = 0; c < 70; c++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)w[j] * X[j * 75 + c];
            CHECK_NEAR(out[c], s, 1e-5);
        }
        CHECK(out[70] == 123.0f);
    }
}

static int par_hits[1000];
static int par_threads_seen[64];

static void nested_task(void *ctx, int task, int thread)
{
    (void)ctx;
    (void)thread;
    (void)task;
}

static void par_task(void *ctx, int task, int thread)
{
    int *flag = ctx;
    par_hits[task]++;
    if (thread >= 0 && thread < 64) par_threads_seen[thread] = 1;
    if (thread < 0 || thread >= ops_n_threads()) *flag = 1;
    ops_parallel_for(3, nested_task, NULL); /* nested: runs inline, no deadlock */
}

/* A region opened inside a task runs on that task's thread, as thread 0,
 * even when the outer region itself ran inline (one task) and the pool is
 * free: a task may size its scratch for one thread (model.c's sliced
 * steps do). */
/* a task long enough (about a millisecond) that a free helper takes some */
static void spin(void)
{
    volatile double acc = 1.0;
    for (int i = 0; i < 200000; i++) acc = acc * 0.999 + 1.0;
}

/* sets *ctx when a helper (thread != 0) runs it */
static void helpers_task(void *ctx, int task, int thread)
{
    (void)task;
    spin();
    if (thread != 0) *(int *)ctx = 1;
}

static void outer_task(void *ctx, int task, int thread)
{
    (void)task;
    (void)thread;
    ops_parallel_for(64, helpers_task, ctx);
}

TEST(test_nested_regions_inline)
{
    int prev = ops_n_threads(), bad = 0, helped = 0;
    ops_set_threads(2);
    /* the control: a top-level region is shared with the helper */
    for (int k = 0; k < 20 && !helped; k++) ops_parallel_for(16, helpers_task, &helped);
    CHECK_MSG(helped, "the helper never took a task of a top-level region");
    ops_parallel_for(1, outer_task, &bad);  /* the outer region runs inline */
    ops_parallel_for(8, outer_task, &bad);  /* the outer region on the pool */
    CHECK_MSG(bad == 0, "a nested region ran tasks on a thread other than 0");
    ops_set_threads(prev);
}

TEST(test_parallel_for)
{
    CHECK(ops_n_threads() >= 1);
    for (int round = 0; round < 50; round++) {
        int bad = 0;
        memset(par_hits, 0, sizeof par_hits);
        int n = round * 20 + 1;
        ops_parallel_for(n, par_task, &bad);
        int ok = 1;
        for (int i = 0; i < 1000; i++) ok &= par_hits[i] == (i < n);
        CHECK(ok && !bad);
    }
    ops_parallel_for(0, par_task, NULL);
    CHECK(par_threads_seen[0] == 1);
}

/* The dispatcher sleeps when a helper's task outlasts its spin, and the
 * helper's last task wakes it: tasks on thread 1 sleep 2 ms, so thread 0
 * runs out of tasks long before, and every region must still return with
 * every task done (a lost wake-up hangs here). Also regions whose helper
 * finishes at about the moment the dispatcher decides to sleep. */
static atomic_int slow_done, slow_helped;

/* thread 0 works 0.3 ms per task (time for the helper to wake and take
 * one), the helper sleeps 2 ms in its task */
static void slow_helper_task(void *ctx, int task, int thread)
{
    (void)ctx;
    (void)task;
    if (thread != 0) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        atomic_fetch_add(&slow_helped, 1);
    } else {
        for (double t0 = net_now(); net_now() - t0 < 3e-4;) {
        }
    }
    atomic_fetch_add(&slow_done, 1);
}

static void spin_task(void *ctx, int task, int thread)
{
    (void)task;
    (void)thread;
    volatile unsigned x = 0; /* unsigned: the sum wraps, by definition */
    for (int i = 0; i < *(int *)ctx; i++) x += (unsigned)i;
    atomic_fetch_add(&slow_done, 1);
}

TEST(test_dispatcher_sleeps_and_wakes)
{
    int prev = ops_n_threads();
    ops_set_threads(2);
    atomic_store(&slow_helped, 0);
    for (int round = 0; round < 30; round++) {
        atomic_store(&slow_done, 0);
        ops_parallel_for(6, slow_helper_task, NULL);
        CHECK_MSG(atomic_load(&slow_done) == 6, "round %d: %d of 6 tasks done at return", round,
                  atomic_load(&slow_done));
    }
    CHECK_MSG(atomic_load(&slow_helped) >= 10, "the helper took only %d slow tasks in 30 regions",
              atomic_load(&slow_helped));
    for (int work = 1000; work <= 200000; work = work * 5 / 4) {
        atomic_store(&slow_done, 0);
        ops_parallel_for(2, spin_task, &work);
        CHECK_MSG(atomic_load(&slow_done) == 2, "work %d: %d of 2 tasks done at return", work, atomic_load(&slow_done));
    }
    ops_set_threads(prev);
}

/* The thread budget: raised, lowered and raised again; tasks only ever run
 * on thread indices below it, and every task runs exactly once. */
TEST(test_set_threads)
{
    const int budgets[] = {3, 1, 2, 4, 1};
    for (int b = 0; b < 5; b++) {
        CHECK(ops_set_threads(budgets[b]) == budgets[b] && ops_n_threads() == budgets[b]);
        for (int round = 0; round < 20; round++) {
            int bad = 0;
            memset(par_hits, 0, sizeof par_hits);
            memset(par_threads_seen, 0, sizeof par_threads_seen);
            ops_parallel_for(500, par_task, &bad);
            int ok = 1;
            for (int i = 0; i < 1000; i++) ok &= par_hits[i] == (i < 500);
            for (int t = budgets[b]; t < 64; t++) ok &= !par_threads_seen[t];
            CHECK_MSG(ok && !bad, "budget %d round %d", budgets[b], round);
        }
    }
    CHECK(ops_set_threads(1000) == 16);
    CHECK(ops_set_threads(0) >= 1);
}

int main(void)
{
    tu_seed(12345); /* the inputs the tests were written with */
    RUN(test_exp);
    RUN(test_gelu);
    RUN(test_softmax_logsumexp);
    RUN(test_layernorm);
    RUN(test_linear);
    RUN(test_dot_axpy_wsum);
    RUN(test_parallel_for);
    RUN(test_dispatcher_sleeps_and_wakes);
    RUN(test_nested_regions_inline);
    RUN(test_set_threads);
    return test_summary();
}
