/* avx2.c - AVX2 + FMA + F16C twins of the reference kernels (see kernels.h).
 * Compiled with -mavx2 -mfma -mf16c for this file only; used only when the
 * CPU reports those features. */
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


/* Decode: four rows per pass sharing the x loads.  A 4-bit row's 8 bytes
 * widen to 8 lanes; the low nibbles are the block's even elements and the
 * high nibbles its odd ones, the order mlx_prep_x gives x. */
enum { MV_ROWS = 4 };

static inline float scale_at(const uint8_t *p, int sdt, size_t i) {
    if (sdt == GM_DT_BF16) return load_u16_scalar_bf16(p + 2 * i);
    if (sdt == GM_DT_F16) return load_u16_scalar_f16(p + 2 * i);
    float f;
    __builtin_memcpy(&f, p + 4 * i, 4);
    return f;
}

static inline float bias_dot(const uint8_t *b, int sdt, const float *xsum, int groups) {
    __m256 acc = _mm256_setzero_ps();
    int g = 0;
    for (; g + 8 <= groups; g += 8) {
        __m256 v = sdt == GM_DT_BF16  ? load_bf16x8(b + 2 * g)
                   : sdt == GM_DT_F16 ? load_f16x8(b + 2 * g)
                                      : _mm256_loadu_ps((const float *)(const void *)(b + 4 * g));
        acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(xsum + g), acc);
    }
    float tail = 0.0f;
    for (; g < groups; g++) tail += scale_at(b, sdt, (size_t)g) * xsum[g];
    return hsum256(acc) + tail;
}

static inline __attribute__((always_inline)) void mlx_rows_pass(const gm_mlx_rows *w, int r, int nr,
                                                                const float *xp, const float *xsum, float *y) {
    const int gs = w->group_size, groups = w->cols / gs, four = w->bits == 4;
    const __m256i nib = _mm256_set1_epi32(15);
    const uint8_t *p[MV_ROWS];
    size_t g0[MV_ROWS];
    __m256 total[MV_ROWS];
    for (int j = 0; j < nr; j++) {
        p[j] = w->data + (size_t)(r + j) * w->row_bytes;
        g0[j] = (size_t)(r + j) * (size_t)groups;
        total[j] = _mm256_setzero_ps();
    }
    for (int g = 0; g < groups; g++) {
        __m256 acc[MV_ROWS];
        for (int j = 0; j < nr; j++) acc[j] = _mm256_setzero_ps();
        for (int k = g * gs; k < (g + 1) * gs; k += 16) {
            __m256 xl = _mm256_loadu_ps(xp + k), xh = _mm256_loadu_ps(xp + k + 8);
            for (int j = 0; j < nr; j++) {
                __m256 a, b;
                if (four) {
                    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p[j] + k / 2)));
                    a = _mm256_cvtepi32_ps(_mm256_and_si256(v, nib));
                    b = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
                } else {
                    a = unpack8x8(p[j] + k);
                    b = unpack8x8(p[j] + k + 8);
                }
                acc[j] = _mm256_fmadd_ps(b, xh, _mm256_fmadd_ps(a, xl, acc[j]));
            }
        }
        for (int j = 0; j < nr; j++)
            total[j] = _mm256_fmadd_ps(_mm256_set1_ps(scale_at(w->scales, w->sdtype, g0[j] + (size_t)g)), acc[j],
                                       total[j]);
    }
    for (int j = 0; j < nr; j++)
        y[j] = hsum256(total[j]) + bias_dot(w->biases + g0[j] * (w->sdtype == GM_DT_F32 ? 4 : 2), w->sdtype, xsum,
                                            groups);
}

static void avx2_mlx_prep_x(const float *x, int n, int bits, int group_size, float *xp) {
    if (gm_mlx4_fast(bits, group_size, 16))
        gm_mlx4_deinterleave(x, n, 16, xp);
    else
        memcpy(xp, x, (size_t)n * sizeof(float));
}

static void avx2_matvec_mlx(const gm_mlx_rows *w, int r0, int r1, const float *xp, const float *xsum, float *y) {
    if (!gm_mlx4_fast(w->bits, w->group_size, 16) && !(w->bits == 8 && w->group_size % 16 == 0)) {
        gm_matvec_mlx_rowwise(w, r0, r1, xp, xsum, y, avx2_dot_mlx);
        return;
    }
    int r = r0;
    for (; r + MV_ROWS <= r1; r += MV_ROWS) mlx_rows_pass(w, r, MV_ROWS, xp, xsum, y + (r - r0));
    for (; r < r1; r++) mlx_rows_pass(w, r, 1, xp, xsum, y + (r - r0));
}

/* Int8 inputs (kernels.h matmul_mlx_q8) without VNNI: each 64-byte chunk
 * in two 32-byte halves, u8 x s8 pairs summed by vpmaddubsw and widened to
 * int32 by vpmaddwd.  A 4-bit half's low- and high-nibble products land in
 * the same input block, so they are added as int16 before the one widening
 * (4 * 15 * 127 < 32767: exact), which saves a multiply: on CPUs whose
 * integer multiplies share one port (Zen 1-3) those decide the speed.  An
 * 8-bit level is split into its two nibbles, the high one weighted by 16
 * in the widening.  Up to four rows share each input load and two tokens
 * each row's unpacking, as in the VNNI kernel. */
