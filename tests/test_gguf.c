/*
 * test_gguf.c - GGUF reader and writer (weights/gguf.h).
 *
 * Images are built byte by byte with a small encoder written here from the
 * GGUF spec (independent of gguf.c), so the reader is checked against the
 * format itself, the writer's bytes are compared with hand-built ones, and
 * corrupted images can be made precisely. Every image is opened from an
 * exactly sized heap copy so that ASan catches any read past its end.
 */
#include "gguf.h"
#include "quant.h"
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- byte builder ---- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u16(bb *b, uint16_t v) { bb_put(b, &v, 2); }
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_f32(bb *b, float v) { bb_put(b, &v, 4); }
static void bb_f64(bb *b, double v) { bb_put(b, &v, 8); }
static void bb_strn(bb *b, const char *s, size_t n) { bb_u64(b, n); bb_put(b, s, n); }
static void bb_str(bb *b, const char *s) { bb_strn(b, s, strlen(s)); }
static void bb_free(bb *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }
static void bb_pad(bb *b, size_t a) { while (b->n % a) bb_u8(b, 0); }

static void hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_u32(b, GGUF_MAGIC);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void kv_u32(bb *b, const char *k, uint32_t v) { bb_str(b, k); bb_u32(b, GGUF_TYPE_UINT32); bb_u32(b, v); }
static void kv_str(bb *b, const char *k, const char *v) { bb_str(b, k); bb_u32(b, GGUF_TYPE_STRING); bb_str(b, v); }

static void tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, off);
}

static void bb_data(bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) bb_u8(b, (uint8_t)(i * 7 + 1));
}

/* Open from an exact-size heap copy of the first n bytes. */
static int open_copy(const uint8_t *img, size_t n, gguf_file **f, char *err, size_t errlen, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    if (n) memcpy(*copy, img, n);
    return gguf_open_buffer(*copy, n, f, err, errlen);
}

