/* q8_avx2.c - AVX2 twins of quant/ggml_q8.c's integer dots, for the types
 * GGUF checkpoints of Gemma mostly hold (Q8_0, Q5_0, Q4_0, Q4_K, Q6_K; the
 * others fall back to the scalar definition).
 *
 * They must give the scalar bits exactly, and the scalar code is ggml's
 * AVX2 arithmetic, so these are shaped like ggml's kernels: one 256-bit
 * register per 32 values, maddubs + madd for the integer part (exact: no
 * pair of products here can reach the int16 limit, since the activations
 * are within [-127, 127]), eight f32 lanes added with fma per block, the
 * same final horizontal sum.  Compiled with -mavx2 -mfma -mf16c for this
 * file only (its own file so the f32 kernels in avx2.c can change freely);
 * used by the avx2 and avx512 tables. */
#include "kernels/kernels.h"
#include "quant/ggml_blocks.h"
#include "quant/ggml_q8.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* ggml's hsum_float_8: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). */
static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* int32 lanes of sum_{j<4} a[4k+j]*b[4k+j] for signed a, b (a != -128 or b != -128). */
static inline __m256i dot_i8_lanes(__m256i a, __m256i b) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* 32 nibbles: low nibbles of 16 bytes are values 0-15, high nibbles 16-31. */
static inline __m256i nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* 0xff in byte j where bit j of the 32-bit word at p is set. */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

/* Q4_0 / Q5_0 / Q8_0 weights with Q8_0 activations. */
static float dot_x_q8_0(uint32_t wtype, const uint8_t *w, const uint8_t *x, int n) {
    int wb = wtype == GM_GGML_Q8_0 ? 34 : wtype == GM_GGML_Q5_0 ? 22 : 18;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / 32; i++, w += wb, x += GM_Q8_0_BLOCK_BYTES) {
        __m256i q;
        if (wtype == GM_GGML_Q8_0) {
            q = _mm256_loadu_si256((const __m256i *)(w + 2));
        } else if (wtype == GM_GGML_Q5_0) {   /* nibble | 0xf0 where the fifth bit is clear = q - 16 */
            q = _mm256_or_si256(nibbles32(w + 6), _mm256_andnot_si256(bits32(w + 2), _mm256_set1_epi8((char)0xf0)));
        } else {
            q = _mm256_sub_epi8(nibbles32(w + 2), _mm256_set1_epi8(8));
        }
        __m256i lanes = dot_i8_lanes(q, _mm256_loadu_si256((const __m256i *)(x + 2)));
        __m256 d = _mm256_set1_ps(f16_at(w) * f16_at(x));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc);
    }
    return hsum8(acc);
}

/* One K-quant block's integer part, as ggml_q8.c's k_block_ints: the
 * eight int32 lanes and (Q4_K) the four mins pair products. */
static inline __m256i q4_k_block(const uint8_t *w, const uint8_t *x, int32_t mins[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    uint8_t sc[8], mn[8];
    gm_ggml_k_scale_min(w + 4, sc, mn);
    const uint8_t *qs = w + 16;
    const int8_t *q8 = (const int8_t *)(x + 4);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        __m256i bits = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
        __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
        pl = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j]), pl);
        ph = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j + 1]), ph);
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    int16_t b[16];
    memcpy(b, x + 260, 32);
    for (int p = 0; p < 4; p++)
        mins[p] = mn[2 * p] * (b[4 * p] + b[4 * p + 1]) + mn[2 * p + 1] * (b[4 * p + 2] + b[4 * p + 3]);
    return sumi;
}

/* The unsigned codes in the lanes, the -32 offset per lane from the bsums
 * (see ggml_q8.c's k_block_ints). */
