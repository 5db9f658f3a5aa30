/* neon.c - AArch64 NEON twins of the reference kernels (see kernels.h).
 * NEON is part of every AArch64 CPU, so this table is always usable there.
 * Weights are read with byte loads (vld1q_u8) and reinterpreted: checkpoint
 * tensors may be unaligned.  Verified under qemu-aarch64 against ref.c. */
#include "kernels/kernels.h"
#include "kernels/mlx_rows.h"

#include "core/cpu.h"

#include <arm_neon.h>
#include <pthread.h>
#include <math.h>
#include <string.h>

/* The GGUF dequantizers must round exactly like ggml_blocks.c (a separate
 * multiply and add): GCC does not contract in ISO C mode, this stops clang. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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


/* Decode: two rows per pass sharing the x loads.  8 bytes of a 4-bit row
 * split into their low nibbles (the block's even elements) and high nibbles
 * (odd ones), the order mlx_prep_x gives x, so no zip is needed. */
enum { MV_ROWS = 2 };

static inline float32x4_t mv_dot16(uint8x8_t b, int four, const uint8_t *p8, const float *x, float32x4_t acc) {
    uint16x8_t l, h;
    if (four) {
        l = vmovl_u8(vand_u8(b, vdup_n_u8(15)));
        h = vmovl_u8(vshr_n_u8(b, 4));
    } else {
        l = vmovl_u8(vld1_u8(p8));
        h = vmovl_u8(vld1_u8(p8 + 8));
    }
    acc = vfmaq_f32(acc, vcvtq_f32_u32(vmovl_u16(vget_low_u16(l))), vld1q_f32(x));
    acc = vfmaq_f32(acc, vcvtq_f32_u32(vmovl_u16(vget_high_u16(l))), vld1q_f32(x + 4));
    acc = vfmaq_f32(acc, vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))), vld1q_f32(x + 8));
    return vfmaq_f32(acc, vcvtq_f32_u32(vmovl_u16(vget_high_u16(h))), vld1q_f32(x + 12));
}

static inline void mlx_rows_pass(const gm_mlx_rows *w, int r, int nr, const float *xp, const float *xsum, float *y) {
    const int gs = w->group_size, groups = w->cols / gs, four = w->bits == 4;
    for (int j = 0; j < nr; j++) y[j] = 0.0f;
    float32x4_t total[MV_ROWS];
    const uint8_t *p[MV_ROWS];
    size_t g0[MV_ROWS];
    for (int j = 0; j < nr; j++) {
        p[j] = w->data + (size_t)(r + j) * w->row_bytes;
        g0[j] = (size_t)(r + j) * (size_t)groups;
        total[j] = vdupq_n_f32(0);
    }
    for (int g = 0; g < groups; g++) {
        float32x4_t acc[MV_ROWS];
        for (int j = 0; j < nr; j++) acc[j] = vdupq_n_f32(0);
        for (int k = g * gs; k < (g + 1) * gs; k += 16)
            for (int j = 0; j < nr; j++) {
                uint8x8_t b = four ? vld1_u8(p[j] + k / 2) : vdup_n_u8(0);
                acc[j] = mv_dot16(b, four, p[j] + k, xp + k, acc[j]);
            }
        for (int j = 0; j < nr; j++)
            total[j] = vfmaq_n_f32(total[j], acc[j], gm_load_float(w->scales, (gm_dtype)w->sdtype, g0[j] + (size_t)g));
    }
    for (int j = 0; j < nr; j++) {
        float bias = 0.0f;
        for (int g = 0; g < groups; g++)
            bias += gm_load_float(w->biases, (gm_dtype)w->sdtype, g0[j] + (size_t)g) * xsum[g];
        y[j] = vaddvq_f32(total[j]) + bias;
    }
}

static void neon_mlx_prep_x(const float *x, int n, int bits, int group_size, float *xp) {
    if (gm_mlx4_fast(bits, group_size, 16))
        gm_mlx4_deinterleave(x, n, 16, xp);
    else
        memcpy(xp, x, (size_t)n * sizeof(float));
}

static void neon_matvec_mlx(const gm_mlx_rows *w, int r0, int r1, const float *xp, const float *xsum, float *y) {
    if (!gm_mlx4_fast(w->bits, w->group_size, 16) && !(w->bits == 8 && w->group_size % 16 == 0)) {
        gm_matvec_mlx_rowwise(w, r0, r1, xp, xsum, y, neon_dot_mlx);
        return;
    }
    int r = r0;
    for (; r + MV_ROWS <= r1; r += MV_ROWS) mlx_rows_pass(w, r, MV_ROWS, xp, xsum, y + (r - r0));
    for (; r < r1; r++) mlx_rows_pass(w, r, 1, xp, xsum, y + (r - r0));
}