/* Must be rejected with a "gguf_open: ..." message containing `needle`. */
static void expect_reject(bb *b, const char *what, const char *needle)
{
    gguf_file *f = (gguf_file *)1;
    uint8_t *copy;
    char err[512] = "";
    int rc = open_copy(b->p, b->n, &f, err, sizeof err, &copy);
    CHECK_MSG(rc < 0 && f == NULL, "%s: accepted (rc %d)", what, rc);
    CHECK_MSG(strncmp(err, "gguf_open: ", 11) == 0 && strlen(err) > 12, "%s: bad message '%s'", what, err);
    if (needle) CHECK_MSG(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", what, err, needle);
    if (rc == 0) gguf_close(f);
    free(copy);
    bb_free(b);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Touch everything a loaded file exposes (ASan checks the reads). */
static unsigned walk(const gguf_file *f)
{
    unsigned acc = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *k = gguf_kv_key(f, i);
        acc += (unsigned)strlen(k);
        if (gguf_find_key(f, k) != i) acc += 1000000;
        const char *s;
        size_t len;
        const char *const *strs;
        const size_t *lens;
        const double *vals;
        uint64_t n;
        if (gguf_get_str(f, k, &s, &len) == 0) for (size_t j = 0; j <= len; j++) acc += (unsigned char)s[j];
        if (gguf_get_arr_str(f, k, &strs, &lens, &n) == 0)
            for (uint64_t j = 0; j < n; j++) acc += (unsigned)strlen(strs[j]) + (unsigned char)strs[j][lens[j]];
        if (gguf_get_arr_num(f, k, &vals, &n) == 0)
            for (uint64_t j = 0; j < n; j++) acc += vals[j] > 0;
        uint32_t u;
        float fl;
        if (gguf_get_u32(f, k, &u) == 0) acc += u;
        if (gguf_get_f32(f, k, &fl) == 0) acc += fl > 0;
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        const uint8_t *d = t->data;
        for (size_t j = 0; j < t->nbytes; j++) acc += d[j];
        if (gguf_find_tensor(f, t->name) != t) acc += 1000000;
    }
    return acc;
}

/* ---- round trips ---- */

/* A hand-built image with every value type, read back through every getter,
 * then copied key by key into the writer: the writer's metadata bytes must
 * equal the hand-built ones. */
TEST(test_all_value_types)
{
    bb b = {0}, kvs = {0};
    const int n_kv = 22;
    bb_str(&kvs, "u8"); bb_u32(&kvs, GGUF_TYPE_UINT8); bb_u8(&kvs, 200);
    bb_str(&kvs, "i8"); bb_u32(&kvs, GGUF_TYPE_INT8); bb_u8(&kvs, (uint8_t)-100);
    bb_str(&kvs, "u16"); bb_u32(&kvs, GGUF_TYPE_UINT16); bb_u16(&kvs, 60000);
    bb_str(&kvs, "i16"); bb_u32(&kvs, GGUF_TYPE_INT16); bb_u16(&kvs, (uint16_t)-30000);
    bb_str(&kvs, "u32"); bb_u32(&kvs, GGUF_TYPE_UINT32); bb_u32(&kvs, 4000000000u);
    bb_str(&kvs, "i32"); bb_u32(&kvs, GGUF_TYPE_INT32); bb_u32(&kvs, (uint32_t)-2000000000);
    bb_str(&kvs, "f32"); bb_u32(&kvs, GGUF_TYPE_FLOAT32); bb_f32(&kvs, 1.5f);
    bb_str(&kvs, "bool"); bb_u32(&kvs, GGUF_TYPE_BOOL); bb_u8(&kvs, 1);
    bb_str(&kvs, "str"); bb_u32(&kvs, GGUF_TYPE_STRING); bb_str(&kvs, "hello");
    bb_str(&kvs, "empty"); bb_u32(&kvs, GGUF_TYPE_STRING); bb_str(&kvs, "");
    bb_str(&kvs, "u64"); bb_u32(&kvs, GGUF_TYPE_UINT64); bb_u64(&kvs, (1ull << 63) + 5);
    bb_str(&kvs, "i64"); bb_u32(&kvs, GGUF_TYPE_INT64); bb_u64(&kvs, (uint64_t)-(1ll << 62));
    bb_str(&kvs, "f64"); bb_u32(&kvs, GGUF_TYPE_FLOAT64); bb_f64(&kvs, 1e300);
    bb_str(&kvs, "a_u8"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_UINT8); bb_u64(&kvs, 3);
    bb_u8(&kvs, 1); bb_u8(&kvs, 2); bb_u8(&kvs, 255);
    bb_str(&kvs, "a_i16"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_INT16); bb_u64(&kvs, 2);
    bb_u16(&kvs, (uint16_t)-5); bb_u16(&kvs, 7);
    bb_str(&kvs, "a_f64"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_FLOAT64); bb_u64(&kvs, 1);
    bb_f64(&kvs, 0.25);
    bb_str(&kvs, "a_bool"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_BOOL); bb_u64(&kvs, 2);
    bb_u8(&kvs, 1); bb_u8(&kvs, 0);
    bb_str(&kvs, "a_str"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_STRING); bb_u64(&kvs, 3);
    bb_str(&kvs, ""); bb_str(&kvs, "x"); bb_strn(&kvs, "a\0b", 3);
    bb_str(&kvs, "a_empty"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_UINT32); bb_u64(&kvs, 0);
    bb_str(&kvs, "a_str_empty"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_STRING); bb_u64(&kvs, 0);
    bb_str(&kvs, "a_i64"); bb_u32(&kvs, GGUF_TYPE_ARRAY); bb_u32(&kvs, GGUF_TYPE_INT64); bb_u64(&kvs, 2);
    bb_u64(&kvs, (uint64_t)-3); bb_u64(&kvs, 1ull << 40);
    kv_u32(&kvs, "general.alignment", 32);
    hdr(&b, 3, 0, (uint64_t)n_kv);
    bb_put(&b, kvs.p, kvs.n);

    gguf_file *f;
    uint8_t *copy;
    char err[256];
    int rc = open_copy(b.p, b.n, &f, err, sizeof err, &copy);
    CHECK_MSG(rc == 0, "open: %s", err);
    if (rc) { bb_free(&b); bb_free(&kvs); free(copy); return; }
    CHECK(gguf_version(f) == 3 && gguf_n_kv(f) == n_kv && gguf_n_tensors(f) == 0 && gguf_alignment(f) == 32);
    uint32_t u;
    int32_t i;
    uint64_t u64;
    float fl;
    int bo;
    const char *s;
    size_t len;
    CHECK(gguf_get_u32(f, "u8", &u) == 0 && u == 200);
    CHECK(gguf_get_i32(f, "i8", &i) == 0 && i == -100);
    CHECK(gguf_get_u32(f, "i8", &u) == GGUF_ETYPE);            /* negative */
    CHECK(gguf_get_u32(f, "u16", &u) == 0 && u == 60000);
    CHECK(gguf_get_i32(f, "i16", &i) == 0 && i == -30000);
    CHECK(gguf_get_u32(f, "u32", &u) == 0 && u == 4000000000u);
    CHECK(gguf_get_i32(f, "u32", &i) == GGUF_ETYPE);            /* does not fit */
    CHECK(gguf_get_i32(f, "i32", &i) == 0 && i == -2000000000);
    CHECK(gguf_get_f32(f, "f32", &fl) == 0 && fl == 1.5f);
    CHECK(gguf_get_u32(f, "f32", &u) == GGUF_ETYPE);
    CHECK(gguf_get_bool(f, "bool", &bo) == 0 && bo == 1);
    CHECK(gguf_get_str(f, "str", &s, &len) == 0 && strcmp(s, "hello") == 0 && len == 5);
    CHECK(gguf_get_str(f, "empty", &s, &len) == 0 && s[0] == 0 && len == 0);
    CHECK(gguf_get_str(f, "u8", &s, &len) == GGUF_ETYPE);
    CHECK(gguf_get_u64(f, "u64", &u64) == 0 && u64 == (1ull << 63) + 5);
    CHECK(gguf_get_u32(f, "u64", &u) == GGUF_ETYPE);
    CHECK(gguf_get_u64(f, "i64", &u64) == GGUF_ETYPE);
    CHECK(gguf_get_f32(f, "f64", &fl) == 0 && isinf(fl)); /* 1e300 does not fit a float */
    CHECK(gguf_get_u32(f, "missing", &u) == GGUF_ENOTFOUND);
    CHECK(gguf_find_key(f, "missing") == -1 && gguf_find_key(f, "u16") == 2);
    const double *v;
    uint64_t n;
    CHECK(gguf_get_arr_num(f, "a_u8", &v, &n) == 0 && n == 3 && v[0] == 1 && v[1] == 2 && v[2] == 255);
    CHECK(gguf_get_arr_num(f, "a_i16", &v, &n) == 0 && n == 2 && v[0] == -5 && v[1] == 7);
    CHECK(gguf_get_arr_num(f, "a_f64", &v, &n) == 0 && n == 1 && v[0] == 0.25);
    CHECK(gguf_get_arr_num(f, "a_bool", &v, &n) == 0 && n == 2 && v[0] == 1 && v[1] == 0);
    CHECK(gguf_get_arr_num(f, "a_empty", &v, &n) == 0 && n == 0);
    CHECK(gguf_get_arr_num(f, "a_i64", &v, &n) == 0 && n == 2 && v[0] == -3 && v[1] == 0x1p40);
    CHECK(gguf_get_arr_num(f, "a_str", &v, &n) == GGUF_ETYPE);
    const char *const *strs;
    const size_t *lens;
    CHECK(gguf_get_arr_str(f, "a_str", &strs, &lens, &n) == 0 && n == 3);
    if (n == 3) {
        CHECK(lens[0] == 0 && strs[0][0] == 0);
        CHECK(lens[1] == 1 && strcmp(strs[1], "x") == 0);
        CHECK(lens[2] == 3 && memcmp(strs[2], "a\0b", 4) == 0);
    }
    CHECK(gguf_get_arr_str(f, "a_str_empty", &strs, &lens, &n) == 0 && n == 0);
    CHECK(gguf_get_arr_str(f, "a_u8", &strs, &lens, &n) == GGUF_ETYPE);
    CHECK(gguf_kv_type(f, 3) == GGUF_TYPE_INT16 && strcmp(gguf_kv_key(f, 3), "i16") == 0);
    CHECK(gguf_kv_key(f, n_kv) == NULL && gguf_kv_key(f, -1) == NULL);

    /* copy every key: the metadata bytes come out identical */
    gguf_writer *w = gguf_writer_create();
    for (int64_t k = 0; k < gguf_n_kv(f); k++) CHECK(gguf_writer_copy_kv(w, f, k) == 0);
    void *out;
    size_t size;
    CHECK(gguf_writer_write_buffer(w, &out, &size) == 0);
    CHECK(size == 24 + kvs.n + (32 - (24 + kvs.n) % 32) % 32);
    CHECK(size >= b.n && memcmp(out, b.p, b.n) == 0);
    free(out);
    gguf_writer_free(w);
    gguf_close(f);
    free(copy);
    bb_free(&b);
    bb_free(&kvs);
}

/* The writer's bytes for a small file, against the format by hand. */
TEST(test_writer_exact_bytes)
{
    gguf_writer *w = gguf_writer_create();
    float t[2] = {1.0f, -2.0f};
    int64_t ne[1] = {2};
    CHECK(gguf_writer_set_u32(w, "a", 1) == 0);
    CHECK(gguf_writer_add_tensor(w, "t", QUANT_F32, 1, ne, t, sizeof t) == 0);
    void *out;
    size_t size;
    CHECK(gguf_writer_write_buffer(w, &out, &size) == 0);
    bb b = {0};
    hdr(&b, 3, 1, 2);
    kv_u32(&b, "a", 1);
    kv_u32(&b, "general.alignment", 32); /* added last by the writer */
    tinfo(&b, "t", 1, (const uint64_t[]){2}, QUANT_F32, 0);
    bb_pad(&b, 32);
    bb_put(&b, t, sizeof t);
    CHECK(size == b.n && memcmp(out, b.p, b.n) == 0);
    free(out);
    bb_free(&b);
    gguf_writer_free(w);
}

typedef struct {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
} tspec;

static const tspec specs[] = {
    {"token_embd.weight", QUANT_F32, 2, {5, 3, 1, 1}},
    {"w.q8", QUANT_Q8_0, 2, {64, 3, 1, 1}},
    {"w.q4", QUANT_Q4_0, 3, {32, 2, 2, 1}},
    {"w.f16", QUANT_F16, 1, {7, 1, 1, 1}},
    {"w.4d", QUANT_F32, 4, {1, 2, 1, 3}},
    {"w.odd", QUANT_F16, 2, {3, 3, 1, 1}},
};
#define N_SPECS (int)(sizeof specs / sizeof specs[0])

static size_t spec_bytes(const tspec *s)
{
    return quant_row_size(s->type, (uint64_t)s->ne[0]) * (size_t)(s->ne[1] * s->ne[2] * s->ne[3]);
}

/* A writer with keys of every settable type and the spec tensors. */
static gguf_writer *make_writer(uint8_t **datas)
{
    gguf_writer *w = gguf_writer_create();
    const char *strs[] = {"", "alpha", "\xc4\xa0space"};
    float fa[3] = {0.5f, -1.25f, 3e-5f};
    int32_t ia[2] = {-7, 1 << 30};
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "test");
    rc |= gguf_writer_set_u32(w, "k.u32", 123456);
    rc |= gguf_writer_set_i32(w, "k.i32", -5);
    rc |= gguf_writer_set_u64(w, "k.u64", 1ull << 40);
    rc |= gguf_writer_set_f32(w, "k.f32", 0.1f);
    rc |= gguf_writer_set_bool(w, "k.bool", 1);
    rc |= gguf_writer_set_str(w, "k.empty", "");
    rc |= gguf_writer_set_arr_str(w, "k.strs", strs, 3);
    rc |= gguf_writer_set_arr_str(w, "k.nostrs", NULL, 0);
    rc |= gguf_writer_set_arr_f32(w, "k.f32s", fa, 3);
    rc |= gguf_writer_set_arr_i32(w, "k.i32s", ia, 2);
    rc |= gguf_writer_set_u32(w, "k.u32", 42); /* replaces, keeps position */
    CHECK(rc == 0);
    for (int i = 0; i < N_SPECS; i++) {
        size_t nb = spec_bytes(&specs[i]);
        datas[i] = malloc(nb);
        for (size_t j = 0; j < nb; j++) datas[i][j] = (uint8_t)rnd();
        if (specs[i].type == QUANT_F32) /* keep f32 data finite for readability */
            for (size_t j = 0; j < nb / 4; j++) ((float *)datas[i])[j] = (float)j - 1.5f;
        CHECK(gguf_writer_add_tensor(w, specs[i].name, specs[i].type, specs[i].n_dims, specs[i].ne, datas[i], nb) == 0);
    }
    return w;
}

