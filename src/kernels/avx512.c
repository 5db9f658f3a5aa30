/* avx512.c - AVX-512 (F/BW/VL/DQ) twins of the reference kernels (see
 * kernels.h): 16 lanes per instruction; on cores with full-width FMA units
 * (Zen 5, Sapphire Rapids) that doubles the arithmetic rate over AVX2. */
#include "kernels/kernels.h"
#include "kernels/mlx_rows.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* The GGUF dequantizers must round exactly like ggml_blocks.c (a separate
 * multiply and add): GCC does not contract in ISO C mode, this stops clang. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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


/* Decode: several rows per pass.  A 4-bit row's 16 bytes widen to 16 lanes
 * (vpmovzxbd); vpermps looks the low nibble of each lane up in {0..15}, and
 * again after a shift by 4 for the high nibble, so the two halves are the
 * even and odd elements of the block: mlx_prep_x puts x in that order. */
enum { MV_ROWS = 4 };

static inline float scale_at(const uint8_t *p, int sdt, size_t i) {
    if (sdt == GM_DT_BF16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (sdt == GM_DT_F16) return f16_scalar(p + 2 * i);
    return f32_scalar(p + 4 * i);
}

/* sum_g biases[g] * xsum[g] for one row's groups */
static inline float bias_dot(const uint8_t *b, int sdt, const float *xsum, int groups) {
    __m512 acc = _mm512_setzero_ps();
    int g = 0;
    for (; g + 16 <= groups; g += 16) {
        __m512 v = sdt == GM_DT_BF16  ? load_bf16x16(b + 2 * g)
                   : sdt == GM_DT_F16 ? load_f16x16(b + 2 * g)
                                      : _mm512_loadu_ps((const float *)(const void *)(b + 4 * g));
        acc = _mm512_fmadd_ps(v, _mm512_loadu_ps(xsum + g), acc);
    }
    if (g < groups) {   /* the last < 16 groups, masked (most rows of a 640-wide model have only 10) */
        __mmask16 m = (__mmask16)((1u << (groups - g)) - 1u);
        __m512 v = sdt == GM_DT_F32 ? _mm512_maskz_loadu_ps(m, b + 4 * g)
                   : sdt == GM_DT_BF16
                       ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + 2 * g)), 16))
                       : _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b + 2 * g));
        acc = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, xsum + g), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static inline __attribute__((always_inline)) void mlx_rows_pass(const gm_mlx_rows *w, int r, int nr,
                                                                const float *xp, const float *xsum, float *y) {
    const __m512 levels = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int gs = w->group_size, groups = w->cols / gs, four = w->bits == 4;
    const uint8_t *p[MV_ROWS];
    size_t g0[MV_ROWS];
    __m512 total[MV_ROWS];
    for (int j = 0; j < nr; j++) {
        p[j] = w->data + (size_t)(r + j) * w->row_bytes;
        g0[j] = (size_t)(r + j) * (size_t)groups;
        total[j] = _mm512_setzero_ps();
    }
    for (int g = 0; g < groups; g++) {
        __m512 lo[MV_ROWS], hi[MV_ROWS];
        for (int j = 0; j < nr; j++) lo[j] = hi[j] = _mm512_setzero_ps();
        for (int k = g * gs; k < (g + 1) * gs; k += 32) {
            __m512 xl = _mm512_loadu_ps(xp + k), xh = _mm512_loadu_ps(xp + k + 16);
            /* the pass after next, a line per row per 64 bytes read, in address
             * order: the hardware prefetchers stop at every 4 KB page and fall
             * behind four interleaved row streams; sequential software ones do not */
            if ((k & (four ? 127 : 63)) == 0)
                for (int j = 0; j < nr; j++)
                    _mm_prefetch((const char *)(p[0] + 2 * (size_t)nr * w->row_bytes +
                                                ((size_t)k * w->bits / 8) * (size_t)nr + (size_t)j * 64),
                                 _MM_HINT_T0);
            for (int j = 0; j < nr; j++) {
                if (four) {
                    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p[j] + k / 2)));
                    lo[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(b, levels), xl, lo[j]);
                    hi[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), levels), xh, hi[j]);
                } else {
                    lo[j] = _mm512_fmadd_ps(unpack8x16(p[j] + k), xl, lo[j]);
                    hi[j] = _mm512_fmadd_ps(unpack8x16(p[j] + k + 16), xh, hi[j]);
                }
            }
        }
        for (int j = 0; j < nr; j++)
            total[j] = _mm512_fmadd_ps(_mm512_set1_ps(scale_at(w->scales, w->sdtype, g0[j] + (size_t)g)),
                                       _mm512_add_ps(lo[j], hi[j]), total[j]);
    }
    for (int j = 0; j < nr; j++)
        y[j] = _mm512_reduce_add_ps(total[j]) + bias_dot(w->biases + g0[j] * (w->sdtype == GM_DT_F32 ? 4 : 2),
                                                         w->sdtype, xsum, groups);
}

