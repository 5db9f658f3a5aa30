/* resize.h - PIL's Image.resize(..., BILINEAR), bit for bit.
 *
 * Gemma 3's image processor resizes with PIL, and the vision tower was
 * trained on that output; any other "bilinear" (not antialiased, float, one
 * pass) differs by several levels on downscales.  This is Pillow's
 * Resample.c algorithm as described in the spec (§3.1), rewritten here, plus
 * the pass orders of recent Pillow releases. */
#ifndef GM_RESIZE_H
#define GM_RESIZE_H

#include <stddef.h>
#include <stdint.h>

/* Resize a w x h RGB image (3 bytes per pixel, `stride` bytes per row) to
 * ow x oh (tight rows) into dst.  Same size: a copy.  pillow_version
 * (major * 100 + minor, 0 = latest) picks the pass order of that Pillow
 * (see gm_resize_vertical_first).  Returns 0 when out of memory (a few
 * small buffers and one intermediate image), 1 on success. */
int gm_resize_bilinear_rgb(const uint8_t *src, int w, int h, size_t stride, uint8_t *dst, int ow, int oh,
                           int pillow_version);
/* Whether that Pillow resizes w x h -> ow x oh vertically first.  Measured
 * on Pillow 12.1.1, 12.2.0, 12.3.0 and 13.0.0: up to 12.1 never; 12.2 when
 * the height shrinks and is over 100x the width (Image.resize, PR #9524);
 * 13.0 when the height shrinks by more than twice the pixels the width does
 * (Resample.c, PR #9549). */
int gm_resize_vertical_first(int w, int h, int ow, int oh, int pillow_version);

#endif
