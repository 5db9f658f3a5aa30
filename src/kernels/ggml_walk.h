/* ggml_walk.h - the part of the GGUF block kernels that is the same in every
 * SIMD twin: which decoder each type has, the walk over a row's blocks and
 * the two table entries around it.  avx2.c, avx512.c and neon.c include it
 * after defining, for their vector width:
 *   ggml_sink                        accumulators, x, out, and `dot`
 *   q4_0_block ... q6_k_block        (const uint8_t *block, int i, ggml_sink *)
 *                                    decode the block of values i.. into the sink
 *   ggml_sum(const ggml_sink *)      the dot: the accumulators added up
 *   dot_elems / widen_elems, ELEM_*  their F32/F16/BF16 row loops
 * Everything here is static, so each file gets its own copy, compiled for
 * its instruction set. */
#ifndef GM_GGML_WALK_H
#define GM_GGML_WALK_H

#include "quant/ggml_blocks.h"

/* Returns 0 when the type is not one of ours. */
static inline __attribute__((always_inline)) int ggml_blocks(uint32_t type, const uint8_t *p, int n, ggml_sink *k) {
    switch (type) {
    case GM_GGML_Q4_0: for (int i = 0; i < n; i += 32, p += 18) q4_0_block(p, i, k); return 1;
    case GM_GGML_Q4_1: for (int i = 0; i < n; i += 32, p += 20) q4_1_block(p, i, k); return 1;
    case GM_GGML_Q5_0: for (int i = 0; i < n; i += 32, p += 22) q5_0_block(p, i, k); return 1;
    case GM_GGML_Q5_1: for (int i = 0; i < n; i += 32, p += 24) q5_1_block(p, i, k); return 1;
    case GM_GGML_Q8_0: for (int i = 0; i < n; i += 32, p += 34) q8_0_block(p, i, k); return 1;
    case GM_GGML_Q4_K: for (int i = 0; i < n; i += 256, p += 144) q4_k_block(p, i, k); return 1;
    case GM_GGML_Q5_K: for (int i = 0; i < n; i += 256, p += 176) q5_k_block(p, i, k); return 1;
    case GM_GGML_Q6_K: for (int i = 0; i < n; i += 256, p += 210) q6_k_block(p, i, k); return 1;
    default: return 0;
    }
}

/* Rows the walk cannot take (another type, n not a whole number of blocks,
 * or empty) go to the reference, which answers them its own way.  `dot` is
 * a constant in each sink, so each entry gets its own straight-line code. */
static float ggml_dot(uint32_t type, const void *w, const float *x, int n) {
    if (type == GM_GGML_F32) return dot_elems(w, ELEM_F32, x, n);
    if (type == GM_GGML_F16) return dot_elems(w, ELEM_F16, x, n);
    if (type == GM_GGML_BF16) return dot_elems(w, ELEM_BF16, x, n);
    ggml_sink k = {.x = x, .dot = 1};   /* the accumulators start at zero */
    if (!gm_ggml_row_bytes(type, n) || !ggml_blocks(type, w, n, &k)) return gm_ggml_dot_row(type, w, x, n);
    return ggml_sum(&k);
}

static void ggml_dequant(uint32_t type, const void *w, float *out, int n) {
    ggml_sink k = {.out = out, .dot = 0};
    if (type == GM_GGML_F32) widen_elems(w, ELEM_F32, out, n);
    else if (type == GM_GGML_F16) widen_elems(w, ELEM_F16, out, n);
    else if (type == GM_GGML_BF16) widen_elems(w, ELEM_BF16, out, n);
    else if (!gm_ggml_row_bytes(type, n) || !ggml_blocks(type, w, n, &k)) gm_ref_dequant_ggml(type, w, out, n);
}

#endif