static void avx512_mlx_prep_x(const float *x, int n, int bits, int group_size, float *xp) {
    if (gm_mlx4_fast(bits, group_size, 32))
        gm_mlx4_deinterleave(x, n, 32, xp);
    else
        memcpy(xp, x, (size_t)n * sizeof(float));
}

static void avx512_matvec_mlx(const gm_mlx_rows *w, int r0, int r1, const float *xp, const float *xsum, float *y) {
    if (!gm_mlx4_fast(w->bits, w->group_size, 32) && !(w->bits == 8 && w->group_size % 32 == 0)) {
        gm_matvec_mlx_rowwise(w, r0, r1, xp, xsum, y, avx512_dot_mlx);
        return;
    }
    int r = r0;
    for (; r + MV_ROWS <= r1; r += MV_ROWS) mlx_rows_pass(w, r, MV_ROWS, xp, xsum, y + (r - r0));
    for (; r < r1; r++) mlx_rows_pass(w, r, 1, xp, xsum, y + (r - r0));
}

/* Int8 inputs (kernels.h matmul_mlx_q8): a 64-byte chunk per row per step,
 * its nibbles masked into two u8 vectors that vpdpbusd dots with the even
 * and odd int8 inputs; the 16 int32 lanes then take their group's scale
 * times their input block's d.  Four rows share each input load; two
 * tokens share each row's unpacking (prefill).  VNNI only: without it the
 * table hands the call to the AVX2 kernel. */
#define Q8_INLINE static inline __attribute__((always_inline, target("avx512vnni")))


/* The 16 lanes' weight scales for the chunk starting at group g: `per`
 * scales (mask m) spread by idx over the lanes. */
Q8_INLINE __m512 q8_chunk_scales(const uint8_t *s, int sdt, size_t g, __mmask16 m, __m512i idx) {
    __m512 v;
    if (sdt == GM_DT_BF16)
        v = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + 2 * g)), 16));
    else if (sdt == GM_DT_F16)
        v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + 2 * g));
    else
        v = _mm512_maskz_loadu_ps(m, s + 4 * g);
    return _mm512_permutexvar_ps(idx, v);
}

/* acc + biases[g] * xsum[g] lane-wise, for one row's groups */
Q8_INLINE __m512 q8_fold_biases(__m512 acc, const uint8_t *b, int sdt, const float *xsum, int groups) {
    for (int g = 0; g < groups; g += 16) {
        __mmask16 m = groups - g >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (groups - g)) - 1u);
        __m512 v = sdt == GM_DT_F32 ? _mm512_maskz_loadu_ps(m, b + 4 * g)
                   : sdt == GM_DT_BF16
                       ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + 2 * g)), 16))
                       : _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b + 2 * g));
        acc = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, xsum + g), acc);
    }
    return acc;
}

/* The lane sums of four vectors: {sum a, sum b, sum c, sum d}. */
Q8_INLINE __m128 q8_reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

