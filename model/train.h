/*
 * train.h - training a Synthesizer LM (arch.h) on text files: the network
 * with its backward pass (train_net.h, f32 for training and f64 for the
 * gradient checks), AdamW, the learning-rate schedule, data batches,
 * evaluation, best-checkpoint saving (ckpt_write, f32 GGUF with the
 * tokenizer) and resumable training state.
 *
 * Training choices (stated here because they shape the loss curve):
 *  - batches: B sequences of T tokens at uniformly random offsets of the
 *    tokenized train stream (data PRNG seeded from --seed); every sequence
 *    starts at position 0; targets are the next tokens.
 *  - AdamW with decoupled weight decay applied to the 2-D weight matrices of
 *    linear layers only (Q K V O, FFN, dense/factorized-dense MLPs), not to
 *    embeddings (tied output), biases, norms, R / R1 / R2 or alpha.
 *    Bias-corrected moments, eps 1e-8. Each step removes lr x decay of a
 *    weight, so the decay fades with the cosine; --late-decay X switches
 *    the coefficient to X from the fraction late_decay_start of the steps
 *    on (resume with the same values: the state does not record them).
 *  - --optimizer muon: Muon (momentum orthogonalized by a Newton-Schulz
 *    iteration, Jordan et al. 2024) on the decayed 2-D matrices, with the
 *    update scaled to RMS 0.2 x lr as AdamW's typically is (0.2 sqrt(max
 *    dim), Liu et al. 2025 "Muon is scalable"), so lr and weight decay keep
 *    their AdamW meaning; Nesterov momentum muon_momentum (in the state's
 *    first-moment buffer; resume with the same --optimizer). AdamW for all
 *    other tensors.
 *  - lr: linear warm-up from 0 over `warmup` steps, then cosine decay to
 *    min_lr at `steps`.
 *  - gradient clipping by the global L2 norm of all gradients.
 *  - dropout (inverted) on the embedding sum, on both residual branches and
 *    on the attention probabilities, masks from the dropout PRNG.
 *  - weight averaging (--ema D, off by default): an exponential moving
 *    average of the parameters, updated every ema_every steps with decay
 *    d_n = min(D, n / (n + 1)) at the n-th update (n = 0, 1, ...): a plain
 *    running mean of the first updates, an EMA with decay D once
 *    n > D / (1 - D). With ema_start S > 0 the average follows the
 *    parameters (d = 0) until step S and n counts from there: the mean
 *    leaves out the early, far worse parameters (a tail average when D is
 *    close to 1). It never feeds back into training (the run's
 *    parameters are bit for bit those without it). Every evaluation also
 *    scores the average; its best is written to ema_out. The average is
 *    in the training state, so a resume continues it; resume with the
 *    same D, ema_every and ema_start (the state does not record them).
 *  - validation loss: mean cross-entropy over non-overlapping windows of T
 *    tokens of the valid stream (the first eval_tokens tokens, 0 = all),
 *    each window starting at position 0 (so it is a bit higher than the
 *    strided protocol of eval.h).
 *
 * Library code: reports progress only through the callback; writes files
 * named in the config (checkpoint, state, CSV log).
 */
#ifndef TRAIN_H
#define TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

#define TN_REAL float
#define TN_SUF f
#include "train_net.h"
#undef TN_REAL
#undef TN_SUF

#define TN_REAL double
#define TN_SUF d
#include "train_net.h"
#undef TN_REAL
#undef TN_SUF

enum train_error {
    TRAIN_OK = 0,
    TRAIN_EIO = -1,      /* a file could not be read or written */
    TRAIN_EFORMAT = -2,  /* bad data, tokenizer or state file */
    TRAIN_ENOMEM = -3,
    TRAIN_EINVAL = -4,   /* bad configuration */
    TRAIN_ENAN = -5,     /* the loss became NaN/inf */
};
const char *train_strerror(int err);

