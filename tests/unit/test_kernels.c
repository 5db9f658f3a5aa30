/* test_kernels.c - every SIMD kernel against its scalar twin (ref.c) on random
 * data: odd lengths, unaligned weight pointers, all f16 bit patterns, random
 * GGUF blocks of every supported type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "quant/ggml_blocks.h"

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
        /* the half-precision KV cache's value rows: f16 and bf16, at any byte offset */
        for (int shift = 0; shift < 4; shift++) {
            uint8_t *w = raw + shift;
            for (int half = 0; half < 2; half++) {
                for (int i = 0; i < n; i++) {
                    uint16_t h = half ? gm_f32_to_bf16(a[i]) : gm_f32_to_f16(a[i]);
                    memcpy(w + 2 * i, &h, 2);
                }
                memcpy(y0, x, (size_t)n * 4);
                memcpy(y1, x, (size_t)n * 4);
                if (half) {
                    k->axpy_bf16(-0.73f, w, y0, n);
                    gm_kernels_ref.axpy_bf16(-0.73f, w, y1, n);
                } else {
                    k->axpy_f16(-0.73f, w, y0, n);
                    gm_kernels_ref.axpy_f16(-0.73f, w, y1, n);
                }
                for (int i = 0; i < n; i++) {
                    /* and the reference is the definition: x widened exactly */
                    float want = x[i] - 0.73f * (half ? gm_bf16_round(a[i]) : gm_f16_to_f32(gm_f32_to_f16(a[i])));
                    if (fabsf(y0[i] - y1[i]) > 1e-6f || fabsf(y1[i] - want) > 1e-6f)
                        fail_msg("%s axpy_%s n=%d shift %d [%d]: %.9g vs scalar %.9g (want %.9g)", k->name,
                                 half ? "bf16" : "f16", n, shift, i, y0[i], y1[i], want);
                }
            }
        }
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

/* ------------------------------------------------------ GGUF block formats */

static uint32_t next_u32(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng ^ (rng >> 15);   /* the LCG's low bits alone are poor */
}

/* Finite f16 scales, as tools/reference/make_gguf_fixtures.py draws them: half
 * typical (random in [2^-14, 1)), half from the edges: 0, -0, the smallest
 * subnormal, a subnormal, small, typical, negative, +-65504. */
static uint16_t random_scale(void) {
    static const uint16_t pool[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x1e66, 0x2a3d,
                                    0x3c00, 0xb266, 0xa00f, 0x7bff, 0xfbff, 0x2e00, 0x1400};
    uint32_t r = next_u32();
    if (r & 1) return (uint16_t)(0x0400 + (r >> 8) % (0x3c00 - 0x0400));
    return pool[(r >> 8) % (sizeof pool / sizeof pool[0])];
}

typedef struct {
    uint32_t type;
    int f16_at[2], nf16;   /* byte offsets of the f16 scale fields in a block */
} ggml_case;

static const ggml_case ggml_cases[] = {
    {GM_GGML_Q8_0, {0}, 1},    {GM_GGML_Q4_0, {0}, 1},    {GM_GGML_Q4_1, {0, 2}, 2}, {GM_GGML_Q5_0, {0}, 1},
    {GM_GGML_Q5_1, {0, 2}, 2}, {GM_GGML_Q4_K, {0, 2}, 2}, {GM_GGML_Q5_K, {0, 2}, 2}, {GM_GGML_Q6_K, {208}, 1},
    {GM_GGML_F16, {0}, 0},     {GM_GGML_BF16, {0}, 0},    {GM_GGML_F32, {0}, 0},
};

/* Random bytes for n values; element types get finite values only (SIMD
 * widening need not keep NaN payloads, and an infinity makes the dot NaN). */
static void random_ggml_row(const ggml_case *c, uint8_t *w, int n) {
    size_t bytes = gm_ggml_row_bytes(c->type, n);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)(next_u32() >> 24);
    if (c->type == GM_GGML_F32) {
        for (int i = 0; i < n; i++) w[4 * i + 3] &= 0xbf;   /* exponent < 0x80: |v| < 2 */
    } else if (c->type == GM_GGML_F16) {
        for (int i = 0; i < n; i++) w[2 * i + 1] &= 0xbf;   /* exponent < 16: |v| < 2 */
    } else if (c->type == GM_GGML_BF16) {
        for (int i = 0; i < n; i++) w[2 * i + 1] &= 0xbf;   /* exponent < 0x80: |v| < 2 */
    }
    int bs = gm_ggml_block_size(c->type), ts = gm_ggml_type_size(c->type);
    for (int b = 0; b < n / bs; b++)
        for (int f = 0; f < c->nf16; f++) {
            uint16_t h = random_scale();
            memcpy(w + (size_t)b * ts + c->f16_at[f], &h, 2);
        }
}

