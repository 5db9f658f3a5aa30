/* test_ggml_q8.c - llama.cpp's 8-bit activation path (quant/ggml_q8.c).
 *
 * The quantizers against tests/fixtures/q8/ (tools/reference/make_q8_fixtures.py:
 * gguf-py's Q8_0 and independent numpy readings of ggml's Q8_0/Q8_1 x86 and
 * _ref quantizers and of Q8_K), byte for byte; every integer dot against the
 * same sum in double over the dequantized weights and activations, on random
 * blocks with finite f16 scales (both llama.cpp's vec_dot and its GEMM
 * rounding); every SIMD table's twins against the scalar definition, bit for
 * bit, with unaligned pointers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mapfile.h"
#include "kernels/kernels.h"
#include "quant/ggml_blocks.h"
#include "quant/ggml_q8.h"

#define ROWS 16
#define COLS 512
#define ROW_NONFINITE_ID 11   /* 127/amax overflows there: undefined for ggml's _ref quantizers */

static uint32_t rng = 12345;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}
static float frand(void) { return (float)(next_u32() >> 8) / 16777216.0f * 2.0f - 1.0f; }

static char *read_fixture(const char *name, size_t expect) {
    char path[1024], *data;
    size_t n;
    gemma_error err;
    snprintf(path, sizeof path, "%s/q8/%s", GEMMA_FIXTURES_DIR, name);
    if (gm_read_file(path, (size_t)1 << 24, &data, &n, &err) != GEMMA_OK) fail_msg("%s", err.message);
    if (n != expect) fail_msg("%s: %zu bytes, expected %zu", path, n, expect);
    return data;
}

/* ------------------------------------------------------------ quantizers */

typedef void (*quantizer)(const float *x, void *out, int n);

static void check_quantizer(const char *file, quantizer q, size_t row_bytes, int skip_nonfinite) {
    float *x = (float *)read_fixture("input.f32", (size_t)ROWS * COLS * 4);
    char *want = read_fixture(file, ROWS * row_bytes);
    uint8_t got[2048];
    for (int r = 0; r < ROWS; r++) {
        if (skip_nonfinite && r == ROW_NONFINITE_ID) continue;
        memset(got, 0xa5, sizeof got);
        q(x + (size_t)r * COLS, got, COLS);
        for (size_t i = 0; i < row_bytes; i++)
            if (got[i] != (uint8_t)want[r * row_bytes + i])
                fail_msg("%s row %d byte %zu: %02x, expected %02x", file, r, i, got[i],
                         (uint8_t)want[r * row_bytes + i]);
    }
    free(x);
    free(want);
}

static void test_quantizers_match_fixtures(void **state) {
    (void)state;
    size_t b0 = gm_q8_row_bytes(GM_GGML_Q8_0, COLS), b1 = gm_q8_row_bytes(GM_GGML_Q8_1, COLS);
    size_t bk = gm_q8_row_bytes(GM_GGML_Q8_K, COLS);
    assert_int_equal(b0, COLS / 32 * 34);
    assert_int_equal(b1, COLS / 32 * 36);
    assert_int_equal(bk, COLS / 256 * 292);
    check_quantizer("q8_0_gguf.bin", gm_quantize_row_q8_0_ref, b0, 1);
    check_quantizer("q8_1_ref.bin", gm_quantize_row_q8_1_ref, b1, 1);
    check_quantizer("q8_0_x86.bin", gm_quantize_row_q8_0, b0, 0);
    check_quantizer("q8_1_x86.bin", gm_quantize_row_q8_1, b1, 0);
    check_quantizer("q8_K.bin", gm_quantize_row_q8_K, bk, 0);
}

/* The x86 and _ref Q8_0 differ (rows 6 and 7 are built so that they do), and
 * only by one step where x * 127/amax is within a hair of k + 1/2. */
