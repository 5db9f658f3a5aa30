/* test_kernels.c - every SIMD kernel against its scalar twin (ref.c) on random
 * data: odd lengths, unaligned weight pointers, all f16 bit patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "kernels/kernels.h"

static uint32_t rng = 99;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static const int lengths[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000, 2560};

static void close_enough(const char *what, const char *isa, int n, double got, double ref, double mag) {
    if (fabs(got - ref) > 1e-5 * mag + 1e-6) fail_msg("%s %s n=%d: %.9g vs scalar %.9g", isa, what, n, got, ref);
}

static void check_table(const gm_kernels *k) {
    static float a[2600], x[2600], y0[2600], y1[2600];
    static uint8_t raw[2600 * 4 + 8];
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int n = lengths[li];
        for (int i = 0; i < n; i++) a[i] = frand(), x[i] = frand();
        double mag = 0;
        for (int i = 0; i < n; i++) mag += fabs((double)a[i] * x[i]);
        close_enough("dot_f32", k->name, n, k->dot_f32(a, x, n), gm_kernels_ref.dot_f32(a, x, n), mag);
        for (int shift = 0; shift < 4; shift++) {
            uint8_t *w = raw + shift;
            memcpy(w, a, (size_t)n * 4);
            close_enough("dot_wf32", k->name, n, k->dot_wf32(w, x, n), gm_kernels_ref.dot_wf32(w, x, n), mag);
            for (int i = 0; i < n; i++) {
                uint16_t h = gm_f32_to_bf16(a[i]);
                memcpy(w + 2 * i, &h, 2);
            }
            close_enough("dot_bf16", k->name, n, k->dot_bf16(w, x, n), gm_kernels_ref.dot_bf16(w, x, n), mag);
            k->bf16_to_f32(w, y0, n);
            gm_kernels_ref.bf16_to_f32(w, y1, n);
            assert_memory_equal(y0, y1, (size_t)n * 4);
            for (int i = 0; i < n; i++) {
                uint16_t h = (uint16_t)(rng = rng * 1664525u + 1013904223u) & 0x3bffu;  /* |v| < 1, incl. subnormals */
                memcpy(w + 2 * i, &h, 2);
            }
            double mag16 = 0;
            for (int i = 0; i < n; i++) mag16 += fabs(gm_load_float(w, GM_DT_F16, (size_t)i) * x[i]);
            close_enough("dot_f16", k->name, n, k->dot_f16(w, x, n), gm_kernels_ref.dot_f16(w, x, n), mag16);
        }
        memcpy(y0, x, (size_t)n * 4);
        memcpy(y1, x, (size_t)n * 4);
        k->axpy(0.37f, a, y0, n);
        gm_kernels_ref.axpy(0.37f, a, y1, n);
        for (int i = 0; i < n; i++) assert_true(fabsf(y0[i] - y1[i]) <= 1e-6f);
    }
    /* every f16 bit pattern widens exactly like the scalar reference */
    static uint16_t all[65536];
    static float f0[65536], f1[65536];
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    k->f16_to_f32(all, f0, 65536);
    gm_kernels_ref.f16_to_f32(all, f1, 65536);
    for (int i = 0; i < 65536; i++) {
        uint32_t u0, u1;
        memcpy(&u0, &f0[i], 4);
        memcpy(&u1, &f1[i], 4);
        if (isnan(f1[i])) assert_true(isnan(f0[i]));
        else if (u0 != u1) fail_msg("%s f16 0x%04x: %08x vs %08x", k->name, i, u0, u1);
    }
}

static void test_scalar_conversions(void **state) {
    (void)state;
    assert_true(gm_f16_to_f32(0x3c00) == 1.0f);
    assert_true(gm_f16_to_f32(0xc000) == -2.0f);
    assert_true(gm_f16_to_f32(0x0001) == ldexpf(1.0f, -24));       /* smallest subnormal */
    assert_true(gm_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(gm_f16_to_f32(0x7c00)));
    assert_true(isnan(gm_f16_to_f32(0x7e00)));
    assert_true(gm_bf16_to_f32(0x3f80) == 1.0f);
    assert_int_equal(gm_f32_to_bf16(1.0f), 0x3f80);
    /* round to nearest even: sqrt(2560) = 50.596 -> 50.5, sqrt(64) exact */
    assert_true(gm_bf16_round(sqrtf(2560.0f)) == 50.5f);
    assert_true(gm_bf16_round(8.0f) == 8.0f);
    assert_true(gm_bf16_round(sqrtf(1152.0f)) == 34.0f);
}

static void test_every_table_matches_scalar(void **state) {
    (void)state;
    const char *names[] = {"avx2", "avx512", "neon"};
    for (size_t i = 0; i < 3; i++) {
        const gm_kernels *k = gm_kernels_by_name(names[i]);
        if (!k) {
            print_message("%s: not available on this CPU\n", names[i]);
            continue;
        }
        check_table(k);
        print_message("%s: matches scalar\n", names[i]);
    }
    check_table(&gm_kernels_ref);
    assert_non_null(gm_kernels_get());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_conversions),
        cmocka_unit_test(test_every_table_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
