/* ref.c - scalar reference kernels: the definition every SIMD twin must match.
 * Written for clarity, with f32 accumulation throughout. */
#include "kernels/kernels.h"
#include "core/dtype.h"
#include "quant/ggml_blocks.h"

/* ---------------------------------------------------------------- float dots */

static float ref_dot_f32(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float ref_dot_wf32(const void *w, const float *x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += gm_load_float(w, GM_DT_F32, (size_t)i) * x[i];
    return s;
}

static float ref_dot_bf16(const void *w, const float *x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += gm_load_float(w, GM_DT_BF16, (size_t)i) * x[i];
    return s;
}

static float ref_dot_f16(const void *w, const float *x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += gm_load_float(w, GM_DT_F16, (size_t)i) * x[i];
    return s;
}

/* ------------------------------------------------------------ MLX affine */

/* Element k of an LSB-first bitstream of `bits`-bit unsigned values.  Reads
 * only the bytes that hold the element (never past the row). */
static inline unsigned mlx_element(const uint8_t *packed, int bits, int k) {
    unsigned bit = (unsigned)k * (unsigned)bits;
    unsigned byte = bit >> 3, shift = bit & 7u;
    unsigned v = packed[byte];
    if (shift + (unsigned)bits > 8) v |= (unsigned)packed[byte + 1] << 8;
    return (v >> shift) & ((1u << bits) - 1u);
}

void gm_ref_unpack_mlx(const uint8_t *packed, int bits, int k0, int count, float *out) {
    for (int i = 0; i < count; i++) out[i] = (float)mlx_element(packed, bits, k0 + i);
}

static float ref_dot_mlx(const uint8_t *packed, const float *scales, const float *biases, const float *xsum,
                         int bits, int group_size, const float *x, int n) {
    float total = 0.0f;
    for (int g = 0; g * group_size < n; g++) {
        float acc = 0.0f;
        for (int i = 0; i < group_size; i++) {
            int k = g * group_size + i;
            acc += (float)mlx_element(packed, bits, k) * x[k];
        }
        total += scales[g] * acc + biases[g] * xsum[g];
    }
    return total;
}

static void ref_dequant_mlx(const uint8_t *packed, const float *scales, const float *biases, int bits,
                            int group_size, float *out, int n) {
    for (int k = 0; k < n; k++) {
        int g = k / group_size;
        out[k] = scales[g] * (float)mlx_element(packed, bits, k) + biases[g];
    }
}

/* ------------------------------------------------------------ conversions */

static void ref_bf16_to_f32(const void *in, float *out, int n) {
    for (int i = 0; i < n; i++) out[i] = gm_load_float(in, GM_DT_BF16, (size_t)i);
}

static void ref_f16_to_f32(const void *in, float *out, int n) {
    for (int i = 0; i < n; i++) out[i] = gm_load_float(in, GM_DT_F16, (size_t)i);
}

static void ref_axpy(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void gm_ref_dequant_ggml(uint32_t type, const void *w, float *out, int n) { gm_ggml_dequant_row(type, w, out, n); }

const gm_kernels gm_kernels_ref = {
    .name = "scalar",
    .dot_f32 = ref_dot_f32,
    .dot_wf32 = ref_dot_wf32,
    .dot_bf16 = ref_dot_bf16,
    .dot_f16 = ref_dot_f16,
    .dot_mlx = ref_dot_mlx,
    .dequant_mlx = ref_dequant_mlx,
    .bf16_to_f32 = ref_bf16_to_f32,
    .f16_to_f32 = ref_f16_to_f32,
    .axpy = ref_axpy,
    .dot_ggml = gm_ggml_dot_row,
    .dequant_ggml = gm_ref_dequant_ggml,
};
