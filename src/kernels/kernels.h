/* kernels.h - the inner loops, one table per instruction set.
 *
 * Every entry has a scalar reference in ref.c; avx2.c / avx512.c / neon.c
 * provide faster twins with the same contract, and tests/unit/test_kernels.c
 * cross-checks each twin against the reference on random data.  The table is
 * chosen once at run time (gm_kernels_get), so release builds need no
 * -march flags and a GEMMA_ISA environment variable can force a lower path. */
#ifndef GM_KERNELS_H
#define GM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* MLX affine quantization, one weight row.  `packed` is the row's bitstream
 * (element k at bits [k*bits, (k+1)*bits), LSB first), `scales`/`biases`
 * hold one f32 per group, `xsum[g]` = sum of x over group g (precomputed once
 * per input vector, shared by all rows).  Returns
 *   sum_g ( scales[g] * sum_{k in g} q_k x_k  +  biases[g] * xsum[g] ). */
/* MLX affine rows for a matrix-vector product (decode): row r's bitstream at
 * data + r*row_bytes, its cols/group_size scales and biases at element
 * r*(cols/group_size) of `scales` / `biases`, of dtype sdtype (GM_DT_BF16,
 * GM_DT_F16 or GM_DT_F32; core/dtype.h). */
typedef struct {
    const uint8_t *data;
    size_t row_bytes;
    const uint8_t *scales, *biases;
    int sdtype;
    int bits, group_size, cols;
} gm_mlx_rows;

typedef float (*gm_dot_mlx_fn)(const uint8_t *packed, const float *scales, const float *biases,
                               const float *xsum, int bits, int group_size, const float *x, int n);

/* Weight pointers are `const void *`: checkpoint tensors may sit at any byte
 * offset (mlx.save_safetensors does not align its data), so every kernel
 * reads weights with unaligned loads. */
