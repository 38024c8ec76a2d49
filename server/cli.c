/* cli.c - argument and file helpers for the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

int cli_int(const char *cmd, const char *flag, const char *val, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno) {
        fprintf(stderr, "synth %s: %s: '%s' is not an integer\n", cmd, flag, val);
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "synth %s: %s: %ld out of range [%ld, %ld]\n", cmd, flag, v, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_u64(const char *cmd, const char *flag, const char *val, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*val == '-') {
        fprintf(stderr, "synth %s: %s: must not be negative\n", cmd, flag);
        return -1;
    }
    unsigned long long v = strtoull(val, &end, 10);
    if (!*val || *end || errno) {
        fprintf(stderr, "synth %s: %s: '%s' is not an unsigned integer\n", cmd, flag, val);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_float(const char *cmd, const char *flag, const char *val, double min, double max, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v)) {
        fprintf(stderr, "synth %s: %s: '%s' is not a finite number\n", cmd, flag, val);
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "synth %s: %s: %g out of range [%g, %g]\n", cmd, flag, v, min, max);
        return -1;
    }
    *out = (float)v;
    return 0;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "synth %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_read_file(const char *cmd, const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "synth %s: %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
        if (!nb) { free(b); b = NULL; break; }
        b = nb;
        cap *= 2;
    }
    int bad = !b || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "synth %s: %s: read failed\n", cmd, path);
        free(b);
        return -1;
    }
    if (n == cap) {
        char *nb = realloc(b, cap + 1);
        if (!nb) { free(b); return -1; }
        b = nb;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

const char *cli_model_path(const char *flag_value)
{
    if (flag_value) return flag_value;
    const char *env = getenv("SYNTH_MODEL");
    return env && *env ? env : CMD_DEFAULT_MODEL;
}

int cli_cache_type(const char *cmd, const char *flag, const char *val, model_cache_type *out)
{
    if (!val) {
        val = getenv("SYNTH_CACHE_TYPE");
        if (!val || !*val) val = "f16";
        else flag = "SYNTH_CACHE_TYPE";
    }
    if (!strcmp(val, "f16")) *out = MODEL_CACHE_F16;
    else if (!strcmp(val, "f32")) *out = MODEL_CACHE_F32;
    else {
        fprintf(stderr, "synth %s: %s: expected f32 or f16, got '%s'\n", cmd, flag, val);
        return -1;
    }
    return 0;
}

void cli_progress(const char *label, int64_t done, int64_t total)
{
    if (!isatty(STDERR_FILENO) || total <= 0) return;
    int width = 30, fill = (int)(done * width / total);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %s", bar, (int)(done * 100 / total), label);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}
