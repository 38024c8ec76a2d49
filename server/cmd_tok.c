/* cmd_tok.c - tokenizer subcommands: tokenizer-train (learn a BPE
 * vocabulary into a tokenizer-only GGUF) and tokenize (show the tokens of
 * a text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd.h"
#include "gguf.h"
#include "tok.h"

static int tok_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

static double tok_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------ tokenizer-train */

static const char train_usage[] =
    "usage: synth tokenizer-train --input FILE [--vocab N] -o OUT.gguf\n"
    "Learn a GPT-2 style byte-level BPE vocabulary of N tokens (256 bytes,\n"
    "the merges, then <|endoftext|>) from FILE and write a GGUF file holding\n"
    "only the tokenizer.ggml.* keys.\n"
    "  --input FILE   training text (any bytes)\n"
    "  --vocab N      vocabulary size, 257..16777216 (default 8192)\n"
    "  -o OUT.gguf    output file (written atomically)\n";

int cmd_tokenizer_train(int argc, char **argv)
{
    const char *cmd = "tokenizer-train", *input = NULL, *out = NULL;
    int n_vocab = 8192;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tok_is_help(a)) {
            fputs(train_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--input")) {
            if (!(input = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--vocab")) {
            const char *v = cli_value(cmd, argc, argv, &i);
            if (!v || cli_int(cmd, "--vocab", v, 257, 1L << 24, &n_vocab))
                return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else {
            fprintf(stderr, "synth %s: unexpected argument '%s'\n%s", cmd, a, train_usage);
            return 2;
        }
    }
    if (!input || !out) {
        fprintf(stderr, "synth %s: %s is required\n%s", cmd, !input ? "--input" : "-o", train_usage);
        return 2;
    }
    char *text;
    size_t len;
    if (cli_read_file("tokenizer-train: --input", input, &text, &len))
        return 1;
    if (len > (size_t)INT32_MAX) {
        fprintf(stderr, "synth %s: --input: %s is larger than 2 GB\n", cmd, input);
        free(text);
        return 1;
    }
    char **vocab = NULL, **merges = NULL;
    int nv = 0, nm = 0, eos = -1, ret = 1;
    double t0 = tok_now();
    int rc = tok_learn(text, len, n_vocab, &vocab, &nv, &merges, &nm, &eos);
    double dt = tok_now() - t0;
    free(text);
    if (rc) {
        fprintf(stderr, "synth %s: tok_learn: %s\n", cmd, tok_strerror(rc));
        return 1;
    }
    /* check what we are about to write loads back */
    char err[512];
    tok_t *t = NULL;
    rc = tok_create((const char *const *)vocab, nv, (const char *const *)merges, nm, eos, &t, err, sizeof err);
    tok_free(t);
    if (rc) {
        fprintf(stderr, "synth %s: %s\n", cmd, err);
        goto done;
    }
    gguf_writer *w = gguf_writer_create();
    if (!w) {
        fprintf(stderr, "synth %s: out of memory\n", cmd);
        goto done;
    }
    rc = tok_write_gguf(w, (const char *const *)vocab, nv, (const char *const *)merges, nm, eos);
    if (rc)
        fprintf(stderr, "synth %s: tok_write_gguf: %s\n", cmd, tok_strerror(rc));
    else if ((rc = gguf_writer_write(w, out, err, sizeof err)))
        fprintf(stderr, "synth %s: -o: %s: %s\n", cmd, out, err[0] ? err : gguf_strerror(rc));
    gguf_writer_free(w);
    if (rc)
        goto done;
    printf("%s: %.2f MB -> %d tokens (%d merges, eos %d) in %.2f s; wrote %s\n", input, len / 1e6, nv, nm, eos,
           dt, out);
    if (nv < n_vocab)
        printf("note: only %d of the %d requested tokens: no pair occurs twice any more\n", nv, n_vocab);
    ret = 0;
done:
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    return ret;
}

/* ------------------------------------------------------------- tokenize */

static const char tokenize_usage[] =
    "usage: synth tokenize [-m MODEL.gguf | --tokenizer TOK.gguf] [-p TEXT | FILE] [--ids]\n"
    "Print the tokens of TEXT (or of FILE's bytes, or of stdin): one line per\n"
    "token with its id, vocabulary string and bytes, or with --ids only the\n"
    "ids on one line. The tokenizer comes from a model checkpoint (-m, default\n"
    "$SYNTH_MODEL or " CMD_DEFAULT_MODEL ") or a tokenizer-train file.\n"
    "  -m MODEL.gguf         checkpoint holding tokenizer.ggml.* keys\n"
    "  --tokenizer TOK.gguf  tokenizer-only GGUF (from synth tokenizer-train)\n"
    "  -p, --prompt TEXT     the text to tokenize\n"
    "  --ids                 print only the ids\n";

/* bytes as a C-like quoted string */
static void tok_print_escaped(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7F)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static tok_t *tok_load(const char *cmd, const char *flag, const char *path)
{
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    if (rc) {
        fprintf(stderr, "synth %s: %s: %s: %s\n", cmd, flag, path, err[0] ? err : gguf_strerror(rc));
        return NULL;
    }
    tok_t *t = NULL;
    rc = tok_from_gguf(f, &t, err, sizeof err);
    gguf_close(f); /* tok_create copies every string */
    if (rc) {
        fprintf(stderr, "synth %s: %s: %s: %s\n", cmd, flag, path, err[0] ? err : tok_strerror(rc));
        return NULL;
    }
    return t;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *cmd = "tokenize", *model = NULL, *tokf = NULL, *prompt = NULL, *file = NULL;
    int ids_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (tok_is_help(a)) {
            fputs(tokenize_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tokf = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--ids")) {
            ids_only = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "synth %s: unknown flag '%s'\n%s", cmd, a, tokenize_usage);
            return 2;
        } else if (file) {
            fprintf(stderr, "synth %s: unexpected argument '%s' (FILE is '%s')\n", cmd, a, file);
            return 2;
        } else {
            file = a;
        }
    }
    if (model && tokf) {
        fprintf(stderr, "synth %s: -m and --tokenizer are exclusive\n", cmd);
        return 2;
    }
    if (prompt && file) {
        fprintf(stderr, "synth %s: -p and FILE are exclusive\n", cmd);
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        len = strlen(prompt);
    } else {
        const char *path = !file || !strcmp(file, "-") ? "/dev/stdin" : file;
        if (cli_read_file("tokenize: FILE", path, &text, &len))
            return 1;
    }
    tok_t *t = tokf ? tok_load(cmd, "--tokenizer", tokf) : tok_load(cmd, "-m", cli_model_path(model));
    if (!t) {
        free(text);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tok_encode_special(t, prompt ? prompt : text, len, &ids, &n);
    if (rc) {
        fprintf(stderr, "synth %s: tok_encode: %s\n", cmd, tok_strerror(rc));
        tok_free(t);
        free(text);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        const char *b;
        size_t bl;
        tok_token_bytes(t, ids[i], &b, &bl);
        printf("%d\t%s\t", ids[i], tok_vocab_str(t, ids[i]));
        tok_print_escaped(stdout, b, bl);
        putchar('\n');
    }
    if (ids_only)
        putchar('\n');
    fprintf(stderr, "%zu bytes -> %zu tokens\n", len, n);
    free(ids);
    tok_free(t);
    free(text);
    return 0;
}
