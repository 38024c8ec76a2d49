/* test_util.c - see test_util.h. */
#include "test_util.h"

static uint64_t state = 1;

void tu_seed(uint64_t seed)
{
    state = seed;
}

float tu_frand(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
