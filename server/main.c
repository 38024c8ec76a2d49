/* main.c - `synth`: dispatch to the subcommands declared in cmd.h. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "cmd.h"
#include "model.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} subcommand;

static const subcommand subcommands[] = {
    {"serve", cmd_serve, "HTTP inference server (libuv + libmicrohttpd)"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"score", cmd_score, "perplexity of a text file"},
    {"info", cmd_info, "hyperparameters, tensors and size of a checkpoint"},
    {"quantize", cmd_quantize, "convert a checkpoint to f16, q8_0 or q4_0"},
    {"train", cmd_train, "train a Synthesizer LM on text files"},
    {"tokenizer-train", cmd_tokenizer_train, "learn byte-level BPE merges from a text"},
    {"tokenize", cmd_tokenize, "print the token ids of a text with a model's tokenizer"},
    {"plot-attention", cmd_plot_attention, "attention heat map (PNG) of a layer/head; alpha of mixtures"},
};
#define N_SUB (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: synth <command> [options]   (synth <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < N_SUB; i++) fprintf(out, "  %-16s %s\n", subcommands[i].name, subcommands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* SYNTH_CPU forces a lower kernel level for every command (serve also
     * takes it as --cpu); SYNTH_THREADS is read by the engine itself. */
    const char *cpu = getenv("SYNTH_CPU");
    char err[160];
    if (cpu && *cpu && model_set_cpu(cpu, err, sizeof err) != 0) {
        fprintf(stderr, "synth: SYNTH_CPU: %s\n", err);
        return 2;
    }
    /* SYNTH_ACT: the activation mode of q8_0 layers (q8, f32) */
    const char *act = getenv("SYNTH_ACT");
    if (act && *act && model_set_act(act, err, sizeof err) != 0) {
        fprintf(stderr, "synth: SYNTH_ACT: %s\n", err);
        return 2;
    }
    for (size_t i = 0; i < N_SUB; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "synth: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
