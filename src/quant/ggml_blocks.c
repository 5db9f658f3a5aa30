/* ggml_blocks.c - see ggml_blocks.h.
 *
 * Each dequantizer mirrors the numpy code of gguf.quants (gguf-py 0.19)
 * operation for operation: where numpy computes `(d * q) + m` in float32 we
 * round after the multiply too, so results match bit for bit.  That needs the
 * compiler not to fuse a*b+c into one FMA: GCC does not contract in ISO C
 * mode (-std=c11, as CMake builds), and the pragma below stops clang. */
#include "quant/ggml_blocks.h"
#include "core/dtype.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ------------------------------------------------------------------ types */

typedef struct {
    const char *name;
    int block_size, type_size, supported;
} type_traits;

/* From gguf.constants.GGML_QUANT_SIZES (QK_K = 256); checked against the
 * Python package by tests/unit/test_gguf.c via tests/fixtures/gguf/ggml_types.json. */
static const type_traits traits[GM_GGML_TYPE_LIMIT] = {
    [0] = {"F32", 1, 4, 1},          [1] = {"F16", 1, 2, 1},          [2] = {"Q4_0", 32, 18, 1},
    [3] = {"Q4_1", 32, 20, 1},       [6] = {"Q5_0", 32, 22, 1},       [7] = {"Q5_1", 32, 24, 1},
    [8] = {"Q8_0", 32, 34, 1},       [9] = {"Q8_1", 32, 40, 0},       [10] = {"Q2_K", 256, 84, 0},
    [11] = {"Q3_K", 256, 110, 0},    [12] = {"Q4_K", 256, 144, 1},    [13] = {"Q5_K", 256, 176, 1},
    [14] = {"Q6_K", 256, 210, 1},    [15] = {"Q8_K", 256, 292, 0},    [16] = {"IQ2_XXS", 256, 66, 0},
    [17] = {"IQ2_XS", 256, 74, 0},   [18] = {"IQ3_XXS", 256, 98, 0},  [19] = {"IQ1_S", 256, 50, 0},
    [20] = {"IQ4_NL", 32, 18, 0},    [21] = {"IQ3_S", 256, 110, 0},   [22] = {"IQ2_S", 256, 82, 0},
    [23] = {"IQ4_XS", 256, 136, 0},  [24] = {"I8", 1, 1, 0},          [25] = {"I16", 1, 2, 0},
    [26] = {"I32", 1, 4, 0},         [27] = {"I64", 1, 8, 0},         [28] = {"F64", 1, 8, 0},
    [29] = {"IQ1_M", 256, 56, 0},    [30] = {"BF16", 1, 2, 1},        [34] = {"TQ1_0", 256, 54, 0},
    [35] = {"TQ2_0", 256, 66, 0},    [39] = {"MXFP4", 32, 17, 0},     [40] = {"NVFP4", 64, 36, 0},
    [41] = {"Q1_0", 128, 18, 0},
};

static const type_traits *traits_of(uint32_t type) {
    if (type >= GM_GGML_TYPE_LIMIT || !traits[type].name) return NULL;
    return &traits[type];
}

const char *gm_ggml_type_name(uint32_t type) {
    const type_traits *t = traits_of(type);
    return t ? t->name : "unknown";
}

int gm_ggml_type_known(uint32_t type) { return traits_of(type) != NULL; }

int gm_ggml_type_supported(uint32_t type) {
    const type_traits *t = traits_of(type);
    return t && t->supported;
}

int gm_ggml_block_size(uint32_t type) {
    const type_traits *t = traits_of(type);
    return t ? t->block_size : 0;
}

int gm_ggml_type_size(uint32_t type) {
    const type_traits *t = traits_of(type);
    return t ? t->type_size : 0;
}

const char *gm_ggml_supported_list(void) { return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K"; }

size_t gm_ggml_row_bytes(uint32_t type, int64_t n) {
    const type_traits *t = traits_of(type);
    if (!t || n < 0 || n % t->block_size) return 0;
    uint64_t blocks = (uint64_t)n / (uint64_t)t->block_size;
    if (blocks > SIZE_MAX / (uint64_t)t->type_size) return 0;
    return (size_t)(blocks * (uint64_t)t->type_size);
}

/* ------------------------------------------------------------ byte access */

static inline float f16_at(const uint8_t *p) { return gm_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static inline uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------- 32-value blocks */

/* Q4_0: f16 d, 16 bytes of nibbles (low nibbles are values 0-15, high 16-31); w = d * (q - 8). */
static void dequant_q4_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((qs[j] & 0x0f) - 8);
        y[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

/* Q4_1: f16 d, f16 m, nibbles; w = (d * q) + m. */
static void dequant_q4_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        float lo = d * (float)(qs[j] & 0x0f);
        float hi = d * (float)(qs[j] >> 4);
        y[j] = lo + m;
        y[j + 16] = hi + m;
    }
}

/* Q5_0: f16 d, u32 of fifth bits (bit i for value i), nibbles; w = d * (q - 16). */
static void dequant_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* Q5_1: f16 d, f16 m, fifth bits, nibbles; w = (d * q) + m. */
static void dequant_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        float a = d * (float)lo;
        float c = d * (float)hi;
        y[j] = a + m;
        y[j + 16] = c + m;
    }
}

