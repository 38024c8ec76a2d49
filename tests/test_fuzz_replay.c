/*
 * test_fuzz_replay.c - the fuzz targets of tests/fuzz/ run, in the normal
 * suite (and under ASan/UBSan in make check), on their committed seed
 * corpora (tests/fuzz/corpus/T) and on every input that ever made them fail
 * (tests/fuzz/regress/T, one file per finding, named after the bug; the
 * commit that fixed it says more). A target checks its properties
 * with abort(), so a regression crashes this binary and fails the suite.
 * fuzz_http is not replayed here (it needs the server threads and a port;
 * test_server covers those paths).
 *
 * The targets are linked in as objects compiled from tests/fuzz/fuzz_T.c
 * with their libFuzzer entry points renamed (see the Makefile).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* The targets, linked as objects with their libFuzzer entry points renamed
 * (the Makefile's REPLAY_TARGETS: -DLLVMFuzzerTestOneInput=fz_T_one). */
int fz_gguf_init(int *argc, char ***argv);
int fz_gguf_one(const uint8_t *data, size_t size);
int fz_tok_init(int *argc, char ***argv);
int fz_tok_one(const uint8_t *data, size_t size);
int fz_api_one(const uint8_t *data, size_t size);

/* Run fn on every file of dir; returns the number of files (-1: no dir). */
static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(sz > 0 ? (size_t)sz : 1);
        size_t got = buf ? fread(buf, 1, (size_t)sz, f) : 0;
        fclose(f);
        if (buf && got == (size_t)sz) {
            fn(buf, got);   /* aborts on a broken property */
            n++;
        }
        free(buf);
    }
    closedir(d);
    return n;
}

static void replay(const char *t, int (*fn)(const uint8_t *, size_t), int min_seeds)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", t);
    int n = replay_dir(dir, fn);
    CHECK_MSG(n >= min_seeds, "%s: %d seed files (want >= %d)", dir, n, min_seeds);
    snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", t);
    int r = replay_dir(dir, fn);
    printf("  %s: %d seeds, %d regression inputs\n", t, n, r < 0 ? 0 : r);
}

TEST(test_replay_gguf)
{
    fz_gguf_init(NULL, NULL);
    replay("gguf", fz_gguf_one, 9);
}

TEST(test_replay_tok)
{
    fz_tok_init(NULL, NULL);
    replay("tok", fz_tok_one, 5);
}

TEST(test_replay_api)
{
    replay("api", fz_api_one, 10);
}

int main(void)
{
    RUN(test_replay_gguf);
    RUN(test_replay_tok);
    RUN(test_replay_api);
    return test_summary();
}
