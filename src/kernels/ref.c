/* ref.c - scalar reference kernels: the definition every SIMD twin must match.
 * Written for clarity, with f32 accumulation throughout. */
#include "kernels/kernels.h"
#include "kernels/mlx_rows.h"
#include "core/dtype.h"
#include "quant/ggml_blocks.h"

#include <math.h>

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

static void ref_mlx_prep_x(const float *x, int n, int bits, int group_size, float *xp) {
    memcpy(xp, x, (size_t)n * sizeof(float));
}

static void ref_matvec_mlx(const gm_mlx_rows *w, int r0, int r1, const float *xp, const float *xsum, float *y) {
    int groups = w->cols / w->group_size;
    for (int r = r0; r < r1; r++) {
        const uint8_t *packed = w->data + (size_t)r * w->row_bytes;
        size_t g0 = (size_t)r * (size_t)groups;
        float total = 0.0f;
        for (int g = 0; g < groups; g++) {
            float acc = 0.0f;
            for (int i = 0; i < w->group_size; i++) {
                int k = g * w->group_size + i;
                acc += (float)mlx_element(packed, w->bits, k) * xp[k];
            }
            total += gm_load_float(w->scales, (gm_dtype)w->sdtype, g0 + (size_t)g) * acc +
                     gm_load_float(w->biases, (gm_dtype)w->sdtype, g0 + (size_t)g) * xsum[g];
        }
        y[r - r0] = total;
    }
}

/* The int8 path (kernels.h matmul_mlx_q8), lane by lane as its contract reads. */
static void ref_matmul_mlx_q8(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq,
                              const float *dxv, const float *xsum, float *y, size_t ldy) {
    const int chunk = gm_mlx_q8_chunk(w->bits), per_lane = chunk / 16, groups = w->cols / w->group_size;
    const gm_dtype sdt = (gm_dtype)w->sdtype;
    for (int t = 0; t < n_tokens; t++) {
        const int8_t *xt = xq + (size_t)t * (size_t)w->cols;
        const float *dt = dxv + (size_t)t * gm_mlx_q8_dxv_floats(w->cols), *st = xsum + (size_t)t * (size_t)groups;
        for (int r = r0; r < r1; r++) {
            const uint8_t *packed = w->data + (size_t)r * w->row_bytes;
            size_t g0 = (size_t)r * (size_t)groups;
            float total = 0.0f;
            for (int c0 = 0; c0 < w->cols; c0 += chunk)
                for (int i = 0; i < 16; i++) {
                    int32_t isum = 0;
                    for (int e = 0; e < per_lane; e++) {
                        int k = c0 + i * per_lane + e, local = k - c0;
                        int xi = w->bits == 4 ? c0 + (local & 1) * 64 + local / 2 : k;
                        isum += (int32_t)mlx_element(packed, w->bits, k) * xt[xi];
                    }
                    float s = gm_load_float(w->scales, sdt, g0 + (size_t)((c0 + i * per_lane) / w->group_size));
                    total += (float)isum * (s * dt[(size_t)(c0 / chunk) * 16 + (size_t)i]);
                }
            for (int g = 0; g < groups; g++) total += gm_load_float(w->biases, sdt, g0 + (size_t)g) * st[g];
            y[(size_t)t * ldy + (size_t)(r - r0)] = total;
        }
    }
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

static void ref_axpy_f16(float a, const void *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * gm_load_float(x, GM_DT_F16, (size_t)i);
}

static void ref_axpy_bf16(float a, const void *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * gm_load_float(x, GM_DT_BF16, (size_t)i);
}

/* ------------------------------------------------- llama.cpp's lane sums */

static float ref_dot_lanes(const float *a, const float *b, int n, int groups) {
    float acc[4][16] = {{0}};
    for (int i = 0; i < n; i++) {
        float *lane = &acc[(i >> 4) % groups][i & 15];
        *lane = fmaf(a[i], b[i], *lane);
    }
    return gm_lanes_reduce(acc, groups);
}

static void ref_fma_row(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

void gm_ref_dequant_ggml(uint32_t type, const void *w, float *out, int n) { gm_ggml_dequant_row(type, w, out, n); }

/* ------------------------------------------- GEMM tile and vision loops */

enum { REF_MR = 4, REF_NR = 8 };

static void ref_gemm_f32(int kc, const float *a, const float *b, float *c, size_t ldc, int m, int n, int accumulate) {
    float acc[REF_MR][REF_NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < REF_MR; i++)
            for (int j = 0; j < REF_NR; j++) acc[i][j] += a[k * REF_MR + i] * b[k * REF_NR + j];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = (accumulate ? c[(size_t)i * ldc + j] : 0.0f) + acc[i][j];
}

static float ref_exp_sum(const float *x, float *y, int n, float scale, float shift) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        y[i] = expf(x[i] * scale - shift);
        s += y[i];
    }
    return s;
}

