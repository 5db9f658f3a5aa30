/* matvec_bench.c - the decode kernel alone: MLX-quantized matrix x vector
 * (kernels.h matvec_mlx) on one or more threads, every ISA this CPU runs, for a
 * matrix that fits in L2 (compute bound) and one far larger than L3 (memory
 * bound).  Prints GB/s of weight bytes and G weights/s.
 *   gcc -O2 -Iinclude -Isrc bench/matvec_bench.c build/libgemma.a -lm -lpthread -o /tmp/matvec_bench
 *   /tmp/matvec_bench [bits] [group_size] [threads] [cols] [tokens]
 * tokens > 1: the int8 kernel (matmul_mlx_q8) on that many input rows. */
#include "core/dtype.h"
#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/mlx_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    const gm_kernels *k;
    const gm_mlx_rows *m;
    int rows;
    const float *xp, *xsum;
    float *y;
    const int8_t *x8;   /* non-NULL: the int8 path (GEMMA_NUMERICS_INT8) */
    const float *x8d;
    int tokens;         /* int8 path: this many input rows at once (prefill) */
} job;

static void run_rows(void *arg, int t, int nt) {
    const job *j = arg;
    int b, e;
    gm_split_range(j->rows, 8, t, nt, &b, &e);
    if (j->x8)
        j->k->matmul_mlx_q8(j->m, b, e, j->tokens, j->x8, j->x8d, j->xsum, j->y + b, (size_t)j->rows);
    else
        j->k->matvec_mlx(j->m, b, e, j->xp, j->xsum, j->y + b);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int bits = argc > 1 ? atoi(argv[1]) : 4, gs = argc > 2 ? atoi(argv[2]) : 64;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    gm_pool *pool = gm_pool_create(threads);
    const int cols = argc > 4 ? atoi(argv[4]) : 2048, big_rows = (int)(((size_t)1 << 29) / ((size_t)cols * bits / 8)), small_rows = 256;
    size_t row_bytes = (size_t)cols * bits / 8, groups = cols / gs;
    uint8_t *w = malloc(row_bytes * big_rows);
    uint16_t *s = malloc(2 * groups * big_rows), *b = malloc(2 * groups * big_rows);
    const int tokens = argc > 5 ? atoi(argv[5]) : 1;
    float *x = malloc(cols * 4), *xp = malloc(cols * 4), *xsum = calloc(groups * (size_t)tokens, 4);
    float *y = malloc((size_t)big_rows * 4 * (size_t)tokens);
    uint32_t seed = 1;
    for (size_t i = 0; i < row_bytes * big_rows; i++) w[i] = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < groups * big_rows; i++) s[i] = 0x3c00, b[i] = 0xbc00;   /* bf16 0.0078, -0.0078 */
    for (int i = 0; i < cols; i++) x[i] = (float)(i % 7) - 3.0f;
    for (size_t g = 0; g < groups; g++) xsum[g] = 0;
    int8_t *x8 = malloc((size_t)cols * (size_t)tokens);
    float *x8d = malloc(gm_mlx_q8_dxv_floats(cols) * sizeof(float) * (size_t)tokens);
    int q8 = gm_mlx_q8_ok(bits, gs, cols);
    for (int t = 0; q8 && t < tokens; t++)
        gm_mlx_quantize_x8(x, cols, bits, x8 + (size_t)t * cols, x8d + (size_t)t * gm_mlx_q8_dxv_floats(cols));
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 2 * 4; i++) {
        const gm_kernels *k = gm_kernels_by_name(isas[i % 4]);
        int int8 = i >= 4;
        if (!k || (int8 && !q8) || (tokens > 1 && !int8)) continue;
        k->mlx_prep_x(x, cols, bits, gs, xp);
        for (int big = 0; big < 2; big++) {
            int rows = big ? big_rows : small_rows, reps = big ? 4 : 2000 / tokens + 1;
            if (big && tokens > 1) continue;
            if (i % 4 == 0) reps = big ? 1 : 50;
            gm_mlx_rows m = {w, row_bytes, (const uint8_t *)s, (const uint8_t *)b, GM_DT_BF16, bits, gs, cols};
            double best = 1e9;
            for (int r = 0; r < 3; r++) {
                double t0 = now();
                job jb = {k, &m, rows, xp, xsum, y, int8 ? x8 : NULL, x8d, tokens};
                for (int q = 0; q < reps; q++) gm_pool_run(pool, run_rows, &jb);
                double dt = (now() - t0) / reps;
                if (dt < best) best = dt;
            }
            double bytes = (double)rows * (row_bytes + 4 * groups) * tokens;
            printf("%-7s %s %d-bit g%d %s: %6.2f GB/s  %6.2f Gweights/s\n", k->name, int8 ? "int8" : "f32 ", bits, gs,
                   big ? "DRAM (537 MB)" : "L2   (256 KB)", bytes / best / 1e9, (double)rows * cols / best / 1e9);
        }
    }
    return 0;
}
