/* kernels.h - the inner loops, one table per instruction set.
 *
 * Every entry has a scalar reference in ref.c; avx2.c / avx512.c / neon.c
 * provide faster twins with the same contract, and tests/unit/test_kernels.c
 * cross-checks each twin against the reference on random data.  The table is
 * chosen once at run time (gm_kernels_get), so release builds need no
 * -march flags and a GEMMA_ISA environment variable can force a lower path. */
#ifndef GM_KERNELS_H
#define GM_KERNELS_H

#include <stdint.h>

/* MLX affine quantization, one weight row.  `packed` is the row's bitstream
 * (element k at bits [k*bits, (k+1)*bits), LSB first), `scales`/`biases`
 * hold one f32 per group, `xsum[g]` = sum of x over group g (precomputed once
 * per input vector, shared by all rows).  Returns
 *   sum_g ( scales[g] * sum_{k in g} q_k x_k  +  biases[g] * xsum[g] ). */
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
    /* w[k] = scales[k/gs] * q_k + biases[k/gs] for k < n */
    void (*dequant_mlx)(const uint8_t *packed, const float *scales, const float *biases, int bits,
                        int group_size, float *out, int n);
    void (*bf16_to_f32)(const void *in, float *out, int n);
    void (*f16_to_f32)(const void *in, float *out, int n);
    void (*axpy)(float a, const float *x, float *y, int n);   /* y += a*x */
    /* GGUF block formats (quant/ggml_blocks.h type ids).  `w` is one row of n
     * values (n a multiple of the type's block size, the type supported by
     * gm_ggml_type_supported).  dot: sum_i w_i x_i with w_i exactly as
     * gm_ggml_dequant_row gives them, f32 accumulation in any order.
     * dequant: out[i] = w_i, bit-identical to gm_ggml_dequant_row. */
    float (*dot_ggml)(uint32_t type, const void *w, const float *x, int n);
    void (*dequant_ggml)(uint32_t type, const void *w, float *out, int n);
} gm_kernels;

extern const gm_kernels gm_kernels_ref;
#if defined(GEMMA_HAVE_X86)
extern const gm_kernels gm_kernels_avx2;
extern const gm_kernels gm_kernels_avx512;
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
void gm_ref_dequant_ggml(uint32_t type, const void *w, float *out, int n);
float gm_ggml_dot_row(uint32_t type, const void *w, const float *x, int n);   /* quant/ggml_blocks.c */

#endif
