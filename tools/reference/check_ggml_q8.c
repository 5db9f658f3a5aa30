/* check_ggml_q8.c - src/quant/ggml_q8.c against the ggml-cpu that llama.cpp runs.
 *
 * The 8-bit activation path claims llama.cpp's bits, so check it against
 * llama.cpp's own library, not a reading of its source: load the
 * libggml-cpu.so that llama-cpp-python installs (it exports
 * quantize_row_q8_0/q8_1/q8_K and every ggml_vec_dot_*), feed it and us the
 * same random rows and require identical bytes and floats, for the scalar
 * definition and for the kernel table this CPU picks.  A reference tool, not
 * a test: it needs that library.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -Iinclude tools/reference/check_ggml_q8.c \
 *      build/libgemma.a -o /tmp/check_ggml_q8 -ldl -lm -lpthread
 *   /tmp/check_ggml_q8 "$(python3 -c 'import llama_cpp,os;print(os.path.dirname(llama_cpp.__file__))')/lib" [TRIALS]
 *
 * Exit 0 when everything matches.  (llama.cpp's tiled K-quant GEMM, which
 * gm_q8_dot_row_gemm follows, is not exported; it was checked on the real
 * model's matmul outputs instead, see tools/reference/README.md.) */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "quant/ggml_blocks.h"
#include "quant/ggml_q8.h"

typedef void (*from_float_fn)(const float *x, void *y, int64_t k);
typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);

static uint32_t rng = 777;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}
static float gauss(void) {   /* roughly normal: activations have tails, not a flat spread */
    float s = 0;
    for (int i = 0; i < 6; i++) s += (float)(next_u32() >> 8) / 16777216.0f * 2.0f - 1.0f;
    return s;
}

static void *load(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) fprintf(stderr, "%s\n", dlerror());
    return h;
}

/* Random weight bytes with typical finite f16 scales (and mins). */
static void random_row(uint32_t t, uint8_t *w, int n) {
    int bs = gm_ggml_block_size(t), sz = gm_ggml_type_size(t);
    int two = t == GM_GGML_Q4_1 || t == GM_GGML_Q5_1 || t == GM_GGML_Q4_K || t == GM_GGML_Q5_K;
    for (int i = 0; i < n / bs * sz; i++) w[i] = (uint8_t)next_u32();
    for (int b = 0; b < n / bs; b++)
        for (int f = 0; f < 1 + two; f++) {
            uint16_t d = (uint16_t)((0x0400 + next_u32() % 0x3000) | (next_u32() & 0x8000));
            memcpy(w + (size_t)b * sz + (t == GM_GGML_Q6_K ? 208 : 2 * f), &d, 2);
        }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: check_ggml_q8 LIBDIR [TRIALS]\n");
        return 2;
    }
    if (!load(argv[1], "libggml-base.so")) return 2;
    void *cpu = load(argv[1], "libggml-cpu.so");
    if (!cpu) return 2;
    void (*cpu_init)(void) = (void (*)(void))dlsym(cpu, "ggml_cpu_init");
    if (cpu_init) cpu_init();   /* fills ggml's f16 tables */
    const struct { uint32_t act; const char *sym; } quants[] = {
        {GM_GGML_Q8_0, "quantize_row_q8_0"}, {GM_GGML_Q8_1, "quantize_row_q8_1"}, {GM_GGML_Q8_K, "quantize_row_q8_K"}};
    const struct { uint32_t type; const char *sym; } dots[] = {
        {GM_GGML_Q4_0, "ggml_vec_dot_q4_0_q8_0"}, {GM_GGML_Q5_0, "ggml_vec_dot_q5_0_q8_0"},
        {GM_GGML_Q8_0, "ggml_vec_dot_q8_0_q8_0"}, {GM_GGML_Q4_1, "ggml_vec_dot_q4_1_q8_1"},
        {GM_GGML_Q5_1, "ggml_vec_dot_q5_1_q8_1"}, {GM_GGML_Q4_K, "ggml_vec_dot_q4_K_q8_K"},
        {GM_GGML_Q5_K, "ggml_vec_dot_q5_K_q8_K"}, {GM_GGML_Q6_K, "ggml_vec_dot_q6_K_q8_K"}};
    from_float_fn qf[3];
    vec_dot_fn df[8];
    for (int i = 0; i < 3; i++)
        if (!(qf[i] = (from_float_fn)dlsym(cpu, quants[i].sym))) return fprintf(stderr, "no %s\n", quants[i].sym), 2;
    for (int i = 0; i < 8; i++)
        if (!(df[i] = (vec_dot_fn)dlsym(cpu, dots[i].sym))) return fprintf(stderr, "no %s\n", dots[i].sym), 2;

    const gm_kernels *k = gm_kernels_get();
    int trials = argc > 2 ? atoi(argv[2]) : 1000, bad = 0;
    static float x[2048];
    static uint8_t theirs[4096], ours[4096], w[4096];
    for (int tr = 0; tr < trials; tr++) {
        int n = 256 * (1 + (int)(next_u32() % 8));
        float scale = tr % 3 == 0 ? 100.0f : tr % 3 == 1 ? 1.0f : 1e-3f;
        for (int i = 0; i < n; i++) x[i] = gauss() * scale;
        for (int i = 0; i < 3; i++) {
            size_t rb = gm_q8_row_bytes(quants[i].act, n);
            qf[i](x, theirs, n);
            k->quantize_q8(quants[i].act, x, ours, n);
            if (memcmp(theirs, ours, rb) && bad++ < 10) printf("%s n=%d: different bytes\n", quants[i].sym, n);
        }
        for (int i = 0; i < 8; i++) {
            uint32_t t = dots[i].type;
            random_row(t, w, n);
            gm_q8_quantize_row(gm_q8_act_type(t), x, ours, n);
            float s = 0, mine = gm_q8_dot_row(t, w, ours, n), simd = k->dot_ggml_q8(t, w, ours, n);
            df[i](n, &s, 0, w, 0, ours, 0, 1);
            if ((memcmp(&s, &mine, 4) || memcmp(&s, &simd, 4)) && bad++ < 10)
                printf("%s n=%d: ggml %.9g, ours %.9g, %s %.9g\n", dots[i].sym, n, s, mine, k->name, simd);
        }
    }
    printf("%d trials, %d mismatches (kernels: %s)\n", trials, bad, k->name);
    return bad != 0;
}
