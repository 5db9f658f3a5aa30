/* mlx_rows.h - the part of matvec_mlx every kernel table shares: rows whose
 * bit width has no fast path (2, 3, 5, 6 bits) go one at a time through the
 * table's dot_mlx, their scales and biases widened in chunks on the stack. */
#ifndef GM_MLX_ROWS_H
#define GM_MLX_ROWS_H

#include "core/dtype.h"
#include "kernels/kernels.h"

static inline void gm_matvec_mlx_rowwise(const gm_mlx_rows *w, int r0, int r1, const float *x, const float *xsum,
                                         float *y, gm_dot_mlx_fn dot) {
    enum { CHUNK = 256 };   /* groups per call of dot */
    float s[CHUNK], b[CHUNK];
    int groups = w->cols / w->group_size;
    for (int r = r0; r < r1; r++) {
        const uint8_t *packed = w->data + (size_t)r * w->row_bytes;
        size_t g0 = (size_t)r * (size_t)groups;
        float total = 0.0f;
        for (int c = 0; c < groups; c += CHUNK) {
            int n = groups - c < CHUNK ? groups - c : CHUNK;
            for (int i = 0; i < n; i++) {
                s[i] = gm_load_float(w->scales, (gm_dtype)w->sdtype, g0 + (size_t)(c + i));
                b[i] = gm_load_float(w->biases, (gm_dtype)w->sdtype, g0 + (size_t)(c + i));
            }
            size_t k0 = (size_t)c * (size_t)w->group_size;
            total += dot(packed + k0 * (size_t)w->bits / 8, s, b, xsum + c, w->bits, w->group_size, x + k0,
                         n * w->group_size);
        }
        y[r - r0] = total;
    }
}

/* Whether 4-bit rows take the interleaved fast path (groups whole blocks of `block` values). */
static inline int gm_mlx4_fast(int bits, int group_size, int block) { return bits == 4 && group_size % block == 0; }

/* x reordered for a 4-bit fast path: per block of `block` values, the even
 * elements then the odd ones (the low and high nibbles of block/2 bytes). */
static inline void gm_mlx4_deinterleave(const float *x, int n, int block, float *xp) {
    int half = block / 2;
    for (int k0 = 0; k0 < n; k0 += block)
        for (int i = 0; i < half; i++) {
            xp[k0 + i] = x[k0 + 2 * i];
            xp[k0 + half + i] = x[k0 + 2 * i + 1];
        }
}

/* ---- int8 inputs (GEMMA_NUMERICS_INT8) ----
 * The integer path of 4- and 8-bit rows multiplies the weights' levels with
 * x quantized to int8 in small blocks (d = max|x| / 127, q =
 * round-to-even(x * 127 / max|x|)), using the CPU's u8 x s8 dot instructions
 * (VNNI vpdpbusd, AVX2 vpmaddubsw, NEON multiply-accumulate).  The row is
 * read in chunks of 64 weight bytes: a 4-bit chunk holds 128 values (low
 * nibbles the even ones, high nibbles the odd ones) and xq stores its 64 even
 * then 64 odd inputs; an 8-bit chunk holds 64 values, stored in order.  Each
 * chunk's dot leaves 16 int32 lanes, lane i summing the 8 (4-bit) or 4
 * (8-bit) consecutive values that make one input block (all in one weight
 * group), so dxv gives per chunk the 16 lanes' d.  Blocks this small (llama.cpp
 * quantizes activations per 32) keep an outlier from flattening its
 * neighbours: on Gemma 3 270M, blocks of 32 cost 5.5 % perplexity.  The
 * biases multiply exact f32 group sums of x. */
static inline int gm_mlx_q8_chunk(int bits) { return bits == 4 ? 128 : bits == 8 ? 64 : 0; }

/* Whether rows of this shape can take the int8 path. */
static inline int gm_mlx_q8_ok(int bits, int group_size, int cols) {
    int chunk = gm_mlx_q8_chunk(bits);
    return chunk && cols % chunk == 0 && group_size >= 32 && (chunk % group_size == 0 || group_size % chunk == 0);
}

/* Per input row: xq takes cols bytes, dxv gm_mlx_q8_dxv_floats(cols) floats. */
static inline size_t gm_mlx_q8_dxv_floats(int cols) { return (size_t)cols / 4; }

/* x (n values, n a multiple of the chunk) in the layout above. */
void gm_mlx_quantize_x8(const float *x, int n, int bits, int8_t *xq, float *dxv);

#endif