/* A 4-bit half's int32 lanes: low nibbles x even inputs + high nibbles x odd ones. */
static inline __m256i q8_nibble_dot(__m256i lo, __m256i hi, __m256i xe, __m256i xo) {
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo)),
                             _mm256_set1_epi16(1));
}

static void widen_scales(const uint8_t *s, int sdt, size_t g, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, sdt == GM_DT_BF16  ? load_bf16x8(s + 2 * (g + (size_t)i))
                                  : sdt == GM_DT_F16 ? load_f16x8(s + 2 * (g + (size_t)i))
                                                     : _mm256_loadu_ps((const float *)(const void *)(s + 4 * (g + (size_t)i))));
    for (; i < n; i++) out[i] = scale_at(s, sdt, g + (size_t)i);
}

/* nr rows x nt tokens; four and two (a 4-bit half spanning two groups) are
 * literals at every call so each variant compiles to its own loop.  The
 * rows' scales are widened to f32 a segment of Q8_SEG groups at a time (no
 * dtype branch or division in the inner loop). */
enum { Q8_SEG = 256 };

static inline __attribute__((always_inline)) void q8_rows_pass(const gm_mlx_rows *w, int r, int nr, int t, int nt,
                                                               int four, int two, int prefetch, const float *scw,
                                                               const float *biw, const int8_t *xq, const float *dxv,
                                                               const float *xsum, float *y, size_t ldy) {
    enum { NT = 2 };
    const int chunk = four ? 128 : 64, half = chunk / 2, gs = w->group_size, groups = w->cols / gs;
    const size_t dstride = gm_mlx_q8_dxv_floats(w->cols), ahead = 2 * (size_t)nr * w->row_bytes;
    const __m256i nib = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    const uint8_t *p[MV_ROWS];
    size_t g0[MV_ROWS];
    __m256 total[NT][MV_ROWS];
    float scbuf[MV_ROWS * Q8_SEG];
    const float *sc[MV_ROWS];
    for (int j = 0; j < nr; j++) {
        p[j] = w->data + (size_t)(r + j) * w->row_bytes;
        g0[j] = (size_t)(r + j) * (size_t)groups;
        for (int u = 0; u < nt; u++) total[u][j] = _mm256_setzero_ps();
    }
    int c = 0;
    for (int s0 = 0; s0 < groups; s0 += Q8_SEG) {
        int ns = groups - s0 < Q8_SEG ? groups - s0 : Q8_SEG, k1 = (s0 + ns) * gs;
        if (scw) {   /* widened by the caller (prefill: once for every token pair) */
            for (int j = 0; j < nr; j++) sc[j] = scw + j * groups;
        } else if (ns == groups) {   /* whole rows: the rows' scales are adjacent, one call */
            widen_scales(w->scales, w->sdtype, g0[0], nr * groups, scbuf);
            for (int j = 0; j < nr; j++) sc[j] = scbuf + j * groups;
        } else {
            for (int j = 0; j < nr; j++) {
                widen_scales(w->scales, w->sdtype, g0[j] + (size_t)s0, ns, scbuf + j * Q8_SEG);
                sc[j] = scbuf + j * Q8_SEG;
            }
        }
        /* g: the half's group within the segment; gv: its first value's offset in that group */
        for (int k = s0 * gs, g = 0, gv = 0; k < k1; c++, k += chunk) {
            /* the pass two ahead, a line per row per chunk, in address order */
            if (prefetch)
                for (int j = 0; j < nr; j++)
                    _mm_prefetch((const char *)(p[0] + ahead + ((size_t)c * (size_t)nr + (size_t)j) * 64), _MM_HINT_T0);
            for (int h = 0; h < 2; h++) {
                const int8_t *xt[NT];
                __m256 d[NT];
                for (int u = 0; u < nt; u++) {
                    xt[u] = xq + (size_t)(t + u) * (size_t)w->cols + k + h * 32;
                    d[u] = _mm256_loadu_ps(dxv + (size_t)(t + u) * dstride + (size_t)c * 16 + (size_t)h * 8);
                }
                for (int j = 0; j < nr; j++) {
                    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p[j] + (size_t)c * 64 + (size_t)h * 32));
                    __m256i lo = _mm256_and_si256(b, nib), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), nib);
                    __m256 s = two ? _mm256_insertf128_ps(_mm256_broadcast_ss(&sc[j][g]), _mm_broadcast_ss(&sc[j][g + 1]), 1)
                                   : _mm256_broadcast_ss(&sc[j][g]);
                    for (int u = 0; u < nt; u++) {
                        __m256i xe = _mm256_loadu_si256((const __m256i *)(const void *)xt[u]), acc;
                        if (four) {
                            __m256i xo = _mm256_loadu_si256((const __m256i *)(const void *)(xt[u] + 64));
                            acc = q8_nibble_dot(lo, hi, xe, xo);
                        } else {
                            acc = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, xe), one),
                                                   _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xe), sixteen));
                        }
                        total[u][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(s, d[u]), total[u][j]);
                    }
                }
                for (gv += half; gv >= gs; gv -= gs) g++;
            }
        }
    }
    const size_t bsz = w->sdtype == GM_DT_F32 ? 4 : 2;
    for (int u = 0; u < nt; u++) {
        const float *st = xsum + (size_t)(t + u) * (size_t)groups;
        float *yt = y + (size_t)(t + u) * ldy;
        for (int j = 0; j < nr; j++)
            yt[j] = hsum256(total[u][j]) + (biw ? bias_dot((const uint8_t *)(biw + j * groups), GM_DT_F32, st, groups)
                                                : bias_dot(w->biases + g0[j] * bsz, w->sdtype, st, groups));
    }
}

