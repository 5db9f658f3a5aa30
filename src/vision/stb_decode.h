/* stb_decode.h - the narrow door to stb_image.
 *
 * stb_image is compiled static inside stb_decode.c only (its warnings off,
 * its allocations capped), so the rest of the library sees these few gm_
 * calls and never an stbi_ symbol. */
#ifndef GM_STB_DECODE_H
#define GM_STB_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Width, height and channels in the file (1 grey, 2 grey+alpha, 3 RGB, 4
 * RGBA; palettes count as 3 or 4) from the header alone.  0 if stb_image
 * does not recognise or cannot parse the header. */
int gm_stb_info(const uint8_t *data, size_t n, int *w, int *h, int *channels);
/* Decode at 8 bits per channel (16-bit samples keep their high byte), in the
 * file's own channel count.  NULL on failure: gm_stb_failure() says why. */
uint8_t *gm_stb_load8(const uint8_t *data, size_t n, int *w, int *h, int *channels);
/* Decode keeping 16-bit samples (8-bit ones are widened by stb_image). */
uint16_t *gm_stb_load16(const uint8_t *data, size_t n, int *w, int *h, int *channels);
void gm_stb_free(void *pixels);
/* stb_image's reason for the last failure on this thread (never NULL). */
const char *gm_stb_failure(void);

#endif
