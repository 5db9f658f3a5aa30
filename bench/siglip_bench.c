/* siglip_bench.c - speed of the vision tower on the MedGemma shape, with random weights.
 *
 * MedGemma / Gemma 3 4B's SigLIP (896 px, patch 14 -> 4096 patches, hidden
 * 1152, ffn 4304, 16 heads, 27 layers) + projector to 2560 is ~5.5 TFLOP per
 * image, nearly all of it in GEMMs; this prints the GEMM rate on the
 * tower's three shapes and the time of whole encodes.  No checkpoint is
 * needed: the weights are random bf16 (or f32) held in memory.
 *
 *   siglip_bench [threads=2] [layers=27] [bf16|f32] [isa] [runs=1] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "kernels/gemm.h"
#include "models/siglip.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process: on a shared machine wall time includes
 * the time other programs held our cores, CPU time does not. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t rng = 12345;
static float urand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* A [rows, cols] weight of random values scaled by `scale`, bf16 or f32. */
static gm_weight make_weight(int rows, int cols, float scale, int bf16) {
    size_t n = (size_t)rows * cols, es = bf16 ? 2 : 4;
    uint8_t *p = malloc(n * es);
    if (!p) abort();
    for (size_t i = 0; i < n; i++) {
        float v = urand() * scale;
        if (bf16) {
            uint16_t h = gm_f32_to_bf16(v);
            memcpy(p + 2 * i, &h, 2);
        } else {
            memcpy(p + 4 * i, &v, 4);
        }
    }
    gm_weight w = {.kind = bf16 ? GM_W_BF16 : GM_W_F32, .rows = rows, .cols = cols, .data = p,
                   .row_bytes = (size_t)cols * es};
    return w;
}

static float *make_vec(int n, float lo, float hi) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * 0.5f * (urand() + 1.0f);
    return v;
}