static void test_x86_and_ref_rounding_differ_only_at_halves(void **state) {
    (void)state;
    float *x = (float *)read_fixture("input.f32", (size_t)ROWS * COLS * 4);
    uint8_t a[COLS / 32 * 34], b[COLS / 32 * 34];
    int differ = 0;
    for (int r = 0; r < ROWS; r++) {
        if (r == ROW_NONFINITE_ID) continue;
        const float *row = x + (size_t)r * COLS;
        gm_quantize_row_q8_0(row, a, COLS);
        gm_quantize_row_q8_0_ref(row, b, COLS);
        for (int blk = 0; blk < COLS / 32; blk++) {
            assert_memory_equal(a + 34 * blk, b + 34 * blk, 2);   /* the same d */
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(row[32 * blk + j]));
            for (int j = 0; j < 32; j++) {
                int qa = (int8_t)a[34 * blk + 2 + j], qb = (int8_t)b[34 * blk + 2 + j];
                if (qa == qb) continue;
                differ++;
                double v = (double)row[32 * blk + j] * 127.0 / amax;
                assert_true(abs(qa - qb) == 1);
                assert_true(fabs(fabs(v - floor(v)) - 0.5) < 1e-5);
            }
        }
    }
    assert_true(differ >= 496 + 200);
    free(x);
}

static void test_q8_k_block_fields(void **state) {
    (void)state;
    float x[256];
    uint8_t q[292];
    for (int i = 0; i < 256; i++) x[i] = frand();
    x[17] = -2.0f, x[200] = 2.0f;   /* ties: the first (negative) one scales */
    gm_quantize_row_q8_K(x, q, 256);
    float d;
    memcpy(&d, q, 4);
    assert_true(d > 0 && fabsf(d - 2.0f / 127.0f) < 1e-9f);
    assert_int_equal((int8_t)q[4 + 17], -127);   /* iscale = -127/max < 0 for a negative max */
    assert_int_equal((int8_t)q[4 + 200], 127);
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += (int8_t)q[4 + 16 * g + j];
        int16_t b;
        memcpy(&b, q + 260 + 2 * g, 2);
        assert_int_equal(b, s);
    }
    memset(x, 0, sizeof x);
    memset(q, 0xff, sizeof q);
    gm_quantize_row_q8_K(x, q, 256);
    for (int i = 0; i < 292; i++) assert_int_equal(q[i], 0);
}

static void test_types_and_bad_rows(void **state) {
    (void)state;
    assert_int_equal(gm_q8_act_type(GM_GGML_Q4_0), GM_GGML_Q8_0);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q5_0), GM_GGML_Q8_0);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q8_0), GM_GGML_Q8_0);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q4_1), GM_GGML_Q8_1);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q5_1), GM_GGML_Q8_1);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q4_K), GM_GGML_Q8_K);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q5_K), GM_GGML_Q8_K);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q6_K), GM_GGML_Q8_K);
    assert_int_equal(gm_q8_act_type(GM_GGML_F16), 0);
    assert_int_equal(gm_q8_act_type(GM_GGML_BF16), 0);
    assert_int_equal(gm_q8_act_type(GM_GGML_Q2_K), 0);
    assert_int_equal(gm_q8_act_type(1000), 0);
    assert_int_equal(gm_q8_row_bytes(GM_GGML_Q8_0, 33), 0);
    assert_int_equal(gm_q8_row_bytes(GM_GGML_Q8_K, 512 + 32), 0);
    assert_int_equal(gm_q8_row_bytes(GM_GGML_Q8_K, -256), 0);
    assert_int_equal(gm_q8_row_bytes(GM_GGML_Q4_0, 32), 0);
    for (int n = 1; n < 3000; n += 37) {
        size_t m = gm_q8_max_row_bytes(n);
        assert_true(m >= gm_q8_row_bytes(GM_GGML_Q8_0, n / 32 * 32));
        assert_true(m >= gm_q8_row_bytes(GM_GGML_Q8_1, n / 32 * 32));
        assert_true(m >= gm_q8_row_bytes(GM_GGML_Q8_K, n / 256 * 256));
    }
    uint8_t w[1024] = {0}, xq[1200] = {0};
    assert_true(isnan(gm_q8_dot_row(GM_GGML_F16, w, xq, 32)));
    assert_true(isnan(gm_q8_dot_row(GM_GGML_Q8_0, w, xq, 48)));
    assert_true(isnan(gm_q8_dot_row(GM_GGML_Q4_K, w, xq, 128)));
    assert_true(isnan(gm_q8_dot_row_gemm(GM_GGML_Q6_K, w, xq, 128)));
    assert_true(isnan(gm_q8_dot_row_gemm(GM_GGML_BF16, w, xq, 32)));
    assert_true(gm_q8_dot_row(GM_GGML_Q4_K, w, xq, 0) == 0.0f);
}