static float ref_max_f32(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static void ref_gelu_tanh(float *x, int n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

static void ref_pack_t(const float *src, size_t ld, int rows, int cols, int width, float *dst) {
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < width; r++) dst[(size_t)c * width + r] = r < rows ? src[(size_t)r * ld + c] : 0.0f;
}

void gm_ref_softmax_cols(float *p, int rows, int ncols, int stride, float scale, float *run_max, float *run_sum,
                         float *o, size_t ldo, int o_rows) {
    for (int c = 0; c < ncols; c++) {
        float m = p[c];
        for (int r = 1; r < rows; r++) m = p[(size_t)r * stride + c] > m ? p[(size_t)r * stride + c] : m;
        float shift = m * scale, s = 0.0f;
        if (run_max[c] > shift) shift = run_max[c];
        float f = expf(run_max[c] - shift);
        for (int r = 0; r < rows; r++) {
            float *x = &p[(size_t)r * stride + c];
            *x = expf(*x * scale - shift);
            s += *x;
        }
        run_sum[c] = run_sum[c] * f + s;
        run_max[c] = shift;
        for (int i = 0; i < o_rows; i++) o[(size_t)i * ldo + c] *= f;
    }
}

static void ref_softmax_cols(float *p, int rows, int width, float scale, float *run_max, float *run_sum, float *o,
                             size_t ldo, int o_rows) {
    gm_ref_softmax_cols(p, rows, width, width, scale, run_max, run_sum, o, ldo, o_rows);
}

const gm_kernels gm_kernels_ref = {
    .name = "scalar",
    .dot_f32 = ref_dot_f32,
    .dot_wf32 = ref_dot_wf32,
    .dot_bf16 = ref_dot_bf16,
    .dot_f16 = ref_dot_f16,
    .dot_mlx = ref_dot_mlx,
    .mlx_prep_x = ref_mlx_prep_x,
    .matvec_mlx = ref_matvec_mlx,
    .matmul_mlx_q8 = ref_matmul_mlx_q8,
    .dequant_mlx = ref_dequant_mlx,
    .bf16_to_f32 = ref_bf16_to_f32,
    .f16_to_f32 = ref_f16_to_f32,
    .axpy = ref_axpy,
    .axpy_f16 = ref_axpy_f16,
    .axpy_bf16 = ref_axpy_bf16,
    .dot_ggml = gm_ggml_dot_row,
    .dequant_ggml = gm_ref_dequant_ggml,
    .quantize_q8 = gm_q8_quantize_row,
    .dot_ggml_q8 = gm_q8_dot_row,
    .dot_ggml_q8_gemm = gm_q8_dot_row_gemm,
    .dot_lanes = ref_dot_lanes,
    .fma_row = ref_fma_row,
    .gemm_mr = REF_MR,
    .gemm_nr = REF_NR,
    .gemm_f32 = ref_gemm_f32,
    .exp_sum = ref_exp_sum,
    .max_f32 = ref_max_f32,
    .gelu_tanh = ref_gelu_tanh,
    .pack_t = ref_pack_t,
    .softmax_cols = ref_softmax_cols,
};
