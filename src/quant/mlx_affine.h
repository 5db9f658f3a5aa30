/* mlx_affine.h - the MLX affine quantization format, written the way MLX writes it.
 *
 * Reading packed weights is done by the kernels (kernels.h); this is the
 * writing side, used by the tests to make quantized data and by tools that
 * convert checkpoints.  A row of n values is cut into groups of group_size;
 * each group stores `bits`-bit levels q in an LSB-first bitstream plus a
 * scale and a bias:  w = scale * q + bias. */
#ifndef GM_MLX_AFFINE_H
#define GM_MLX_AFFINE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one packed row (n values) - always a whole number of u32 words. */
size_t gm_mlx_packed_row_bytes(int n, int bits);

/* Quantize one row like mlx.core.quantize (current MLX: the edge of larger
 * magnitude is represented exactly; the scale may be negative). */
void gm_mlx_quantize_row(const float *w, int n, int bits, int group_size, uint8_t *packed, float *scales,
                         float *biases);

/* Level k of a packed row. */
unsigned gm_mlx_level(const uint8_t *packed, int bits, int k);

#endif