/* The prefill case, 4-bit rows whose groups cover whole 64-value halves:
 * two rows x two tokens with every value in its own variable, so that the
 * four totals, the two rows' nibbles and the inputs stay in the 16 ymm
 * registers (the general pass above spills them). */
static void q8_pass_2x2(const gm_mlx_rows *w, int r, int t, const float *scw, const float *biw, const int8_t *xq,
                        const float *dxv, const float *xsum, float *y, size_t ldy) {
    const int gs = w->group_size, groups = w->cols / gs, halves_per_group = gs / 64;
    const size_t cols = (size_t)w->cols, dstride = gm_mlx_q8_dxv_floats(w->cols);
    const __m256i nib = _mm256_set1_epi8(15);
    const uint8_t *p0 = w->data + (size_t)r * w->row_bytes, *p1 = p0 + w->row_bytes;
    const int8_t *x0 = xq + (size_t)t * cols, *x1 = x0 + cols;
    const float *d0 = dxv + (size_t)t * dstride, *d1 = d0 + dstride, *s0 = scw, *s1 = scw + groups;
    __m256 t00 = _mm256_setzero_ps(), t01 = t00, t10 = t00, t11 = t00;
    for (int hv = 0, n = w->cols / 64; hv < n; hv++) {
        /* half hv: weight bytes 32 hv, inputs (even) 128 (hv / 2) + 32 (hv % 2), odd 64 later */
        size_t xo = (size_t)(hv >> 1) * 128 + (size_t)(hv & 1) * 32;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(p0 + (size_t)hv * 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(p1 + (size_t)hv * 32));
        __m256i lo0 = _mm256_and_si256(b0, nib), hi0 = _mm256_and_si256(_mm256_srli_epi16(b0, 4), nib);
        __m256i lo1 = _mm256_and_si256(b1, nib), hi1 = _mm256_and_si256(_mm256_srli_epi16(b1, 4), nib);
        int g = hv / halves_per_group;
        __m256 sc0 = _mm256_broadcast_ss(s0 + g), sc1 = _mm256_broadcast_ss(s1 + g);
        __m256i xe = _mm256_loadu_si256((const __m256i *)(const void *)(x0 + xo));
        __m256i xd = _mm256_loadu_si256((const __m256i *)(const void *)(x0 + xo + 64));
        __m256 dd = _mm256_loadu_ps(d0 + (size_t)hv * 8);
        __m256i a = q8_nibble_dot(lo0, hi0, xe, xd);
        t00 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(sc0, dd), t00);
        a = q8_nibble_dot(lo1, hi1, xe, xd);
        t10 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(sc1, dd), t10);
        xe = _mm256_loadu_si256((const __m256i *)(const void *)(x1 + xo));
        xd = _mm256_loadu_si256((const __m256i *)(const void *)(x1 + xo + 64));
        dd = _mm256_loadu_ps(d1 + (size_t)hv * 8);
        a = q8_nibble_dot(lo0, hi0, xe, xd);
        t01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(sc0, dd), t01);
        a = q8_nibble_dot(lo1, hi1, xe, xd);
        t11 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(sc1, dd), t11);
    }
    const float *st0 = xsum + (size_t)t * (size_t)groups, *st1 = st0 + groups;
    const uint8_t *bi0 = (const uint8_t *)biw, *bi1 = (const uint8_t *)(biw + groups);
    y[(size_t)t * ldy] = hsum256(t00) + bias_dot(bi0, GM_DT_F32, st0, groups);
    y[(size_t)t * ldy + 1] = hsum256(t10) + bias_dot(bi1, GM_DT_F32, st0, groups);
    y[(size_t)(t + 1) * ldy] = hsum256(t01) + bias_dot(bi0, GM_DT_F32, st1, groups);
    y[(size_t)(t + 1) * ldy + 1] = hsum256(t11) + bias_dot(bi1, GM_DT_F32, st1, groups);
}

/* The decode case of the same shape: four rows x one token, likewise in
 * named variables; scw the four rows' widened scales, adjacent. */
static inline __m256i q8_half_dot(const uint8_t *p, __m256i xe, __m256i xd) {
    const __m256i nib = _mm256_set1_epi8(15);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i lo = _mm256_and_si256(b, nib), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), nib);
    return q8_nibble_dot(lo, hi, xe, xd);
}