typedef struct {
    const char *name;
    float (*dot_f32)(const float *a, const float *b, int n);          /* activations */
    float (*dot_wf32)(const void *w, const float *x, int n);
    float (*dot_bf16)(const void *w, const float *x, int n);
    float (*dot_f16)(const void *w, const float *x, int n);
    gm_dot_mlx_fn dot_mlx;
    /* Decode: xp = x (n values) in the order this table's matvec_mlx reads it
     * (its unpacking order for 4-bit rows; a copy otherwise), once per input
     * vector, then y[r - r0] = sum_g scale_g * sum_{k in g} q_k x_k + bias_g *
     * xsum[g] for rows r0 <= r < r1, several rows per pass so that the x loads
     * and the horizontal sums are shared.  Sums in any order (f32). */
    void (*mlx_prep_x)(const float *x, int n, int bits, int group_size, float *xp);
    void (*matvec_mlx)(const gm_mlx_rows *w, int r0, int r1, const float *xp, const float *xsum, float *y);
    /* GEMMA_NUMERICS_INT8 (kernels/mlx_rows.h: the layout): for tokens t <
     * n_tokens and rows r0 <= r < r1 (gm_mlx_q8_ok shapes only),
     *   y[t*ldy + r - r0] = sum over chunks c and lanes i of
     *       (float)isum(c, i) * (scale of the lane's group * dxv_t[c*16 + i])
     *     + sum_g bias_g * xsum_t[g],
     * isum the exact integer dot of the lane's levels with xq_t; token t's
     * inputs at xq + t*cols, dxv + t*gm_mlx_q8_dxv_floats(cols), xsum +
     * t*(cols/group_size).  Float sums in any order. */
    void (*matmul_mlx_q8)(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq, const float *dxv,
                          const float *xsum, float *y, size_t ldy);
    /* w[k] = scales[k/gs] * q_k + biases[k/gs] for k < n */
    void (*dequant_mlx)(const uint8_t *packed, const float *scales, const float *biases, int bits,
                        int group_size, float *out, int n);
    void (*bf16_to_f32)(const void *in, float *out, int n);
    void (*f16_to_f32)(const void *in, float *out, int n);
    void (*axpy)(float a, const float *x, float *y, int n);   /* y += a*x */
    /* y[i] += a * x[i] with x stored as f16 / bf16 (a half-precision KV
     * cache's value rows, any byte alignment), widened exactly; fused or not,
     * as axpy. */
    void (*axpy_f16)(float a, const void *x, float *y, int n);
    void (*axpy_bf16)(float a, const void *x, float *y, int n);
    /* GGUF block formats (quant/ggml_blocks.h type ids).  `w` is one row of n
     * values (n a multiple of the type's block size, the type supported by
     * gm_ggml_type_supported).  dot: sum_i w_i x_i with w_i exactly as
     * gm_ggml_dequant_row gives them, f32 accumulation in any order.
     * dequant: out[i] = w_i, bit-identical to gm_ggml_dequant_row. */
    float (*dot_ggml)(uint32_t type, const void *w, const float *x, int n);
    void (*dequant_ggml)(uint32_t type, const void *w, float *out, int n);
    /* llama.cpp's integer path for GGUF block weights (quant/ggml_q8.h),
     * which the matmul uses for every GGUF block type.  quantize_q8: out =
     * the n values of x as an act_type row (GM_GGML_Q8_0 / Q8_1 / Q8_K),
     * bit-identical to gm_q8_quantize_row.  dot_ggml_q8: one weight row of
     * type wtype with an activation row of gm_q8_act_type(wtype),
     * bit-identical to gm_q8_dot_row (ggml's lane order is part of it). */
    void (*quantize_q8)(uint32_t act_type, const float *x, void *out, int n);
    float (*dot_ggml_q8)(uint32_t wtype, const void *w, const void *xq, int n);
    /* The dot llama.cpp forms when GM_Q8_GEMM_MIN_ROWS or more input rows
     * are multiplied at once, bit-identical to gm_q8_dot_row_gemm. */
    float (*dot_ggml_q8_gemm)(uint32_t wtype, const void *w, const void *xq, int n);
    /* llama.cpp's attention arithmetic (GEMMA_NUMERICS_LLAMACPP), which every
     * twin reproduces bit for bit because the lane structure is part of the
     * contract.  dot_lanes: sum_i a[i] b[i] as ggml's f16 dots form it:
     * `groups` (1 or 4) accumulators of 16 f32 lanes, element i fused (fma)
     * into lane i%16 of accumulator (i/16)%groups, then gm_lanes_reduce;
     * n a multiple of 16.  fma_row: y[i] = fma(a, x[i], y[i]). */
    float (*dot_lanes)(const float *a, const float *b, int n, int groups);
    void (*fma_row)(float a, const float *x, float *y, int n);
    /* ---- f32 GEMM micro-kernel and the vision tower's element-wise loops
     * (kernels/gemm.h packs the operands and blocks the loops for it). */
    /* Register tile: gemm_mr rows of A by gemm_nr columns of B.  `a` is kc
     * steps of gemm_mr values (a[k*gemm_mr + i]), `b` kc steps of gemm_nr
     * (b[k*gemm_nr + j]), both 64-byte aligned and zero-padded past m / n.
     * c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + sum_k a[k*mr+i] b[k*nr+j]
     * for i < m <= gemm_mr, j < n <= gemm_nr, summed in k order (SIMD twins
     * fuse the multiply-add); nothing outside the m x n tile is touched. */
    int gemm_mr, gemm_nr;
    void (*gemm_f32)(int kc, const float *a, const float *b, float *c, size_t ldc, int m, int n, int accumulate);
    /* y[i] = exp(x[i]*scale - shift); returns sum_i y[i] (a softmax numerator; x may be y). */
    float (*exp_sum)(const float *x, float *y, int n, float scale, float shift);
    float (*max_f32)(const float *x, int n);    /* n >= 1 */
    /* x[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place (gelu_pytorch_tanh). */
    void (*gelu_tanh)(float *x, int n);
    /* Panel packing, a transpose: dst[c*width + r] = src[r*ld + c] for r < rows, c < cols,
     * and 0 for rows <= r < width (rows <= width <= 64). */
    void (*pack_t)(const float *src, size_t ld, int rows, int cols, int width, float *dst);
    /* One key block of an online ("flash") softmax down the columns of p
     * [rows, width] (rows >= 1, scale > 0), so attention never holds a whole
     * score matrix.  Per column c, with m = max(run_max[c], scale * max_r p[r][c])
     * and f = exp(run_max[c] - m):  p[r][c] = exp(p[r][c]*scale - m),
     * run_sum[c] = run_sum[c]*f + sum_r p[r][c],  o[i*ldo + c] *= f for
     * i < o_rows (the output accumulated over earlier blocks), run_max[c] = m.
     * The first block passes run_max = -inf, run_sum = 0 and a finite o (f is
     * 0, or the clamped exp's 1e-38 in the SIMD twins). */
    void (*softmax_cols)(float *p, int rows, int width, float scale, float *run_max, float *run_sum, float *o,
                         size_t ldo, int o_rows);
} gm_kernels;

