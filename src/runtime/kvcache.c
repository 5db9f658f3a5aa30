/* kvcache.c - see kvcache.h. */
#include "runtime/kvcache.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

gemma_status gm_kvcache_init(gm_kvcache *kv, int n_layers, const int *window_of, const int *kv_dim_of, int n_ctx,
                             gm_dtype dtype, const gemma_allocator *a, gemma_error *err) {
    memset(kv, 0, sizeof *kv);
    kv->allocator = a;
    kv->dtype = dtype;
    kv->elem = gm_dtype_size(dtype);
    kv->n_layers = n_layers;
    kv->layers = calloc((size_t)n_layers, sizeof *kv->layers);
    if (!kv->layers) return gm_fail(err, GEMMA_ERR_NOMEM, "KV cache: out of memory");
    for (int l = 0; l < n_layers; l++) {
        int kv_dim = kv_dim_of[l];
        if (kv_dim > kv->kv_dim) kv->kv_dim = kv_dim;
        if (kv_dim == 0) continue;
        int cap = (window_of[l] > 0 && window_of[l] < n_ctx) ? window_of[l] : n_ctx;
        size_t bytes;
        if (!gm_mul_size((size_t)cap * (size_t)kv->elem, (size_t)kv_dim, &bytes)) {
            gm_kvcache_free(kv);
            return gm_fail(err, GEMMA_ERR_NOMEM, "KV cache: size overflows");
        }
        kv->layers[l].cap = cap;
        kv->layers[l].kv_dim = kv_dim;
        kv->layers[l].k = gm_alloc(a, bytes);
        kv->layers[l].v = gm_alloc(a, bytes);
        if (!kv->layers[l].k || !kv->layers[l].v) {
            gm_kvcache_free(kv);
            return gm_fail(err, GEMMA_ERR_NOMEM, "KV cache: out of memory (%zu bytes for layer %d)", 2 * bytes, l);
        }
        kv->bytes += 2 * bytes;
    }
    return GEMMA_OK;
}

void gm_kvcache_free(gm_kvcache *kv) {
    if (!kv || !kv->layers) return;
    for (int l = 0; l < kv->n_layers; l++) {
        gm_free(kv->allocator, kv->layers[l].k);
        gm_free(kv->allocator, kv->layers[l].v);
    }
    free(kv->layers);
    memset(kv, 0, sizeof *kv);
}
