/* matvec_bench.c - the decode kernel alone: MLX-quantized matrix x vector
 * (kernels.h matvec_mlx) on one or more threads, every ISA this CPU runs, for a
 * matrix that fits in L2 (compute bound) and one far larger than L3 (memory
 * bound).  Prints GB/s of weight bytes and G weights/s.
 *   gcc -O2 -Iinclude -Isrc bench/matvec_bench.c build/libgemma.a -lm -lpthread -o /tmp/matvec_bench
 *   /tmp/matvec_bench [bits] [group_size] [threads] [cols] */
#include "core/dtype.h"
#include "core/threadpool.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    const gm_kernels *k;
    const gm_mlx_rows *m;
    int rows;
    const float *xp, *xsum;
    float *y;
} job;

static void run_rows(void *arg, int t, int nt) {
    const job *j = arg;
    int b, e;
    gm_split_range(j->rows, 8, t, nt, &b, &e);
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
    float *x = malloc(cols * 4), *xp = malloc(cols * 4), *xsum = malloc(groups * 4), *y = malloc(big_rows * 4);
    uint32_t seed = 1;
    for (size_t i = 0; i < row_bytes * big_rows; i++) w[i] = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < groups * big_rows; i++) s[i] = 0x3c00, b[i] = 0xbc00;   /* bf16 0.0078, -0.0078 */
    for (int i = 0; i < cols; i++) x[i] = (float)(i % 7) - 3.0f;
    for (size_t g = 0; g < groups; g++) xsum[g] = 0;
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 4; i++) {
        const gm_kernels *k = gm_kernels_by_name(isas[i]);
        if (!k) continue;
        k->mlx_prep_x(x, cols, bits, gs, xp);
        for (int big = 0; big < 2; big++) {
            int rows = big ? big_rows : small_rows, reps = big ? 4 : 2000;
            if (!i) reps = big ? 1 : 50;
            gm_mlx_rows m = {w, row_bytes, (const uint8_t *)s, (const uint8_t *)b, GM_DT_BF16, bits, gs, cols};
            double best = 1e9;
            for (int r = 0; r < 3; r++) {
                double t0 = now();
                job jb = {k, &m, rows, xp, xsum, y};
                for (int q = 0; q < reps; q++) gm_pool_run(pool, run_rows, &jb);
                double dt = (now() - t0) / reps;
                if (dt < best) best = dt;
            }
            double bytes = (double)rows * (row_bytes + 4 * groups);
            printf("%-7s %d-bit g%d %s: %6.2f GB/s  %6.2f Gweights/s\n", k->name, bits, gs,
                   big ? "DRAM (537 MB)" : "L2   (256 KB)", bytes / best / 1e9, (double)rows * cols / best / 1e9);
        }
    }
    return 0;
}