/* Int8 inputs (kernels.h matmul_mlx_q8): 16 weight bytes (four int32 lanes
 * of the contract) at a time.  With the ARMv8.2 dot product (every phone
 * core since 2018, Apple since A11) SDOT forms the lanes directly; base
 * ARMv8 forms byte products by vmull/vmlal into int16 and widens them
 * pairwise twice.  An 8-bit level is split into nibbles (SDOT and vmull
 * are signed), the high one weighted by 16. */
typedef int32x4_t (*q8_lanes_fn)(int8x16_t w, int8x16_t x, int8x16_t w2, int8x16_t x2);

static inline int32x4_t q8_lanes_base(int8x16_t w, int8x16_t x, int8x16_t w2, int8x16_t x2) {
    int16x8_t a = vmlal_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), vget_low_s8(w2), vget_low_s8(x2));
    int16x8_t b = vmlal_s8(vmull_s8(vget_high_s8(w), vget_high_s8(x)), vget_high_s8(w2), vget_high_s8(x2));
    return vpaddq_s32(vpaddlq_s16(a), vpaddlq_s16(b));
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static inline int32x4_t q8_lanes_dot(int8x16_t w, int8x16_t x, int8x16_t w2,
                                                                       int8x16_t x2) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w, x), w2, x2);
}

static inline __attribute__((always_inline)) int32x4_t q8_piece(const uint8_t *p, const int8_t *x, int four,
                                                                q8_lanes_fn lanes) {
    uint8x16_t b = vld1q_u8(p);
    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
    int8x16_t xe = vld1q_s8(x), zero = vdupq_n_s8(0);
    if (four) return lanes(lo, xe, hi, vld1q_s8(x + 64));
    return vaddq_s32(lanes(lo, xe, zero, zero), vshlq_n_s32(lanes(hi, xe, zero, zero), 4));
}

static inline __attribute__((always_inline)) void q8_matmul(const gm_mlx_rows *w, int r0, int r1, int n_tokens,
                                                            const int8_t *xq, const float *dxv, const float *xsum,
                                                            float *y, size_t ldy, q8_lanes_fn lanes_fn) {
    const int four = w->bits == 4, chunk = four ? 128 : 64, gs = w->group_size, groups = w->cols / gs;
    const size_t dstride = gm_mlx_q8_dxv_floats(w->cols);
    for (int r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes;
        size_t g0 = (size_t)r * (size_t)groups;
        for (int t = 0; t < n_tokens; t++) {
            const int8_t *xt = xq + (size_t)t * (size_t)w->cols;
            const float *dt = dxv + (size_t)t * dstride, *st = xsum + (size_t)t * (size_t)groups;
            float32x4_t total = vdupq_n_f32(0);
            for (int c = 0, k = 0; k < w->cols; c++, k += chunk)
                for (int o = 0; o < 64; o += 16) {
                    int first = k + (four ? 2 * o : o);   /* the piece's first value: its 4 lanes share a group */
                    float s = gm_load_float(w->scales, (gm_dtype)w->sdtype, g0 + (size_t)(first / gs));
                    float32x4_t sd = vmulq_n_f32(vld1q_f32(dt + (size_t)c * 16 + (size_t)(o / 4)), s);
                    int32x4_t lanes = q8_piece(p + (size_t)c * 64 + (size_t)o, xt + k + o, four, lanes_fn);
                    total = vfmaq_f32(total, vcvtq_f32_s32(lanes), sd);
                }
            float bias = 0.0f;
            for (int g = 0; g < groups; g++) bias += gm_load_float(w->biases, (gm_dtype)w->sdtype, g0 + (size_t)g) * st[g];
            y[(size_t)t * ldy + (size_t)(r - r0)] = vaddvq_f32(total) + bias;
        }
    }
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static void q8_matmul_dot(const gm_mlx_rows *w, int r0, int r1, int n_tokens,
                                                             const int8_t *xq, const float *dxv, const float *xsum,
                                                             float *y, size_t ldy) {
    q8_matmul(w, r0, r1, n_tokens, xq, dxv, xsum, y, ldy, q8_lanes_dot);
}

static int has_dotprod;
static pthread_once_t dotprod_once = PTHREAD_ONCE_INIT;
static void detect_dotprod(void) { has_dotprod = gm_cpu_detect().neon_dotprod; }

static void neon_matmul_mlx_q8(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq, const float *dxv,
                               const float *xsum, float *y, size_t ldy) {
    pthread_once(&dotprod_once, detect_dotprod);
    if (has_dotprod)
        q8_matmul_dot(w, r0, r1, n_tokens, xq, dxv, xsum, y, ldy);
    else
        q8_matmul(w, r0, r1, n_tokens, xq, dxv, xsum, y, ldy, q8_lanes_base);
}

/* ------------------------------------------------------------ conversions */

static void neon_bf16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_BF16, out, n); }
static void neon_f16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_F16, out, n); }

