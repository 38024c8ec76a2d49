/*
 * gguf.c - GGUF v3 reader (validates everything, see gguf.h) and writer.
 *
 * The reader walks the image with a bounds-checked cursor: every read first
 * checks the bytes left, every count is compared against the bytes it would
 * need before anything is allocated for it, and every size product is
 * checked for overflow. A malformed image therefore fails with a message
 * instead of reading out of bounds, allocating absurd amounts, or looping
 * for long (memory and time are linear in the image size).
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits. Keys are short identifiers (the spec caps them at 65535 bytes);
 * tensor names are short too (ggml: 64). String values get a generous cap
 * on top of the check against the bytes left. */
#define GGUF_MAX_KEY 65535u
#define GGUF_MAX_NAME 256u
#define GGUF_MAX_STR (256u << 20)
/* Smallest encodings, used to bound counts before allocating:
 * KV = key length u64 + >= 1 key byte + u32 type + >= 1 value byte;
 * tensor info = name length u64 + >= 1 byte + u32 n_dims + >= 1 u64 dim +
 * u32 type + u64 offset. */
#define GGUF_MIN_KV_BYTES 14u
#define GGUF_MIN_TENSOR_BYTES 33u
#define GGUF_MAX_ALIGNMENT (1u << 30)

const char *gguf_strerror(int err)
{
    switch (err) {
    case GGUF_OK: return "success";
    case GGUF_EIO: return "i/o error";
    case GGUF_EFORMAT: return "malformed GGUF file";
    case GGUF_ENOMEM: return "out of memory";
    case GGUF_ENOTFOUND: return "not found";
    case GGUF_ETYPE: return "value has another type";
    case GGUF_EINVAL: return "invalid argument";
    default: return "unknown gguf error";
    }
}

/* Size in bytes of a scalar value type; 0 for string/array/unknown. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *type_name(uint32_t t)
{
    static const char *const names[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    return t < GGUF_TYPE_COUNT ? names[t] : "?";
}

/* A scalar decoded once at open: integers keep their exact value (signed in
 * i, unsigned in u), floats go to f. */
typedef struct {
    int is_signed, is_float;
    uint64_t u;
    int64_t i;
    double f;
} scalar;

typedef struct {
    char *key;
    uint32_t type;        /* enum gguf_value_type */
    uint32_t arr_type;    /* element type when type == ARRAY */
    uint64_t n;           /* element count when type == ARRAY */
    scalar num;           /* numeric and bool scalars */
    char *str;            /* STRING: NUL-terminated copy */
    size_t str_len;
    char **strs;          /* ARRAY of STRING: n pointers into strs_mem */
    size_t *lens;
    char *strs_mem;
    double *nums;         /* ARRAY of numbers/bools, converted */
    const uint8_t *raw;   /* scalar or numeric array bytes in the image */
} kv_entry;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_start;
    int64_t n_kv;
    kv_entry *kv;
    int64_t *kv_sorted;   /* indices sorted by key, for lookups */
    int64_t n_tensors;
    gguf_tensor_info *tensors;
    char **tensor_names;
    int64_t *t_sorted;    /* indices sorted by name */
};

/* ---- bounds-checked cursor ---- */

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    char *err;
    size_t errlen;
} cursor;

static void msgf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    int n = snprintf(err, errlen, "gguf_open: ");
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

#define FAIL(c, ...) do { msgf((c)->err, (c)->errlen, __VA_ARGS__); return GGUF_EFORMAT; } while (0)

/* Printable, bounded copy of untrusted bytes for error messages. */
static const char *shown(const char *s, char buf[72])
{
    size_t i = 0;
    for (; s && s[i] && i < 64; i++) buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = 0;
    if (s && s[i]) strcpy(buf + 64, "...");
    return buf;
}

static size_t left(const cursor *c) { return c->size - c->pos; }

