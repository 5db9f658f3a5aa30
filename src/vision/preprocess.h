/* preprocess.h - Gemma 3's image processor: pan-and-scan crops, resize,
 * rescale and normalise (the public side is gemma_image_preprocess). */
#ifndef GM_PREPROCESS_H
#define GM_PREPROCESS_H

#include "gemma.h"

typedef struct {
    int x, y, w, h;
} gm_crop;

/* The crops HF's Gemma3ImageProcessor.pan_and_scan cuts from a w x h image,
 * in its order (row-major over the grid); the whole image is not included.
 * Writes up to cap rects and returns how many there are (0: none, the
 * image is too square or the crops would be too small). */
int gm_pan_and_scan(int w, int h, const gemma_preprocess_options *o, gm_crop *crops, int cap);

/* NULL if the options are valid, else what is wrong with them. */
const char *gm_preprocess_options_problem(const gemma_preprocess_options *o);

#endif
