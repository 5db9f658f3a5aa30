/* test_quant.c - the MLX affine format: our packer reproduces mlx.core.quantize
 * bit for bit (golden vectors from MLX itself), and every kernel's dot product
 * and dequantization agree with the definition w = scale * q + bias. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "quant/mlx_affine.h"
#include "unit/mlx_golden.h"

static void test_quantize_matches_mlx(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof golden_cases / sizeof golden_cases[0]; c++) {
        const golden_case *g = &golden_cases[c];
        uint8_t packed[128];
        float s[4], b[4];
        gm_mlx_quantize_row(golden_w, 128, g->bits, g->group_size, packed, s, b);
        assert_int_equal(gm_mlx_packed_row_bytes(128, g->bits), 128 * g->bits / 8);
        if (memcmp(packed, g->q, 128 * (size_t)g->bits / 8) != 0) fail_msg("bits %d group %d: packed levels differ from MLX", g->bits, g->group_size);
        for (int i = 0; i < 128 / g->group_size; i++) {
            assert_true(s[i] == g->s[i]);
            assert_true(b[i] == g->b[i]);
        }
        /* every level reads back, and dequantizes within half a step */
        for (int k = 0; k < 128; k++) {
            unsigned q = gm_mlx_level(packed, g->bits, k);
            assert_true(q < (1u << g->bits));
            int grp = k / g->group_size;
            float w = s[grp] * (float)q + b[grp];
            /* the edge of larger magnitude is exact; clipping the other edge costs at most one step */
            assert_true(fabsf(w - golden_w[k]) <= fabsf(s[grp]) * 1.0001f);
        }
    }
}

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static void check_table(const gm_kernels *k) {
    const int bits_list[] = {2, 3, 4, 5, 6, 8}, gs_list[] = {32, 64, 128};
    static float w[1024], x[1024], ref_deq[1024], got_deq[1024], s[32], b[32], xsum[32];
    static uint8_t buf[1024 + 8];
    for (size_t bi = 0; bi < 6; bi++) {
        for (size_t gi = 0; gi < 3; gi++) {
            for (int n = gs_list[gi]; n <= 1024; n *= 4) {
                int bits = bits_list[bi], gs = gs_list[gi];
                for (int i = 0; i < n; i++) w[i] = frand(), x[i] = frand();
                for (int shift = 0; shift < 4; shift += 3) {   /* aligned and unaligned packed rows */
                    uint8_t *packed = buf + shift;
                    gm_mlx_quantize_row(w, n, bits, gs, packed, s, b);
                    for (int g = 0; g < n / gs; g++) {
                        xsum[g] = 0;
                        for (int i = 0; i < gs; i++) xsum[g] += x[g * gs + i];
                    }
                    gm_kernels_ref.dequant_mlx(packed, s, b, bits, gs, ref_deq, n);
                    k->dequant_mlx(packed, s, b, bits, gs, got_deq, n);
                    double exact = 0, mag = 0;
                    for (int i = 0; i < n; i++) {
                        int g = i / gs;
                        float def = s[g] * (float)gm_mlx_level(packed, bits, i) + b[g];
                        assert_true(fabsf(ref_deq[i] - def) == 0.0f);
                        if (fabsf(got_deq[i] - def) > 1e-6f * (fabsf(s[g]) * 255 + fabsf(b[g])))
                            fail_msg("%s dequant bits %d gs %d n %d [%d]: %g vs %g", k->name, bits, gs, n, i,
                                     got_deq[i], def);
                        exact += (double)def * x[i];
                        mag += fabs((double)def * x[i]);
                    }
                    float r = gm_kernels_ref.dot_mlx(packed, s, b, xsum, bits, gs, x, n);
                    float v = k->dot_mlx(packed, s, b, xsum, bits, gs, x, n);
                    if (fabs(r - exact) > 1e-5 * (mag + 1) || fabs(v - exact) > 1e-5 * (mag + 1))
                        fail_msg("%s dot bits %d gs %d n %d: ref %g simd %g exact %g", k->name, bits, gs, n, r, v,
                                 exact);
                }
            }
        }
    }
}

static void test_mlx_kernels_every_table(void **state) {
    (void)state;
    const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    int checked = 0;
    for (size_t i = 0; i < 4; i++) {
        const gm_kernels *k = gm_kernels_by_name(names[i]);
        if (!k) continue;
        check_table(k);
        checked++;
    }
    assert_true(checked >= 1);
    print_message("checked %d kernel tables\n", checked);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_matches_mlx),
        cmocka_unit_test(test_mlx_kernels_every_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