static void q8_pass_4x1(const gm_mlx_rows *w, int r, const float *scw, const int8_t *x, const float *d,
                        const float *xsum, float *y) {
    const int gs = w->group_size, groups = w->cols / gs, halves_per_group = gs / 64;
    const size_t rb = w->row_bytes, ahead = 8 * rb;   /* the pass after next, in address order */
    const uint8_t *p = w->data + (size_t)r * rb;
    __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
    for (int hv = 0, n = w->cols / 64; hv < n; hv++) {
        if (!(hv & 1))
            for (int j = 0; j < 4; j++) _mm_prefetch((const char *)(p + ahead + ((size_t)hv * 2 + (size_t)j) * 64), _MM_HINT_T0);
        size_t xo = (size_t)(hv >> 1) * 128 + (size_t)(hv & 1) * 32, wo = (size_t)hv * 32;
        __m256i xe = _mm256_loadu_si256((const __m256i *)(const void *)(x + xo));
        __m256i xd = _mm256_loadu_si256((const __m256i *)(const void *)(x + xo + 64));
        __m256 dd = _mm256_loadu_ps(d + (size_t)hv * 8);
        int g = hv / halves_per_group;
        t0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_half_dot(p + wo, xe, xd)),
                             _mm256_mul_ps(_mm256_broadcast_ss(scw + g), dd), t0);
        t1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_half_dot(p + rb + wo, xe, xd)),
                             _mm256_mul_ps(_mm256_broadcast_ss(scw + groups + g), dd), t1);
        t2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_half_dot(p + 2 * rb + wo, xe, xd)),
                             _mm256_mul_ps(_mm256_broadcast_ss(scw + 2 * groups + g), dd), t2);
        t3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_half_dot(p + 3 * rb + wo, xe, xd)),
                             _mm256_mul_ps(_mm256_broadcast_ss(scw + 3 * groups + g), dd), t3);
    }
    const size_t bsz = w->sdtype == GM_DT_F32 ? 4 : 2;
    const uint8_t *b = w->biases + (size_t)r * (size_t)groups * bsz;
    y[0] = hsum256(t0) + bias_dot(b, w->sdtype, xsum, groups);
    y[1] = hsum256(t1) + bias_dot(b + (size_t)groups * bsz, w->sdtype, xsum, groups);
    y[2] = hsum256(t2) + bias_dot(b + 2 * (size_t)groups * bsz, w->sdtype, xsum, groups);
    y[3] = hsum256(t3) + bias_dot(b + 3 * (size_t)groups * bsz, w->sdtype, xsum, groups);
}

/* Rows four at a time for one token (decode), two at a time for token pairs. */
static inline __attribute__((always_inline)) void q8_matmul(const gm_mlx_rows *w, int r0, int r1, int n_tokens,
                                                            int four, int two, const int8_t *xq, const float *dxv,
                                                            const float *xsum, float *y, size_t ldy) {
    int r = r0, groups = w->cols / w->group_size;
    if (n_tokens == 1 && four && !two && groups * MV_ROWS <= 2 * Q8_SEG) {
        float scw[2 * Q8_SEG];
        for (; r + MV_ROWS <= r1; r += MV_ROWS) {
            widen_scales(w->scales, w->sdtype, (size_t)r * (size_t)groups, MV_ROWS * groups, scw);
            q8_pass_4x1(w, r, scw, xq, dxv, xsum, y + (r - r0));
        }
    } else if (n_tokens == 1) {
        for (; r + MV_ROWS <= r1; r += MV_ROWS)
            q8_rows_pass(w, r, MV_ROWS, 0, 1, four, two, 1, NULL, NULL, xq, dxv, xsum, y + (r - r0), ldy);
    } else {
        /* a row pair's scales and biases widened once for all its token pairs */
        float scw[2 * Q8_SEG], biw[2 * Q8_SEG];
        int whole = groups <= Q8_SEG;
        for (; r + 2 <= r1; r += 2) {
            if (whole) {
                size_t g0 = (size_t)r * (size_t)groups;
                widen_scales(w->scales, w->sdtype, g0, 2 * groups, scw);
                widen_scales(w->biases, w->sdtype, g0, 2 * groups, biw);
            }
            const float *sp = whole ? scw : NULL, *bp = whole ? biw : NULL;
            int t = 0;
            if (whole && four && !two)
                for (; t + 2 <= n_tokens; t += 2) q8_pass_2x2(w, r, t, scw, biw, xq, dxv, xsum, y + (r - r0), ldy);
            for (; t + 2 <= n_tokens; t += 2)
                q8_rows_pass(w, r, 2, t, 2, four, two, t == 0, sp, bp, xq, dxv, xsum, y + (r - r0), ldy);
            if (t < n_tokens) q8_rows_pass(w, r, 2, t, 1, four, two, 0, sp, bp, xq, dxv, xsum, y + (r - r0), ldy);
        }
    }
    for (; r < r1; r++)
        for (int t = 0; t < n_tokens; t++)
            q8_rows_pass(w, r, 1, t, 1, four, two, t == 0, NULL, NULL, xq, dxv, xsum, y + (r - r0), ldy);
}

