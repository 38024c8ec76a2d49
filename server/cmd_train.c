/* cmd_train.c - `synth train`: train a Synthesizer LM (model/train.h). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "arch.h"
#include "cli.h"
#include "cmd.h"
#include "train.h"
#include "train_dp.h"

static void usage(FILE *o)
{
    train_config c;
    train_config_default(&c);
    const arch_hparams *hp = &c.hp;
    fprintf(o,
            "usage: synth train --train FILE --valid FILE -o OUT.gguf [options]\n"
            "\n"
            "Trains a Synthesizer LM and keeps the checkpoint with the best validation\n"
            "loss in OUT.gguf (f32 GGUF with the tokenizer). One progress line on\n"
            "stderr; a line per evaluation. Ctrl-C (or SIGTERM) stops cleanly: the\n"
            "step finishes, the model is evaluated, the best kept, the state saved.\n"
            "\n"
            "data and output:\n"
            "  --train FILE         training text (required)\n"
            "  --valid FILE         validation text (required)\n"
            "  -o, --output FILE    best checkpoint (required)\n"
            "  --tokenizer FILE     take the tokenizer from a GGUF (checkpoint or tokenizer-only)\n"
            "                       instead of learning BPE merges from --train\n"
            "  --vocab N            vocabulary size to learn (default %d)\n"
            "  --log FILE           CSV per evaluation: step,train_loss,valid_loss,lr,tokens_per_s,elapsed_s\n"
            "                       (and valid_loss_ema with --ema)\n"
            "  --name S             general.name of the checkpoint (default %s)\n"
            "\n"
            "model:\n"
            "  --variant V          random, fixed_random, factorized_random, dense, factorized_dense,\n"
            "                       vanilla, random+vanilla, dense+vanilla (default %s)\n"
            "  --ctx L              context length (default %d)\n"
            "  --d-model D          embedding width (default %d)\n"
            "  --layers N           blocks (default %d)\n"
            "  --heads H            heads, must divide D (default %d)\n"
            "  --d-ff F             FFN width (default %d)\n"
            "  --ffn A              FFN activation: gelu, or geglu (gelu(gate) x linear, ffn_up\n"
            "                       twice as tall: F = 2/3 of gelu's keeps the parameters; default gelu)\n"
            "  --rank K             rank of factorized_random (default %d)\n"
            "  --fd-a A, --fd-b B   factors of factorized_dense, A*B = L (default: closest to sqrt(L))\n"
            "  --rstd X             std of the random logits R at init (default %g)\n"
            "  --synth-lr-mult X    learning-rate multiplier of R, R1, R2 (default %g)\n"
            "  --r-tie X            add X x the mean of R's gradient along each diagonal (one\n"
            "                       distance i-j) to that diagonal: R also learns a function of\n"
            "                       distance shared by all positions; random, random+vanilla\n"
            "                       (default 0: off)\n"
            "\n"
            "optimization:\n"
            "  --batch B            sequences per step (default %d)\n"
            "  --seq T              tokens per sequence, T <= L (default min(%d, L))\n"
            "  --steps N|auto       total steps, the length of the schedule (default %lld); auto:\n"
            "                       as many as fit in --max-minutes (re-estimated after every step\n"
            "                       from the rate so far, so the cosine ends inside the budget)\n"
            "  --lr X               peak learning rate (default %g)\n"
            "  --min-lr X           final learning rate of the cosine decay (default %g)\n"
            "  --warmup N           linear warm-up steps (default %lld)\n"
            "  --weight-decay X     AdamW decoupled decay on weight matrices (default %g)\n"
            "  --late-decay X       the weight decay from --late-decay-start on: more of it where\n"
            "                       the model overfits (default: off, --weight-decay throughout)\n"
            "  --late-decay-start F the fraction of the steps where --late-decay starts (default %g)\n"
            "  --beta1 X, --beta2 X AdamW betas (default %g, %g)\n"
            "  --optimizer adamw|muon  muon: Muon (orthogonalized Nesterov momentum) on the decayed\n"
            "                       weight matrices, AdamW on the rest; same --lr and --weight-decay\n"
            "                       meaning (default adamw)\n"
            "  --muon-momentum X    Muon's momentum (default %g)\n"
            "  --clip X             global gradient-norm clip, 0 = off (default %g)\n"
            "  --dropout P          dropout on embeddings, residuals, attention (default %g)\n"
            "  --dropout-start F    no dropout for the first fraction F of the steps, P after\n"
            "                       (late dropout; default 0: from the start)\n"
            "  --word-dropout P     drop each token type's input embedding with probability P per\n"
            "                       step (every occurrence; position embedding kept; default 0)\n"
            "  --ema D              weight averaging: also keep an exponential moving average of\n"
            "                       the parameters (decay D per update, a running mean while\n"
            "                       n/(n+1) < D), score it at every evaluation and write its best\n"
            "                       to --ema-out; training itself is unchanged (default 0: off)\n"
            "  --ema-every K        steps between updates of the average (default 4)\n"
            "  --ema-start S        the average equals the parameters until step S and starts\n"
            "                       its running mean after it (a tail average with D near 1;\n"
            "                       default 0: from the start)\n"
            "  --ema-out FILE       the averaged checkpoint (required with --ema)\n"
            "  --seed N             seed of init, data order and dropout (default %llu)\n"
            "  --threads N          cores to use (default: all online CPUs)\n"
            "  --shards S           data-parallel shards per batch, one thread each (default 2,\n"
            "                       1 for --batch 1); the result depends on S, not on --threads;\n"
            "                       use S >= --threads (one thread runs 2 shards ~6%% slower than 1)\n"
            "\n"
            "evaluation and checkpoints:\n"
            "  --eval-every N       steps between evaluations on --valid (default %lld)\n"
            "  --eval-tokens N      evaluate on the first N valid tokens, 0 = all (default 0)\n"
            "  --patience N         stop after N evaluations without improvement, 0 = off (default 0)\n"
            "  --max-minutes X      stop cleanly after X minutes (evaluate, keep best), 0 = off\n"
            "  --ckpt-every N       save the full training state every N steps, 0 = only at the end\n"
            "                       (default %lld)\n"
            "  --ckpt FILE          training state file (default OUT.gguf.state)\n"
            "  --stop-at N          stop after step N (state saved, no extra evaluation): split a run\n"
            "  --resume FILE        continue from a training state (same flags, same tokenizer:\n"
            "                       pass --tokenizer OUT.gguf to skip relearning)\n",
            c.vocab, c.name, arch_variant_name(hp->variant), hp->n_ctx, hp->n_embd, hp->n_layer, hp->n_head,
            hp->n_ff, hp->fr_rank, (double)c.rstd, (double)c.synth_lr_mult, c.batch, c.seq, (long long)c.steps, (double)c.lr,
            (double)c.min_lr, (long long)c.warmup, (double)c.weight_decay, (double)c.late_decay_start, (double)c.beta1, (double)c.beta2,
            (double)c.muon_momentum, (double)c.clip, (double)c.dropout, (unsigned long long)c.seed, (long long)c.eval_every,
            (long long)c.ckpt_every);
}

static void fmt_time(char *b, size_t n, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double t0, last;   /* start, last progress line (not a terminal) */
    int tty;
} prog_state;

