/*
 * cli.h - small helpers shared by the subcommands: strict number parsing
 * that names the flag in its error, file reading, and a progress bar.
 * All parse functions print "synth <cmd>: <flag>: <problem>" on stderr and
 * return -1 on bad input, 0 on success.
 */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

int cli_int(const char *cmd, const char *flag, const char *val, long min, long max, int *out);
int cli_u64(const char *cmd, const char *flag, const char *val, uint64_t *out);
int cli_float(const char *cmd, const char *flag, const char *val, double min, double max, float *out);

/* The value after flag argv[*i]; advances *i. NULL (with a message) if the
 * flag is the last argument. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* Read a whole file into a malloc'd buffer (NUL appended, not counted). */
int cli_read_file(const char *cmd, const char *path, char **buf, size_t *len);

/* Model path: explicit flag value, else $SYNTH_MODEL, else the default. */
const char *cli_model_path(const char *flag_value);

/* The precision of cached values: val ("f32" or "f16"; NULL: $SYNTH_CACHE_TYPE,
 * else f16, the engine's default) into *out. flag names val in the error. */
int cli_cache_type(const char *cmd, const char *flag, const char *val, model_cache_type *out);

/* "\r[#####.....] 42% label" on stderr when stderr is a terminal. */
void cli_progress(const char *label, int64_t done, int64_t total);

#endif
