/* fuzz_image.c - libFuzzer target: arbitrary bytes as an image file.
 * Every input must either decode (to a picture within the limits given,
 * whose every pixel can be read, and which preprocesses, pan and scan
 * included, to finite values in [-1, 1]) or fail with a one-line message
 * naming the input; never crash, leak or read out of bounds.  The first
 * byte's low bit picks the name, so the TGA path (known by extension only)
 * is reached too. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);   /* exact-size heap copy: ASan sees overreads */
    if (!copy) return 0;
    memcpy(copy, data, size);
    const char *name = size && (data[0] & 1) ? "fuzz.tga" : "fuzz.img";
    gemma_image_load_options lim = {.max_side = 2048, .max_pixels = 1 << 18};   /* keep each run fast */
    gemma_image *img = NULL;
    gemma_error err;
    if (gemma_image_load_memory(copy, size, name, &lim, &img, &err) != GEMMA_OK) {
        if (img || strchr(err.message, '\n') || strncmp(err.message, name, strlen(name)) != 0) abort();
        free(copy);
        return 0;
    }
    int w = gemma_image_width(img), h = gemma_image_height(img);
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > lim.max_pixels) abort();
    const uint8_t *px = gemma_image_rgb(img);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) sink ^= px[i];
    (void)sink;
    gemma_preprocess_options o = gemma_preprocess_default_options();
    o.size = 8;
    o.pan_and_scan = 1;
    o.pan_and_scan_min_crop_size = 1 + (size ? data[size - 1] % 4 : 0);
    o.pan_and_scan_max_num_crops = 4;
    size_t n = gemma_image_preprocess_floats(img, &o);
    float *out = malloc(n * sizeof *out);
    int crops = 0;
    if (out && gemma_image_preprocess(img, &o, out, n, NULL, &crops, &err) == GEMMA_OK) {
        for (size_t i = 0; i < n; i++)
            if (!(out[i] >= -1.0f && out[i] <= 1.0f)) abort();
    } else if (out && err.code != GEMMA_ERR_ARG) {   /* only an empty pan-and-scan crop may refuse */
        abort();
    }
    free(out);
    gemma_image_free(img);
    free(copy);
    return 0;
}