typedef struct {
    arch_hparams hp;            /* n_vocab is set from the tokenizer */
    const char *train_path;     /* text files */
    const char *valid_path;
    const char *out_path;       /* best checkpoint (f32 GGUF) */
    const char *tokenizer_path; /* GGUF with a tokenizer, NULL: learn BPE */
    const char *ckpt_path;      /* training state file, NULL: out_path.state */
    const char *resume_path;    /* NULL: fresh start */
    const char *log_path;       /* CSV per evaluation, NULL: none */
    const char *name;           /* general.name */
    int vocab;                  /* target vocabulary of tok_learn (8192) */
    int batch, seq;             /* B x T per step (16 x 256) */
    int64_t steps;              /* total steps (schedule length); 0: auto,
                                   fill --max-minutes (first estimated after
                                   20 steps, then after every step from the
                                   wall time so far, so a rate that changes
                                   moves the end of the cosine with it;
                                   stored in the state: a run resumed past
                                   the warm-up keeps it) */
    float lr, min_lr;           /* 1e-3, 1e-4 */
    int64_t warmup;             /* 200 */
    float weight_decay;         /* 0.1 */
    float late_decay;           /* -1: off; X: the weight decay from
                                   late_decay_start x steps on, instead of
                                   weight_decay (decoupled decay removes
                                   lr x decay per step, so it fades with the
                                   cosine; this puts more of it where the
                                   model overfits) */
    float late_decay_start;     /* 0.667: the fraction of the schedule where
                                   late_decay takes over */
    float beta1, beta2, adam_eps;/* 0.9, 0.99, 1e-8 */
    int muon;                   /* 0: AdamW everywhere; 1: Muon on the
                                   decayed 2-D matrices (see above) */
    float muon_momentum;        /* 0.95 */
    float clip;                 /* 1.0 (0: off) */
    float dropout;              /* 0.1 */
    float dropout_start;        /* 0; F: no dropout for the first fraction
                                   F of the schedule ("late dropout": while
                                   the model underfits, dropout only slows it) */
    float word_dropout;         /* 0: off; P: drop each token type's
                                   embedding with probability P per step
                                   (train_net_f_set_word_dropout) */
    float ema;                  /* 0: off; D in (0, 1): weight averaging with
                                   decay D (see above) */
    int64_t ema_every;          /* steps between average updates (4: the
                                   update reads and writes 3 x 4 bytes per
                                   parameter; every step that would be an
                                   estimated 2-3% of a step on the shipped
                                   shape, not measured) */
    int64_t ema_start;          /* 0: average from the start; S: the average
                                   equals the parameters until step S, the
                                   running mean begins after it */
    const char *ema_out;        /* best average (f32 GGUF); needed with --ema */
    float rstd;                 /* std of R at init (0.02) */
    float synth_lr_mult;        /* lr multiplier of R, R1, R2 (30): with the
                                   base lr R hardly leaves its init */
    float r_tie;                /* 0: off. X > 0: before clipping, add X
                                   times the mean of R's gradient along each
                                   diagonal (one distance i - j, over the
                                   causal entries of the first --seq rows)
                                   to every entry of that diagonal, per head
                                   and layer (train_tie_diagonals). R then
                                   also learns a function of distance,
                                   shared by all positions, beside its free
                                   absolute-position entries: each entry's
                                   gradient is one position's signal, the
                                   diagonal mean pools up to --seq of them.
                                   The checkpoint is the same (R [H, L, L]),
                                   so the server is unchanged. Random and
                                   random+vanilla only (a trainable R). */
    int64_t eval_every;         /* 250 */
    int64_t eval_tokens;        /* valid tokens per eval, 0: all */
    int patience;               /* evals without improvement, 0: off */
    int64_t ckpt_every;         /* 500 (0: only at the end) */
    uint64_t seed;              /* 1 */
    double max_minutes;         /* 0: no limit */
    int threads;                /* cores to use, 0: the online CPUs */
    int shards;                 /* data-parallel shards of each batch
                                   (train_dp.h), 0: min(2, batch); up to
                                   min(threads, shards) run at once. The
                                   result depends on the shards, not on the
                                   threads; resume with the same value */
    const volatile int *interrupt; /* if not NULL and nonzero: stop like at
                                   --max-minutes (evaluate, keep best, save
                                   the state); set from a signal handler */
    int64_t stop_at;            /* stop (state saved, no extra eval) when
                                   this step is reached; 0: off. Splits a
                                   run into resumable pieces (tests). */
} train_config;

