/* image.c - image files to the RGB pixels PIL would give.
 *
 * Hugging Face's load_image (and mlx-vlm's) does
 * ImageOps.exif_transpose(Image.open(f)).convert("RGB"); the reference
 * outputs we are compared with start from what that returns, so that is the
 * contract, quirks included: alpha is dropped rather than composited, 16-bit
 * grey PNGs are clipped to 255 (PIL's I;16 -> RGB), other 16-bit samples
 * keep their high byte, PNM samples are rescaled from maxval.
 *
 * stb_image does the decoding (JPEG with libjpeg-turbo's rounding, see
 * jpeg_exact.h), except PNM, read here.  Around it this file adds what a library
 * that takes files from users needs and stb_image does not do: limits read
 * from the header before anything is allocated, refusal of CMYK/YCCK JPEGs
 * (which stb_image would decode with the wrong colours), truncation checks
 * where stb_image would silently fill the missing part with zeros, the
 * EXIF orientation, and one-line errors naming the file. */
#include "vision/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mapfile.h"
#include "vision/stb_decode.h"

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_GIF, FMT_PNM, FMT_TGA } img_format;

static const char *const format_names[] = {"unknown", "png", "jpeg", "bmp", "gif", "pnm", "tga"};

#define SUPPORTED "supported: PNG, JPEG, BMP, GIF, PNM, TGA"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[1] << 8 | p[0]); }

static int has_prefix(const uint8_t *d, size_t n, const char *magic, size_t len) {
    return n >= len && memcmp(d, magic, len) == 0;
}

static int name_ends_with(const char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    if (n < e) return 0;
    for (size_t i = 0; i < e; i++) {
        char c = name[n - e + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != ext[i]) return 0;
    }
    return 1;
}

/* TGA has no magic number: PIL goes by what the caller says it is, so do we
 * (the extension, or the TGA 2.0 footer).  Without this, stb_image's lax TGA
 * probe would accept many non-image files as garbage pictures. */
static img_format sniff(const uint8_t *d, size_t n, const char *name) {
    if (has_prefix(d, n, "\x89PNG\r\n\x1a\n", 8)) return FMT_PNG;
    if (has_prefix(d, n, "\xff\xd8\xff", 3)) return FMT_JPEG;
    if (has_prefix(d, n, "BM", 2)) return FMT_BMP;
    if (has_prefix(d, n, "GIF87a", 6) || has_prefix(d, n, "GIF89a", 6)) return FMT_GIF;
    if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6')) return FMT_PNM;
    if (name_ends_with(name, ".tga") || (n >= 18 && memcmp(d + n - 18, "TRUEVISION-XFILE.", 18) == 0)) return FMT_TGA;
    return FMT_UNKNOWN;
}

/* A better message than "unrecognised" for the formats people actually try. */
static const char *known_unsupported(const uint8_t *d, size_t n) {
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (has_prefix(d, n, "II*\0", 4) || has_prefix(d, n, "MM\0*", 4)) return "TIFF";
    if (has_prefix(d, n, "#?RADIANCE", 10) || has_prefix(d, n, "#?RGBE", 6)) return "Radiance HDR";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    if (has_prefix(d, n, "\0\0\1\0", 4)) return "ICO";
    if (has_prefix(d, n, "8BPS", 4)) return "PSD";
    if (n >= 132 && memcmp(d + 128, "DICM", 4) == 0) return "DICOM";
    if (has_prefix(d, n, "\xff\x0a", 2) || has_prefix(d, n, "\0\0\0\x0cJXL ", 8)) return "JPEG XL";
    if (has_prefix(d, n, "\0\0\0\x0cjP  ", 8) || has_prefix(d, n, "\xff\x4f\xff\x51", 4)) return "JPEG 2000";
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '4') return "ASCII PNM";
    return NULL;
}

/* ------------------------------------------------------------------ EXIF */

