/* test_siglip.c - the Gemma 3 vision tower (SigLIP + projector) against transformers.
 *
 * 1. Kernels: each SIMD table's GEMM tile, exp_sum, max and GELU against the
 *    scalar twins (odd sizes, edge tiles, unaligned rows, accumulate or not).
 * 2. The GEMM driver on every weight kind (f32 at odd addresses, bf16, f16,
 *    MLX affine, GGUF Q8_0), [N, K] and [K, N] B, transposed A, sizes that
 *    cross every block edge, 1 and 2 threads, against a double-precision product.
 * 3. Parity: every fixture of tests/fixtures/siglip (tools/reference/
 *    make_siglip_fixtures.py; HF, transformers-5, MLX, MLX 4-bit and llama.cpp
 *    mmproj layouts) on every kernel table and 1..GEMMA_PARITY_THREADS threads:
 *    max|Δ| <= 1e-4 max|ref| against get_image_features computed on the
 *    weights as stored.  Because the reference sees exactly the stored (bf16,
 *    dequantized 4-bit, GGUF) values, only f32 rounding separates the two, and
 *    the float bound applies to every kind.  Encoding allocates nothing.
 * 4. Layout: the f32 fixture rewritten under every tower / projector prefix
 *    and with its conv weight in OHWI gives the same features.
 * 5. Bad input: vision_config fields missing or inconsistent, tensors of the
 *    wrong shape or missing, a pool larger than the scratch: one-line errors
 *    naming the file and the field or tensor. */
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
#include "io/mmproj.h"
#include "io/modeldir.h"
#include "io/vision_config.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "models/siglip.h"
#include "quant/ggml_blocks.h"
#include "unit/testutil.h"

#define FIX GEMMA_FIXTURES_DIR "/siglip"

/* ---------------------------------------------------------- allocations */

/* Linked with --wrap=malloc/calloc/realloc (tests/siglip_tests.cmake). */
static long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }

/* -------------------------------------------------------------- helpers */

static uint32_t rng = 2024;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static const char *const ISAS[] = {"scalar", "avx2", "avx512", "neon"};
#define N_ISAS (sizeof ISAS / sizeof ISAS[0])

/* The tables to test: those this CPU runs, narrowed by GEMMA_PARITY_ISAS (slow emulators). */
static const gm_kernels *isa_table(size_t i) {
    const char *only = getenv("GEMMA_PARITY_ISAS");
    if (only && *only && !strstr(only, ISAS[i])) return NULL;
    return gm_kernels_by_name(ISAS[i]);
}

static int max_threads(void) {
    const char *t = getenv("GEMMA_PARITY_THREADS");
    return t && atoi(t) > 0 ? atoi(t) : 2;
}

static void *xalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64)) abort();
    memset(p, 0, n);
    return p;
}

/* A file of `count` little-endian floats of `bytes` each (4: f32, 2: f16), as f32. */
static float *read_floats(const char *path, size_t count, int bytes) {
    char *text;
    size_t n;
    gemma_error err;
    if (gm_read_file(path, (size_t)1 << 28, &text, &n, &err)) fail_msg("%s", err.message);
    if (n != count * (size_t)bytes) fail_msg("%s: %zu bytes, expected %zu", path, n, count * (size_t)bytes);
    float *f = xalloc(count * 4);
    for (size_t i = 0; i < count; i++) f[i] = gm_load_float(text, bytes == 2 ? GM_DT_F16 : GM_DT_F32, i);
    free(text);
    return f;
}

static void expect_message(gemma_status st, const gemma_error *err, const char *path, const char *s1, const char *s2) {
    if (st == GEMMA_OK) fail_msg("expected an error mentioning '%s' for %s, got success", s1 ? s1 : "?", path);
    const char *why = tu_message_problem(err->message, path, s1, s2);
    if (why) fail_msg("message \"%s\" %s", err->message, why);
}

/* ============================================================ 1. kernels */

static void check_tile(const gm_kernels *k) {
    const int MR = k->gemm_mr, NR = k->gemm_nr;
    static const int depths[] = {0, 1, 2, 7, 72, 255, 300};
    for (size_t di = 0; di < sizeof depths / sizeof depths[0]; di++) {
        int kc = depths[di];
        float *a = xalloc((size_t)(kc + 1) * MR * 4), *b = xalloc((size_t)(kc + 1) * NR * 4);
        for (int i = 0; i < kc * MR; i++) a[i] = frand();
        for (int i = 0; i < kc * NR; i++) b[i] = frand();
        int ldc = NR + 5;
        float *c = xalloc((size_t)(MR + 2) * ldc * 4), *c0 = xalloc((size_t)(MR + 2) * ldc * 4);
        int ms[] = {MR, 1, MR - 1}, ns[] = {NR, 1, NR - 1, NR / 2 + 1};
        for (int mi = 0; mi < 3; mi++)
            for (int ni = 0; ni < 4; ni++)
                for (int acc = 0; acc < 2; acc++) {
                    int m = ms[mi], n = ns[ni];
                    for (int i = 0; i < (MR + 2) * ldc; i++) c[i] = c0[i] = frand();
                    k->gemm_f32(kc, a, b, c, (size_t)ldc, m, n, acc);
                    for (int i = 0; i < MR + 2; i++)
                        for (int j = 0; j < ldc; j++) {
                            double want = c0[i * ldc + j], mag = fabs(want);
                            if (i < m && j < n) {
                                double s = 0;
                                mag = acc ? fabs(want) : 0;
                                for (int kk = 0; kk < kc; kk++) {
                                    s += (double)a[kk * MR + i] * b[kk * NR + j];
                                    mag += fabs((double)a[kk * MR + i] * b[kk * NR + j]);
                                }
                                want = (acc ? want : 0) + s;
                            }
                            if (fabs(c[i * ldc + j] - want) > 1e-6 * mag + 1e-7)
                                fail_msg("%s gemm tile kc %d m %d n %d acc %d: c[%d][%d] = %.9g, want %.9g", k->name, kc,
                                         m, n, acc, i, j, c[i * ldc + j], want);
                        }
                }
        free(a), free(b), free(c), free(c0);
    }
}

