/* cmd_model.c - subcommands that use a checkpoint: info, generate, score,
 * quantize. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"
#include "cli.h"
#include "cmd.h"
#include "eval.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "gen.h"
#include "sampler.h"

static int is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

static model *load_or_report(const char *cmd, const char *path)
{
    char err[512];
    model *m = NULL;
    int rc = model_load(path, &m, err, sizeof err);
    if (rc) {
        fprintf(stderr, "synth %s: %s: %s\n", cmd, path, err[0] ? err : model_strerror(rc));
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- info */

static const char info_usage[] =
    "usage: synth info [MODEL]\n"
    "Print a checkpoint's hyperparameters, attention variant, tensor types,\n"
    "parameter count and file size. MODEL defaults to $SYNTH_MODEL or " CMD_DEFAULT_MODEL ".\n";

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) { fputs(info_usage, stdout); return 0; }
        if (!strcmp(argv[i], "-m")) {
            if (!(path = cli_value("info", argc, argv, &i))) return 2;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "synth info: unexpected argument '%s'\n%s", argv[i], info_usage);
            return 2;
        } else {
            path = argv[i];
        }
    }
    path = cli_model_path(path);
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    if (rc) {
        fprintf(stderr, "synth info: %s: %s\n", path, err);
        return 1;
    }
    model *m = load_or_report("info", path);
    if (!m) { gguf_close(f); return 1; }
    const arch_hparams *hp = model_hparams(m);
    printf("file            %s (%.2f MiB, GGUF v%u)\n", path, (double)model_file_size(m) / 1048576.0, gguf_version(f));
    printf("name            %s\n", model_name(m));
    printf("variant         %s\n", arch_variant_name(hp->variant));
    printf("quantization    %s (general.file_type %u)\n", model_quant_name(m), model_file_type(m));
    printf("parameters      %lld\n", (long long)model_n_params(m));
    printf("vocab           %d\n", hp->n_vocab);
    printf("context         %d\n", hp->n_ctx);
    printf("d_model         %d\nlayers          %d\nheads           %d\nd_ff            %d (%s)\n", hp->n_embd,
           hp->n_layer, hp->n_head, hp->n_ff, arch_ffn_name(hp->ffn));
    if (arch_has_factorized_random(hp->variant)) printf("rank k          %d\n", hp->fr_rank);
    if (arch_has_factorized_dense(hp->variant)) printf("a x b           %d x %d\n", hp->fd_a, hp->fd_b);
    printf("layernorm eps   %g\n", (double)hp->ln_eps);
    printf("eos token       %d\n", tok_eos(model_tok(m)));
    printf("static attention %s\n", arch_is_static(hp->variant) ? "precomputed at load (softmax of R)" : "computed per token");
    printf("kernels         %s (best on this CPU: %s; SYNTH_CPU to force a lower one)\n", model_cpu(), model_cpu_best());
    printf("activations     %s (of q8_0 layers: q8 = int8 with exact integer dot products, f32 = exact; SYNTH_ACT)\n",
           model_act());
    printf("threads         %d\n", model_threads());
    printf("openblas        %s kernels (OPENBLAS_CORETYPE to override)\n", model_blas_core());
    /* tensor type histogram */
    int64_t count[16] = {0}, bytes[16] = {0};
    const char *names[16] = {0};
    int ntypes = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        int k;
        for (k = 0; k < ntypes; k++)
            if (!strcmp(names[k], quant_type_name(t->type))) break;
        if (k == ntypes && ntypes < 16) names[ntypes++] = quant_type_name(t->type);
        if (k < 16) { count[k]++; bytes[k] += (int64_t)t->nbytes; }
    }
    printf("tensors         %lld\n", (long long)gguf_n_tensors(f));
    for (int k = 0; k < ntypes; k++)
        printf("  %-6s        %lld tensors, %.2f MiB\n", names[k], (long long)count[k], (double)bytes[k] / 1048576.0);
    model_free(m);
    gguf_close(f);
    return 0;
}

/* ------------------------------------------------------------ generate */

#define STR_(x) #x
#define STR(x) STR_(x) /* a macro's value as a string literal */