void gm_avx2_matmul_mlx_q8(const gm_mlx_rows *w, int r0, int r1, int n_tokens, const int8_t *xq, const float *dxv,
                           const float *xsum, float *y, size_t ldy) {
    if (w->bits == 8)
        q8_matmul(w, r0, r1, n_tokens, 0, 0, xq, dxv, xsum, y, ldy);
    else if (w->group_size < 64)
        q8_matmul(w, r0, r1, n_tokens, 1, 1, xq, dxv, xsum, y, ldy);
    else
        q8_matmul(w, r0, r1, n_tokens, 1, 0, xq, dxv, xsum, y, ldy);
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

/* axpy on f16 / bf16 rows (a half-precision KV cache's values): widen 8, fuse. */
static inline __attribute__((always_inline)) void axpy_elems(float a, const uint8_t *x, int type, float *y, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_elems8(x + 2 * i, type), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * load_elem(x + 2 * i, type);
}

static void avx2_axpy_f16(float a, const void *x, float *y, int n) { axpy_elems(a, x, ELEM_F16, y, n); }
static void avx2_axpy_bf16(float a, const void *x, float *y, int n) { axpy_elems(a, x, ELEM_BF16, y, n); }

/* ------------------------------------------------- llama.cpp's lane sums */

/* Two ymm per 16-lane accumulator (lanes 0-7, 8-15): the lanes are ggml's, so the bits are. */
static float avx2_dot_lanes(const float *a, const float *b, int n, int groups) {
    __m256 lo[4], hi[4];
    for (int g = 0; g < 4; g++) lo[g] = hi[g] = _mm256_setzero_ps();
    for (int i = 0, c = 0; i < n; i += 16, c++) {
        int g = c % groups;
        lo[g] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo[g]);
        hi[g] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi[g]);
    }
    float lanes[4][16];
    for (int g = 0; g < groups; g++) {
        _mm256_storeu_ps(lanes[g], lo[g]);
        _mm256_storeu_ps(lanes[g] + 8, hi[g]);
    }
    return gm_lanes_reduce(lanes, groups);
}

static void avx2_fma_row(float a, const float *x, float *y, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* ------------------------------------------------------ GGUF block formats */

/* Blocks are decoded straight into exact f32 weights in registers, 8 at a
 * time: emit8 makes s*q [+ m | - m] with the same roundings as ggml_blocks.c
 * and stores them (dequant) or multiplies them into one of four accumulators
 * (dot).  `dot` is a constant after inlining, so both entry points get
 * straight-line code and the weights never pass through a buffer.  Quants
 * reach emit8 as 32-bit lanes, widened from memory where the format allows
 * (4- and 8-bit quants) and otherwise assembled as bytes 32 at a time
 * (5- and 6-bit) and widened from registers. */
#define AI inline __attribute__((always_inline))

typedef struct {
    __m256 acc[4];
    const float *x;
    float *out;
    int dot;
} ggml_sink;

enum { AFF_NONE, AFF_ADD, AFF_SUB };

static AI __m128i loadu64(const uint8_t *p) { return _mm_loadl_epi64((const __m128i *)(const void *)p); }
static AI __m128i loadu128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
static AI __m256i loadu256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static AI __m256 f16_bcast(const uint8_t *p) { return _mm256_set1_ps(load_u16_scalar_f16(p)); }
static AI __m256i bytes(int v) { return _mm256_set1_epi8((char)v); }

/* Values i..i+7; slot must be a constant (the accumulators live in registers). */
static AI void emit8(ggml_sink *k, int i, int slot, __m256i q, __m256 s, __m256 m, int aff) {
    __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(q), s);
    if (aff == AFF_ADD) w = _mm256_add_ps(w, m);
    if (aff == AFF_SUB) w = _mm256_sub_ps(w, m);
    if (k->dot) k->acc[slot] = _mm256_fmadd_ps(w, _mm256_loadu_ps(k->x + i), k->acc[slot]);
    else _mm256_storeu_ps(k->out + i, w);
}

/* 32 quants as signed bytes, values i..i+31: s_lo scales the first 16, s_hi the rest. */
static AI void emit_bytes32(ggml_sink *k, int i, __m256i q, __m256 s_lo, __m256 s_hi, __m256 m, int aff) {
    __m128i q0 = _mm256_castsi256_si128(q), q1 = _mm256_extracti128_si256(q, 1);
    emit8(k, i, 0, _mm256_cvtepi8_epi32(q0), s_lo, m, aff);
    emit8(k, i + 8, 1, _mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8)), s_lo, m, aff);
    emit8(k, i + 16, 2, _mm256_cvtepi8_epi32(q1), s_hi, m, aff);
    emit8(k, i + 24, 3, _mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8)), s_hi, m, aff);
}

/* 8 bytes of nibbles: the low ones are values i.. (scale sa, ma), the high
 * ones values j.. (sb, mb), each quant minus `off`. */
static AI void emit_nibbles8(ggml_sink *k, const uint8_t *qs, int i, int j, int slot, int off, __m256 sa, __m256 ma,
                             __m256 sb, __m256 mb, int aff) {
    __m256i v = _mm256_cvtepu8_epi32(loadu64(qs));
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(15)), hi = _mm256_srli_epi32(v, 4);
    if (off) lo = _mm256_sub_epi32(lo, _mm256_set1_epi32(off)), hi = _mm256_sub_epi32(hi, _mm256_set1_epi32(off));
    emit8(k, i, slot, lo, sa, ma, aff);
    emit8(k, j, slot + 1, hi, sb, mb, aff);
}

/* A 32-value block of 16 nibble bytes (low nibbles values 0-15). */
static AI void nibble_block(ggml_sink *k, const uint8_t *qs, int i, int off, __m256 d, __m256 m, int aff) {
    emit_nibbles8(k, qs, i, i + 16, 0, off, d, m, d, m, aff);
    emit_nibbles8(k, qs + 8, i + 8, i + 24, 2, off, d, m, d, m, aff);
}

/* 16 bytes of nibbles as 32 bytes, low nibbles first (Q5_0/Q5_1). */
static AI __m256i nibbles32(const uint8_t *qs) {
    __m128i v = loadu128(qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), bytes(0x0f));
}