static void check_elementwise(const gm_kernels *k) {
    const gm_kernels *r = &gm_kernels_ref;
    static const int lengths[] = {1, 3, 8, 15, 16, 17, 33, 100, 4096, 4097};
    float *x = xalloc(4200 * 4), *y = xalloc(4200 * 4), *z = xalloc(4200 * 4);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int n = lengths[li];
        for (int off = 0; off < 2; off++) {
            float *xs = x + off;
            for (int i = 0; i < n; i++) xs[i] = 12.0f * frand() - 4.0f;
            if (k->max_f32(xs, n) != r->max_f32(xs, n)) fail_msg("%s max_f32 n=%d", k->name, n);
            float mx = r->max_f32(xs, n) * 0.37f;
            float s1 = k->exp_sum(xs, y, n, 0.37f, mx), s0 = r->exp_sum(xs, z, n, 0.37f, mx);
            /* the argument's own rounding (fused or not) moves exp by ~ulp(|arg|) relative */
            for (int i = 0; i < n; i++)
                if (fabsf(y[i] - z[i]) > 3e-7f * (1.0f + fabsf(xs[i] * 0.37f - mx)) * z[i] + 1e-30f)
                    fail_msg("%s exp_sum n=%d: y[%d] = %.9g, scalar %.9g", k->name, n, i, y[i], z[i]);
            if (fabsf(s1 - s0) > 2e-6f * s0) fail_msg("%s exp_sum n=%d: sum %.9g, scalar %.9g", k->name, n, s1, s0);
            for (int i = 0; i < n; i++) y[i] = z[i] = 20.0f * frand();
            y[0] = z[0] = -30.0f;   /* deep in the tails: both ends of the clamp */
            if (n > 1) y[1] = z[1] = 30.0f;
            k->gelu_tanh(y, n);
            r->gelu_tanh(z, n);
            for (int i = 0; i < n; i++)
                if (fabsf(y[i] - z[i]) > 1e-6f * fmaxf(1.0f, fabsf(z[i])))
                    fail_msg("%s gelu_tanh n=%d: [%d] %.9g, scalar %.9g", k->name, n, i, y[i], z[i]);
        }
    }
    /* panel packing (a transpose with zero rows up to the width) must be exact */
    static const int shapes[][3] = {{12, 12, 256}, {5, 12, 7}, {32, 32, 72}, {17, 32, 33}, {6, 6, 100}, {1, 8, 1},
                                    {16, 16, 16}, {9, 12, 300}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], width = shapes[si][1], cols = shapes[si][2];
        size_t ld = (size_t)cols + 3;
        float *src = xalloc((size_t)rows * ld * 4 + 4), *d1 = xalloc((size_t)width * cols * 4), *d0 = xalloc((size_t)width * cols * 4);
        for (size_t i = 0; i < (size_t)rows * ld; i++) src[i] = frand();
        k->pack_t(src + 1, ld, rows, cols, width, d1);
        r->pack_t(src + 1, ld, rows, cols, width, d0);
        if (memcmp(d1, d0, (size_t)width * cols * 4)) fail_msg("%s pack_t rows %d width %d cols %d", k->name, rows, width, cols);
        /* the online column softmax over two key blocks, the second raising some columns' max:
         * each twin against the scalar one (probabilities, running max and sum, rescaled output) */
        float mx1[64], mx0[64], sum1[64], sum0[64], o1[5 * 64], o0[5 * 64];
        for (int c = 0; c < width; c++) mx1[c] = mx0[c] = -INFINITY, sum1[c] = sum0[c] = 0.0f;
        for (int i = 0; i < 5 * width; i++) o1[i] = o0[i] = 0.0f;
        uint32_t own = 777u;   /* the second step's values from their own stream: frand's feeds the later checks */
#define OWN_RAND() ((float)((own = own * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2.0f - 1.0f)
        for (int step = 0; step < 2; step++) {
            for (size_t i = 0; i < (size_t)width * cols; i++) d1[i] = d0[i] = step ? 14.0f * OWN_RAND() : 10.0f * frand();
            k->softmax_cols(d1, cols, width, 0.3f, mx1, sum1, o1, (size_t)width, 5);
            r->softmax_cols(d0, cols, width, 0.3f, mx0, sum0, o0, (size_t)width, 5);
            for (int c = 0; c < width; c++) {
                if (mx1[c] != mx0[c]) fail_msg("%s softmax_cols step %d max col %d: %.9g vs %.9g", k->name, step, c, mx1[c], mx0[c]);
                if (fabsf(sum1[c] - sum0[c]) > 2e-6f * sum0[c])
                    fail_msg("%s softmax_cols step %d sum col %d: %.9g vs %.9g", k->name, step, c, sum1[c], sum0[c]);
                for (int rr = 0; rr < cols; rr++) {
                    float a = d1[(size_t)rr * width + c], b = d0[(size_t)rr * width + c];
                    if (fabsf(a - b) > 3e-6f * b + 1e-30f)
                        fail_msg("%s softmax_cols [%d][%d] %.9g vs scalar %.9g", k->name, rr, c, a, b);
                }
                for (int i = 0; i < 5; i++) {
                    float a = o1[i * width + c], b = o0[i * width + c];
                    if (fabsf(a - b) > 3e-6f * fabsf(b) + 1e-30f)
                        fail_msg("%s softmax_cols step %d o[%d][%d] %.9g vs scalar %.9g", k->name, step, i, c, a, b);
                }
            }
            for (int i = 0; i < 5 * width; i++) o1[i] = o0[i] = OWN_RAND();   /* output accumulated before step 2 */
        }
#undef OWN_RAND
        free(src), free(d1), free(d0);
    }
    /* the softmax shape: exp of very negative arguments is 0 or denormal-small, never NaN */
    for (int i = 0; i < 40; i++) x[i] = -1000.0f * (float)i;
    float s = k->exp_sum(x, y, 40, 1.0f, 0.0f);
    if (!(fabsf(s - 1.0f) < 1e-6f)) fail_msg("%s exp_sum of -inf-ish values: sum %.9g", k->name, s);
    free(x), free(y), free(z);
}

static void test_kernels(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ISAS; i++) {
        const gm_kernels *k = isa_table(i);
        if (!k) continue;
        check_tile(k);
        check_elementwise(k);
        print_message("%s: tile %dx%d, exp/max/gelu/pack_t/softmax_cols match\n", k->name, k->gemm_mr, k->gemm_nr);
    }
}

/* ========================================================== 2. the GEMM */

typedef struct {
    gm_weight w;
    uint8_t *mem;       /* owns w.data (and MLX scales/biases) */
    uint8_t *mem2;
} test_weight;

