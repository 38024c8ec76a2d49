/* decode-driver.c - decode N sequences of the default-size random model
 * (bench_common.inc's bench_decode_typed) for S seconds with cache type T
 * (0 f32, 1 f16, 2 q8_0 with q8cache.diff applied). Build from the repo:
 *   cc -O2 -std=c11 -march=native -D_GNU_SOURCE -Iserver -Imodel -Iweights -Ibench \
 *      decode-driver.c -o dec build/tests/libtestsupport.a build/libsynth.a \
 *      -lopenblas -lmicrohttpd -ljansson -luv -lpng -lm -lpthread
 *   ./dec N S T */
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
#define BENCH_PROG "dec"
#include "bench_common.inc"
int main(int argc, char **argv)
{
    int n = atoi(argv[1]);
    bench_min_seconds = argc > 2 ? atof(argv[2]) : 5;
    arch_hparams hp; arch_hparams_default(&hp);
    hp.variant = ARCH_RANDOM;
    model *m = bench_build_model(&hp, 1.0f);
    int vt = argc > 3 ? atoi(argv[3]) : 1;
    printf("%d seqs: %.0f tok/s\n", n, bench_decode_typed(m, n, vt));
    return 0;
}
