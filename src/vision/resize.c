/* resize.c - PIL's antialiased BILINEAR resize (see resize.h).
 *
 * Each axis is a convolution with a triangle filter stretched by the
 * downscale factor; weights are computed in double, normalised, rounded to
 * 22-bit fixed point, and each pass rounds to uint8 (horizontal first).
 * The exact double expressions and their order are part of the contract:
 * a weight one ulp off rounds differently and moves a pixel by one level,
 * which is why this file is built with -ffp-contract=off. */
#include "vision/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22   /* 32 bits - 8 for the pixel - 2 of headroom */

typedef struct {
    int ksize;        /* taps per output sample (the row length of kk) */
    int *bounds;      /* per output sample: first input index, number of taps */
    int32_t *kk;      /* out * ksize fixed-point weights */
} coeffs;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int precompute(int in, int out, coeffs *c) {
    double scale = ((double)in - 0.0) / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;   /* the triangle's support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc((size_t)out * 2 * sizeof *c->bounds);
    c->kk = malloc((size_t)out * (size_t)ksize * sizeof *c->kk);
    double *k = malloc((size_t)ksize * sizeof *k);
    if (!c->bounds || !c->kk || !k) {
        free(k);
        return 0;
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double w = triangle((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        int32_t *kr = c->kk + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
            kr[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(k);
    return 1;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->kk);
}

static uint8_t clip8(int32_t v) {
    if (v <= 0) return 0;
    if (v >= (int32_t)1 << (PRECISION_BITS + 8)) return 255;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* rows [y0, y1) of src, horizontally resampled into dst (tight rows of ow) */
static void horizontal(const uint8_t *src, size_t stride, int y0, int y1, const coeffs *c, int ow, uint8_t *dst) {
    for (int y = y0; y < y1; y++) {
        const uint8_t *row = src + (size_t)y * stride;
        uint8_t *o = dst + (size_t)(y - y0) * ow * 3;
        for (int xx = 0; xx < ow; xx++) {
            int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int32_t *k = c->kk + (size_t)xx * c->ksize;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            const uint8_t *p = row + (size_t)xmin * 3;
            for (int x = 0; x < xmax; x++, p += 3) {
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            o[xx * 3] = clip8(s0);
            o[xx * 3 + 1] = clip8(s1);
            o[xx * 3 + 2] = clip8(s2);
        }
    }
}

/* src rows are indexed from `first` (the first row the coefficients use) */
static void vertical(const uint8_t *src, size_t stride, int first, int w, const coeffs *c, int oh, uint8_t *dst) {
    for (int yy = 0; yy < oh; yy++) {
        int ymin = c->bounds[yy * 2] - first, ymax = c->bounds[yy * 2 + 1];
        const int32_t *k = c->kk + (size_t)yy * c->ksize;
        uint8_t *o = dst + (size_t)yy * w * 3;
        for (int xx = 0; xx < w * 3; xx++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            const uint8_t *p = src + (size_t)ymin * stride + xx;
            for (int y = 0; y < ymax; y++, p += stride) s += *p * k[y];
            o[xx] = clip8(s);
        }
    }
}

int gm_resize_vertical_first(int w, int h, int ow, int oh, int pillow_version) {
    if (oh >= h) return 0;
    if (pillow_version == 0 || pillow_version >= 1300) return (int64_t)h - oh > 2 * ((int64_t)w - ow);
    if (pillow_version >= 1202) return (int64_t)h > (int64_t)w * 100;
    return 0;
}

int gm_resize_bilinear_rgb(const uint8_t *src, int w, int h, size_t stride, uint8_t *dst, int ow, int oh,
                           int pillow_version) {
    if (ow == w && oh == h) {   /* PIL returns a copy */
        for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * ow * 3, src + (size_t)y * stride, (size_t)w * 3);
        return 1;
    }
    coeffs ch = {0}, cv = {0};
    int ok = 0;
    uint8_t *tmp = NULL;
    if (ow != w && !precompute(w, ow, &ch)) goto done;
    if (oh != h && !precompute(h, oh, &cv)) goto done;
    if (oh == h) {
        horizontal(src, stride, 0, h, &ch, ow, dst);
        ok = 1;
        goto done;
    }
    if (ow == w) {
        vertical(src, stride, 0, w, &cv, oh, dst);
        ok = 1;
        goto done;
    }
    /* the order changes the uint8 intermediate, so it is part of the result */
    if (gm_resize_vertical_first(w, h, ow, oh, pillow_version)) {
        tmp = malloc((size_t)w * 3 * (size_t)oh);
        if (!tmp) goto done;
        vertical(src, stride, 0, w, &cv, oh, tmp);
        horizontal(tmp, (size_t)w * 3, 0, oh, &ch, ow, dst);
        ok = 1;
        goto done;
    }
    /* only the rows the vertical pass reads are resampled horizontally */
    int first = cv.bounds[0], last = cv.bounds[(oh - 1) * 2] + cv.bounds[(oh - 1) * 2 + 1];
    tmp = malloc((size_t)ow * 3 * (size_t)(last - first));
    if (!tmp) goto done;
    horizontal(src, stride, first, last, &ch, ow, tmp);
    vertical(tmp, (size_t)ow * 3, first, ow, &cv, oh, dst);
    ok = 1;
done:
    free(tmp);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return ok;
}