/* A random [rows, cols] weight of the given kind; f32 data deliberately at an odd address. */
static test_weight make_weight(gm_wkind kind, int rows, int cols) {
    test_weight t;
    memset(&t, 0, sizeof t);
    gm_weight *w = &t.w;
    w->kind = kind;
    w->rows = rows;
    w->cols = cols;
    size_t n = (size_t)rows * cols;
    switch (kind) {
    case GM_W_F32:
        t.mem = xalloc(n * 4 + 8);
        w->data = t.mem + 3;
        w->row_bytes = (size_t)cols * 4;
        for (size_t i = 0; i < n; i++) {
            float v = frand();
            memcpy(t.mem + 3 + 4 * i, &v, 4);
        }
        break;
    case GM_W_BF16:
    case GM_W_F16:
        t.mem = xalloc(n * 2 + 8);
        w->data = t.mem + 1;
        w->row_bytes = (size_t)cols * 2;
        for (size_t i = 0; i < n; i++) {
            uint16_t h = kind == GM_W_BF16 ? gm_f32_to_bf16(frand()) : gm_f32_to_f16(frand());
            memcpy(t.mem + 1 + 2 * i, &h, 2);
        }
        break;
    case GM_W_MLX: {
        w->bits = 4;
        w->group_size = 64;
        w->row_bytes = (size_t)cols / 2;
        t.mem = xalloc(n / 2 + 8);
        for (size_t i = 0; i < n / 2; i++) t.mem[i] = (uint8_t)(rng = rng * 1664525u + 1013904223u) >> 3;
        w->data = t.mem;
        size_t groups = n / 64;
        t.mem2 = xalloc(groups * 4 + 8);
        for (size_t i = 0; i < groups; i++) {
            uint16_t s = gm_f32_to_bf16(0.1f * frand()), b = gm_f32_to_bf16(frand());
            memcpy(t.mem2 + 2 * i, &s, 2);
            memcpy(t.mem2 + 2 * groups + 2 * i, &b, 2);
        }
        w->scales = t.mem2;
        w->biases = t.mem2 + 2 * groups;
        w->qdtype = GM_DT_BF16;
        break;
    }
    case GM_W_GGML: {
        w->ggml_type = GM_GGML_Q8_0;
        w->row_bytes = gm_ggml_row_bytes(GM_GGML_Q8_0, cols);
        t.mem = xalloc(w->row_bytes * (size_t)rows);
        for (size_t blk = 0; blk < n / 32; blk++) {
            uint8_t *p = t.mem + blk * 34;
            uint16_t d = gm_f32_to_f16(0.01f * (1.0f + frand()));
            memcpy(p, &d, 2);
            for (int i = 0; i < 32; i++) p[2 + i] = (uint8_t)(int8_t)(127.0f * frand());
        }
        w->data = t.mem;
        break;
    }
    }
    return t;
}

static void free_weight(test_weight *t) {
    free(t->mem);
    free(t->mem2);
}

/* The weight as a dense f32 matrix, through the scalar reference widening. */
static float *dense(const gm_weight *w) {
    float *d = xalloc((size_t)w->rows * w->cols * 4), *tmp = xalloc((size_t)w->cols * 4 + 64);
    for (int r = 0; r < w->rows; r++) gm_weight_row(&gm_kernels_ref, w, r, d + (size_t)r * w->cols, tmp);
    free(tmp);
    return d;
}

static void check_gemm_case(gm_wkind kind, int b_kn, int a_trans, int accumulate, int M, int N, int K) {
    int rows = b_kn ? K : N, cols = b_kn ? N : K;
    test_weight tw = make_weight(kind, rows, cols);
    float *wd = dense(&tw.w);
    size_t lda = (size_t)(a_trans ? M : K) + 3;
    size_t a_rows = (size_t)(a_trans ? K : M);
    float *a = xalloc(a_rows * lda * 4);
    for (size_t i = 0; i < a_rows * lda; i++) a[i] = frand();
    size_t ldc = (size_t)N + 2;
    float *c = xalloc((size_t)M * ldc * 4), *c0 = xalloc((size_t)M * ldc * 4);
    for (size_t i = 0; i < (size_t)M * ldc; i++) c0[i] = frand();
    /* the double-precision product */
    double *want = calloc((size_t)M * N, sizeof(double)), *mag = calloc((size_t)M * N, sizeof(double));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? c0[(size_t)i * ldc + j] : 0, m = fabs(s);
            for (int kk = 0; kk < K; kk++) {
                double av = a_trans ? a[(size_t)kk * lda + i] : a[(size_t)i * lda + kk];
                double bv = b_kn ? wd[(size_t)kk * N + j] : wd[(size_t)j * K + kk];
                s += av * bv;
                m += fabs(av * bv);
            }
            want[(size_t)i * N + j] = s;
            mag[(size_t)i * N + j] = m;
        }
    float *bufs[GM_VISION_MAX_THREADS];
    for (int t = 0; t < 4; t++) bufs[t] = xalloc(gm_gemm_buf_floats(b_kn ? N : 0) * 4);
    for (size_t ii = 0; ii < N_ISAS; ii++) {
        const gm_kernels *k = isa_table(ii);
        if (!k) continue;
        for (int T = 1; T <= max_threads(); T++) {
            gm_pool *pool = gm_pool_create(T);
            memcpy(c, c0, (size_t)M * ldc * 4);
            gm_gemm_args g = {.M = M, .N = N, .K = K, .a = a, .lda = lda, .a_trans = a_trans, .b = &tw.w, .b_kn = b_kn,
                              .c = c, .ldc = ldc, .accumulate = accumulate};
            gm_gemm(pool, k, &g, bufs);
            gm_pool_free(pool);
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    double d = fabs(c[(size_t)i * ldc + j] - want[(size_t)i * N + j]);
                    if (d > 2e-6 * mag[(size_t)i * N + j] + 1e-6)
                        fail_msg("gemm %s kind %d b_kn %d a_trans %d acc %d M %d N %d K %d, %d threads: C[%d][%d] = %.9g, "
                                 "want %.9g", k->name, (int)kind, b_kn, a_trans, accumulate, M, N, K, T, i, j,
                                 c[(size_t)i * ldc + j], want[(size_t)i * N + j]);
                }
                if (c[(size_t)i * ldc + N] != c0[(size_t)i * ldc + N]) fail_msg("gemm %s wrote past column N", k->name);
            }
        }
    }
    for (int t = 0; t < 4; t++) free(bufs[t]);
    free(want), free(mag), free(a), free(c), free(c0), free(wd);
    free_weight(&tw);
}

