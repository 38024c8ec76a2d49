/*
 * test.h - a minimal test harness. Each test binary defines tests with
 * TEST(name) { ... }, registers them in main via RUN(name), and ends with
 * return test_summary(); which prints "N passed, N failed" and returns the
 * exit code (TEST_ONLY=substring runs only the tests whose name holds it).
 * A failing CHECK prints file:line and the expression, marks the
 * current test failed and continues (so one run shows every failure).
 */
#ifndef TEST_H
#define TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_n_passed, test_n_failed, test_cur_failed;
static const char *test_cur_name;

#define TEST(name) static void name(void)
/* TEST_ONLY=substring in the environment runs only the matching tests. */
#define RUN(name)                                                              \
    do {                                                                       \
        const char *only_ = getenv("TEST_ONLY");                               \
        if (only_ && *only_ && !strstr(#name, only_)) break;                   \
        test_cur_name = #name;                                                 \
        test_cur_failed = 0;                                                   \
        name();                                                                \
        if (test_cur_failed) { test_n_failed++; printf("FAIL %s\n", #name); } \
        else { test_n_passed++; printf("ok   %s\n", #name); }                  \
        fflush(stdout);                                                        \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("  %s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__,      \
                   test_cur_name, #cond);                                      \
            test_cur_failed = 1;                                               \
        }                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("  %s:%d: %s: ", __FILE__, __LINE__, test_cur_name);        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            test_cur_failed = 1;                                               \
        }                                                                      \
    } while (0)

/* |a - b| <= tol, printing both values on failure */
#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        double _a = (double)(a), _b = (double)(b);                             \
        if (!(fabs(_a - _b) <= (tol))) {                                       \
            printf("  %s:%d: %s: %s = %.9g vs %s = %.9g (tol %g)\n", __FILE__, \
                   __LINE__, test_cur_name, #a, _a, #b, _b, (double)(tol));    \
            test_cur_failed = 1;                                               \
        }                                                                      \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_n_passed, test_n_failed);
    return test_n_failed ? 1 : 0;
}

#endif