static const char generate_usage[] =
    "usage: synth generate [-m MODEL] -p PROMPT [options]\n"
    "  -m MODEL              checkpoint (default $SYNTH_MODEL or " CMD_DEFAULT_MODEL ")\n"
    "  -p, --prompt TEXT     prompt (the end-of-text token is put before it)\n"
    "  -n, --max-tokens N    tokens to generate (default 64)\n"
    "  --temp T              temperature, 0 = greedy (default 1.0)\n"
    "  --top-k K             keep the K most likely tokens (default 0 = off)\n"
    "  --top-p P             nucleus sampling (default 1.0 = off)\n"
    "  --min-p P             drop tokens below P x the top probability (default 0)\n"
    "  --repeat-penalty R    repetition penalty (default 1.0 = off)\n"
    "  --seed S              sampler seed (default 0)\n"
    "  --stop TEXT           stop before TEXT (repeatable, up to " STR(GEN_MAX_STOP) ")\n"
    "  --cache-type T        cached values: f16 (default) or f32 (also $SYNTH_CACHE_TYPE)\n"
    "Generation stops at a stop string, the end-of-text token or after N\n"
    "tokens; past the end of the context it goes on from the context's last\n"
    "half. The rules are the server's (model/gen.h): the same text and the\n"
    "same stop. Text goes to stdout as it is generated.\n";

typedef struct {
    const char *model_path, *prompt, *cache_type;
    int n_predict;
    sampler_params sp;
    const char *stop[GEN_MAX_STOP];
    size_t stop_len[GEN_MAX_STOP];
    int n_stop;
} gen_opts;

static int parse_generate(int argc, char **argv, gen_opts *o)
{
    const char *c = "generate";
    memset(o, 0, sizeof *o);
    o->n_predict = 64;
    sampler_params_default(&o->sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (is_help(a)) { fputs(generate_usage, stdout); return 1; }
        if (a[0] != '-') { fprintf(stderr, "synth generate: unexpected argument '%s'\n", a); return -1; }
        if (!(v = cli_value(c, argc, argv, &i))) return -1;
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_path = v;
        else if (!strcmp(a, "--cache-type")) o->cache_type = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) bad = cli_int(c, a, v, 0, 1 << 20, &o->n_predict);
        else if (!strcmp(a, "--temp")) bad = cli_float(c, a, v, 0, 100, &o->sp.temperature);
        else if (!strcmp(a, "--top-k")) bad = cli_int(c, a, v, 0, 1 << 24, &o->sp.top_k);
        else if (!strcmp(a, "--top-p")) bad = cli_float(c, a, v, 0, 1, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) bad = cli_float(c, a, v, 0, 1, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) bad = cli_float(c, a, v, 0.01, 100, &o->sp.repetition_penalty);
        else if (!strcmp(a, "--seed")) bad = cli_u64(c, a, v, &o->sp.seed);
        else if (!strcmp(a, "--stop")) {
            if (o->n_stop == GEN_MAX_STOP || !*v) {
                fprintf(stderr, "synth generate: --stop: %s\n",
                        *v ? "at most " STR(GEN_MAX_STOP) " stop strings" : "empty string");
                return -1;
            }
            o->stop_len[o->n_stop] = strlen(v);
            o->stop[o->n_stop++] = v;
        }
        else { fprintf(stderr, "synth generate: unknown flag '%s'\n", a); return -1; }
        if (bad) return -1;
    }
    if (!o->prompt) { fprintf(stderr, "synth generate: -p PROMPT is required\n"); return -1; }
    char err[256];
    if (sampler_params_validate(&o->sp, err, sizeof err)) {
        fprintf(stderr, "synth generate: %s\n", err);
        return -1;
    }
    return 0;
}

