/* kvcache.h - keys and values of past tokens, per layer.
 *
 * Global layers keep every position (capacity n_ctx).  Sliding-window layers
 * only ever look back `window` tokens, so they keep a ring buffer of that many
 * entries: memory grows with the window, not with the context.  Widths are
 * per layer (Gemma 4's global layers are wider), and a KV-shared layer has
 * no cache of its own (width 0): it reads its donor's. */
#ifndef GM_KVCACHE_H
#define GM_KVCACHE_H

#include "gemma.h"

typedef struct {
    float *k, *v;        /* [cap, kv_dim] each; NULL for a shared layer */
    int cap, kv_dim;
} gm_kv_layer;

typedef struct {
    gm_kv_layer *layers;
    int n_layers, kv_dim;    /* kv_dim: the widest layer's */
    size_t bytes;
    const gemma_allocator *allocator;
} gm_kvcache;

/* window_of[l] = 0 for a global layer, else the sliding window; kv_dim_of[l] = 0: no cache. */
gemma_status gm_kvcache_init(gm_kvcache *kv, int n_layers, const int *window_of, const int *kv_dim_of, int n_ctx,
                             const gemma_allocator *a, gemma_error *err);
void gm_kvcache_free(gm_kvcache *kv);

static inline float *gm_kv_key(const gm_kvcache *kv, int layer, int pos) {
    const gm_kv_layer *L = &kv->layers[layer];
    return L->k + (size_t)(pos % L->cap) * (size_t)L->kv_dim;
}
static inline float *gm_kv_value(const gm_kvcache *kv, int layer, int pos) {
    const gm_kv_layer *L = &kv->layers[layer];
    return L->v + (size_t)(pos % L->cap) * (size_t)L->kv_dim;
}

#endif
