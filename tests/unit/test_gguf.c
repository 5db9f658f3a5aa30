/* test_gguf.c - the GGUF reader and the GGML block formats.
 *
 * Valid files come from the Python `gguf` package (tools/reference/
 * make_gguf_fixtures.py): metadata of every type must read back exactly, and
 * dequantization must equal gguf.quants.dequantize bit for bit.  Hostile
 * files are built here, one corrupted field at a time, plus every truncation
 * of a small valid file: each must fail with one line naming the file (and
 * the key or tensor), never crash.  A real Gemma 3 270M GGUF, when present,
 * is checked against sha256 hashes of its dequantized tensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>

#include "core/json.h"
#include "io/gguf.h"
#include "quant/ggml_blocks.h"
#include "unit/sha256.h"
#include "unit/testutil.h"

#define FIX GEMMA_FIXTURES_DIR "/gguf"

/* ------------------------------------------------------------- helpers */

static char *slurp(const char *path, size_t *len) {
    char *buf;
    gemma_error err;
    if (gm_read_file(path, (size_t)1 << 30, &buf, len, &err)) fail_msg("%s", err.message);
    return buf;
}

static gm_json_doc *load_json(const char *path) {
    size_t n;
    char *text = slurp(path, &n), jerr[160];
    gm_json_doc *doc = gm_json_parse(text, n, NULL, jerr, sizeof jerr);
    free(text);
    if (!doc) fail_msg("%s: %s", path, jerr);
    return doc;
}

static void open_ok(gm_gguf *g, const char *path) {
    gemma_error err;
    if (gm_gguf_open(g, path, &err) != GEMMA_OK) fail_msg("%s", err.message);
}

/* The error must be one line, start with "path: " and contain s1 and s2 (if given). */
static void check_message(const gemma_error *err, const char *path, const char *s1, const char *s2) {
    const char *why = tu_message_problem(err->message, path, s1, s2);
    if (why) fail_msg("message '%s' %s", err->message, why);
}

static void expect_open_error(const char *path, const char *s1, const char *s2) {
    gm_gguf g;
    gemma_error err;
    gemma_status st = gm_gguf_open(&g, path, &err);
    if (st == GEMMA_OK) {
        gm_gguf_close(&g);
        fail_msg("%s: opened, expected an error containing '%s'", path, s1 ? s1 : "");
    }
    assert_int_equal(err.code, st);
    assert_int_equal(g.n_tensors, 0);   /* left empty */
    check_message(&err, path, s1, s2);
}

/* --------------------------------------------------------- a GGUF writer */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gb;

