/* neon.c - AArch64 NEON twins of the reference kernels (see kernels.h).
 * NEON is part of every AArch64 CPU, so this table is always usable there.
 * Weights are read with byte loads (vld1q_u8) and reinterpreted: checkpoint
 * tensors may be unaligned.  Verified under qemu-aarch64 against ref.c. */
#include "kernels/kernels.h"

#include <arm_neon.h>
#include <string.h>

static inline float32x4_t load_f32x4(const uint8_t *p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }

static inline float32x4_t bf16x4_to_f32(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

static inline float32x4_t f16x4_to_f32(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }

static inline float scalar_elem(const uint8_t *p, int type);

/* ---------------------------------------------------------------- float dots */

static float neon_dot_f32(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Weight rows in f32 / bf16 / f16: one loop specialised by inlining. */
enum { ELEM_F32, ELEM_BF16, ELEM_F16 };

static inline __attribute__((always_inline)) float32x4_t load_elems4(const uint8_t *p, int type) {
    if (type == ELEM_F32) return load_f32x4(p);
    uint16x4_t h = vreinterpret_u16_u8(vld1_u8(p));
    return type == ELEM_BF16 ? bf16x4_to_f32(h) : f16x4_to_f32(h);
}

static inline float scalar_elem(const uint8_t *p, int type) {
    if (type == ELEM_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    if (type == ELEM_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return vgetq_lane_f32(f16x4_to_f32(vdup_n_u16(h)), 0);
}

static inline __attribute__((always_inline)) float dot_elems(const uint8_t *w, int type, const float *x, int n) {
    int es = type == ELEM_F32 ? 4 : 2;
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, load_elems4(w + es * i, type), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, load_elems4(w + es * (i + 4), type), vld1q_f32(x + i + 4));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, load_elems4(w + es * i, type), vld1q_f32(x + i));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += scalar_elem(w + es * i, type) * x[i];
    return s;
}

static inline __attribute__((always_inline)) void widen_elems(const uint8_t *in, int type, float *out, int n) {
    int es = type == ELEM_F32 ? 4 : 2, i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load_elems4(in + es * i, type));
    for (; i < n; i++) out[i] = scalar_elem(in + es * i, type);
}

static float neon_dot_wf32(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F32, x, n); }
static float neon_dot_bf16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_BF16, x, n); }
static float neon_dot_f16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F16, x, n); }

/* ------------------------------------------------------------ MLX affine */

/* 8 levels starting at element k, as two float32x4. */
static inline void load_levels8(const uint8_t *packed, int bits, int k, float32x4_t *lo, float32x4_t *hi) {
    uint16x8_t v;
    if (bits == 4) {
        uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(0));
        uint32_t word;
        memcpy(&word, packed + k / 2, 4);
        b = vreinterpret_u8_u32(vset_lane_u32(word, vreinterpret_u32_u8(b), 0));
        uint8x8_t l = vand_u8(b, vdup_n_u8(15)), h = vshr_n_u8(b, 4);
        uint8x8x2_t z = vzip_u8(l, h);   /* l0 h0 l1 h1 ...: element order */
        v = vmovl_u8(z.val[0]);
    } else if (bits == 8) {
        v = vmovl_u8(vld1_u8(packed + k));
    } else {
        float tmp[8];
        gm_ref_unpack_mlx(packed, bits, k, 8, tmp);
        *lo = vld1q_f32(tmp);
        *hi = vld1q_f32(tmp + 4);
        return;
    }
    *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(v)));
    *hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(v)));
}

static float neon_dot_mlx(const uint8_t *packed, const float *scales, const float *biases, const float *xsum,
                          int bits, int group_size, const float *x, int n) {
    float32x4_t total = vdupq_n_f32(0);
    float bias_part = 0.0f;
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
        for (int k = k0; k < k0 + group_size; k += 8) {
            float32x4_t lo, hi;
            load_levels8(packed, bits, k, &lo, &hi);
            a0 = vfmaq_f32(a0, lo, vld1q_f32(x + k));
            a1 = vfmaq_f32(a1, hi, vld1q_f32(x + k + 4));
        }
        total = vfmaq_n_f32(total, vaddq_f32(a0, a1), scales[g]);
        bias_part += biases[g] * xsum[g];
    }
    return vaddvq_f32(total) + bias_part;
}

static void neon_dequant_mlx(const uint8_t *packed, const float *scales, const float *biases, int bits,
                             int group_size, float *out, int n) {
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        float32x4_t s = vdupq_n_f32(scales[g]), b = vdupq_n_f32(biases[g]);
        for (int k = k0; k < k0 + group_size; k += 8) {
            float32x4_t lo, hi;
            load_levels8(packed, bits, k, &lo, &hi);
            vst1q_f32(out + k, vfmaq_f32(b, lo, s));
            vst1q_f32(out + k + 4, vfmaq_f32(b, hi, s));
        }
    }
}

/* ------------------------------------------------------------ conversions */

static void neon_bf16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_BF16, out, n); }
static void neon_f16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_F16, out, n); }

static void neon_axpy(float a, const float *x, float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

const gm_kernels gm_kernels_neon = {
    .name = "neon",
    .dot_f32 = neon_dot_f32,
    .dot_wf32 = neon_dot_wf32,
    .dot_bf16 = neon_dot_bf16,
    .dot_f16 = neon_dot_f16,
    .dot_mlx = neon_dot_mlx,
    .dequant_mlx = neon_dequant_mlx,
    .bf16_to_f32 = neon_bf16_to_f32,
    .f16_to_f32 = neon_f16_to_f32,
    .axpy = neon_axpy,
    .dot_ggml = gm_ggml_dot_row,          /* scalar until the SIMD twins land */
    .dequant_ggml = gm_ref_dequant_ggml,
};