/* ------------------------------------------------------------- dot products */

static const uint32_t wtypes[] = {GM_GGML_Q4_0, GM_GGML_Q5_0, GM_GGML_Q8_0, GM_GGML_Q4_1,
                                  GM_GGML_Q5_1, GM_GGML_Q4_K, GM_GGML_Q5_K, GM_GGML_Q6_K};

/* Offsets of the f16 fields in one block (the rest is random bytes). */
static int f16_fields(uint32_t t, int off[2]) {
    switch (t) {
    case GM_GGML_Q4_0: case GM_GGML_Q5_0: case GM_GGML_Q8_0: off[0] = 0; return 1;
    case GM_GGML_Q4_1: case GM_GGML_Q5_1: case GM_GGML_Q4_K: case GM_GGML_Q5_K: off[0] = 0, off[1] = 2; return 2;
    default: off[0] = 208; return 1;   /* Q6_K */
    }
}

/* A finite f16: half of them in [2^-14, 1) (typical scales), the others any
 * finite bit pattern (zeros, subnormals, up to 65504), either sign. */
static uint16_t random_f16(void) {
    uint32_t r = next_u32();
    uint16_t h = (r & 1) ? (uint16_t)(0x0400 + (r >> 8) % (0x3c00 - 0x0400)) : (uint16_t)((r >> 8) & 0x7bff);
    return (uint16_t)(h | ((r >> 4) & 1 ? 0x8000 : 0));
}

static void random_row(uint32_t t, uint8_t *w, int n) {
    int bs = gm_ggml_block_size(t), sz = gm_ggml_type_size(t), off[2];
    int nf = f16_fields(t, off);
    for (int b = 0; b < n / bs; b++) {
        uint8_t *p = w + (size_t)b * sz;
        for (int i = 0; i < sz; i++) p[i] = (uint8_t)next_u32();
        for (int f = 0; f < nf; f++) {
            uint16_t h = random_f16();
            memcpy(p + off[f], &h, 2);
        }
    }
}

static void random_activations(float *x, int n, float scale) {
    for (int i = 0; i < n; i++) x[i] = frand() * scale;
    if (n > 40) x[next_u32() % (uint32_t)n] = 0.0f, x[next_u32() % (uint32_t)n] *= 8.0f;
}

/* The dequantized activations, and for Q8_1 the per-block m*s terms' part s. */
static void dequant_act(uint32_t act, const uint8_t *xq, int n, double *out, double *s_of_block) {
    if (act == GM_GGML_Q8_K) {
        for (int b = 0; b < n / 256; b++) {
            float d;
            memcpy(&d, xq + 292 * b, 4);
            for (int j = 0; j < 256; j++) out[256 * b + j] = (double)d * (int8_t)xq[292 * b + 4 + j];
        }
        return;
    }
    int bb = act == GM_GGML_Q8_1 ? 36 : 34, q0 = act == GM_GGML_Q8_1 ? 4 : 2;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *p = xq + bb * b;
        double d = gm_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        if (act == GM_GGML_Q8_1) s_of_block[b] = gm_f16_to_f32((uint16_t)(p[2] | p[3] << 8));
        for (int j = 0; j < 32; j++) out[32 * b + j] = d * (int8_t)p[q0 + j];
    }
}

/* sum_i w_i x_i in double; Q4_1/Q5_1 take their mins as m * s the way the
 * Q8_1 format defines it (s is the block's rounded d * sum(q)). */
static double reference_dot(uint32_t t, const uint8_t *w, const uint8_t *xq, int n, double *mag) {
    static float wf[4096];
    static double xd[4096], s[4096 / 32];
    uint32_t act = gm_q8_act_type(t);
    assert_int_equal(gm_ggml_dequant_row(t, w, wf, n), 0);
    dequant_act(act, xq, n, xd, s);
    double sum = 0, m_abs = 0;
    int q81 = act == GM_GGML_Q8_1, sz = gm_ggml_type_size(t);
    for (int b = 0; b < n / 32; b++) {
        double m = q81 ? gm_f16_to_f32((uint16_t)(w[sz * b + 2] | w[sz * b + 3] << 8)) : 0;
        for (int j = 0; j < 32; j++) {
            double v = ((double)wf[32 * b + j] - m) * xd[32 * b + j];
            sum += v;
            m_abs += fabs((double)wf[32 * b + j] * xd[32 * b + j]);
        }
        if (q81) sum += m * s[b], m_abs += fabs(m * s[b]);
    }
    *mag = m_abs;
    return sum;
}