static void test_gemm(void **state) {
    (void)state;
    /* past every block edge: M > MC (384), N > NC (384), K > KC (256) */
    check_gemm_case(GM_W_F32, 0, 0, 0, 397, 401, 263);
    check_gemm_case(GM_W_F32, 1, 1, 1, 25, 37, 300);
    check_gemm_case(GM_W_BF16, 0, 0, 1, 61, 45, 129);
    check_gemm_case(GM_W_F16, 1, 0, 0, 13, 70, 77);
    /* tiny and K = 1; threads split M (M >= N) or N (N > M), ragged shares */
    check_gemm_case(GM_W_F32, 0, 0, 0, 1, 1, 1);
    check_gemm_case(GM_W_BF16, 0, 0, 1, 130, 3, 1);
    check_gemm_case(GM_W_F32, 1, 0, 0, 5, 300, 2);
    check_gemm_case(GM_W_F16, 0, 1, 1, 211, 33, 17);
    check_gemm_case(GM_W_F32, 0, 0, 1, 2, 2, 513);
    /* MLX groups and GGUF blocks: widths multiples of 64 / 32, K across a KC edge */
    check_gemm_case(GM_W_MLX, 0, 0, 0, 30, 40, 320);
    check_gemm_case(GM_W_MLX, 1, 0, 1, 9, 128, 50);
    check_gemm_case(GM_W_GGML, 0, 1, 0, 17, 33, 288);
    check_gemm_case(GM_W_GGML, 1, 0, 0, 11, 96, 23);
}

/* ============================================ 2b. a long patch sequence */

/* The fixtures have at most a few hundred patches; attention walks keys in
 * blocks of GM_VISION_KBLOCK with an online softmax, so a tower with 625
 * patches (two whole key blocks and a ragged third; 625 = 52 MR-12 panels +
 * 1) and head_dim 16 (a ragged value panel for MR 12) is checked against a
 * direct double-precision forward pass written out here. */

static float *rand_floats(size_t n, float scale) {
    float *p = xalloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = scale * frand();
    return p;
}

static gm_weight f32_weight(int rows, int cols, float scale) {
    gm_weight w = {.kind = GM_W_F32, .rows = rows, .cols = cols, .row_bytes = (size_t)cols * 4};
    w.data = (const uint8_t *)rand_floats((size_t)rows * cols, scale);
    return w;
}

static const float *wf(const gm_weight *w) { return (const float *)(const void *)w->data; }

static void ref_layer_norm(double *y, const double *x, const float *w, const float *b, int n, double eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i];
}

/* y[M, N] = x[M, K] · Wᵀ + b for a [N, K] f32 weight */
static void ref_linear(double *y, const double *x, const gm_weight *w, const float *b, int M) {
    int N = w->rows, K = w->cols;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = b ? b[j] : 0;
            for (int k = 0; k < K; k++) s += x[(size_t)i * K + k] * wf(w)[(size_t)j * K + k];
            y[(size_t)i * N + j] = s;
        }
}

static void ref_forward(const gm_vision *v, const float *img, double *out) {
    const gm_vision_config *c = &v->cfg;
    int P = c->n_patches, D = c->hidden, F = c->ffn, p = c->patch_size, S = c->image_size, K = 3 * p * p;
    int H = c->heads, Dh = c->head_dim, side = c->patches_per_side;
    double *x = calloc((size_t)P * D, 8), *y = calloc((size_t)P * D, 8), *q = calloc((size_t)P * D, 8);
    double *k = calloc((size_t)P * D, 8), *vv = calloc((size_t)P * D, 8), *o = calloc((size_t)P * D, 8);
    double *h = calloc((size_t)P * (F > K ? F : K), 8), *t = calloc((size_t)P * D, 8), *sc = calloc((size_t)P, 8);
    for (int r = 0; r < P; r++)   /* im2col in OIHW order */
        for (int ch = 0; ch < 3; ch++)
            for (int ky = 0; ky < p; ky++)
                for (int kx = 0; kx < p; kx++)
                    h[(size_t)r * K + (ch * p + ky) * p + kx] =
                        img[((size_t)ch * S + (size_t)((r / side) * p + ky)) * S + (size_t)(r % side) * p + kx];
    ref_linear(x, h, &v->patch, v->patch_b, P);
    for (size_t i = 0; i < (size_t)P * D; i++) x[i] += wf(&v->pos)[i];
    for (int l = 0; l < c->layers; l++) {
        const gm_vision_layer *L = &v->layers[l];
        for (int r = 0; r < P; r++) ref_layer_norm(y + (size_t)r * D, x + (size_t)r * D, L->ln1_w, L->ln1_b, D, c->eps);
        ref_linear(q, y, &L->q, L->q_b, P);
        ref_linear(k, y, &L->k, L->k_b, P);
        ref_linear(vv, y, &L->v, L->v_b, P);
        for (int hh = 0; hh < H; hh++)
            for (int i = 0; i < P; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < P; j++) {
                    double s = 0;
                    for (int d = 0; d < Dh; d++) s += q[(size_t)i * D + hh * Dh + d] * k[(size_t)j * D + hh * Dh + d];
                    sc[j] = s / sqrt((double)Dh);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = 0; j < P; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int d = 0; d < Dh; d++) {
                    double acc = 0;
                    for (int j = 0; j < P; j++) acc += sc[j] * vv[(size_t)j * D + hh * Dh + d];
                    o[(size_t)i * D + hh * Dh + d] = acc / sum;
                }
            }
        ref_linear(t, o, &L->o, L->o_b, P);
        for (size_t i = 0; i < (size_t)P * D; i++) x[i] += t[i];
        for (int r = 0; r < P; r++) ref_layer_norm(y + (size_t)r * D, x + (size_t)r * D, L->ln2_w, L->ln2_b, D, c->eps);
        ref_linear(h, y, &L->fc1, L->fc1_b, P);
        for (size_t i = 0; i < (size_t)P * F; i++)
            h[i] = 0.5 * h[i] * (1.0 + tanh(0.7978845608028654 * (h[i] + 0.044715 * h[i] * h[i] * h[i])));
        ref_linear(t, h, &L->fc2, L->fc2_b, P);
        for (size_t i = 0; i < (size_t)P * D; i++) x[i] += t[i];
    }
    for (int r = 0; r < P; r++) ref_layer_norm(y + (size_t)r * D, x + (size_t)r * D, v->post_w, v->post_b, D, c->eps);
    int kk = c->pool, ts = c->tokens_per_side, N = c->projection_dim;
    for (int tk = 0; tk < c->tokens_per_image; tk++) {
        double pooled[64] = {0}, ss = 0;
        for (int dy = 0; dy < kk; dy++)
            for (int dx = 0; dx < kk; dx++)
                for (int d = 0; d < D; d++)
                    pooled[d] += y[((size_t)((tk / ts) * kk + dy) * side + (size_t)((tk % ts) * kk + dx)) * D + d];
        for (int d = 0; d < D; d++) pooled[d] /= kk * kk, ss += pooled[d] * pooled[d];
        double rs = 1.0 / sqrt(ss / D + c->eps);
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += pooled[d] * rs * v->soft_norm[d] * wf(&v->proj)[(size_t)d * N + j];
            out[(size_t)tk * N + j] = s;
        }
    }
    free(x), free(y), free(q), free(k), free(vv), free(o), free(h), free(t), free(sc);
}

