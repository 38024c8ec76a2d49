#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch.h"
#include "ckpt.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "tok.h"
#define BENCH_PROG "prof"
#include "bench_common.inc"
int main(int argc, char **argv)
{
    int nseq = argc > 1 ? atoi(argv[1]) : 64;
    int f16 = argc > 2 ? atoi(argv[2]) : 0;
    bench_min_seconds = argc > 3 ? atof(argv[3]) : 5;
    model_set_threads(0);
    arch_hparams hp; arch_hparams_default(&hp);
    if (argc > 4) hp.n_ctx = atoi(argv[4]); /* optional: a shorter context (session 8) */
    model *m = bench_build_model(&hp, 1.0f);
    double t = bench_decode_typed(m, nseq, f16 ? MODEL_CACHE_F16 : MODEL_CACHE_F32);
    printf("%d seqs: %.0f tok/s\n", nseq, t);
    model_free(m);
    return 0;
}