static void gb_raw(gb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void gb_le(gb *b, uint64_t v, int bytes) {
    uint8_t t[8];
    for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
    gb_raw(b, t, (size_t)bytes);
}

static void gb_u8(gb *b, uint64_t v) { gb_le(b, v, 1); }
static void gb_u32(gb *b, uint64_t v) { gb_le(b, v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_le(b, v, 8); }
static void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_raw(b, s, strlen(s));
}
static void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_raw(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
static void gb_kv_u32(gb *b, const char *key, uint32_t v) {
    gb_str(b, key);
    gb_u32(b, GM_GGUF_U32);
    gb_u32(b, v);
}
/* A tensor info with ne[0..n_dims). */
static void gb_tensor(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}
static void gb_pad(gb *b, size_t align) {
    while (b->n % align) gb_u8(b, 0);
}
static void gb_zeros(gb *b, size_t n) {
    for (size_t i = 0; i < n; i++) gb_u8(b, (uint8_t)(i * 7));
}

static const char *bad_dir(void) {
    static char dir[1024];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", tu_dir("gguf_bad"));
    return dir;
}

/* Write b to GEMMA_TEST_TMPDIR/gguf_bad/<name>.gguf; returns a static path. */
static const char *gb_write(const gb *b, const char *name) {
    static char path[4][1200];
    static int next;
    char *p = path[next++ & 3];
    snprintf(p, 1200, "%s/%s.gguf", bad_dir(), name);
    tu_write(p, b->p, b->n);
    return p;
}

/* A small valid file whose last tensor ends exactly at the end of the file
 * (so every truncation is an error), with the byte positions of its fields. */
typedef struct {
    gb b;
    size_t version, n_tensors, n_kv;
    size_t align_value, u8_type, bool_value, str_key_len, arr_str_count, arr_str_elem1_len, nested_count;
    size_t t0_ndims, t0_ne0, t0_ne1, t0_type, t0_offset, t1_offset, t1_ne0, t1_type, t2_offset;
    size_t data;       /* start of the data section */
} small_file;

enum { SMALL_T0_BYTES = 64, SMALL_T1_BYTES = 3 * 34, SMALL_T2_OFFSET = 192, SMALL_T2_BYTES = 10 };

static void small_build(small_file *s) {
    memset(s, 0, sizeof *s);
    gb *b = &s->b;
    gb_raw(b, "GGUF", 4);
    s->version = b->n;
    gb_u32(b, 3);
    s->n_tensors = b->n;
    gb_u64(b, 3);
    s->n_kv = b->n;
    gb_u64(b, 7);
    s->str_key_len = b->n;
    gb_str(b, "general.architecture");
    gb_u32(b, GM_GGUF_STRING);
    gb_str(b, "gemma3");
    gb_str(b, "general.alignment");
    gb_u32(b, GM_GGUF_U32);
    s->align_value = b->n;
    gb_u32(b, 32);
    gb_str(b, "test.u8");
    s->u8_type = b->n;
    gb_u32(b, GM_GGUF_U8);
    gb_u8(b, 7);
    gb_str(b, "test.bool");
    gb_u32(b, GM_GGUF_BOOL);
    s->bool_value = b->n;
    gb_u8(b, 1);
    gb_str(b, "test.arr_str");
    gb_u32(b, GM_GGUF_ARRAY);
    gb_u32(b, GM_GGUF_STRING);
    s->arr_str_count = b->n;
    gb_u64(b, 2);
    gb_str(b, "a");
    s->arr_str_elem1_len = b->n;
    gb_str(b, "bc");
    gb_str(b, "test.nested");
    gb_u32(b, GM_GGUF_ARRAY);
    gb_u32(b, GM_GGUF_ARRAY);
    s->nested_count = b->n;
    gb_u64(b, 2);
    gb_u32(b, GM_GGUF_U8);
    gb_u64(b, 2);
    gb_u8(b, 1);
    gb_u8(b, 2);
    gb_u32(b, GM_GGUF_U8);
    gb_u64(b, 1);
    gb_u8(b, 3);
    gb_str(b, "test.f32");
    gb_u32(b, GM_GGUF_F32);
    gb_u32(b, 0x3fc00000);   /* 1.5 */

    gb_str(b, "w.f32");
    s->t0_ndims = b->n;
    gb_u32(b, 2);
    s->t0_ne0 = b->n;
    gb_u64(b, 8);
    s->t0_ne1 = b->n;
    gb_u64(b, 2);
    s->t0_type = b->n;
    gb_u32(b, GM_GGML_F32);
    s->t0_offset = b->n;
    gb_u64(b, 0);
    gb_str(b, "w.q8");
    gb_u32(b, 2);
    s->t1_ne0 = b->n;
    gb_u64(b, 32);
    gb_u64(b, 3);
    s->t1_type = b->n;
    gb_u32(b, GM_GGML_Q8_0);
    s->t1_offset = b->n;
    gb_u64(b, 64);
    gb_str(b, "w.last");
    gb_u32(b, 1);
    gb_u64(b, 5);
    gb_u32(b, GM_GGML_F16);
    s->t2_offset = b->n;
    gb_u64(b, SMALL_T2_OFFSET);
    gb_pad(b, 32);
    s->data = b->n;
    gb_zeros(b, SMALL_T2_OFFSET + SMALL_T2_BYTES);
}

static void patch(small_file *s, size_t at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) s->b.p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* Build the small file, patch one field, write it, expect an error. */
static void expect_patched_error(const char *name, size_t field, uint64_t v, int bytes, const char *s1, const char *s2) {
    small_file s;
    small_build(&s);
    patch(&s, field, v, bytes);
    expect_open_error(gb_write(&s.b, name), s1, s2);
    free(s.b.p);
}

/* ------------------------------------------------------------ metadata */

static void test_metadata_values(void **state) {
    (void)state;
    gm_gguf g;
    gemma_error err;
    open_ok(&g, FIX "/metadata.gguf");
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 64);
    assert_int_equal(g.n_kvs, 31);
    assert_int_equal(g.data_offset % 64, 0);

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f;
    int b;
    const char *s;
    size_t len;
    assert_int_equal(gm_gguf_get_u32(&g, "t.u8", &u32, &err), GEMMA_OK);
    assert_int_equal(u32, 200);
    assert_int_equal(gm_gguf_get_i32(&g, "t.i8", &i32, &err), GEMMA_OK);
    assert_int_equal(i32, -100);
    assert_int_equal(gm_gguf_get_u32(&g, "t.u16", &u32, &err), GEMMA_OK);
    assert_int_equal(u32, 60000);
    assert_int_equal(gm_gguf_get_i32(&g, "t.i16", &i32, &err), GEMMA_OK);
    assert_int_equal(i32, -30000);
    assert_int_equal(gm_gguf_get_u32(&g, "t.u32", &u32, &err), GEMMA_OK);
    assert_true(u32 == 4000000000u);
    assert_int_equal(gm_gguf_get_i32(&g, "t.i32", &i32, &err), GEMMA_OK);
    assert_int_equal(i32, -2000000000);
    assert_int_equal(gm_gguf_get_f32(&g, "t.f32", &f, &err), GEMMA_OK);
    assert_true(f == 0.1f);
    assert_int_equal(gm_gguf_get_bool(&g, "t.true", &b, &err), GEMMA_OK);
    assert_int_equal(b, 1);
    assert_int_equal(gm_gguf_get_bool(&g, "t.false", &b, &err), GEMMA_OK);
    assert_int_equal(b, 0);
    assert_int_equal(gm_gguf_get_str(&g, "t.str", &s, &len, &err), GEMMA_OK);
    assert_string_equal(s, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
    assert_int_equal(len, strlen(s));
    assert_int_equal(gm_gguf_get_str(&g, "t.empty", &s, &len, &err), GEMMA_OK);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    assert_int_equal(gm_gguf_get_str(&g, "general.architecture", &s, NULL, &err), GEMMA_OK);
    assert_string_equal(s, "mdtest");
    assert_int_equal(gm_gguf_get_u64(&g, "t.u64", &u64, &err), GEMMA_OK);
    assert_true(u64 == UINT64_C(9223372036854775813));
    assert_int_equal(gm_gguf_get_i64(&g, "t.i64", &i64, &err), GEMMA_OK);
    assert_true(i64 == -INT64_C(4611686018427387907));
    const gm_gguf_kv *kv = gm_gguf_find_kv(&g, "t.f64");
    assert_non_null(kv);
    assert_int_equal(kv->value.type, GM_GGUF_F64);
    double d;
    assert_true(gm_gguf_value_f64(&kv->value, &d) && d == 1.0 / 3.0);
    assert_int_equal(gm_gguf_get_f32(&g, "t.f64", &f, &err), GEMMA_OK);   /* F64 accepted, rounded */
    assert_true(f == (float)(1.0 / 3.0));
    /* types of the scalars as stored */
    static const struct { const char *key; gm_gguf_type t; } types[] = {
        {"t.u8", GM_GGUF_U8},   {"t.i8", GM_GGUF_I8},   {"t.u16", GM_GGUF_U16},   {"t.i16", GM_GGUF_I16},
        {"t.u32", GM_GGUF_U32}, {"t.i32", GM_GGUF_I32}, {"t.f32", GM_GGUF_F32},   {"t.true", GM_GGUF_BOOL},
        {"t.str", GM_GGUF_STRING}, {"t.u64", GM_GGUF_U64}, {"t.i64", GM_GGUF_I64}, {"t.f64", GM_GGUF_F64},
        {"general.alignment", GM_GGUF_U32},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        kv = gm_gguf_find_kv(&g, types[i].key);
        assert_non_null(kv);
        assert_int_equal(kv->value.type, types[i].t);
    }
    /* iteration sees every key once, in file order */
    assert_string_equal(g.kvs[0].key, "general.architecture");
    assert_string_equal(g.kvs[1].key, "general.alignment");
    for (size_t i = 0; i < g.n_kvs; i++) assert_ptr_equal(gm_gguf_find_kv(&g, g.kvs[i].key), &g.kvs[i]);
    assert_null(gm_gguf_find_kv(&g, "t.u"));
    assert_null(gm_gguf_find_kv(&g, "missing"));
    gm_gguf_close(&g);
}

static void test_metadata_arrays(void **state) {
    (void)state;
    gm_gguf g;
    gemma_error err;
    open_ok(&g, FIX "/metadata.gguf");
    const gm_gguf_value *a;
    int64_t v;
    uint64_t u;
    double d;
    static const struct { const char *key; gm_gguf_type t; int n; int64_t first, last; } ints[] = {
        {"t.arr.u8", GM_GGUF_U8, 3, 1, 255},          {"t.arr.i8", GM_GGUF_I8, 3, -128, 127},
        {"t.arr.u16", GM_GGUF_U16, 2, 0, 65535},      {"t.arr.i16", GM_GGUF_I16, 2, -32768, 32767},
        {"t.arr.u32", GM_GGUF_U32, 2, 7, 4294967295}, {"t.arr.i32", GM_GGUF_I32, 3, -5, INT32_MIN},
        {"t.arr.bool", GM_GGUF_BOOL, 3, 1, 1},        {"t.arr.i64", GM_GGUF_I64, 2, INT64_MIN, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        assert_int_equal(gm_gguf_get_arr(&g, ints[i].key, ints[i].t, &a, &err), GEMMA_OK);
        assert_int_equal(a->count, ints[i].n);
        assert_true(gm_gguf_arr_int(a, 0, &v) && v == ints[i].first);
        assert_true(gm_gguf_arr_int(a, (uint64_t)ints[i].n - 1, &v) && v == ints[i].last);
        assert_false(gm_gguf_arr_int(a, (uint64_t)ints[i].n, &v));   /* out of range */
    }
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.u64", GM_GGUF_U64, &a, &err), GEMMA_OK);
    assert_true(gm_gguf_arr_u64(a, 1, &u) && u == UINT64_MAX);
    assert_false(gm_gguf_arr_int(a, 1, &v));   /* does not fit int64 */
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.f32", GM_GGUF_F32, &a, &err), GEMMA_OK);
    assert_true(gm_gguf_arr_f64(a, 0, &d) && d == 1.5);
    assert_true(gm_gguf_arr_f64(a, 2, &d) && (float)d == 1e-3f);
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.f64", GM_GGUF_F64, &a, &err), GEMMA_OK);
    assert_true(gm_gguf_arr_f64(a, 0, &d) && d == 0.1);
    assert_true(gm_gguf_arr_f64(a, 1, &d) && d == -2.5);

    size_t len;
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.str", GM_GGUF_STRING, &a, &err), GEMMA_OK);
    assert_int_equal(a->count, 4);
    static const char *strs[] = {"a", "", "\xc3\xbc" "n\xc3\xaf" "code", "with\nnewline"};
    for (int i = 0; i < 4; i++) {
        const char *s = gm_gguf_arr_str(a, (uint64_t)i, &len);
        assert_non_null(s);
        assert_int_equal(len, strlen(strs[i]));
        assert_memory_equal(s, strs[i], len);
    }
    assert_null(gm_gguf_arr_str(a, 4, &len));
    assert_null(gm_gguf_arr_sub(a, 0));

    /* [[1, 2], [3, 4, 5]] */
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.nested", GM_GGUF_ARRAY, &a, &err), GEMMA_OK);
    assert_int_equal(a->count, 2);
    const gm_gguf_value *s0 = gm_gguf_arr_sub(a, 0), *s1 = gm_gguf_arr_sub(a, 1);
    assert_int_equal(s0->elem_type, GM_GGUF_I32);
    assert_int_equal(s0->count, 2);
    assert_int_equal(s1->count, 3);
    assert_true(gm_gguf_arr_int(s1, 2, &v) && v == 5);
    /* [["x", "yy"], ["zzz"]] */
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.nested_str", GM_GGUF_ARRAY, &a, &err), GEMMA_OK);
    const char *z = gm_gguf_arr_str(gm_gguf_arr_sub(a, 1), 0, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(z, "zzz", 3);
    z = gm_gguf_arr_str(gm_gguf_arr_sub(a, 0), 1, &len);
    assert_memory_equal(z, "yy", 2);
    /* [[[1]], [[2, 3], [4]]] */
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.deep", GM_GGUF_ARRAY, &a, &err), GEMMA_OK);
    const gm_gguf_value *deep = gm_gguf_arr_sub(gm_gguf_arr_sub(a, 1), 1);
    assert_non_null(deep);
    assert_int_equal(deep->count, 1);
    assert_true(gm_gguf_arr_int(deep, 0, &v) && v == 4);
    gm_gguf_close(&g);
}

static void test_getter_errors(void **state) {
    (void)state;
    gm_gguf g;
    gemma_error err;
    open_ok(&g, FIX "/metadata.gguf");
    const char *path = FIX "/metadata.gguf";
    uint32_t u32;
    int32_t i32;
    float f;
    int b;
    const char *s;
    const gm_gguf_value *a;
    assert_int_equal(gm_gguf_get_u32(&g, "nope", &u32, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "key 'nope' is missing", NULL);
    assert_int_equal(gm_gguf_get_u32(&g, "t.str", &u32, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "key 't.str' has type STRING, expected an integer", NULL);
    assert_int_equal(gm_gguf_get_i32(&g, "t.u32", &i32, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "key 't.u32' = 4000000000 does not fit in INT32", NULL);
    assert_int_equal(gm_gguf_get_u32(&g, "t.i8", &u32, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "'t.i8' = -100 does not fit in UINT32", NULL);
    assert_int_equal(gm_gguf_get_u32(&g, "t.u64", &u32, &err), GEMMA_ERR_FORMAT);
    assert_int_equal(gm_gguf_get_f32(&g, "t.u32", &f, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "expected FLOAT32", NULL);
    assert_int_equal(gm_gguf_get_bool(&g, "t.u8", &b, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "has type UINT8, expected BOOL", NULL);
    assert_int_equal(gm_gguf_get_str(&g, "t.arr.str", &s, NULL, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "has type ARRAY, expected STRING", NULL);
    assert_int_equal(gm_gguf_get_arr(&g, "t.arr.str", GM_GGUF_I32, &a, &err), GEMMA_ERR_FORMAT);
    check_message(&err, path, "is an array of STRING, expected an array of INT32", NULL);
    assert_int_equal(gm_gguf_get_arr(&g, "t.u8", GM_GGUF_TYPE_COUNT, &a, &err), GEMMA_ERR_FORMAT);
    /* smaller integer types widen */
    assert_int_equal(gm_gguf_get_u32(&g, "t.u16", &u32, &err), GEMMA_OK);
    assert_int_equal(gm_gguf_get_i32(&g, "t.u8", &i32, &err), GEMMA_OK);
    assert_int_equal(i32, 200);
    gm_gguf_close(&g);
}

static void test_metadata_tensors(void **state) {
    (void)state;
    gm_gguf g;
    gemma_error err;
    open_ok(&g, FIX "/metadata.gguf");
    assert_int_equal(g.n_tensors, 3);
    const gm_gguf_tensor *t = gm_gguf_find_tensor(&g, "t.f32");
    assert_non_null(t);
    assert_ptr_equal(t, &g.tensors[0]);
    assert_int_equal(t->type, GM_GGML_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 3);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(gm_gguf_tensor_numel(t), 6);
    assert_int_equal(gm_gguf_tensor_rows(t), 2);
    assert_int_equal(t->nbytes, 24);
    assert_int_equal(t->offset, 0);
    assert_ptr_equal(t->data, g.mf.data + g.data_offset);
    assert_int_equal(g.data_offset, 1408);   /* what gguf-py's reader reports */
    float row[3];
    assert_int_equal(gm_ggml_dequant_row(t->type, t->data + 12, row, 3), 0);
    assert_true(row[0] == 3 && row[1] == 4 && row[2] == 5);
    assert_int_equal(gm_gguf_tensor_check(&g, t, &err), GEMMA_OK);

    t = gm_gguf_find_tensor(&g, "t.i32");   /* known type, no arithmetic for it */
    assert_int_equal(t->type, GM_GGML_I32);
    assert_int_equal(t->offset % 64, 0);
    assert_int_equal(t->data - g.mf.data, 1472);
    assert_int_equal(gm_gguf_tensor_check(&g, t, &err), GEMMA_ERR_UNSUPPORTED);
    check_message(&err, FIX "/metadata.gguf", "tensor 't.i32': ggml type I32 is not supported", "Q4_K");

    t = gm_gguf_find_tensor(&g, "t.f16");
    assert_int_equal(t->ne[0], 32);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->data - g.mf.data, 1536);
    float r2[32];
    assert_int_equal(gm_ggml_dequant_row(t->type, t->data + 64, r2, 32), 0);
    assert_true(r2[0] == 32.0f && r2[31] == 63.0f);
    assert_null(gm_gguf_find_tensor(&g, "t.f1"));
    gm_gguf_close(&g);
}

/* The same file with version 2 in the header reads the same (v2 and v3 differ only in endianness support). */
static void test_version_2(void **state) {
    (void)state;
    size_t n;
    char *bytes = slurp(FIX "/metadata.gguf", &n);
    bytes[4] = 2;
    gb b = {(uint8_t *)bytes, n, n};
    const char *path = gb_write(&b, "v2");
    gm_gguf g;
    open_ok(&g, path);
    assert_int_equal(g.version, 2);
    assert_int_equal(g.n_kvs, 31);
    assert_int_equal(g.n_tensors, 3);
    gm_gguf_close(&g);
    free(bytes);
}

/* A file made here: every value type, empty arrays of each kind, an unknown tensor type. */
static void test_small_file_and_edge_values(void **state) {
    (void)state;
    small_file s;
    small_build(&s);
    gm_gguf g;
    gemma_error err;
    open_ok(&g, gb_write(&s.b, "small"));
    assert_int_equal(g.n_kvs, 7);
    assert_int_equal(g.n_tensors, 3);
    assert_int_equal(g.data_offset, s.data);
    assert_int_equal(g.tensors[2].offset, SMALL_T2_OFFSET);
    assert_int_equal(g.tensors[2].nbytes, SMALL_T2_BYTES);
    assert_int_equal(g.tensors[1].nbytes, SMALL_T1_BYTES);
    assert_int_equal(g.mf.size, s.data + SMALL_T2_OFFSET + SMALL_T2_BYTES);
    gm_gguf_close(&g);
    free(s.b.p);

    gb b = {0};
    gb_header(&b, 3, 2, 4);
    gb_str(&b, "empty.u8");
    gb_u32(&b, GM_GGUF_ARRAY);
    gb_u32(&b, GM_GGUF_U8);
    gb_u64(&b, 0);
    gb_str(&b, "empty.str");
    gb_u32(&b, GM_GGUF_ARRAY);
    gb_u32(&b, GM_GGUF_STRING);
    gb_u64(&b, 0);
    gb_str(&b, "empty.arr");
    gb_u32(&b, GM_GGUF_ARRAY);
    gb_u32(&b, GM_GGUF_ARRAY);
    gb_u64(&b, 0);
    gb_str(&b, "key with \x01 control \xe2\x9c\x93");
    gb_u32(&b, GM_GGUF_I8);
    gb_u8(&b, 0xff);
    uint64_t ne[2] = {32, 1};
    gb_tensor(&b, "future", 2, ne, 99, 0);   /* unknown type: kept, size unknown */
    gb_tensor(&b, "q4k", 1, (const uint64_t[]){256}, GM_GGML_Q4_K, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 32 + 144);
    const char *path = gb_write(&b, "edges");
    open_ok(&g, path);
    const gm_gguf_value *a;
    assert_int_equal(gm_gguf_get_arr(&g, "empty.u8", GM_GGUF_U8, &a, &err), GEMMA_OK);
    assert_int_equal(a->count, 0);
    assert_int_equal(gm_gguf_get_arr(&g, "empty.str", GM_GGUF_STRING, &a, &err), GEMMA_OK);
    assert_null(gm_gguf_arr_str(a, 0, NULL));
    assert_int_equal(gm_gguf_get_arr(&g, "empty.arr", GM_GGUF_ARRAY, &a, &err), GEMMA_OK);
    assert_null(gm_gguf_arr_sub(a, 0));
    int32_t i32;
    assert_int_equal(gm_gguf_get_i32(&g, "key with \x01 control \xe2\x9c\x93", &i32, &err), GEMMA_OK);
    assert_int_equal(i32, -1);
    const gm_gguf_tensor *t = gm_gguf_find_tensor(&g, "future");
    assert_int_equal(t->known, 0);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(gm_gguf_tensor_check(&g, t, &err), GEMMA_ERR_UNSUPPORTED);
    check_message(&err, path, "tensor 'future': ggml type 99 is unknown", NULL);
    t = gm_gguf_find_tensor(&g, "q4k");
    assert_int_equal(t->known, 1);
    assert_int_equal(t->nbytes, 144);
    assert_int_equal(gm_gguf_tensor_check(&g, t, &err), GEMMA_OK);
    gm_gguf_close(&g);
    free(b.p);
}

/* ---------------------------------------------------------- bad files */

static void test_bad_header(void **state) {
    (void)state;
    expect_patched_error("magic", 0, 0x58554747, 4, "not a GGUF file", "47 47 55 58");
    expect_patched_error("v1", 4, 1, 4, "GGUF version 1 is not supported", NULL);
    expect_patched_error("v99", 4, 99, 4, "GGUF version 99 is not supported (supported: 2, 3)", NULL);
    expect_patched_error("bigendian", 4, 0x03000000, 4, "big-endian", NULL);
    expect_patched_error("n_tensors_huge", 8, UINT64_C(1) << 63, 8, "tensor count 9223372036854775808", NULL);
    expect_patched_error("n_tensors_big", 8, (1u << 20) + 1, 8, "more than the 1048576 allowed", NULL);
    expect_patched_error("n_tensors_more", 8, 1000, 8, "tensor count 1000 cannot fit", NULL);
    expect_patched_error("n_kv_huge", 16, UINT64_C(1) << 63, 8, "metadata count 9223372036854775808", NULL);
    expect_patched_error("n_kv_more", 16, 8, 8, "tensor 0: name length", "runs past the end");   /* a tensor info read as a kv */

    gb b = {0};
    gb_raw(&b, "GGU", 3);
    expect_open_error(gb_write(&b, "three_bytes"), "too short for a GGUF file (3 bytes)", NULL);
    b.n = 0;
    gb_header(&b, 3, 0, 0);
    gm_gguf g;
    open_ok(&g, gb_write(&b, "empty_ok"));   /* no keys, no tensors: valid */
    assert_int_equal(g.alignment, 32);
    gm_gguf_close(&g);
    free(b.p);
}

static void test_bad_metadata(void **state) {
    (void)state;
    small_file s;
    small_build(&s);
    size_t key_len = s.str_key_len;
    size_t left_after_len = s.b.n - key_len - 8;
    free(s.b.p);
    expect_patched_error("key_len_huge", key_len, UINT64_C(1) << 63, 8, "metadata entry 0: key length 9223372036854775808",
                         "runs past the end of the file");
    expect_patched_error("key_len_past", key_len, left_after_len + 1, 8, "runs past the end of the file", NULL);
    expect_patched_error("key_len_0", key_len, 0, 8, "metadata entry 0: key is empty", NULL);

    small_build(&s);
    size_t u8_type = s.u8_type, bool_value = s.bool_value, arr_count = s.arr_str_count, elem1 = s.arr_str_elem1_len,
           nested = s.nested_count, align = s.align_value;
    free(s.b.p);
    expect_patched_error("value_type_13", u8_type, 13, 4, "key 'test.u8': value type 13 is unknown", NULL);
    expect_patched_error("value_type_huge", u8_type, 0xffffffffu, 4, "key 'test.u8'", "value type 4294967295 is unknown");
    expect_patched_error("bool_2", bool_value, 2, 1, "key 'test.bool': bool value 2", "not 0 or 1");
    expect_patched_error("arr_str_count_huge", arr_count, UINT64_C(1) << 63, 8, "key 'test.arr_str'",
                         "array of 9223372036854775808 STRING");
    expect_patched_error("arr_str_elem_past", elem1, 1u << 30, 8, "key 'test.arr_str': string element 1 length 1073741824",
                         "past the end");
    expect_patched_error("arr_str_elem_huge", elem1, UINT64_MAX, 8, "string element 1 length 18446744073709551615", NULL);
    expect_patched_error("nested_count_huge", nested, UINT64_C(1) << 62, 8, "key 'test.nested'", "array of 4611686018427387904 ARRAY");
    expect_patched_error("align_0", align, 0, 4, "key 'general.alignment'", "alignment 0 is not a power of two");
    expect_patched_error("align_3", align, 3, 4, "alignment 3 is not a power of two", NULL);
    expect_patched_error("align_12", align, 12, 4, "alignment 12 is not a power of two", NULL);
    /* a larger alignment makes the existing offsets misaligned */
    expect_patched_error("align_128", align, 128, 4, "tensor 'w.q8': offset 64 is not a multiple of the alignment 128", NULL);

    /* arrays: huge counts of each element kind, unknown element type, nesting bomb */
    static const struct { uint32_t et; uint64_t count; const char *msg; } arrays[] = {
        {GM_GGUF_U8, UINT64_C(1) << 63, "array of 9223372036854775808 UINT8"},
        {GM_GGUF_U64, UINT64_C(1) << 61, "array of 2305843009213693952 UINT64"},
        {GM_GGUF_F32, 5, "array of 5 FLOAT32 at byte"},
        {GM_GGUF_STRING, 3, "array of 3 STRING at byte"},
        {GM_GGUF_ARRAY, UINT64_MAX, "array of 18446744073709551615 ARRAY"},
        {GM_GGUF_TYPE_COUNT, 1, "array element type 13 is unknown"},
        {GM_GGUF_BOOL, 4, "bool value 9"},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        gb b = {0};
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "arr");
        gb_u32(&b, GM_GGUF_ARRAY);
        gb_u32(&b, arrays[i].et);
        gb_u64(&b, arrays[i].count);
        gb_raw(&b, "\x01\x00\x09\x01\x00\x00\x00", 7);
        char name[32];
        snprintf(name, sizeof name, "array_%zu", i);
        expect_open_error(gb_write(&b, name), "key 'arr'", arrays[i].msg);
        free(b.p);
    }
    {   /* nesting depth bomb: 1000 arrays each holding one array */
        gb b = {0};
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "bomb");
        gb_u32(&b, GM_GGUF_ARRAY);
        for (int i = 0; i < 1000; i++) {
            gb_u32(&b, GM_GGUF_ARRAY);
            gb_u64(&b, 1);
        }
        gb_u32(&b, GM_GGUF_U8);
        gb_u64(&b, 0);
        expect_open_error(gb_write(&b, "depth_bomb"), "key 'bomb'", "arrays nested more than 8 deep");
        free(b.p);
    }
    {   /* breadth bomb: more empty sub-arrays than allowed (each costs 12 bytes of file) */
        gb b = {0};
        uint64_t n = (UINT64_C(1) << 20) + 1;
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "wide");
        gb_u32(&b, GM_GGUF_ARRAY);
        gb_u32(&b, GM_GGUF_ARRAY);
        gb_u64(&b, n);
        for (uint64_t i = 0; i < n; i++) {
            gb_u32(&b, GM_GGUF_U8);
            gb_u64(&b, 0);
        }
        expect_open_error(gb_write(&b, "breadth_bomb"), "key 'wide'", "more than 1048576 nested arrays");
        free(b.p);
    }
    {   /* duplicate key, key with a NUL, wrong type for general.alignment, key names sanitized */
        gb b = {0};
        gb_header(&b, 3, 0, 2);
        gb_kv_u32(&b, "a.key", 1);
        gb_kv_u32(&b, "a.key", 2);
        expect_open_error(gb_write(&b, "dup_key"), "key 'a.key' appears twice", NULL);
        b.n = 0;
        gb_header(&b, 3, 0, 1);
        gb_u64(&b, 3);
        gb_raw(&b, "a\0b", 3);
        gb_u32(&b, GM_GGUF_U8);
        gb_u8(&b, 0);
        expect_open_error(gb_write(&b, "nul_key"), "metadata entry 0: key contains a NUL byte", NULL);
        b.n = 0;
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "general.alignment");
        gb_u32(&b, GM_GGUF_STRING);
        gb_str(&b, "32");
        expect_open_error(gb_write(&b, "align_string"), "key 'general.alignment': type is STRING, expected UINT32", NULL);
        b.n = 0;
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "evil\nkey\x1b[31m");
        gb_u32(&b, 77);
        expect_open_error(gb_write(&b, "evil_key"), "key 'evil?key?[31m': value type 77 is unknown", NULL);
        b.n = 0;
        char longkey[400];
        memset(longkey, 'k', sizeof longkey - 1);
        longkey[sizeof longkey - 1] = 0;
        gb_header(&b, 3, 0, 1);
        gb_str(&b, longkey);
        gb_u32(&b, 77);
        expect_open_error(gb_write(&b, "long_key"), "kkk...': value type 77", NULL);
        b.n = 0;
        char *huge_key = malloc(70001);
        memset(huge_key, 'h', 70000);
        huge_key[70000] = 0;
        gb_header(&b, 3, 0, 1);
        gb_str(&b, huge_key);
        gb_u32(&b, GM_GGUF_U8);
        gb_u8(&b, 0);
        expect_open_error(gb_write(&b, "key_too_long"), "metadata entry 0: key is 70000 bytes, more than the 65535 allowed", NULL);
        free(huge_key);
        free(b.p);
    }
}

static void test_bad_tensors(void **state) {
    (void)state;
    small_file s;
    small_build(&s);
    size_t ndims = s.t0_ndims, ne0 = s.t0_ne0, ne1 = s.t0_ne1, type0 = s.t0_type, off0 = s.t0_offset, off1 = s.t1_offset,
           t1ne0 = s.t1_ne0, t1type = s.t1_type, off2 = s.t2_offset, data = s.data, size = s.b.n;
    free(s.b.p);
    expect_patched_error("ndims_5", ndims, 5, 4, "tensor 'w.f32': n_dims 5 is not between 1 and 4", NULL);
    expect_patched_error("ndims_0", ndims, 0, 4, "tensor 'w.f32': n_dims 0", NULL);
    expect_patched_error("ne_0", ne1, 0, 8, "tensor 'w.f32': ne[1] is 0", NULL);
    expect_patched_error("ne_huge", ne0, UINT64_C(1) << 63, 8, "tensor 'w.f32': ne[0] = 9223372036854775808", "overflow");
    expect_patched_error("ne_product", ne1, UINT64_C(1) << 62, 8, "tensor 'w.f32': ne[1] = 4611686018427387904", "overflow");
    expect_patched_error("rows_bytes", ne0, UINT64_C(1) << 61, 8, "tensor 'w.f32': F32 data size overflows", NULL);   /* 2 x 2^63 bytes */
    expect_patched_error("ne_big", ne1, UINT64_C(1) << 40, 8, "tensor 'w.f32': data ends at byte", "past the end of the file");
    expect_patched_error("q8_row", t1ne0, 48, 8, "tensor 'w.q8': row length ne[0] = 48 is not a multiple of the Q8_0 block size 32", NULL);
    expect_patched_error("q4k_row", t1type, GM_GGML_Q4_K, 4, "tensor 'w.q8': row length ne[0] = 32", "Q4_K block size 256");
    expect_patched_error("unaligned", off1, 65, 8, "tensor 'w.q8': offset 65 is not a multiple of the alignment 32", NULL);
    expect_patched_error("overlap_same", off1, 0, 8, "tensors 'w.f32' and 'w.q8' overlap", NULL);
    expect_patched_error("overlap_part", off1, 32, 8, "overlap in the data section", NULL);
    expect_patched_error("overlap_type", type0, GM_GGML_F64, 4, "tensors 'w.f32' and 'w.q8' overlap", NULL);   /* 128 bytes */
    expect_patched_error("offset_huge", off0, UINT64_C(1) << 63, 8, "tensor 'w.f32': offset 9223372036854775808 is past the end", NULL);
    expect_patched_error("offset_max", off2, UINT64_MAX - 31, 8, "tensor 'w.last'", "past the end");
    /* w.last: F16 [5] at data+192, the last bytes of the file; as F16 [21] it ends 32 bytes past the end */
    char msg[160];
    snprintf(msg, sizeof msg, "tensor 'w.last': data ends at byte %zu, past the end of the file (%zu bytes", data + 192 + 42, size);
    expect_patched_error("past_end", off2 - 12, 21, 8, msg, NULL);
    expect_patched_error("offset_past", off2, 224, 8, "tensor 'w.last': offset 224 is past the end of the file", NULL);
    /* an unknown type id is kept (marked); a known, unsupported one too */
    small_build(&s);
    patch(&s, type0, 99, 4);
    gm_gguf g;
    gemma_error err;
    const char *path = gb_write(&s.b, "unknown_type");
    open_ok(&g, path);
    assert_int_equal(g.tensors[0].known, 0);
    assert_int_equal(gm_gguf_tensor_check(&g, &g.tensors[0], &err), GEMMA_ERR_UNSUPPORTED);
    check_message(&err, path, "tensor 'w.f32': ggml type 99 is unknown", NULL);
    gm_gguf_close(&g);
    patch(&s, type0, 4, 4);   /* a retired id (Q4_2) */
    open_ok(&g, gb_write(&s.b, "retired_type"));
    assert_int_equal(g.tensors[0].known, 0);
    gm_gguf_close(&g);
    free(s.b.p);

    /* files of one or two tensor infos (offsets 0 and 128), then padding and `data` bytes */
    static const struct { const char *file, *name, *name2; uint32_t n_dims; uint64_t ne0; size_t data; const char *msg; } cases[] = {
        {"dup_tensor", "dup", "dup", 1, 32, 256, "tensor 'dup' appears twice"},
        {"ndims_5_real", "five", NULL, 5, 32, 128, "tensor 'five': n_dims 5"},
        {"empty_name", "", NULL, 1, 32, 128, "tensor 0: name is empty"},
        /* ends right after the infos: no padding, no data */
        {"no_data", "nodata", NULL, 1, 32, 0, "tensor data would start at byte 64, past the end of the file (62 bytes"},
        /* 2^62 floats: the row's byte count wraps to 0 in 64 bits (found by fuzz_gguf) */
        {"row_bytes", "wrap", NULL, 1, UINT64_C(1) << 62, 128, "tensor 'wrap': F32 data size overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint64_t ne[5] = {cases[i].ne0, 1, 1, 1, 1};
        gb b = {0};
        gb_header(&b, 3, cases[i].name2 ? 2 : 1, 0);
        gb_tensor(&b, cases[i].name, cases[i].n_dims, ne, GM_GGML_F32, 0);
        if (cases[i].name2) gb_tensor(&b, cases[i].name2, cases[i].n_dims, ne, GM_GGML_F32, 128);
        if (cases[i].data) {
            gb_pad(&b, 32);
            gb_zeros(&b, cases[i].data);
        }
        expect_open_error(gb_write(&b, cases[i].file), cases[i].msg, NULL);
        free(b.p);
    }
}

/* Every prefix of the small file (and of a gguf-py file) is an error, never a
 * crash: each through memory (an exact-size heap copy, so ASan sees any
 * over-read), every 7th also as a file on disk (the mmap path; disk is slow). */
static void truncate_all(const uint8_t *bytes, size_t size, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", bad_dir(), name);
    for (size_t cut = 0; cut < size; cut++) {
        gm_gguf g;
        gemma_error err;
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, bytes, cut);
        gm_mapfile mf = {.data = copy, .size = cut, .path = strdup("mem.gguf"), .is_mapped = 0};
        if (gm_gguf_open_mapped(&g, mf, &err) == GEMMA_OK) fail_msg("%s cut at %zu of %zu bytes opened", name, cut, size);
        check_message(&err, "mem.gguf", NULL, NULL);
        free(copy);
        if (cut % 7) continue;
        tu_write(path, bytes, cut);
        expect_open_error(path, NULL, NULL);
    }
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    small_file s;
    small_build(&s);
    truncate_all(s.b.p, s.b.n, "trunc_small");
    /* a cut inside the last tensor names it */
    char path[1200], msg[160];
    tu_write(tu_path(path, sizeof path, bad_dir(), "cut_last.gguf"), s.b.p, s.b.n - 1);
    snprintf(msg, sizeof msg, "tensor 'w.last': data ends at byte %zu, past the end of the file (%zu bytes", s.b.n, s.b.n - 1);
    expect_open_error(path, msg, NULL);
    free(s.b.p);
    size_t n;
    char *bytes = slurp(FIX "/metadata.gguf", &n);
    truncate_all((const uint8_t *)bytes, n, "trunc_metadata");
    free(bytes);
}

/* ----------------------------------------------------- dequantization */

static float *read_f32_file(const char *path, size_t *count) {
    size_t n;
    char *bytes = slurp(path, &n);
    assert_int_equal(n % 4, 0);
    *count = n / 4;
    return (float *)(void *)bytes;   /* gm_read_file's buffer comes from malloc: aligned for float */
}

/* GGML block sizes equal gguf-py's GGML_QUANT_SIZES for every type it knows. */
static void test_type_table(void **state) {
    (void)state;
    gm_json_doc *doc = load_json(FIX "/manifest.json");
    const gm_json *types = gm_json_get(gm_json_root(doc), "ggml_types");
    assert_true(gm_json_count(types) >= 30);
    int seen[GM_GGML_TYPE_LIMIT] = {0};
    for (size_t i = 0; i < gm_json_count(types); i++) {
        const gm_json *t = gm_json_at(types, i);
        int64_t id = -1, bs = 0, ts = 0;
        assert_true(gm_json_int(gm_json_get(t, "id"), &id) && gm_json_int(gm_json_get(t, "block_size"), &bs) &&
                    gm_json_int(gm_json_get(t, "type_size"), &ts));
        const char *name = gm_json_string(gm_json_get(t, "name"));
        if (!gm_ggml_type_known((uint32_t)id)) fail_msg("gguf-py type %s (%d) is unknown here", name, (int)id);
        assert_string_equal(gm_ggml_type_name((uint32_t)id), name);
        assert_int_equal(gm_ggml_block_size((uint32_t)id), bs);
        assert_int_equal(gm_ggml_type_size((uint32_t)id), ts);
        seen[id] = 1;
    }
    for (uint32_t id = 0; id < GM_GGML_TYPE_LIMIT + 10; id++)
        if (id >= GM_GGML_TYPE_LIMIT || !seen[id]) {
            assert_false(gm_ggml_type_known(id));
            assert_string_equal(gm_ggml_type_name(id), "unknown");
            assert_int_equal(gm_ggml_row_bytes(id, 256), 0);
        }
    gm_json_free(doc);
    /* the ids the task names */
    assert_int_equal(GM_GGML_BF16, 30);
    assert_int_equal(GM_GGML_Q6_K, 14);
    assert_int_equal(gm_ggml_row_bytes(GM_GGML_Q4_K, 512), 288);
    assert_int_equal(gm_ggml_row_bytes(GM_GGML_Q4_K, 100), 0);
    assert_int_equal(gm_ggml_row_bytes(GM_GGML_Q8_0, -32), 0);
    assert_int_equal(gm_ggml_row_bytes(GM_GGML_BF16, 7), 14);
    float out[32];
    uint8_t zero[64] = {0};
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_Q8_0, zero, out, 31), -1);
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_Q2_K, zero, out, 256), -1);
    assert_int_equal(gm_ggml_dequant_row(99, zero, out, 32), -1);
    assert_true(isnan(gm_ggml_dot_row(GM_GGML_Q8_0, zero, out, 16)));
    assert_true(isnan(gm_ggml_dot_row(GM_GGML_I8, zero, out, 16)));
}

static float next_x(uint32_t *s) { return tu_rand(s) * 4.0f; }

static void check_quant_file(const gm_json *q) {
    const char *file = gm_json_string(gm_json_get(q, "file"));
    const char *type = gm_json_string(gm_json_get(q, "type"));
    int64_t type_id;
    assert_true(gm_json_int(gm_json_get(q, "type_id"), &type_id));
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", FIX, file);
    gm_gguf g;
    gemma_error err;
    open_ok(&g, path);
    const gm_json *tensors = gm_json_get(q, "tensors");
    assert_int_equal(g.n_tensors, gm_json_count(tensors));
    uint32_t seed = 99;
    for (size_t i = 0; i < gm_json_count(tensors); i++) {
        const gm_json *e = gm_json_at(tensors, i);
        const char *name = gm_json_string(gm_json_get(e, "name"));
        const gm_gguf_tensor *t = gm_gguf_find_tensor(&g, name);
        if (!t) fail_msg("%s: no tensor '%s'", path, name);
        assert_int_equal(t->type, type_id);
        assert_string_equal(gm_ggml_type_name(t->type), type);
        assert_int_equal(gm_gguf_tensor_check(&g, t, &err), GEMMA_OK);
        const gm_json *ne = gm_json_get(e, "ne");
        assert_int_equal(t->n_dims, gm_json_count(ne));
        for (int d = 0; d < t->n_dims; d++) {
            int64_t v;
            assert_true(gm_json_int(gm_json_at(ne, (size_t)d), &v));
            assert_int_equal(t->ne[d], v);
        }
        snprintf(path, sizeof path, "%s/%s", FIX, gm_json_string(gm_json_get(e, "expected")));
        size_t count;
        float *want = read_f32_file(path, &count);
        assert_int_equal(count, gm_gguf_tensor_numel(t));
        int n = (int)t->ne[0];
        int64_t rows = gm_gguf_tensor_rows(t);
        size_t row_bytes = gm_ggml_row_bytes(t->type, n);
        assert_int_equal(row_bytes * (size_t)rows, t->nbytes);
        float *got = malloc(count * sizeof *got);
        /* row by row, from an odd address (weights are never assumed aligned) */
        uint8_t *odd = malloc(row_bytes + 1);
        float *x = malloc((size_t)n * sizeof *x);
        for (int64_t r = 0; r < rows; r++) {
            memcpy(odd + 1, t->data + (size_t)r * row_bytes, row_bytes);
            assert_int_equal(gm_ggml_dequant_row(t->type, odd + 1, got + r * n, n), 0);
        }
        if (memcmp(got, want, count * sizeof *got) != 0) {
            for (size_t k = 0; k < count; k++)
                if (memcmp(&got[k], &want[k], 4) != 0)
                    fail_msg("%s tensor '%s': value %zu is %.9g, gguf.quants.dequantize gives %.9g", file, name, k,
                             (double)got[k], (double)want[k]);
        }
        /* the whole tensor in one call walks the same blocks */
        float *all = malloc(count * sizeof *all);
        if (count <= INT32_MAX) {
            assert_int_equal(gm_ggml_dequant_row(t->type, t->data, all, (int)count), 0);
            assert_memory_equal(all, want, count * sizeof *all);
        }
        /* dot products: dequantize-then-dot, up to summation order */
        for (int64_t r = 0; r < rows; r++) {
            for (int k = 0; k < n; k++) x[k] = next_x(&seed);
            const float *w = want + r * n;
            double ref = 0, mag = 0;
            int finite = 1;
            for (int k = 0; k < n; k++) {
                finite &= isfinite(w[k]);
                ref += (double)w[k] * x[k];
                mag += fabs((double)w[k] * x[k]);
            }
            if (!finite || mag > 1e30) continue;   /* random-bit rows: NaN/inf, or sums that overflow float */
            float dot = gm_ggml_dot_row(t->type, t->data + (size_t)r * row_bytes, x, n);
            if (!(fabs(dot - ref) <= 1e-5 * mag + 1e-30))
                fail_msg("%s tensor '%s' row %lld: dot %.9g, dequant+dot %.9g (|w||x| %.3g)", file, name, (long long)r,
                         (double)dot, ref, mag);
        }
        free(all);
        free(x);
        free(odd);
        free(got);
        free(want);
    }
    gm_gguf_close(&g);
}

static void test_dequant_matches_gguf_py(void **state) {
    (void)state;
    gm_json_doc *doc = load_json(FIX "/manifest.json");
    const gm_json *quant = gm_json_get(gm_json_root(doc), "quant");
    assert_int_equal(gm_json_count(quant), 11);   /* every supported type */
    for (size_t i = 0; i < gm_json_count(quant); i++) check_quant_file(gm_json_at(quant, i));
    gm_json_free(doc);
}

/* Hand-made blocks with known values, independent of the Python fixtures. */
static void test_known_blocks(void **state) {
    (void)state;
    float y[256];
    /* Q8_0: d = 0.5 (f16 0x3800), q = -128..-97 */
    uint8_t q8[34] = {0x00, 0x38};
    for (int i = 0; i < 32; i++) q8[2 + i] = (uint8_t)(int8_t)(-128 + i);
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_Q8_0, q8, y, 32), 0);
    for (int i = 0; i < 32; i++) assert_true(y[i] == 0.5f * (float)(-128 + i));
    /* Q4_0: d = 2, nibble j low = j & 15, high = 15 - j */
    uint8_t q4[18] = {0x00, 0x40};
    for (int j = 0; j < 16; j++) q4[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_Q4_0, q4, y, 32), 0);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 2.0f * (float)(j - 8));
        assert_true(y[16 + j] == 2.0f * (float)(7 - j));
    }
    /* Q4_K: d = 1, dmin = 1, sub-block 5 has scale 33 and min 17 (6-bit, split across bytes) */
    uint8_t q4k[144] = {0x00, 0x3c, 0x00, 0x3c};
    uint8_t *sc = q4k + 4;
    sc[8 + 1] = (uint8_t)((33 & 15) | ((17 & 15) << 4));   /* low 4 bits of scale/min 5 */
    sc[1] = (uint8_t)((33 >> 4) << 6);                      /* high 2 bits of scale 5 */
    sc[4 + 1] = (uint8_t)((17 >> 4) << 6);                  /* high 2 bits of min 5 */
    for (int l = 0; l < 32; l++) q4k[16 + 64 + l] = (uint8_t)((l & 15) << 4);   /* sub-block 5 = high nibbles of chunk 2 */
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_Q4_K, q4k, y, 256), 0);
    for (int l = 0; l < 32; l++) assert_true(y[160 + l] == 33.0f * (float)(l & 15) - 17.0f);
    for (int l = 0; l < 32; l++) assert_true(y[l] == 0.0f);
    /* BF16 and F16 from odd addresses */
    uint8_t h[5] = {0, 0x80, 0x3f, 0x00, 0xc0};   /* bf16 1.0, -2.0 at offset 1 */
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_BF16, h + 1, y, 2), 0);
    assert_true(y[0] == 1.0f && y[1] == -2.0f);
    uint8_t f16[5] = {0, 0x00, 0x3c, 0x01, 0x00};   /* 1.0, smallest subnormal */
    assert_int_equal(gm_ggml_dequant_row(GM_GGML_F16, f16 + 1, y, 2), 0);
    assert_true(y[0] == 1.0f && y[1] == ldexpf(1.0f, -24));
}