static void test_long_sequence(void **state) {
    (void)state;
    gm_vision v;
    memset(&v, 0, sizeof v);
    gm_vision_config *c = &v.cfg;
    *c = (gm_vision_config){.image_size = 350, .patch_size = 14, .hidden = 32, .ffn = 40, .layers = 1, .heads = 2,
                            .eps = 1e-6f, .projection_dim = 24, .tokens_per_image = 25};
    gemma_error err;
    if (gm_vision_config_check(c, "long", "", &err)) fail_msg("%s", err.message);
    assert_int_equal(c->n_patches, 625);
    assert_true(c->n_patches > 2 * GM_VISION_KBLOCK);
    v.layout = (gm_vision_layout){.patch = GM_PATCH_OIHW, .soft_emb_norm_add = 1.0f};
    int D = c->hidden, F = c->ffn;
    v.patch = f32_weight(D, 3 * 14 * 14, 0.07f);
    v.pos = f32_weight(c->n_patches, D, 0.5f);
    v.proj = f32_weight(D, c->projection_dim, 0.3f);
    float *vecs = rand_floats(4 * (size_t)D, 0.5f), *ln = rand_floats(4 * (size_t)D, 0.3f);
    for (int i = 0; i < 4 * D; i++) ln[i] += 1.0f;   /* norm weights near 1 */
    v.patch_b = vecs, v.post_b = vecs + D, v.post_w = ln, v.soft_norm = ln + D;
    gm_vision_layer L = {0};
    /* big query/key weights: sharp softmaxes whose max moves between key blocks */
    L.q = f32_weight(D, D, 0.8f), L.k = f32_weight(D, D, 0.8f), L.v = f32_weight(D, D, 0.3f);
    L.o = f32_weight(D, D, 0.2f), L.fc1 = f32_weight(F, D, 0.3f), L.fc2 = f32_weight(D, F, 0.2f);
    float *lv = rand_floats(10 * (size_t)D + (size_t)F, 0.5f);
    L.ln1_w = ln + 2 * D, L.ln2_w = ln + 3 * D, L.ln1_b = lv, L.ln2_b = lv + D, L.q_b = lv + 2 * D;
    L.k_b = lv + 3 * D, L.v_b = lv + 4 * D, L.o_b = lv + 5 * D, L.fc2_b = lv + 6 * D, L.fc1_b = lv + 7 * D;
    v.layers = &L;
    snprintf(v.source, sizeof v.source, "long");
    size_t npx = 3 * (size_t)c->image_size * c->image_size, n_out = (size_t)c->tokens_per_image * c->projection_dim;
    float *px = rand_floats(npx, 1.0f), *out = xalloc(n_out * 4);
    double *want = calloc(n_out, 8), scale = 0;
    ref_forward(&v, px, want);
    for (size_t i = 0; i < n_out; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (size_t ii = 0; ii < N_ISAS; ii++) {
        const gm_kernels *k = isa_table(ii);
        if (!k) continue;
        for (int T = 1; T <= max_threads(); T++) {
            gm_vision_scratch s;
            if (gm_vision_scratch_alloc(&s, &v, T, NULL, &err)) fail_msg("%s", err.message);
            gm_pool *pool = gm_pool_create(T);
            if (gm_vision_encode(&v, pool, k, px, 1, out, &s, &err)) fail_msg("%s", err.message);
            gm_pool_free(pool);
            gm_vision_scratch_free(&s);
            double worst = 0;
            for (size_t i = 0; i < n_out; i++) {
                double d = fabs(out[i] - want[i]);
                if (!(d <= worst)) worst = d;
            }
            if (!(worst <= 1e-4 * scale))
                fail_msg("long sequence [%s, %d threads]: max|d| = %.3g of max|ref| %.3g (tol 1e-4)", k->name, T, worst,
                         scale);
            print_message("long sequence (625 patches) %s, %d threads: max|d|/max|ref| %.2e\n", k->name, T, worst / scale);
        }
    }
    free((void *)v.patch.data), free((void *)v.pos.data), free((void *)v.proj.data);
    free((void *)L.q.data), free((void *)L.k.data), free((void *)L.v.data), free((void *)L.o.data);
    free((void *)L.fc1.data), free((void *)L.fc2.data);
    free(vecs), free(ln), free(lv), free(px), free(out), free(want);
}

/* ============================================================ 3. parity */

typedef struct {
    char name[128], dir[1024];
    int n_images, image_size, tokens, text_hidden, is_gguf;
    float *pixels, *ref;
    double max_ref;
} vfixture;

static int manifest(char names[][128], int max) {
    char *text;
    size_t n;
    gemma_error err;
    if (gm_read_file(FIX "/MANIFEST", 1 << 16, &text, &n, &err)) fail_msg("%s", err.message);
    int count = 0;
    for (char *line = strtok(text, "\n"); line && count < max; line = strtok(NULL, "\n"))
        if (*line) snprintf(names[count++], 128, "%s", line);
    free(text);
    return count;
}

static void load_fixture(const char *name, vfixture *f) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->dir, sizeof f->dir, FIX "/%s", name);
    char path[1200];
    gm_json_doc *doc = tu_load_json(tu_path(path, sizeof path, f->dir, "fixture.json"));
    const gm_json *r = gm_json_root(doc);
    int64_t v;
    double d;
    const char *keys[] = {"n_images", "image_size", "tokens_per_image", "text_hidden"};
    int *dst[] = {&f->n_images, &f->image_size, &f->tokens, &f->text_hidden};
    for (int i = 0; i < 4; i++) {
        if (!gm_json_int(gm_json_get(r, keys[i]), &v)) fail_msg("%s/fixture.json: no %s", f->dir, keys[i]);
        *dst[i] = (int)v;
    }
    if (!gm_json_number(gm_json_get(r, "max_abs_ref"), &d)) fail_msg("%s/fixture.json: no max_abs_ref", f->dir);
    f->max_ref = d;
    const char *ck = gm_json_string(gm_json_get(r, "checkpoint"));
    f->is_gguf = ck && strstr(ck, ".gguf") != NULL;
    if (f->is_gguf) snprintf(f->dir, sizeof f->dir, FIX "/%s/%s", name, ck);
    gm_json_free(doc);
    char base[1100];
    snprintf(base, sizeof base, FIX "/%s", name);
    f->pixels = read_floats(tu_path(path, sizeof path, base, "pixels.f16"),
                             (size_t)f->n_images * 3 * f->image_size * f->image_size, 2);
    f->ref = read_floats(tu_path(path, sizeof path, base, "ref_hf.f32"), (size_t)f->n_images * f->tokens * f->text_hidden, 4);
}