static void neon_axpy(float a, const float *x, float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

/* axpy on f16 / bf16 rows (a half-precision KV cache's values): widen 4, fuse. */
static inline __attribute__((always_inline)) void axpy_elems(float a, const uint8_t *x, int type, float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_elems4(x + 2 * i, type), a));
    for (; i < n; i++) y[i] += a * scalar_elem(x + 2 * i, type);
}

static void neon_axpy_f16(float a, const void *x, float *y, int n) { axpy_elems(a, x, ELEM_F16, y, n); }
static void neon_axpy_bf16(float a, const void *x, float *y, int n) { axpy_elems(a, x, ELEM_BF16, y, n); }

/* ------------------------------------------------- llama.cpp's lane sums */

/* Four q registers per 16-lane accumulator: the lanes are ggml's, so the bits are. */
static float neon_dot_lanes(const float *a, const float *b, int n, int groups) {
    float32x4_t acc[4][4];
    for (int g = 0; g < 4; g++)
        for (int r = 0; r < 4; r++) acc[g][r] = vdupq_n_f32(0.0f);
    for (int i = 0, c = 0; i < n; i += 16, c++) {
        float32x4_t *x = acc[c % groups];
        for (int r = 0; r < 4; r++) x[r] = vfmaq_f32(x[r], vld1q_f32(a + i + 4 * r), vld1q_f32(b + i + 4 * r));
    }
    float lanes[4][16];
    for (int g = 0; g < groups; g++)
        for (int r = 0; r < 4; r++) vst1q_f32(lanes[g] + 4 * r, acc[g][r]);
    return gm_lanes_reduce(lanes, groups);
}

