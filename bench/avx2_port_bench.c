/* avx2_port_bench.c - how many of one AVX2 instruction a core retires per
 * second, alone and mixed: the numbers behind the AVX2 int8 kernel's shape
 * (BENCHMARKS.md, "A Zen 1").  On Zen 1 every 256-bit op is two 128-bit
 * halves; integer multiplies (vpmaddubsw, vpmaddwd) share one port, so a
 * kernel that needs fewer of them wins even at the cost of adds.
 *   gcc -O2 -mavx2 -mfma bench/avx2_port_bench.c -o /tmp/avx2_port_bench && /tmp/avx2_port_bench
 * Prints G instructions/s; vpand (four ports on Zen 1: two ymm a cycle)
 * gives the clock. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N 100000000L
/* one instruction on register r (and operand s): an independent chain per register */
#define OP2(insn, r, s) __asm__ volatile(insn " %1,%0,%0" : "+x"(r) : "x"(s));
#define FMA(r, s) __asm__ volatile("vfmadd231ps %1,%1,%0" : "+x"(r) : "x"(s));
#define OP1(insn, r) __asm__ volatile(insn " %0,%0" : "+x"(r));
#define SHIFT(r) __asm__ volatile("vpsrlw $4,%0,%0" : "+x"(r));
/* time N iterations of body, which issues per_iter instructions */
#define TIME(label, per_iter, body)                                        \
    do {                                                                   \
        double t = now();                                                  \
        for (long i = 0; i < N; i++) { body }                              \
        printf("%s: %.2f G/s\n", label, (per_iter) * (double)N / (now() - t) / 1e9); \
    } while (0)

int main(void) {
    __m256i a0 = _mm256_set1_epi8(3), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m256i b = _mm256_set1_epi8(1);
    __m256 f0 = _mm256_set1_ps(1), f1 = f0, f2 = f0, f3 = f0, f4 = f0, f5 = f0, f6 = f0, f7 = f0;
    __m256 g = _mm256_set1_ps(0.999f);
    TIME("maddubs ymm", 8, OP2("vpmaddubsw", a0, b) OP2("vpmaddubsw", a1, b) OP2("vpmaddubsw", a2, b)
         OP2("vpmaddubsw", a3, b) OP2("vpmaddubsw", a4, b) OP2("vpmaddubsw", a5, b) OP2("vpmaddubsw", a6, b)
         OP2("vpmaddubsw", a7, b));
    TIME("fma ymm", 8, FMA(f0, g) FMA(f1, g) FMA(f2, g) FMA(f3, g) FMA(f4, g) FMA(f5, g) FMA(f6, g) FMA(f7, g));
    TIME("mixed maddubs+fma (pairs)", 4, OP2("vpmaddubsw", a0, b) FMA(f1, g) OP2("vpmaddubsw", a2, b) FMA(f3, g)
         OP2("vpmaddubsw", a4, b) FMA(f5, g) OP2("vpmaddubsw", a6, b) FMA(f7, g));
    TIME("madd+maddubs", 8, OP2("vpmaddwd", a0, b) OP2("vpmaddubsw", a1, b) OP2("vpmaddwd", a2, b)
         OP2("vpmaddubsw", a3, b) OP2("vpmaddwd", a4, b) OP2("vpmaddubsw", a5, b) OP2("vpmaddwd", a6, b)
         OP2("vpmaddubsw", a7, b));
    TIME("cvt ymm", 8, OP1("vcvtdq2ps", f0) OP1("vcvtdq2ps", f1) OP1("vcvtdq2ps", f2) OP1("vcvtdq2ps", f3)
         OP1("vcvtdq2ps", f4) OP1("vcvtdq2ps", f5) OP1("vcvtdq2ps", f6) OP1("vcvtdq2ps", f7));
    TIME("srlw ymm", 8, SHIFT(a0) SHIFT(a1) SHIFT(a2) SHIFT(a3) SHIFT(a4) SHIFT(a5) SHIFT(a6) SHIFT(a7));
    TIME("pand ymm", 8, OP2("vpand", a0, b) OP2("vpand", a1, b) OP2("vpand", a2, b) OP2("vpand", a3, b)
         OP2("vpand", a4, b) OP2("vpand", a5, b) OP2("vpand", a6, b) OP2("vpand", a7, b));
    return 0;
}