Q8_INLINE void q8_rows_pass(const gm_mlx_rows *w, int r, int nr, int t, int nt, int prefetch, const int8_t *xq,
                            const float *dxv, const float *xsum, float *y, size_t ldy) {
    enum { NT = 2 };
    const int four = w->bits == 4, chunk = four ? 128 : 64, gs = w->group_size, groups = w->cols / gs;
    const int per = chunk >= gs ? chunk / gs : 1, lane_vals = chunk / 16;
    const size_t dstride = gm_mlx_q8_dxv_floats(w->cols), ahead = 2 * (size_t)nr * w->row_bytes;
    const __mmask16 m = (__mmask16)((1u << per) - 1u);
    const __m512i nib = _mm512_set1_epi8(15);
    int lane_group[16];
    for (int i = 0; i < 16; i++) lane_group[i] = chunk >= gs ? i * lane_vals / gs : 0;
    const __m512i idx = _mm512_loadu_si512(lane_group);
    const uint8_t *p[MV_ROWS];
    size_t g0[MV_ROWS];
    __m512 total[NT][MV_ROWS];
    for (int j = 0; j < nr; j++) {
        p[j] = w->data + (size_t)(r + j) * w->row_bytes;
        g0[j] = (size_t)(r + j) * (size_t)groups;
        for (int u = 0; u < nt; u++) total[u][j] = _mm512_setzero_ps();
    }
    for (int c = 0, k = 0; k < w->cols; c++, k += chunk) {
        __m512i lo[MV_ROWS], hi[MV_ROWS];
        __m512 sc[MV_ROWS];
        size_t g = (size_t)(k / gs);
        for (int j = 0; j < nr; j++) {
            /* the pass two ahead, a line per row per chunk, in address order: four
             * interleaved row streams leave the hardware prefetchers behind */
            if (prefetch) _mm_prefetch((const char *)(p[0] + ahead + ((size_t)c * (size_t)nr + (size_t)j) * 64), _MM_HINT_T0);
            __m512i b = _mm512_loadu_si512(p[j] + (size_t)c * 64);
            lo[j] = four ? _mm512_and_si512(b, nib) : b;
            hi[j] = four ? _mm512_and_si512(_mm512_srli_epi16(b, 4), nib) : b;
            sc[j] = q8_chunk_scales(w->scales, w->sdtype, g0[j] + g, m, idx);
        }
        for (int u = 0; u < nt; u++) {
            const int8_t *xt = xq + (size_t)(t + u) * (size_t)w->cols + k;
            __m512i xe = _mm512_loadu_si512(xt), xo = four ? _mm512_loadu_si512(xt + 64) : xe;
            __m512 d = _mm512_loadu_ps(dxv + (size_t)(t + u) * dstride + (size_t)c * 16);
            for (int j = 0; j < nr; j++) {
                __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[j], xe);
                if (four) acc = _mm512_dpbusd_epi32(acc, hi[j], xo);
                total[u][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc[j], d), total[u][j]);
            }
        }
    }
    /* the biases times the group sums, lane-wise into the same totals, then
     * four rows reduced together */
    const size_t bsz = w->sdtype == GM_DT_F32 ? 4 : 2;
    for (int u = 0; u < nt; u++) {
        const float *st = xsum + (size_t)(t + u) * (size_t)groups;
        for (int j = 0; j < nr; j++) total[u][j] = q8_fold_biases(total[u][j], w->biases + g0[j] * bsz, w->sdtype, st, groups);
        float *yt = y + (size_t)(t + u) * ldy;
        if (nr == MV_ROWS)
            _mm_storeu_ps(yt, q8_reduce4(total[u][0], total[u][1], total[u][2], total[u][3]));
        else
            for (int j = 0; j < nr; j++) yt[j] = _mm512_reduce_add_ps(total[u][j]);
    }
}

__attribute__((target("avx512vnni"))) static void q8_matmul_vnni(const gm_mlx_rows *w, int r0, int r1, int n_tokens,
                                                                  const int8_t *xq, const float *dxv,
                                                                  const float *xsum, float *y, size_t ldy) {
    for (int r = r0; r < r1;) {
        /* decode: rows of 2 KB and more stream better one at a time (measured on
         * Zen 4: 6912 columns 27 vs 22 GB/s; 1152 columns 21 vs 33 GB/s the other way) */
        int nr = r1 - r >= MV_ROWS && (w->row_bytes < 2048 || n_tokens > 1) ? MV_ROWS : 1, t = 0;
        float *yr = y + (r - r0);
        if (nr == MV_ROWS) {
            for (; t + 2 <= n_tokens; t += 2) q8_rows_pass(w, r, MV_ROWS, t, 2, t == 0, xq, dxv, xsum, yr, ldy);
            if (t < n_tokens) q8_rows_pass(w, r, MV_ROWS, t, 1, t == 0, xq, dxv, xsum, yr, ldy);
        } else {
            for (; t < n_tokens; t++) q8_rows_pass(w, r, 1, t, 1, t == 0, xq, dxv, xsum, yr, ldy);
        }
        r += nr;
    }
}