static void free_fixture(vfixture *f) {
    free(f->pixels);
    free(f->ref);
}

/* A bound tower with whatever owns its weights. */
typedef struct {
    gm_modeldir md;
    gm_mmproj mm;
    gm_vision v;
    int is_gguf;
} tower;

static gemma_status open_tower(tower *t, const char *path, int is_gguf, gemma_error *err) {
    memset(t, 0, sizeof *t);
    t->is_gguf = is_gguf;
    gemma_status st;
    if (is_gguf) {
        if ((st = gm_mmproj_open(&t->mm, path, err))) return st;
        return gm_vision_bind_mmproj(&t->v, &t->mm, err);
    }
    if ((st = gm_modeldir_open(&t->md, path, err))) return st;
    return gm_vision_bind(&t->v, &t->md, err);
}

static void close_tower(tower *t) {
    gm_vision_free(&t->v);
    if (t->is_gguf) gm_mmproj_close(&t->mm);
    else gm_modeldir_close(&t->md);
}

static double rel_diff(const float *a, const float *b, size_t n, double scale) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;   /* NaN counts as the worst */
    }
    return m / scale;
}

/* Encode f's images with t on table k and T threads; returns max|Δ| / max|ref|. */
static double run_encode(const tower *t, const vfixture *f, const gm_kernels *k, int T, float *out) {
    gemma_error err;
    gm_vision_scratch s;
    if (gm_vision_scratch_alloc(&s, &t->v, T, NULL, &err)) fail_msg("%s", err.message);
    gm_pool *pool = gm_pool_create(T);
    size_t n = (size_t)f->n_images * f->tokens * f->text_hidden;
    for (size_t i = 0; i < n; i++) out[i] = NAN;
    long before = allocations;
    gemma_status st = gm_vision_encode(&t->v, pool, k, f->pixels, f->n_images, out, &s, &err);
    long allocs = allocations - before;
    gm_pool_free(pool);
    gm_vision_scratch_free(&s);
    if (st) fail_msg("%s: %s", f->name, err.message);
    if (allocs) fail_msg("%s [%s, %d threads]: encoding allocated %ld times", f->name, k->name, T, allocs);
    return rel_diff(out, f->ref, n, f->max_ref);
}

static void test_parity(void **state) {
    (void)state;
    char names[32][128];
    int n = manifest(names, 32);
    assert_true(n >= 7);
    assert_true(allocations > 0);   /* the malloc wrapper is live */
    for (int i = 0; i < n; i++) {
        vfixture f;
        load_fixture(names[i], &f);
        tower t;
        gemma_error err;
        if (open_tower(&t, f.dir, f.is_gguf, &err)) fail_msg("%s: %s", f.name, err.message);
        const gm_vision_config *c = &t.v.cfg;
        assert_int_equal(c->image_size, f.image_size);
        assert_int_equal(c->tokens_per_image, f.tokens);
        assert_int_equal(c->projection_dim, f.text_hidden);
        if (strstr(f.name, "mlx")) assert_int_equal(t.v.layout.patch, GM_PATCH_OHWI);
        else assert_int_equal(t.v.layout.patch, GM_PATCH_OIHW);
        if (strcmp(f.name, "mlx4-vision") == 0) {
            assert_int_equal(t.v.layers[0].q.kind, GM_W_MLX);
            assert_int_equal(t.v.pos.kind, GM_W_MLX);
            assert_int_equal(t.v.layers[0].fc2.kind, GM_W_BF16);
        }
        if (strcmp(f.name, "gguf-q8_0") == 0) assert_int_equal(t.v.layers[0].fc1.kind, GM_W_GGML);
        if (strcmp(f.name, "gguf-legacy") == 0) assert_int_equal(t.v.layout.ffn_swapped, 1);
        if (f.is_gguf) assert_true(t.v.layout.soft_emb_norm_add == 0.0f);
        size_t count = (size_t)f.n_images * f.tokens * f.text_hidden;
        float *out = xalloc(count * 4), *one = xalloc(count * 4);
        double worst = 0;
        char line[512];
        int used = snprintf(line, sizeof line, "%-12s", f.name);
        for (size_t ii = 0; ii < N_ISAS; ii++) {
            const gm_kernels *k = isa_table(ii);
            if (!k) continue;
            double isa_worst = 0;
            for (int T = 1; T <= max_threads(); T++) {
                double rel = run_encode(&t, &f, k, T, out);
                if (!(rel <= 1e-4))
                    fail_msg("%s [%s, %d threads]: max|d| = %.3g of max|ref| %.3g (tol 1e-4)", f.name, k->name, T, rel,
                             f.max_ref);
                isa_worst = rel > isa_worst ? rel : isa_worst;
            }
            worst = isa_worst > worst ? isa_worst : worst;
            used += snprintf(line + used, sizeof line - (size_t)used, "  %s %.2e", k->name, isa_worst);
        }
        /* images are independent: the second alone equals the second of two */
        vfixture second = f;
        second.n_images = 1;
        second.pixels = f.pixels + 3 * (size_t)f.image_size * f.image_size;
        run_encode(&t, &second, gm_kernels_get(), 1, one);
        run_encode(&t, &f, gm_kernels_get(), 1, out);
        assert_memory_equal(one, out + (size_t)f.tokens * f.text_hidden, (size_t)f.tokens * f.text_hidden * 4);
        print_message("%s  (max|d|/max|ref|; tol 1e-4)\n", line);
        free(out), free(one);
        close_tower(&t);
        free_fixture(&f);
    }
}

/* ============================================== 4. names and conv layout */

/* Every tensor of a model directory, copied into a writer with a rename hook. */
typedef struct {
    tu_st st;
    void *copies[TU_MAX_TENSORS];
    int n_copies;
} rewrite;

static void rewrite_free(rewrite *r) {
    for (int i = 0; i < r->n_copies; i++) free(r->copies[i]);
}

