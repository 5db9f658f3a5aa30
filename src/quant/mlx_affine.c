/* mlx_affine.c - see mlx_affine.h.  Mirrors mlx/ops.cpp affine_quantize. */
#include "quant/mlx_affine.h"
#include "kernels/mlx_rows.h"

#include <float.h>
#include <math.h>
#include <string.h>

size_t gm_mlx_packed_row_bytes(int n, int bits) { return ((size_t)n * (size_t)bits + 31) / 32 * 4; }

unsigned gm_mlx_level(const uint8_t *packed, int bits, int k) {
    unsigned bit = (unsigned)k * (unsigned)bits, byte = bit >> 3, shift = bit & 7u;
    unsigned v = packed[byte];
    if (shift + (unsigned)bits > 8) v |= (unsigned)packed[byte + 1] << 8;
    return (v >> shift) & ((1u << bits) - 1u);
}

static void put_level(uint8_t *packed, int bits, int k, unsigned q) {
    unsigned bit = (unsigned)k * (unsigned)bits, byte = bit >> 3, shift = bit & 7u;
    unsigned v = q << shift;
    packed[byte] |= (uint8_t)(v & 0xffu);
    if (shift + (unsigned)bits > 8) packed[byte + 1] |= (uint8_t)(v >> 8);
}

void gm_mlx_quantize_row(const float *w, int n, int bits, int group_size, uint8_t *packed, float *scales,
                         float *biases) {
    memset(packed, 0, gm_mlx_packed_row_bytes(n, bits));
    float n_bins = (float)((1 << bits) - 1);
    for (int g = 0; g * group_size < n; g++) {
        const float *x = w + (size_t)g * group_size;
        float mn = x[0], mx = x[0];
        for (int i = 1; i < group_size; i++) {
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
        float scale = fmaxf((mx - mn) / n_bins, 1e-7f);
        float edge;
        if (fabsf(mn) > fabsf(mx)) {
            edge = mn;
        } else {
            edge = mx;
            scale = -scale;
        }
        float q0 = rintf(edge / scale);
        float bias = 0.0f;
        if (q0 != 0.0f) {
            scale = edge / q0;
            bias = edge;
        }
        for (int i = 0; i < group_size; i++) {
            float q = rintf((x[i] - bias) / scale);
            q = q < 0 ? 0 : q > n_bins ? n_bins : q;
            put_level(packed, bits, g * group_size + i, (unsigned)q);
        }
        scales[g] = scale;
        biases[g] = bias;
    }
}

/* ------------------------------------------------------- int8 inputs */

/* kernels/mlx_rows.h describes the layout: one block per int32 lane. */
void gm_mlx_quantize_x8(const float *x, int n, int bits, int8_t *xq, float *dxv) {
    const int chunk = gm_mlx_q8_chunk(bits), block = chunk / 16;
    for (int c0 = 0; c0 < n; c0 += chunk) {
        int8_t *out = xq + c0;
        float *d = dxv + (size_t)(c0 / chunk) * 16;
        for (int b = 0; b < 16; b++) {
            const float *v = x + c0 + b * block;
            float amax = 0.0f;
            int finite = 1;
            for (int i = 0; i < block; i++) {
                float a = fabsf(v[i]);
                if (!(a <= FLT_MAX)) finite = 0;
                amax = a > amax ? a : amax;
            }
            /* a NaN or infinite input makes the result NaN, as the f32 path would */
            float id = finite && amax > 0.0f ? 127.0f / amax : 0.0f;
            d[b] = finite ? amax / 127.0f : NAN;
            for (int i = 0; i < block; i++) {
                int k = b * block + i;
                /* round to nearest even (|v * id| <= 127): adding and taking away 1.5 * 2^23 */
                float r = finite ? (v[i] * id + 0x1.8p23f) - 0x1.8p23f : 0.0f;
                int8_t q = (int8_t)(int)r;
                if (bits == 4)
                    out[(k & 1) * 64 + k / 2] = q;
                else
                    out[k] = q;
            }
        }
    }
}