static int rd_raw(cursor *c, void *out, size_t n, const char *what)
{
    if (n > left(c)) FAIL(c, "truncated at byte %zu reading %s (%zu bytes needed, %zu left)", c->pos, what, n, left(c));
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return rd_raw(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return rd_raw(c, v, 8, what); }

/* A string in place: *s points into the image (not terminated). */
static int rd_str(cursor *c, uint64_t cap, const char *what, const char **s, size_t *len)
{
    uint64_t n;
    int rc = rd_u64(c, &n, what);
    if (rc) return rc;
    if (n > cap) FAIL(c, "%s length %llu exceeds the limit %llu", what, (unsigned long long)n, (unsigned long long)cap);
    if (n > left(c)) FAIL(c, "%s length %llu exceeds the %zu bytes left", what, (unsigned long long)n, left(c));
    *s = (const char *)c->p + c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

/* Identifiers (keys, tensor names): non-empty, no NUL, copied. */
static int rd_ident(cursor *c, uint64_t cap, const char *what, char **out)
{
    const char *s;
    size_t len;
    int rc = rd_str(c, cap, what, &s, &len);
    if (rc) return rc;
    if (len == 0) FAIL(c, "empty %s at byte %zu", what, c->pos - 8);
    if (memchr(s, 0, len)) FAIL(c, "%s at byte %zu contains a NUL byte", what, c->pos - len);
    *out = malloc(len + 1);
    if (!*out) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return 0;
}

static scalar decode_scalar(uint32_t t, const uint8_t *p)
{
    scalar v = {0};
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; float f; double d;
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: memcpy(&u8, p, 1); v.u = u8; break;
    case GGUF_TYPE_INT8: memcpy(&u8, p, 1); v.i = (int8_t)u8; v.is_signed = 1; break;
    case GGUF_TYPE_UINT16: memcpy(&u16, p, 2); v.u = u16; break;
    case GGUF_TYPE_INT16: memcpy(&u16, p, 2); v.i = (int16_t)u16; v.is_signed = 1; break;
    case GGUF_TYPE_UINT32: memcpy(&u32, p, 4); v.u = u32; break;
    case GGUF_TYPE_INT32: memcpy(&u32, p, 4); v.i = (int32_t)u32; v.is_signed = 1; break;
    case GGUF_TYPE_UINT64: memcpy(&u64, p, 8); v.u = u64; break;
    case GGUF_TYPE_INT64: memcpy(&u64, p, 8); v.i = (int64_t)u64; v.is_signed = 1; break;
    case GGUF_TYPE_FLOAT32: memcpy(&f, p, 4); v.f = f; v.is_float = 1; break;
    case GGUF_TYPE_FLOAT64: memcpy(&d, p, 8); v.f = d; v.is_float = 1; break;
    default: break;
    }
    return v;
}

static double scalar_to_double(scalar v)
{
    return v.is_float ? v.f : v.is_signed ? (double)v.i : (double)v.u;
}

/* Array of strings: count and validate first, then copy all strings into
 * one block (total size is bounded by the image size). */
static int rd_str_array(cursor *c, kv_entry *e, const char *key)
{
    char kb[72];
    if (e->n > left(c) / 8)
        FAIL(c, "key '%s': string array of %llu elements exceeds the %zu bytes left", shown(key, kb),
             (unsigned long long)e->n, left(c));
    size_t start = c->pos, total = 0;
    for (uint64_t i = 0; i < e->n; i++) {
        const char *s;
        size_t len;
        int rc = rd_str(c, GGUF_MAX_STR, "string array element", &s, &len);
        if (rc) {
            size_t n = strlen(c->err ? c->err : "");
            if (c->err && n + 1 < c->errlen)
                snprintf(c->err + n, c->errlen - n, " (key '%s', element %llu)", shown(key, kb), (unsigned long long)i);
            return rc;
        }
        total += len + 1; /* cannot overflow: bounded by the image size plus n */
    }
    e->strs = malloc((size_t)e->n * sizeof *e->strs + 1);
    e->lens = malloc((size_t)e->n * sizeof *e->lens + 1);
    e->strs_mem = malloc(total + 1);
    if (!e->strs || !e->lens || !e->strs_mem) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    size_t off = 0;
    c->pos = start;
    for (uint64_t i = 0; i < e->n; i++) {
        uint64_t len;
        memcpy(&len, c->p + c->pos, 8);
        c->pos += 8;
        memcpy(e->strs_mem + off, c->p + c->pos, (size_t)len);
        e->strs_mem[off + len] = 0;
        e->strs[i] = e->strs_mem + off;
        e->lens[i] = (size_t)len;
        off += (size_t)len + 1;
        c->pos += (size_t)len;
    }
    return 0;
}

static int rd_value(cursor *c, kv_entry *e)
{
    char kb[72];
    const char *key = e->key;
    int rc = rd_u32(c, &e->type, "value type");
    if (rc) return rc;
    if (e->type >= GGUF_TYPE_COUNT) FAIL(c, "key '%s': unknown value type %u", shown(key, kb), e->type);
    if (e->type == GGUF_TYPE_STRING) {
        const char *s;
        if ((rc = rd_str(c, GGUF_MAX_STR, "string value", &s, &e->str_len))) return rc;
        if (!(e->str = malloc(e->str_len + 1))) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
        memcpy(e->str, s, e->str_len);
        e->str[e->str_len] = 0;
        return 0;
    }
    if (e->type != GGUF_TYPE_ARRAY) {
        uint8_t b[8];
        if ((rc = rd_raw(c, b, scalar_size(e->type), "value"))) return rc;
        if (e->type == GGUF_TYPE_BOOL && b[0] > 1) FAIL(c, "key '%s': bool value %u is not 0 or 1", shown(key, kb), b[0]);
        e->raw = c->p + c->pos - scalar_size(e->type);
        e->num = decode_scalar(e->type, b);
        return 0;
    }
    if ((rc = rd_u32(c, &e->arr_type, "array element type")) || (rc = rd_u64(c, &e->n, "array length"))) return rc;
    if (e->arr_type == GGUF_TYPE_ARRAY) FAIL(c, "key '%s': nested arrays are not supported", shown(key, kb));
    if (e->arr_type >= GGUF_TYPE_COUNT) FAIL(c, "key '%s': unknown array element type %u", shown(key, kb), e->arr_type);
    if (e->arr_type == GGUF_TYPE_STRING) return rd_str_array(c, e, key);
    size_t es = scalar_size(e->arr_type);
    if (e->n > left(c) / es)
        FAIL(c, "key '%s': array of %llu %s exceeds the %zu bytes left", shown(key, kb), (unsigned long long)e->n,
             type_name(e->arr_type), left(c));
    if (!(e->nums = malloc((size_t)e->n * sizeof(double) + 1))) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    e->raw = c->p + c->pos;
    for (uint64_t i = 0; i < e->n; i++) {
        const uint8_t *p = c->p + c->pos + i * es;
        if (e->arr_type == GGUF_TYPE_BOOL && *p > 1)
            FAIL(c, "key '%s': bool element %llu is %u, not 0 or 1", shown(key, kb), (unsigned long long)i, *p);
        e->nums[i] = scalar_to_double(decode_scalar(e->arr_type, p));
    }
    c->pos += (size_t)e->n * es;
    return 0;
}

/* ---- sorted indices for duplicate checks and lookups ---- */

/* qsort has no context argument, so sort (key, index) pairs. */
typedef struct {
    const char *s;
    uint64_t off;
    int64_t idx;
} sort_item;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(((const sort_item *)a)->s, ((const sort_item *)b)->s);
}

