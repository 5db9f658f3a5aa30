/* jpeg_exact.h - the JPEG decoding steps whose rounding is a choice, done
 * the way libjpeg-turbo (PIL's decoder) does them, so that our JPEG pixels
 * are PIL's: the accurate integer IDCT ("islow", the default), fancy
 * (triangle) chroma upsampling with libjpeg's alternating biases and its
 * box fallback for chroma two samples wide or less, and the table-driven
 * YCbCr -> RGB conversion.  stb_image keeps the parsing and entropy
 * decoding, which are exact by definition; stb_decode.c plugs these in
 * through its kernel pointers (see third_party/stb/gemma-fixes.patch).
 *
 * The signatures are stb_image's kernel types (unsigned char = stbi_uc). */
#ifndef GM_JPEG_EXACT_H
#define GM_JPEG_EXACT_H

/* 8x8 dequantized coefficients (natural order) -> samples, out_stride apart. */
void gm_jpeg_idct_islow(unsigned char *out, int out_stride, short data[64]);
/* count pixels, `step` bytes apart in out (the 4th byte, if step is 4, is 255). */
void gm_jpeg_ycc_rgb(unsigned char *out, const unsigned char *y, const unsigned char *cb, const unsigned char *cr,
                     int count, int step);
/* One output row of a chroma plane upsampled 2x: w input samples from the
 * nearer row (and the next-nearer, for vertical filtering) -> out.  `hs`
 * is unused (stb_image's signature). */
unsigned char *gm_jpeg_upsample_h2v1(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs);
unsigned char *gm_jpeg_upsample_h1v2(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs);
unsigned char *gm_jpeg_upsample_h2v2(unsigned char *out, unsigned char *near, unsigned char *far, int w, int hs);

#endif
