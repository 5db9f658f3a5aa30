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
#include "kernels/mlx_rows.h"
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

/* The int8 path (matmul_mlx_q8): the quantized inputs against x, the scalar
 * kernel against a double sum of its contract, every twin against the
 * scalar one, and the result against the exact product within the bound
 * the input rounding allows (sum_k |w_k| * d_k / 2). */
static void check_q8_shape(int bits, int gs, int cols, int rows, int n_tok, int dt) {
    size_t row_bytes = (size_t)cols * (size_t)bits / 8, groups = (size_t)(cols / gs);
    size_t esz = dt == GM_DT_F32 ? 4 : 2, ds = gm_mlx_q8_dxv_floats(cols), ldy = (size_t)rows + 3;
    uint8_t *raw = malloc(row_bytes * (size_t)rows + 5), *data = raw + 5;
    uint8_t *sc = malloc(esz * groups * (size_t)rows), *bi = malloc(esz * groups * (size_t)rows);
    float *x = malloc((size_t)n_tok * (size_t)cols * 4), *xsum = malloc((size_t)n_tok * groups * 4);
    int8_t *xq = malloc((size_t)n_tok * (size_t)cols);
    float *dxv = malloc((size_t)n_tok * ds * 4), *y_ref = malloc((size_t)n_tok * ldy * 4), *y = malloc((size_t)n_tok * ldy * 4);
    double *mags = malloc((size_t)n_tok * (size_t)rows * sizeof(double));
    for (size_t i = 0; i < row_bytes * (size_t)rows; i++) data[i] = (uint8_t)(next() >> 24);
    for (size_t i = 0; i < groups * (size_t)rows; i++) {
        store_scale(sc, dt, i, 0.01f + 0.02f * fabsf(frand()));
        store_scale(bi, dt, i, 0.1f * frand());
    }
    for (int t = 0; t < n_tok; t++) {
        float *xt = x + (size_t)t * (size_t)cols;
        for (int i = 0; i < cols; i++) xt[i] = frand() * (t == 1 ? 1e-3f : 3.0f);
        if (t == 2) memset(xt, 0, 32 * sizeof(float));   /* an all-zero input block */
        for (size_t g = 0; g < groups; g++) {
            float a = 0;
            for (int i = 0; i < gs; i++) a += xt[g * (size_t)gs + (size_t)i];
            xsum[(size_t)t * groups + g] = a;
        }
        gm_mlx_quantize_x8(xt, cols, bits, xq + (size_t)t * (size_t)cols, dxv + (size_t)t * ds);
    }
    /* where value k of a row sits in xq, and its lane's d */
#define XQ_AT(t, k) (xq[(size_t)(t) * (size_t)cols + (size_t)(bits == 4 ? ((k) / 128 * 128 + ((k) % 128 & 1) * 64 + (k) % 128 / 2) : (k))])
#define D_AT(t, k) (dxv[(size_t)(t) * ds + (size_t)((k) / gm_mlx_q8_chunk(bits) * 16 + (k) % gm_mlx_q8_chunk(bits) / (gm_mlx_q8_chunk(bits) / 16))])
    for (int t = 0; t < n_tok; t++)
        for (int k = 0; k < cols; k++) {
            float v = x[(size_t)t * (size_t)cols + (size_t)k], d = D_AT(t, k), back = (float)XQ_AT(t, k) * d;
            if (!(fabsf(back - v) <= 0.5f * d * 1.0001f + 1e-30f))
                fail_msg("quantize %d-bit token %d value %d: %g -> %d * %g", bits, t, k, v, XQ_AT(t, k), d);
        }
    gm_mlx_rows w = {data, row_bytes, sc, bi, dt, bits, gs, cols};
    memset(y_ref, 0xff, (size_t)n_tok * ldy * 4);
    gm_kernels_ref.matmul_mlx_q8(&w, 0, rows, n_tok, xq, dxv, xsum, y_ref, ldy);
    for (int t = 0; t < n_tok; t++)
        for (int r = 0; r < rows; r++) {
            const uint8_t *row = data + (size_t)r * row_bytes;
            double truth = 0, mag = 0, exact = 0, bound = 0;
            for (int k = 0; k < cols; k++) {
                size_t g = (size_t)r * groups + (size_t)(k / gs);
                double s = gm_load_float(sc, (gm_dtype)dt, g), b = gm_load_float(bi, (gm_dtype)dt, g);
                double q = element(row, bits, k), xv = x[(size_t)t * (size_t)cols + (size_t)k];
                truth += s * q * XQ_AT(t, k) * D_AT(t, k);
                mag += fabs(s * q * XQ_AT(t, k) * D_AT(t, k)) + fabs(b * xv);
                exact += (s * q + b) * xv;
                bound += fabs(s * q) * 0.5 * D_AT(t, k);
            }
            for (size_t g = 0; g < groups; g++) truth += gm_load_float(bi, (gm_dtype)dt, (size_t)r * groups + g) * xsum[(size_t)t * groups + g];
            double got = y_ref[(size_t)t * ldy + (size_t)r];
            mags[(size_t)t * (size_t)rows + (size_t)r] = mag;
            if (fabs(got - truth) > 1e-5 * mag + 1e-6)
                fail_msg("scalar q8 %d-bit g%d cols %d token %d row %d: %.9g vs %.9g", bits, gs, cols, t, r, got, truth);
            if (fabs(got - exact) > bound * 1.001 + 1e-5 * mag + 1e-6)
                fail_msg("q8 %d-bit g%d token %d row %d: %.9g is %.3g from the exact %.9g (bound %.3g)", bits, gs, t,
                         r, got, fabs(got - exact), exact, bound);
        }
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const gm_kernels *k = gm_kernels_by_name(isas[i]);
        if (!k) continue;
        int r0 = rows > 2 ? 1 : 0;
        memset(y, 0xff, (size_t)n_tok * ldy * 4);
        k->matmul_mlx_q8(&w, r0, rows, n_tok, xq, dxv, xsum, y, ldy);
        for (int t = 0; t < n_tok; t++)
            for (int r = 0; r < (int)ldy; r++) {
                float got = y[(size_t)t * ldy + (size_t)r];
                if (r >= rows - r0) {   /* past the range: untouched */
                    uint32_t u;
                    memcpy(&u, &got, 4);
                    if (u != 0xffffffffu) fail_msg("%s q8 wrote y[%d][%d] outside its rows", k->name, t, r);
                    continue;
                }
                double ref = y_ref[(size_t)t * ldy + (size_t)(r + r0)];
                double tol = 1e-5 * mags[(size_t)t * (size_t)rows + (size_t)(r + r0)] + 1e-6;
                if (fabs(got - ref) > tol)
                    fail_msg("%s q8 %d-bit g%d cols %d dtype %d token %d row %d: %.9g vs scalar %.9g", k->name, bits,
                             gs, cols, dt, t, r + r0, got, ref);
            }
    }