static void check_written(const gguf_file *f, const uint8_t *base, uint8_t *const *datas)
{
    static const char *const order[] = {"general.architecture", "k.u32", "k.i32", "k.u64", "k.f32", "k.bool",
                                        "k.empty", "k.strs", "k.nostrs", "k.f32s", "k.i32s", "general.alignment"};
    CHECK(gguf_n_kv(f) == 12);
    for (int i = 0; i < 12 && i < gguf_n_kv(f); i++) CHECK_MSG(strcmp(gguf_kv_key(f, i), order[i]) == 0, "key %d", i);
    uint32_t u;
    int32_t i32;
    uint64_t u64;
    float fl;
    int bo;
    const char *s;
    size_t len;
    CHECK(gguf_get_u32(f, "k.u32", &u) == 0 && u == 42);
    CHECK(gguf_get_i32(f, "k.i32", &i32) == 0 && i32 == -5);
    CHECK(gguf_get_u64(f, "k.u64", &u64) == 0 && u64 == 1ull << 40);
    CHECK(gguf_get_f32(f, "k.f32", &fl) == 0 && fl == 0.1f);
    CHECK(gguf_get_bool(f, "k.bool", &bo) == 0 && bo == 1);
    CHECK(gguf_get_str(f, "k.empty", &s, &len) == 0 && len == 0 && s[0] == 0);
    CHECK(gguf_get_u32(f, "general.alignment", &u) == 0 && u == 32);
    const char *const *strs;
    const size_t *lens;
    uint64_t n;
    CHECK(gguf_get_arr_str(f, "k.strs", &strs, &lens, &n) == 0 && n == 3);
    if (n == 3) CHECK(strcmp(strs[0], "") == 0 && strcmp(strs[1], "alpha") == 0 && strcmp(strs[2], "\xc4\xa0space") == 0);
    CHECK(gguf_get_arr_str(f, "k.nostrs", &strs, &lens, &n) == 0 && n == 0);
    const double *v;
    CHECK(gguf_get_arr_num(f, "k.f32s", &v, &n) == 0 && n == 3);
    if (n == 3) CHECK(v[0] == 0.5 && v[1] == -1.25 && v[2] == (double)3e-5f);
    CHECK(gguf_get_arr_num(f, "k.i32s", &v, &n) == 0 && n == 2);
    if (n == 2) CHECK(v[0] == -7 && v[1] == (double)(1 << 30));
    CHECK(gguf_n_tensors(f) == N_SPECS);
    for (int i = 0; i < N_SPECS && i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        CHECK(strcmp(t->name, specs[i].name) == 0 && t->type == specs[i].type && t->n_dims == specs[i].n_dims);
        CHECK(memcmp(t->ne, specs[i].ne, sizeof t->ne) == 0);
        CHECK(t->nbytes == spec_bytes(&specs[i]));
        CHECK(memcmp(t->data, datas[i], t->nbytes) == 0);
        uintptr_t at = (uintptr_t)t->data - (uintptr_t)base; /* base NULL: absolute */
        CHECK(at % 32 == 0 && t->offset % 32 == 0);
        CHECK(gguf_find_tensor(f, specs[i].name) == t);
    }
    CHECK(gguf_find_tensor(f, "nope") == NULL && gguf_tensor(f, N_SPECS) == NULL && gguf_tensor(f, -1) == NULL);
}