static int cmp_off(const void *a, const void *b)
{
    uint64_t x = ((const sort_item *)a)->off, y = ((const sort_item *)b)->off;
    return x < y ? -1 : x > y;
}

enum { BY_KEY, BY_NAME, BY_OFFSET };

static int64_t *sorted_index(const gguf_file *f, int by)
{
    int64_t n = by == BY_KEY ? f->n_kv : f->n_tensors;
    sort_item *items = malloc((size_t)n * sizeof *items + 1);
    int64_t *idx = malloc((size_t)n * sizeof *idx + 1);
    if (!items || !idx) { free(items); free(idx); return NULL; }
    for (int64_t i = 0; i < n; i++) {
        items[i].idx = i;
        items[i].s = by == BY_KEY ? f->kv[i].key : f->tensors[i].name;
        items[i].off = by == BY_OFFSET ? f->tensors[i].offset : 0;
    }
    qsort(items, (size_t)n, sizeof *items, by == BY_OFFSET ? cmp_off : cmp_str);
    for (int64_t i = 0; i < n; i++) idx[i] = items[i].idx;
    free(items);
    return idx;
}

/* ---- parse ---- */

static int parse_kvs(cursor *c, gguf_file *f)
{
    char kb[72];
    int rc;
    for (int64_t i = 0; i < f->n_kv; i++) {
        kv_entry *e = &f->kv[i];
        if ((rc = rd_ident(c, GGUF_MAX_KEY, "key", &e->key))) return rc;
        if ((rc = rd_value(c, e))) return rc;
    }
    if (!(f->kv_sorted = sorted_index(f, BY_KEY))) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    for (int64_t i = 1; i < f->n_kv; i++)
        if (strcmp(f->kv[f->kv_sorted[i - 1]].key, f->kv[f->kv_sorted[i]].key) == 0)
            FAIL(c, "duplicate key '%s'", shown(f->kv[f->kv_sorted[i]].key, kb));
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ia = gguf_find_key(f, "general.alignment");
    if (ia >= 0) {
        const kv_entry *e = &f->kv[ia];
        if (e->type != GGUF_TYPE_UINT32) FAIL(c, "key 'general.alignment' has type %s, expected u32", type_name(e->type));
        if (e->num.u == 0 || (e->num.u & (e->num.u - 1)) || e->num.u > GGUF_MAX_ALIGNMENT)
            FAIL(c, "key 'general.alignment': %llu is not a power of two in [1, 2^30]", (unsigned long long)e->num.u);
        f->alignment = (uint32_t)e->num.u;
    }
    return 0;
}