static void bench_gemm(gm_pool *pool, const gm_kernels *k, int T, const char *what, int M, int N, int K, int bf16) {
    gm_weight w = make_weight(N, K, 0.05f, bf16);
    float *a, *c;   /* 64-byte aligned like the encoder's scratch: a C row split across cache lines costs ~20 % */
    if (posix_memalign((void **)&a, 64, (size_t)M * K * sizeof(float)) || posix_memalign((void **)&c, 64, (size_t)M * N * sizeof(float)))
        abort();
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = urand();
    float *bufs[GM_VISION_MAX_THREADS];
    for (int t = 0; t < T; t++)
        if (posix_memalign((void **)&bufs[t], 64, gm_gemm_buf_floats(0) * sizeof(float))) abort();
    gm_gemm_args g = {.M = M, .N = N, .K = K, .a = a, .lda = (size_t)K, .b = &w, .c = c, .ldc = (size_t)N};
    gm_gemm(pool, k, &g, bufs);   /* warm up */
    int reps = 3;
    double t0 = now();
    for (int r = 0; r < reps; r++) gm_gemm(pool, k, &g, bufs);
    double dt = (now() - t0) / reps;
    printf("  gemm %-10s M %5d N %5d K %5d: %7.2f ms  %6.1f GFLOP/s\n", what, M, N, K, dt * 1e3,
           2.0 * M * N * K / dt * 1e-9);
    for (int t = 0; t < T; t++) free(bufs[t]);
    free(a);
    free(c);
    free((void *)w.data);
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 2;
    int layers = argc > 2 ? atoi(argv[2]) : 27;
    int bf16 = !(argc > 3 && strcmp(argv[3], "f32") == 0);
    const gm_kernels *k = argc > 4 && strcmp(argv[4], "auto") != 0 ? gm_kernels_by_name(argv[4]) : gm_kernels_get();
    int runs = argc > 5 ? atoi(argv[5]) : 1;
    if (T < 1 || T > GM_VISION_MAX_THREADS || layers < 1 || !k || runs < 1 || runs > 16) {
        fprintf(stderr, "usage: siglip_bench [threads] [layers] [bf16|f32] [isa|auto] [runs 1-16]\n");
        return 2;
    }
    gm_pool *pool = gm_pool_create(T);
    printf("siglip_bench: %d threads, kernels %s (tile %dx%d), %s weights\n", T, k->name, k->gemm_mr, k->gemm_nr,
           bf16 ? "bf16" : "f32");
    bench_gemm(pool, k, T, "qkv/out", 4096, 1152, 1152, bf16);
    bench_gemm(pool, k, T, "fc1", 4096, 4304, 1152, bf16);
    bench_gemm(pool, k, T, "fc2", 4096, 1152, 4304, bf16);

    gm_vision v;
    memset(&v, 0, sizeof v);
    gm_vision_config *c = &v.cfg;
    *c = (gm_vision_config){.image_size = 896, .patch_size = 14, .hidden = 1152, .ffn = 4304, .layers = layers,
                            .heads = 16, .eps = 1e-6f, .projection_dim = 2560, .tokens_per_image = 256};
    gemma_error err;
    if (gm_vision_config_check(c, "bench", "", &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    v.layout = (gm_vision_layout){.patch = GM_PATCH_OIHW, .soft_emb_norm_add = 1.0f};
    int D = c->hidden, F = c->ffn, P = c->n_patches;
    v.patch = make_weight(D, 3 * 14 * 14, 0.07f, bf16);
    v.pos = make_weight(P, D, 0.5f, bf16);
    v.proj = make_weight(D, c->projection_dim, 0.03f, bf16);
    v.patch_b = make_vec(D, -0.5f, 0.5f);
    v.post_w = make_vec(D, 0.5f, 1.5f);
    v.post_b = make_vec(D, -0.5f, 0.5f);
    v.soft_norm = make_vec(D, 0.5f, 1.5f);
    v.layers = calloc((size_t)layers, sizeof *v.layers);
    snprintf(v.source, sizeof v.source, "bench");
    for (int l = 0; l < layers; l++) {
        gm_vision_layer *L = &v.layers[l];
        L->q = make_weight(D, D, 0.05f, bf16);
        L->k = make_weight(D, D, 0.05f, bf16);
        L->v = make_weight(D, D, 0.05f, bf16);
        L->o = make_weight(D, D, 0.03f, bf16);
        L->fc1 = make_weight(F, D, 0.05f, bf16);
        L->fc2 = make_weight(D, F, 0.03f, bf16);
        L->ln1_w = make_vec(D, 0.5f, 1.5f), L->ln1_b = make_vec(D, -0.5f, 0.5f);
        L->ln2_w = make_vec(D, 0.5f, 1.5f), L->ln2_b = make_vec(D, -0.5f, 0.5f);
        L->q_b = make_vec(D, -0.5f, 0.5f), L->k_b = make_vec(D, -0.5f, 0.5f), L->v_b = make_vec(D, -0.5f, 0.5f);
        L->o_b = make_vec(D, -0.5f, 0.5f), L->fc1_b = make_vec(F, -0.5f, 0.5f), L->fc2_b = make_vec(D, -0.5f, 0.5f);
    }
    gm_vision_scratch s;
    if (gm_vision_scratch_alloc(&s, &v, T, NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    size_t npx = 3 * (size_t)896 * 896;
    float *px = malloc(npx * sizeof(float)), *out = malloc((size_t)256 * 2560 * sizeof(float));
    for (size_t i = 0; i < npx; i++) px[i] = urand();
    double flops = 2.0 * P * D * (3.0 * 14 * 14) + 2.0 * 256 * D * 2560 +
                   layers * (2.0 * P * (4.0 * D * D + 2.0 * D * F) + 4.0 * (double)P * P * D);
    static const char *const phase_names[GM_VISION_PHASES] = {"embed", "layernorm", "qkv", "attention", "out_proj",
                                                              "fc1", "gelu", "fc2", "projector"};
    double phase[GM_VISION_PHASES] = {0}, times[16];
    s.phase_seconds = phase;
    double cpu[16];
    for (int r = 0; r < runs; r++) {
        double t0 = now(), c0 = cpu_now();
        if (gm_vision_encode(&v, pool, k, px, 1, out, &s, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        times[r] = now() - t0;
        cpu[r] = cpu_now() - c0;
    }
    double chk = 0;
    for (int i = 0; i < 256 * 2560; i++) chk += out[i] * out[i];
    for (int r = 0; r < runs; r++)
        printf("  encode %d: %.0f ms, %.1f GFLOP/s (CPU time %.0f ms: %.1f GFLOP/s per busy core)\n", r + 1,
               times[r] * 1e3, flops / times[r] * 1e-9, cpu[r] * 1e3, flops / cpu[r] * 1e-9);
    for (int i = 1; i < runs; i++)   /* sort for min / median / max */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    double total = 0;
    for (int i = 0; i < GM_VISION_PHASES; i++) total += phase[i];
    printf("  where the time goes (mean of %d encodes):", runs);
    for (int i = 0; i < GM_VISION_PHASES; i++)
        printf(" %s %.0f ms (%.1f%%)", phase_names[i], phase[i] * 1e3 / runs, 100.0 * phase[i] / total);
    printf("\n  encode: %d layers, %.2f TFLOP, %d runs: min %.0f / median %.0f / max %.0f ms (%.0f ms for 27 layers); "
           "GFLOP/s min %.1f / median %.1f / max %.1f  [checksum %.6g, scratch %zu MB]\n",
           layers, flops * 1e-12, runs, times[0] * 1e3, times[runs / 2] * 1e3, times[runs - 1] * 1e3,
           times[0] * 1e3 * 27 / layers, flops / times[runs - 1] * 1e-9, flops / times[runs / 2] * 1e-9,
           flops / times[0] * 1e-9, chk, s.bytes >> 20);
    gm_vision_scratch_free(&s);
    gm_pool_free(pool);
    return 0;
}
