/* ggml_q8.c - see ggml_q8.h.
 *
 * What "the same as llama.cpp" means here, operation by operation (read from
 * ggml-quants.c, ggml-cpu/arch/x86/quants.c, ggml-cpu/llamafile/sgemm.cpp
 * and ggml-cpu/tiled/; written anew in scalar C).  The ground truth is the
 * ggml-cpu that llama-cpp-python 0.3.36 ships (libggml-cpu 0.25.3, AVX-512 +
 * VNNI build), which made tests/fixtures/real270m: its quantize_row_q8_* and
 * ggml_vec_dot_* give exactly our bits on random rows, and its matmul
 * outputs on the real 270M GGUF are ours bit for bit, prompts included.
 *
 * Activation quantizers.  ggml-cpu replaces the portable Q8_0/Q8_1
 * quantizers (quantize_row_q8_0_ref, the one gguf-py copies) by AVX code
 * that rounds differently:
 *   - the multiplier is id = 127/amax, not 1/d with d = amax/127 (the two
 *     f32 values differ in the last bit for some amax);
 *   - x*id is rounded half to even (_mm256_round_ps, _MM_ROUND_NEAREST), not
 *     half away from zero (roundf), then converted with cvtps2dq and
 *     narrowed by two saturating packs;
 *   - the block maximum is a tree of maxps, which only matters for NaN.
 * The stored d is f16(amax/127) in both.  Q8_1's s is f16(d * sum(q)) with
 * the unrounded f32 d in both.  Q8_K has no x86 variant: ggml-cpu calls
 * quantize_row_q8_K_ref, which lives in ggml-base (built without -mfma), so
 * iscale*x is rounded to f32 before nearest_int's magic-number rounding.
 * We keep the _ref quantizers too, only so tests can check them against
 * gguf-py.
 *
 * Dot products.  The AVX2 vec_dot kernels (and llamafile's tinyBLAS_Q0_AVX,
 * which llama.cpp uses for Q8_0/Q4_0/Q5_0 prompts of 2+ tokens) keep eight
 * f32 accumulator lanes: lane k collects the integer products of the values
 * at block offsets 4k..4k+3 of every 32 (dpbusd, or maddubs + madd), times
 * the sub-block scales for K-quants, converted to f32 once per block and
 * added as fma(d, lane, acc[k]) with d = f16(w.d) * f16(x.d) (K-quants:
 * x.d * f16(w.d)) rounded to f32 first.  The lanes are summed at the end as
 * ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).  We do exactly that, so the result
 * is the same bits as ggml's, summation order included.  The per-block
 * "mins" terms: Q4_K keeps four lanes fma(dmin, m[2p]*S[2p] + m[2p+1]*S[2p+1],
 * accm[p]) with S the 32-value sums of the activations (from bsums) and adds
 * (a0+a2)+(a1+a3); Q5_K sums the mins in int32 and does summs += dmin*isum in
 * plain C, as Q4_1/Q5_1 do with summs += m*s: GCC's default
 * -ffp-contract=fast (GNU C mode) with -march=native turns those into fma,
 * so we write fmaf there.
 *
 * Everything else must not be contracted: GCC does not contract in ISO C
 * mode (-std=c11, as CMake builds), the pragma stops clang.
 *
 * Many rows at once.  For 8 or more activation rows ggml-cpu multiplies
 * K-quant weights with a tiled GEMM instead of vec_dot, with other f32
 * steps (dot_k_tiled below); the matmul picks gm_q8_dot_row_gemm then, so
 * a prompt rounds as llama.cpp's prompt does. */
#include "quant/ggml_q8.h"
#include "core/dtype.h"
#include "quant/ggml_blocks.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ------------------------------------------------------------------ types */

uint32_t gm_q8_act_type(uint32_t wtype) {
    switch (wtype) {
    case GM_GGML_Q4_0:
    case GM_GGML_Q5_0:
    case GM_GGML_Q8_0: return GM_GGML_Q8_0;
    case GM_GGML_Q4_1:
    case GM_GGML_Q5_1: return GM_GGML_Q8_1;
    case GM_GGML_Q4_K:
    case GM_GGML_Q5_K:
    case GM_GGML_Q6_K: return GM_GGML_Q8_K;
    default: return 0;
    }
}

