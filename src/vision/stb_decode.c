/* stb_decode.c - the one translation unit that compiles stb_image.
 *
 * STB_IMAGE_STATIC keeps every stbi_ function inside this object (no clash
 * with an application's own copy).  Left out: HDR and PIC (PIL cannot open
 * them, so nothing says what their pixels should be), PSD (no reference
 * files we can make, and its raw reader fills truncated data with zeros)
 * and PNM (image.c reads it: stb_image 2.27 returns 16-bit samples
 * byte-swapped and leaves a truncated file's pixels uninitialised).
 * Allocations are capped: stb_image sizes its buffers from headers and grows
 * the inflate buffer as long as a zlib stream keeps producing, so a small
 * crafted PNG could otherwise ask for gigabytes.  The cap covers the largest
 * image the loader accepts (GEMMA_IMAGE_MAX_PIXELS at 4 channels x 16 bits,
 * plus PNG filter bytes).  This file is compiled with warnings off (cmake),
 * which is why the wrapper below is kept tiny. */
#include "vision/stb_decode.h"
#include "gemma.h"
#include "vision/jpeg_exact.h"

#include <limits.h>
#include <stdlib.h>

#define GM_STB_MAX_ALLOC ((size_t)GEMMA_IMAGE_MAX_PIXELS * 8u + ((size_t)64 << 20))

static void *gm_stb_capped_malloc(size_t n) { return n > GM_STB_MAX_ALLOC ? NULL : malloc(n); }
static void *gm_stb_capped_realloc(void *p, size_t n) { return n > GM_STB_MAX_ALLOC ? NULL : realloc(p, n); }

#define STBI_MALLOC(sz) gm_stb_capped_malloc(sz)
#define STBI_REALLOC(p, sz) gm_stb_capped_realloc(p, sz)
#define STBI_FREE(p) free(p)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_PIC
#define STBI_NO_PSD
#define STBI_NO_PNM
#define STBI_FAILURE_USERMSG
/* libjpeg-turbo's rounding instead of stb_image's own (jpeg_exact.h) */
#define STBI_JPEG_KERNELS(j)                                  \
    ((j)->idct_block_kernel = gm_jpeg_idct_islow,            \
     (j)->YCbCr_to_RGB_kernel = gm_jpeg_ycc_rgb,             \
     (j)->resample_row_hv_2_kernel = gm_jpeg_upsample_h2v2)
#define STBI_JPEG_RESAMPLE_H2 gm_jpeg_upsample_h2v1
#define STBI_JPEG_RESAMPLE_V2 gm_jpeg_upsample_h1v2
#include "../../third_party/stb/stb_image.h"

int gm_stb_info(const uint8_t *data, size_t n, int *w, int *h, int *channels) {
    if (n > INT_MAX) return 0;
    return stbi_info_from_memory(data, (int)n, w, h, channels);
}

uint8_t *gm_stb_load8(const uint8_t *data, size_t n, int *w, int *h, int *channels) {
    if (n > INT_MAX) return NULL;
    return stbi_load_from_memory(data, (int)n, w, h, channels, 0);
}

uint16_t *gm_stb_load16(const uint8_t *data, size_t n, int *w, int *h, int *channels) {
    if (n > INT_MAX) return NULL;
    return stbi_load_16_from_memory(data, (int)n, w, h, channels, 0);
}

void gm_stb_free(void *pixels) { stbi_image_free(pixels); }

const char *gm_stb_failure(void) {
    const char *r = stbi_failure_reason();
    return r ? r : "unknown decoder error";
}
