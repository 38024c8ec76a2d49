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
#define BENCH_PROG "prof2"
#include "bench_common.inc"
int main(int argc, char **argv)
{
    int nseq = argc > 1 ? atoi(argv[1]) : 64;
    const char *order = argc > 2 ? argv[2] : "hfhf";
    bench_min_seconds = argc > 3 ? atof(argv[3]) : 1;
    model_set_threads(0);
    arch_hparams hp; arch_hparams_default(&hp);
    model *m = bench_build_model(&hp, 1.0f);
    hp.variant = ARCH_VANILLA;
    model *mv = bench_build_model(&hp, 1.0f);
    for (const char *o = order; *o; o++) {
        double t = *o == 'v' ? bench_decode_typed(mv, nseq, MODEL_CACHE_F32) : bench_decode_typed(m, nseq, *o == 'h' ? MODEL_CACHE_F16 : MODEL_CACHE_F32);
        printf("%c %.0f\n", *o, t);
    }
    model_free(m);
    return 0;
}
