/* cpu.c - run-time CPU feature detection (see cpu.h). */
#include "core/cpu.h"

#include <unistd.h>

gm_cpu_features gm_cpu_detect(void) {
    gm_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* gcc returns bit masks, clang 1: compare with 0. */
    f.avx2_fma_f16c = __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0 &&
                      __builtin_cpu_supports("f16c") != 0;
    f.avx512 = f.avx2_fma_f16c && __builtin_cpu_supports("avx512f") != 0 &&
               __builtin_cpu_supports("avx512bw") != 0 && __builtin_cpu_supports("avx512vl") != 0 &&
               __builtin_cpu_supports("avx512dq") != 0;
#elif defined(__aarch64__)
    f.neon = 1;
#endif
    return f;
}

int gm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