static void avx512_matmul_mlx_q8(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq,
                                 const float *dxv, const float *xsum, float *y, size_t ldy) {
    if (__builtin_cpu_supports("avx512vnni"))
        q8_matmul_vnni(w, r0, r1, n_tokens, xq, dxv, xsum, y, ldy);
    else
        gm_avx2_matmul_mlx_q8(w, r0, r1, n_tokens, xq, dxv, xsum, y, ldy);
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

/* axpy on f16 / bf16 rows (a half-precision KV cache's values): widen 16,
 * fuse; the tail masked, so a head row of any width takes no scalar loop. */
static inline __attribute__((always_inline)) void axpy_elems(float a, const uint8_t *x, int bf16, float *y, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = bf16 ? load_bf16x16(x + 2 * i) : load_f16x16(x + 2 * i);
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, v, _mm512_loadu_ps(y + i)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m256i h = _mm256_maskz_loadu_epi16(m, x + 2 * i);
        __m512 v = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, v, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void avx512_axpy_f16(float a, const void *x, float *y, int n) { axpy_elems(a, x, 0, y, n); }
static void avx512_axpy_bf16(float a, const void *x, float *y, int n) { axpy_elems(a, x, 1, y, n); }

/* ------------------------------------------------- llama.cpp's lane sums */

/* One zmm per 16-lane accumulator: the lanes are ggml's, so the bits are. */
static float avx512_dot_lanes(const float *a, const float *b, int n, int groups) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int i = 0, c = 0; i < n; i += 16, c++) {
        __m512 *x = &acc[c % groups];
        *x = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), *x);
    }
    float lanes[4][16];
    for (int g = 0; g < groups; g++) _mm512_storeu_ps(lanes[g], acc[g]);
    return gm_lanes_reduce(lanes, groups);
}

static void avx512_fma_row(float a, const float *x, float *y, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* ------------------------------------------------------ GGUF block formats */

/* Blocks are decoded straight into exact f32 weights in registers, 16 at a
 * time, and emit16 stores them (dequant) or multiplies them into one of four
 * accumulators (dot); `dot` is a constant after inlining, so both entry
 * points get straight-line code without a buffer.
 *
 * A 4- or 5-bit block (or K-quant sub-block) has only 16 or 32 distinct
 * weights, so we compute those once, exactly as ggml_blocks.c does
 * (d*(q-8), (d*q)+m, (d*sc)*q - dmin*mn ...), and fetch each value's weight
 * with one permute: fewer vector operations than widening, converting and
 * scaling every value, and bit-identical by construction.  Q8_0 and Q6_K
 * (256 and 64 levels) convert and scale. */
#define AI inline __attribute__((always_inline))

typedef struct {
    __m512 acc[4];
    const float *x;
    float *out;
    int dot;
} ggml_sink;

static AI __m128i loadu128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
static AI __m256i loadu256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static AI __m512 f16_bcast(const uint8_t *p) { return _mm512_set1_ps(f16_scalar(p)); }

/* The K-quants' per-sub-block scales go through a small array so that each
 * use is a broadcast operand from memory (a load port) instead of a lane
 * permute (vector ALU time, the bottleneck here); the empty asm keeps GCC
 * from turning those loads back into permutes of the register it stored. */
#define KEEP_IN_MEMORY(a) __asm__("" : "+m"(a))

/* slot must be a constant: the accumulators live in registers. */
static AI void emit16(ggml_sink *k, int i, int slot, __m512 w) {
    if (k->dot) k->acc[slot] = _mm512_fmadd_ps(w, _mm512_loadu_ps(k->x + i), k->acc[slot]);
    else _mm512_storeu_ps(k->out + i, w);
}

/* The 16 weights s*(q + base) [+ m | - m] for q = 0..15, rounded step by step. */
enum { AFF_NONE, AFF_ADD, AFF_SUB };
static AI __m512 levels(__m512 s, float base, __m512 m, int aff) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 t = _mm512_mul_ps(s, _mm512_add_ps(iota, _mm512_set1_ps(base)));
    if (aff == AFF_ADD) t = _mm512_add_ps(t, m);
    if (aff == AFF_SUB) t = _mm512_sub_ps(t, m);
    return t;
}

/* Weights of 16 values from the low 4 bits of q (the permutes ignore the
 * rest) and, when `five`, the fifth bit in bit 4 of f (f's other bits do not
 * matter): tab[0][q] or tab[1][q]. */
static AI __m512 look(__m512i q, __m512i f, const __m512 tab[2], int five) {
    if (!five) return _mm512_permutexvar_ps(q, tab[0]);
    __m512i idx = _mm512_ternarylogic_epi32(q, f, _mm512_set1_epi32(15), 0xe4);   /* bits 0-3 of q, the rest of f */
    return _mm512_permutex2var_ps(tab[0], idx, tab[1]);
}

/* 16 bytes of nibbles: the low ones are values i.. (table ta, fifth bits
 * fa), the high ones values j.. (tb, fb). */
static AI void nibbles16(ggml_sink *k, const uint8_t *qs, int i, int j, int slot, __m512i fa, __m512i fb,
                         const __m512 ta[2], const __m512 tb[2], int five) {
    __m512i v = _mm512_cvtepu8_epi32(loadu128(qs));
    emit16(k, i, slot, look(v, fa, ta, five));
    emit16(k, j, slot + 1, look(_mm512_srli_epi32(v, 4), fb, tb, five));
}