TEST(test_writer_reader_roundtrip)
{
    uint8_t *datas[N_SPECS];
    gguf_writer *w = make_writer(datas);
    void *buf;
    size_t size;
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_file *f;
    uint8_t *copy;
    char err[256];
    int rc = open_copy(buf, size, &f, err, sizeof err, &copy);
    CHECK_MSG(rc == 0, "open: %s", err);
    if (rc == 0) {
        check_written(f, copy, datas);
        CHECK(gguf_file_size(f) == size);
        gguf_close(f);
    }
    free(copy);

    /* the same through a file; no .tmp left behind; identical bytes */
    char path[64], tmp[80];
    snprintf(path, sizeof path, "/tmp/test_gguf_%d.gguf", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rc = gguf_writer_write(w, path, err, sizeof err);
    CHECK_MSG(rc == 0, "write: %s", err);
    struct stat st;
    CHECK(stat(tmp, &st) != 0 && errno == ENOENT);
    rc = gguf_open(path, &f, err, sizeof err);
    CHECK_MSG(rc == 0, "open file: %s", err);
    if (rc == 0) {
        CHECK(gguf_file_size(f) == size);
        check_written(f, NULL, datas); /* the mapping is page aligned */
        FILE *fp = fopen(path, "rb");
        uint8_t *fb = malloc(size + 1);
        CHECK(fp && fread(fb, 1, size + 1, fp) == size && memcmp(fb, buf, size) == 0);
        if (fp) fclose(fp);
        free(fb);
        gguf_close(f);
    }
    unlink(path);
    /* unwritable destination: an error, not a crash */
    rc = gguf_writer_write(w, "/nonexistent-dir/x.gguf", err, sizeof err);
    CHECK(rc == GGUF_EIO && strlen(err) > 0);
    free(buf);
    gguf_writer_free(w);
    for (int i = 0; i < N_SPECS; i++) free(datas[i]);
}

TEST(test_writer_rejects_bad_input)
{
    gguf_writer *w = gguf_writer_create();
    float d[64] = {0};
    int64_t ne[2] = {32, 2};
    CHECK(gguf_writer_add_tensor(w, "t", QUANT_F32, 2, ne, d, 256) == 0);
    CHECK(gguf_writer_add_tensor(w, "t", QUANT_F32, 2, ne, d, 256) == GGUF_EINVAL);       /* duplicate */
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_F32, 2, ne, d, 255) == GGUF_EINVAL);       /* nbytes */
    CHECK(gguf_writer_add_tensor(w, "u", 99, 2, ne, d, 256) == GGUF_EINVAL);              /* type */
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_F32, 0, ne, d, 256) == GGUF_EINVAL);       /* n_dims */
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_F32, 5, ne, d, 256) == GGUF_EINVAL);
    CHECK(gguf_writer_add_tensor(w, "", QUANT_F32, 2, ne, d, 256) == GGUF_EINVAL);        /* name */
    int64_t bad[2] = {31, 2}, zero[2] = {32, 0};
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_Q8_0, 2, bad, d, 68) == GGUF_EINVAL);      /* block */
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_F32, 2, zero, d, 0) == GGUF_EINVAL);       /* ne 0 */
    CHECK(gguf_writer_set_u32(w, "general.alignment", 24) == GGUF_EINVAL);
    CHECK(gguf_writer_set_u32(w, "general.alignment", 0) == GGUF_EINVAL);
    CHECK(gguf_writer_set_u32(w, "", 1) == GGUF_EINVAL);
    CHECK(gguf_writer_set_str(w, "k", NULL) == GGUF_EINVAL);
    /* a custom power-of-two alignment is honoured */
    CHECK(gguf_writer_set_u32(w, "general.alignment", 64) == 0);
    CHECK(gguf_writer_add_tensor(w, "u", QUANT_F32, 1, (const int64_t[]){3}, d, 12) == 0);
    void *buf;
    size_t size;
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    gguf_file *f;
    char err[256];
    CHECK(gguf_open_buffer(buf, size, &f, err, sizeof err) == 0);
    CHECK(gguf_alignment(f) == 64 && gguf_find_tensor(f, "u")->offset == 256);
    CHECK(((const uint8_t *)gguf_find_tensor(f, "t")->data - (const uint8_t *)buf) % 64 == 0);
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