static inline __m256i q6_k_block(const uint8_t *w, const uint8_t *x) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    const int8_t *q8 = (const int8_t *)(x + 4);
    __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
    __m256i bsums = _mm256_loadu_si256((const __m256i *)(x + 260));
    __m256i sub = _mm256_slli_epi32(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(sc8)), 5);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
        __m256i l2 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
        __m256i hb = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
        __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
            _mm256_or_si256(_mm256_and_si256(l2, m4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l2, 4), m4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)),
        };
        for (int c = 0; c < 4; c++) {
            __m256i y = _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * c));
            __m256i p = _mm256_maddubs_epi16(q[c], y);
            /* int16 lanes 0-7: the scale of 16-value group g = 8h + 2c, lanes 8-15: g + 1 */
            int g = 8 * h + 2 * c;
            __m128i pick = _mm_set_epi64x(0x0101010101010101LL * (g + 1), 0x0101010101010101LL * g);
            __m256i s = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(s, p));
        }
    }
    return _mm256_sub_epi32(sumi, sub);
}

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* vec_dot (gemm = 0) or the tiled GEMM's per-block steps (gemm = 1); see ggml_q8.c. */
static float dot_q4_k(const uint8_t *w, const uint8_t *x, int n, int gemm) {
    __m256 acc = _mm256_setzero_ps();
    float accm[4] = {0}, acc1 = 0.0f;
    for (int i = 0; i < n / 256; i++, w += 144, x += GM_Q8_K_BLOCK_BYTES) {
        int32_t mins[4];
        __m256i sumi = q4_k_block(w, x, mins);
        float xd = f32_at(x), dw = f16_at(w), dmin = f16_at(w + 2);
        if (gemm) {
            float r = fmaf(-dmin, (float)(mins[0] + mins[1] + mins[2] + mins[3]), (float)hsum_i32(sumi) * dw);
            acc1 = fmaf(r, xd, acc1);
            continue;
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(xd * dw), _mm256_cvtepi32_ps(sumi), acc);
        float dm = -xd * dmin;
        for (int p = 0; p < 4; p++) accm[p] = fmaf(dm, (float)mins[p], accm[p]);
    }
    if (gemm) return acc1;
    return hsum8(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]));
}

static float dot_q6_k(const uint8_t *w, const uint8_t *x, int n, int gemm) {
    __m256 acc = _mm256_setzero_ps();
    float acc1 = 0.0f;
    for (int i = 0; i < n / 256; i++, w += 210, x += GM_Q8_K_BLOCK_BYTES) {
        __m256i sumi = q6_k_block(w, x);
        float xd = f32_at(x), dw = f16_at(w + 208);
        if (gemm)
            acc1 = fmaf((float)hsum_i32(sumi) * dw, xd, acc1);
        else
            acc = _mm256_fmadd_ps(_mm256_set1_ps(xd * dw), _mm256_cvtepi32_ps(sumi), acc);
    }
    return gemm ? acc1 : hsum8(acc);
}

static float dot_any(uint32_t wtype, const void *w, const void *xq, int n, int gemm) {
    switch (wtype) {
    case GM_GGML_Q4_0:
    case GM_GGML_Q5_0:
    case GM_GGML_Q8_0:
        if (n % 32) break;
        return dot_x_q8_0(wtype, w, xq, n);
    case GM_GGML_Q4_K:
        if (n % 256) break;
        return dot_q4_k(w, xq, n, gemm);
    case GM_GGML_Q6_K:
        if (n % 256) break;
        return dot_q6_k(w, xq, n, gemm);
    default: break;
    }
    return gemm ? gm_q8_dot_row_gemm(wtype, w, xq, n) : gm_q8_dot_row(wtype, w, xq, n);
}

float gm_avx2_dot_ggml_q8(uint32_t wtype, const void *w, const void *xq, int n) { return dot_any(wtype, w, xq, n, 0); }

float gm_avx2_dot_ggml_q8_gemm(uint32_t wtype, const void *w, const void *xq, int n) {
    return dot_any(wtype, w, xq, n, 1);
}