#undef XQ_AT
#undef D_AT
    free(raw), free(sc), free(bi), free(x), free(xsum), free(xq), free(dxv), free(y_ref), free(y), free(mags);
}

static void test_matmul_mlx_q8_twins(void **state) {
    (void)state;
    static const int bits[] = {4, 8}, gss[] = {32, 64, 128}, colss[] = {128, 256, 640, 1152},
                     rowss[] = {1, 2, 3, 4, 5, 7, 9, 13}, toks[] = {1, 2, 3, 5};
    static const int dts[] = {GM_DT_BF16, GM_DT_F16, GM_DT_F32};
    int n = 0;
    for (size_t b = 0; b < 2; b++)
        for (size_t g = 0; g < 3; g++)
            for (size_t c = 0; c < 4; c++) {
                if (!gm_mlx_q8_ok(bits[b], gss[g], colss[c])) continue;
                for (size_t d = 0; d < 3; d++, n++)
                    check_q8_shape(bits[b], gss[g], colss[c], rowss[(b + g + c + d) % 8], toks[(g + c + d) % 4], dts[d]);
            }
    assert_true(n >= 50);
    /* rows of more than 256 groups: the AVX2 kernel widens scales a segment at a time */
    check_q8_shape(4, 32, 8448, 5, 3, GM_DT_BF16);
    check_q8_shape(8, 32, 8448, 3, 2, GM_DT_F16);
    assert_false(gm_mlx_q8_ok(4, 64, 192));   /* not whole 128-value chunks: the f32 path */
    assert_false(gm_mlx_q8_ok(3, 64, 1152));
}

/* A NaN input makes the product NaN, as in f32 (not a silently finite value). */
static void test_matmul_mlx_q8_nan(void **state) {
    (void)state;
    float x[128];
    int8_t xq[128];
    float dxv[32], xsum[2];
    uint8_t data[64], sc[4], bi[4];
    for (int i = 0; i < 128; i++) x[i] = 0.5f;
    x[77] = NAN;
    memset(data, 0x11, sizeof data);
    for (int i = 0; i < 2; i++) store_scale(sc, GM_DT_BF16, (size_t)i, 1.0f), store_scale(bi, GM_DT_BF16, (size_t)i, 0.0f);
    gm_mlx_quantize_x8(x, 128, 4, xq, dxv);
    xsum[0] = xsum[1] = 0.0f;
    gm_mlx_rows w = {data, 64, sc, bi, GM_DT_BF16, 4, 64, 128};
    float y = 0;
    gm_kernels_ref.matmul_mlx_q8(&w, 0, 1, 1, xq, dxv, xsum, &y, 1);
    assert_true(isnan(y));
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
        cmocka_unit_test(test_matmul_mlx_q8_twins),
        cmocka_unit_test(test_matmul_mlx_q8_nan),
        cmocka_unit_test(test_probe_fma_twins),
        cmocka_unit_test(test_probe_measures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