static int parse_tensor_info(cursor *c, gguf_file *f, int64_t i)
{
    char nb[72];
    gguf_tensor_info *t = &f->tensors[i];
    int rc;
    if ((rc = rd_ident(c, GGUF_MAX_NAME, "tensor name", &f->tensor_names[i]))) return rc;
    const char *name = shown(f->tensor_names[i], nb);
    t->name = f->tensor_names[i];
    if ((rc = rd_u32(c, &t->n_dims, "tensor n_dims"))) return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) FAIL(c, "tensor '%s': n_dims %u not in [1, %d]", name, t->n_dims, GGUF_MAX_DIMS);
    uint64_t nelem = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((rc = rd_u64(c, &ne, "tensor dimension"))) return rc;
        if (ne < 1 || ne > (uint64_t)INT64_MAX) FAIL(c, "tensor '%s': ne[%u] = %llu out of range", name, d, (unsigned long long)ne);
        if (nelem > (uint64_t)INT64_MAX / ne) FAIL(c, "tensor '%s': element count overflows", name);
        nelem *= ne;
        t->ne[d] = (int64_t)ne;
    }
    if ((rc = rd_u32(c, &t->type, "tensor type"))) return rc;
    const quant_traits *qt = quant_get_traits(t->type);
    if (!qt) FAIL(c, "tensor '%s': unsupported tensor type %u", name, t->type);
    if (t->ne[0] % qt->block_size)
        FAIL(c, "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %d", name, (long long)t->ne[0],
             qt->name, qt->block_size);
    size_t row = quant_row_size(t->type, (uint64_t)t->ne[0]);
    uint64_t rows = nelem / (uint64_t)t->ne[0];
    if (row == 0 || rows > SIZE_MAX / row) FAIL(c, "tensor '%s': byte size overflows", name);
    t->nbytes = row * (size_t)rows;
    if ((rc = rd_u64(c, &t->offset, "tensor offset"))) return rc;
    return 0;
}

/* Data section placement: aligned start, every tensor aligned and inside
 * the image, no two tensors overlapping. */
static int check_extents(cursor *c, gguf_file *f)
{
    char nb[72];
    uint64_t a = f->alignment;
    uint64_t start = c->pos;
    if (start > UINT64_MAX - (a - 1)) FAIL(c, "data offset overflows");
    start = (start + a - 1) / a * a;
    f->data_start = start;
    if (f->n_tensors == 0) return 0;
    if (start > f->size) FAIL(c, "data section starts at %llu beyond the end of the file (%zu bytes)",
                              (unsigned long long)start, f->size);
    uint64_t avail = f->size - start;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor_info *t = &f->tensors[i];
        if (t->offset % a)
            FAIL(c, "tensor '%s': offset %llu is not a multiple of the alignment %llu", shown(t->name, nb),
                 (unsigned long long)t->offset, (unsigned long long)a);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            FAIL(c, "tensor '%s': data [%llu, +%zu) extends beyond the end of the file (%llu data bytes)",
                 shown(t->name, nb), (unsigned long long)t->offset, t->nbytes, (unsigned long long)avail);
        t->data = f->base + start + t->offset;
    }
    int64_t *by_off = sorted_index(f, BY_OFFSET);
    if (!by_off) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor_info *p = &f->tensors[by_off[i - 1]], *q = &f->tensors[by_off[i]];
        if (p->offset + p->nbytes > q->offset) {
            char nb2[72];
            msgf(c->err, c->errlen, "tensors '%s' and '%s' overlap", shown(p->name, nb), shown(q->name, nb2));
            free(by_off);
            return GGUF_EFORMAT;
        }
    }
    free(by_off);
    return 0;
}

static int parse(cursor *c, gguf_file *f)
{
    char nb[72];
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    int rc;
    if (c->size < 24) FAIL(c, "file too small for a GGUF header (%zu bytes)", c->size);
    rd_u32(c, &magic, "magic");
    if (magic != GGUF_MAGIC) FAIL(c, "bad magic 0x%08x (not a GGUF file)", magic);
    rd_u32(c, &f->version, "version");
    if (f->version == 1 || f->version == 2)
        FAIL(c, "GGUF version %u is not supported (only version 3; re-convert the file)", f->version);
    if (f->version != GGUF_VERSION) FAIL(c, "unknown GGUF version %u (expected 3)", f->version);
    rd_u64(c, &n_tensors, "tensor count");
    rd_u64(c, &n_kv, "kv count");
    if (n_kv > left(c) / GGUF_MIN_KV_BYTES)
        FAIL(c, "kv count %llu cannot fit in the %zu bytes left", (unsigned long long)n_kv, left(c));
    if (n_tensors > left(c) / GGUF_MIN_TENSOR_BYTES ||
        n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_BYTES > left(c))
        FAIL(c, "tensor count %llu cannot fit in the %zu bytes left", (unsigned long long)n_tensors, left(c));
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    f->kv = calloc((size_t)n_kv + 1, sizeof *f->kv);
    f->tensors = calloc((size_t)n_tensors + 1, sizeof *f->tensors);
    f->tensor_names = calloc((size_t)n_tensors + 1, sizeof *f->tensor_names);
    if (!f->kv || !f->tensors || !f->tensor_names) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    if ((rc = parse_kvs(c, f))) return rc;
    for (int64_t i = 0; i < f->n_tensors; i++)
        if ((rc = parse_tensor_info(c, f, i))) return rc;
    if (!(f->t_sorted = sorted_index(f, BY_NAME))) { msgf(c->err, c->errlen, "out of memory"); return GGUF_ENOMEM; }
    for (int64_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[f->t_sorted[i - 1]].name, f->tensors[f->t_sorted[i]].name) == 0)
            FAIL(c, "duplicate tensor name '%s'", shown(f->tensors[f->t_sorted[i]].name, nb));
    return check_extents(c, f);
}

