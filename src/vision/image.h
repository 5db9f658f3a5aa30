/* image.h - decoded pictures (the struct behind the public gemma_image).
 *
 * Decoding is done by stb_image (stb_decode.h); this layer makes the result
 * what PIL's exif_transpose + convert("RGB") would give, and refuses what
 * PIL would refuse or what we cannot match (bombs, truncation, CMYK). */
#ifndef GM_IMAGE_H
#define GM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "gemma.h"

struct gemma_image {
    int w, h;
    uint8_t *rgb;          /* h rows of w * 3 bytes */
    const char *format;    /* static string: "png", "jpeg", ... */
};

/* The EXIF orientation (1..8) in a TIFF-structured blob (what follows
 * "Exif\0\0" in a JPEG APP1 segment, or a PNG eXIf chunk); 1 when absent or
 * unreadable, as PIL treats it. */
int gm_exif_orientation(const uint8_t *tiff, size_t n);
/* Apply orientation o to a w x h RGB image: a new buffer (NULL: out of
 * memory) and the new size in *ow, *oh.  o == 1 copies. */
uint8_t *gm_rgb_orient(const uint8_t *rgb, int w, int h, int o, int *ow, int *oh);

#endif