static void check_ggml(const gm_kernels *k) {
    static uint8_t raw[9 * 256 * 4 + 8];
    static float x[9 * 256], got[9 * 256 + 16], want[9 * 256];
    static const int elem_lengths[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 255, 257};
    for (size_t ci = 0; ci < sizeof ggml_cases / sizeof ggml_cases[0]; ci++) {
        const ggml_case *c = &ggml_cases[ci];
        int bs = gm_ggml_block_size(c->type);
        int runs = bs == 1 ? (int)(sizeof elem_lengths / sizeof elem_lengths[0]) : 9;
        for (int r = 0; r < 3 * runs; r++) {   /* each length three times, with fresh blocks */
            int n = bs == 1 ? elem_lengths[r % runs] : (r % runs + 1) * bs;
            for (int shift = 0; shift < 4; shift += 3) {   /* even and odd byte offsets */
                uint8_t *w = raw + shift + (r & 1);
                random_ggml_row(c, w, n);
                for (int i = 0; i < n; i++) x[i] = frand();
                for (int i = 0; i < n + 16; i++) got[i] = -7.0f;
                k->dequant_ggml(c->type, w, got, n);
                assert_int_equal(gm_ggml_dequant_row(c->type, w, want, n), 0);
                if (memcmp(got, want, (size_t)n * 4) != 0) {
                    int i = 0;
                    while (memcmp(&got[i], &want[i], 4) == 0) i++;
                    fail_msg("%s dequant %s n=%d: value %d is %.9g, scalar %.9g", k->name, gm_ggml_type_name(c->type),
                             n, i, got[i], want[i]);
                }
                for (int i = n; i < n + 16; i++) assert_true(got[i] == -7.0f);   /* nothing past the row */
                double mag = 0;
                for (int i = 0; i < n; i++) mag += fabs((double)want[i] * x[i]);
                double dot = k->dot_ggml(c->type, w, x, n), ref = gm_ggml_dot_row(c->type, w, x, n);
                if (!(fabs(dot - ref) <= 1e-5 * mag + 1e-30))
                    fail_msg("%s dot %s n=%d: %.9g vs scalar %.9g (sum |w x| %.3g)", k->name,
                             gm_ggml_type_name(c->type), n, dot, ref, mag);
            }
        }
    }
    /* what the table cannot take goes to the reference: NaN, nothing written */
    memset(raw, 0, sizeof raw);
    assert_true(isnan(k->dot_ggml(GM_GGML_Q8_0, raw, x, 31)));
    assert_true(isnan(k->dot_ggml(GM_GGML_Q2_K, raw, x, 256)));
    assert_true(isnan(k->dot_ggml(99, raw, x, 32)));
    got[0] = -7.0f;
    k->dequant_ggml(GM_GGML_Q4_K, raw, got, 255);
    k->dequant_ggml(GM_GGML_Q3_K, raw, got, 256);
    assert_true(got[0] == -7.0f);
}

/* ------------------------------------------- llama.cpp's lane sums: bit for bit */

static void check_lanes(const gm_kernels *k) {
    static float a[2560], b[2560], y0[2560], y1[2560];
    static const int lanes_lengths[] = {16, 32, 48, 64, 80, 128, 256, 272, 640, 2560};
    for (size_t li = 0; li < sizeof lanes_lengths / sizeof lanes_lengths[0]; li++) {
        int n = lanes_lengths[li];
        for (int i = 0; i < n; i++) a[i] = frand() * 3.0f, b[i] = frand();
        for (int groups = 1; groups <= 4; groups += 3) {
            float got = k->dot_lanes(a, b, n, groups), want = gm_kernels_ref.dot_lanes(a, b, n, groups);
            if (memcmp(&got, &want, 4) != 0)
                fail_msg("%s dot_lanes n=%d groups=%d: %.9g vs scalar %.9g", k->name, n, groups, got, want);
        }
    }
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int n = lengths[li];
        for (int i = 0; i < n; i++) a[i] = frand(), y0[i] = y1[i] = frand();
        k->fma_row(0.3711f, a, y0, n);
        gm_kernels_ref.fma_row(0.3711f, a, y1, n);
        if (memcmp(y0, y1, (size_t)n * 4) != 0) fail_msg("%s fma_row n=%d differs from scalar", k->name, n);
    }
}

/* The scalar definition itself: lane i%16 of accumulator (i/16)%groups, the
 * accumulators folded 0+2, 1+3, 0+1, then the 16 lanes as halves, quarters
 * and (0+2)+(1+3).  Values chosen so that any other order rounds differently. */
static void test_lanes_definition(void **state) {
    (void)state;
    static float a[64], one[64];
    for (int i = 0; i < 64; i++) a[i] = 1.0f, one[i] = 1.0f;
    a[0] = 1e8f;                       /* lane 0 of accumulator 0 */
    a[32] = -1e8f;                     /* lane 0 of accumulator 2 with 4 groups, of 0 with 1 */
    /* groups 4: acc0[0] + acc2[0] = 0 exactly, the 62 ones survive */
    assert_true(gm_kernels_ref.dot_lanes(a, one, 64, 4) == 62.0f);
    /* groups 1: lane 0 takes 1e8, 1, -1e8, 1 in turn and 1e8 + 1 rounds to 1e8: 1 + 15 * 4 */
    assert_true(gm_kernels_ref.dot_lanes(a, one, 64, 1) == 61.0f);
    float acc[4][16] = {{0}};
    acc[0][0] = 1e8f, acc[0][8] = 1.0f, acc[0][4] = -1e8f;
    assert_true(gm_lanes_reduce(acc, 1) == 0.0f);   /* halves first: 1e8 + 1 loses the 1 (in order: 1) */
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
        check_ggml(k);
        check_lanes(k);
        print_message("%s: matches scalar\n", names[i]);
    }
    check_table(&gm_kernels_ref);
    check_ggml(&gm_kernels_ref);
    assert_non_null(gm_kernels_get());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_conversions),
        cmocka_unit_test(test_lanes_definition),
        cmocka_unit_test(test_every_table_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
