/* train_net_f32.c - the trainable network in single precision (the trainer). */
#include "train.h"
#include "train_kern.h"

#define TN_REAL float
#define TN_SUF f
#define TN_GEMM cblas_sgemm
#define TN_EXP expf
#define TN_TANH tanhf
#define TN_SQRT sqrtf
#define TN_LOG logf
#define TN_F32_KERNELS 1 /* vectorized kernels of train_kern.c */
#include "train_net.inc"
