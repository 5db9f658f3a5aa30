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

#endif