/* A 32-value block with 4-bit quants at qs (low nibbles values 0-15) and,
 * when qh is given, fifth bits in the little-endian word there (bit j for
 * value j): w = d*(q + base), or (d*q) + m when `affine`. */
static AI void small_block(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float base, int affine, int i,
                           ggml_sink *k) {
    __m512 d = f16_bcast(b), m = affine ? f16_bcast(b + 2) : d;
    int five = qh != NULL, aff = affine ? AFF_ADD : AFF_NONE;
    __m512 tab[2] = {levels(d, base, m, aff), levels(d, base + 16, m, aff)};
    uint32_t bits = 0;
    if (five) memcpy(&bits, qh, 4);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i fa = _mm512_srlv_epi32(_mm512_set1_epi32((int)(bits << 4)), iota);    /* bit j to bit 4 of lane j */
    __m512i fb = _mm512_srlv_epi32(_mm512_set1_epi32((int)(bits >> 12)), iota);   /* bit 16+j likewise */
    nibbles16(k, qs, i, i + 16, 0, fa, fb, tab, tab, five);
}

static AI void q4_0_block(const uint8_t *b, int i, ggml_sink *k) { small_block(b, NULL, b + 2, -8, 0, i, k); }
static AI void q4_1_block(const uint8_t *b, int i, ggml_sink *k) { small_block(b, NULL, b + 4, 0, 1, i, k); }
static AI void q5_0_block(const uint8_t *b, int i, ggml_sink *k) { small_block(b, b + 2, b + 6, -16, 0, i, k); }
static AI void q5_1_block(const uint8_t *b, int i, ggml_sink *k) { small_block(b, b + 4, b + 8, 0, 1, i, k); }

static AI void q8_0_block(const uint8_t *b, int i, ggml_sink *k) {
    __m512 d = f16_bcast(b);
    for (int h = 0; h < 2; h++)
        emit16(k, i + 16 * h, h, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(b + 2 + 16 * h))), d));
}

/* Q4_K/Q5_K's eight 6-bit scales and mins as d*sc and dmin*mn (each product
 * rounded, as in the reference).  Word operations regroup the 12 packed
 * bytes into sc[0..7] (bytes 0-7) and mn[0..7] (bytes 8-15). */
static AI void k_scales(const uint8_t *b, float ds[16], float dm[16]) {
    uint32_t u[3];
    memcpy(u, b + 4, 12);
    __m128i v = _mm_setr_epi32((int)(u[0] & 0x3f3f3f3f), (int)((u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4)),
                               (int)(u[1] & 0x3f3f3f3f), (int)(((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4)));
    __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));   /* sc in lanes 0-7, mn in 8-15 */
    _mm512_storeu_ps(ds, _mm512_mul_ps(f16_bcast(b), q));
    _mm512_storeu_ps(dm, _mm512_mul_ps(f16_bcast(b + 2), _mm512_shuffle_f32x4(q, q, 0xee)));
}

/* Bit j of each lane moved to bit 4 (Q5_K's fifth bits of sub-block j). */
static AI __m512i bit4(__m512i v, int j) {
    return j <= 4 ? _mm512_sll_epi32(v, _mm_cvtsi32_si128(4 - j)) : _mm512_srl_epi32(v, _mm_cvtsi32_si128(j - 4));
}

/* Sub-blocks 2p and 2p+1 share 32 bytes of nibbles (low and high); Q5_K's
 * fifth bit of value l of sub-block j is bit j of qh[l]. */
static AI void k45_block(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, int i, ggml_sink *k) {
    float ds[16], dm[16];
    k_scales(b, ds, dm);
    KEEP_IN_MEMORY(ds);
    KEEP_IN_MEMORY(dm);
    int five = qh != NULL;
    __m512i h0 = five ? _mm512_cvtepu8_epi32(loadu128(qh)) : _mm512_setzero_si512();
    __m512i h1 = five ? _mm512_cvtepu8_epi32(loadu128(qh + 16)) : _mm512_setzero_si512();
    for (int p = 0; p < 4; p++) {
        __m512 ta[2], tb[2];
        for (int t = 0; t < 2; t++) {
            __m512 s = _mm512_set1_ps(ds[2 * p + t]), m = _mm512_set1_ps(dm[2 * p + t]);
            __m512 *tab = t ? tb : ta;
            tab[0] = levels(s, 0, m, AFF_SUB);
            tab[1] = five ? levels(s, 16, m, AFF_SUB) : tab[0];
        }
        int o = i + 64 * p;
        nibbles16(k, qs + 32 * p, o, o + 32, 0, bit4(h0, 2 * p), bit4(h0, 2 * p + 1), ta, tb, five);
        nibbles16(k, qs + 32 * p + 16, o + 16, o + 48, 2, bit4(h1, 2 * p), bit4(h1, 2 * p + 1), ta, tb, five);
    }
}