TEST(test_open_file_errors)
{
    gguf_file *f;
    char err[256];
    CHECK(gguf_open("/nonexistent/file.gguf", &f, err, sizeof err) == GGUF_EIO && f == NULL && strlen(err) > 11);
    CHECK(gguf_open("/tmp", &f, err, sizeof err) == GGUF_EIO && strstr(err, "regular") != NULL);
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_gguf_empty_%d", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (fp) fclose(fp);
    CHECK(gguf_open(path, &f, err, sizeof err) == GGUF_EFORMAT && strlen(err) > 11);
    unlink(path);
    CHECK(gguf_open_buffer(NULL, 0, &f, NULL, 0) == GGUF_EFORMAT); /* err may be NULL */
}

/* ---- corrupted images ---- */

/* A valid small file: two keys, two tensors. */
static void valid_small(bb *b)
{
    hdr(b, 3, 2, 2);
    kv_str(b, "general.name", "tiny");
    kv_u32(b, "general.alignment", 32);
    tinfo(b, "a", 2, (const uint64_t[]){4, 2}, QUANT_F32, 0);
    tinfo(b, "b", 1, (const uint64_t[]){32}, QUANT_Q8_0, 32);
    bb_pad(b, 32);
    bb_data(b, 32 + 34);
}

TEST(test_valid_small_and_every_truncation)
{
    bb b = {0};
    valid_small(&b);
    gguf_file *f;
    uint8_t *copy;
    char err[256];
    int rc = open_copy(b.p, b.n, &f, err, sizeof err, &copy);
    CHECK_MSG(rc == 0, "valid file rejected: %s", err);
    if (rc == 0) {
        CHECK(gguf_n_tensors(f) == 2 && gguf_find_tensor(f, "b")->nbytes == 34);
        gguf_close(f);
    }
    free(copy);
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        err[0] = 0;
        rc = open_copy(b.p, n, &f, err, sizeof err, &copy);
        if (rc == 0) { gguf_close(f); bad++; printf("  prefix %zu accepted\n", n); }
        else if (strncmp(err, "gguf_open: ", 11) != 0) { bad++; printf("  prefix %zu: message '%s'\n", n, err); }
        free(copy);
    }
    CHECK(bad == 0);
    bb_free(&b);
}