size_t gm_q8_row_bytes(uint32_t act_type, int n) {
    int block, bytes;
    switch (act_type) {
    case GM_GGML_Q8_0: block = 32, bytes = GM_Q8_0_BLOCK_BYTES; break;
    case GM_GGML_Q8_1: block = 32, bytes = GM_Q8_1_BLOCK_BYTES; break;
    case GM_GGML_Q8_K: block = 256, bytes = GM_Q8_K_BLOCK_BYTES; break;
    default: return 0;
    }
    if (n < 0 || n % block) return 0;
    return (size_t)(n / block) * (size_t)bytes;
}

size_t gm_q8_max_row_bytes(int n) {
    if (n <= 0) return 0;
    size_t a = (size_t)((n + 31) / 32) * GM_Q8_1_BLOCK_BYTES;
    size_t b = (size_t)((n + 255) / 256) * GM_Q8_K_BLOCK_BYTES;
    return a > b ? a : b;
}

/* ------------------------------------------------------------ byte access */

static inline float f16_at(const uint8_t *p) { return gm_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static inline void put_f16(uint8_t *p, float v) {
    uint16_t h = gm_f32_to_f16(v);   /* round to nearest even, as F16C's vcvtps2ph with imm 0 */
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static inline float f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline int16_t i16_at(const uint8_t *p) { return (int16_t)(uint16_t)(p[0] | (p[1] << 8)); }

/* --------------------------------------------------- activation quantizers */

/* x86 MAXPS: a > b ? a : b (the second operand when either is NaN). */
static inline float maxps(float a, float b) { return a > b ? a : b; }

/* max |x_j| over 32 values as the AVX code reduces it: four 8-lane vectors
 * folded lane-wise, then 8 -> 4 -> 2 -> 1. */
static float amax32_x86(const float *x) {
    float l[8];
    for (int i = 0; i < 8; i++) l[i] = fabsf(x[i]);
    for (int v = 1; v < 4; v++)
        for (int i = 0; i < 8; i++) l[i] = maxps(l[i], fabsf(x[8 * v + i]));
    float m[4];
    for (int i = 0; i < 4; i++) m[i] = maxps(l[4 + i], l[i]);
    return maxps(maxps(m[0], m[2]), maxps(m[1], m[3]));
}

/* _mm256_round_ps(v, _MM_ROUND_NEAREST) then _mm256_cvtps_epi32: half to
 * even; NaN and values outside int32 give INT32_MIN. */
static inline int32_t round_cvt_x86(float v) {
    if (fabsf(v) < 4194304.0f) {
        float r = (v + 12582912.0f) - 12582912.0f;   /* 1.5 * 2^23: the f32 add rounds to an integer, ties even */
        return (int32_t)r;
    }
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
    return (int32_t)rintf(v);
}

/* packs_epi32 then packs_epi16: int32 -> int8 with saturation. */
static inline uint8_t sat_i8(int32_t v) { return (uint8_t)(int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }

/* The x86 Q8_0 / Q8_1 block: d stored, qs written, the int32 sum of the
 * rounded values (before the packs) returned for Q8_1's s. */
static int32_t q8_block_x86(const float *x, uint8_t *d_out, uint8_t *qs, float *d_f32) {
    float amax = amax32_x86(x);
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    put_f16(d_out, d);
    uint32_t sum = 0;   /* the vector adds wrap */
    for (int j = 0; j < 32; j++) {
        int32_t q = round_cvt_x86(x[j] * id);
        qs[j] = sat_i8(q);
        sum += (uint32_t)q;
    }
    *d_f32 = d;
    return (int32_t)sum;
}

typedef int32_t (*q8_block_fn)(const float *x, uint8_t *d_out, uint8_t *qs, float *d_f32);

/* A row of Q8_0 blocks (f16 d, qs) or Q8_1 blocks (f16 d, f16 s, qs) made by
 * one of the block quantizers; s = f16(d * sum) with the f32 d, as both of
 * ggml's Q8_1 quantizers write it. */
static void q8_row(q8_block_fn block, int with_s, const float *x, void *out, int n) {
    uint8_t *y = out;
    for (int i = 0; i + 32 <= n; i += 32, y += with_s ? GM_Q8_1_BLOCK_BYTES : GM_Q8_0_BLOCK_BYTES) {
        float d;
        int32_t sum = block(x + i, y, y + (with_s ? 4 : 2), &d);
        if (with_s) put_f16(y + 2, d * (float)sum);
    }
}

/* quantize_row_q8_0_ref / q8_1_ref: amax by a running MAX, id = 1/d,
 * roundf (half away from zero).  When 1/d overflows (amax below ~1e-36)
 * ggml casts inf/NaN to int8, which C leaves undefined; so do we: these are
 * for tests on ordinary data only. */
static int32_t ref_block(const float *x, uint8_t *d_out, uint8_t *qs, float *d_f32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(d_out, d);
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) {
        int8_t q = (int8_t)roundf(x[j] * id);
        qs[j] = (uint8_t)q;
        sum += q;
    }
    *d_f32 = d;
    return sum;
}

void gm_quantize_row_q8_0(const float *x, void *out, int n) { q8_row(q8_block_x86, 0, x, out, n); }
void gm_quantize_row_q8_1(const float *x, void *out, int n) { q8_row(q8_block_x86, 1, x, out, n); }
void gm_quantize_row_q8_0_ref(const float *x, void *out, int n) { q8_row(ref_block, 0, x, out, n); }
void gm_quantize_row_q8_1_ref(const float *x, void *out, int n) { q8_row(ref_block, 1, x, out, n); }

/* ggml's nearest_int, literally: add 1.5 * 2^23 so that the f32 add rounds
 * to an integer (half to even) and read it from the low mantissa bits.
 * Exact for |v| < 2^22; for inf and NaN it gives what ggml gives. */
static inline int32_t nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* quantize_row_q8_K_ref: scale by the signed value of largest magnitude
 * (the first one on ties), iscale = -127/max, q = nearest_int(iscale*x)
 * capped at 127, d = 1/iscale; bsums are the sums of 16 q.  An all-zero
 * block gets d = 0 and q = 0 (ggml leaves its bsums unwritten; they are
 * multiplied by d = 0 there, so 0 is as good). */
void gm_quantize_row_q8_K(const float *x, void *out, int n) {
    uint8_t *y = out;
    for (int i = 0; i + 256 <= n; i += 256, y += GM_Q8_K_BLOCK_BYTES) {
        const float *b = x + i;
        int8_t *qs = (int8_t *)(y + 4);
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(b[j]);
            if (ax > amax) {
                amax = ax;
                max = b[j];
            }
        }
        if (amax == 0.0f) {
            memset(y, 0, GM_Q8_K_BLOCK_BYTES);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            float p = iscale * b[j];
            int32_t v = nearest_int(p);
            qs[j] = (int8_t)(v < 127 ? v : 127);   /* int8 wrap of out-of-range values: as ggml's store */
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += qs[16 * g + j];
            int16_t s16 = (int16_t)sum;
            memcpy(y + 260 + 2 * g, &s16, 2);
        }
        float d = 1.0f / iscale;
        memcpy(y, &d, 4);
    }
}

void gm_q8_quantize_row(uint32_t act_type, const float *x, void *out, int n) {
    switch (act_type) {
    case GM_GGML_Q8_0: gm_quantize_row_q8_0(x, out, n); break;
    case GM_GGML_Q8_1: gm_quantize_row_q8_1(x, out, n); break;
    case GM_GGML_Q8_K: gm_quantize_row_q8_K(x, out, n); break;
    default: break;
    }
}

/* ---------------------------------------------------------- dot products */

/* ggml's hsum_float_8 (and tinyBLAS's hsum of a __m256). */
static inline float hsum8(const float a[8]) {
    return ((a[4] + a[0]) + (a[6] + a[2])) + ((a[5] + a[1]) + (a[7] + a[3]));
}

/* acc[k] = fma(d, lane k, acc[k]) with lane k = sum_{j<4} w[4k+j] * x[4k+j]
 * over one 32-value block. */
static void lanes_fma(const int8_t *w, const int8_t *x, float d, float acc[8]) {
    int32_t lane[8] = {0};
    for (int e = 0; e < 32; e++) lane[e >> 2] += w[e] * x[e];
    for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
}

/* One 32-value weight block as the signed bytes the AVX code multiplies
 * (Q4_1/Q5_1: the unsigned codes; their mins go through Q8_1's s). */
static void unpack32(uint32_t wtype, const uint8_t *b, int8_t q[32]) {
    switch (wtype) {
    case GM_GGML_Q8_0: memcpy(q, b + 2, 32); return;
    case GM_GGML_Q4_0:
    case GM_GGML_Q4_1: {
        const uint8_t *qs = b + (wtype == GM_GGML_Q4_0 ? 2 : 4);
        int off = wtype == GM_GGML_Q4_0 ? 8 : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((qs[j] & 0x0f) - off);
            q[j + 16] = (int8_t)((qs[j] >> 4) - off);
        }
        return;
    }
    default: {   /* Q5_0, Q5_1 */
        int q50 = wtype == GM_GGML_Q5_0;
        const uint8_t *qh = b + (q50 ? 2 : 4), *qs = qh + 4;
        uint32_t h = (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24);
        int off = q50 ? 16 : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(((qs[j] & 0x0f) | (int)(((h >> j) & 1u) << 4)) - off);
            q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)(((h >> (j + 16)) & 1u) << 4)) - off);
        }
        return;
    }
    }
}