int gm_exif_orientation(const uint8_t *t, size_t n) {
    if (!t || n < 8) return 1;
    int little;
    if (memcmp(t, "II*\0", 4) == 0) little = 1;
    else if (memcmp(t, "MM\0*", 4) == 0) little = 0;
    else return 1;
    uint32_t ifd = little ? le32(t + 4) : be32(t + 4);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = little ? le16(t + ifd) : be16(t + ifd);
    for (unsigned i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 1;
        unsigned tag = little ? le16(t + e) : be16(t + e);
        if (tag != 0x0112) continue;
        unsigned type = little ? le16(t + e + 2) : be16(t + e + 2);
        uint32_t cnt = little ? le32(t + e + 4) : be32(t + e + 4);
        if (cnt != 1) return 1;   /* PIL gets a tuple then, which matches no orientation */
        long v;
        if (type == 3 || type == 8) {   /* SHORT, SSHORT */
            unsigned u = little ? le16(t + e + 8) : be16(t + e + 8);
            v = type == 8 ? (long)(int16_t)u : (long)u;
        } else if (type == 4 || type == 9) {   /* LONG, SLONG */
            uint32_t u = little ? le32(t + e + 8) : be32(t + e + 8);
            v = type == 9 ? (long)(int32_t)u : (long)u;
        } else {
            return 1;
        }
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

uint8_t *gm_rgb_orient(const uint8_t *rgb, int w, int h, int o, int *ow, int *oh) {
    int swap = o >= 5 && o <= 8;
    int W = swap ? h : w, H = swap ? w : h;
    uint8_t *out = malloc((size_t)w * (size_t)h * 3);
    if (!out) return NULL;
    *ow = W;
    *oh = H;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int sx, sy;   /* the source pixel of output (x, y), as PIL's transpose methods map it */
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;           /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;   /* ROTATE_180 */
            case 4: sx = x; sy = h - 1 - y; break;           /* FLIP_TOP_BOTTOM */
            case 5: sx = y; sy = x; break;                   /* TRANSPOSE */
            case 6: sx = y; sy = h - 1 - x; break;           /* ROTATE_270 (90 clockwise) */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;   /* TRANSVERSE */
            case 8: sx = w - 1 - y; sy = x; break;           /* ROTATE_90 (90 counter-clockwise) */
            default: sx = x; sy = y; break;
            }
            memcpy(out + ((size_t)y * W + x) * 3, rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    return out;
}

/* ------------------------------------------------------- header checks */

typedef struct {
    int orientation;       /* EXIF, 1 = as stored */
    int64_t w, h;          /* from our own header parse, 0 = unknown (limits are checked before stb_image) */
    int png_grey16;        /* 16-bit grey PNG: PIL's I;16, clipped to 255 rather than shifted */
} img_facts;

/* Chunks are walked for IHDR's colour type and bit depth, and for eXIf
 * (PIL reads it wherever it is, also after IDAT); pixel data errors are
 * stb_image's to find. */
static gemma_status png_facts(const char *name, const uint8_t *d, size_t n, img_facts *f, gemma_error *err) {
    if (n < 33 || be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt PNG: no IHDR chunk at the start", name);
    uint32_t w = be32(d + 16), h = be32(d + 20);
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt PNG: IHDR says the image is %ux%u", name, (unsigned)w,
                       (unsigned)h);
    f->w = w;
    f->h = h;
    int depth = d[24], ctype = d[25];
    f->png_grey16 = ctype == 0 && depth == 16;
    size_t p = 8;
    while (p + 12 <= n) {
        uint32_t len = be32(d + p);
        if (len > n - p - 12) {
            char kind[5] = {0};
            for (int i = 0; i < 4; i++) kind[i] = (char)(d[p + 4 + i] >= 32 && d[p + 4 + i] < 127 ? d[p + 4 + i] : '?');
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated PNG: %s chunk at byte %zu needs %u bytes, %zu are left",
                           name, kind, p, (unsigned)len, n - p - 12);
        }
        if (memcmp(d + p + 4, "eXIf", 4) == 0) {
            /* PIL also takes the "Exif\0\0" prefix some writers put here (as in JPEG) */
            const uint8_t *t = d + p + 8;
            size_t tl = len;
            if (tl >= 6 && memcmp(t, "Exif\0\0", 6) == 0) {
                t += 6;
                tl -= 6;
            }
            f->orientation = gm_exif_orientation(t, tl);
            break;
        }
        if (memcmp(d + p + 4, "IEND", 4) == 0) break;
        p += 12 + (size_t)len;
    }
    return GEMMA_OK;
}

static int is_sof(int m) { return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc; }

/* Markers up to the first scan: the frame's component count (4 = CMYK or
 * YCCK, which stb_image decodes without the Adobe inversion PIL applies, so
 * we refuse rather than return wrong colours), the Adobe transform, and the
 * first Exif APP1 (the one PIL uses).  Then the end-of-image marker must
 * follow the scan data: stb_image decodes a truncated JPEG "successfully",
 * filling the rest with grey, where PIL raises "image file is truncated". */
static gemma_status jpeg_facts(const char *name, const uint8_t *d, size_t n, img_facts *f, gemma_error *err) {
    size_t p = 2, sos = 0;
    int components = -1, adobe = -1, have_exif = 0;
    while (p + 4 <= n) {
        if (d[p] != 0xff) {   /* padding between segments: libjpeg and stb_image skip it too */
            p++;
            continue;
        }
        int m = d[p + 1];
        if (m == 0xff) {   /* fill byte */
            p++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {   /* no length */
            p += 2;
            continue;
        }
        if (m == 0xd9) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt JPEG: end of image before any scan", name);
        size_t len = be16(d + p + 2);
        if (len < 2 || len > n - p - 2)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated JPEG: segment at byte %zu runs past the end", name, p);
        const uint8_t *s = d + p + 4;
        size_t sl = len - 2;
        if (is_sof(m) && sl >= 6 && components < 0) {
            components = s[5];
            f->h = be16(s + 1);
            f->w = be16(s + 3);
        }
        if (m == 0xee && sl >= 12 && memcmp(s, "Adobe", 5) == 0) adobe = s[11];
        if (m == 0xe1 && !have_exif && sl >= 6 && memcmp(s, "Exif\0\0", 6) == 0) {
            have_exif = 1;
            f->orientation = gm_exif_orientation(s + 6, sl - 6);
        }
        if (m == 0xda) {
            sos = p + 2 + len;
            break;
        }
        p += 2 + len;
    }
    if (components == 4) {
        const char *kind = adobe == 2 ? "YCCK" : "CMYK";
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED,
                       "%s: %s JPEG (4 colour components%s) is not supported: convert it to RGB first", name, kind,
                       adobe >= 0 ? ", Adobe marker" : "");
    }
    if (!sos) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated JPEG: no image data (no start-of-scan marker)", name);
    for (size_t q = n - 1; q > sos; q--)
        if (d[q] == 0xd9 && d[q - 1] == 0xff) return GEMMA_OK;
    return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated JPEG: no end-of-image marker after the image data", name);
}

/* stb_image reads past the end of an uncompressed BMP as zeros; PIL says
 * truncated.  Compare the pixel array the header describes with the file. */
static gemma_status bmp_facts(const char *name, const uint8_t *d, size_t n, gemma_error *err) {
    if (n < 26) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated BMP header", name);
    uint32_t off = le32(d + 10), hsize = le32(d + 14);
    uint64_t w, h, bpp, comp = 0;
    if (hsize == 12) {
        w = le16(d + 18);
        h = le16(d + 20);
        bpp = le16(d + 24);
    } else {
        if (n < 34) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated BMP header", name);
        int32_t sw = (int32_t)le32(d + 18), sh = (int32_t)le32(d + 22);
        w = sw < 0 ? 0 : (uint64_t)sw;
        h = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        bpp = le16(d + 28);
        comp = le32(d + 30);
    }
    if (comp != 0 && comp != 3 && comp != 6) return GEMMA_OK;   /* RLE, JPEG, PNG inside: stb_image refuses */
    uint64_t stride = (w * bpp + 31) / 32 * 4;
    if (w > 0 && stride / w > 16) return GEMMA_OK;   /* nonsense bpp: stb_image refuses */
    uint64_t need = (uint64_t)off + stride * h;
    if (need > n)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated BMP: pixel data needs %llu bytes, the file has %zu", name,
                       (unsigned long long)need, n);
    return GEMMA_OK;
}