void train_config_default(train_config *c);
/* Numbers only (files are checked by train_run): 0 or TRAIN_EINVAL with
 * "train: --flag: problem" in err. */
int train_config_validate(const train_config *c, char *err, size_t errlen);

/* The threads and the shards a run uses (train_config.threads and
 * .shards resolved). */
int train_threads(const train_config *c);
int train_shards(const train_config *c);

/* Learning rate at step s (0-based) of the schedule. */
float train_lr(const train_config *c, int64_t step);
/* Dropout rate at step s (0-based) of the schedule: 0 before
 * dropout_start x steps, dropout from there on. */
float train_dropout(const train_config *c, int64_t step);
/* Does weight decay (and with --optimizer muon, Muon) apply to tensors of
 * this kind? The 2-D weight matrices of linear layers. */
int train_has_decay(arch_kind k);
/* Scratch floats train_muon needs for a [rows, cols] matrix. */
size_t train_muon_work(int rows, int cols);
/* One Muon update of the [rows, cols] row-major matrix p (see above):
 * mom = mu mom + gscale g; O = NS5(gscale g + mu mom); p -= lr decay p +
 * lr 0.2 sqrt(max(rows, cols)) O. work: train_muon_work(rows, cols) floats. */
void train_muon(float *p, const float *g, float *mom, int rows, int cols, float gscale, float lr, float mu,
                float decay, float *work);
/* The quintic Newton-Schulz iteration of Muon (5 steps, coefficients
 * 3.4445, -4.7750, 2.0315) on X [rows, cols], which is first scaled to unit
 * Frobenius norm: maps every singular value into about [0.7, 1.2] and keeps
 * the singular vectors, a cheap stand-in for the polar factor U V^T. The
 * result is in X. work: train_muon_work(rows, cols) floats. */
void train_newton_schulz(float *X, int rows, int cols, float *work);

/* Weight decay at step s (0-based) of the schedule: weight_decay before
 * late_decay_start x steps, late_decay from there on (if set). */
float train_weight_decay(const train_config *c, int64_t step);

/* One AdamW update of n values (t is the 1-based step for bias correction,
 * decay 0 for tensors without weight decay). */
void train_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float decay, int64_t t);

/* In place, for the H heads of one R gradient g [H, L, L] (row i = query,
 * column j = key): g[h, i, j] += x * mean of g[h, i', j'] over i' - j' =
 * i - j, for the causal entries (0 <= j <= i < T) of the first T rows;
 * other entries are left alone (their gradient is zero in training). */
void train_tie_diagonals(float *g, int L, int T, int H, float x);

typedef struct {
    int64_t step, steps;        /* steps done, total */
    double train_loss;          /* loss of the last step */
    double lr;
    double tokens_per_s;        /* training steps of this run (evals excluded) */
    double elapsed_s, eta_s;
    int is_eval;                /* 1: an evaluation just finished */
    double valid_loss, best_valid;
    double valid_loss_ema, best_valid_ema; /* the average's; NaN without --ema */
    int saved;                  /* 1: the best checkpoint was just written */
    int saved_ema;              /* 1: the best average was just written */
    const char *phase;          /* NULL while training, else "tokenizing" ... */
} train_progress;

typedef void (*train_progress_fn)(const train_progress *p, void *ud);

typedef struct {
    int64_t steps_done;
    double last_train_loss;
    double best_valid;          /* INFINITY if never evaluated */
    double best_valid_ema;      /* the average's (INFINITY without --ema) */
    double tokens_per_s;        /* training steps only (evals excluded) */
    double elapsed_s;
    int stopped_early;          /* patience exhausted */
    int stopped_time;           /* --max-minutes reached or interrupted */
    int64_t n_train_tokens, n_valid_tokens;
    int n_vocab;
} train_summary;

/* Run a whole training as configured. progress is called after every step
 * and every evaluation (may be NULL). 0 or a negative TRAIN_E* code with
 * "train: ..." in err. */
int train_run(const train_config *c, train_progress_fn progress, void *ud, train_summary *out, char *err,
              size_t errlen);

#endif