/* The f32-hub tensors under the tower prefix vp and projector prefix pp; the
 * conv weight as OHWI when ohwi; `drop` (a suffix) left out; the projection
 * transposed when transpose_proj. */
static void write_variant(const char *dir, const char *vp, const char *pp, int ohwi, const char *drop,
                          int transpose_proj) {
    gm_modeldir md;
    gemma_error err;
    if (gm_modeldir_open(&md, FIX "/f32-hub", &err)) fail_msg("%s", err.message);
    rewrite *r = calloc(1, sizeof *r);
    for (size_t i = 0; i < md.tensors.n_tensors; i++) {
        const gm_tensor *t = &md.tensors.tensors[i];
        if (drop && strstr(t->name, drop)) continue;
        const char *tail;
        char name[128];
        if (!strncmp(t->name, "vision_tower.vision_model.", 26)) {
            tail = t->name + 26;
            snprintf(name, sizeof name, "%s%s", vp, tail);
        } else {
            tail = t->name + strlen("multi_modal_projector.");
            snprintf(name, sizeof name, "%s%s", pp, tail);
        }
        int64_t shape[4];
        memcpy(shape, t->shape, sizeof shape);
        const void *data = t->data;
        if (ohwi && strstr(t->name, "patch_embedding.weight")) {
            int64_t D = t->shape[0], p = t->shape[2];
            float *o = malloc(t->nbytes);
            for (int64_t a = 0; a < D; a++)
                for (int64_t ch = 0; ch < 3; ch++)
                    for (int64_t y = 0; y < p; y++)
                        for (int64_t x = 0; x < p; x++)
                            memcpy(&o[((a * p + y) * p + x) * 3 + ch], (const float *)t->data + ((a * 3 + ch) * p + y) * p + x, 4);
            shape[1] = p, shape[2] = p, shape[3] = 3;
            data = r->copies[r->n_copies++] = o;
        }
        if (transpose_proj && strstr(t->name, "mm_input_projection_weight")) {
            int64_t R = t->shape[0], C = t->shape[1];
            float *o = malloc(t->nbytes);
            for (int64_t a = 0; a < R; a++)
                for (int64_t b = 0; b < C; b++) memcpy(&o[b * R + a], (const float *)t->data + a * C + b, 4);
            shape[0] = C, shape[1] = R;
            data = r->copies[r->n_copies++] = o;
        }
        tu_st_add(&r->st, name, "F32", shape, t->ndim, data, t->nbytes);
    }
    char path[1200];
    tu_st_write(&r->st, tu_path(path, sizeof path, dir, "model.safetensors"));
    char *cfg;
    size_t n;
    if (gm_read_file(FIX "/f32-hub/config.json", 1 << 20, &cfg, &n, &err)) fail_msg("%s", err.message);
    tu_write(tu_path(path, sizeof path, dir, "config.json"), cfg, n);
    free(cfg);
    rewrite_free(r);
    free(r);
    gm_modeldir_close(&md);
}

static void test_layouts(void **state) {
    (void)state;
    vfixture f;
    load_fixture("f32-hub", &f);
    tower base;
    gemma_error err;
    if (open_tower(&base, f.dir, 0, &err)) fail_msg("%s", err.message);
    size_t count = (size_t)f.n_images * f.tokens * f.text_hidden;
    float *want = xalloc(count * 4), *got = xalloc(count * 4);
    run_encode(&base, &f, gm_kernels_get(), max_threads(), want);
    static const char *const vps[] = {"vision_tower.vision_model.", "model.vision_tower.vision_model.",
                                      "model.vision_tower.", "vision_tower."};
    static const char *const pps[] = {"multi_modal_projector.", "model.multi_modal_projector."};
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 2; o++) {
            const char *dir = tu_dir("siglip-layout");
            write_variant(dir, vps[i], pps[i & 1], o, NULL, 0);
            tower t;
            if (open_tower(&t, dir, 0, &err)) fail_msg("%s%s: %s", vps[i], o ? " OHWI" : "", err.message);
            assert_int_equal(t.v.layout.patch, o ? GM_PATCH_OHWI : GM_PATCH_OIHW);
            run_encode(&t, &f, gm_kernels_get(), max_threads(), got);
            /* same values, same order for a renamed file; OHWI sums each patch in another order */
            double rel = rel_diff(got, want, count, f.max_ref);
            if (o ? rel > 1e-6 : memcmp(got, want, count * 4) != 0)
                fail_msg("%s + %s%s: features differ by %.3g", vps[i], pps[i & 1], o ? " (OHWI)" : "", rel);
            close_tower(&t);
        }
    close_tower(&base);
    free(want), free(got);
    free_fixture(&f);
}

/* ========================================================= 5. bad input */

static const char *const GOOD_CONFIG =
    "{\"model_type\":\"gemma3\",\"mm_tokens_per_image\":16,\"text_config\":{\"hidden_size\":64},"
    "\"vision_config\":{\"model_type\":\"siglip_vision_model\",\"hidden_size\":48,\"intermediate_size\":80,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"image_size\":56,\"patch_size\":14,\"layer_norm_eps\":1e-6}}";

/* GOOD_CONFIG with `from` replaced by `to`. */
static gemma_status parse_edit(const char *from, const char *to, gm_vision_config *vc, gemma_error *err) {
    char text[2048];
    const char *at = strstr(GOOD_CONFIG, from);
    if (!at) fail_msg("'%s' not in the config", from);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - GOOD_CONFIG), GOOD_CONFIG, to, at + strlen(from));
    return gm_vision_config_parse(vc, "cfg.json", text, strlen(text), err);
}