static int generate_loop(model *m, const gen_opts *o)
{
    const tok_t *tk = model_tok(m);
    const arch_hparams *hp = model_hparams(m);
    int32_t *ptoks = NULL, *hist = NULL;
    char *text = NULL;
    size_t np = 0;
    float *logits = NULL;
    model_cache *c = NULL;
    sampler s;
    int rc = 1;

    sampler_init(&s, &o->sp);
    /* as the server: end-of-text before the prompt when the model has one,
     * not a second one when the prompt starts with it */
    if (tok_encode_special(tk, o->prompt, strlen(o->prompt), &ptoks, &np)) goto done;
    tok_drop_lead_eos(tk, ptoks, &np);
    const int lead = tok_eos(tk) >= 0 ? 1 : 0;
    if (np + (size_t)lead > (size_t)hp->n_ctx) {
        fprintf(stderr, "synth generate: prompt is %zu tokens; the context holds %d%s\n", np, hp->n_ctx,
                lead ? " including the leading end-of-text" : "");
        goto done;
    }
    if (np + (size_t)lead == 0) {
        fprintf(stderr, "synth generate: empty prompt, and the model has no end-of-text token\n");
        goto done;
    }
    hist = malloc((np + (size_t)lead + (size_t)o->n_predict) * sizeof *hist);
    logits = malloc((size_t)hp->n_vocab * sizeof *logits);
    c = model_cache_create(m, 1);
    const size_t cap = (size_t)o->n_predict * tok_max_token_bytes(tk) + 1;
    text = malloc(cap);
    if (!hist || !logits || !c || !text) { fprintf(stderr, "synth generate: out of memory\n"); goto done; }
    if (lead) hist[0] = tok_eos(tk);
    memcpy(hist + lead, ptoks, np * sizeof *ptoks);
    int n_hist = (int)np + lead, shifts = 0;
    model_seq seq = {.slot = 0, .n_tokens = n_hist, .tokens = hist, .logits_all = 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fputs(o->prompt, stdout);
    int n_gen = 0;
    size_t len = 0, safe = 0, shown = 0;
    const gen_stops stops = {o->stop, o->stop_len, o->n_stop};
    gen_finish why = o->n_predict > 0 ? GEN_GOING : GEN_LENGTH;
    while (why == GEN_GOING) {
        int err = model_step(m, c, 1, &seq, logits);
        int id = err ? -1 : sampler_sample(&s, logits, hp->n_vocab, hist, n_hist, NULL);
        if (id < 0) {
            fwrite(text + shown, 1, len - shown, stdout); /* what was held back for a stop string */
            fprintf(stderr, "\nsynth generate: %s\n", err ? model_strerror(err) : "sampler: out of memory");
            goto done;
        }
        n_gen++;
        int stopped = gen_text_append(tk, id, text, cap, &len, &safe, &stops);
        why = gen_finish_of(tk, id, stopped, n_gen, o->n_predict);
        /* what can no longer turn into a stop string goes out now */
        size_t upto = why == GEN_GOING ? safe : len;
        if (upto > shown) {
            fwrite(text + shown, 1, upto - shown, stdout);
            fflush(stdout);
            shown = upto;
        }
        hist[n_hist++] = id;
        if (why == GEN_GOING) shifts += model_decode_seq(m, c, 0, hist, n_hist, &seq); /* the server's rule */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stdout, "\n");
    fprintf(stderr, "[%d prompt tokens, %d generated, stop: %s, %d context shifts, %.1f tokens/s]\n", (int)np, n_gen,
            gen_finish_name(why), shifts, sec > 0 ? n_gen / sec : 0.0);
    rc = 0;
done:
    sampler_free(&s);
    model_cache_free(c);
    free(ptoks);
    free(hist);
    free(text);
    free(logits);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int p = parse_generate(argc, argv, &o);
    if (p) return p > 0 ? 0 : 2;
    model_cache_type ct;
    if (cli_cache_type("generate", "--cache-type", o.cache_type, &ct)) return 2;
    model *m = load_or_report("generate", cli_model_path(o.model_path));
    if (!m) return 1;
    model_set_cache_values(m, ct);
    int rc = generate_loop(m, &o);
    model_free(m);
    return rc;
}

/* --------------------------------------------------------------- score */

static const char score_usage[] =
    "usage: synth score [-m MODEL] [--json] [--batch N] [--cache-type T] FILE\n"
    "Perplexity of a text file. The end-of-text token is put before the text\n"
    "as context, so the first token is scored too; texts longer than the\n"
    "context L are scored with windows of L tokens and stride L/2 (every token\n"
    "once, with at least L/2 tokens of context after the first window).\n"
    "Prints tokens, total NLL (nats), token perplexity, word perplexity (NLL\n"
    "over words + lines, the WikiText convention) and bits per byte.\n"
    "  --json      one JSON object on stdout (keys tokens, nll, perplexity,\n"
    "              word_perplexity, bits_per_byte)\n"
    "  --batch N   windows evaluated together (default 16)\n"
    "  --cache-type T  cached values: f16 (default, as the server) or f32 (also\n"
    "              $SYNTH_CACHE_TYPE)\n";

static void score_progress(int64_t done, int64_t total, void *ud)
{
    (void)ud;
    cli_progress("windows", done, total);
}

int cmd_score(int argc, char **argv)
{
    const char *mpath = NULL, *file = NULL, *cache_type = NULL;
    int json = 0, batch = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (is_help(a)) { fputs(score_usage, stdout); return 0; }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(mpath = cli_value("score", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_value("score", argc, argv, &i)) || cli_int("score", a, v, 1, 1024, &batch)) return 2;
        } else if (!strcmp(a, "--cache-type")) {
            if (!(cache_type = cli_value("score", argc, argv, &i))) return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "synth score: unknown flag '%s'\n%s", a, score_usage);
            return 2;
        } else if (file) {
            fprintf(stderr, "synth score: only one FILE expected, got '%s' and '%s'\n", file, a);
            return 2;
        } else file = a;
    }
    if (!file) { fprintf(stderr, "synth score: FILE is required\n%s", score_usage); return 2; }
    model_cache_type ct;
    if (cli_cache_type("score", "--cache-type", cache_type, &ct)) return 2;
    char *text;
    size_t len;
    if (cli_read_file("score", file, &text, &len)) return 1;
    model *m = load_or_report("score", cli_model_path(mpath));
    if (!m) { free(text); return 1; }
    model_set_cache_values(m, ct);
    eval_result r;
    int rc = eval_text(m, text, len, batch, &r, NULL, NULL, score_progress, NULL);
    if (rc) {
        fprintf(stderr, "synth score: %s\n", rc == MODEL_EINVAL ? "the model has no end-of-text token" : model_strerror(rc));
    } else if (json) {
        printf("{\"tokens\": %lld, \"nll\": %.17g, \"perplexity\": %.17g, \"word_perplexity\": %.17g, "
               "\"bits_per_byte\": %.17g, \"words\": %lld, \"bytes\": %lld}\n",
               (long long)r.n_tokens, r.nll, r.perplexity, r.word_perplexity, r.bits_per_byte, (long long)r.n_words,
               (long long)r.n_bytes);
    } else {
        printf("file             %s\n", file);
        printf("tokens           %lld\n", (long long)r.n_tokens);
        printf("words+lines      %lld\n", (long long)r.n_words);
        printf("bytes            %lld\n", (long long)r.n_bytes);
        printf("nll (nats)       %.4f\n", r.nll);
        printf("perplexity       %.4f\n", r.perplexity);
        printf("word perplexity  %.4f\n", r.word_perplexity);
        printf("bits per byte    %.4f\n", r.bits_per_byte);
    }
    model_free(m);
    free(text);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------ quantize */