TEST(test_corrupt_header)
{
    bb b = {0};
    valid_small(&b); b.p[0] = 'X'; expect_reject(&b, "bad magic", "magic");
    valid_small(&b); b.p[4] = 2; expect_reject(&b, "version 2", "version 2");
    valid_small(&b); b.p[4] = 1; expect_reject(&b, "version 1", "version 1");
    valid_small(&b); b.p[4] = 4; expect_reject(&b, "version 4", "version 4");
    hdr(&b, 3, 0, 1ull << 62); expect_reject(&b, "n_kv huge", "kv count");
    hdr(&b, 3, UINT64_MAX, 0); expect_reject(&b, "n_tensors huge", "tensor count");
    hdr(&b, 3, 1ull << 60, 1ull << 60); bb_data(&b, 100); expect_reject(&b, "both counts huge", "count");
    hdr(&b, 3, 0, 1); bb_data(&b, 10); expect_reject(&b, "n_kv > bytes", "kv count");
    hdr(&b, 3, 3, 0); bb_data(&b, 90); expect_reject(&b, "n_tensors > bytes", "tensor count");
}

TEST(test_corrupt_kv)
{
    bb b = {0};
    hdr(&b, 3, 0, 1); bb_str(&b, "s"); bb_u32(&b, GGUF_TYPE_STRING); bb_u64(&b, 1ull << 63); bb_data(&b, 20);
    expect_reject(&b, "string length huge", "length");
    hdr(&b, 3, 0, 1); bb_str(&b, "s"); bb_u32(&b, GGUF_TYPE_STRING); bb_u64(&b, 100); bb_data(&b, 20);
    expect_reject(&b, "string beyond end", "string value");
    hdr(&b, 3, 0, 1); bb_u64(&b, UINT64_MAX); bb_data(&b, 20); expect_reject(&b, "key length overflow", "key length");
    hdr(&b, 3, 0, 1); bb_u64(&b, UINT64_MAX - 7); bb_data(&b, 20); expect_reject(&b, "key length wrap", "key length");
    hdr(&b, 3, 0, 1); bb_u64(&b, 70000); bb_data(&b, 70010); expect_reject(&b, "key too long", "limit");
    hdr(&b, 3, 0, 1); bb_str(&b, ""); bb_u32(&b, GGUF_TYPE_UINT32); bb_u32(&b, 1); bb_data(&b, 4);
    expect_reject(&b, "empty key", "empty key");
    hdr(&b, 3, 0, 1); bb_strn(&b, "a\0b", 3); bb_u32(&b, GGUF_TYPE_UINT32); bb_u32(&b, 1);
    expect_reject(&b, "NUL in key", "NUL");
    hdr(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, 13); bb_u32(&b, 1); expect_reject(&b, "value type 13", "'k'");
    hdr(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, UINT32_MAX); bb_u32(&b, 1); expect_reject(&b, "value type -1", "type");
    hdr(&b, 3, 0, 1); bb_str(&b, "nest"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u64(&b, 1);
    bb_u32(&b, GGUF_TYPE_UINT8); bb_u64(&b, 1); bb_u8(&b, 1);
    expect_reject(&b, "nested array", "nested");
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, 40); bb_u64(&b, 1); bb_u32(&b, 0);
    expect_reject(&b, "array elem type 40", "'arr'");
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_UINT32);
    bb_u64(&b, 1ull << 62); bb_data(&b, 16);
    expect_reject(&b, "array n*4 overflows", "'arr'");
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, UINT64_MAX); bb_data(&b, 16);
    expect_reject(&b, "string array n huge", "'arr'");
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, 2); bb_str(&b, "ok"); bb_u64(&b, 1000); bb_data(&b, 8);
    expect_reject(&b, "string array element beyond end", "'arr'");
    hdr(&b, 3, 0, 1); bb_str(&b, "flag"); bb_u32(&b, GGUF_TYPE_BOOL); bb_u8(&b, 2); bb_data(&b, 8);
    expect_reject(&b, "bool 2", "'flag'");
    hdr(&b, 3, 0, 2); kv_u32(&b, "dup", 1); kv_u32(&b, "dup", 2); expect_reject(&b, "duplicate key", "'dup'");
    hdr(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 0); expect_reject(&b, "alignment 0", "general.alignment");
    hdr(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 48); expect_reject(&b, "alignment 48", "power of two");
    hdr(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 1u << 31); expect_reject(&b, "alignment 2^31", "general.alignment");
    hdr(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_TYPE_UINT64); bb_u64(&b, 32);
    expect_reject(&b, "alignment u64", "u32");
}

