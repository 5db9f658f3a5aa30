/* avx2_q8_mix_bench.c - the AVX2 int8 kernel's instruction mix for one
 * 32-byte half of a 4-bit row (64 values, four rows, operands in L1),
 * building up: V=4 the two vpmaddubsw, V=3 + the nibble unpacking, V=2 +
 * the vpmaddwd widening, V=1 + cvt, scale x d and the fma (the kernel).
 * Cycles per row-half at the clock given (BENCHMARKS.md, "A Zen 1").
 *   for v in 1 2 3 4; do gcc -O2 -mavx2 -mfma -DV=$v bench/avx2_q8_mix_bench.c -o /tmp/mix$v && /tmp/mix$v; done */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#ifndef V
#define V 1
#endif
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 20000000L
static uint8_t W[4][64] __attribute__((aligned(64)));
static int8_t X[128] __attribute__((aligned(64)));
static float D[16] __attribute__((aligned(64)));
int main(int argc, char **argv){
  double ghz = argc > 1 ? atof(argv[1]) : 2.5;   /* the clock avx2_port_bench gives */
  for(int i=0;i<64;i++){for(int j=0;j<4;j++)W[j][i]=i*7+j; } for(int i=0;i<128;i++)X[i]=i-64; for(int i=0;i<16;i++)D[i]=0.001f*i;
  const __m256i nib=_mm256_set1_epi8(15), one=_mm256_set1_epi16(1);
  __m256 tot[4]={0}; float sc=1.0001f;
  double t=now();
  for(long i=0;i<N;i++){
    for(int h=0;h<2;h++){
      __m256i xe=_mm256_load_si256((void*)(X+h*32)), xo=_mm256_load_si256((void*)(X+64+h*32));
      __m256 d=_mm256_load_ps(D+8*h);
      for(int j=0;j<4;j++){
        __m256i b=_mm256_load_si256((void*)(W[j]+32*h));
        __asm__("" : "+x"(b));
        __m256i lo=_mm256_and_si256(b,nib), hi=_mm256_and_si256(_mm256_srli_epi16(b,4),nib);
#if V==1
        __m256i acc=_mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo,xe),_mm256_maddubs_epi16(hi,xo)),one);
        tot[j]=_mm256_fmadd_ps(_mm256_cvtepi32_ps(acc),_mm256_mul_ps(_mm256_set1_ps(sc),d),tot[j]);
#elif V==2
        __m256i acc=_mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo,xe),_mm256_maddubs_epi16(hi,xo)),one);
        tot[j]=_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(tot[j]),acc));
#elif V==3
        __m256i acc=_mm256_add_epi16(_mm256_maddubs_epi16(lo,xe),_mm256_maddubs_epi16(hi,xo));
        tot[j]=_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(tot[j]),acc));
#elif V==4
        __m256i acc=_mm256_add_epi16(_mm256_maddubs_epi16(b,xe),_mm256_maddubs_epi16(b,xo));
        tot[j]=_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(tot[j]),acc));
#endif
      }
    }
  }
  double dt=now()-t; float s=0; for(int j=0;j<4;j++){float o[8];_mm256_storeu_ps(o,tot[j]);for(int k=0;k<8;k++)s+=o[k];}
  printf("V%d: %.2f cycles per row-half (at %.2f GHz)  [%g]\n", V, dt*ghz*1e9/(N*8.0), ghz, s);
  return 0;}
