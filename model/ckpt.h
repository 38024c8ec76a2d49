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

/* Errors: every function returns 0 or a negative GGUF_E* code (name it with
 * gguf_strerror) and writes "<function>: <what is wrong>" into err (may be
 * NULL). ckpt_write* reject invalid hparams, a vocabulary of the wrong size,
 * NULL strings or tensors, an eos id out of range, an unsupported type and
 * non-finite parameters (GGUF_EINVAL). eos_id < 0 omits the eos key. */
int ckpt_write(const ckpt_desc *d, const char *path, char *err, size_t errlen);
int ckpt_write_buffer(const ckpt_desc *d, void **buf, size_t *size, char *err, size_t errlen);

/* Read and validate synthesizer.* hyperparameters (and general.architecture
 * == "synthesizer", tokenizer.ggml.model == "gpt2"; n_vocab is the length
 * of tokenizer.ggml.tokens); 0 or GGUF_EFORMAT with "ckpt_read_hparams: ..."
 * naming the missing or bad key in err. */
int ckpt_read_hparams(const gguf_file *f, arch_hparams *hp, char *err, size_t errlen);

/* Check the tensors of f against the model definition: every tensor that
 * arch_tensors(hp) lists must be present with n_dims and ne equal to its
 * shape (ne reversed), no other tensor may be present, and types must be:
 * quantizable tensors any supported type (f32, f16, q8_0, q4_0); all
 * others f32 or f16 only. On success out[i] (may be NULL; room for
 * arch_tensors(hp, NULL, 0) pointers) is the tensor of arch_tensors() entry
 * i. 0 or GGUF_EFORMAT with "ckpt_check_tensors: ..." naming the tensor. */
int ckpt_check_tensors(const gguf_file *f, const arch_hparams *hp, const gguf_tensor_info **out, char *err,
                       size_t errlen);

/* Re-encode a checkpoint's quantizable tensors as `type` (f32 in between;
 * tensors already in `type` are copied bit for bit). Non-quantizable
 * tensors keep their stored type. All metadata keys are copied; file_type
 * is updated and quantization_version (2) written only for q8_0/q4_0. The
 * input is fully validated first (ckpt_read_hparams, ckpt_check_tensors);
 * the output is written atomically, and in_path == out_path is allowed. */
int ckpt_quantize(const char *in_path, const char *out_path, uint32_t type, char *err, size_t errlen);
/* ckpt_quantize with the token embedding in embd_type instead of type
 * (embd_type == type: the same file as ckpt_quantize). The embedding is also
 * the tied output projection, whose error reaches every logit, so a q4_0
 * file keeps it at q8_0 (llama.cpp's q4_0 keeps its output tensor at q6_K
 * for the same reason). file_type names `type`. */
int ckpt_quantize_mixed(const char *in_path, const char *out_path, uint32_t type, uint32_t embd_type, char *err,
                        size_t errlen);

/* general.file_type of a tensor type, or -1 for an unsupported type. */
int ckpt_file_type(uint32_t type);

#endif