/* PNM is read here, not by stb_image: stb_image 2.27 returns 16-bit
 * samples byte-swapped, ignores maxval and leaves a truncated file's missing
 * pixels uninitialised.  "P5|P6 <w> <h> <maxval>" with # comments up to the
 * end of a line, then one whitespace byte, then the samples (big-endian
 * when maxval > 255). */
typedef struct {
    int w, h, channels;
    unsigned maxval;
    size_t data;   /* offset of the first sample */
} pnm_header;

static int pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static gemma_status pnm_parse(const char *name, const uint8_t *d, size_t n, pnm_header *ph, gemma_error *err) {
    size_t p = 2;
    unsigned long v[3];
    for (int field = 0; field < 3; field++) {
        for (;;) {
            while (p < n && pnm_space(d[p])) p++;
            if (p < n && d[p] == '#') {
                while (p < n && d[p] != '\n' && d[p] != '\r') p++;
                continue;
            }
            break;
        }
        int digits = 0;
        v[field] = 0;
        while (p < n && d[p] >= '0' && d[p] <= '9') {
            if (++digits > 9) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt PNM header: number too long", name);
            v[field] = v[field] * 10 + (unsigned long)(d[p++] - '0');
        }
        if (!digits || p >= n || !pnm_space(d[p]))
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt PNM header: expected width, height and maxval", name);
    }
    if (v[2] < 1 || v[2] > 65535)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt PNM header: maxval %lu is not 1..65535", name, v[2]);
    ph->w = v[0] > INT32_MAX ? INT32_MAX : (int)v[0];
    ph->h = v[1] > INT32_MAX ? INT32_MAX : (int)v[1];
    ph->channels = d[1] == '6' ? 3 : 1;
    ph->maxval = (unsigned)v[2];
    ph->data = p + 1;
    return GEMMA_OK;
}