/* Q8_0: f16 d, 32 int8; w = q * d. */
static void dequant_q8_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ------------------------------------------------------ 256-value blocks */

void gm_ggml_k_scale_min(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3f;
        mn[j] = s[4 + j] & 0x3f;
        sc[4 + j] = (uint8_t)((s[8 + j] & 0x0f) | ((s[j] >> 2) & 0x30));
        mn[4 + j] = (uint8_t)((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
    }
}

/* Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles; sub-block j
 * (32 values) is nibble j & 1 of bytes 32*(j/2) ..., w = (d*sc) * q - (dmin*m).
 * Q5_K: the same with 32 bytes of fifth bits (bit j of byte l is the fifth
 * bit of value 32*j + l) between the scales and the nibbles. */
static void dequant_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    uint8_t sc[8], mn[8];
    gm_ggml_k_scale_min(b + 4, sc, mn);
    for (int j = 0; j < 8; j++) {
        float dj = d * (float)sc[j];
        float mj = dmin * (float)mn[j];
        const uint8_t *q = qs + 32 * (j / 2);
        int shift = 4 * (j & 1);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 0x0f) | (qh ? ((qh[l] >> j) & 1) << 4 : 0);
            float t = dj * (float)v;
            y[32 * j + l] = t - mj;
        }
    }
}

static void dequant_q4_k(const uint8_t *b, float *y) { dequant_k45(b, NULL, b + 16, y); }

static void dequant_q5_k(const uint8_t *b, float *y) { dequant_k45(b, b + 16, b + 48, y); }

/* Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 int8
 * scales, f16 d.  Two halves of 128 values; in half h value r takes nibble
 * r/64 of ql[64h + r%64] and bits 2*(r/32) of qh[32h + r%32]; the scale of
 * value i is scales[i/16]; w = (d * scale) * (q - 32). */
static void dequant_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128, *scales = b + 192;
    float d = f16_at(b + 208);
    float ds[16];
    for (int s = 0; s < 16; s++) ds[s] = d * (float)(int8_t)scales[s];
    for (int h = 0; h < 2; h++) {
        for (int r = 0; r < 128; r++) {
            int lo = (ql[64 * h + (r & 63)] >> (4 * (r >> 6))) & 0x0f;
            int hi = (qh[32 * h + (r & 31)] >> (2 * (r >> 5))) & 0x03;
            int i = 128 * h + r;
            y[i] = ds[i >> 4] * (float)((lo | (hi << 4)) - 32);
        }
    }
}

typedef void (*block_fn)(const uint8_t *block, float *out);

static block_fn block_dequantizer(uint32_t type) {
    switch (type) {
    case GM_GGML_Q4_0: return dequant_q4_0;
    case GM_GGML_Q4_1: return dequant_q4_1;
    case GM_GGML_Q5_0: return dequant_q5_0;
    case GM_GGML_Q5_1: return dequant_q5_1;
    case GM_GGML_Q8_0: return dequant_q8_0;
    case GM_GGML_Q4_K: return dequant_q4_k;
    case GM_GGML_Q5_K: return dequant_q5_k;
    case GM_GGML_Q6_K: return dequant_q6_k;
    default: return NULL;
    }
}

/* -------------------------------------------------------------- elements */

/* One value of the per-element types (F32, F16, BF16). */
static inline float element_at(uint32_t type, const uint8_t *p, int i) {
    switch (type) {
    case GM_GGML_F32: {
        float f;
        memcpy(&f, p + 4 * (size_t)i, 4);
        return f;
    }
    case GM_GGML_F16: return f16_at(p + 2 * (size_t)i);
    default: return gm_bf16_to_f32((uint16_t)(p[2 * (size_t)i] | (p[2 * (size_t)i + 1] << 8)));
    }
}

static int valid_row(uint32_t type, int n) {
    const type_traits *t = traits_of(type);
    return t && t->supported && n >= 0 && n % t->block_size == 0;
}

int gm_ggml_dequant_row(uint32_t type, const void *src, float *dst, int n) {
    if (!valid_row(type, n)) return -1;
    const uint8_t *p = src;
    block_fn fn = block_dequantizer(type);
    if (!fn) {
        for (int i = 0; i < n; i++) dst[i] = element_at(type, p, i);
        return 0;
    }
    const type_traits *t = traits_of(type);
    for (int i = 0; i < n; i += t->block_size, p += t->type_size) fn(p, dst + i);
    return 0;
}

float gm_ggml_dot_row(uint32_t type, const void *w, const float *x, int n) {
    if (!valid_row(type, n)) return NAN;
    const uint8_t *p = w;
    block_fn fn = block_dequantizer(type);
    float sum = 0.0f;
    if (!fn) {
        for (int i = 0; i < n; i++) sum += element_at(type, p, i) * x[i];
        return sum;
    }
    const type_traits *t = traits_of(type);
    float buf[GM_GGML_MAX_BLOCK];
    for (int i = 0; i < n; i += t->block_size, p += t->type_size) {
        fn(p, buf);
        for (int k = 0; k < t->block_size; k++) sum += buf[k] * x[i + k];
    }
    return sum;
}
