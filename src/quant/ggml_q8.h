/* ggml_q8.h - llama.cpp's integer arithmetic for GGUF block weights.
 *
 * llama.cpp (ggml-cpu) never dots a block-quantized weight row with f32
 * activations: it first quantizes the activation row to the weight type's
 * "vec_dot_type" and then forms integer dot products per block, scaled in
 * float.  The rounding of those activations is part of the model's numerics
 * as GGUF users know them (it moves logits by ~0.3-3 on Gemma 3 270M
 * Q4_K_M), so we do exactly the same:
 *
 *   weights Q4_0, Q5_0, Q8_0  ->  activations Q8_0 (32 values: f16 d, int8 qs[32])
 *   weights Q4_1, Q5_1        ->  activations Q8_1 (32 values: f16 d, f16 s = d*sum(qs), int8 qs[32])
 *   weights Q4_K, Q5_K, Q6_K  ->  activations Q8_K (256 values: f32 d, int8 qs[256], int16 bsums[16])
 *
 * The activation blocks are our own scratch (never written to a file) but
 * keep ggml's field order and sizes, so a test can compare them byte for
 * byte with gguf-py's Q8_0.  Note the Q8_1 block is 36 bytes (ggml's
 * block_q8_1 with f16 d and s); the 40 in gguf.constants (and in
 * ggml_blocks.c's size table) is the old f32 layout.
 *
 * Everything here is the scalar definition; SIMD twins (kernels/) must give
 * the same bits.  See ggml_q8.c for which of ggml's float operations are
 * reproduced and why. */
#ifndef GM_GGML_Q8_H
#define GM_GGML_Q8_H

#include <stddef.h>
#include <stdint.h>

#define GM_Q8_0_BLOCK_BYTES 34    /* f16 d, int8 qs[32] */
#define GM_Q8_1_BLOCK_BYTES 36    /* f16 d, f16 s, int8 qs[32] */
#define GM_Q8_K_BLOCK_BYTES 292   /* f32 d, int8 qs[256], int16 bsums[16] */

/* The activation type (GM_GGML_Q8_0 / Q8_1 / Q8_K) llama.cpp pairs with a
 * weight type; 0 for types without an integer path (F32, F16, BF16, unknown). */
uint32_t gm_q8_act_type(uint32_t wtype);

/* Bytes of one activation row of n values in act_type; 0 if n is not a
 * non-negative multiple of the type's block or the type is not Q8_0/1/K. */
size_t gm_q8_row_bytes(uint32_t act_type, int n);
/* An upper bound of gm_q8_row_bytes over the three types (scratch sizing). */
size_t gm_q8_max_row_bytes(int n);

/* The activation quantizers ggml-cpu runs on x86 (AVX2 / AVX-512 builds):
 * see ggml_q8.c for how they differ from ggml's portable _ref versions. */
void gm_quantize_row_q8_0(const float *x, void *out, int n);
void gm_quantize_row_q8_1(const float *x, void *out, int n);
void gm_quantize_row_q8_K(const float *x, void *out, int n);
/* ggml's quantize_row_q8_0_ref / q8_1_ref (gguf-py's Q8_0 is the former);
 * only for tests: llama.cpp on x86 does not run them. */
void gm_quantize_row_q8_0_ref(const float *x, void *out, int n);
void gm_quantize_row_q8_1_ref(const float *x, void *out, int n);

/* Dispatch on act_type (Q8_0 / Q8_1 / Q8_K); does nothing for other types. */
void gm_q8_quantize_row(uint32_t act_type, const float *x, void *out, int n);

/* ggml's vec_dot of one weight row (type wtype, n values) with an activation
 * row quantized to gm_q8_act_type(wtype).  NaN when the weight type has no
 * integer path or n is not a multiple of its block size. */
float gm_q8_dot_row(uint32_t wtype, const void *w, const void *xq, int n);
/* The same dot as llama.cpp computes it when 8 or more activation rows are
 * multiplied at once: for K-quants ggml-cpu then runs a tiled GEMM whose f32
 * steps differ from vec_dot's; for the other types it equals gm_q8_dot_row
 * (llamafile's tinyBLAS, used for their prompts, rounds exactly as vec_dot). */
float gm_q8_dot_row_gemm(uint32_t wtype, const void *w, const void *xq, int n);
#define GM_Q8_GEMM_MIN_ROWS 8

#endif
