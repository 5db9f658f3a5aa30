/* kvcache.h - keys and values of past tokens, per layer.
 *
 * Global layers keep every position (capacity n_ctx).  Sliding-window layers
 * only ever look back `window` tokens, so they keep a ring buffer of that many
 * entries: memory grows with the window, not with the context.  Widths are
 * per layer (Gemma 4's global layers are wider), and a KV-shared layer has
 * no cache of its own (width 0): it reads its donor's.
 *
 * Entries are f32, or f16 / bf16 (gemma_kv_type) for half the memory: rows
 * are bytes here, and the attention loops read them with the kernel table's
 * dot_f16 / axpy_f16 (bf16) twins. */
#ifndef GM_KVCACHE_H
#define GM_KVCACHE_H

#include "core/dtype.h"
#include "gemma.h"

typedef struct {
    uint8_t *k, *v;      /* [cap, kv_dim] elements each; NULL for a shared layer */
    int cap, kv_dim;
} gm_kv_layer;

typedef struct {
    gm_kv_layer *layers;
    int n_layers, kv_dim;    /* kv_dim: the widest layer's */
    gm_dtype dtype;          /* GM_DT_F32, GM_DT_F16 or GM_DT_BF16 */
    int elem;                /* bytes per element: 4 or 2 */
    size_t bytes;
    const gemma_allocator *allocator;
} gm_kvcache;

/* The element type of a resolved (not AUTO) cache type. */
static inline gm_dtype gm_kv_dtype(gemma_kv_type t) {
    return t == GEMMA_KV_F16 ? GM_DT_F16 : t == GEMMA_KV_BF16 ? GM_DT_BF16 : GM_DT_F32;
}

/* window_of[l] = 0 for a global layer, else the sliding window; kv_dim_of[l] = 0: no cache. */
gemma_status gm_kvcache_init(gm_kvcache *kv, int n_layers, const int *window_of, const int *kv_dim_of, int n_ctx,
                             gm_dtype dtype, const gemma_allocator *a, gemma_error *err);
void gm_kvcache_free(gm_kvcache *kv);

/* Row of position pos (its ring slot), kv->elem bytes per element. */
static inline void *gm_kv_key(const gm_kvcache *kv, int layer, int pos) {
    const gm_kv_layer *L = &kv->layers[layer];
    return L->k + (size_t)(pos % L->cap) * (size_t)L->kv_dim * (size_t)kv->elem;
}
static inline void *gm_kv_value(const gm_kvcache *kv, int layer, int pos) {
    const gm_kv_layer *L = &kv->layers[layer];
    return L->v + (size_t)(pos % L->cap) * (size_t)L->kv_dim * (size_t)kv->elem;
}

/* out[0..n) = in rounded to dtype (nearest even), the form the cache stores. */
static inline void gm_kv_store(gm_dtype dtype, void *out, const float *in, size_t n) {
    uint16_t *h = out;
    if (dtype == GM_DT_F16)
        for (size_t i = 0; i < n; i++) h[i] = gm_f32_to_f16(in[i]);
    else if (dtype == GM_DT_BF16)
        for (size_t i = 0; i < n; i++) h[i] = gm_f32_to_bf16(in[i]);
    else
        memcpy(out, in, n * sizeof(float));
}

#endif