static AI void q4_k_block(const uint8_t *b, int i, ggml_sink *k) { k45_block(b, NULL, b + 16, i, k); }
static AI void q5_k_block(const uint8_t *b, int i, ggml_sink *k) { k45_block(b, b + 16, b + 48, i, k); }

/* 16 signed 6-bit levels (q - 32, as bytes) times their scale. */
static AI void q6_16(ggml_sink *k, __m128i q, float s, int i, int slot) {
    emit16(k, i, slot, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(s)));
}

/* Q6_K: in half h, values 0-63 are the low nibbles of ql[64h..] with bits
 * 0-1 (values 0-31) or 2-3 (32-63) of qh[32h..], values 64-127 the high
 * nibbles with bits 4-5 or 6-7; scale s covers values 16s..16s+15. */
static AI void q6_k_block(const uint8_t *b, int i, ggml_sink *k) {
    float ds[16];
    _mm512_storeu_ps(ds, _mm512_mul_ps(f16_bcast(b + 208), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(b + 192)))));
    KEEP_IN_MEMORY(ds);
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30), off = _mm512_set1_epi8(32);
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512(b + 64 * h);
        __m256i qh = loadu256(b + 128 + 32 * h);
        /* bytes 32-63 take qh >> 2; the 16-bit shifts never carry into the bits kept */
        __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        __m512i q[2] = {
            _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_slli_epi16(hh, 4), m2)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(hh, m2)),
        };
        for (int c = 0; c < 2; c++) {
            __m512i v = _mm512_sub_epi8(q[c], off);
            int o = i + 128 * h + 64 * c, s = 8 * h + 4 * c;
            q6_16(k, _mm512_castsi512_si128(v), ds[s], o, 0);
            q6_16(k, _mm512_extracti32x4_epi32(v, 1), ds[s + 1], o + 16, 1);
            q6_16(k, _mm512_extracti32x4_epi32(v, 2), ds[s + 2], o + 32, 2);
            q6_16(k, _mm512_extracti32x4_epi32(v, 3), ds[s + 3], o + 48, 3);
        }
    }
}

static AI float ggml_sum(const ggml_sink *k) {
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(k->acc[0], k->acc[1]), _mm512_add_ps(k->acc[2], k->acc[3])));
}

/* The walk over a row's blocks and the two table entries: the same in every twin. */
#include "kernels/ggml_walk.h"

/* ------------------------------------------- GEMM tile and vision loops */

/* 12 x 32 tile: 24 accumulators + 2 B vectors + a broadcast of the 32 zmm
 * registers; per k step 24 FMAs against 2 loads and 12 broadcasts, so the
 * two FMA ports, not the loads, set the pace. */
enum { AVX512_MR = 12, AVX512_NR = 32 };

static void avx512_gemm_f32(int kc, const float *a, const float *b, float *c, size_t ldc, int m, int n,
                            int accumulate) {
    /* The C tile usually lives in L3 or memory (the caller sweeps C once per
     * KC).  Fetch it, and the tile below it (the caller's next call, one MR
     * step down), into L2 now, and the tile into L1 again 8 steps before the
     * end: the 44 KB of A and B the loop streams through the 48 KB L1 can
     * evict a tile fetched only at the start.  Prefetches never fault, so
     * reaching past the tile's rows is harmless. */
    if (accumulate)   /* (a tile only stored is the attention's scores, in L1/L2 already, with a short kc) */
        for (int i = 0; i < 2 * AVX512_MR; i++) {
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T1);
            _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T1);
        }
#define GM_Z(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    GM_Z(0) GM_Z(1) GM_Z(2) GM_Z(3) GM_Z(4) GM_Z(5) GM_Z(6) GM_Z(7) GM_Z(8) GM_Z(9) GM_Z(10) GM_Z(11)
#undef GM_Z
#define GM_ROW(i)                                      \
    {                                                  \
        __m512 x = _mm512_set1_ps(a[i]);               \
        c##i##a = _mm512_fmadd_ps(x, b0, c##i##a);     \
        c##i##b = _mm512_fmadd_ps(x, b1, c##i##b);     \
    }