/* PIL scales PNM samples to the full range unless maxval is 255 (or 65535
 * for grey): min(out, round(v / maxval * out)) with Python's round (half to
 * even), out = 255, or 65535 for grey with maxval > 255 (mode I, which the
 * RGB conversion then clips to 255). */
static uint8_t pnm_sample(unsigned v, unsigned maxval, int grey) {
    if (maxval == 255) return (uint8_t)(v > 255 ? 255 : v);
    double out = grey && maxval > 255 ? 65535.0 : 255.0;
    double s = nearbyint((double)v / (double)maxval * out);
    if (s > out) s = out;
    return s > 255.0 ? 255 : (uint8_t)s;
}

static void pnm_to_rgb(const uint8_t *d, const pnm_header *ph, uint8_t *dst) {
    size_t npix = (size_t)ph->w * (size_t)ph->h;
    int wide = ph->maxval > 255, grey = ph->channels == 1;
    const uint8_t *p = d + ph->data;
    for (size_t i = 0; i < npix; i++, dst += 3)
        for (int c = 0; c < ph->channels; c++) {
            unsigned v = wide ? (unsigned)(p[0] << 8 | p[1]) : p[0];
            p += wide ? 2 : 1;
            uint8_t s = pnm_sample(v, ph->maxval, grey);
            if (grey) dst[0] = dst[1] = dst[2] = s;
            else dst[c] = s;
        }
}

/* stb_image reads past the end of a GIF or TGA as zeros.  For GIF, walk the
 * blocks up to the end of the first image's data (the frame stb_image and
 * PIL return); for TGA, count the bytes the pixels need (RLE packets walked). */
