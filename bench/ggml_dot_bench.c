/* ggml_dot_bench.c - weight bytes per second of the GGUF block dot per kernel table.
 *
 * Why: decode is one matrix-vector product per weight per token, so the speed
 * of gm_kernels.dot_ggml over a row set bounds tokens/s; this compares each
 * SIMD table with the scalar reference on the types of the Gemma 3 270M
 * Q4_K_M GGUF (and Q4_0, and F16 as a yardstick).  The rows are random
 * blocks with typical f16 scales, rows x cols values per type (default
 * 640 x 2048, about the size of one 270M projection: it stays in L2/L3, so
 * this measures the kernel, not DRAM; use -r 16384 for a set larger than the
 * caches).  Prints, per table
 * and type, the best of -n passes in GB/s of weight bytes and the speedup
 * over scalar.  One thread.  Build by hand against a Release build:
 *
 *   gcc -O2 -std=c11 -Iinclude -Isrc bench/ggml_dot_bench.c build/libgemma.a -lm -lpthread -o ggml_dot_bench
 *   ggml_dot_bench [-r rows] [-c cols] [-n passes]
 */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime under -std=c11 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "quant/ggml_blocks.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rng = 12345;
static uint32_t next_u32(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng ^ (rng >> 15);
}

typedef struct {
    uint32_t type;
    int f16_at[2], nf16;   /* byte offsets of the f16 scales in a block */
} bench_type;

static const bench_type types[] = {
    {GM_GGML_Q5_0, {0}, 1}, {GM_GGML_Q4_K, {0, 2}, 2}, {GM_GGML_Q6_K, {208}, 1},
    {GM_GGML_Q8_0, {0}, 1}, {GM_GGML_Q4_0, {0}, 1}, {GM_GGML_F16, {0}, 0},
};
enum { NTYPES = sizeof types / sizeof types[0] };

int main(int argc, char **argv) {
    int rows = 640, cols = 2048, passes = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-r") == 0) rows = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0) cols = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-n") == 0) passes = atoi(argv[i + 1]);
    }
    if (rows < 1 || cols < 256 || cols % 256 || passes < 1) {
        fprintf(stderr, "ggml_dot_bench: rows >= 1, cols a multiple of 256, passes >= 1\n");
        return 2;
    }
    float *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    uint8_t *w[NTYPES];
    size_t row_bytes[NTYPES];
    for (int i = 0; i < cols; i++) x[i] = (float)(next_u32() >> 8) / 16777216.0f - 0.5f;
    for (int t = 0; t < NTYPES; t++) {
        int ts = gm_ggml_type_size(types[t].type);
        row_bytes[t] = gm_ggml_row_bytes(types[t].type, cols);
        size_t total = row_bytes[t] * (size_t)rows;
        w[t] = malloc(total + 1);
        uint8_t *p = w[t] + 1;   /* mmapped GGUF tensors need not be aligned */
        for (size_t i = 0; i < total; i++) p[i] = (uint8_t)(next_u32() >> 24);
        if (types[t].type == GM_GGML_F16)
            for (size_t i = 1; i < total; i += 2) p[i] &= 0x3b;   /* finite, |v| < 1 */
        for (size_t b = 0; b < total / (size_t)ts; b++)
            for (int f = 0; f < types[t].nf16; f++) {
                uint16_t h = (uint16_t)(0x1800 + next_u32() % 0x1000);   /* ~2^-9 .. 2^-5 */
                memcpy(p + b * (size_t)ts + types[t].f16_at[f], &h, 2);
            }
    }

    static const char *const isas[] = {"scalar", "avx2", "avx512", "neon"};
    double scalar_gbs[NTYPES] = {0};
    printf("%d rows x %d values, best of %d passes, GB/s of weight bytes (x scalar)\n", rows, cols, passes);
    printf("%-8s", "table");
    for (int t = 0; t < NTYPES; t++) printf("  %-16s", gm_ggml_type_name(types[t].type));
    printf("\n");
    for (int a = 0; a < 4; a++) {
        const gm_kernels *k = gm_kernels_by_name(isas[a]);
        if (!k) continue;
        printf("%-8s", isas[a]);
        for (int t = 0; t < NTYPES; t++) {
            const uint8_t *p = w[t] + 1;
            double best = INFINITY, check = 0;
            for (int pass = 0; pass < passes; pass++) {
                double t0 = now_s();
                for (int r = 0; r < rows; r++) y[r] = k->dot_ggml(types[t].type, p + (size_t)r * row_bytes[t], x, cols);
                double dt = now_s() - t0;
                if (dt < best) best = dt;
            }
            for (int r = 0; r < rows; r++) check += y[r];   /* keeps the calls live */
            double gbs = (double)row_bytes[t] * rows / best * 1e-9;
            if (a == 0) scalar_gbs[t] = gbs;
            char cell[32];
            snprintf(cell, sizeof cell, "%.2f (%.1fx)", gbs, gbs / scalar_gbs[t]);
            printf("  %-16s", cell);
            if (!isfinite(check)) printf("!");
        }
        printf("\n");
    }
    for (int t = 0; t < NTYPES; t++) free(w[t]);
    free(x);
    free(y);
    return 0;
}
