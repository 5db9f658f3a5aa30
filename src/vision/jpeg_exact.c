/* jpeg_exact.c - libjpeg-turbo's rounding for the IDCT, chroma upsampling
 * and colour conversion (see jpeg_exact.h for why).
 *
 * The IDCT is the Loeffler-Ligtenberg-Moschytz factorisation with 13-bit
 * fixed-point constants and 2 extra bits kept between the column and the
 * row pass, the JPEG standard's "accurate integer" method.  Every constant,
 * shift and rounding term below is part of the result: change one and some
 * pixels move by a level.  Products are computed in 64 bits (libjpeg-turbo's
 * JLONG on LP64), so corrupt coefficients wrap nowhere. */
#include "vision/jpeg_exact.h"

#include <stdint.h>

#define CONST_BITS 13
#define PASS1_BITS 2
#define FIX(x) ((int64_t)((x) * (1 << CONST_BITS) + 0.5))
#define FIX16(x) ((int64_t)((x) * 65536 + 0.5))   /* the colour tables' 16-bit scale */
/* (x + 2^(n-1)) >> n, arithmetic shift as libjpeg's RIGHT_SHIFT */
#define DESCALE(x, n) (((x) + ((int64_t)1 << ((n) - 1))) >> (n))

/* What libjpeg's range_limit[v & 1023] table gives for an IDCT output v
 * (centred on 0): v + 128 clamped to 0..255 for |v| < 512, and the table's
 * wrap-around beyond (only corrupt data gets there). */
static unsigned char range_limit(int64_t v) {
    int i = (int)(v & 1023);
    if (i < 128) return (unsigned char)(i + 128);
    if (i < 512) return 255;
    if (i < 896) return 0;
    return (unsigned char)(i - 896);
}