static gemma_status gif_facts(const char *name, const uint8_t *d, size_t n, gemma_error *err) {
    size_t p = 13;
    if (n < 13) goto truncated;
    if (d[10] & 0x80) p += (size_t)3 << ((d[10] & 7) + 1);
    while (p < n) {
        uint8_t b = d[p++];
        if (b == 0x3b) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt GIF: no image before the trailer", name);
        if (b == 0x21) {   /* extension: label, then sub-blocks */
            p++;
        } else if (b == 0x2c) {   /* image descriptor, local palette, LZW code size */
            if (p + 9 > n) goto truncated;
            uint8_t flags = d[p + 8];
            p += 9;
            if (flags & 0x80) p += (size_t)3 << ((flags & 7) + 1);
            p++;
        } else {
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt GIF: unknown block 0x%02x at byte %zu", name, b, p - 1);
        }
        while (p < n && d[p] != 0) p += 1 + (size_t)d[p];   /* sub-blocks */
        if (p >= n) goto truncated;
        p++;
        if (b == 0x2c) return GEMMA_OK;
    }
truncated:
    return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated GIF: the first image's data is cut off", name);
}

static gemma_status tga_facts(const char *name, const uint8_t *d, size_t n, gemma_error *err) {
    if (n < 18) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated TGA header", name);
    int type = d[2], bpp = d[16];
    size_t cmap = d[1] ? (size_t)le16(d + 5) * (((size_t)d[7] + 7) / 8) : 0;
    size_t p = 18 + (size_t)d[0] + cmap;
    uint64_t npix = (uint64_t)le16(d + 12) * le16(d + 14), bytes = ((uint64_t)bpp + 7) / 8;
    if (type == 1 || type == 2 || type == 3) {
        if (p + npix * bytes > n)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated TGA: pixel data needs %llu bytes, the file has %zu", name,
                           (unsigned long long)(p + npix * bytes), n);
        return GEMMA_OK;
    }
    if (type < 9 || type > 11 || bytes == 0) return GEMMA_OK;   /* stb_image decides */
    for (uint64_t got = 0; got < npix;) {
        if (p >= n) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated TGA: run-length data is cut off", name);
        uint8_t h = d[p++];
        uint64_t count = (uint64_t)(h & 0x7f) + 1, need = h & 0x80 ? bytes : count * bytes;
        if (need > n - p) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated TGA: run-length data is cut off", name);
        p += need;
        got += count;
    }
    return GEMMA_OK;
}

/* ------------------------------------------------------------ decoding */

static gemma_status check_limits(const char *name, const char *fmt, int w, int h, const gemma_image_load_options *o,
                                 gemma_error *err) {
    uint64_t max_side = o && o->max_side ? o->max_side : GEMMA_IMAGE_MAX_SIDE;
    uint64_t max_pixels = o && o->max_pixels ? o->max_pixels : GEMMA_IMAGE_MAX_PIXELS;
    if (max_side > GEMMA_IMAGE_MAX_SIDE) max_side = GEMMA_IMAGE_MAX_SIDE;
    if (max_pixels > GEMMA_IMAGE_MAX_PIXELS) max_pixels = GEMMA_IMAGE_MAX_PIXELS;
    if (w <= 0 || h <= 0) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %s header says the image is %dx%d", name, fmt, w, h);
    if ((uint64_t)w > max_side || (uint64_t)h > max_side)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: image is %dx%d, a side above the %llu pixels allowed", name, w, h,
                       (unsigned long long)max_side);
    if ((uint64_t)w * (uint64_t)h > max_pixels)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: image is %dx%d = %llu pixels, more than the %llu allowed", name, w,
                       h, (unsigned long long)w * (unsigned long long)h, (unsigned long long)max_pixels);
    return GEMMA_OK;
}

/* Channels to RGB as PIL's convert("RGB") does for each mode: grey is
 * replicated, alpha dropped. */
static void to_rgb8(const uint8_t *src, int channels, size_t npix, uint8_t *dst) {
    for (size_t i = 0; i < npix; i++, dst += 3, src += channels) {
        if (channels >= 3) {
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
        } else {
            dst[0] = dst[1] = dst[2] = src[0];
        }
    }
}

