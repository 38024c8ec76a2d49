/* train_net_f64.c - the trainable network in double precision, used by the
 * tests for finite-difference gradient checks of the same code. */
#include "train.h"

#define TN_REAL double
#define TN_SUF d
#define TN_GEMM cblas_dgemm
#define TN_EXP exp
#define TN_TANH tanh
#define TN_SQRT sqrt
#define TN_LOG log
#include "train_net.inc"