/* Q4_0 / Q5_0 / Q8_0 with Q8_0 activations. */
static float dot_x_q8_0(uint32_t wtype, const uint8_t *w, const uint8_t *x, int n) {
    int wb = gm_ggml_type_size(wtype);
    float acc[8] = {0};
    int8_t q[32];
    for (int i = 0; i < n / 32; i++, w += wb, x += GM_Q8_0_BLOCK_BYTES) {
        float d = f16_at(w) * f16_at(x);
        unpack32(wtype, w, q);
        lanes_fma(q, (const int8_t *)(x + 2), d, acc);
    }
    return hsum8(acc);
}

/* Q4_1 / Q5_1 with Q8_1 activations: sum d*q*x + m*s. */
static float dot_x_q8_1(uint32_t wtype, const uint8_t *w, const uint8_t *x, int n) {
    int wb = gm_ggml_type_size(wtype);
    float acc[8] = {0}, summs = 0.0f;
    int8_t q[32];
    for (int i = 0; i < n / 32; i++, w += wb, x += GM_Q8_1_BLOCK_BYTES) {
        summs = fmaf(f16_at(w + 2), f16_at(x + 2), summs);   /* contracted by GCC in ggml, see the top */
        float d = f16_at(w) * f16_at(x);
        unpack32(wtype, w, q);
        lanes_fma(q, (const int8_t *)(x + 4), d, acc);
    }
    return hsum8(acc) + summs;
}