static void grey16_to_rgb(const uint16_t *src, int channels, size_t npix, uint8_t *dst) {
    for (size_t i = 0; i < npix; i++, dst += 3, src += channels) {
        uint8_t v = src[0] > 255 ? 255 : (uint8_t)src[0];   /* PIL's I;16 -> RGB saturates */
        dst[0] = dst[1] = dst[2] = v;
    }
}

/* Takes rgb (malloc'd, w x h), turns it upright and wraps it. */
static gemma_status finish(const char *name, const char *fname, uint8_t *rgb, int w, int h, int orientation,
                           gemma_image **out, gemma_error *err) {
    if (orientation != 1) {
        int ow, oh;
        uint8_t *turned = gm_rgb_orient(rgb, w, h, orientation, &ow, &oh);
        free(rgb);
        if (!turned) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
        rgb = turned;
        w = ow;
        h = oh;
    }
    gemma_image *img = calloc(1, sizeof *img);
    if (!img) {
        free(rgb);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", name);
    }
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    img->format = fname;
    *out = img;
    gm_ok(err);
    return GEMMA_OK;
}

static gemma_status decode_pnm(const char *name, const uint8_t *d, size_t n, const gemma_image_load_options *opts,
                               gemma_image **out, gemma_error *err) {
    pnm_header ph = {0};
    gemma_status st = pnm_parse(name, d, n, &ph, err);
    if (st != GEMMA_OK) return st;
    if ((st = check_limits(name, "pnm", ph.w, ph.h, opts, err)) != GEMMA_OK) return st;
    uint64_t need = (uint64_t)ph.w * (uint64_t)ph.h * (uint64_t)ph.channels * (ph.maxval > 255 ? 2u : 1u);
    if (ph.data > n || need > n - ph.data)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: truncated PNM: pixel data needs %llu bytes, the file has %zu", name,
                       (unsigned long long)(need + ph.data), n);
    uint8_t *rgb = malloc((size_t)ph.w * (size_t)ph.h * 3);
    if (!rgb) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, ph.w, ph.h);
    pnm_to_rgb(d, &ph, rgb);
    return finish(name, "pnm", rgb, ph.w, ph.h, 1, out, err);
}

static gemma_status decode(const char *name, const uint8_t *d, size_t n, const gemma_image_load_options *opts,
                           gemma_image **out, gemma_error *err) {
    *out = NULL;
    if (n == 0) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: file is empty", name);
    if (n > GEMMA_IMAGE_MAX_FILE_BYTES)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: %zu bytes, more than the %llu an image file may have", name, n,
                       (unsigned long long)GEMMA_IMAGE_MAX_FILE_BYTES);
    img_format fmt = sniff(d, n, name);
    if (fmt == FMT_UNKNOWN) {
        const char *what = known_unsupported(d, n);
        if (what) return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: %s images are not supported (" SUPPORTED ")", name, what);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: not an image file (unrecognised content; " SUPPORTED ")", name);
    }
    if (fmt == FMT_PNM) return decode_pnm(name, d, n, opts, out, err);
    const char *fname = format_names[fmt];
    img_facts facts = {.orientation = 1};
    gemma_status st = GEMMA_OK;
    if (fmt == FMT_PNG) st = png_facts(name, d, n, &facts, err);
    else if (fmt == FMT_JPEG) st = jpeg_facts(name, d, n, &facts, err);
    else if (fmt == FMT_BMP) st = bmp_facts(name, d, n, err);
    else if (fmt == FMT_GIF) st = gif_facts(name, d, n, err);
    else if (fmt == FMT_TGA) st = tga_facts(name, d, n, err);
    if (st != GEMMA_OK) return st;
    if (facts.w > 0 && facts.h > 0 &&
        (st = check_limits(name, fname, (int)facts.w, (int)facts.h, opts, err)) != GEMMA_OK)
        return st;

    int w, h, ch;
    if (!gm_stb_info(d, n, &w, &h, &ch))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt %s header: %s", name, fname, gm_stb_failure());
    if ((st = check_limits(name, fname, w, h, opts, err)) != GEMMA_OK) return st;

    int dw, dh, dch;
    int wide = facts.png_grey16;
    void *px = wide ? (void *)gm_stb_load16(d, n, &dw, &dh, &dch) : (void *)gm_stb_load8(d, n, &dw, &dh, &dch);
    if (!px) {
        const char *why = gm_stb_failure();
        gemma_status code = strcmp(why, "Out of memory") == 0 ? GEMMA_ERR_NOMEM : GEMMA_ERR_FORMAT;
        return gm_fail(err, code, "%s: cannot decode %s: %s", name, fname, why);
    }
    if (dw != w || dh != h || dch < 1 || dch > 4) {
        gm_stb_free(px);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: corrupt %s: header says %dx%d, data decodes to %dx%d", name, fname, w,
                       h, dw, dh);
    }
    size_t npix = (size_t)w * (size_t)h;
    uint8_t *rgb = malloc(npix * 3);
    if (!rgb) {
        gm_stb_free(px);
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
    }
    if (wide) grey16_to_rgb(px, dch, npix, rgb);
    else to_rgb8(px, dch, npix, rgb);
    gm_stb_free(px);
    return finish(name, fname, rgb, w, h, facts.orientation, out, err);
}