/* Byte j = 0x10 if bit j of the little-endian word at p is set (the fifth
 * bits of Q5_0/Q5_1): spread byte j/8 over 8 bytes, then test one bit each. */
static AI __m256i fifth_bits32(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1)), bytes(0x10));
}

static AI void q4_0_block(const uint8_t *b, int i, ggml_sink *k) {
    __m256 d = f16_bcast(b);
    nibble_block(k, b + 2, i, 8, d, d, AFF_NONE);
}

static AI void q4_1_block(const uint8_t *b, int i, ggml_sink *k) {
    nibble_block(k, b + 4, i, 0, f16_bcast(b), f16_bcast(b + 2), AFF_ADD);
}

static AI void q5_0_block(const uint8_t *b, int i, ggml_sink *k) {
    __m256 d = f16_bcast(b);
    __m256i q = _mm256_or_si256(nibbles32(b + 6), fifth_bits32(b + 2));
    emit_bytes32(k, i, _mm256_sub_epi8(q, bytes(16)), d, d, d, AFF_NONE);
}

static AI void q5_1_block(const uint8_t *b, int i, ggml_sink *k) {
    __m256 d = f16_bcast(b);
    emit_bytes32(k, i, _mm256_or_si256(nibbles32(b + 8), fifth_bits32(b + 4)), d, d, f16_bcast(b + 2), AFF_ADD);
}

static AI void q8_0_block(const uint8_t *b, int i, ggml_sink *k) {
    __m256 d = f16_bcast(b);
    for (int j = 0; j < 4; j++) emit8(k, i + 8 * j, j, _mm256_cvtepi8_epi32(loadu64(b + 2 + 8 * j)), d, d, AFF_NONE);
}

/* The K-quants' per-sub-block scales go through a small array so that each
 * use is a broadcast load (a load port) instead of a lane permute (vector ALU
 * time; worth ~5% on Q6_K); the empty asm keeps GCC from turning the loads
 * back into permutes of the register it stored. */
#define KEEP_IN_MEMORY(a) __asm__("" : "+m"(a))

/* Q4_K/Q5_K's eight 6-bit scales and mins as d*sc and dmin*mn (each product
 * rounded, as in the reference).  Word operations regroup the 12 packed
 * bytes into sc[0..7] (bytes 0-7) and mn[0..7] (bytes 8-15). */
static AI void k_scales(const uint8_t *b, float ds[8], float dm[8]) {
    uint32_t u[3];
    memcpy(u, b + 4, 12);
    __m128i v = _mm_setr_epi32((int)(u[0] & 0x3f3f3f3f), (int)((u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4)),
                               (int)(u[1] & 0x3f3f3f3f), (int)(((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4)));
    _mm256_storeu_ps(ds, _mm256_mul_ps(f16_bcast(b), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))));
    _mm256_storeu_ps(dm, _mm256_mul_ps(f16_bcast(b + 2), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)))));
}

/* Q4_K: sub-blocks 2p and 2p+1 are the low and high nibbles of qs[32p..]. */
static AI void q4_k_block(const uint8_t *b, int i, ggml_sink *k) {
    float ds[8], dm[8];
    k_scales(b, ds, dm);
    KEEP_IN_MEMORY(ds);
    KEEP_IN_MEMORY(dm);
    for (int p = 0; p < 4; p++) {
        __m256 sa = _mm256_set1_ps(ds[2 * p]), ma = _mm256_set1_ps(dm[2 * p]);
        __m256 sb = _mm256_set1_ps(ds[2 * p + 1]), mb = _mm256_set1_ps(dm[2 * p + 1]);
        for (int t = 0; t < 4; t++)
            emit_nibbles8(k, b + 16 + 32 * p + 8 * t, i + 64 * p + 8 * t, i + 64 * p + 32 + 8 * t, 2 * (t & 1), 0, sa,
                          ma, sb, mb, AFF_SUB);
    }
}

/* Byte l = 0x10 if bit j of qh byte l is set (Q5_K's fifth bits of sub-block
 * j).  The 16-bit shifts carry bits across bytes, but never into bit 4. */
static AI __m256i kbit(__m256i qh, int j) {
    __m256i v = j <= 4 ? _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - j)) : _mm256_srl_epi16(qh, _mm_cvtsi32_si128(j - 4));
    return _mm256_and_si256(v, bytes(0x10));
}

/* Q5_K: Q4_K's layout with 32 bytes of fifth bits before the nibbles. */
static AI void q5_k_block(const uint8_t *b, int i, ggml_sink *k) {
    float ds[8], dm[8];
    k_scales(b, ds, dm);
    KEEP_IN_MEMORY(ds);
    KEEP_IN_MEMORY(dm);
    __m256i h = loadu256(b + 16);
    for (int p = 0; p < 4; p++) {
        __m256i v = loadu256(b + 48 + 32 * p);
        __m256i lo = _mm256_and_si256(v, bytes(0x0f)), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), bytes(0x0f));
        __m256 sa = _mm256_set1_ps(ds[2 * p]), sb = _mm256_set1_ps(ds[2 * p + 1]);
        emit_bytes32(k, i + 64 * p, _mm256_or_si256(lo, kbit(h, 2 * p)), sa, sa, _mm256_set1_ps(dm[2 * p]), AFF_SUB);
        emit_bytes32(k, i + 64 * p + 32, _mm256_or_si256(hi, kbit(h, 2 * p + 1)), sb, sb, _mm256_set1_ps(dm[2 * p + 1]),
                     AFF_SUB);
    }
}

