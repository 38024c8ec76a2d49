/*
 * test_util.h - what several test programs share, compiled once
 * (tests/test_util.c, linked into every tests/test_* binary): the
 * deterministic random numbers the tests draw their inputs from.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdint.h>

/* A 64-bit LCG (Knuth's MMIX constants): the same sequence on every
 * machine, so a failing case is reproduced by its seed. */
void tu_seed(uint64_t seed);
float tu_frand(void); /* uniform in [-1, 1), 24 random bits */

#endif
