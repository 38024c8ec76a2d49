/*
 * train_dp.h - the data-parallel training step: a batch of B sequences is
 * split into S shards, each run (forward + backward) by its own replica of
 * the f32 network (train_net.h) on its own thread with single-threaded
 * OpenBLAS; the replicas share shard 0's parameters, and their gradients
 * are reduced into shard 0's in a fixed order.
 *
 * Why: with one network and multithreaded OpenBLAS only the GEMMs use the
 * second core. The element-wise work (layer norms, GELU, softmaxes, dropout
 * masks, the output softmax) runs on one thread while OpenBLAS's helpers
 * spin: 2 threads gave 1.53x one thread. A whole shard per thread keeps
 * every core busy for the entire step.
 *
 * Determinism: the split (shard s holds sequences [s B / S, (s+1) B / S)),
 * each shard's dropout stream (seeded by one draw of the caller's rng per
 * shard, in shard order) and the reduction order depend on S only, never on
 * the thread count, so 1 and 2 threads give bitwise-equal gradients
 * (test_train checks it). Different S give the same gradient up to f32
 * rounding and different dropout masks.
 *
 * Threads: every call runs on the calling thread plus up to
 * min(threads, S) - 1 threads started for the call and joined before it
 * returns (a failed pthread_create runs that shard on the caller). Calls on
 * one train_dp must not overlap.
 */
#ifndef TRAIN_DP_H
#define TRAIN_DP_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

typedef struct train_dp train_dp;

#define TRAIN_DP_MAX_SHARDS 16

/* Replicas for at most B sequences of T tokens in S = shards pieces
 * (1..TRAIN_DP_MAX_SHARDS, at most B), run on up to `threads` threads
 * (>= 1). Sets OpenBLAS's thread count (process-wide) to 1 when shards
 * run at once, else to `threads` (S = 1). More threads than shards leave
 * cores idle: give S >= threads. NULL with a message in err on bad sizes
 * or out of memory. */
train_dp *train_dp_create(const arch_hparams *hp, int B, int T, int shards, int threads, char *err, size_t errlen);
void train_dp_free(train_dp *dp);

/* Shard 0's network: the parameters (shared by all shards), the reduced
 * gradients and the tensor table. Owned by dp. */
train_net_f *train_dp_net(train_dp *dp);
int train_dp_shards(const train_dp *dp);
/* Threads that run shards at once: min(threads, S). */
int train_dp_workers(const train_dp *dp);

/* Run fn(jobs + k x job_size) for k in [0, n) in the dp's worker lanes,
 * lane 0 on the caller, the others on threads started and joined here
 * (OpenBLAS is at 1 thread when workers > 1, so each lane's BLAS calls run
 * alone); lane w runs jobs w, w + lanes, ... Jobs must write disjoint
 * memory; which lane runs which job then changes no result. */
void train_dp_run_jobs(const train_dp *dp, int n, void *(*fn)(void *), void *jobs, size_t job_size);

/* Word dropout p on every shard (train_net_f_set_word_dropout; 0: off).
 * 0, or -1 when p is out of range. */
int train_dp_set_word_dropout(train_dp *dp, float p);

/* zero_grad + forward(train=1) + backward of B sequences (inputs, targets
 * [B*T], B <= the B of create); on return shard 0's gradients are those of
 * the mean loss over all B*T tokens, which is returned (NaN when a shard's
 * forward refused its input, e.g. an out-of-range id). dropout p as in
 * train_net_f_forward; rng gives one draw per shard (may be NULL when
 * p == 0 and word dropout is off). */
double train_dp_step(train_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T, float dropout,
                     arch_rng *rng);

/* Mean loss over B sequences without gradients (evaluation). */
double train_dp_loss(train_dp *dp, const int32_t *inputs, const int32_t *targets, int B, int T);

#endif
