/* test_safetensors.c - the safetensors reader on valid files: dtypes, shapes,
 * data pointers into the map, several files, lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/safetensors.h"
#include "unit/testutil.h"

static void test_reads_every_dtype(void **state) {
    (void)state;
    const char *dir = tu_dir("st_dtypes");
    char p[1200];
    tu_st st = {0};
    float f32[6] = {1, 2, 3, 4, 5, 6};
    uint16_t bf16[3] = {0x3f80, 0xc000, 0x4040};  /* 1, -2, 3 */
    uint16_t f16[2] = {0x3c00, 0xc500};           /* 1, -5 */
    uint32_t u32[2] = {0xdeadbeef, 7};
    uint8_t u8[3] = {1, 2, 3};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s0[2] = {0, 4};
    tu_st_add(&st, "u8", "U8", s3, 1, u8, 3);      /* first, so the next ones are unaligned */
    tu_st_add(&st, "a.f32", "F32", s23, 2, f32, sizeof f32);
    tu_st_add(&st, "b.bf16", "BF16", s3, 1, bf16, sizeof bf16);
    tu_st_add(&st, "c.f16", "F16", s2, 1, f16, sizeof f16);
    tu_st_add(&st, "d.u32", "U32", s2, 1, u32, sizeof u32);
    tu_st_add(&st, "e.empty", "F32", s0, 2, NULL, 0);
    tu_st_write(&st, tu_path(p, sizeof p, dir, "x.safetensors"));

    gm_tensor_set ts = {0};
    gemma_error err;
    assert_int_equal(gm_tensors_add_file(&ts, p, &err), GEMMA_OK);
    assert_int_equal(ts.n_tensors, 6);
    const gm_tensor *a = gm_tensors_find(&ts, "a.f32");
    assert_non_null(a);
    assert_int_equal(a->dtype, GM_DT_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(gm_tensor_numel(a), 6);
    for (int i = 0; i < 6; i++) assert_true(gm_load_float(a->data, a->dtype, (size_t)i) == f32[i]);
    const gm_tensor *b = gm_tensors_find(&ts, "b.bf16");
    assert_true(gm_load_float(b->data, b->dtype, 1) == -2.0f);
    const gm_tensor *c = gm_tensors_find(&ts, "c.f16");
    assert_true(gm_load_float(c->data, c->dtype, 1) == -5.0f);
    const gm_tensor *d = gm_tensors_find(&ts, "d.u32");
    uint32_t w;
    memcpy(&w, d->data, 4);
    assert_int_equal(w, 0xdeadbeef);
    assert_int_equal(gm_tensors_find(&ts, "e.empty")->nbytes, 0);
    assert_null(gm_tensors_find(&ts, "missing"));
    assert_null(gm_tensors_find(&ts, "a.f3"));
    /* data points into the mapped file, not a copy */
    assert_true(a->data >= ts.files[0].data && a->data < ts.files[0].data + ts.files[0].size);
    assert_string_equal(gm_tensors_file_of(&ts, a), p);
    char sb[64];
    assert_string_equal(gm_shape_str(a->shape, a->ndim, sb, sizeof sb), "[2, 3]");
    gm_tensors_free(&ts);
}

static void test_many_tensors_and_files(void **state) {
    (void)state;
    const char *dir = tu_dir("st_many");
    char p[1200];
    static float vals[3000];
    for (int i = 0; i < 3000; i++) vals[i] = (float)i;
    gm_tensor_set ts = {0};
    gemma_error err;
    for (int file = 0; file < 3; file++) {
        tu_st *st = calloc(1, sizeof *st);
        for (int i = 0; i < 200; i++) {
            char name[64];
            snprintf(name, sizeof name, "f%d.t%d", file, i);
            int64_t sh[1] = {5};
            tu_st_add(st, name, "F32", sh, 1, vals + 5 * i + 1000 * file, 20);
        }
        char fn[64];
        snprintf(fn, sizeof fn, "s%d.safetensors", file);
        tu_st_write(st, tu_path(p, sizeof p, dir, fn));
        assert_int_equal(gm_tensors_add_file(&ts, p, &err), GEMMA_OK);
        free(st);
    }
    assert_int_equal(ts.n_files, 3);
    assert_int_equal(ts.n_tensors, 600);
    for (int file = 0; file < 3; file++)
        for (int i = 0; i < 200; i++) {
            char name[64];
            snprintf(name, sizeof name, "f%d.t%d", file, i);
            const gm_tensor *t = gm_tensors_find(&ts, name);
            assert_non_null(t);
            assert_int_equal(t->file, file);
            assert_true(gm_load_float(t->data, GM_DT_F32, 2) == (float)(5 * i + 1000 * file + 2));
        }
    /* adding a file that repeats a name fails and leaves the set unchanged */
    assert_int_not_equal(gm_tensors_add_file(&ts, p, &err), GEMMA_OK);
    assert_non_null(strstr(err.message, "appears twice"));
    assert_int_equal(ts.n_tensors, 600);
    assert_non_null(gm_tensors_find(&ts, "f2.t199"));
    gm_tensors_free(&ts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_dtype),
        cmocka_unit_test(test_many_tensors_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
