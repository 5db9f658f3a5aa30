/* dtype.h - tensor element types and exact scalar conversions.
 * bf16 and f16 are widened bit-exactly; these scalar versions are the
 * reference the SIMD conversions are tested against. */
#ifndef GM_DTYPE_H
#define GM_DTYPE_H

#include <stdint.h>
#include <string.h>

typedef enum {
    GM_DT_F32 = 0,
    GM_DT_F16,
    GM_DT_BF16,
    GM_DT_U32,
    GM_DT_I32,
    GM_DT_U8,
    GM_DT_I8,
    GM_DT_F64,
    GM_DT_I64,
    GM_DT_U16,
    GM_DT_I16,
    GM_DT_BOOL,
    GM_DT_COUNT
} gm_dtype;

static inline int gm_dtype_size(gm_dtype t) {
    static const int sizes[GM_DT_COUNT] = {4, 2, 2, 4, 4, 1, 1, 8, 8, 2, 2, 1};
    return (t >= 0 && t < GM_DT_COUNT) ? sizes[t] : 0;
}

static inline float gm_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as torch/MLX/JAX do; NaN stays NaN. */
static inline uint16_t gm_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float gm_bf16_round(float f) { return gm_bf16_to_f32(gm_f32_to_bf16(f)); }

/* Round to nearest even, as numpy/MLX astype(float16) do: overflow gives inf,
 * small values become subnormals or signed zero, NaN stays a quiet NaN. */
static inline uint16_t gm_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);     /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                        /* below 2^-14: subnormal */
        if (a <= 0x33000000u) return (uint16_t)sign;              /* <= 2^-25 rounds to zero */
        uint32_t m = (a & 0x7fffffu) | 0x800000u, s = 126u - (a >> 23);
        uint32_t q = m >> s, rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    a -= 0x38000000u;                                             /* rebias the exponent 127 -> 15 */
    a += 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | (a >> 13));
}

static inline float gm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Read element i of a float-like array of dtype t as f32. */
static inline float gm_load_float(const void *p, gm_dtype t, size_t i) {
    switch (t) {
    case GM_DT_F32: { float f; memcpy(&f, (const char *)p + 4 * i, 4); return f; }
    case GM_DT_BF16: { uint16_t h; memcpy(&h, (const char *)p + 2 * i, 2); return gm_bf16_to_f32(h); }
    case GM_DT_F16: { uint16_t h; memcpy(&h, (const char *)p + 2 * i, 2); return gm_f16_to_f32(h); }
    default: return 0.0f;
    }
}

static inline int gm_dtype_is_float(gm_dtype t) { return t == GM_DT_F32 || t == GM_DT_BF16 || t == GM_DT_F16; }

#endif
