/*
 * ckpt.h - Synthesizer checkpoints on top of GGUF (weights/gguf.h): the
 * metadata schema (keys listed in weights/README.md), writing a model from
 * f32 parameters, converting tensor types (synth quantize), and reading the
 * hyperparameters back with validation.
 *
 * Parameters are passed as one f32 array per tensor, in arch_tensors()
 * order. Tensors marked quantizable in arch.h are stored in `type`; all
 * others (norms, biases, position embedding, random logits, alpha) stay f32.
 */
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "gguf.h"

/* llama.cpp's general.file_type values for the types we write. */
enum { CKPT_FTYPE_F32 = 0, CKPT_FTYPE_F16 = 1, CKPT_FTYPE_Q4_0 = 2, CKPT_FTYPE_Q8_0 = 7 };

typedef struct {
    const arch_hparams *hp;
    const char *name;                 /* general.name */
    const char *const *vocab;         /* tokenizer.ggml.tokens (GPT-2 mapped) */
    int n_vocab;                      /* must equal hp->n_vocab */
    const char *const *merges;        /* tokenizer.ggml.merges */
    int n_merges;
    int eos_id;                       /* tokenizer.ggml.eos_token_id */
    const float *const *tensors;      /* f32 data in arch_tensors() order */
    uint32_t type;                    /* QUANT_F32, QUANT_F16, QUANT_Q8_0, QUANT_Q4_0 */
} ckpt_desc;

int ckpt_write(const ckpt_desc *d, const char *path, char *err, size_t errlen);
int ckpt_write_buffer(const ckpt_desc *d, void **buf, size_t *size, char *err, size_t errlen);

/* Read and validate synthesizer.* hyperparameters (and general.architecture
 * == "synthesizer"); 0 or GGUF_EFORMAT with "ckpt_read_hparams: ..." in err. */
int ckpt_read_hparams(const gguf_file *f, arch_hparams *hp, char *err, size_t errlen);

/* Re-encode a checkpoint's quantizable tensors as `type` (f32 in between). */
int ckpt_quantize(const char *in_path, const char *out_path, uint32_t type, char *err, size_t errlen);

#endif