/* ggml's end of an f16 dot: with 4 accumulators 0 += 2, 1 += 3, 0 += 1 (lane
 * by lane), then the 16 lanes of accumulator 0 summed as GCC compiles
 * _mm512_reduce_add_ps: halves, quarters, then (0+2) + (1+3). */
static inline float gm_lanes_reduce16(const float a[16]) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; i++) t8[i] = a[i + 8] + a[i];
    for (int i = 0; i < 4; i++) t4[i] = t8[i + 4] + t8[i];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}
static inline float gm_lanes_reduce(float acc[4][16], int groups) {
    if (groups == 4)
        for (int e = 0; e < 16; e++) {
            acc[0][e] = acc[0][e] + acc[2][e];
            acc[1][e] = acc[1][e] + acc[3][e];
            acc[0][e] = acc[0][e] + acc[1][e];
        }
    return gm_lanes_reduce16(acc[0]);
}

extern const gm_kernels gm_kernels_ref;
#if defined(GEMMA_HAVE_X86)
extern const gm_kernels gm_kernels_avx2;
extern const gm_kernels gm_kernels_avx512;
/* dot_ggml_q8 and dot_ggml_q8_gemm for AVX2 + FMA + F16C CPUs (kernels/q8_avx2.c). */
float gm_avx2_dot_ggml_q8(uint32_t wtype, const void *w, const void *xq, int n);
float gm_avx2_dot_ggml_q8_gemm(uint32_t wtype, const void *w, const void *xq, int n);
#endif
#if defined(GEMMA_HAVE_NEON)
extern const gm_kernels gm_kernels_neon;
#endif

/* The best table this CPU supports (respecting GEMMA_ISA), chosen once. */
const gm_kernels *gm_kernels_get(void);
/* A specific table by name if this CPU can run it, else NULL (for tests). */
const gm_kernels *gm_kernels_by_name(const char *name);

/* Scalar helpers shared by the SIMD files for the uncommon bit widths. */
void gm_ref_unpack_mlx(const uint8_t *packed, int bits, int k0, int count, float *out);
/* softmax_cols on ncols columns of a [rows, stride] array (the SIMD twins' odd-width tails). */
void gm_ref_softmax_cols(float *p, int rows, int ncols, int stride, float scale, float *run_max, float *run_sum,
                         float *o, size_t ldo, int o_rows);
void gm_ref_dequant_ggml(uint32_t type, const void *w, float *out, int n);
float gm_ggml_dot_row(uint32_t type, const void *w, const float *x, int n);   /* quant/ggml_blocks.c */
void gm_q8_quantize_row(uint32_t act_type, const float *x, void *out, int n);  /* quant/ggml_q8.c */
float gm_q8_dot_row(uint32_t wtype, const void *w, const void *xq, int n);     /* quant/ggml_q8.c */
float gm_q8_dot_row_gemm(uint32_t wtype, const void *w, const void *xq, int n);

#if defined(GEMMA_HAVE_X86)
/* matmul_mlx_q8 for AVX2 CPUs; the AVX-512 table's too where VNNI is missing. */
void gm_avx2_matmul_mlx_q8(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq, const float *dxv,
                           const float *xsum, float *y, size_t ldy);
#endif

#endif
