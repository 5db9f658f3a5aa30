/* probe.c - see probe.h.  The FMA loops keep 12 accumulators in registers
 * (more than FMA latency x issue width on any current core), each ISA
 * compiled through a target attribute so no extra build flags are needed. */
#include "kernels/probe.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(GEMMA_HAVE_X86)
#include <immintrin.h>
#endif
#if defined(GEMMA_HAVE_NEON)
#include <arm_neon.h>
#endif

enum { CHAINS = 12 };
static const float probe_m = 0.999999f, probe_c = 1e-7f;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float init_value(int chain) { return 1.0f + 0.125f * (float)chain; }

static float fma_scalar(long iters) {
    float acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = init_value(j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = fmaf(acc[j], probe_m, probe_c);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += acc[j];
    return s;
}

#if defined(GEMMA_HAVE_X86)
#define X86_LOOP(vec, set1, fmadd, first)                                     \
    vec acc[CHAINS];                                                          \
    for (int j = 0; j < CHAINS; j++) acc[j] = set1(init_value(j));            \
    vec m = set1(probe_m), c = set1(probe_c);                                 \
    for (long i = 0; i < iters; i++)                                          \
        _Pragma("GCC unroll 12")                                              \
        for (int j = 0; j < CHAINS; j++) acc[j] = fmadd(acc[j], m, c);        \
    float s = 0;                                                              \
    for (int j = 0; j < CHAINS; j++) s += first(acc[j]);                      \
    return s;

__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    X86_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32)
}
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
    X86_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
}
#endif

#if defined(GEMMA_HAVE_NEON)
static float fma_neon(long iters) {
    float32x4_t acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = vdupq_n_f32(init_value(j));
    float32x4_t m = vdupq_n_f32(probe_m), c = vdupq_n_f32(probe_c);
    for (long i = 0; i < iters; i++)
        _Pragma("GCC unroll 12")
        for (int j = 0; j < CHAINS; j++) acc[j] = vfmaq_f32(c, acc[j], m);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += vgetq_lane_f32(acc[j], 0);
    return s;
}
#endif

float gm_probe_fma_loop(const char *isa, long iters, int *lanes) {
    *lanes = 0;
    if (!gm_kernels_by_name(isa)) return 0;
    if (!strcmp(isa, "scalar")) {
        *lanes = 1;
        return fma_scalar(iters);
    }
#if defined(GEMMA_HAVE_X86)
    if (!strcmp(isa, "avx512")) {
        *lanes = 16;
        return fma_avx512(iters);
    }
    if (!strcmp(isa, "avx2")) {
        *lanes = 8;
        return fma_avx2(iters);
    }
#endif
#if defined(GEMMA_HAVE_NEON)
    if (!strcmp(isa, "neon")) {
        *lanes = 4;
        return fma_neon(iters);
    }
#endif
    return 0;
}

/* ------------------------------------------------------------ pool tasks */

typedef struct {
    const char *isa;
    long iters;
    volatile float sink[64];
    const float *buf;
    size_t n;
} probe_task;

static void fma_task(void *arg, int thread, int n_threads) {
    probe_task *t = arg;
    int lanes;
    t->sink[thread % 64] = gm_probe_fma_loop(t->isa, t->iters, &lanes);
}

double gm_probe_fma_gflops(gm_pool *pool, double seconds) {
    probe_task t = {gm_kernels_get()->name, 1 << 16, {0}, NULL, 0};
    int lanes;
    gm_probe_fma_loop(t.isa, 1, &lanes);
    if (!lanes) return 0;
    double best = 0, spent = 0;
    while (spent < seconds) {   /* grow the loop until one run takes ~1/8 of the budget, keep the best rate */
        double t0 = now_seconds();
        gm_pool_run(pool, fma_task, &t);
        double dt = now_seconds() - t0;
        spent += dt;
        double rate = 2.0 * CHAINS * lanes * (double)t.iters * gm_pool_size(pool) / dt / 1e9;
        if (rate > best) best = rate;
        if (dt < seconds / 8 && t.iters < (1L << 40)) t.iters *= 2;
    }
    return best;
}

static void read_task(void *arg, int thread, int n_threads) {
    probe_task *t = arg;
    size_t per = t->n / (size_t)n_threads / 16 * 16, begin = per * (size_t)thread;
    t->sink[thread % 64] = gm_kernels_get()->max_f32(t->buf + begin, (int)per);
}

static void touch_task(void *arg, int thread, int n_threads) {
    probe_task *t = arg;   /* first touch by the thread that reads it (NUMA-local pages) */
    size_t per = t->n / (size_t)n_threads / 16 * 16, begin = per * (size_t)thread;
    float *b = (float *)t->buf;
    for (size_t i = 0; i < per; i++) b[begin + i] = (float)(i & 1023);
}

double gm_probe_read_gbs(gm_pool *pool, size_t bytes, int reps) {
    size_t n = bytes / sizeof(float);
    int nt = gm_pool_size(pool);
    if (n / (size_t)nt > (size_t)1 << 30) n = (size_t)nt << 30;   /* max_f32 takes an int count */
    float *buf = malloc(n * sizeof(float));
    if (!buf) return -1;
    probe_task t = {NULL, 0, {0}, buf, n};
    gm_pool_run(pool, touch_task, &t);
    double best = 0;
    size_t read = n / (size_t)nt / 16 * 16 * (size_t)nt * sizeof(float);
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        gm_pool_run(pool, read_task, &t);
        double gbs = (double)read / (now_seconds() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    free(buf);
    return best;
}