static void free_contents(gguf_file *f)
{
    if (f->kv)
        for (int64_t i = 0; i < f->n_kv; i++) {
            kv_entry *e = &f->kv[i];
            free(e->key); free(e->str); free(e->strs); free(e->lens); free(e->strs_mem); free(e->nums);
        }
    if (f->tensor_names)
        for (int64_t i = 0; i < f->n_tensors; i++) free(f->tensor_names[i]);
    free(f->kv); free(f->kv_sorted); free(f->tensors); free(f->tensor_names); free(f->t_sorted);
}

static int open_image(const void *buf, size_t size, int mapped, gguf_file **out, char *err, size_t errlen)
{
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) { msgf(err, errlen, "out of memory"); return GGUF_ENOMEM; }
    f->base = buf;
    f->size = size;
    f->mapped = mapped;
    cursor c = {buf, size, 0, err, errlen};
    int rc = parse(&c, f);
    if (rc) {
        f->mapped = 0; /* the caller unmaps on failure */
        free_contents(f);
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int gguf_open_buffer(const void *buf, size_t size, gguf_file **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out) return GGUF_EINVAL;
    *out = NULL;
    if (!buf && size) { msgf(err, errlen, "NULL buffer"); return GGUF_EINVAL; }
    return open_image(buf, size, 0, out, err, errlen);
}

int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out || !path) { msgf(err, errlen, "NULL argument"); return GGUF_EINVAL; }
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { msgf(err, errlen, "%s: %s", path, strerror(errno)); return GGUF_EIO; }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        msgf(err, errlen, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return GGUF_EIO;
    }
    if (!S_ISREG(st.st_mode)) { msgf(err, errlen, "%s: not a regular file", path); close(fd); return GGUF_EIO; }
    size_t size = (size_t)st.st_size;
    if (size < 24) {
        msgf(err, errlen, "%s: file too small for a GGUF header (%zu bytes)", path, size);
        close(fd);
        return GGUF_EFORMAT;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) { msgf(err, errlen, "%s: mmap: %s", path, strerror(e)); errno = e; return GGUF_EIO; }
    int rc = open_image(map, size, 1, out, err, errlen);
    if (rc) munmap(map, size);
    return rc;
}

void gguf_close(gguf_file *f)
{
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    free_contents(f);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }

/* ---- metadata access ---- */

int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
const char *gguf_kv_key(const gguf_file *f, int64_t i) { return i >= 0 && i < f->n_kv ? f->kv[i].key : NULL; }
uint32_t gguf_kv_type(const gguf_file *f, int64_t i) { return i >= 0 && i < f->n_kv ? f->kv[i].type : GGUF_TYPE_COUNT; }

int64_t gguf_find_key(const gguf_file *f, const char *key)
{
    if (!f || !key || !f->kv_sorted) return -1;
    int64_t lo = 0, hi = f->n_kv;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->kv[f->kv_sorted[mid]].key, key);
        if (c == 0) return f->kv_sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

static int lookup(const gguf_file *f, const char *key, const kv_entry **e)
{
    int64_t i = gguf_find_key(f, key);
    if (i < 0) return GGUF_ENOTFOUND;
    *e = &f->kv[i];
    return 0;
}

static int is_int_type(uint32_t t)
{
    return t <= GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

/* Any integer scalar as (negative?, magnitude) to range-check conversions. */
static int get_int(const gguf_file *f, const char *key, int *neg, uint64_t *mag)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (!is_int_type(e->type)) return GGUF_ETYPE;
    if (e->num.is_signed && e->num.i < 0) {
        *neg = 1;
        *mag = (uint64_t)(-(e->num.i + 1)) + 1;
    } else {
        *neg = 0;
        *mag = e->num.is_signed ? (uint64_t)e->num.i : e->num.u;
    }
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    int neg;
    uint64_t mag;
    int rc = get_int(f, key, &neg, &mag);
    if (rc) return rc;
    if (neg || mag > UINT32_MAX) return GGUF_ETYPE;
    *out = (uint32_t)mag;
    return 0;
}