static void test_bad_config(void **state) {
    (void)state;
    gm_vision_config vc;
    gemma_error err;
    assert_int_equal(gm_vision_config_parse(&vc, "cfg.json", GOOD_CONFIG, strlen(GOOD_CONFIG), &err), GEMMA_OK);
    assert_int_equal(vc.patches_per_side, 4);
    assert_int_equal(vc.pool, 1);
    assert_int_equal(vc.head_dim, 12);
    assert_int_equal(vc.projection_dim, 64);
    struct { const char *from, *to, *s1, *s2; } cases[] = {
        {"\"hidden_size\":48,", "", "vision_config.hidden_size", "missing"},
        {"\"patch_size\":14", "\"patch_size\":15", "image_size", "patch_size"},
        {"\"patch_size\":14", "\"patch_size\":0", "patch_size", "range"},
        {"\"patch_size\":14", "\"patch_size\":\"14\"", "patch_size", "integer"},
        {"\"num_attention_heads\":4", "\"num_attention_heads\":5", "hidden_size", "num_attention_heads"},
        {"\"mm_tokens_per_image\":16", "\"mm_tokens_per_image\":15", "mm_tokens_per_image", "square"},
        {"\"mm_tokens_per_image\":16", "\"mm_tokens_per_image\":9", "mm_tokens_per_image", "patch grid"},
        {"\"mm_tokens_per_image\":16", "\"mm_tokens_per_image\":64", "mm_tokens_per_image", "patch grid"},
        {"\"layer_norm_eps\":1e-6", "\"layer_norm_eps\":-1", "layer_norm_eps", NULL},
        {"\"layer_norm_eps\":1e-6", "\"num_channels\":1", "num_channels", NULL},
        {"\"layer_norm_eps\":1e-6", "\"vision_use_head\":true", "vision_use_head", NULL},
        {"\"layer_norm_eps\":1e-6", "\"hidden_act\":\"relu\"", "hidden_act", "relu"},
        {"\"model_type\":\"siglip_vision_model\"", "\"model_type\":\"clip_vision_model\"", "vision_config.model_type", NULL},
        {"\"image_size\":56,\"patch_size\":14", "\"image_size\":16384,\"patch_size\":1", "patches", "exceed"},
        {"\"intermediate_size\":80", "\"intermediate_size\":4000000000", "intermediate_size", "range"},
        {"\"model_type\":\"gemma3\"", "\"model_type\":\"gemma3_text\"", "text-only", NULL},
        {"\"text_config\":{\"hidden_size\":64}", "\"text_config\":[]", "text_config", NULL},
        {"\"vision_config\":{", "\"vision_confi\":{", "vision_config", "missing"},
        {"\"layer_norm_eps\":1e-6}}", "\"layer_norm_eps\":1e-6}", "not valid JSON", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_message(parse_edit(cases[i].from, cases[i].to, &vc, &err), &err, "cfg.json", cases[i].s1, cases[i].s2);
}

/* Binding the folder dir must fail with a message about `file` (the folder, or the file at fault) and s1, s2. */
static void expect_bind_error(const char *dir, const char *file, const char *s1, const char *s2) {
    tower t;
    gemma_error err;
    gemma_status st = open_tower(&t, dir, 0, &err);
    expect_message(st, &err, file, s1, s2);
    close_tower(&t);
}

static void edit_config(const char *dir, const char *from, const char *to) {
    char path[1200], *text;
    size_t n;
    gemma_error err;
    tu_path(path, sizeof path, dir, "config.json");
    if (gm_read_file(path, 1 << 20, &text, &n, &err)) fail_msg("%s", err.message);
    char *at = strstr(text, from);
    if (!at) fail_msg("'%s' not in %s", from, path);
    char *out = malloc(n + strlen(to) + 1);
    snprintf(out, n + strlen(to) + 1, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    tu_write_str(path, out);
    free(out);
    free(text);
}

static void test_bad_tensors(void **state) {
    (void)state;
    const char *dir = tu_dir("siglip-bad");
    char where[1200];
    /* config sizes that disagree with the tensors */
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, NULL, 0);
    edit_config(dir, "\"intermediate_size\": 80", "\"intermediate_size\": 96");
    snprintf(where, sizeof where, "%s/model.safetensors", dir);
    expect_bind_error(dir, where, "mlp.fc1.weight", "[96, 48]");
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, NULL, 0);
    edit_config(dir, "\"patch_size\": 6", "\"patch_size\": 3");   /* 84 / 3 = 28 per side, 49 tokens still pool */
    expect_bind_error(dir, where, "patch_embedding.weight", "OIHW");
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, NULL, 0);
    edit_config(dir, "\"hidden_size\": 64", "\"hidden_size\": 32");   /* the text hidden: projection columns */
    expect_bind_error(dir, where, "mm_input_projection_weight", "[48, 32]");
    /* missing pieces */
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, "mm_input_projection", 0);
    expect_bind_error(dir, dir, "mm_input_projection_weight", "no multimodal projector");
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, "patch_embedding.weight", 0);
    expect_bind_error(dir, dir, "patch_embedding.weight", "no vision tower");
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, "layers.1.layer_norm2.bias", 0);
    expect_bind_error(dir, dir, "layers.1.layer_norm2.bias", "missing");
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, "mm_soft_emb_norm", 0);
    expect_bind_error(dir, dir, "mm_soft_emb_norm.weight", "missing");
    /* a projection stored like a Linear ([text, vision]) */
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, NULL, 1);
    expect_bind_error(dir, where, "mm_input_projection_weight", "transposed");
    /* a text-only config */
    write_variant(dir, "vision_tower.vision_model.", "multi_modal_projector.", 0, NULL, 0);
    tu_path(where, sizeof where, dir, "config.json");
    tu_write_str(where, "{\"model_type\":\"gemma3_text\",\"hidden_size\":64,\"num_attention_heads\":2,"
                        "\"num_key_value_heads\":1,\"head_dim\":32,\"num_hidden_layers\":1}");
    expect_bind_error(dir, where, "text-only", NULL);

    /* a pool larger than the scratch was made for */
    tower t;
    gemma_error err;
    if (open_tower(&t, FIX "/gguf-f16/mmproj.gguf", 1, &err)) fail_msg("%s", err.message);
    gm_vision_scratch s;
    if (gm_vision_scratch_alloc(&s, &t.v, 1, NULL, &err)) fail_msg("%s", err.message);
    /* (a second thread only where threads are cheap: GEMMA_PARITY_THREADS=1 under qemu) */
    gm_pool *pool = gm_pool_create(max_threads() > 1 ? 2 : 1);
    float px[1], out[1];
    if (max_threads() > 1)
        expect_message(gm_vision_encode(&t.v, pool, gm_kernels_get(), px, 1, out, &s, &err), &err, t.v.source,
                       "2 threads", NULL);
    expect_message(gm_vision_encode(&t.v, pool, gm_kernels_get(), NULL, 1, out, &s, &err), &err, t.v.source, "pixels",
                   NULL);
    assert_int_equal(gm_vision_scratch_bytes(&t.v, 0), 0);
    assert_int_equal(gm_vision_scratch_bytes(&t.v, GM_VISION_MAX_THREADS + 1), 0);
    gm_pool_free(pool);
    gm_vision_scratch_free(&s);
    close_tower(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),    cmocka_unit_test(test_gemm),       cmocka_unit_test(test_long_sequence),       cmocka_unit_test(test_parity),
        cmocka_unit_test(test_layouts),    cmocka_unit_test(test_bad_config), cmocka_unit_test(test_bad_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
