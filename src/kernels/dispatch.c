/* dispatch.c - pick the kernel table once, at first use (see kernels.h). */
#include "kernels/kernels.h"
#include "core/cpu.h"
#include "gemma.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const gm_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

const gm_kernels *gm_kernels_by_name(const char *name) {
    gm_cpu_features f = gm_cpu_detect();
    if (!name || strcmp(name, "scalar") == 0) return &gm_kernels_ref;
#if defined(GEMMA_HAVE_X86)
    if (strcmp(name, "avx2") == 0) return f.avx2_fma_f16c ? &gm_kernels_avx2 : NULL;
    if (strcmp(name, "avx512") == 0) return f.avx512 ? &gm_kernels_avx512 : NULL;
#endif
#if defined(GEMMA_HAVE_NEON)
    if (strcmp(name, "neon") == 0) return f.neon ? &gm_kernels_neon : NULL;
#endif
    (void)f;
    return NULL;
}

static void choose(void) {
    static const char *const preference[] = {"avx512", "avx2", "neon", "scalar"};
    const char *forced = getenv("GEMMA_ISA");
    int start = 0;
    if (forced && *forced) {
        for (int i = 0; i < 4; i++)
            if (strcmp(forced, preference[i]) == 0) start = i;
    }
    for (int i = start; i < 4; i++) {
        const gm_kernels *k = gm_kernels_by_name(preference[i]);
        if (k) {
            chosen = k;
            return;
        }
    }
    chosen = &gm_kernels_ref;
}

const gm_kernels *gm_kernels_get(void) {
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *gemma_cpu_isa(void) { return gm_kernels_get()->name; }
