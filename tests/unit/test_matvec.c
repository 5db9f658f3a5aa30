/* test_matvec.c - the decode kernel (kernels.h mlx_prep_x + matvec_mlx) of
 * every ISA against the scalar twin, and both against a double-precision sum
 * of the dequantized weights: every bit width, group size and scale dtype,
 * row counts that leave tails of every size, unaligned weight rows.  Also the
 * machine probe's FMA loops (kernels/probe.h), which must agree exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "kernels/probe.h"

static uint32_t rng = 7;
static uint32_t next(void) { return rng = rng * 1664525u + 1013904223u; }
static float frand(void) { return (float)(next() >> 8) / 16777216.0f * 2.0f - 1.0f; }

static const char *const isas[] = {"avx2", "avx512", "neon"};

static unsigned element(const uint8_t *packed, int bits, int k) {
    unsigned v = 0;
    for (int b = 0; b < bits; b++) {
        int bit = k * bits + b;
        v |= (unsigned)((packed[bit / 8] >> (bit % 8)) & 1) << b;
    }
    return v;
}

static void store_scale(uint8_t *p, int dt, size_t i, float v) {
    if (dt == GM_DT_F32) memcpy(p + 4 * i, &v, 4);
    else {
        uint16_t h = dt == GM_DT_BF16 ? gm_f32_to_bf16(v) : gm_f32_to_f16(v);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void check_shape(int bits, int gs, int cols, int rows, int dt) {
    size_t row_bytes = (size_t)cols * (size_t)bits / 8, groups = (size_t)(cols / gs);
    size_t esz = dt == GM_DT_F32 ? 4 : 2;
    uint8_t *raw = malloc(row_bytes * (size_t)rows + 3), *data = raw + 3;   /* unaligned on purpose */
    uint8_t *sc = malloc(esz * groups * (size_t)rows), *bi = malloc(esz * groups * (size_t)rows);
    float *x = malloc((size_t)cols * 4), *xp = malloc((size_t)cols * 4), *xsum = malloc(groups * 4);
    float *y_ref = malloc((size_t)rows * 4), *y = malloc((size_t)rows * 4);
    for (size_t i = 0; i < row_bytes * (size_t)rows; i++) data[i] = (uint8_t)(next() >> 24);
    for (size_t i = 0; i < groups * (size_t)rows; i++) {
        store_scale(sc, dt, i, 0.01f + 0.02f * fabsf(frand()));
        store_scale(bi, dt, i, 0.1f * frand());
    }
    for (int i = 0; i < cols; i++) x[i] = frand();
    for (size_t g = 0; g < groups; g++) {
        xsum[g] = 0;
        for (int i = 0; i < gs; i++) xsum[g] += x[g * (size_t)gs + (size_t)i];
    }
    gm_mlx_rows w = {data, row_bytes, sc, bi, dt, bits, gs, cols};
    /* the truth in double, and its magnitude for the tolerance */
    double *truth = malloc((size_t)rows * sizeof(double)), *mag = malloc((size_t)rows * sizeof(double));
    for (int r = 0; r < rows; r++) {
        double t = 0, m = 0;
        for (int k = 0; k < cols; k++) {
            size_t g = (size_t)r * groups + (size_t)(k / gs);
            double v = gm_load_float(sc, (gm_dtype)dt, g) * element(data + (size_t)r * row_bytes, bits, k) +
                       gm_load_float(bi, (gm_dtype)dt, g);
            t += v * x[k];
            m += fabs(v * x[k]);
        }
        truth[r] = t;
        mag[r] = m;
    }
    gm_kernels_ref.mlx_prep_x(x, cols, bits, gs, xp);
    gm_kernels_ref.matvec_mlx(&w, 0, rows, xp, xsum, y_ref);
    for (int r = 0; r < rows; r++)
        if (fabs(y_ref[r] - truth[r]) > 1e-5 * mag[r] + 1e-6)
            fail_msg("scalar %d-bit g%d cols %d row %d: %.9g vs %.9g", bits, gs, cols, r, y_ref[r], truth[r]);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const gm_kernels *k = gm_kernels_by_name(isas[i]);
        if (!k) continue;
        k->mlx_prep_x(x, cols, bits, gs, xp);
        /* a sub-range too: rows [r0, r1) land at y[0 ..] */
        int r0 = rows > 2 ? 1 : 0;
        memset(y, 0xff, (size_t)rows * 4);
        k->matvec_mlx(&w, r0, rows, xp, xsum, y);
        for (int r = r0; r < rows; r++)
            if (fabs(y[r - r0] - y_ref[r]) > 1e-5 * mag[r] + 1e-6)
                fail_msg("%s %d-bit g%d cols %d dtype %d row %d: %.9g vs scalar %.9g", k->name, bits, gs, cols, dt,
                         r, y[r - r0], y_ref[r]);
    }
    free(raw), free(sc), free(bi), free(x), free(xp), free(xsum), free(y_ref), free(y), free(truth), free(mag);
}

static void test_matvec_mlx_twins(void **state) {
    (void)state;
    static const int bits[] = {2, 3, 4, 5, 6, 8}, gss[] = {32, 64, 128}, colss[] = {128, 384, 640, 1152},
                     rowss[] = {1, 2, 3, 4, 5, 7, 9, 13};
    static const int dts[] = {GM_DT_BF16, GM_DT_F16, GM_DT_F32};
    for (size_t b = 0; b < 6; b++)
        for (size_t g = 0; g < 3; g++)
            for (size_t c = 0; c < 4; c++) {
                if (colss[c] % gss[g]) continue;
                for (size_t d = 0; d < 3; d++)
                    check_shape(bits[b], gss[g], colss[c], rowss[(b + g + c + d) % 8], dts[d]);
            }
    for (size_t r = 0; r < 8; r++) check_shape(4, 64, 640, rowss[r], GM_DT_BF16);
}

static void test_probe_fma_twins(void **state) {
    (void)state;
    int lanes;
    float ref = gm_probe_fma_loop("scalar", 1000, &lanes);
    assert_int_equal(lanes, 1);
    assert_true(ref > 12.0f && ref < 40.0f);   /* 12 chains that started at 1 .. 2.4 and shrank slightly */
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        float v = gm_probe_fma_loop(isas[i], 1000, &lanes);
        if (!gm_kernels_by_name(isas[i])) {
            assert_int_equal(lanes, 0);
            continue;
        }
        assert_true(lanes >= 4);
        if (v != ref) fail_msg("%s fma loop %.9g vs scalar %.9g", isas[i], v, ref);
    }
}

static void test_probe_measures(void **state) {
    (void)state;
    gm_pool *pool = gm_pool_create(1);   /* no worker threads: the NEON step runs under qemu-user, whose pthread_create hangs */
    assert_non_null(pool);
    assert_true(gm_probe_fma_gflops(pool, 0.05) > 0);   /* a rate (emulators are slow) */
    assert_true(gm_probe_read_gbs(pool, (size_t)1 << 24, 2) > 0);
    gm_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matvec_mlx_twins),
        cmocka_unit_test(test_probe_fma_twins),
        cmocka_unit_test(test_probe_measures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