/* ------------------------------------------------------- the real model */

static int find_real_model(char *path, size_t n) {
    const char *env = getenv("GEMMA_GGUF_270M");
    if (env && *env) {
        snprintf(path, n, "%s", env);
        return 1;
    }
    glob_t gl;
    int found = 0;
    if (glob(GEMMA_FIXTURES_DIR "/../../models/gemma3-270m/*.gguf", 0, NULL, &gl) == 0 && gl.gl_pathc > 0) {
        snprintf(path, n, "%s", gl.gl_pathv[0]);
        found = 1;
    }
    globfree(&gl);
    return found;
}

static void test_real_270m(void **state) {
    (void)state;
    char path[1200];
    if (!find_real_model(path, sizeof path)) {
        print_message("real Gemma 3 270M GGUF not found (GEMMA_GGUF_270M or models/gemma3-270m/*.gguf): hash check skipped\n");
        skip();
    }
    gm_json_doc *doc = load_json(FIX "/real_270m_hashes.json");
    gm_gguf g;
    gemma_error err;
    open_ok(&g, path);
    int64_t file_size;
    assert_true(gm_json_int(gm_json_get(gm_json_root(doc), "file_size"), &file_size));
    if ((int64_t)g.mf.size != file_size)
        fail_msg("%s is %zu bytes, the hashes are for a file of %llu bytes", path, g.mf.size, (unsigned long long)file_size);
    /* a few metadata values */
    const char *arch;
    uint32_t u;
    float eps;
    assert_int_equal(gm_gguf_get_str(&g, "general.architecture", &arch, NULL, &err), GEMMA_OK);
    assert_string_equal(arch, "gemma3");
    assert_int_equal(gm_gguf_get_u32(&g, "gemma3.block_count", &u, &err), GEMMA_OK);
    assert_int_equal(u, 18);
    assert_int_equal(gm_gguf_get_u32(&g, "gemma3.embedding_length", &u, &err), GEMMA_OK);
    assert_int_equal(u, 640);
    assert_int_equal(gm_gguf_get_f32(&g, "gemma3.attention.layer_norm_rms_epsilon", &eps, &err), GEMMA_OK);
    assert_true(eps == 1e-6f);
    const gm_gguf_value *tokens;
    assert_int_equal(gm_gguf_get_arr(&g, "tokenizer.ggml.tokens", GM_GGUF_STRING, &tokens, &err), GEMMA_OK);
    assert_int_equal(tokens->count, 262144);
    size_t len;
    const char *tok = gm_gguf_arr_str(tokens, 2, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(tok, "<bos>", 5);
    assert_int_equal(g.n_tensors, 236);

    const gm_json *list = gm_json_get(gm_json_root(doc), "tensors");
    int checked[GM_GGML_TYPE_LIMIT] = {0};
    for (size_t i = 0; i < gm_json_count(list); i++) {
        const gm_json *e = gm_json_at(list, i);
        const char *name = gm_json_string(gm_json_get(e, "name"));
        const gm_gguf_tensor *t = gm_gguf_find_tensor(&g, name);
        if (!t) fail_msg("%s: no tensor '%s'", path, name);
        assert_string_equal(gm_ggml_type_name(t->type), gm_json_string(gm_json_get(e, "type")));
        const gm_json *ne = gm_json_get(e, "ne");
        for (int d = 0; d < t->n_dims; d++) {
            int64_t v;
            assert_true(gm_json_int(gm_json_at(ne, (size_t)d), &v));
            assert_int_equal(t->ne[d], v);
        }
        int n = (int)t->ne[0];
        size_t row_bytes = gm_ggml_row_bytes(t->type, n);
        float *row = malloc((size_t)n * sizeof *row);
        sha256_ctx c;
        sha256_init(&c);
        for (int64_t r = 0; r < gm_gguf_tensor_rows(t); r++) {
            assert_int_equal(gm_ggml_dequant_row(t->type, t->data + (size_t)r * row_bytes, row, n), 0);
            sha256_update(&c, row, (size_t)n * sizeof *row);
        }
        free(row);
        char hex[65];
        sha256_final_hex(&c, hex);
        const char *want = gm_json_string(gm_json_get(e, "sha256"));
        if (strcmp(hex, want) != 0) fail_msg("%s tensor '%s' (%s): sha256 %s, expected %s", path, name, gm_ggml_type_name(t->type), hex, want);
        checked[t->type]++;
    }
    print_message("real 270M: %zu tensors match gguf-py (F32 %d, Q8_0 %d, Q5_0 %d, Q4_K %d, Q6_K %d)\n", gm_json_count(list),
                  checked[GM_GGML_F32], checked[GM_GGML_Q8_0], checked[GM_GGML_Q5_0], checked[GM_GGML_Q4_K],
                  checked[GM_GGML_Q6_K]);
    /* every tensor of the model is loadable */
    for (size_t i = 0; i < g.n_tensors; i++) assert_int_equal(gm_gguf_tensor_check(&g, &g.tensors[i], &err), GEMMA_OK);
    gm_gguf_close(&g);
    gm_json_free(doc);
}

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    sha256_ctx c;
    sha256_init(&c);
    sha256_final_hex(&c, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_init(&c);
    const char *abc = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_update(&c, abc, 10);
    sha256_update(&c, abc + 10, strlen(abc) - 10);
    sha256_final_hex(&c, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_values),
        cmocka_unit_test(test_metadata_arrays),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_metadata_tensors),
        cmocka_unit_test(test_version_2),
        cmocka_unit_test(test_small_file_and_edge_values),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_known_blocks),
        cmocka_unit_test(test_dequant_matches_gguf_py),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_real_270m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
