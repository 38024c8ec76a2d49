/*
 * cmd.h - the subcommands of the `synth` executable. Each takes the
 * arguments after its name (argv[0] is the subcommand name), prints its own
 * --help, reports errors on stderr naming the flag or file, and returns the
 * process exit code (0 success, 1 runtime error, 2 usage error).
 */
#ifndef CMD_H
#define CMD_H

int cmd_info(int argc, char **argv);           /* cmd_model.c */
int cmd_generate(int argc, char **argv);       /* cmd_model.c */
int cmd_score(int argc, char **argv);          /* cmd_model.c */
int cmd_quantize(int argc, char **argv);       /* cmd_model.c */
int cmd_tokenizer_train(int argc, char **argv);/* cmd_tok.c */
int cmd_tokenize(int argc, char **argv);       /* cmd_tok.c */
int cmd_train(int argc, char **argv);          /* cmd_train.c */
int cmd_serve(int argc, char **argv);          /* cmd_serve.c */
int cmd_plot_attention(int argc, char **argv); /* cmd_plot.c */

/* Default checkpoint, relative to the working directory or SYNTH_MODEL. */
#define CMD_DEFAULT_MODEL "weights/synthesizer-wt2-q8_0.gguf"

#endif