static void neon_fma_row(float a, const float *x, float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* ------------------------------------------------------ GGUF block formats */

/* Every block format is decoded 16 values at a time into signed bytes q
 * (offset already subtracted) with one scale, and emit_bytes16 widens them
 * into exact f32 weights s*q [+ m | - m], rounded as in ggml_blocks.c, then
 * stores them (dequant) or multiplies them into the four accumulators (dot).
 * `dot` is a constant after inlining, so both entry points get straight-line
 * code and the weights never pass through a buffer. */
#define AI inline __attribute__((always_inline))

typedef struct {
    float32x4_t acc[4];
    const float *x;
    float *out;
    int dot;
} ggml_sink;

enum { AFF_NONE, AFF_ADD, AFF_SUB };

static AI float32x4_t f16_bcast(const uint8_t *p) { return vdupq_n_f32(scalar_elem(p, ELEM_F16)); }
static AI uint8x16_t u8s(int v) { return vdupq_n_u8((uint8_t)v); }

/* Values i..i+3; slot must be a constant (the accumulators live in registers). */
static AI void emit4(ggml_sink *k, int i, int slot, int32x4_t q, float32x4_t s, float32x4_t m, int aff) {
    float32x4_t w = vmulq_f32(vcvtq_f32_s32(q), s);
    if (aff == AFF_ADD) w = vaddq_f32(w, m);
    if (aff == AFF_SUB) w = vsubq_f32(w, m);
    if (k->dot) k->acc[slot] = vfmaq_f32(k->acc[slot], w, vld1q_f32(k->x + i));
    else vst1q_f32(k->out + i, w);
}

static AI void emit_bytes16(ggml_sink *k, int i, uint8x16_t qu, float32x4_t s, float32x4_t m, int aff) {
    int8x16_t q = vreinterpretq_s8_u8(qu);
    int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    emit4(k, i, 0, vmovl_s16(vget_low_s16(lo)), s, m, aff);
    emit4(k, i + 4, 1, vmovl_high_s16(lo), s, m, aff);
    emit4(k, i + 8, 2, vmovl_s16(vget_low_s16(hi)), s, m, aff);
    emit4(k, i + 12, 3, vmovl_high_s16(hi), s, m, aff);
}

/* Byte j = 0x10 if bit j of the 16 bits is set (Q5_0/Q5_1's fifth bits). */
static AI uint8x16_t fifth_bits16(uint32_t bits) {
    static const uint8_t bit_of[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vandq_u8(vtstq_u8(v, vld1q_u8(bit_of)), u8s(0x10));
}

/* A 32-value block of 16 nibble bytes (low nibbles values 0-15) and, when
 * qh is given, fifth bits in the little-endian word there (bit j, value j);
 * each quant minus `off`. */
static AI void small_block(ggml_sink *k, const uint8_t *qh, const uint8_t *qs, int i, int off, float32x4_t d,
                           float32x4_t m, int aff) {
    uint8x16_t v = vld1q_u8(qs);
    uint8x16_t lo = vandq_u8(v, u8s(0x0f)), hi = vshrq_n_u8(v, 4);
    if (qh) {
        uint32_t bits;
        memcpy(&bits, qh, 4);
        lo = vorrq_u8(lo, fifth_bits16(bits)), hi = vorrq_u8(hi, fifth_bits16(bits >> 16));
    }
    emit_bytes16(k, i, vsubq_u8(lo, u8s(off)), d, m, aff);
    emit_bytes16(k, i + 16, vsubq_u8(hi, u8s(off)), d, m, aff);
}

static AI void q4_0_block(const uint8_t *b, int i, ggml_sink *k) {
    float32x4_t d = f16_bcast(b);
    small_block(k, NULL, b + 2, i, 8, d, d, AFF_NONE);
}

static AI void q4_1_block(const uint8_t *b, int i, ggml_sink *k) {
    small_block(k, NULL, b + 4, i, 0, f16_bcast(b), f16_bcast(b + 2), AFF_ADD);
}

static AI void q5_0_block(const uint8_t *b, int i, ggml_sink *k) {
    float32x4_t d = f16_bcast(b);
    small_block(k, b + 2, b + 6, i, 16, d, d, AFF_NONE);
}

static AI void q5_1_block(const uint8_t *b, int i, ggml_sink *k) {
    small_block(k, b + 4, b + 8, i, 0, f16_bcast(b), f16_bcast(b + 2), AFF_ADD);
}

static AI void q8_0_block(const uint8_t *b, int i, ggml_sink *k) {
    float32x4_t d = f16_bcast(b);
    emit_bytes16(k, i, vld1q_u8(b + 2), d, d, AFF_NONE);
    emit_bytes16(k, i + 16, vld1q_u8(b + 18), d, d, AFF_NONE);
}

/* d * (float)q for the 8 bytes of q, each product rounded to f32 (the
 * reference rounds d*sc before it multiplies the quants). */
static AI void scale_bytes8(uint8x8_t q, float d, float out[8]) {
    uint16x8_t w = vmovl_u8(q);
    vst1q_f32(out, vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(w))), d));
    vst1q_f32(out + 4, vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(w)), d));
}

/* Q4_K/Q5_K's eight 6-bit scales and mins as d*sc and dmin*mn.  Word
 * operations regroup the 12 packed bytes into sc[0..7] and mn[0..7]. */