/* ------------------------------------------------------------ public API */

gemma_status gemma_image_load_memory(const void *data, size_t size, const char *name,
                                     const gemma_image_load_options *opts, gemma_image **out, gemma_error *err) {
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_load_memory: out is NULL");
    *out = NULL;
    if (!name) name = "image";
    if (!data && size) return gm_fail(err, GEMMA_ERR_ARG, "%s: data is NULL", name);
    return decode(name, data, size, opts, out, err);
}

gemma_status gemma_image_load(const char *path, const gemma_image_load_options *opts, gemma_image **out,
                              gemma_error *err) {
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_load: out is NULL");
    *out = NULL;
    if (!path) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_load: path is NULL");
    gm_mapfile mf;
    gemma_status st = gm_mapfile_open(&mf, path, err);
    if (st != GEMMA_OK) return st;
    st = decode(path, mf.data, mf.size, opts, out, err);
    gm_mapfile_close(&mf);
    return st;
}

gemma_status gemma_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride, gemma_image **out,
                                  gemma_error *err) {
    if (!out) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_from_rgb: out is NULL");
    *out = NULL;
    if (!rgb) return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_from_rgb: rgb is NULL");
    gemma_status st = check_limits("gemma_image_from_rgb", "rgb", width, height, NULL, err);
    if (st != GEMMA_OK) return st;
    size_t row = (size_t)width * 3;
    if (stride == 0) stride = row;
    if (stride < row)
        return gm_fail(err, GEMMA_ERR_ARG, "gemma_image_from_rgb: stride %zu is less than width * 3 = %zu", stride, row);
    gemma_image *img = calloc(1, sizeof *img);
    uint8_t *px = malloc(row * (size_t)height);
    if (!img || !px) {
        free(img);
        free(px);
        return gm_fail(err, GEMMA_ERR_NOMEM, "gemma_image_from_rgb: out of memory for %dx%d", width, height);
    }
    for (int y = 0; y < height; y++) memcpy(px + (size_t)y * row, rgb + (size_t)y * stride, row);
    img->w = width;
    img->h = height;
    img->rgb = px;
    img->format = "rgb";
    *out = img;
    gm_ok(err);
    return GEMMA_OK;
}

void gemma_image_free(gemma_image *img) {
    if (!img) return;
    free(img->rgb);
    free(img);
}

int gemma_image_width(const gemma_image *img) { return img ? img->w : 0; }
int gemma_image_height(const gemma_image *img) { return img ? img->h : 0; }
const uint8_t *gemma_image_rgb(const gemma_image *img) { return img ? img->rgb : NULL; }
const char *gemma_image_format(const gemma_image *img) { return img ? img->format : NULL; }