TEST(test_corrupt_tensors)
{
    bb b = {0};
#define ONE_TENSOR(name, nd, ne, type, off, ndata)                                                   \
    do {                                                                                             \
        hdr(&b, 3, 1, 0);                                                                            \
        tinfo(&b, name, nd, ne, type, off);                                                          \
        bb_pad(&b, 32);                                                                              \
        bb_data(&b, ndata);                                                                          \
    } while (0)
    ONE_TENSOR("t99", 1, ((const uint64_t[]){4}), 99, 0, 64); expect_reject(&b, "type 99", "'t99'");
    ONE_TENSOR("tq41", 1, ((const uint64_t[]){32}), 3, 0, 64); expect_reject(&b, "type q4_1", "unsupported");
    ONE_TENSOR("nd0", 0, ((const uint64_t[]){4}), QUANT_F32, 0, 64); expect_reject(&b, "n_dims 0", "'nd0'");
    ONE_TENSOR("nd5", 5, ((const uint64_t[]){1, 1, 1, 1, 1}), QUANT_F32, 0, 64); expect_reject(&b, "n_dims 5", "'nd5'");
    ONE_TENSOR("ne0", 2, ((const uint64_t[]){4, 0}), QUANT_F32, 0, 64); expect_reject(&b, "ne 0", "'ne0'");
    ONE_TENSOR("neneg", 1, ((const uint64_t[]){UINT64_MAX}), QUANT_F32, 0, 64); expect_reject(&b, "ne -1", "'neneg'");
    ONE_TENSOR("big", 2, ((const uint64_t[]){1ull << 32, 1ull << 32}), QUANT_F32, 0, 64);
    expect_reject(&b, "ne product overflow", "'big'");
    ONE_TENSOR("bytes", 2, ((const uint64_t[]){1ull << 31, 1ull << 31}), QUANT_F32, 0, 64);
    expect_reject(&b, "byte size beyond file", "'bytes'");
    ONE_TENSOR("blk", 1, ((const uint64_t[]){33}), QUANT_Q8_0, 0, 64); expect_reject(&b, "ne0 % 32", "'blk'");
    ONE_TENSOR("mis", 1, ((const uint64_t[]){4}), QUANT_F32, 4, 64); expect_reject(&b, "misaligned offset", "'mis'");
    ONE_TENSOR("far", 1, ((const uint64_t[]){4}), QUANT_F32, 1024, 64); expect_reject(&b, "offset beyond end", "'far'");
    ONE_TENSOR("part", 1, ((const uint64_t[]){16}), QUANT_F32, 32, 64); expect_reject(&b, "data past end", "'part'");
    ONE_TENSOR("wrap", 1, ((const uint64_t[]){8}), QUANT_F32, UINT64_MAX - 31, 64);
    expect_reject(&b, "offset + size wraps", "'wrap'");
    ONE_TENSOR("", 1, ((const uint64_t[]){4}), QUANT_F32, 0, 64); expect_reject(&b, "empty name", "empty");
    char longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    ONE_TENSOR(longname, 1, ((const uint64_t[]){4}), QUANT_F32, 0, 64); expect_reject(&b, "long name", "limit");
    /* data section would start beyond the end: tensor infos then nothing */
    hdr(&b, 3, 1, 0); tinfo(&b, "x", 1, (const uint64_t[]){4}, QUANT_F32, 0);
    expect_reject(&b, "no data section", "beyond the end");
    /* two tensors */
    hdr(&b, 3, 2, 0);
    tinfo(&b, "p", 1, (const uint64_t[]){16}, QUANT_F32, 0);
    tinfo(&b, "q", 1, (const uint64_t[]){8}, QUANT_F32, 32);
    bb_pad(&b, 32); bb_data(&b, 128);
    expect_reject(&b, "overlapping tensors", "overlap");
    hdr(&b, 3, 2, 0);
    tinfo(&b, "same", 1, (const uint64_t[]){8}, QUANT_F32, 0);
    tinfo(&b, "same", 1, (const uint64_t[]){8}, QUANT_F32, 32);
    bb_pad(&b, 32); bb_data(&b, 128);
    expect_reject(&b, "duplicate tensor", "'same'");
    hdr(&b, 3, 2, 0);
    tinfo(&b, "e1", 1, (const uint64_t[]){8}, QUANT_F32, 0);
    tinfo(&b, "e2", 1, (const uint64_t[]){8}, QUANT_F32, 0);
    bb_pad(&b, 32); bb_data(&b, 128);
    expect_reject(&b, "identical offsets", "overlap");
    /* alignment 64 from the key: an offset aligned to 32 only is rejected */
    hdr(&b, 3, 1, 1); kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "a64", 1, (const uint64_t[]){4}, QUANT_F32, 32);
    bb_pad(&b, 64); bb_data(&b, 128);
    expect_reject(&b, "offset not aligned to general.alignment", "'a64'");