int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out)
{
    int neg;
    uint64_t mag;
    int rc = get_int(f, key, &neg, &mag);
    if (rc) return rc;
    if (neg ? mag > (uint64_t)INT32_MAX + 1 : mag > INT32_MAX) return GGUF_ETYPE;
    *out = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
    return 0;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    int neg;
    uint64_t mag;
    int rc = get_int(f, key, &neg, &mag);
    if (rc) return rc;
    if (neg) return GGUF_ETYPE;
    *out = mag;
    return 0;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (e->type != GGUF_TYPE_FLOAT32 && e->type != GGUF_TYPE_FLOAT64) return GGUF_ETYPE;
    *out = (float)e->num.f;
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (e->type != GGUF_TYPE_BOOL) return GGUF_ETYPE;
    *out = e->num.u != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **out, size_t *len)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (e->type != GGUF_TYPE_STRING) return GGUF_ETYPE;
    *out = e->str;
    if (len) *len = e->str_len;
    return 0;
}

int gguf_get_arr_str(const gguf_file *f, const char *key, const char *const **strs, const size_t **lens, uint64_t *n)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (e->type != GGUF_TYPE_ARRAY || e->arr_type != GGUF_TYPE_STRING) return GGUF_ETYPE;
    *strs = (const char *const *)e->strs;
    if (lens) *lens = e->lens;
    *n = e->n;
    return 0;
}

int gguf_get_arr_num(const gguf_file *f, const char *key, const double **vals, uint64_t *n)
{
    const kv_entry *e;
    int rc = lookup(f, key, &e);
    if (rc) return rc;
    if (e->type != GGUF_TYPE_ARRAY || e->arr_type == GGUF_TYPE_STRING) return GGUF_ETYPE;
    *vals = e->nums;
    *n = e->n;
    return 0;
}

/* ---- tensors ---- */

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor_info *gguf_tensor(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name)
{
    if (!f || !name || !f->t_sorted) return NULL;
    int64_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[f->t_sorted[mid]].name, name);
        if (c == 0) return &f->tensors[f->t_sorted[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* ---- writer ---- */

typedef struct {
    char *key;
    uint32_t type, arr_type;
    uint64_t n;
    uint8_t scalar[8];  /* encoded scalar */
    size_t scalar_len;
    char *str;          /* STRING (may hold NUL bytes: str_len counts) */
    size_t str_len;
    char **strs;        /* ARRAY of STRING, with lens */
    size_t *lens;
    void *arr;          /* ARRAY of numbers, encoded */
} wkv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
    uint64_t offset;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

gguf_writer *gguf_writer_create(void) { return calloc(1, sizeof(gguf_writer)); }

static void wkv_clear(wkv *e)
{
    free(e->str);
    if (e->strs)
        for (uint64_t i = 0; i < e->n; i++) free(e->strs[i]);
    free(e->strs);
    free(e->lens);
    free(e->arr);
    e->str = NULL; e->strs = NULL; e->lens = NULL; e->arr = NULL;
    e->n = 0;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        wkv_clear(&w->kv[i]);
        free(w->kv[i].key);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* The entry for key, cleared for a new value (existing keys keep their
 * position), or NULL. */
static wkv *writer_slot(gguf_writer *w, const char *key)
{
    if (!w || !key || !key[0] || strlen(key) > GGUF_MAX_KEY) return NULL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            wkv_clear(&w->kv[i]);
            return &w->kv[i];
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = realloc(w->kv, cap * sizeof *p);
        if (!p) return NULL;
        w->kv = p;
        w->cap_kv = cap;
    }
    wkv *e = &w->kv[w->n_kv];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key))) return NULL;
    w->n_kv++;
    return e;
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v)
{
    wkv *e = writer_slot(w, key);
    if (!e) return GGUF_EINVAL;
    e->type = type;
    e->scalar_len = scalar_size(type);
    memcpy(e->scalar, v, e->scalar_len);
    return 0;
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    /* the alignment must be usable by readers: a power of two */
    if (key && strcmp(key, "general.alignment") == 0 && (v == 0 || (v & (v - 1)) || v > GGUF_MAX_ALIGNMENT))
        return GGUF_EINVAL;
    return set_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_TYPE_INT32, &v); }
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_TYPE_UINT64, &v); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { return set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }

int gguf_writer_set_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

