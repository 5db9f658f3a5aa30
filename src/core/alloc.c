/* alloc.c - see alloc.h. */
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *gm_alloc(const gemma_allocator *a, size_t size) {
    if (size == 0) size = GM_ALIGN;
    void *p = NULL;
    if (a && a->alloc) {
        p = a->alloc(size, GM_ALIGN, a->user);
    } else if (posix_memalign(&p, GM_ALIGN, size) != 0) {
        p = NULL;
    }
    if (p) memset(p, 0, size);
    return p;
}

void gm_free(const gemma_allocator *a, void *p) {
    if (!p) return;
    if (a && a->free) a->free(p, a->user);
    else free(p);
}

int gm_mul_size(size_t n, size_t m, size_t *out) {
    if (m != 0 && n > SIZE_MAX / m) return 0;
    *out = n * m;
    return 1;
}