/* The integer part of one K-quant block with its Q8_K activation block,
 * which every llama.cpp kernel shares: lane[k] as in lanes_fma (ggml's
 * vec_dot lanes) and, for Q4_K/Q5_K, mins[p] = m[2p]*S[2p] + m[2p+1]*S[2p+1]
 * with S the activation sums per 32 values.  Q6_K's lanes hold the unsigned
 * 6-bit codes, the -32 offset taken off per lane from the bsums: lane k loses
 * 32 * (sc[2k] * bsums[2k] + sc[2k+1] * bsums[2k+1]) (the ggml-cpu llama.cpp
 * runs here; older ggml subtracted 32 * x per 4 values, moving the offset to
 * other lanes and so changing the f32 rounding). */
typedef struct {
    float dw, dmin, dx;
    int32_t lane[8], mins[4];
} k_block;

static void k_block_ints(uint32_t wtype, const uint8_t *w, const uint8_t *x, k_block *kb) {
    int8_t q[256];
    int scale16[16];
    int32_t sub[8] = {0};
    kb->dx = f32_at(x);
    memset(kb->mins, 0, sizeof kb->mins);
    if (wtype == GM_GGML_Q6_K) {
        const uint8_t *ql = w, *qh = w + 128;
        kb->dw = f16_at(w + 208);
        kb->dmin = 0.0f;
        for (int g = 0; g < 16; g++) scale16[g] = (int8_t)w[192 + g];
        for (int h = 0; h < 2; h++)
            for (int r = 0; r < 128; r++) {
                int lo = (ql[64 * h + (r & 63)] >> (4 * (r >> 6))) & 0x0f;
                int hi = (qh[32 * h + (r & 31)] >> (2 * (r >> 5))) & 0x03;
                q[128 * h + r] = (int8_t)(lo | (hi << 4));
            }
        for (int k = 0; k < 8; k++)
            sub[k] = 32 * (scale16[2 * k] * i16_at(x + 260 + 4 * k) + scale16[2 * k + 1] * i16_at(x + 262 + 4 * k));
    } else {   /* Q4_K, Q5_K */
        int q5 = wtype == GM_GGML_Q5_K;
        uint8_t sc[8], mn[8];
        kb->dw = f16_at(w);
        kb->dmin = f16_at(w + 2);
        gm_ggml_k_scale_min(w + 4, sc, mn);
        const uint8_t *qh = q5 ? w + 16 : NULL, *qs = w + (q5 ? 48 : 16);
        for (int j = 0; j < 8; j++) {
            const uint8_t *p = qs + 32 * (j / 2);
            int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++)
                q[32 * j + l] = (int8_t)(((p[l] >> shift) & 0x0f) | (qh ? ((qh[l] >> j) & 1) << 4 : 0));
        }
        for (int g = 0; g < 16; g++) scale16[g] = sc[g >> 1];
        int s32[8];
        for (int t = 0; t < 8; t++) s32[t] = i16_at(x + 260 + 4 * t) + i16_at(x + 262 + 4 * t);
        for (int p = 0; p < 4; p++) kb->mins[p] = mn[2 * p] * s32[2 * p] + mn[2 * p + 1] * s32[2 * p + 1];
    }
    const int8_t *xq = (const int8_t *)(x + 4);
    memset(kb->lane, 0, sizeof kb->lane);
    for (int e = 0; e < 256; e++) kb->lane[(e & 31) >> 2] += scale16[e >> 4] * q[e] * xq[e];
    for (int k = 0; k < 8; k++) kb->lane[k] -= sub[k];
}