/* One 8-point 1-D inverse DCT of in[0], in[s], ... in[7s]; out[k] before descaling. */
static void idct_1d(const int64_t in[8], int64_t out[8]) {
    /* even part: the rotator is sqrt(2) * c(-6) */
    int64_t z2 = in[2], z3 = in[6];
    int64_t z1 = (z2 + z3) * FIX(0.541196100);
    int64_t tmp2 = z1 + z3 * -FIX(1.847759065);
    int64_t tmp3 = z1 + z2 * FIX(0.765366865);
    int64_t tmp0 = (in[0] + in[4]) * (1 << CONST_BITS);
    int64_t tmp1 = (in[0] - in[4]) * (1 << CONST_BITS);
    int64_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

    /* odd part */
    tmp0 = in[7];
    tmp1 = in[5];
    tmp2 = in[3];
    tmp3 = in[1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    int64_t z4 = tmp1 + tmp3;
    int64_t z5 = (z3 + z4) * FIX(1.175875602);
    tmp0 *= FIX(0.298631336);
    tmp1 *= FIX(2.053119869);
    tmp2 *= FIX(3.072711026);
    tmp3 *= FIX(1.501321110);
    z1 *= -FIX(0.899976223);
    z2 *= -FIX(2.562915447);
    z3 = z3 * -FIX(1.961570560) + z5;
    z4 = z4 * -FIX(0.390180644) + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    out[0] = tmp10 + tmp3;
    out[7] = tmp10 - tmp3;
    out[1] = tmp11 + tmp2;
    out[6] = tmp11 - tmp2;
    out[2] = tmp12 + tmp1;
    out[5] = tmp12 - tmp1;
    out[3] = tmp13 + tmp0;
    out[4] = tmp13 - tmp0;
}

void gm_jpeg_idct_islow(unsigned char *out, int out_stride, short data[64]) {
    int ws[64];   /* libjpeg keeps the column pass in int */
    int64_t v[8], r[8];
    for (int col = 0; col < 8; col++) {
        for (int k = 0; k < 8; k++) v[k] = data[k * 8 + col];
        idct_1d(v, r);
        for (int k = 0; k < 8; k++) ws[k * 8 + col] = (int)DESCALE(r[k], CONST_BITS - PASS1_BITS);
    }
    for (int row = 0; row < 8; row++) {
        for (int k = 0; k < 8; k++) v[k] = ws[row * 8 + k];
        idct_1d(v, r);
        for (int k = 0; k < 8; k++)
            out[row * out_stride + k] = range_limit(DESCALE(r[k], CONST_BITS + PASS1_BITS + 3));
    }
}

/* JFIF YCbCr with libjpeg's 16-bit tables: R = Y + round(1.402 Cr),
 * B = Y + round(1.772 Cb), G = Y + floor(-0.34414 Cb - 0.71414 Cr + 1/2). */
void gm_jpeg_ycc_rgb(unsigned char *out, const unsigned char *y, const unsigned char *cb, const unsigned char *cr,
                     int count, int step) {
    const int64_t half = (int64_t)1 << 15;
    for (int i = 0; i < count; i++, out += step) {
        int64_t yy = y[i], b = cb[i] - 128, r = cr[i] - 128;
        int64_t rgb[3] = {
            yy + ((FIX16(1.40200) * r + half) >> 16),
            yy + ((-FIX16(0.34414) * b + half + -FIX16(0.71414) * r) >> 16),
            yy + ((FIX16(1.77200) * b + half) >> 16),
        };
        for (int c = 0; c < 3; c++) out[c] = (unsigned char)(rgb[c] < 0 ? 0 : rgb[c] > 255 ? 255 : rgb[c]);
        if (step == 4) out[3] = 255;
    }
}

/* libjpeg's fancy upsampling works only when the chroma row is wider than
 * two samples; below that it repeats samples (and rows) instead. */
static unsigned char *box_h2(unsigned char *out, const unsigned char *near, int w) {
    for (int i = 0; i < w; i++) out[2 * i] = out[2 * i + 1] = near[i];
    return out;
}

unsigned char *gm_jpeg_upsample_h2v1(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs) {
    (void)far;
    (void)hs;
    if (w <= 2) return box_h2(out, near, w);
    out[0] = near[0];
    out[1] = (unsigned char)((near[0] * 3 + near[1] + 2) >> 2);
    for (int i = 1; i < w - 1; i++) {   /* 3/4 nearer + 1/4 further, biases 1 and 2 */
        int v = near[i] * 3;
        out[2 * i] = (unsigned char)((v + near[i - 1] + 1) >> 2);
        out[2 * i + 1] = (unsigned char)((v + near[i + 1] + 2) >> 2);
    }
    out[2 * w - 2] = (unsigned char)((near[w - 1] * 3 + near[w - 2] + 1) >> 2);
    out[2 * w - 1] = near[w - 1];
    return out;
}

/* The bias is 1 for the upper output row of a chroma row (the next-nearer
 * row is the one above) and 2 for the lower.  stb_image hands the rows as
 * pointers into one plane, so "above" is the lower address; when both are
 * the same row (the image's edges) the bias cannot change the result. */
unsigned char *gm_jpeg_upsample_h1v2(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs) {
    (void)hs;
    int bias = far < near ? 1 : 2;
    for (int i = 0; i < w; i++) out[i] = (unsigned char)((near[i] * 3 + far[i] + bias) >> 2);
    return out;
}

unsigned char *gm_jpeg_upsample_h2v2(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs) {
    (void)hs;
    if (w <= 2) return box_h2(out, near, w);
    /* column sums 3 * nearer row + further row, then 3/4 + 1/4 across, biases 8 and 7 */
    int last = near[0] * 3 + far[0], cur = last, next = near[1] * 3 + far[1];
    out[0] = (unsigned char)((cur * 4 + 8) >> 4);
    out[1] = (unsigned char)((cur * 3 + next + 7) >> 4);
    for (int i = 1; i < w - 1; i++) {
        last = cur;
        cur = next;
        next = near[i + 1] * 3 + far[i + 1];
        out[2 * i] = (unsigned char)((cur * 3 + last + 8) >> 4);
        out[2 * i + 1] = (unsigned char)((cur * 3 + next + 7) >> 4);
    }
    out[2 * w - 2] = (unsigned char)((next * 3 + cur + 8) >> 4);
    out[2 * w - 1] = (unsigned char)((next * 4 + 7) >> 4);
    return out;
}