/* On a terminal one line updated in place with \r; into a file a line
 * every 10 s, so logs stay readable. */
static void progress(const train_progress *p, void *ud)
{
    prog_state *ps = ud;
    double now = wall();
    if (p->phase) {
        fprintf(stderr, "synth train: [%.0fs] %s\n", now - ps->t0, p->phase);
        return;
    }
    char el[32], eta[32], steps[32];
    fmt_time(el, sizeof el, p->elapsed_s);
    fmt_time(eta, sizeof eta, p->eta_s);
    if (p->steps > 0) snprintf(steps, sizeof steps, "%lld", (long long)p->steps);
    else snprintf(steps, sizeof steps, "?");
    const char *pre = ps->tty ? "\r\033[K" : "";
    if (p->is_eval) {
        char avg[96] = "";
        if (!isnan(p->valid_loss_ema))
            snprintf(avg, sizeof avg, "  average %.4f best %.4f%s", p->valid_loss_ema, p->best_valid_ema,
                     p->saved_ema ? " saved" : "");
        fprintf(stderr, "%sstep %lld/%s  valid loss %.4f (ppl %.2f)  best %.4f%s%s  elapsed %s\n", pre,
                (long long)p->step, steps, p->valid_loss, exp(p->valid_loss), p->best_valid,
                p->saved ? "  saved" : "", avg, el);
        return;
    }
    if (!ps->tty && now - ps->last < 10) return;
    ps->last = now;
    fprintf(stderr, "%sstep %lld/%s  loss %.4f  lr %.2e  %.0f tok/s  elapsed %s  ETA %s%s", pre, (long long)p->step,
            steps, p->train_loss, p->lr, p->tokens_per_s, el, eta, ps->tty ? "" : "\n");
}

