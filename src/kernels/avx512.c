/* avx512.c - AVX-512 (F/BW/VL/DQ) twins of the reference kernels (see
 * kernels.h): 16 lanes per instruction; on cores with full-width FMA units
 * (Zen 5, Sapphire Rapids) that doubles the arithmetic rate over AVX2. */
#include "kernels/kernels.h"

#include <immintrin.h>

static inline __m512 load_bf16x16(const uint8_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __m512 load_f16x16(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

static inline float bf16_scalar(const uint8_t *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    union { uint32_t u; float f; } c = {.u = (uint32_t)h << 16};
    return c.f;
}

static inline float f16_scalar(const uint8_t *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float f32_scalar(const uint8_t *p) {
    float f;
    __builtin_memcpy(&f, p, 4);
    return f;
}

/* ---------------------------------------------------------------- float dots */

static float avx512_dot_f32(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Weight rows in f32 / bf16 / f16: one loop, specialised per element type
 * by inlining (the type is a constant at every call site). */
enum { ELEM_F32, ELEM_BF16, ELEM_F16 };

static inline __attribute__((always_inline)) __m512 load_elems16(const uint8_t *p, int type) {
    if (type == ELEM_F32) return _mm512_loadu_ps(p);
    return type == ELEM_BF16 ? load_bf16x16(p) : load_f16x16(p);
}

static inline __attribute__((always_inline)) float load_elem(const uint8_t *p, int type) {
    if (type == ELEM_F32) return f32_scalar(p);
    return type == ELEM_BF16 ? bf16_scalar(p) : f16_scalar(p);
}

static inline __attribute__((always_inline)) float dot_elems(const uint8_t *w, int type, const float *x, int n) {
    int es = type == ELEM_F32 ? 4 : 2;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_elems16(w + es * i, type), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(load_elems16(w + es * (i + 16), type), _mm512_loadu_ps(x + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(load_elems16(w + es * i, type), _mm512_loadu_ps(x + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += load_elem(w + es * i, type) * x[i];
    return s;
}

static inline __attribute__((always_inline)) void widen_elems(const uint8_t *in, int type, float *out, int n) {
    int es = type == ELEM_F32 ? 4 : 2, i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_elems16(in + es * i, type));
    for (; i < n; i++) out[i] = load_elem(in + es * i, type);
}

static float avx512_dot_wf32(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F32, x, n); }
static float avx512_dot_bf16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_BF16, x, n); }
static float avx512_dot_f16(const void *w, const float *x, int n) { return dot_elems(w, ELEM_F16, x, n); }

/* ------------------------------------------------------------ MLX affine */

/* Sixteen 4-bit values from 8 bytes (two little-endian words). */
static inline __m512 unpack4x16(const uint8_t *p) {
    uint32_t w0, w1;
    __builtin_memcpy(&w0, p, 4);
    __builtin_memcpy(&w1, p + 4, 4);
    const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i words = _mm512_inserti64x4(_mm512_set1_epi32((int)w0), _mm256_set1_epi32((int)w1), 1);
    __m512i v = _mm512_and_si512(_mm512_srlv_epi32(words, shifts), _mm512_set1_epi32(15));
    return _mm512_cvtepi32_ps(v);
}

static inline __m512 unpack8x16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static inline __m512 load_levels16(const uint8_t *packed, int bits, int k) {
    if (bits == 4) return unpack4x16(packed + k / 2);
    if (bits == 8) return unpack8x16(packed + k);
    float tmp[16];
    gm_ref_unpack_mlx(packed, bits, k, 16, tmp);
    return _mm512_loadu_ps(tmp);
}

static float avx512_dot_mlx(const uint8_t *packed, const float *scales, const float *biases, const float *xsum,
                            int bits, int group_size, const float *x, int n) {
    __m512 total = _mm512_setzero_ps();
    float bias_part = 0.0f;
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int k = k0; k < k0 + group_size; k += 32) {
            a0 = _mm512_fmadd_ps(load_levels16(packed, bits, k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(load_levels16(packed, bits, k + 16), _mm512_loadu_ps(x + k + 16), a1);
        }
        total = _mm512_fmadd_ps(_mm512_set1_ps(scales[g]), _mm512_add_ps(a0, a1), total);
        bias_part += biases[g] * xsum[g];
    }
    return _mm512_reduce_add_ps(total) + bias_part;
}

static void avx512_dequant_mlx(const uint8_t *packed, const float *scales, const float *biases, int bits,
                               int group_size, float *out, int n) {
    for (int g = 0, k0 = 0; k0 < n; g++, k0 += group_size) {
        __m512 s = _mm512_set1_ps(scales[g]), b = _mm512_set1_ps(biases[g]);
        for (int k = k0; k < k0 + group_size; k += 16)
            _mm512_storeu_ps(out + k, _mm512_fmadd_ps(load_levels16(packed, bits, k), s, b));
    }
}

/* ------------------------------------------------------------ conversions */

static void avx512_bf16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_BF16, out, n); }
static void avx512_f16_to_f32(const void *in, float *out, int n) { widen_elems(in, ELEM_F16, out, n); }

static void avx512_axpy(float a, const float *x, float *y, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

const gm_kernels gm_kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = avx512_dot_f32,
    .dot_wf32 = avx512_dot_wf32,
    .dot_bf16 = avx512_dot_bf16,
    .dot_f16 = avx512_dot_f16,
    .dot_mlx = avx512_dot_mlx,
    .dequant_mlx = avx512_dequant_mlx,
    .bf16_to_f32 = avx512_bf16_to_f32,
    .f16_to_f32 = avx512_f16_to_f32,
    .axpy = avx512_axpy,
    .dot_ggml = gm_ggml_dot_row,          /* scalar until the SIMD twins land */
    .dequant_ggml = gm_ref_dequant_ggml,
};
