/* cmd_preprocess.c - `gemma preprocess`: an image file to the pixel values
 * Gemma 3's vision tower takes, as raw float32, so they can be compared with
 * Hugging Face's pixel_values (tools/reference/make_image_fixtures.py) or
 * fed to other tools.
 *
 *   gemma preprocess --image xray.png -o pixels.f32 [--size 896] [--pan-and-scan]
 */
#include "args.h"
#include "gemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const help =
    "usage: gemma preprocess --image FILE -o OUT.f32 [options]\n"
    "\n"
    "Decodes FILE (PNG, JPEG, BMP, GIF, PNM, TGA) as PIL does and writes what Hugging Face's\n"
    "Gemma3ImageProcessor gives for it: n_crops x 3 x N x N float32, little-endian, no header\n"
    "(the whole image first, then the pan-and-scan crops).  A one-line summary goes to stderr.\n"
    "  --image FILE          the image\n"
    "  -o, --output FILE     where to write the floats (refused if it exists, unless --force)\n"
    "  --size N              output side (default 896, Gemma 3 / MedGemma)\n"
    "  --pan-and-scan        also cut a long image into 2..4 crops along its long side\n"
    "  --min-crop-size N     pan and scan: smallest crop side (default 256)\n"
    "  --max-crops N         pan and scan: at most N crops (default 4)\n"
    "  --min-ratio R         pan and scan: long/short side ratio that turns it on (default 1.2)\n"
    "  --layout chw|hwc      CHW (default, HF pixel_values) or HWC (MLX, NHWC)\n"
    "  --force               replace an existing output file\n";

static int is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* the same file (not just the same name): -o must never replace the input */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_preprocess(int argc, char **argv) {
    const char *image = NULL, *output = NULL;
    int force = 0;
    gemma_preprocess_options o = gemma_preprocess_default_options();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--image")) {
            if (!(image = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(output = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
        } else if (!strcmp(a, "--size")) {
            if (!(v = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 4096, &n)) return cli_usage_error("preprocess", "--size must be 1..4096, got '%s'", v);
            o.size = (int)n;
        } else if (!strcmp(a, "--pan-and-scan")) {
            o.pan_and_scan = 1;
        } else if (!strcmp(a, "--min-crop-size")) {
            if (!(v = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 65535, &n))
                return cli_usage_error("preprocess", "--min-crop-size must be 1..65535, got '%s'", v);
            o.pan_and_scan_min_crop_size = (int)n;
        } else if (!strcmp(a, "--max-crops")) {
            if (!(v = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 1024, &n)) return cli_usage_error("preprocess", "--max-crops must be 1..1024, got '%s'", v);
            o.pan_and_scan_max_num_crops = (int)n;
        } else if (!strcmp(a, "--min-ratio")) {
            if (!(v = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
            char *end;
            double r = strtod(v, &end);
            if (end == v || *end || !(r > 0 && r < 1e9))
                return cli_usage_error("preprocess", "--min-ratio must be a positive number, got '%s'", v);
            o.pan_and_scan_min_ratio_to_activate = r;
        } else if (!strcmp(a, "--layout")) {
            if (!(v = cli_value(argc, argv, &i, "preprocess"))) return CLI_USAGE;
            if (!strcmp(v, "chw")) o.layout = GEMMA_LAYOUT_CHW;
            else if (!strcmp(v, "hwc")) o.layout = GEMMA_LAYOUT_HWC;
            else return cli_usage_error("preprocess", "--layout must be chw or hwc, got '%s'", v);
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else {
            return cli_usage_error("preprocess", "unknown option '%s'", a);
        }
    }
    if (!image) return cli_usage_error("preprocess", "missing --image FILE");
    if (!output) return cli_usage_error("preprocess", "missing -o OUT.f32");
    if (same_file(image, output)) return cli_error("%s: the output would replace the input image", output);
    struct stat st;
    if (!force && stat(output, &st) == 0) return cli_error("%s: exists (--force replaces it)", output);

    gemma_error err;
    gemma_image *img;
    if (gemma_image_load(image, NULL, &img, &err) != GEMMA_OK) return cli_error("%s", err.message);
    size_t n_floats = gemma_image_preprocess_floats(img, &o);
    float *px = n_floats ? malloc(n_floats * sizeof *px) : NULL;
    if (!px) {
        gemma_image_free(img);
        return cli_error("%s: out of memory for %zu floats", image, n_floats);
    }
    int n_crops = 0;
    if (gemma_image_preprocess(img, &o, px, n_floats, &n_floats, &n_crops, &err) != GEMMA_OK) {
        free(px);
        gemma_image_free(img);
        return cli_error("%s", err.message);
    }
    if (!is_little_endian()) {
        uint8_t *b = (uint8_t *)px;
        for (size_t i = 0; i < n_floats; i++, b += 4) {
            uint8_t t = b[0];
            b[0] = b[3];
            b[3] = t;
            t = b[1];
            b[1] = b[2];
            b[2] = t;
        }
    }
    int ok = cli_write_file(output, px, n_floats * sizeof *px);
    free(px);
    int rc = ok ? CLI_OK : cli_error("%s: cannot write", output);
    if (ok)
        fprintf(stderr, "%s: %s %dx%d -> %d crop%s x %s [%d,%d,%d] float32 -> %s\n", image, gemma_image_format(img),
                gemma_image_width(img), gemma_image_height(img), n_crops, n_crops == 1 ? "" : "s",
                o.layout == GEMMA_LAYOUT_CHW ? "CHW" : "HWC", o.layout == GEMMA_LAYOUT_CHW ? 3 : o.size, o.size,
                o.layout == GEMMA_LAYOUT_CHW ? o.size : 3, output);
    gemma_image_free(img);
    return rc;
}
