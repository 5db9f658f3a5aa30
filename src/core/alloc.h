/* alloc.h - aligned allocations through the caller's gemma_allocator hooks.
 * Large buffers (KV cache, activations) go through here so an embedding app
 * can account for or place them; small bookkeeping uses plain malloc. */
#ifndef GM_ALLOC_H
#define GM_ALLOC_H

#include <stddef.h>
#include "gemma.h"

#define GM_ALIGN 64

void *gm_alloc(const gemma_allocator *a, size_t size);    /* zeroed, 64-byte aligned */
void gm_free(const gemma_allocator *a, void *p);
/* size = n * m with overflow check; returns 0 on overflow. */
int gm_mul_size(size_t n, size_t m, size_t *out);

#endif