#define CMD "train"

/* SIGINT/SIGTERM: finish the step, evaluate, keep the best checkpoint, save
 * the state; a second signal kills as usual. */
static volatile int g_interrupt;

static void on_signal(int sig)
{
    g_interrupt = 1;
    signal(sig, SIG_DFL);
}

/* Which of the flags whose defaults depend on others were given. */
typedef struct {
    int seq, fd_a, fd_b;
} given_flags;

/* The options into *c. 0: parsed; 1: --help printed; 2: a bad option
 * (the message printed). */
static int parse_args(int argc, char **argv, train_config *c, given_flags *given)
{
    arch_hparams *hp = &c->hp;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
#define VAL() do { if (!(v = cli_value(CMD, argc, argv, &i))) return 2; } while (0)
#define INT(dst, lo, hi) do { VAL(); int t_; if (cli_int(CMD, a, v, lo, hi, &t_)) return 2; dst = t_; } while (0)
#define FLT(dst, lo, hi) do { VAL(); if (cli_float(CMD, a, v, lo, hi, &dst)) return 2; } while (0)
        if (!strcmp(a, "--train")) { VAL(); c->train_path = v; }
        else if (!strcmp(a, "--valid")) { VAL(); c->valid_path = v; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { VAL(); c->out_path = v; }
        else if (!strcmp(a, "--tokenizer")) { VAL(); c->tokenizer_path = v; }
        else if (!strcmp(a, "--log")) { VAL(); c->log_path = v; }
        else if (!strcmp(a, "--ema-out")) { VAL(); c->ema_out = v; }
        else if (!strcmp(a, "--ckpt")) { VAL(); c->ckpt_path = v; }
        else if (!strcmp(a, "--resume")) { VAL(); c->resume_path = v; }
        else if (!strcmp(a, "--name")) { VAL(); c->name = v; }
        else if (!strcmp(a, "--variant")) {
            VAL();
            if (arch_variant_parse(v, &hp->variant)) {
                fprintf(stderr, "synth train: --variant: unknown variant '%s' (see --help)\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--ctx")) INT(hp->n_ctx, 1, 8192);
        else if (!strcmp(a, "--d-model")) INT(hp->n_embd, 1, 16384);
        else if (!strcmp(a, "--layers")) INT(hp->n_layer, 1, 256);
        else if (!strcmp(a, "--heads")) INT(hp->n_head, 1, 16384);
        else if (!strcmp(a, "--d-ff")) INT(hp->n_ff, 1, 65536);
        else if (!strcmp(a, "--ffn")) {
            VAL();
            if (arch_ffn_parse(v, &hp->ffn)) {
                fprintf(stderr, "synth train: --ffn: unknown activation '%s' (gelu or geglu)\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--optimizer")) {
            VAL();
            if (strcmp(v, "adamw") && strcmp(v, "muon")) {
                fprintf(stderr, "synth train: --optimizer: unknown optimizer '%s' (adamw or muon)\n", v);
                return 2;
            }
            c->muon = !strcmp(v, "muon");
        }
        else if (!strcmp(a, "--rank")) INT(hp->fr_rank, 1, 8192);
        else if (!strcmp(a, "--fd-a")) { INT(hp->fd_a, 1, 8192); given->fd_a = 1; }
        else if (!strcmp(a, "--fd-b")) { INT(hp->fd_b, 1, 8192); given->fd_b = 1; }
        else if (!strcmp(a, "--vocab")) INT(c->vocab, 257, 1 << 20);
        else if (!strcmp(a, "--batch")) INT(c->batch, 1, 65536);
        else if (!strcmp(a, "--seq")) { INT(c->seq, 1, 8192); given->seq = 1; }
        else if (!strcmp(a, "--steps")) {
            if (i + 1 < argc && !strcmp(argv[i + 1], "auto")) { c->steps = 0; i++; }
            else INT(c->steps, 1, 2000000000);
        }
        else if (!strcmp(a, "--warmup")) INT(c->warmup, 0, 2000000000);
        else if (!strcmp(a, "--eval-every")) INT(c->eval_every, 1, 2000000000);
        else if (!strcmp(a, "--eval-tokens")) INT(c->eval_tokens, 0, 2000000000);
        else if (!strcmp(a, "--patience")) INT(c->patience, 0, 1000000);
        else if (!strcmp(a, "--stop-at")) INT(c->stop_at, 0, 2000000000);
        else if (!strcmp(a, "--ckpt-every")) INT(c->ckpt_every, 0, 2000000000);
        else if (!strcmp(a, "--ema-every")) INT(c->ema_every, 1, 1000000000);
        else if (!strcmp(a, "--ema-start")) INT(c->ema_start, 0, 2000000000);
        else if (!strcmp(a, "--threads")) INT(c->threads, 1, 256);
        else if (!strcmp(a, "--shards")) INT(c->shards, 1, TRAIN_DP_MAX_SHARDS);
        else if (!strcmp(a, "--lr")) FLT(c->lr, 1e-9, 1);
        else if (!strcmp(a, "--min-lr")) FLT(c->min_lr, 0, 1);
        else if (!strcmp(a, "--weight-decay")) FLT(c->weight_decay, 0, 0.999);
        else if (!strcmp(a, "--late-decay")) FLT(c->late_decay, 0, 1e6); /* < 1 / lr: train_config_validate */
        else if (!strcmp(a, "--late-decay-start")) FLT(c->late_decay_start, 0, 1);
        else if (!strcmp(a, "--beta1")) FLT(c->beta1, 0, 0.999999);
        else if (!strcmp(a, "--muon-momentum")) FLT(c->muon_momentum, 0, 0.999999);
        else if (!strcmp(a, "--beta2")) FLT(c->beta2, 0, 0.999999);
        else if (!strcmp(a, "--clip")) FLT(c->clip, 0, 1e9);
        else if (!strcmp(a, "--dropout")) FLT(c->dropout, 0, 0.99);
        else if (!strcmp(a, "--dropout-start")) FLT(c->dropout_start, 0, 1);
        else if (!strcmp(a, "--word-dropout")) FLT(c->word_dropout, 0, 0.99);
        else if (!strcmp(a, "--ema")) FLT(c->ema, 0, 0.999999);
        else if (!strcmp(a, "--rstd")) FLT(c->rstd, 0, 10);
        else if (!strcmp(a, "--synth-lr-mult")) FLT(c->synth_lr_mult, 1e-3, 1000);
        else if (!strcmp(a, "--r-tie")) FLT(c->r_tie, 0, 10000);
        else if (!strcmp(a, "--max-minutes")) {
            float mm;
            VAL();
            if (cli_float(CMD, a, v, 0, 1e6, &mm)) return 2;
            c->max_minutes = mm;
        }
        else if (!strcmp(a, "--seed")) { VAL(); if (cli_u64(CMD, a, v, &c->seed)) return 2; }
        else {
            fprintf(stderr, "synth train: unknown option '%s' (see --help)\n", a);
            return 2;
        }
#undef VAL
#undef INT
#undef FLT
    }
    return 0;
}

/* The defaults that follow from other options: --seq the context, the
 * factorized-dense split the most square a x b = L (or the other factor of
 * the one given), the warmup at most the steps. */
static void derive_defaults(train_config *c, const given_flags *given)
{
    arch_hparams *hp = &c->hp;
    if (!given->seq && c->seq > hp->n_ctx) c->seq = hp->n_ctx;
    if (hp->variant == ARCH_FACTORIZED_DENSE && !given->fd_a && !given->fd_b) {
        int a = 1;
        for (int x = 1; (int64_t)x * x <= hp->n_ctx; x++)
            if (hp->n_ctx % x == 0) a = x;
        hp->fd_a = a;
        hp->fd_b = hp->n_ctx / a;
    } else if (hp->variant == ARCH_FACTORIZED_DENSE && given->fd_a != given->fd_b) {
        if (given->fd_a && hp->fd_a > 0 && hp->n_ctx % hp->fd_a == 0) hp->fd_b = hp->n_ctx / hp->fd_a;
        else if (given->fd_b && hp->fd_b > 0 && hp->n_ctx % hp->fd_b == 0) hp->fd_a = hp->n_ctx / hp->fd_b;
    }
    if (c->steps > 0 && c->warmup > c->steps) c->warmup = c->steps;
}

/* Required options, the configuration, and the input files (before the
 * slow tokenizer learning). 0, or 2 with the message printed. */
static int check_config(const train_config *c)
{
    if (!c->train_path) { fprintf(stderr, "synth train: --train FILE is required (see --help)\n"); return 2; }
    if (!c->valid_path) { fprintf(stderr, "synth train: --valid FILE is required (see --help)\n"); return 2; }
    if (!c->out_path) { fprintf(stderr, "synth train: -o OUT.gguf is required (see --help)\n"); return 2; }
    char err[512];
    if (train_config_validate(c, err, sizeof err)) {
        fprintf(stderr, "synth %s\n", err);
        return 2;
    }
    const char *files[] = {c->train_path, c->valid_path, c->tokenizer_path, c->resume_path};
    const char *flags[] = {"--train", "--valid", "--tokenizer", "--resume"};
    for (int i = 0; i < 4; i++)
        if (files[i] && access(files[i], R_OK)) {
            fprintf(stderr, "synth train: %s: cannot read '%s'\n", flags[i], files[i]);
            return 2;
        }
    return 0;
}

/* The run's first line: shape, schedule and the OpenBLAS kernels. */
static void log_start(const train_config *c)
{
    const arch_hparams *hp = &c->hp;
    /* Debian's OpenBLAS picks its Haswell (AVX2) kernels on AVX-512 AMD
     * CPUs; its SkylakeX kernels are about twice as fast there. */
    const char *core = openblas_get_corename();
    if (core && !strcasecmp(core, "haswell") && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        fprintf(stderr, "synth train: hint: OpenBLAS uses %s kernels on an AVX-512 CPU; "
                        "with OPENBLAS_CORETYPE=SkylakeX sgemm was ~2x faster in bench_train\n", core);
    char steps[32];
    if (c->steps > 0) snprintf(steps, sizeof steps, "%lld", (long long)c->steps);
    else snprintf(steps, sizeof steps, "auto");
    fprintf(stderr, "synth train: variant %s, d %d, layers %d, heads %d, d_ff %d (%s), L %d, batch %d x %d, %s steps, "
                    "OpenBLAS %s, %d shards on %d threads\n",
            arch_variant_name(hp->variant), hp->n_embd, hp->n_layer, hp->n_head, hp->n_ff, arch_ffn_name(hp->ffn),
            hp->n_ctx, c->batch, c->seq, steps, core ? core : "?", train_shards(c), train_threads(c));
}

int cmd_train(int argc, char **argv)
{
    train_config c;
    train_config_default(&c);
    given_flags given = {0, 0, 0};
    int rc = parse_args(argc, argv, &c, &given);
    if (rc) return rc == 1 ? 0 : rc;
    derive_defaults(&c, &given);
    if ((rc = check_config(&c))) return rc;
    log_start(&c);
    c.interrupt = &g_interrupt;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    train_summary s;
    prog_state ps = {wall(), 0, isatty(2)};
    char err[512];
    if ((rc = train_run(&c, progress, &ps, &s, err, sizeof err))) {
        fprintf(stderr, "\nsynth %s\n", err);
        return rc == TRAIN_EINVAL ? 2 : 1;
    }
    fprintf(stderr, "\nsynth train: %lld steps, last train loss %.4f, best valid loss %.4f (ppl %.2f), %.0f tok/s, %.1f min%s%s\n",
            (long long)s.steps_done, s.last_train_loss, s.best_valid, exp(s.best_valid), s.tokens_per_s,
            s.elapsed_s / 60, s.stopped_early ? ", stopped early (patience)" : "",
            s.stopped_time ? (g_interrupt ? ", interrupted" : ", stopped at --max-minutes") : "");
    fprintf(stderr, "synth train: best checkpoint: %s\n", c.out_path);
    if (c.ema > 0)
        fprintf(stderr, "synth train: best average: %s (valid loss %.4f, ppl %.2f)\n", c.ema_out, s.best_valid_ema,
                exp(s.best_valid_ema));
    return 0;
}