static const char quantize_usage[] =
    "usage: synth quantize IN OUT --type q8_0|q4_0|f16|f32 [--token-embedding-type T]\n"
    "Re-encode the matrices of a checkpoint (token embedding, projections,\n"
    "FFN, dense synthesizer layers); norms, biases, position embeddings and\n"
    "random attention logits stay f32.\n"
    "  --token-embedding-type T  the token embedding (also the tied output\n"
    "                            projection) in T instead of --type, e.g.\n"
    "                            q4_0 with the embedding at q8_0\n";

/* A type name of `flag` (NULL: keep *type); 0, or 2 with the message. */
static int quantize_type_arg(const char *flag, const char *s, uint32_t *type)
{
    if (!s || !quant_type_parse(s, type)) return 0;
    fprintf(stderr, "synth quantize: %s: '%s' is not one of q8_0, q4_0, f16, f32\n", flag, s);
    return 2;
}

int cmd_quantize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *type_s = NULL, *embd_s = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) { fputs(quantize_usage, stdout); return 0; }
        if (!strcmp(argv[i], "--type")) {
            if (!(type_s = cli_value("quantize", argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "--token-embedding-type")) {
            if (!(embd_s = cli_value("quantize", argc, argv, &i))) return 2;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "synth quantize: unknown flag '%s'\n%s", argv[i], quantize_usage);
            return 2;
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else { fprintf(stderr, "synth quantize: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    uint32_t type, embd_type;
    if (!in || !out || !type_s) { fprintf(stderr, "synth quantize: IN, OUT and --type are required\n%s", quantize_usage); return 2; }
    if (quantize_type_arg("--type", type_s, &type)) return 2;
    embd_type = type;
    if (quantize_type_arg("--token-embedding-type", embd_s, &embd_type)) return 2;
    char err[512];
    if (ckpt_quantize_mixed(in, out, type, embd_type, err, sizeof err)) {
        fprintf(stderr, "synth quantize: %s\n", err);
        return 1;
    }
    model *m = load_or_report("quantize", out); /* prove the result loads */
    if (!m) return 1;
    fprintf(stderr, "synth quantize: wrote %s (%s, %.2f MiB)\n", out, type_s, (double)model_file_size(m) / 1048576.0);
    model_free(m);
    return 0;
}
