/* cpu.h - what the CPU can run, asked once. */
#ifndef GM_CPU_H
#define GM_CPU_H

typedef struct {
    int avx2_fma_f16c;
    int avx512;      /* F + BW + VL + DQ */
    int neon;
    int neon_dotprod;   /* SDOT/UDOT (ARMv8.2 dot product); GEMMA_NEON_NODOT=1 turns it off (tests) */
} gm_cpu_features;

gm_cpu_features gm_cpu_detect(void);
int gm_cpu_count(void);   /* online CPUs, at least 1 */

#endif