/* K-quants with Q8_K activations, ggml's vec_dot: d = x.d * f16(w.d) and
 * dmin = -x.d * f16(w.dmin) in f32; the lanes through fma; Q4_K's mins in
 * four fma lanes, Q5_K's summed in int32 and added as summs += dmin * isum. */
static float dot_k(uint32_t wtype, const uint8_t *w, const uint8_t *x, int n) {
    int wb = gm_ggml_type_size(wtype);
    float acc[8] = {0}, accm[4] = {0}, summs = 0.0f;
    k_block kb;
    for (int i = 0; i < n / 256; i++, w += wb, x += GM_Q8_K_BLOCK_BYTES) {
        k_block_ints(wtype, w, x, &kb);
        float d = kb.dx * kb.dw, dmin = -kb.dx * kb.dmin;
        for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)kb.lane[k], acc[k]);
        if (wtype == GM_GGML_Q4_K)
            for (int p = 0; p < 4; p++) accm[p] = fmaf(dmin, (float)kb.mins[p], accm[p]);
        else if (wtype == GM_GGML_Q5_K)
            summs = fmaf(dmin, (float)(kb.mins[0] + kb.mins[1] + kb.mins[2] + kb.mins[3]), summs);   /* GCC's fma */
    }
    if (wtype == GM_GGML_Q4_K) return hsum8(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]));
    return hsum8(acc) + summs;
}

/* ggml-cpu's tiled K-quant GEMM (tiled/, VNNI microkernel), which llama.cpp
 * runs instead of vec_dot when 8 or more activation rows are multiplied at
 * once: per block the whole integer sums s1 = sum sc*q*x (Q6_K: minus the
 * 32 offset) and s2 = sum m*S, then r = fma(-dmin, s2, s1 * f16(w.d)) (Q6_K:
 * r = s1 * f16(w.d)) and acc = fma(r, x.d, acc) (the add of the product is
 * contracted by GCC in ggml), blocks in order.  Checked bit for bit against
 * llama.cpp's output of a 52-token prompt. */
static float dot_k_tiled(uint32_t wtype, const uint8_t *w, const uint8_t *x, int n) {
    int wb = gm_ggml_type_size(wtype);
    float acc = 0.0f;
    k_block kb;
    for (int i = 0; i < n / 256; i++, w += wb, x += GM_Q8_K_BLOCK_BYTES) {
        k_block_ints(wtype, w, x, &kb);
        int32_t s1 = 0, s2 = kb.mins[0] + kb.mins[1] + kb.mins[2] + kb.mins[3];
        for (int k = 0; k < 8; k++) s1 += kb.lane[k];
        float r = (float)s1 * kb.dw;
        if (wtype != GM_GGML_Q6_K) r = fmaf(-kb.dmin, (float)s2, r);
        acc = fmaf(r, kb.dx, acc);
    }
    return acc;
}

float gm_q8_dot_row(uint32_t wtype, const void *w, const void *xq, int n) {
    uint32_t act = gm_q8_act_type(wtype);
    int block = gm_ggml_block_size(wtype);
    if (!act || n < 0 || n % block) return NAN;
    switch (act) {
    case GM_GGML_Q8_0: return dot_x_q8_0(wtype, w, xq, n);
    case GM_GGML_Q8_1: return dot_x_q8_1(wtype, w, xq, n);
    default: return dot_k(wtype, w, xq, n);
    }
}

float gm_q8_dot_row_gemm(uint32_t wtype, const void *w, const void *xq, int n) {
    if (gm_q8_act_type(wtype) == GM_GGML_Q8_K && n >= 0 && n % 256 == 0) return dot_k_tiled(wtype, w, xq, n);
    return gm_q8_dot_row(wtype, w, xq, n);
}