static char *memdup0(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static int set_str_n(gguf_writer *w, const char *key, const char *v, size_t len)
{
    if (!v) return GGUF_EINVAL;
    char *s = memdup0(v, len);
    if (!s) return GGUF_ENOMEM;
    wkv *e = writer_slot(w, key);
    if (!e) { free(s); return GGUF_EINVAL; }
    e->type = GGUF_TYPE_STRING;
    e->str = s;
    e->str_len = len;
    return 0;
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    return set_str_n(w, key, v, v ? strlen(v) : 0);
}

/* lens NULL: NUL-terminated strings. */
static int set_arr_str_n(gguf_writer *w, const char *key, const char *const *v, const size_t *lens, uint64_t n)
{
    if ((!v && n) || n > SIZE_MAX / sizeof(char *) - 1) return GGUF_EINVAL;
    for (uint64_t i = 0; i < n; i++)
        if (!v[i]) return GGUF_EINVAL;
    char **strs = calloc((size_t)n + 1, sizeof *strs);
    size_t *ls = calloc((size_t)n + 1, sizeof *ls);
    int rc = strs && ls ? 0 : GGUF_ENOMEM;
    for (uint64_t i = 0; i < n && !rc; i++) {
        ls[i] = lens ? lens[i] : strlen(v[i]);
        if (!(strs[i] = memdup0(v[i], ls[i]))) rc = GGUF_ENOMEM;
    }
    wkv *e = rc ? NULL : writer_slot(w, key);
    if (!e) {
        for (uint64_t i = 0; strs && i < n; i++) free(strs[i]);
        free(strs);
        free(ls);
        return rc ? rc : GGUF_EINVAL;
    }
    e->type = GGUF_TYPE_ARRAY;
    e->arr_type = GGUF_TYPE_STRING;
    e->strs = strs;
    e->lens = ls;
    e->n = n;
    return 0;
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    return set_arr_str_n(w, key, v, NULL, n);
}

static int set_arr(gguf_writer *w, const char *key, uint32_t et, const void *v, uint64_t n)
{
    size_t es = scalar_size(et);
    if ((!v && n) || n > SIZE_MAX / es) return GGUF_EINVAL;
    void *copy = malloc((size_t)n * es + 1);
    if (!copy) return GGUF_ENOMEM;
    if (n) memcpy(copy, v, (size_t)n * es);
    wkv *e = writer_slot(w, key);
    if (!e) { free(copy); return GGUF_EINVAL; }
    e->type = GGUF_TYPE_ARRAY;
    e->arr_type = et;
    e->arr = copy;
    e->n = n;
    return 0;
}

int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    return set_arr(w, key, GGUF_TYPE_FLOAT32, v, n);
}

int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    return set_arr(w, key, GGUF_TYPE_INT32, v, n);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i)
{
    if (!w || !f || i < 0 || i >= f->n_kv) return GGUF_EINVAL;
    const kv_entry *e = &f->kv[i];
    if (e->type == GGUF_TYPE_STRING) return set_str_n(w, e->key, e->str, e->str_len);
    if (e->type != GGUF_TYPE_ARRAY) {
        if (strcmp(e->key, "general.alignment") == 0) return gguf_writer_set_u32(w, e->key, (uint32_t)e->num.u);
        return set_scalar(w, e->key, e->type, e->raw);
    }
    if (e->arr_type == GGUF_TYPE_STRING)
        return set_arr_str_n(w, e->key, (const char *const *)e->strs, e->lens, e->n);
    return set_arr(w, e->key, e->arr_type, e->raw, e->n);
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                           const void *data, size_t nbytes)
{
    if (!w || !name || !name[0] || strlen(name) > GGUF_MAX_NAME || !ne || (!data && nbytes)) return GGUF_EINVAL;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !quant_get_traits(type)) return GGUF_EINVAL;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1) return GGUF_EINVAL;
        if (d > 0) {
            if (rows > (uint64_t)INT64_MAX / (uint64_t)ne[d]) return GGUF_EINVAL;
            rows *= (uint64_t)ne[d];
        }
    }
    size_t row = quant_row_size(type, (uint64_t)ne[0]);
    if (row == 0 || rows > SIZE_MAX / row || row * rows != nbytes) return GGUF_EINVAL;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return GGUF_EINVAL;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) return GGUF_ENOMEM;
        w->t = p;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return GGUF_ENOMEM;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return 0;
}

/* Output either to a memory block (sized exactly beforehand) or a FILE. */
typedef struct {
    FILE *fp;
    uint8_t *buf;
    size_t len, cap;
    int failed;
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->failed || n == 0) return;
    if (s->fp) {
        if (fwrite(p, 1, n, s->fp) != n) s->failed = 1;
        return;
    }
    if (n > s->cap - s->len) { s->failed = 1; return; }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put_u32(sink *s, uint32_t v) { put(s, &v, 4); }
static void put_u64(sink *s, uint64_t v) { put(s, &v, 8); }
static void put_str(sink *s, const char *str, size_t n)
{
    put_u64(s, n);
    put(s, str, n);
}

static void put_zeros(sink *s, size_t n)
{
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        put(s, zeros, k);
        n -= k;
    }
}

