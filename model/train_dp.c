/* train_dp.c - data-parallel training step (see train_dp.h). */
#include "train_dp.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

struct train_dp {
    int S, workers;
    int Bmax, Tmax;
    train_net_f *net[TRAIN_DP_MAX_SHARDS];   /* net[0] owns the parameters */
    float word_dropout;
};

/* One shard's part of a call. */
typedef struct {
    train_dp *dp;
    int s;                       /* shard */
    const int32_t *in, *tg;      /* its rows */
    int B, T, train;
    float dropout;
    arch_rng rng;
    double loss;                 /* mean over its rows */
} shard_job;

/* One thread's slice of the gradient reduction. */
typedef struct {
    train_dp *dp;
    int64_t i0, i1;
    float w[TRAIN_DP_MAX_SHARDS];
} reduce_job;

train_dp *train_dp_create(const arch_hparams *hp, int B, int T, int shards, int threads, char *err, size_t errlen)
{
    if (shards < 1 || shards > TRAIN_DP_MAX_SHARDS || shards > B || threads < 1) {
        snprintf(err, errlen, "train_dp_create: %d shards of a batch of %d on %d threads: need 1 <= shards <= %d, "
                 "shards <= batch, threads >= 1", shards, B, threads, TRAIN_DP_MAX_SHARDS);
        return NULL;
    }
    train_dp *dp = calloc(1, sizeof *dp);
    if (!dp) {
        snprintf(err, errlen, "train_dp_create: out of memory");
        return NULL;
    }
    dp->S = shards;
    dp->workers = threads < shards ? threads : shards;
    dp->Bmax = B;
    dp->Tmax = T;
    const int per = (B + shards - 1) / shards; /* the largest shard */
    for (int s = 0; s < shards; s++) {
        dp->net[s] = train_net_f_create(hp, per, T, err, errlen);
        if (!dp->net[s] || (s > 0 && train_net_f_share_params(dp->net[s], dp->net[0]))) {
            if (dp->net[s]) snprintf(err, errlen, "train_dp_create: replica %d cannot share parameters", s);
            train_dp_free(dp);
            return NULL;
        }
    }
    /* concurrent shards each get a one-thread OpenBLAS (several threaded
     * OpenBLAS calls at once would queue for its one thread pool and could
     * reorder nothing but cost time); a lone shard gets them all */
    openblas_set_num_threads(dp->workers > 1 ? 1 : threads);
    return dp;
}

void train_dp_free(train_dp *dp)
{
    if (!dp) return;
    /* replicas first: they point into net[0]'s parameters */
    for (int s = dp->S - 1; s >= 0; s--) train_net_f_free(dp->net[s]);
    free(dp);
}

train_net_f *train_dp_net(train_dp *dp) { return dp->net[0]; }
int train_dp_shards(const train_dp *dp) { return dp->S; }
int train_dp_workers(const train_dp *dp) { return dp->workers; }

/* Lane w of a call runs jobs w, w + lanes, w + 2 lanes ... in order. */
typedef struct {
    void *(*fn)(void *);
    char *jobs;
    size_t job_size;
    int n, w, lanes;
} lane;

static void *lane_run(void *arg)
{
    lane *l = arg;
    for (int j = l->w; j < l->n; j += l->lanes) l->fn(l->jobs + (size_t)j * l->job_size);
    return NULL;
}

/* Run fn on jobs [0, n) in min(workers, n) lanes: lane 0 on the caller, the
 * others on threads started here (a lane whose thread cannot start runs on
 * the caller), all joined before returning. Which job runs where changes
 * no result: jobs write disjoint memory. */
static void run_jobs(int workers, int n, void *(*fn)(void *), void *jobs, size_t job_size)
{
    pthread_t th[TRAIN_DP_MAX_SHARDS];
    int started[TRAIN_DP_MAX_SHARDS] = {0};
    lane ln[TRAIN_DP_MAX_SHARDS];
    const int lanes = workers < n ? workers : n;
    for (int w = 0; w < lanes; w++) {
        ln[w] = (lane){fn, jobs, job_size, n, w, lanes};
        if (w > 0) started[w] = pthread_create(&th[w], NULL, lane_run, &ln[w]) == 0;
    }
    for (int w = 0; w < lanes; w++)
        if (!started[w]) lane_run(&ln[w]);
    for (int w = 1; w < lanes; w++)
        if (started[w]) pthread_join(th[w], NULL);
}