static AI void k_scales(const uint8_t *b, float ds[8], float dm[8]) {
    uint32_t u[3], r[4];
    memcpy(u, b + 4, 12);
    r[0] = u[0] & 0x3f3f3f3f;
    r[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    r[2] = u[1] & 0x3f3f3f3f;
    r[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    uint8x16_t v = vreinterpretq_u8_u32(vld1q_u32(r));
    scale_bytes8(vget_low_u8(v), scalar_elem(b, ELEM_F16), ds);
    scale_bytes8(vget_high_u8(v), scalar_elem(b + 2, ELEM_F16), dm);
}

/* Sub-blocks 2p and 2p+1 are the low and high nibbles of qs[32p..]; Q5_K's
 * fifth bit of value l of sub-block j is bit j of qh[l]. */
static AI void k45_block(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, int i, ggml_sink *k) {
    float ds[8], dm[8];
    k_scales(b, ds, dm);
    uint8x16_t h[2] = {u8s(0), u8s(0)};
    if (qh) h[0] = vld1q_u8(qh), h[1] = vld1q_u8(qh + 16);
    for (int p = 0; p < 4; p++)
        for (int u = 0; u < 2; u++) {
            uint8x16_t v = vld1q_u8(qs + 32 * p + 16 * u);
            uint8x16_t lo = vandq_u8(v, u8s(0x0f)), hi = vshrq_n_u8(v, 4);
            if (qh) {
                lo = vorrq_u8(lo, vandq_u8(vtstq_u8(h[u], u8s(1 << (2 * p))), u8s(0x10)));
                hi = vorrq_u8(hi, vandq_u8(vtstq_u8(h[u], u8s(2 << (2 * p))), u8s(0x10)));
            }
            int o = i + 64 * p + 16 * u;
            emit_bytes16(k, o, lo, vdupq_n_f32(ds[2 * p]), vdupq_n_f32(dm[2 * p]), AFF_SUB);
            emit_bytes16(k, o + 32, hi, vdupq_n_f32(ds[2 * p + 1]), vdupq_n_f32(dm[2 * p + 1]), AFF_SUB);
        }
}

static AI void q4_k_block(const uint8_t *b, int i, ggml_sink *k) { k45_block(b, NULL, b + 16, i, k); }
static AI void q5_k_block(const uint8_t *b, int i, ggml_sink *k) { k45_block(b, b + 16, b + 48, i, k); }

/* Q6_K: in half h, the 16 values at 16t (t = 0..7) take nibble t/4 of
 * ql[64h + 16*(t%4) ..] and bits 2*(t/2)..+1 of qh[32h + 16*(t%2) ..];
 * scale s covers values 16s..16s+15. */
static AI void q6_k_block(const uint8_t *b, int i, ggml_sink *k) {
    float ds[16];
    int8x16_t sc = vld1q_s8((const int8_t *)(const void *)(b + 192));
    float d = scalar_elem(b + 208, ELEM_F16);
    int16x8_t s16[2] = {vmovl_s8(vget_low_s8(sc)), vmovl_high_s8(sc)};
    for (int j = 0; j < 2; j++) {
        vst1q_f32(ds + 8 * j, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(s16[j]))), d));
        vst1q_f32(ds + 8 * j + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(s16[j])), d));
    }
    float32x4_t zero = vdupq_n_f32(0);
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 8; t++) {
            uint8x16_t l = vld1q_u8(b + 64 * h + 16 * (t % 4)), qh = vld1q_u8(b + 128 + 32 * h + 16 * (t % 2));
            uint8x16_t nib = t < 4 ? l : vshrq_n_u8(l, 4);
            uint8x16_t hb = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * (t / 2)))), u8s(3));
            uint8x16_t q = vsliq_n_u8(nib, hb, 4);   /* hb << 4 | (nib & 15) */
            emit_bytes16(k, i + 128 * h + 16 * t, vsubq_u8(q, u8s(32)), vdupq_n_f32(ds[8 * h + t]), zero, AFF_NONE);
        }
}

static AI float ggml_sum(const ggml_sink *k) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(k->acc[0], k->acc[1]), vaddq_f32(k->acc[2], k->acc[3])));
}

/* The walk over a row's blocks and the two table entries: the same in every twin. */
#include "kernels/ggml_walk.h"

/* ------------------------------------------- GEMM tile and vision loops */

/* 8 x 12 tile: 24 accumulators + 3 B vectors + 2 A vectors of the 32 q
 * registers; the A values are taken by lane (vfmaq_laneq_f32). */
enum { NEON_MR = 8, NEON_NR = 12 };

