/* matmul.h - y = x · Wᵀ over weights in any stored format, split across the pool.
 *
 * A gm_weight is a view of a [rows, cols] matrix as it lies in the mmapped
 * checkpoint: f32, f16, bf16, MLX affine-quantized (packed bitstream +
 * per-group scales and biases), or a GGUF block format (each row a run of
 * ggml blocks).  Nothing is converted ahead of time.  GGUF block weights
 * marked llamacpp are multiplied the way llama.cpp does it: the input
 * rows are quantized to 8 bits once per call and dotted in integers
 * (quant/ggml_q8.h); F16 and F32 weights so marked take ggml's f16 input
 * rounding and lane sums (kernels.h dot_lanes).  All others see the exact
 * f32 inputs. */
#ifndef GM_MATMUL_H
#define GM_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/threadpool.h"
#include "kernels/kernels.h"

typedef enum { GM_W_F32 = 0, GM_W_F16, GM_W_BF16, GM_W_MLX, GM_W_GGML } gm_wkind;

typedef struct {
    gm_wkind kind;
    int rows, cols;
    const uint8_t *data;
    size_t row_bytes;
    /* MLX affine */
    int bits, group_size;
    const uint8_t *scales, *biases;
    gm_dtype qdtype;          /* dtype of scales and biases */
    /* GGUF blocks */
    uint32_t ggml_type;       /* quant/ggml_blocks.h type id */
    int llamacpp;             /* multiply as llama.cpp does (GEMMA_NUMERICS_LLAMACPP): block types
                                 with inputs quantized to their 8-bit activation blocks and integer
                                 dots; F16 (inputs rounded to f16) and F32 with ggml's lane sums */
} gm_weight;

/* Per-thread scratch the kernels need: sized by gm_matmul_scratch_floats. */
typedef struct {
    float **per_thread;       /* n_threads buffers */
    int n_threads;
    float *xsum;              /* [max_tokens * max_cols / 32] group sums of the input */
    float *xq;                /* the input rows quantized for GGUF block weights (bytes; a float
                                 buffer so that the session allocates it with the others) */
    float *xf;                /* [max_tokens * max_cols] the input rows rounded to f16 (F16 weights) */
    float *xp;                /* [max_cols] one input row in matvec_mlx's order (MLX weights, decode) */
    /* GEMMA_NUMERICS_INT8: MLX 4/8-bit rows of a gm_mlx_q8_ok shape take int8 inputs */
    int int8;
    float *x8;                /* the input rows as int8 (bytes; gm_matmul_x8_floats) */
    float *x8d;               /* their per-lane scales (kernels/mlx_rows.h) */
} gm_matmul_scratch;

/* per thread; gemm: some matrix multiplies prefill through the GEMM (its
 * blocks are ~5 MB a thread, so sessions leave them out when none does) */
size_t gm_matmul_scratch_floats(int max_cols, int gemm);
size_t gm_matmul_xsum_floats(int max_tokens, int max_cols);
size_t gm_matmul_xq_floats(int max_tokens, int max_cols);
size_t gm_matmul_x8_floats(int max_tokens, int max_cols);    /* x8 and x8d each */

/* Whether prefill multiplies w through the cache-blocked GEMM: neither the
 * int8 path (numerics int8) nor llama.cpp's row by row path takes it. */
int gm_matmul_uses_gemm(const gm_weight *w, int int8);

/* Whether w takes the F16/F32 llama.cpp path (then the scratch needs xf). */
int gm_matmul_lanes_ok(const gm_weight *w);

/* From this many tokens on (prefill), exact numerics multiply through the
 * cache-blocked GEMM (kernels/gemm.h); fewer go row by row. */
#define GM_MATMUL_GEMM_MIN_TOKENS 4

/* y[t*rows + o] = sum_k W[o,k] x[t*cols + k]  for t < n_tokens. */
void gm_matmul(gm_pool *pool, const gm_kernels *k, const gm_weight *w, const float *x, int n_tokens, float *y,
               gm_matmul_scratch *scratch);

/* y[i] = the product of w[i] with x, for n matrices of the same input (q, k,
 * v; gate, up): one pool step for all of them where the path allows. */
#define GM_MATMUL_MAX_MANY 4
void gm_matmul_many(gm_pool *pool, const gm_kernels *k, const gm_weight *const *w, int n, const float *x,
                    int n_tokens, float *const *y, gm_matmul_scratch *scratch);

/* Row `row` of W as f32 (the embedding lookup; never the whole table). */
void gm_weight_row(const gm_kernels *k, const gm_weight *w, int row, float *out, float *tmp_groups);

size_t gm_weight_bytes(const gm_weight *w);

#endif
