/* ggml_blocks.h - the GGML tensor storage types that GGUF files carry.
 *
 * A GGML tensor row of n values is cut into blocks of block_size values, each
 * stored in type_size bytes (F32/F16/BF16 are blocks of one).  This file knows
 * the layout of every type id ggml has assigned, so a GGUF reader can check
 * tensor sizes even for types we cannot compute with, and gives a scalar
 * reference for the types Gemma checkpoints use: dequantization that is
 * bit-identical to the Python `gguf` package's gguf.quants.dequantize (same
 * float32 operations in the same order; tests/unit/test_gguf.c checks it with
 * memcmp), and dot products with dequantize-then-dot semantics.
 *
 * Weights may sit at any byte offset in a mapped file, so everything here
 * reads bytes, never wider pointers. */
#ifndef GM_GGML_BLOCKS_H
#define GM_GGML_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/* Type ids as in ggml.h / gguf.constants.GGMLQuantizationType (ids 4, 5,
 * 31-33 and 36-38 belonged to removed types and are unknown). */
typedef enum {
    GM_GGML_F32 = 0,
    GM_GGML_F16 = 1,
    GM_GGML_Q4_0 = 2,
    GM_GGML_Q4_1 = 3,
    GM_GGML_Q5_0 = 6,
    GM_GGML_Q5_1 = 7,
    GM_GGML_Q8_0 = 8,
    GM_GGML_Q8_1 = 9,
    GM_GGML_Q2_K = 10,
    GM_GGML_Q3_K = 11,
    GM_GGML_Q4_K = 12,
    GM_GGML_Q5_K = 13,
    GM_GGML_Q6_K = 14,
    GM_GGML_Q8_K = 15,
    GM_GGML_I8 = 24,
    GM_GGML_I16 = 25,
    GM_GGML_I32 = 26,
    GM_GGML_I64 = 27,
    GM_GGML_F64 = 28,
    GM_GGML_BF16 = 30,
    GM_GGML_TYPE_LIMIT = 42   /* ids at or above this are unknown */
} gm_ggml_type;

/* The largest block_size of any known type (K-quants). */
#define GM_GGML_MAX_BLOCK 256

/* "Q4_K"; "unknown" for ids ggml has not assigned (or has retired). */
const char *gm_ggml_type_name(uint32_t type);
/* 1 if the id is a ggml type whose block layout is known (sizes can be checked). */
int gm_ggml_type_known(uint32_t type);
/* 1 if gm_ggml_dequant_row / gm_ggml_dot_row handle the type: F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. */
int gm_ggml_type_supported(uint32_t type);
/* Values per block and bytes per block; 0 for unknown types. */
int gm_ggml_block_size(uint32_t type);
int gm_ggml_type_size(uint32_t type);
/* "F32, F16, ..." - the supported types, for error messages. */
const char *gm_ggml_supported_list(void);

/* Bytes of a row of n values; 0 if the type is unknown, n < 0 or n is not a
 * multiple of the block size. */
size_t gm_ggml_row_bytes(uint32_t type, int64_t n);

/* dst[0..n) = the n values stored at src.  Returns 0, or -1 (writing nothing)
 * when the type is not supported or n is not a non-negative multiple of its
 * block size. */
int gm_ggml_dequant_row(uint32_t type, const void *src, float *dst, int n);

/* sum_i w_i * x_i with w_i exactly as gm_ggml_dequant_row gives them, f32
 * accumulation (only the summation order may differ from dequant + dot).
 * NaN when the type is not supported or n is not a multiple of the block size. */
float gm_ggml_dot_row(uint32_t type, const void *w, const float *x, int n);

/* The 12 packed scale bytes of Q4_K/Q5_K: eight 6-bit scales and eight 6-bit
 * mins (gguf.quants.Q4_K.get_scale_min); shared with quant/ggml_q8.c. */
void gm_ggml_k_scale_min(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]);

#endif