static void neon_gemm_f32(int kc, const float *a, const float *b, float *c, size_t ldc, int m, int n,
                          int accumulate) {
    /* C tiles come from L3 (the driver sweeps C once per KC): start fetching
     * this tile and the next one down now; prefetches never fault. */
    if (accumulate)
        for (int i = 0; i < 2 * NEON_MR; i++) __builtin_prefetch(c + (size_t)i * ldc, 1, 2);
#define GM_Z(i) float32x4_t c##i##a = vdupq_n_f32(0), c##i##b = vdupq_n_f32(0), c##i##c = vdupq_n_f32(0);
    GM_Z(0) GM_Z(1) GM_Z(2) GM_Z(3) GM_Z(4) GM_Z(5) GM_Z(6) GM_Z(7)
#undef GM_Z
    for (int k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define GM_ROW(i, av, lane)                                   \
    c##i##a = vfmaq_laneq_f32(c##i##a, b0, av, lane);         \
    c##i##b = vfmaq_laneq_f32(c##i##b, b1, av, lane);         \
    c##i##c = vfmaq_laneq_f32(c##i##c, b2, av, lane);
        GM_ROW(0, a0, 0) GM_ROW(1, a0, 1) GM_ROW(2, a0, 2) GM_ROW(3, a0, 3)
        GM_ROW(4, a1, 0) GM_ROW(5, a1, 1) GM_ROW(6, a1, 2) GM_ROW(7, a1, 3)
#undef GM_ROW
        a += NEON_MR;
        b += NEON_NR;
    }
    float edge[NEON_NR];
#define GM_STORE(i)                                                                              \
    if (i < m) {                                                                                 \
        float *r = c + (size_t)(i) * ldc;                                                        \
        if (n == NEON_NR) {                                                                      \
            float32x4_t v0 = c##i##a, v1 = c##i##b, v2 = c##i##c;                                \
            if (accumulate) {                                                                    \
                v0 = vaddq_f32(vld1q_f32(r), v0);                                                \
                v1 = vaddq_f32(vld1q_f32(r + 4), v1);                                            \
                v2 = vaddq_f32(vld1q_f32(r + 8), v2);                                            \
            }                                                                                    \
            vst1q_f32(r, v0);                                                                    \
            vst1q_f32(r + 4, v1);                                                                \
            vst1q_f32(r + 8, v2);                                                                \
        } else {                                                                                 \
            vst1q_f32(edge, c##i##a);                                                            \
            vst1q_f32(edge + 4, c##i##b);                                                        \
            vst1q_f32(edge + 8, c##i##c);                                                        \
            for (int j = 0; j < n; j++) r[j] = (accumulate ? r[j] : 0.0f) + edge[j];            \
        }                                                                                        \
    }
    GM_STORE(0) GM_STORE(1) GM_STORE(2) GM_STORE(3) GM_STORE(4) GM_STORE(5) GM_STORE(6) GM_STORE(7)
#undef GM_STORE
}

/* exp(x): Cephes' expf reduction and polynomial (about 2 ulp), inputs clamped to [-87, 88]. */
static inline float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    float32x4_t fx = vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(1.44269504088896341f)));
    x = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    x = vfmsq_f32(x, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, x);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, x);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, x);
    y = vaddq_f32(vfmaq_f32(x, y, vmulq_f32(x, x)), vdupq_n_f32(1.0f));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

static inline float32x4_t load_tail4(const float *x, int r) {
    float t[4] = {0};
    memcpy(t, x, (size_t)r * sizeof(float));
    return vld1q_f32(t);
}

static float neon_exp_sum(const float *x, float *y, int n, float scale, float shift) {
    float32x4_t vs = vdupq_n_f32(scale), vh = vdupq_n_f32(shift), acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vmulq_f32(vld1q_f32(x + i), vs), vh));
        vst1q_f32(y + i, e);
        acc = vaddq_f32(acc, e);
    }
    float s = vaddvq_f32(acc);
    if (i < n) {
        float t[4];
        vst1q_f32(t, exp4(vsubq_f32(vmulq_f32(load_tail4(x + i, n - i), vs), vh)));
        for (int j = 0; j < n - i; j++) {
            y[i + j] = t[j];
            s += t[j];
        }
    }
    return s;
}

static float neon_max_f32(const float *x, int n) {
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4) mx = vmaxq_f32(mx, vld1q_f32(x + i));
    float m = vmaxvq_f32(mx);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline float32x4_t gelu4(float32x4_t x) {
    float32x4_t inner = vfmaq_f32(vdupq_n_f32(1.0f), vmulq_f32(x, x), vdupq_n_f32(0.044715f));
    float32x4_t t = vmulq_f32(vmulq_f32(x, inner), vdupq_n_f32(-1.5957691216057308f));
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(t)));
}

static void neon_gelu_tanh(float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, gelu4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4];
        vst1q_f32(t, gelu4(load_tail4(x + i, n - i)));
        memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
    }
}