#define GM_STEP                                                                  \
    {                                                                            \
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);              \
        GM_ROW(0) GM_ROW(1) GM_ROW(2) GM_ROW(3) GM_ROW(4) GM_ROW(5)              \
        GM_ROW(6) GM_ROW(7) GM_ROW(8) GM_ROW(9) GM_ROW(10) GM_ROW(11)            \
        a += AVX512_MR;                                                          \
        b += AVX512_NR;                                                          \
    }
    int k = 0;
    for (; k < kc - 8; k++) GM_STEP
    if (accumulate)
        for (int i = 0; i < m; i++) {
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
        }
    for (; k < kc; k++) GM_STEP
#undef GM_STEP
#undef GM_ROW
    __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : (__mmask16)0;
#define GM_STORE(i)                                                                  \
    if (i < m) {                                                                     \
        float *r = c + (size_t)(i) * ldc;                                            \
        __m512 v0 = c##i##a, v1 = c##i##b;                                           \
        if (accumulate) {                                                            \
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, r), v0);                    \
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, r + 16), v1);               \
        }                                                                            \
        _mm512_mask_storeu_ps(r, m0, v0);                                            \
        _mm512_mask_storeu_ps(r + 16, m1, v1);                                       \
    }
    GM_STORE(0) GM_STORE(1) GM_STORE(2) GM_STORE(3) GM_STORE(4) GM_STORE(5)
    GM_STORE(6) GM_STORE(7) GM_STORE(8) GM_STORE(9) GM_STORE(10) GM_STORE(11)
#undef GM_STORE
}

/* exp(x) for the softmax and GELU: Cephes' expf reduction and polynomial
 * (about 2 ulp); inputs clamped to [-87, 88] so 2^n stays a normal float.
 * 2^n is applied with vscalefps (exact, one instruction instead of convert,
 * add, shift and multiply: the attention's softmax is exp-bound). */
static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(x, x), x), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, fx);
}

static inline __mmask16 tail16(int r) { return (__mmask16)((1u << r) - 1u); }

static float avx512_exp_sum(const float *x, float *y, int n, float scale, float shift) {
    __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift), acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_fmsub_ps(_mm512_loadu_ps(x + i), vs, vh));
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 m = tail16(n - i);
        __m512 e = exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + i), vs, vh));
        _mm512_mask_storeu_ps(y + i, m, e);
        acc = _mm512_mask_add_ps(acc, m, acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

static float avx512_max_f32(const float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 m = tail16(n - i);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_max_ps(mx);
}

/* gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): one exp
 * and a division, accurate to a few ulp where 0.5 x (1 + tanh u) is not. */
static inline __m512 gelu16(__m512 x) {
    __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(0.044715f), _mm512_set1_ps(1.0f));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(x, inner), _mm512_set1_ps(-1.5957691216057308f));   /* -2 sqrt(2/pi) */
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(t)));
}

static void avx512_gelu_tanh(float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* 16 x 16 in-register transpose: r[i] row i in, r[c] column c out. */
static inline void transpose16x16(__m512 *r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* 16 destination lanes (rows) x 16 columns at a time through the transpose. */
static void avx512_pack_t(const float *src, size_t ld, int rows, int cols, int width, float *dst) {
    for (int r0 = 0; r0 < width; r0 += 16) {
        int lanes = width - r0 < 16 ? width - r0 : 16, live = rows - r0;
        __mmask16 sm = tail16(lanes);
        for (int c0 = 0; c0 < cols; c0 += 16) {
            int nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 lm = tail16(nc);
            __m512 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = i < live ? _mm512_maskz_loadu_ps(lm, src + (size_t)(r0 + i) * ld + c0) : _mm512_setzero_ps();
            transpose16x16(v);
            for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(dst + (size_t)(c0 + c) * width + r0, sm, v[c]);
        }
    }
}

/* 2^t for finite t: t = n + r (n = round(t), |r| <= 1/2, exact), 2^r by
 * its Taylor series to r^7 (truncation 5e-9 relative, under f32 rounding),
 * times 2^n by vscalefps, which also turns t << -150 into 0: 10 operations
 * against exp16's 15, for the softmax's arguments, which are never -inf. */
static inline __m512 exp2_16(__m512 t) {
    static const float c[7] = {6.9314718056e-01f, 2.4022650696e-01f, 5.5504108665e-02f, 9.6181291076e-03f, 1.3333558146e-03f, 1.5403530393e-04f, 1.5252733804e-05f};
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(t, n);
    __m512 y = _mm512_set1_ps(c[6]);
    for (int i = 5; i >= 0; i--) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c[i]));
    return _mm512_scalef_ps(_mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f)), n);
}

/* 32 columns (a 128-byte row of a 12 x 32 tile's panel) per pass, as two
 * independent exp chains, so the out-of-order core overlaps them; exp(x s - m)
 * is taken as 2^(x s log2e - m log2e). */
