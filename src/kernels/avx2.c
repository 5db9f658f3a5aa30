/* avx2.c - AVX2 + FMA + F16C twins of the reference kernels (see kernels.h).
 * Compiled with -mavx2 -mfma -mf16c for this file only; used only when the
 * CPU reports those features. */
#include "kernels/kernels.h"

#include <immintrin.h>

static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

static inline float load_u16_scalar_bf16(const uint8_t *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    union { uint32_t u; float f; } c = {.u = (uint32_t)h << 16};
    return c.f;
}

static inline float load_u16_scalar_f16(const uint8_t *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m256 load_bf16x8(const uint8_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256 load_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* ---------------------------------------------------------------- float dots */

static float avx2_dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Weight rows in f32 / bf16 / f16: one loop, specialised per element type
 * by inlining (the type is a constant at every call site). */
enum { ELEM_F32, ELEM_BF16, ELEM_F16 };

static inline __attribute__((always_inline)) __m256 load_elems8(const uint8_t *p, int type) {
    if (type == ELEM_F32) return _mm256_loadu_ps((const float *)(const void *)p);
    return type == ELEM_BF16 ? load_bf16x8(p) : load_f16x8(p);
}

static inline __attribute__((always_inline)) float load_elem(const uint8_t *p, int type) {
    if (type == ELEM_F32) {
        float f;
        __builtin_memcpy(&f, p, 4);
        return f;
    }
    return type == ELEM_BF16 ? load_u16_scalar_bf16(p) : load_u16_scalar_f16(p);
}

static inline __attribute__((always_inline)) float dot_elems(const uint8_t *w, int type, const float *x, int n) {
    int es = type == ELEM_F32 ? 4 : 2;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_elems8(w + es * i, type), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load_elems8(w + es * (i + 8), type), _mm256_loadu_ps(x + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_elems8(w + es * i, type), _mm256_loadu_ps(x + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += load_elem(w + es * i, type) * x[i];
    return s;
}

static inline __attribute__((always_inline)) void widen_elems(const uint8_t *in, int type, float *out, int n) {
    int es = type == ELEM_F32 ? 4 : 2, i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_elems8(in + es * i, type));
    for (; i < n; i++) out[i] = load_elem(in + es * i, type);
}

static float avx2_dot_wf32(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F32, x, n); }
static float avx2_dot_bf16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_BF16, x, n); }
static float avx2_dot_f16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F16, x, n); }

/* ------------------------------------------------------------ MLX affine */

/* Eight 4-bit values from one little-endian 32-bit word, as floats. */
static inline __m256 unpack4x8(const uint8_t *p) {
    uint32_t word;
    __builtin_memcpy(&word, p, 4);
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts);
    return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
}

static inline __m256 unpack8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static inline __m256 load_levels8(const uint8_t *packed, int bits, int k) {
    if (bits == 4) return unpack4x8(packed + k / 2);
    if (bits == 8) return unpack8x8(packed + k);
    float tmp[8];
    gm_ref_unpack_mlx(packed, bits, k, 8, tmp);
    return _mm256_loadu_ps(tmp);
}

static float avx2_dot_mlx(const uint8_t *packed, const float *scales, const float *biases, const float *xsum,
                          int bits, int group_size, const float *x, int n) {
    __m256 total = _mm256_setzero_ps();
    float bias_part = 0.0f;
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int k = k0; k < k0 + group_size; k += 16) {
            a0 = _mm256_fmadd_ps(load_levels8(packed, bits, k), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(load_levels8(packed, bits, k + 8), _mm256_loadu_ps(x + k + 8), a1);
        }
        total = _mm256_fmadd_ps(_mm256_set1_ps(scales[g]), _mm256_add_ps(a0, a1), total);
        bias_part += biases[g] * xsum[g];
    }
    return hsum256(total) + bias_part;
}

static void avx2_dequant_mlx(const uint8_t *packed, const float *scales, const float *biases, int bits,
                             int group_size, float *out, int n) {
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        __m256 s = _mm256_set1_ps(scales[g]), b = _mm256_set1_ps(biases[g]);
        for (int k = k0; k < k0 + group_size; k += 8)
            _mm256_storeu_ps(out + k, _mm256_fmadd_ps(load_levels8(packed, bits, k), s, b));
    }
}

/* ------------------------------------------------------------ conversions */

static void avx2_bf16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_BF16, out, n); }
static void avx2_f16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_F16, out, n); }

static void avx2_axpy(float a, const float *x, float *y, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

const gm_kernels gm_kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = avx2_dot_f32,
    .dot_wf32 = avx2_dot_wf32,
    .dot_bf16 = avx2_dot_bf16,
    .dot_f16 = avx2_dot_f16,
    .dot_mlx = avx2_dot_mlx,
    .dequant_mlx = avx2_dequant_mlx,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .f16_to_f32 = avx2_f16_to_f32,
    .axpy = avx2_axpy,
    .dot_ggml = gm_ggml_dot_row,          /* scalar until the SIMD twins land */
    .dequant_ggml = gm_ref_dequant_ggml,
};
