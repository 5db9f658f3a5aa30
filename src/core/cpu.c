/* cpu.c - run-time CPU feature detection (see cpu.h).
 * Asks CPUID and the OS (XGETBV) directly: compilers disagree on the names
 * __builtin_cpu_supports accepts, and AVX state must be enabled by the OS. */
#include "core/cpu.h"

#include <stdlib.h>
#include <unistd.h>
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

gm_cpu_features gm_cpu_detect(void) {
    gm_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return f;
    unsigned long long xcr0 = read_xcr0();
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    f.avx2_fma_f16c = os_avx && avx2 && fma && f16c;
    f.avx512 = f.avx2_fma_f16c && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
#elif defined(__aarch64__)
    f.neon = 1;
#if defined(__linux__)
    f.neon_dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    f.neon_dotprod = 1;   /* every Apple arm64 core (A11 on) */
#endif
    const char *off = getenv("GEMMA_NEON_NODOT");
    if (off && *off && *off != '0') f.neon_dotprod = 0;
#endif
    return f;
}

int gm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
