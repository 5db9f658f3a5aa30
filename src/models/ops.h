/* ops.h - the f32 operations the decoders share (Gemma 3 exact, Gemma 4),
 * inline so each forward pass compiles them into its own loops. */
#ifndef GM_OPS_H
#define GM_OPS_H

#include "core/dtype.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

/* Split-half (NeoX) rotation at position pos: pairs (i, i + dim/2) for i <
 * pairs; the remaining pairs have angle 0 (Gemma 4's proportional RoPE).
 * The angles depend only on the position, so a token computes them once
 * (gm_rope_angles: cs[2i] = cos, cs[2i+1] = sin) for all its heads. */
#define GM_ROPE_MAX_PAIRS 2048   /* head_dim <= 4096, as config.c allows */
static inline void gm_rope_angles(int pairs, const float *inv_freq, int pos, float *cs) {
    for (int i = 0; i < pairs; i++) {
        float theta = inv_freq[i] * (float)pos;      /* f32 product, as the reference */
        cs[2 * i] = (float)cos((double)theta);
        cs[2 * i + 1] = (float)sin((double)theta);
    }
}

static inline void gm_rope_apply(float *x, int dim, int pairs, const float *cs) {
    int half = dim / 2;
    for (int i = 0; i < pairs; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1], a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

static inline float gm_gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

/* gate = gelu_tanh(gate) * up over n values (the GeGLU of the MLP), with the
 * kernel table's vectorized GELU. */
static inline void gm_geglu(const gm_kernels *k, float *gate, const float *up, size_t n) {
    enum { CHUNK = 1 << 20 };
    for (size_t at = 0; at < n; at += CHUNK) {
        int len = n - at < CHUNK ? (int)(n - at) : CHUNK;
        k->gelu_tanh(gate + at, len);
        for (int e = 0; e < len; e++) gate[at + e] *= up[at + e];
    }
}

/* Keys and values live in two places (the cache ring for past positions, the
 * step's buffers for new ones), so the decoder passes accessors; they are
 * static functions of the caller and inline away.  A row is of the cache's
 * element type (f32, f16 or bf16: gm_kvcache.dtype). */
typedef const void *(*gm_kv_at_fn)(const void *ctx, int j);

/* q . key for a key row of type dt: f32 rows keep the activation dot (the
 * parity fixtures' arithmetic), half rows widen as they go. */
static inline float gm_dot_kv(const gm_kernels *k, gm_dtype dt, const float *q, const void *key, int n) {
    if (dt == GM_DT_F16) return k->dot_f16(key, q, n);
    if (dt == GM_DT_BF16) return k->dot_bf16(key, q, n);
    return k->dot_f32(q, key, n);
}

/* out += a * value for a value row of type dt. */
static inline void gm_axpy_kv(const gm_kernels *k, gm_dtype dt, float a, const void *value, float *out, int n) {
    if (dt == GM_DT_F16)
        k->axpy_f16(a, value, out, n);
    else if (dt == GM_DT_BF16)
        k->axpy_bf16(a, value, out, n);
    else
        k->axpy(a, value, out, n);
}

/* out[Dh] = sum_j softmax_j(q . key(j) * scale) value(j) over j = lo..hi;
 * p holds hi - lo + 1 scores.  Keys and values are rows of type dt and start
 * `off` elements into their rows. */
static inline void gm_attend_head(const gm_kernels *k, gm_dtype dt, const float *q, int Dh, float scale, int lo,
                                  int hi, gm_kv_at_fn key, gm_kv_at_fn value, const void *ctx, size_t off, float *p,
                                  float *out) {
    size_t boff = off * (size_t)gm_dtype_size(dt);
    float mx = -INFINITY;
    for (int j = lo; j <= hi; j++) {
        float v = gm_dot_kv(k, dt, q, (const uint8_t *)key(ctx, j) + boff, Dh) * scale;
        p[j - lo] = v;
        if (v > mx) mx = v;
    }
    float sum = 0.0f;
    for (int j = 0; j <= hi - lo; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    memset(out, 0, (size_t)Dh * sizeof(float));
    float inv = 1.0f / sum;
    for (int j = lo; j <= hi; j++) gm_axpy_kv(k, dt, p[j - lo] * inv, (const uint8_t *)value(ctx, j) + boff, out, Dh);
}

#endif