/* 4 x 4 blocks through vtrn / vcombine. */
static void neon_pack_t(const float *src, size_t ld, int rows, int cols, int width, float *dst) {
    for (int r0 = 0; r0 < width; r0 += 4) {
        int lanes = width - r0 < 4 ? width - r0 : 4, live = rows - r0;
        int c0 = 0;
        for (; c0 + 4 <= cols; c0 += 4) {
            float32x4_t v[4];
            for (int i = 0; i < 4; i++) v[i] = i < live ? vld1q_f32(src + (size_t)(r0 + i) * ld + c0) : vdupq_n_f32(0);
            float32x4x2_t a = vtrnq_f32(v[0], v[1]), b = vtrnq_f32(v[2], v[3]);
            float32x4_t col[4] = {vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0])),
                                  vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1])),
                                  vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0])),
                                  vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]))};
            for (int c = 0; c < 4; c++) {
                float *d = dst + (size_t)(c0 + c) * width + r0;
                if (lanes == 4) {
                    vst1q_f32(d, col[c]);
                } else {
                    float t[4];
                    vst1q_f32(t, col[c]);
                    memcpy(d, t, (size_t)lanes * sizeof(float));
                }
            }
        }
        for (; c0 < cols; c0++)
            for (int i = 0; i < lanes; i++) dst[(size_t)c0 * width + r0 + i] = i < live ? src[(size_t)(r0 + i) * ld + c0] : 0.0f;
    }
}

static void neon_softmax_cols(float *p, int rows, int width, float scale, float *run_max, float *run_sum, float *o,
                              size_t ldo, int o_rows) {
    float32x4_t vs = vdupq_n_f32(scale);
    int c0 = 0;
    for (; c0 + 4 <= width; c0 += 4) {
        float32x4_t mx = vdupq_n_f32(-INFINITY), sum = vdupq_n_f32(0);
        for (int r = 0; r < rows; r++) mx = vmaxq_f32(mx, vld1q_f32(p + (size_t)r * width + c0));
        float32x4_t old = vld1q_f32(run_max + c0);
        float32x4_t shift = vmaxq_f32(vmulq_f32(mx, vs), old);
        float32x4_t f = exp4(vsubq_f32(old, shift));
        for (int r = 0; r < rows; r++) {
            float *x = p + (size_t)r * width + c0;
            float32x4_t e = exp4(vsubq_f32(vmulq_f32(vld1q_f32(x), vs), shift));
            vst1q_f32(x, e);
            sum = vaddq_f32(sum, e);
        }
        vst1q_f32(run_sum + c0, vfmaq_f32(sum, vld1q_f32(run_sum + c0), f));
        vst1q_f32(run_max + c0, shift);
        for (int i = 0; i < o_rows; i++) {
            float *y = o + (size_t)i * ldo + c0;
            vst1q_f32(y, vmulq_f32(vld1q_f32(y), f));
        }
    }
    if (c0 < width)
        gm_ref_softmax_cols(p + c0, rows, width - c0, width, scale, run_max + c0, run_sum + c0, o + c0, ldo, o_rows);
}

const gm_kernels gm_kernels_neon = {
    .name = "neon",
    .dot_f32 = neon_dot_f32,
    .dot_wf32 = neon_dot_wf32,
    .dot_bf16 = neon_dot_bf16,
    .dot_f16 = neon_dot_f16,
    .dot_mlx = neon_dot_mlx,
    .mlx_prep_x = neon_mlx_prep_x,
    .matvec_mlx = neon_matvec_mlx,
    .matmul_mlx_q8 = neon_matmul_mlx_q8,
    .dequant_mlx = neon_dequant_mlx,
    .bf16_to_f32 = neon_bf16_to_f32,
    .f16_to_f32 = neon_f16_to_f32,
    .axpy = neon_axpy,
    .axpy_f16 = neon_axpy_f16,
    .axpy_bf16 = neon_axpy_bf16,
    .dot_ggml = ggml_dot,
    .dequant_ggml = ggml_dequant,
    .quantize_q8 = gm_q8_quantize_row,
    .dot_ggml_q8 = gm_q8_dot_row,
    .dot_ggml_q8_gemm = gm_q8_dot_row_gemm,
    .dot_lanes = neon_dot_lanes,
    .fma_row = neon_fma_row,
    .gemm_mr = NEON_MR,
    .gemm_nr = NEON_NR,
    .gemm_f32 = neon_gemm_f32,
    .exp_sum = neon_exp_sum,
    .max_f32 = neon_max_f32,
    .gelu_tanh = neon_gelu_tanh,
    .pack_t = neon_pack_t,
    .softmax_cols = neon_softmax_cols,
};