static void avx512_softmax_cols(float *p, int rows, int width, float scale, float *run_max, float *run_sum, float *o,
                                size_t ldo, int o_rows) {
    __m512 vs = _mm512_set1_ps(scale);
    for (int c0 = 0; c0 < width; c0 += 32) {
        int left = width - c0;
        __mmask16 m0 = tail16(left < 16 ? left : 16), m1 = left > 16 ? tail16(left - 16 < 16 ? left - 16 : 16) : 0;
        __m512 mx0 = _mm512_set1_ps(-INFINITY), mx1 = mx0, sum0 = _mm512_setzero_ps(), sum1 = sum0;
        for (int r = 0; r < rows; r++) {
            const float *x = p + (size_t)r * width + c0;
            mx0 = _mm512_max_ps(mx0, _mm512_maskz_loadu_ps(m0, x));
            mx1 = _mm512_max_ps(mx1, _mm512_maskz_loadu_ps(m1, x + 16));
        }
        __m512 old0 = _mm512_maskz_loadu_ps(m0, run_max + c0), old1 = _mm512_maskz_loadu_ps(m1, run_max + c0 + 16);
        __m512 sh0 = _mm512_max_ps(_mm512_mul_ps(mx0, vs), old0), sh1 = _mm512_max_ps(_mm512_mul_ps(mx1, vs), old1);
        __m512 f0 = exp16(_mm512_sub_ps(old0, sh0)), f1 = exp16(_mm512_sub_ps(old1, sh1));
        __m512 l2e = _mm512_set1_ps(1.44269504088896341f), vs2 = _mm512_mul_ps(vs, l2e);
        __m512 sh20 = _mm512_mul_ps(sh0, l2e), sh21 = _mm512_mul_ps(sh1, l2e);
        for (int r = 0; r < rows; r++) {
            float *x = p + (size_t)r * width + c0;
            __m512 e0 = exp2_16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m0, x), vs2, sh20));
            __m512 e1 = exp2_16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m1, x + 16), vs2, sh21));
            _mm512_mask_storeu_ps(x, m0, e0);
            _mm512_mask_storeu_ps(x + 16, m1, e1);
            sum0 = _mm512_add_ps(sum0, e0);
            sum1 = _mm512_add_ps(sum1, e1);
        }
        _mm512_mask_storeu_ps(run_sum + c0, m0, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, run_sum + c0), f0, sum0));
        _mm512_mask_storeu_ps(run_sum + c0 + 16, m1,
                              _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, run_sum + c0 + 16), f1, sum1));
        _mm512_mask_storeu_ps(run_max + c0, m0, sh0);
        _mm512_mask_storeu_ps(run_max + c0 + 16, m1, sh1);
        for (int i = 0; i < o_rows; i++) {
            float *y = o + (size_t)i * ldo + c0;
            _mm512_mask_storeu_ps(y, m0, _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, y), f0));
            _mm512_mask_storeu_ps(y + 16, m1, _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, y + 16), f1));
        }
    }
}

const gm_kernels gm_kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = avx512_dot_f32,
    .dot_wf32 = avx512_dot_wf32,
    .dot_bf16 = avx512_dot_bf16,
    .dot_f16 = avx512_dot_f16,
    .dot_mlx = avx512_dot_mlx,
    .mlx_prep_x = avx512_mlx_prep_x,
    .matvec_mlx = avx512_matvec_mlx,
    .matmul_mlx_q8 = avx512_matmul_mlx_q8,
    .dequant_mlx = avx512_dequant_mlx,
    .bf16_to_f32 = avx512_bf16_to_f32,
    .f16_to_f32 = avx512_f16_to_f32,
    .axpy = avx512_axpy,
    .axpy_f16 = avx512_axpy_f16,
    .axpy_bf16 = avx512_axpy_bf16,
    .dot_ggml = ggml_dot,
    .dequant_ggml = ggml_dequant,
    .quantize_q8 = gm_q8_quantize_row,
    .dot_ggml_q8 = gm_avx2_dot_ggml_q8,
    .dot_ggml_q8_gemm = gm_avx2_dot_ggml_q8_gemm,
    .dot_lanes = avx512_dot_lanes,
    .fma_row = avx512_fma_row,
    .gemm_mr = AVX512_MR,
    .gemm_nr = AVX512_NR,
    .gemm_f32 = avx512_gemm_f32,
    .exp_sum = avx512_exp_sum,
    .max_f32 = avx512_max_f32,
    .gelu_tanh = avx512_gelu_tanh,
    .pack_t = avx512_pack_t,
    .softmax_cols = avx512_softmax_cols,
};