static uint32_t writer_alignment(gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0 && w->kv[i].type == GGUF_TYPE_UINT32) {
            uint32_t a;
            memcpy(&a, w->kv[i].scalar, 4);
            return a;
        }
    return GGUF_DEFAULT_ALIGNMENT;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Make sure general.alignment is written (readers then need no default),
 * assign aligned offsets; returns the total size of header + metadata
 * (unpadded) in *meta and of the data section in *data. */
static int writer_layout(gguf_writer *w, uint64_t *meta, uint64_t *data)
{
    int has = 0;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            has = 1;
            if (w->kv[i].type != GGUF_TYPE_UINT32) return GGUF_EINVAL;
        }
    if (!has && gguf_writer_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT)) return GGUF_ENOMEM;
    uint64_t a = writer_alignment(w);
    uint64_t m = 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *e = &w->kv[i];
        m += 8 + strlen(e->key) + 4;
        if (e->type == GGUF_TYPE_STRING) m += 8 + e->str_len;
        else if (e->type != GGUF_TYPE_ARRAY) m += e->scalar_len;
        else if (e->arr_type == GGUF_TYPE_STRING) {
            m += 12;
            for (uint64_t j = 0; j < e->n; j++) m += 8 + e->lens[j];
        } else m += 12 + e->n * scalar_size(e->arr_type);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        m += 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        off = align_up(off, a);
        t->offset = off;
        off += t->nbytes;
    }
    *meta = m;
    *data = off;
    return 0;
}

static void write_all(gguf_writer *w, sink *s, uint64_t meta)
{
    uint64_t a = writer_alignment(w);
    put_u32(s, GGUF_MAGIC);
    put_u32(s, GGUF_VERSION);
    put_u64(s, w->n_t);
    put_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *e = &w->kv[i];
        put_str(s, e->key, strlen(e->key));
        put_u32(s, e->type);
        if (e->type == GGUF_TYPE_STRING) put_str(s, e->str, e->str_len);
        else if (e->type != GGUF_TYPE_ARRAY) put(s, e->scalar, e->scalar_len);
        else {
            put_u32(s, e->arr_type);
            put_u64(s, e->n);
            if (e->arr_type == GGUF_TYPE_STRING)
                for (uint64_t j = 0; j < e->n; j++) put_str(s, e->strs[j], e->lens[j]);
            else put(s, e->arr, (size_t)e->n * scalar_size(e->arr_type));
        }
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(s, t->name, strlen(t->name));
        put_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(s, (uint64_t)t->ne[d]);
        put_u32(s, t->type);
        put_u64(s, t->offset);
    }
    put_zeros(s, (size_t)(align_up(meta, a) - meta));
    uint64_t pos = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_zeros(s, (size_t)(t->offset - pos));
        put(s, t->data, t->nbytes);
        pos = t->offset + t->nbytes;
    }
}

int gguf_writer_write_buffer(gguf_writer *w, void **buf, size_t *size)
{
    if (!w || !buf || !size) return GGUF_EINVAL;
    uint64_t meta, data;
    int rc = writer_layout(w, &meta, &data);
    if (rc) return rc;
    uint64_t total = align_up(meta, writer_alignment(w)) + data;
    if (total > SIZE_MAX) return GGUF_ENOMEM;
    sink s = {NULL, malloc((size_t)total), 0, (size_t)total, 0};
    if (!s.buf) return GGUF_ENOMEM;
    write_all(w, &s, meta);
    if (s.failed || s.len != total) { free(s.buf); return GGUF_EINVAL; }
    *buf = s.buf;
    *size = s.len;
    return 0;
}

static void werr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    int n = snprintf(err, errlen, "gguf_writer_write: ");
    if (n < 0 || (size_t)n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Make the rename itself durable. Best effort: the file is complete and in
 * place already, so a failure here is not reported. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!w || !path) { werr(err, errlen, "NULL argument"); return GGUF_EINVAL; }
    uint64_t meta, data;
    int rc = writer_layout(w, &meta, &data);
    if (rc) { werr(err, errlen, "general.alignment must be a u32 power of two"); return rc; }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) { werr(err, errlen, "out of memory"); return GGUF_ENOMEM; }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        werr(err, errlen, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return GGUF_EIO;
    }
    sink s = {fp, NULL, 0, 0, 0};
    errno = 0;
    write_all(w, &s, meta);
    int e = 0;
    if (s.failed || fflush(fp) != 0 || fsync(fileno(fp)) != 0) e = errno ? errno : EIO;
    errno = 0;
    if (fclose(fp) != 0 && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        werr(err, errlen, "%s: %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        errno = e;
        return GGUF_EIO;
    }
    free(tmp);
    sync_parent_dir(path);
    return 0;
}
