/*
 * gguf.h - GGUF v3 checkpoints: a reader that trusts nothing and a writer.
 *
 * File layout (little-endian, see the GGUF spec of ggml):
 *   u32 magic "GGUF", u32 version (3), u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 value_type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to general.alignment (default 32), tensor data.
 *   string = u64 length + bytes (no NUL). Arrays = u32 elem_type, u64 n, elems.
 *
 * Reader: gguf_open() maps the file read-only (MAP_PRIVATE, PROT_READ) and
 * validates everything before returning: magic, version (3 only), every
 * count against the bytes left, string lengths (keys <= 65535 bytes, tensor
 * names <= 256, string values <= 256 MiB; keys and names non-empty without
 * NUL bytes), value and array element types (arrays of arrays are
 * rejected), bool bytes 0/1, integer overflow in size computations, tensor
 * types (quant_get_traits), n_dims (1..4), ne >= 1, ne[0] a multiple of the
 * block size, general.alignment (a u32 power of two <= 2^30, default 32),
 * alignment and offsets of the data, tensor extents inside the file,
 * overlapping tensors, duplicate keys and duplicate tensor names. Memory
 * and time are linear in the file size whatever the content. Tensor data are then used in
 * place through gguf_tensor_info.data (pointers into the mapping, valid until
 * gguf_close). Keys and strings are copied at open into NUL-terminated
 * strings, so callers never see unterminated bytes.
 *
 * Errors: functions return 0 or a negative GGUF_E* code; gguf_strerror()
 * names the code, and the open functions also write a one-line message
 * "gguf_open: <what is wrong>" into err (may be NULL).
 *
 * Threading: a gguf_file is immutable after open; concurrent reads are safe.
 * A mapped file must not be truncated by someone else while open (the
 * kernel would raise SIGBUS on access); our writer never rewrites a file in
 * place, it renames a new one over it, so open mappings stay valid.
 */
#ifndef GGUF_H
#define GGUF_H

#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian u32 */
#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

enum gguf_error {
    GGUF_OK = 0,
    GGUF_EIO = -1,        /* open/stat/mmap/write failed (errno kept) */
    GGUF_EFORMAT = -2,    /* malformed file: see err message */
    GGUF_ENOMEM = -3,
    GGUF_ENOTFOUND = -4,  /* key or tensor absent */
    GGUF_ETYPE = -5,      /* key present with another value type */
    GGUF_EINVAL = -6,     /* bad argument */
};

const char *gguf_strerror(int err);

typedef struct gguf_file gguf_file;

typedef struct {
    const char *name;      /* NUL-terminated copy */
    uint32_t type;         /* enum quant_type */
    uint32_t n_dims;       /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] innermost (fastest); unused dims = 1 */
    uint64_t offset;       /* relative to the start of the data section */
    size_t nbytes;         /* exact size of the data */
    const void *data;      /* into the mapping (or the caller's buffer) */
} gguf_tensor_info;

/* Open and validate a file; on success *out owns the mapping. */
int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);
/* Same for a buffer in memory (not copied; must outlive the gguf_file). */
int gguf_open_buffer(const void *buf, size_t size, gguf_file **out, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);

/* ---- key/value metadata ---- */
int64_t gguf_n_kv(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, int64_t i);
uint32_t gguf_kv_type(const gguf_file *f, int64_t i);
int64_t gguf_find_key(const gguf_file *f, const char *key); /* -1 if absent */

/* Typed getters: 0, GGUF_ENOTFOUND or GGUF_ETYPE. The integer getters
 * accept any integer value type whose value fits the result (so get_u32
 * reads a u8, a non-negative i32 or a small u64; a negative value or one
 * out of range is GGUF_ETYPE); get_f32 accepts FLOAT64 (rounded). Bools are
 * only read by get_bool, strings only by get_str. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
/* String value: NUL-terminated copy; *len (may be NULL) excludes the NUL. */
int gguf_get_str(const gguf_file *f, const char *key, const char **out, size_t *len);
/* Array of strings: *n elements, each NUL-terminated (lens may be NULL). */
int gguf_get_arr_str(const gguf_file *f, const char *key, const char *const **strs,
                     const size_t **lens, uint64_t *n);
/* Array of numbers (any integer, float or bool element type) converted to
 * double at open (64-bit integers beyond 2^53 round): *vals is owned by f. */
int gguf_get_arr_num(const gguf_file *f, const char *key, const double **vals, uint64_t *n);

/* ---- tensors ---- */
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor_info *gguf_tensor(const gguf_file *f, int64_t i);
const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- writer ----
 * Collects keys and tensors, then writes the whole file. Tensor data are
 * referenced, not copied: they must stay valid until gguf_writer_write*.
 * Keys are written in the order they were first set; setting a key again
 * replaces its value. Adding a tensor name twice is GGUF_EINVAL. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* Copy key i of f with its exact type and value (strings may hold NUL
 * bytes, numeric arrays keep their element type). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i);
/* ne[0] innermost; nbytes must equal quant_row_size(type, ne0) * rows. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, size_t nbytes);
/* general.alignment: the writer aligns the data section and every tensor
 * to it. If the key was not set, it is added (u32 32) as the last key when
 * writing; setting it to anything but a power of two is GGUF_EINVAL.
 * Write to path atomically (path.tmp, fsync, rename). */
int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen);
/* Write into a malloc'd buffer (caller frees). */
int gguf_writer_write_buffer(gguf_writer *w, void **buf, size_t *size);

#endif
