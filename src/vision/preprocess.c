/* preprocess.c - pixel values for the vision tower, as HF computes them.
 *
 * Gemma3ImageProcessor (PIL backend, what mlx-vlm uses): optional pan and
 * scan crops of the uint8 image, each image resized with PIL's BILINEAR,
 * then float32(float64(v) * (1/255)), then (v - mean) / std in float32.
 * After the resize every output value is a function of one uint8 and its
 * channel, so the float part is a 256-entry table per channel, computed with
 * exactly the roundings numpy applies. */
#include "vision/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "vision/image.h"
#include "vision/resize.h"

#define MAX_SIZE 4096
#define MAX_CROPS 1024

gemma_preprocess_options gemma_preprocess_default_options(void) {
    gemma_preprocess_options o = {
        .size = 896,
        .mean = {0.5f, 0.5f, 0.5f},
        .std = {0.5f, 0.5f, 0.5f},
        .pan_and_scan = 0,
        .pan_and_scan_min_crop_size = 256,
        .pan_and_scan_max_num_crops = 4,
        .pan_and_scan_min_ratio_to_activate = 1.2,
        .layout = GEMMA_LAYOUT_CHW,
    };
    return o;
}

const char *gm_preprocess_options_problem(const gemma_preprocess_options *o) {
    if (o->size < 1 || o->size > MAX_SIZE) return "size must be 1..4096";
    for (int c = 0; c < 3; c++) {
        if (!isfinite(o->mean[c])) return "mean must be finite";
        if (!isfinite(o->std[c]) || o->std[c] == 0.0f) return "std must be finite and non-zero";
    }
    if (o->layout != GEMMA_LAYOUT_CHW && o->layout != GEMMA_LAYOUT_HWC) return "layout must be CHW or HWC";
    if (o->pillow_version < 0) return "pillow_version must be 0 (latest) or major * 100 + minor";
    if (!o->pan_and_scan) return NULL;
    /* HF divides by both (ZeroDivisionError at 0) */
    if (o->pan_and_scan_min_crop_size < 1) return "pan_and_scan_min_crop_size must be at least 1";
    if (o->pan_and_scan_max_num_crops < 1 || o->pan_and_scan_max_num_crops > MAX_CROPS)
        return "pan_and_scan_max_num_crops must be 1..1024";
    if (!isfinite(o->pan_and_scan_min_ratio_to_activate)) return "pan_and_scan_min_ratio_to_activate must be finite";
    return NULL;
}

/* Python's arithmetic in HF's pan_and_scan is double division with
 * math.floor / math.ceil, which C's double reproduces exactly; the ratio
 * threshold must stay a double too (1.2f would flip a 600x500 image). */
int gm_pan_and_scan(int w, int h, const gemma_preprocess_options *o, gm_crop *crops, int cap) {
    if (!o->pan_and_scan || w <= 0 || h <= 0) return 0;
    int long_side = w >= h ? w : h, short_side = w >= h ? h : w;
    if ((double)long_side / short_side < o->pan_and_scan_min_ratio_to_activate) return 0;
    int n = (int)floor((double)long_side / short_side + 0.5);
    int by_size = (int)floor((double)long_side / o->pan_and_scan_min_crop_size);
    if (by_size < n) n = by_size;
    if (n < 2) n = 2;
    if (n > o->pan_and_scan_max_num_crops) n = o->pan_and_scan_max_num_crops;
    int ncw = w >= h ? n : 1, nch = w >= h ? 1 : n;
    int cw = (int)ceil((double)w / ncw), chh = (int)ceil((double)h / nch);
    if ((cw < chh ? cw : chh) < o->pan_and_scan_min_crop_size) return 0;
    int k = 0;
    for (int i = 0; i < nch; i++)
        for (int j = 0; j < ncw; j++, k++) {
            if (k >= cap) continue;
            /* numpy slicing clips the last crop at the image edge */
            int x = cw * j, y = chh * i;
            crops[k].x = x;
            crops[k].y = y;
            crops[k].w = x >= w ? 0 : (x + cw > w ? w - x : cw);
            crops[k].h = y >= h ? 0 : (y + chh > h ? h - y : chh);
        }
    return k;
}