void train_dp_run_jobs(const train_dp *dp, int n, void *(*fn)(void *), void *jobs, size_t job_size)
{
    run_jobs(dp->workers, n, fn, jobs, job_size);
}

static void *shard_run(void *arg)
{
    shard_job *j = arg;
    train_net_f *n = j->dp->net[j->s];
    if (j->train) train_net_f_zero_grad(n);
    j->loss = train_net_f_forward(n, j->in, j->tg, j->B, j->T, j->train, j->dropout, &j->rng, NULL);
    if (j->train && isfinite(j->loss)) train_net_f_backward(n);
    return NULL;
}

/* g0[i] = sum_s w_s g_s[i], s in order, over [i0, i1). */
static void *reduce_run(void *arg)
{
    reduce_job *j = arg;
    float *g[TRAIN_DP_MAX_SHARDS];
    for (int s = 0; s < j->dp->S; s++) g[s] = train_net_f_grads(j->dp->net[s]);
    for (int64_t i = j->i0; i < j->i1; i++) {
        float acc = j->w[0] * g[0][i];
        for (int s = 1; s < j->dp->S; s++) acc += j->w[s] * g[s][i];
        g[0][i] = acc;
    }
    return NULL;
}

/* Forward (and backward when train) of every non-empty shard; returns the
 * mean loss over B sequences, and reduces the gradients when train. */
static double dp_run(train_dp *dp, const int32_t *in, const int32_t *tg, int B, int T, int train, float dropout,
                     arch_rng *rng)
{
    const int draws = train && (dropout > 0 || dp->word_dropout > 0);
    if (B < 1 || B > dp->Bmax || T < 1 || T > dp->Tmax || (draws && !rng)) return NAN;
    shard_job jobs[TRAIN_DP_MAX_SHARDS];
    int n = 0;
    for (int s = 0; s < dp->S; s++) {
        const int b0 = (int)((int64_t)s * B / dp->S), b1 = (int)((int64_t)(s + 1) * B / dp->S);
        uint64_t seed = draws ? arch_rng_next(rng) : 0;
        if (b1 == b0) continue; /* B < S: an empty shard (evaluation tails) */
        shard_job *j = &jobs[n++];
        memset(j, 0, sizeof *j);
        j->dp = dp;
        j->s = s;
        j->in = in + (size_t)b0 * T;
        j->tg = tg + (size_t)b0 * T;
        j->B = b1 - b0;
        j->T = T;
        j->train = train;
        j->dropout = dropout;
        arch_rng_seed(&j->rng, seed);
    }
    run_jobs(dp->workers, n, shard_run, jobs, sizeof jobs[0]);
    double loss = 0;
    for (int k = 0; k < n; k++) loss += jobs[k].loss * jobs[k].B / B;
    /* training has no empty shard (train_dp_step checks B >= S): jobs[s] is shard s */
    if (!train || !isfinite(loss)) return loss;
    reduce_job rj[TRAIN_DP_MAX_SHARDS];
    const int64_t np = train_net_f_n_params(dp->net[0]);
    for (int t = 0; t < dp->workers; t++) {
        rj[t].dp = dp;
        rj[t].i0 = np * t / dp->workers;
        rj[t].i1 = np * (t + 1) / dp->workers;
        for (int s = 0; s < dp->S; s++) rj[t].w[s] = (float)jobs[s].B / (float)B;
    }
    if (dp->S > 1) run_jobs(dp->workers, dp->workers, reduce_run, rj, sizeof rj[0]);
    return loss;
}

int train_dp_set_word_dropout(train_dp *dp, float p)
{
    if (!(p >= 0 && p < 1)) return -1;
    for (int s = 0; s < dp->S; s++) train_net_f_set_word_dropout(dp->net[s], p);
    dp->word_dropout = p;
    return 0;
}

double train_dp_step(train_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T, float dropout,
                     arch_rng *rng)
{
    if (B < dp->S) return NAN;
    return dp_run(dp, inputs, targets, B, T, 1, dropout, rng);
}

double train_dp_loss(train_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T)
{
    return dp_run(dp, inputs, targets, B, T, 0, 0.0f, NULL);
}