/* Q6_K: in half h, chunk c takes nibble c/2 of ql bytes 64h + 32*(c%2) ...,
 * bits 2c..2c+1 of qh bytes 32h ..., and scales 8h+2c, 8h+2c+1. */
static AI void q6_k_block(const uint8_t *b, int i, ggml_sink *k) {
    float ds[16];
    __m256 d = f16_bcast(b + 208);
    __m128i sc = loadu128(b + 192);
    _mm256_storeu_ps(ds, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc))));
    _mm256_storeu_ps(ds + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)))));
    KEEP_IN_MEMORY(ds);
    const __m256i m4 = bytes(0x0f), m2 = bytes(0x30);
    for (int h = 0; h < 2; h++) {
        __m256i l0 = loadu256(b + 64 * h), l1 = loadu256(b + 64 * h + 32), qh = loadu256(b + 128 + 32 * h);
        __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2)),
            _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2)),
        };
        for (int c = 0; c < 4; c++)
            emit_bytes32(k, i + 128 * h + 32 * c, _mm256_sub_epi8(q[c], bytes(32)), _mm256_set1_ps(ds[8 * h + 2 * c]),
                         _mm256_set1_ps(ds[8 * h + 2 * c + 1]), d, AFF_NONE);
    }
}

static AI float ggml_sum(const ggml_sink *k) {
    return hsum256(_mm256_add_ps(_mm256_add_ps(k->acc[0], k->acc[1]), _mm256_add_ps(k->acc[2], k->acc[3])));
}

/* The walk over a row's blocks and the two table entries: the same in every twin. */
#include "kernels/ggml_walk.h"

/* ------------------------------------------- GEMM tile and vision loops */

/* 6 x 16 tile: 12 accumulators + 2 B vectors + a broadcast of the 16 ymm registers. */
enum { AVX2_MR = 6, AVX2_NR = 16 };

static void avx2_gemm_f32(int kc, const float *a, const float *b, float *c, size_t ldc, int m, int n,
                          int accumulate) {
    /* C tiles come from L3 (the driver sweeps C once per KC): into L2 at the
     * start (this tile and the next one down), into L1 shortly before the
     * end, as the AVX-512 twin does; prefetches never fault. */
    if (accumulate)
        for (int i = 0; i < 2 * AVX2_MR; i++) _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T1);
#define GM_Z(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps();
    GM_Z(0) GM_Z(1) GM_Z(2) GM_Z(3) GM_Z(4) GM_Z(5)
#undef GM_Z
#define GM_ROW(i)                                      \
    {                                                  \
        __m256 x = _mm256_broadcast_ss(a + i);         \
        c##i##a = _mm256_fmadd_ps(x, b0, c##i##a);     \
        c##i##b = _mm256_fmadd_ps(x, b1, c##i##b);     \
    }
#define GM_STEP                                                                       \
    {                                                                                 \
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);                    \
        GM_ROW(0) GM_ROW(1) GM_ROW(2) GM_ROW(3) GM_ROW(4) GM_ROW(5)                   \
        a += AVX2_MR;                                                                 \
        b += AVX2_NR;                                                                 \
    }
    int k = 0;
    for (; k < kc - 8; k++) GM_STEP
    if (accumulate)
        for (int i = 0; i < m; i++) _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    for (; k < kc; k++) GM_STEP
#undef GM_STEP
#undef GM_ROW
    float edge[AVX2_NR];
#define GM_STORE(i)                                                                              \
    if (i < m) {                                                                                 \
        float *r = c + (size_t)(i) * ldc;                                                        \
        if (n == AVX2_NR) {                                                                      \
            __m256 v0 = c##i##a, v1 = c##i##b;                                                   \
            if (accumulate) {                                                                    \
                v0 = _mm256_add_ps(_mm256_loadu_ps(r), v0);                                      \
                v1 = _mm256_add_ps(_mm256_loadu_ps(r + 8), v1);                                  \
            }                                                                                    \
            _mm256_storeu_ps(r, v0);                                                             \
            _mm256_storeu_ps(r + 8, v1);                                                         \
        } else {                                                                                 \
            _mm256_storeu_ps(edge, c##i##a);                                                     \
            _mm256_storeu_ps(edge + 8, c##i##b);                                                 \
            for (int j = 0; j < n; j++) r[j] = (accumulate ? r[j] : 0.0f) + edge[j];            \
        }                                                                                        \
    }
    GM_STORE(0) GM_STORE(1) GM_STORE(2) GM_STORE(3) GM_STORE(4) GM_STORE(5)
#undef GM_STORE
}

/* exp(x): Cephes' expf reduction and polynomial (about 2 ulp), inputs clamped to [-87, 88]. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(x, x), x), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* The last n % 8 values through the same vector code, via a padded copy. */
static inline __m256 load_tail8(const float *x, int r) {
    float t[8] = {0};
    memcpy(t, x, (size_t)r * sizeof(float));
    return _mm256_loadu_ps(t);
}

static inline void store_tail8(float *x, __m256 v, int r) {
    float t[8];
    _mm256_storeu_ps(t, v);
    memcpy(x, t, (size_t)r * sizeof(float));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static float avx2_exp_sum(const float *x, float *y, int n, float scale, float shift) {
    __m256 vs = _mm256_set1_ps(scale), vh = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vs, vh));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum8(acc);
    if (i < n) {
        float t[8];
        _mm256_storeu_ps(t, exp8(_mm256_fmsub_ps(load_tail8(x + i, n - i), vs, vh)));
        for (int j = 0; j < n - i; j++) {
            y[i + j] = t[j];
            s += t[j];
        }
    }
    return s;
}