int gemma_image_n_crops(const gemma_image *img, const gemma_preprocess_options *opts) {
    gemma_preprocess_options d = gemma_preprocess_default_options();
    const gemma_preprocess_options *o = opts ? opts : &d;
    if (!img || gm_preprocess_options_problem(o)) return 0;
    return 1 + gm_pan_and_scan(img->w, img->h, o, NULL, 0);
}

size_t gemma_image_preprocess_floats(const gemma_image *img, const gemma_preprocess_options *opts) {
    gemma_preprocess_options d = gemma_preprocess_default_options();
    const gemma_preprocess_options *o = opts ? opts : &d;
    int n = gemma_image_n_crops(img, o);
    return n ? (size_t)n * 3 * (size_t)o->size * (size_t)o->size : 0;
}

/* table[c][v]: numpy's float32((float64(v) * (1/255)).astype(float32) - mean) / std */
static void make_table(const gemma_preprocess_options *o, float table[3][256]) {
    const double rescale = 1.0 / 255.0;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * rescale);
            float centred = x - o->mean[c];
            table[c][v] = centred / o->std[c];
        }
}

static void write_floats(const uint8_t *px, int size, gemma_pixel_layout layout, float table[3][256], float *out) {
    size_t plane = (size_t)size * size;
    if (layout == GEMMA_LAYOUT_HWC) {
        for (size_t i = 0; i < plane * 3; i++) out[i] = table[i % 3][px[i]];
        return;
    }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) out[c * plane + i] = table[c][px[i * 3 + c]];
}

gemma_status gemma_image_preprocess(const gemma_image *img, const gemma_preprocess_options *opts, float *out,
                                    size_t cap, size_t *n_floats, int *n_crops, gemma_error *err) {
    if (!img) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_preprocess: image is NULL");
    gemma_preprocess_options d = gemma_preprocess_default_options();
    const gemma_preprocess_options *o = opts ? opts : &d;
    const char *problem = gm_preprocess_options_problem(o);
    if (problem) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_preprocess: %s", problem);
    int n_pas = gm_pan_and_scan(img->w, img->h, o, NULL, 0);
    size_t per = (size_t)3 * o->size * o->size, need;
    if (!gm_mul_size(per, (size_t)n_pas + 1, &need))
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_preprocess: output size overflows");
    if (n_floats) *n_floats = need;
    if (n_crops) *n_crops = n_pas + 1;
    if (cap < need || !out)
        return gm_fail(err, GEMMA_ERR_BUFFER, "gemma_image_preprocess: %d image(s) of 3x%dx%d need %zu floats, got room for %zu",
                       n_pas + 1, o->size, o->size, need, cap);
    gm_crop *crops = malloc(((size_t)n_pas + 1) * sizeof *crops);
    uint8_t *px = malloc(per);
    if (!crops || !px) {
        free(crops);
        free(px);
        return gm_fail(err, GEMMA_ERR_NOMEM, "gemma_image_preprocess: out of memory");
    }
    crops[0] = (gm_crop){0, 0, img->w, img->h};
    gm_pan_and_scan(img->w, img->h, o, crops + 1, n_pas);
    float table[3][256];
    make_table(o, table);
    gemma_status st = GEMMA_OK;
    for (int i = 0; i <= n_pas; i++) {
        const gm_crop *c = &crops[i];
        if (c->w <= 0 || c->h <= 0) {
            st = gm_fail(err, GEMMA_ERR_ARG,
                         "gemma_image_preprocess: pan and scan crop %d of the %dx%d image is empty with these options", i,
                         img->w, img->h);
            break;
        }
        size_t stride = (size_t)img->w * 3;
        const uint8_t *src = img->rgb + (size_t)c->y * stride + (size_t)c->x * 3;
        if (!gm_resize_bilinear_rgb(src, c->w, c->h, stride, px, o->size, o->size, o->pillow_version)) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "gemma_image_preprocess: out of memory resizing %dx%d", c->w, c->h);
            break;
        }
        write_floats(px, o->size, o->layout, table, out + (size_t)i * per);
    }
    free(crops);
    free(px);
    if (st == GEMMA_OK) gm_ok(err);
    return st;
}