#undef ONE_TENSOR
}

/* The same structures when valid are accepted (the rejections above are
 * about the corruption, not the layout used to build them). */
TEST(test_valid_variants_accepted)
{
    bb b = {0};
    gguf_file *f;
    uint8_t *copy;
    char err[256];
    hdr(&b, 3, 2, 1); kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "x", 1, (const uint64_t[]){4}, QUANT_F32, 64);
    tinfo(&b, "y", 4, (const uint64_t[]){32, 1, 2, 1}, QUANT_Q4_0, 0);
    size_t data_start = (b.n + 63) / 64 * 64;
    bb_pad(&b, 64); bb_data(&b, 64 + 16);
    int rc = open_copy(b.p, b.n, &f, err, sizeof err, &copy);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc == 0) {
        CHECK(gguf_alignment(f) == 64 && gguf_find_tensor(f, "y")->nbytes == 36);
        CHECK(gguf_find_tensor(f, "x")->data == copy + data_start + 64);
        gguf_close(f);
    }
    free(copy);
    bb_free(&b);
    /* no tensors and no padding at all */
    hdr(&b, 3, 0, 1); kv_str(&b, "k", "v");
    rc = open_copy(b.p, b.n, &f, err, sizeof err, &copy);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc == 0) gguf_close(f);
    free(copy);
    bb_free(&b);
}

/* Random corruption of a valid file: it loads (and every byte it exposes
 * can be read) or fails with a message; never a crash. */
TEST(test_random_bit_flips)
{
    uint8_t *datas[N_SPECS];
    gguf_writer *w = make_writer(datas);
    void *buf;
    size_t size;
    CHECK(gguf_writer_write_buffer(w, &buf, &size) == 0);
    size_t meta = size; /* start of the tensor data */
    {
        gguf_file *f;
        CHECK(gguf_open_buffer(buf, size, &f, NULL, 0) == 0);
        meta = (size_t)((const uint8_t *)gguf_tensor(f, 0)->data - (const uint8_t *)buf);
        gguf_close(f);
    }
    int loaded = 0, rejected = 0, badmsg = 0;
    uint8_t *img = malloc(size);
    for (int it = 0; it < 4000; it++) {
        memcpy(img, buf, size);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = rnd() % 10 < 9 ? rnd() % meta : rnd() % size; /* mostly the metadata */
            if (rnd() % 4 == 0) img[pos] = (uint8_t[]){0x00, 0xff, 0x80, 0x7f}[rnd() % 4];
            else img[pos] ^= (uint8_t)(1u << (rnd() % 8));
        }
        gguf_file *f;
        uint8_t *copy;
        char err[256] = "";
        if (open_copy(img, size, &f, err, sizeof err, &copy) == 0) {
            loaded++;
            (void)walk(f);
            gguf_close(f);
        } else {
            rejected++;
            if (strncmp(err, "gguf_open: ", 11) != 0 || strlen(err) < 13) badmsg++;
        }
        free(copy);
    }
    printf("  bit flips: %d loaded, %d rejected\n", loaded, rejected);
    CHECK(badmsg == 0);
    CHECK(loaded > 0 && rejected > 0);
    free(img);
    free(buf);
    gguf_writer_free(w);
    for (int i = 0; i < N_SPECS; i++) free(datas[i]);
}

int main(void)
{
    RUN(test_all_value_types);
    RUN(test_writer_exact_bytes);
    RUN(test_writer_reader_roundtrip);
    RUN(test_writer_rejects_bad_input);
    RUN(test_open_file_errors);
    RUN(test_valid_small_and_every_truncation);
    RUN(test_corrupt_header);
    RUN(test_corrupt_kv);
    RUN(test_corrupt_tensors);
    RUN(test_valid_variants_accepted);
    RUN(test_random_bit_flips);
    return test_summary();
}