static float avx2_max_f32(const float *x, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    float t[8], m = -INFINITY;
    _mm256_storeu_ps(t, mx);
    for (int j = 0; j < 8; j++) m = t[j] > m ? t[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline __m256 gelu8(__m256 x) {
    __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(0.044715f), _mm256_set1_ps(1.0f));
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(x, inner), _mm256_set1_ps(-1.5957691216057308f));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(t)));
}

static void avx2_gelu_tanh(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) store_tail8(x + i, gelu8(load_tail8(x + i, n - i)), n - i);
}

/* 8 x 8 in-register transpose: r[i] row i in, r[c] column c out. */
static inline void transpose8x8(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

static void avx2_pack_t(const float *src, size_t ld, int rows, int cols, int width, float *dst) {
    for (int r0 = 0; r0 < width; r0 += 8) {
        int lanes = width - r0 < 8 ? width - r0 : 8, live = rows - r0;
        int c0 = 0;
        for (; c0 + 8 <= cols; c0 += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++)
                v[i] = i < live ? _mm256_loadu_ps(src + (size_t)(r0 + i) * ld + c0) : _mm256_setzero_ps();
            transpose8x8(v);
            for (int c = 0; c < 8; c++) {
                if (lanes == 8) _mm256_storeu_ps(dst + (size_t)(c0 + c) * width + r0, v[c]);
                else store_tail8(dst + (size_t)(c0 + c) * width + r0, v[c], lanes);
            }
        }
        for (; c0 < cols; c0++)
            for (int i = 0; i < lanes; i++) dst[(size_t)c0 * width + r0 + i] = i < live ? src[(size_t)(r0 + i) * ld + c0] : 0.0f;
    }
}

static void avx2_softmax_cols(float *p, int rows, int width, float scale, float *run_max, float *run_sum, float *o,
                              size_t ldo, int o_rows) {
    __m256 vs = _mm256_set1_ps(scale);
    int c0 = 0;
    for (; c0 + 8 <= width; c0 += 8) {
        __m256 mx = _mm256_set1_ps(-INFINITY), sum = _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) mx = _mm256_max_ps(mx, _mm256_loadu_ps(p + (size_t)r * width + c0));
        __m256 old = _mm256_loadu_ps(run_max + c0);
        __m256 shift = _mm256_max_ps(_mm256_mul_ps(mx, vs), old);
        __m256 f = exp8(_mm256_sub_ps(old, shift));
        for (int r = 0; r < rows; r++) {
            float *x = p + (size_t)r * width + c0;
            __m256 e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x), vs, shift));
            _mm256_storeu_ps(x, e);
            sum = _mm256_add_ps(sum, e);
        }
        _mm256_storeu_ps(run_sum + c0, _mm256_fmadd_ps(_mm256_loadu_ps(run_sum + c0), f, sum));
        _mm256_storeu_ps(run_max + c0, shift);
        for (int i = 0; i < o_rows; i++) {
            float *y = o + (size_t)i * ldo + c0;
            _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_loadu_ps(y), f));
        }
    }
    if (c0 < width)
        gm_ref_softmax_cols(p + c0, rows, width - c0, width, scale, run_max + c0, run_sum + c0, o + c0, ldo, o_rows);
}

const gm_kernels gm_kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = avx2_dot_f32,
    .dot_wf32 = avx2_dot_wf32,
    .dot_bf16 = avx2_dot_bf16,
    .dot_f16 = avx2_dot_f16,
    .dot_mlx = avx2_dot_mlx,
    .mlx_prep_x = avx2_mlx_prep_x,
    .matvec_mlx = avx2_matvec_mlx,
    .matmul_mlx_q8 = gm_avx2_matmul_mlx_q8,
    .dequant_mlx = avx2_dequant_mlx,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .f16_to_f32 = avx2_f16_to_f32,
    .axpy = avx2_axpy,
    .axpy_f16 = avx2_axpy_f16,
    .axpy_bf16 = avx2_axpy_bf16,
    .dot_ggml = ggml_dot,
    .dequant_ggml = ggml_dequant,
    .quantize_q8 = gm_q8_quantize_row,
    .dot_ggml_q8 = gm_avx2_dot_ggml_q8,
    .dot_ggml_q8_gemm = gm_avx2_dot_ggml_q8_gemm,
    .dot_lanes = avx2_dot_lanes,
    .fma_row = avx2_fma_row,
    .gemm_mr = AVX2_MR,
    .gemm_nr = AVX2_NR,
    .gemm_f32 = avx2_gemm_f32,
    .exp_sum = avx2_exp_sum,
    .max_f32 = avx2_max_f32,
    .gelu_tanh = avx2_gelu_tanh,
    .pack_t = avx2_pack_t,
    .softmax_cols = avx2_softmax_cols,
};