static void test_dots_match_dequantized_math(void **state) {
    (void)state;
    static uint8_t w[4096 * 2], xq[8192];
    static float x[4096];
    for (size_t ti = 0; ti < sizeof wtypes / sizeof wtypes[0]; ti++) {
        uint32_t t = wtypes[ti], act = gm_q8_act_type(t);
        int bs = gm_ggml_block_size(t);
        for (int blocks = 1; blocks * bs <= 4096; blocks = blocks * 2 + (bs == 32)) {
            int n = blocks * bs;
            for (int trial = 0; trial < 20; trial++) {
                random_row(t, w, n);
                random_activations(x, n, trial % 3 == 0 ? 100.0f : trial % 3 == 1 ? 1.0f : 1e-3f);
                gm_q8_quantize_row(act, x, xq, n);
                double mag, ref = reference_dot(t, w, xq, n, &mag);
                float got = gm_q8_dot_row(t, w, xq, n), gemm = gm_q8_dot_row_gemm(t, w, xq, n);
                if (!(fabs(got - ref) <= 1e-5 * mag) || !(fabs(gemm - ref) <= 1e-5 * mag))
                    fail_msg("%s n=%d trial %d: %.9g (gemm %.9g) vs %.9g (terms %.3g)", gm_ggml_type_name(t), n,
                             trial, got, gemm, ref, mag);
            }
        }
    }
}

/* Every kernel table against the scalar definition: the same bits, with
 * weights and activations at odd addresses. */
static void test_simd_twins_bit_identical(void **state) {
    (void)state;
    static const char *const isas[] = {"scalar", "avx2", "avx512", "neon"};
    static uint8_t wbuf[4096 * 2 + 8], xbuf[8192 + 8], xq2[8192];
    static float x[4096];
    int tables = 0;
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        const gm_kernels *k = gm_kernels_by_name(isas[ii]);
        if (!k) continue;
        tables++;
        for (size_t ti = 0; ti < sizeof wtypes / sizeof wtypes[0]; ti++) {
            uint32_t t = wtypes[ti], act = gm_q8_act_type(t);
            int bs = gm_ggml_block_size(t);
            for (int blocks = 1; blocks * bs <= 4096; blocks = blocks * 2 + 1) {
                int n = blocks * bs;
                for (int trial = 0; trial < 8; trial++) {
                    uint8_t *w = wbuf + trial % 4, *xq = xbuf + (trial / 2) % 4;
                    random_row(t, w, n);
                    random_activations(x, n, trial & 1 ? 3.0f : 0.02f);
                    k->quantize_q8(act, x, xq, n);
                    gm_q8_quantize_row(act, x, xq2, n);
                    assert_memory_equal(xq, xq2, gm_q8_row_bytes(act, n));
                    float got = k->dot_ggml_q8(t, w, xq, n), want = gm_q8_dot_row(t, w, xq, n);
                    if (memcmp(&got, &want, 4) != 0)
                        fail_msg("%s %s n=%d: %.9g vs scalar %.9g", k->name, gm_ggml_type_name(t), n, got, want);
                    got = k->dot_ggml_q8_gemm(t, w, xq, n), want = gm_q8_dot_row_gemm(t, w, xq, n);
                    if (memcmp(&got, &want, 4) != 0)
                        fail_msg("%s %s gemm n=%d: %.9g vs scalar %.9g", k->name, gm_ggml_type_name(t), n, got, want);
                }
            }
        }
    }
    assert_true(tables >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantizers_match_fixtures),
        cmocka_unit_test(test_x86_and_ref_rounding_differ_only_at_halves),
        cmocka_unit_test(test_q8_k_block_fields),
        cmocka_unit_test(test_types_and_bad_rows),
        cmocka_unit_test(test_dots_match_dequantized_math),
        cmocka_unit_test(test_simd_twins_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
