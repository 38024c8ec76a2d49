/*
 * fuzz_mkseed.c - write the GGUF seed corpus of fuzz_gguf: tiny valid
 * checkpoints (tests/fixture.h) of each attention variant, in
 * each tensor type, so the fuzzer starts past the header checks. The
 * committed files in tests/fuzz/corpus/gguf were made with
 *   fuzz_mkseed tests/fuzz/corpus/gguf
 * (a plain program, built by `make fuzz` like the targets).
 */
#include <stdio.h>
#include <stdlib.h>

#include "arch.h"
#include "quant.h"
#include "../fixture.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_mkseed DIR\n");
        return 2;
    }
    static const struct {
        arch_variant v;
        uint32_t type;
        int n_ctx, n_layer;
    } seeds[] = {
        {ARCH_RANDOM, QUANT_F32, 8, 1},           {ARCH_RANDOM, QUANT_Q8_0, 8, 2},
        {ARCH_FIXED_RANDOM, QUANT_F16, 4, 1},     {ARCH_FACTORIZED_RANDOM, QUANT_Q4_0, 8, 1},
        {ARCH_DENSE, QUANT_Q8_0, 4, 1},           {ARCH_FACTORIZED_DENSE, QUANT_F16, 9, 1},
        {ARCH_VANILLA, QUANT_Q4_0, 4, 1},         {ARCH_RANDOM_VANILLA, QUANT_F16, 4, 1},
        {ARCH_DENSE_VANILLA, QUANT_Q8_0, 4, 1},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        void *buf = NULL;
        size_t size = 0;
        if (fixture_model_buffer(seeds[i].v, seeds[i].type, seeds[i].n_ctx, seeds[i].n_layer, &buf, &size)) {
            fprintf(stderr, "fuzz_mkseed: cannot build seed %zu\n", i);
            return 1;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%s.gguf", argv[1], arch_variant_name(seeds[i].v),
                 quant_get_traits(seeds[i].type)->name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, size, f) != size || fclose(f)) {
            fprintf(stderr, "fuzz_mkseed: cannot write %s\n", path);
            return 1;
        }
        printf("%s (%zu bytes)\n", path, size);
        free(buf);
    }
    return 0;
}
