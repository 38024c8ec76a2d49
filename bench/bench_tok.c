/*
 * bench_tok.c - tokenizer speed.
 *   bench_tok TEXT [TRAIN_TEXT [N_VOCAB]]
 * Learns an N_VOCAB (default 8192) vocabulary with tok_learn on TRAIN_TEXT
 * (default: TEXT itself) and times it, then times tok_encode of TEXT (cold
 * piece cache, then warm), tok_decode, and checks the round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s TEXT [TRAIN_TEXT [N_VOCAB]]\n", argv[0]);
        return 2;
    }
    const char *train_path = argc > 2 ? argv[2] : argv[1];
    int n_vocab = argc > 3 ? atoi(argv[3]) : 8192;
    size_t len, tlen;
    char *text = read_file(argv[1], &len);
    char *train = read_file(train_path, &tlen);
    if (!text || !train) {
        fprintf(stderr, "bench_tok: cannot read %s\n", !text ? argv[1] : train_path);
        return 1;
    }
    char **vocab, **merges;
    int nv, nm, eos;
    double t0 = now_s();
    int r = tok_learn(train, tlen, n_vocab, &vocab, &nv, &merges, &nm, &eos);
    double t_learn = now_s() - t0;
    if (r != 0) {
        fprintf(stderr, "bench_tok: tok_learn: %s\n", tok_strerror(r));
        return 1;
    }
    printf("tok_learn: %.2f MB, vocab %d (%d merges) in %.2f s\n", tlen / 1e6, nv, nm, t_learn);
    tok_t *t;
    char err[256];
    r = tok_create((const char *const *)vocab, nv, (const char *const *)merges, nm, eos, &t, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "bench_tok: %s\n", err);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        free(ids);
        t0 = now_s();
        r = tok_encode(t, text, len, &ids, &n);
        double dt = now_s() - t0;
        if (r != 0) {
            fprintf(stderr, "bench_tok: tok_encode: %s\n", tok_strerror(r));
            return 1;
        }
        printf("tok_encode (%s cache): %.2f MB -> %zu tokens (%.3f bytes/token) in %.3f s = %.1f MB/s\n",
               pass ? "warm" : "cold", len / 1e6, n, (double)len / (double)n, dt, len / 1e6 / dt);
    }
    char *back;
    size_t blen;
    t0 = now_s();
    r = tok_decode(t, ids, n, 0, &back, &blen);
    double dt = now_s() - t0;
    if (r != 0) {
        fprintf(stderr, "bench_tok: tok_decode: %s\n", tok_strerror(r));
        return 1;
    }
    int ok = blen == len && memcmp(back, text, len) == 0;
    printf("tok_decode: %.1f MB/s, round trip %s\n", len / 1e6 / dt, ok ? "exact" : "MISMATCH");
    free(back);
    free(ids);
    tok_free(t);
    tok_free_strings(vocab, nv);
    tok_free_strings(merges, nm);
    free(text);
    free(train);
    return ok ? 0 : 1;
}
