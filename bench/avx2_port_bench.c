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
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 100000000L
int main(void){
  __m256i a0=_mm256_set1_epi8(3),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,b=_mm256_set1_epi8(1);
  __m256 f0=_mm256_set1_ps(1),f1=f0,f2=f0,f3=f0,f4=f0,f5=f0,f6=f0,f7=f0,g=_mm256_set1_ps(0.999f);
  double t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a0):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a1):"x"(b));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a2):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a3):"x"(b));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a4):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a5):"x"(b));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a6):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a7):"x"(b));
  }
  double dt=now()-t; printf("maddubs ymm: %.2f G/s\n", 8.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f0):"x"(g)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f1):"x"(g));
    __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f2):"x"(g)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f3):"x"(g));
    __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f4):"x"(g)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f5):"x"(g));
    __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f6):"x"(g)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f7):"x"(g));
  }
  dt=now()-t; printf("fma ymm: %.2f G/s\n", 8.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a0):"x"(b)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f1):"x"(g));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a2):"x"(b)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f3):"x"(g));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a4):"x"(b)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f5):"x"(g));
    __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a6):"x"(b)); __asm__ volatile("vfmadd231ps %1,%1,%0":"+x"(f7):"x"(g));
  }
  dt=now()-t; printf("mixed maddubs+fma (pairs): %.2f G pairs/s\n", 4.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vpmaddwd %1,%0,%0":"+x"(a0):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a1):"x"(b));
    __asm__ volatile("vpmaddwd %1,%0,%0":"+x"(a2):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a3):"x"(b));
    __asm__ volatile("vpmaddwd %1,%0,%0":"+x"(a4):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a5):"x"(b));
    __asm__ volatile("vpmaddwd %1,%0,%0":"+x"(a6):"x"(b)); __asm__ volatile("vpmaddubsw %1,%0,%0":"+x"(a7):"x"(b));
  }
  dt=now()-t; printf("madd+maddubs: %.2f G/s\n", 8.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f0)); __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f1));
    __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f2)); __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f3));
    __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f4)); __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f5));
    __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f6)); __asm__ volatile("vcvtdq2ps %0,%0":"+x"(f7));
  }
  dt=now()-t; printf("cvt ymm: %.2f G/s\n", 8.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a0)); __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a1));
    __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a2)); __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a3));
    __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a4)); __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a5));
    __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a6)); __asm__ volatile("vpsrlw $4,%0,%0":"+x"(a7));
  }
  dt=now()-t; printf("srlw ymm: %.2f G/s\n", 8.0*N/dt/1e9);
  t=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("vpand %1,%0,%0":"+x"(a0):"x"(b)); __asm__ volatile("vpand %1,%0,%0":"+x"(a1):"x"(b));
    __asm__ volatile("vpand %1,%0,%0":"+x"(a2):"x"(b)); __asm__ volatile("vpand %1,%0,%0":"+x"(a3):"x"(b));
    __asm__ volatile("vpand %1,%0,%0":"+x"(a4):"x"(b)); __asm__ volatile("vpand %1,%0,%0":"+x"(a5):"x"(b));
    __asm__ volatile("vpand %1,%0,%0":"+x"(a6):"x"(b)); __asm__ volatile("vpand %1,%0,%0":"+x"(a7):"x"(b));
  }
  dt=now()-t; printf("pand ymm: %.2f G/s\n", 8.0*N/dt/1e9);
  return 0;}
