/* test_image.c - image decoding and Gemma 3 preprocessing against PIL and
 * Hugging Face (tests/fixtures/images, made by
 * tools/reference/make_image_fixtures.py from real transformers + Pillow).
 *
 * What "right" means here:
 *   decoding  every format, JPEG included: the RGB bytes PIL's exif_transpose
 *             + convert("RGB") gives, exactly (sha256; JPEG through
 *             libjpeg-turbo's IDCT, upsampling and colour rounding).
 *   preprocessing  from the file: every crop's float32 tensor hashes like HF's pixel_values,
 *             at 64, 224 and 896, with and without pan and scan, for the
 *             current Pillow and for the pass orders of older Pillows.  A
 *             mismatch is localised through PIL's own resize output (pixels
 *             at 64, row sums at 224, band sums at 896).
 *   bad input  truncated at many cut points, corrupt or oversized headers,
 *             empty, CMYK, not an image: one-line errors naming the file,
 *             never a crash, never garbage pixels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <time.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "unit/sha256.h"
#include "unit/testutil.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/resize.h"

#define FIX GEMMA_FIXTURES_DIR "/images"

/* ------------------------------------------------------------- helpers */

static gm_json_doc *load_manifest(const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIX, file);
    return tu_load_json(path);
}

static const char *jstr(const gm_json *o, const char *key) {
    const char *s = gm_json_string(gm_json_get(o, key));
    if (!s) fail_msg("manifest: missing string '%s'", key);
    return s;
}

static int64_t jint(const gm_json *o, const char *key) {
    int64_t v;
    if (!gm_json_int(gm_json_get(o, key), &v)) fail_msg("manifest: missing integer '%s'", key);
    return v;
}

static gemma_image *load_fixture(const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIX, file);
    gemma_error err;
    gemma_image *img;
    if (gemma_image_load(path, NULL, &img, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return img;
}

static void sha_hex(const void *p, size_t n, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final_hex(&c, hex);
}

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* sha256 of floats as little-endian bytes (what numpy's "<f4" tobytes hashes) */
static void sha_floats(const float *f, size_t n, char hex[65]) {
    if (little_endian()) {
        sha_hex(f, n * sizeof *f, hex);
        return;
    }
    sha256_ctx c;
    sha256_init(&c);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[4], *s = (uint8_t *)&f[i];
        for (int k = 0; k < 4; k++) b[k] = s[3 - k];
        sha256_update(&c, b, 4);
    }
    sha256_final_hex(&c, hex);
}

/* The first pixel where a and b differ, and the largest and mean |a - b|. */
typedef struct {
    int max, x, y, c;
    double mean;
    size_t n_diff;
} img_diff;

static img_diff compare_rgb(const uint8_t *a, const uint8_t *b, int w, int h) {
    img_diff d = {0, -1, -1, -1, 0.0, 0};
    double sum = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int v = abs((int)a[i] - (int)b[i]);
        if (!v) continue;
        sum += v;
        d.n_diff++;
        if (d.x < 0) {
            d.x = (int)(i / 3 % (size_t)w);
            d.y = (int)(i / 3 / (size_t)w);
            d.c = (int)(i % 3);
        }
        if (v > d.max) d.max = v;
    }
    d.mean = sum / ((double)w * h * 3);
    return d;
}

/* The image whose RGB is PIL's decode: the reference PNG if the manifest
 * has one, else the input itself (a plain 8-bit PNG). */
static gemma_image *reference_rgb(const gm_json *c) {
    const char *ref = gm_json_string(gm_json_get(c, "rgb_ref"));
    gemma_image *img = load_fixture(ref ? ref : jstr(c, "file"));
    char hex[65];
    sha_hex(img->rgb, (size_t)img->w * img->h * 3, hex);
    if (strcmp(hex, jstr(c, "rgb_sha256")) != 0)
        fail_msg("%s: the reference RGB %s does not decode to the recorded sha256", jstr(c, "name"),
                 ref ? ref : jstr(c, "file"));
    return img;
}

/* The next case that has pixels (rejection cases skipped), NULL after the last. */
static const gm_json *image_case(const gm_json *cases, size_t *i) {
    while (*i < gm_json_count(cases)) {
        const gm_json *c = gm_json_at(cases, (*i)++);
        if (!gm_json_get(c, "reject")) return c;
    }
    return NULL;
}

static const gm_json *manifest_cases(gm_json_doc **doc) {
    *doc = load_manifest("manifest.json");
    return gm_json_get(gm_json_root(*doc), "cases");
}

/* ------------------------------------------------------------ decoding */

static void test_decode_matches_pil(void **state) {
    (void)state;
    gm_json_doc *doc;
    const gm_json *cases = manifest_cases(&doc), *c;
    int exact = 0, jpeg = 0;
    for (size_t i = 0; (c = image_case(cases, &i));) {
        const char *name = jstr(c, "name");
        gemma_image *img = load_fixture(jstr(c, "file"));
        if (img->w != jint(c, "width") || img->h != jint(c, "height"))
            fail_msg("%s: decoded %dx%d, PIL gives %lldx%lld", name, img->w, img->h, (long long)jint(c, "width"),
                     (long long)jint(c, "height"));
        if (strcmp(gemma_image_format(img), jstr(c, "format")) != 0)
            fail_msg("%s: format '%s', expected '%s'", name, gemma_image_format(img), jstr(c, "format"));
        char hex[65];
        sha_hex(img->rgb, (size_t)img->w * img->h * 3, hex);
        if (strcmp(hex, jstr(c, "rgb_sha256")) != 0) {
            gemma_image *ref = reference_rgb(c);
            img_diff d = compare_rgb(img->rgb, ref->rgb, img->w, img->h);
            fail_msg("%s (PIL mode %s): RGB differs from PIL's at x=%d y=%d channel %d (max %d, mean %.4f, %zu values)",
                     name, jstr(c, "pil_mode"), d.x, d.y, d.c, d.max, d.mean, d.n_diff);
        }
        exact++;
        jpeg += strcmp(jstr(c, "format"), "jpeg") == 0;
        gemma_image_free(img);
    }
    print_message("  %d images (%d of them JPEG) decode to exactly PIL's RGB\n", exact, jpeg);
    gm_json_free(doc);
}

static void test_exif_orientation_parser(void **state) {
    (void)state;
    /* big-endian, one entry, SHORT 6 */
    const uint8_t mm[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(gm_exif_orientation(mm, sizeof mm), 6);
    /* little-endian, a tag before it, LONG 8 */
    const uint8_t ii[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0, 0x0f, 0x01, 2, 0, 1, 0, 0, 0, 'x', 0, 0, 0,
                          0x12, 0x01, 4, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(gm_exif_orientation(ii, sizeof ii), 8);
    uint8_t bad[sizeof mm];
    memcpy(bad, mm, sizeof mm);
    bad[19] = 9;   /* out of range */
    assert_int_equal(gm_exif_orientation(bad, sizeof bad), 1);
    memcpy(bad, mm, sizeof mm);
    bad[17] = 2;   /* count 2: PIL sees a tuple */
    assert_int_equal(gm_exif_orientation(bad, sizeof bad), 1);
    memcpy(bad, mm, sizeof mm);
    bad[13] = 1;   /* BYTE: PIL sees bytes */
    assert_int_equal(gm_exif_orientation(bad, sizeof bad), 1);
    memcpy(bad, mm, sizeof mm);
    bad[7] = 200;   /* IFD outside */
    assert_int_equal(gm_exif_orientation(bad, sizeof bad), 1);
    for (size_t n = 0; n < sizeof mm; n++) assert_true(gm_exif_orientation(mm, n) == (n >= 22 ? 6 : 1));
    assert_int_equal(gm_exif_orientation(NULL, 0), 1);

    /* every orientation maps pixels as PIL's transpose does: check on a 3x2 with distinct pixels */
    uint8_t px[6 * 3];
    for (int i = 0; i < 18; i++) px[i] = (uint8_t)(i / 3);
    static const char *const want[9] = {NULL, "012345", "210543", "543210", "345012",
                                        "031425", "304152", "524130", "251403"};
    for (int o = 1; o <= 8; o++) {
        int w, h;
        uint8_t *t = gm_rgb_orient(px, 3, 2, o, &w, &h);
        assert_non_null(t);
        char got[7] = {0};
        for (int i = 0; i < 6; i++) got[i] = (char)('0' + t[i * 3]);
        if (strcmp(got, want[o]) != 0) fail_msg("orientation %d: %s, want %s", o, got, want[o]);
        assert_int_equal(w, o >= 5 ? 2 : 3);
        free(t);
    }
}

/* -------------------------------------------------------- preprocessing */

static float *preprocess(const gemma_image *img, const gemma_preprocess_options *o, int *n_crops) {
    size_t n = gemma_image_preprocess_floats(img, o);
    float *out = malloc(n * sizeof *out);
    gemma_error err;
    size_t got;
    assert_non_null(out);
    if (gemma_image_preprocess(img, o, out, n, &got, n_crops, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_int_equal(got, n);
    return out;
}

/* On a hash mismatch: where our uint8 resize leaves PIL's. */
static void explain_mismatch(const char *name, const gm_json *run, int k, const gemma_image *img, const gm_crop *crop,
                             int size, int pillow_version) {
    uint8_t *px = malloc((size_t)size * size * 3);
    assert_non_null(px);
    const uint8_t *src = img->rgb + ((size_t)crop->y * img->w + crop->x) * 3;
    assert_true(gm_resize_bilinear_rgb(src, crop->w, crop->h, (size_t)img->w * 3, px, size, size, pillow_version));
    char where[256] = "no resize reference at this size";
    const gm_json *resized = gm_json_get(run, "resized"), *rows = gm_json_get(run, "row_sums"),
                  *bands = gm_json_get(run, "band_sums");
    if (resized) {
        gemma_image *ref = load_fixture(gm_json_string(gm_json_at(resized, (size_t)k)));
        img_diff d = compare_rgb(px, ref->rgb, size, size);
        snprintf(where, sizeof where, "%s: uint8 resize differs from PIL's at x=%d y=%d channel %d (max %d, %zu values)",
                 d.n_diff ? "" : "resize matches PIL, the float step differs", d.x, d.y, d.c, d.max, d.n_diff);
        gemma_image_free(ref);
    } else if (rows || bands) {
        const gm_json *list = gm_json_at(rows ? rows : bands, (size_t)k);
        int parts = rows ? size : 16, span = size / parts;
        snprintf(where, sizeof where, "resize matches PIL's %s, the float step differs", rows ? "row sums" : "band sums");
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < parts; r++) {
                int64_t want = 0, got = 0;
                gm_json_int(gm_json_at(list, (size_t)(c * parts + r)), &want);
                for (int y = r * span; y < (r + 1) * span; y++)
                    for (int x = 0; x < size; x++) got += px[((size_t)y * size + x) * 3 + c];
                if (got != want) {
                    snprintf(where, sizeof where, "uint8 resize differs from PIL's first in %s %d (rows %d..%d), channel %d: sum %lld vs %lld",
                             rows ? "row" : "band", r, r * span, (r + 1) * span - 1, c, (long long)got, (long long)want);
                    c = 3;
                    break;
                }
            }
    }
    free(px);
    fail_msg("%s: size %d crop %d (%dx%d at %d,%d, pillow %d): tensor hash differs from HF; %s", name, size, k, crop->w,
             crop->h, crop->x, crop->y, pillow_version, where);
}

/* Every run of a case through gemma_image_preprocess, hashed; shas: the
 * manifest's runs (main) or a variant's list of lists. */
static int check_runs(const gm_json *c, const gm_json *variant_runs, int pillow_version, int only_if_differs) {
    const char *name = jstr(c, "name");
    const gm_json *runs = gm_json_get(c, "runs");
    gemma_image *img = NULL;
    int checked = 0;
    for (size_t r = 0; r < gm_json_count(runs); r++) {
        const gm_json *run = gm_json_at(runs, r);
        const gm_json *shas = variant_runs ? gm_json_at(variant_runs, r) : gm_json_get(run, "sha256");
        if (only_if_differs) {   /* a variant's hashes equal to the main ones were checked there */
            int differs = 0;
            for (size_t k = 0; k < gm_json_count(shas); k++)
                differs |= strcmp(gm_json_string(gm_json_at(shas, k)),
                                  gm_json_string(gm_json_at(gm_json_get(run, "sha256"), k))) != 0;
            if (!differs) continue;
        }
        if (!img) img = load_fixture(jstr(c, "file"));   /* end to end: our decoder, then preprocessing */
        gemma_preprocess_options o = gemma_preprocess_default_options();
        o.size = (int)jint(run, "size");
        o.pan_and_scan = (int)jint(run, "pan_and_scan");
        o.pillow_version = pillow_version;
        int n_crops;
        float *out = preprocess(img, &o, &n_crops);
        if (n_crops != jint(run, "n_crops") || (size_t)n_crops != gm_json_count(shas))
            fail_msg("%s: size %d pan_and_scan %d: %d crops, HF gives %lld", name, o.size, o.pan_and_scan, n_crops,
                     (long long)jint(run, "n_crops"));
        gm_crop crops[8] = {{0, 0, img->w, img->h}};
        int n_pas = gm_pan_and_scan(img->w, img->h, &o, crops + 1, 7);
        assert_int_equal(n_pas + 1, n_crops);
        size_t per = (size_t)3 * o.size * o.size;
        for (int k = 0; k < n_crops; k++) {
            char hex[65];
            sha_floats(out + (size_t)k * per, per, hex);
            if (strcmp(hex, gm_json_string(gm_json_at(shas, (size_t)k))) != 0)
                explain_mismatch(name, run, k, img, &crops[k], o.size, pillow_version);
        }
        free(out);
        checked++;
    }
    gemma_image_free(img);
    return checked;
}

static void test_preprocess_matches_hf(void **state) {
    (void)state;
    gm_json_doc *doc;
    const gm_json *cases = manifest_cases(&doc), *c;
    int runs = 0, n = 0;
    for (size_t i = 0; (c = image_case(cases, &i));) {
        runs += check_runs(c, NULL, 0, 0);
        n++;
    }
    print_message("  %d images, %d runs: every crop's float32 tensor equals HF's (sha256)\n", n, runs);
    gm_json_free(doc);
}

static void test_pan_and_scan_crops(void **state) {
    (void)state;
    gm_json_doc *doc;
    const gm_json *cases = manifest_cases(&doc), *c;
    gemma_preprocess_options o = gemma_preprocess_default_options();
    o.pan_and_scan = 1;
    for (size_t i = 0; (c = image_case(cases, &i));) {
        const gm_json *want = gm_json_get(c, "pas_crops");
        gm_crop crops[8];
        int n = gm_pan_and_scan((int)jint(c, "width"), (int)jint(c, "height"), &o, crops, 8);
        if ((size_t)n != gm_json_count(want)) fail_msg("%s: %d crops, HF cuts %zu", jstr(c, "name"), n, gm_json_count(want));
        for (int k = 0; k < n; k++) {
            const gm_json *r = gm_json_at(want, (size_t)k);
            int64_t v[4];
            for (int j = 0; j < 4; j++) gm_json_int(gm_json_at(r, (size_t)j), &v[j]);
            if (crops[k].x != v[0] || crops[k].y != v[1] || crops[k].w != v[2] || crops[k].h != v[3])
                fail_msg("%s: crop %d is %dx%d at %d,%d; HF's is %lldx%lld at %lld,%lld", jstr(c, "name"), k, crops[k].w,
                         crops[k].h, crops[k].x, crops[k].y, (long long)v[2], (long long)v[3], (long long)v[0],
                         (long long)v[1]);
        }
    }
    gm_json_free(doc);
    /* the boundaries, straight from HF's arithmetic */
    gm_crop cr[8];
    assert_int_equal(gm_pan_and_scan(600, 500, &o, cr, 8), 2);   /* ratio exactly 1.2 (in double) activates */
    assert_int_equal(gm_pan_and_scan(599, 500, &o, cr, 8), 0);
    assert_int_equal(gm_pan_and_scan(2000, 150, &o, cr, 8), 0);   /* crops would be 150 < 256 high */
    assert_int_equal(gm_pan_and_scan(4000, 300, &o, cr, 8), 4);   /* at most 4 */
    assert_int_equal(cr[3].x, 3000);
    assert_int_equal(gm_pan_and_scan(300, 1001, &o, cr, 8), 3);   /* portrait: along y, last crop clipped */
    assert_int_equal(cr[2].y, 668);
    assert_int_equal(cr[2].h, 333);
    o.pan_and_scan = 0;
    assert_int_equal(gm_pan_and_scan(4000, 300, &o, cr, 8), 0);
}

static void test_preprocess_older_pillows(void **state) {
    (void)state;
    static const struct {
        const char *file;
        int version;
    } variants[] = {{"manifest.pillow-12.1.json", 1201}, {"manifest.pillow-12.3.json", 1202}};
    gm_json_doc *doc;
    const gm_json *cases = manifest_cases(&doc), *c;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        gm_json_doc *vd = load_manifest(variants[v].file);
        const gm_json *vcases = gm_json_get(gm_json_root(vd), "cases");
        int runs = 0;
        for (size_t i = 0; (c = image_case(cases, &i));) {
            const gm_json *vr = gm_json_get(vcases, jstr(c, "name"));
            if (!vr) fail_msg("%s: no case %s", variants[v].file, jstr(c, "name"));
            runs += check_runs(c, vr, variants[v].version, 1);
        }
        const char *pil = gm_json_string(gm_json_get(gm_json_root(vd), "pillow"));
        print_message("  Pillow %s order (pillow_version %d): %d runs that differ from Pillow 13 match HF there\n",
                      pil ? pil : "?", variants[v].version, runs);
        assert_true(runs > 0);
        gm_json_free(vd);
    }
    gm_json_free(doc);
}

/* HF's float for every uint8 level, for Gemma's normalisation and CLIP's
 * (whose float32 roundings are not trivial). */
static void test_level_table(void **state) {
    (void)state;
    gm_json_doc *doc = load_manifest("manifest.json");
    const gm_json *lv = gm_json_get(gm_json_root(doc), "levels");
    gemma_image *img = load_fixture(jstr(lv, "file"));
    const gm_json *runs = gm_json_get(lv, "runs");
    for (size_t r = 0; r < gm_json_count(runs); r++) {
        const gm_json *run = gm_json_at(runs, r);
        gemma_preprocess_options o = gemma_preprocess_default_options();
        o.size = 16;
        for (int c = 0; c < 3; c++) {
            double m, s;
            gm_json_number(gm_json_at(gm_json_get(run, "mean"), (size_t)c), &m);
            gm_json_number(gm_json_at(gm_json_get(run, "std"), (size_t)c), &s);
            o.mean[c] = (float)m;
            o.std[c] = (float)s;
        }
        int n_crops;
        float *out = preprocess(img, &o, &n_crops);
        char path[512], *ref;
        size_t len;
        gemma_error err;
        snprintf(path, sizeof path, "%s/%s", FIX, jstr(run, "ref"));
        if (gm_read_file(path, 1 << 20, &ref, &len, &err) != GEMMA_OK) fail_msg("%s", err.message);
        assert_int_equal(len, 3 * 16 * 16 * 4);
        for (size_t i = 0; i < 3 * 16 * 16; i++) {
            float want;
            memcpy(&want, ref + i * 4, 4);
            if (memcmp(&want, &out[i], 4) != 0)
                fail_msg("%s: value %zu (channel %zu, level %u) is %.9g, HF %.9g", jstr(run, "ref"), i, i / 256,
                         img->rgb[(i % 256) * 3 + i / 256], out[i], want);
        }
        free(ref);
        free(out);
    }
    gemma_image_free(img);
    gm_json_free(doc);
}

static void test_layout_and_buffer(void **state) {
    (void)state;
    gemma_image *img = load_fixture("pas_1001x300.png");
    gemma_preprocess_options o = gemma_preprocess_default_options();
    o.size = 32;
    o.pan_and_scan = 1;
    assert_int_equal(gemma_image_n_crops(img, &o), 4);
    assert_int_equal(gemma_image_preprocess_floats(img, &o), (size_t)4 * 3 * 32 * 32);
    int n;
    float *chw = preprocess(img, &o, &n);
    o.layout = GEMMA_LAYOUT_HWC;
    float *hwc = preprocess(img, &o, &n);
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 32 * 32; i++)
                if (chw[(size_t)k * 3072 + (size_t)c * 1024 + i] != hwc[(size_t)k * 3072 + (size_t)i * 3 + c])
                    fail_msg("HWC is not the transpose of CHW at crop %d channel %d pixel %d", k, c, i);

    /* GEMMA_ERR_BUFFER: asks, writes nothing */
    gemma_error err;
    size_t need = 0;
    int crops = 0;
    assert_int_equal(gemma_image_preprocess(img, &o, NULL, 0, &need, &crops, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(need, (size_t)4 * 3 * 32 * 32);
    assert_int_equal(crops, 4);
    hwc[0] = 12345.0f;
    assert_int_equal(gemma_image_preprocess(img, &o, hwc, need - 1, &need, NULL, &err), GEMMA_ERR_BUFFER);
    assert_true(hwc[0] == 12345.0f);
    assert_non_null(strstr(err.message, "need"));
    /* NULL options: the Gemma 3 defaults (896, no pan and scan) */
    assert_int_equal(gemma_image_n_crops(img, NULL), 1);
    assert_int_equal(gemma_image_preprocess_floats(img, NULL), (size_t)3 * 896 * 896);

    /* invalid options */
    gemma_preprocess_options b = gemma_preprocess_default_options();
    b.size = 0;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "size"));
    assert_int_equal(gemma_image_n_crops(img, &b), 0);
    b = gemma_preprocess_default_options();
    b.std[1] = 0.0f;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    b = gemma_preprocess_default_options();
    b.mean[2] = NAN;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    b = gemma_preprocess_default_options();
    b.layout = (gemma_pixel_layout)7;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    b = gemma_preprocess_default_options();
    b.pan_and_scan = 1;
    b.pan_and_scan_min_crop_size = 0;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    b.pan_and_scan_min_crop_size = 256;
    b.pan_and_scan_max_num_crops = 0;
    assert_int_equal(gemma_image_preprocess(img, &b, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_image_preprocess(NULL, NULL, chw, 1, NULL, NULL, &err), GEMMA_ERR_ARG);
    /* a crop beyond the image edge (tiny image, tiny crops): an error, not a read past the pixels */
    gemma_image *tiny;
    const uint8_t px[5 * 3] = {0};
    assert_int_equal(gemma_image_from_rgb(px, 5, 1, 0, &tiny, &err), GEMMA_OK);
    b.pan_and_scan_max_num_crops = 4;
    b.pan_and_scan_min_crop_size = 1;
    b.size = 4;
    float tmp[5 * 3 * 16];
    gemma_status st = gemma_image_preprocess(tiny, &b, tmp, 5 * 3 * 16, NULL, &n, &err);
    assert_int_equal(st, GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "empty"));
    gemma_image_free(tiny);
    free(chw);
    free(hwc);
    gemma_image_free(img);
}

/* ------------------------------------------------------------ bad input */

static char *read_fixture(const char *file, size_t *n) {
    char path[512], *d;
    gemma_error err;
    snprintf(path, sizeof path, "%s/%s", FIX, file);
    if (gm_read_file(path, 1 << 26, &d, n, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return d;
}

/* Decoding must fail with one line naming the input, or succeed; returns the image or NULL. */
static gemma_image *try_load(const void *d, size_t n, const char *name, const gemma_image_load_options *o,
                             gemma_error *err) {
    gemma_image *img = (gemma_image *)0x1;
    gemma_status st = gemma_image_load_memory(d, n, name, o, &img, err);
    if (st != GEMMA_OK) {
        assert_null(img);
        assert_int_equal(err->code, st);
        if (strchr(err->message, '\n') || strncmp(err->message, name, strlen(name)) != 0)
            fail_msg("error is not one line starting with the name: '%s'", err->message);
        return NULL;
    }
    return img;
}

static void expect_error(const void *d, size_t n, const char *name, gemma_status code, const char *needle) {
    gemma_error err;
    gemma_image *img = try_load(d, n, name, NULL, &err);
    if (img) {
        gemma_image_free(img);
        fail_msg("%s: decoded, expected an error containing '%s'", name, needle);
    }
    if (code && err.code != code) fail_msg("%s: status %d (%s), expected %d", name, err.code, err.message, code);
    if (needle && !strstr(err.message, needle)) fail_msg("%s: '%s' lacks '%s'", name, err.message, needle);
}

/* Each fixture cut at every byte of its first 200 and at 100 places after:
 * an error, or (a cut only in trailing bytes the pixels do not need, like a
 * PNG's IEND or a TGA footer) exactly the full image.  Never other pixels. */
static void test_truncated(void **state) {
    (void)state;
    static const char *const files[] = {"xray_grey.png", "interlaced16.png", "palette4.png", "photo_exif6.jpg",
                                        "progressive.jpg", "jpeg422.jpg", "photo24.bmp", "palette8.bmp",
                                        "plain.gif", "grey12.pgm", "rgb.ppm", "photo.tga", "rle.tga"};
    int cuts = 0, tail_ok = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        char *full = read_fixture(files[f], &n);
        gemma_error err;
        gemma_image *whole = try_load(full, n, files[f], NULL, &err);
        if (!whole) fail_msg("%s", err.message);
        size_t npx = (size_t)whole->w * whole->h * 3;
        for (size_t i = 0; i < 300; i++) {
            size_t cut = i < 200 ? i : 200 + (n - 200) * (i - 200) / 100;
            if (cut >= n) break;
            char *part = malloc(cut ? cut : 1);   /* exact size: ASan sees any overread */
            memcpy(part, full, cut);
            gemma_image *img = try_load(part, cut, files[f], NULL, &err);
            if (img) {
                int same = img->w == whole->w && img->h == whole->h && memcmp(img->rgb, whole->rgb, npx) == 0;
                if (!same || n - cut > 32)
                    fail_msg("%s cut to %zu of %zu bytes: decoded%s", files[f], cut, n, same ? "" : " to other pixels");
                tail_ok++;
                gemma_image_free(img);
            }
            free(part);
            cuts++;
        }
        gemma_image_free(whole);
        free(full);
    }
    print_message("  %d truncations: all errors, except %d cuts inside trailing bytes that give the full image\n", cuts,
                  tail_ok);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_corrupt_headers(void **state) {
    (void)state;
    size_t n;
    uint8_t *png = (uint8_t *)read_fixture("tiny_7x5.png", &n);
    uint8_t *c = malloc(n);
    /* IHDR width/height: zero, over the side limit, over the pixel limit */
    const struct {
        uint32_t w, h;
        const char *needle;
    } dims[] = {{0, 5, "0x5"}, {7, 0, "7x0"}, {100000, 5, "side"}, {60000, 60000, "pixels"}, {0x80000000u, 5, NULL}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        memcpy(c, png, n);
        put_be32(c + 16, dims[i].w);
        put_be32(c + 20, dims[i].h);
        clock_t t0 = clock();
        expect_error(c, n, "dims.png", 0, dims[i].needle);
        /* refused from the header: no 3.6 Gpixel allocation or decode */
        assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5);
    }
    /* caller limits */
    gemma_image_load_options lim = {.max_side = 6};
    gemma_error err;
    assert_null(try_load(png, n, "limit.png", &lim, &err));
    assert_non_null(strstr(err.message, "7x5"));
    lim = (gemma_image_load_options){.max_pixels = 34};
    assert_null(try_load(png, n, "limit.png", &lim, &err));
    assert_non_null(strstr(err.message, "35 pixels"));
    lim = (gemma_image_load_options){.max_pixels = 35, .max_side = 7};
    gemma_image *ok = try_load(png, n, "limit.png", &lim, &err);
    assert_non_null(ok);
    gemma_image_free(ok);
    /* IHDR not first, bit depth nonsense */
    memcpy(c, png, n);
    memcpy(c + 12, "IHDX", 4);
    expect_error(c, n, "noihdr.png", GEMMA_ERR_FORMAT, "IHDR");
    memcpy(c, png, n);
    c[24] = 7;
    expect_error(c, n, "depth.png", GEMMA_ERR_FORMAT, NULL);
    free(c);
    free(png);

    /* JPEG: SOF with zero height, 4 components (CMYK), a segment running past the end */
    size_t jn;
    uint8_t *jpg = (uint8_t *)read_fixture("jpeg444.jpg", &jn);
    c = malloc(jn);
    size_t sof = 0;
    for (size_t i = 2; i + 1 < jn; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            sof = i;
            break;
        }
    assert_true(sof > 0);
    memcpy(c, jpg, jn);
    c[sof + 5] = c[sof + 6] = 0;
    expect_error(c, jn, "zero.jpg", GEMMA_ERR_FORMAT, NULL);
    memcpy(c, jpg, jn);
    c[sof + 9] = 4;
    expect_error(c, jn, "four.jpg", GEMMA_ERR_UNSUPPORTED, "CMYK");
    memcpy(c, jpg, jn);
    c[4] = 0xff;   /* first segment length 0xff.. */
    c[5] = 0xff;
    expect_error(c, jn, "long.jpg", GEMMA_ERR_FORMAT, "past the end");
    memcpy(c, jpg, jn);
    c[sof + 7] = 0x40;   /* width 16k: fine, but the data is for 160 */
    c[sof + 8] = 0x00;
    gemma_image *img = try_load(c, jn, "wide.jpg", NULL, &err);   /* error or some image: never a crash */
    gemma_image_free(img);
    free(c);
    free(jpg);

    /* BMP: negative width, absurd bit depth */
    size_t bn;
    uint8_t *bmp = (uint8_t *)read_fixture("photo24.bmp", &bn);
    c = malloc(bn);
    memcpy(c, bmp, bn);
    c[21] = 0x80;   /* width < 0 */
    expect_error(c, bn, "negw.bmp", GEMMA_ERR_FORMAT, NULL);
    memcpy(c, bmp, bn);
    c[28] = 77;
    expect_error(c, bn, "bpp.bmp", GEMMA_ERR_FORMAT, NULL);
    free(c);
    free(bmp);

    /* PNM: maxval 0 and 70000, huge dimensions, missing fields */
    expect_error("P5 2 2 0\n\1\2\3\4", 13, "max0.pgm", GEMMA_ERR_FORMAT, "maxval");
    expect_error("P5 2 2 70000\n\1\2\3\4\5\6\7\10", 21, "max7.pgm", GEMMA_ERR_FORMAT, "maxval");
    expect_error("P6 99999999 99999999 255\n", 25, "huge.ppm", GEMMA_ERR_FORMAT, NULL);
    expect_error("P6 30000 30000 255\n", 19, "big.ppm", GEMMA_ERR_FORMAT, "pixels");
    expect_error("P5 2\n", 5, "short.pgm", GEMMA_ERR_FORMAT, "PNM header");
    /* GIF: zero-sized screen */
    uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0, 0, 0, 0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3b};
    expect_error(gif, sizeof gif, "zero.gif", GEMMA_ERR_FORMAT, NULL);
}

static void test_not_images(void **state) {
    (void)state;
    expect_error("", 0, "empty.png", GEMMA_ERR_FORMAT, "empty");
    expect_error("hello, world\n", 13, "notes.txt", GEMMA_ERR_FORMAT, "not an image");
    expect_error("\x7f" "ELF\2\1\1\0\0\0\0\0", 12, "a.out", GEMMA_ERR_FORMAT, "not an image");
    expect_error("RIFF\0\0\0\0WEBPVP8 ", 16, "x.webp", GEMMA_ERR_UNSUPPORTED, "WebP");
    expect_error("II*\0\10\0\0\0", 8, "x.tif", GEMMA_ERR_UNSUPPORTED, "TIFF");
    expect_error("8BPS\0\1", 6, "x.psd", GEMMA_ERR_UNSUPPORTED, "PSD");
    expect_error("#?RADIANCE\n", 11, "x.hdr", GEMMA_ERR_UNSUPPORTED, "HDR");
    expect_error("P3\n1 1\n255\n0 0 0\n", 17, "x.ppm", GEMMA_ERR_UNSUPPORTED, "ASCII");
    /* random bytes named .tga: stb_image's lax TGA probe must not turn them into a picture silently */
    uint8_t junk[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    gemma_error err;
    gemma_image *img = try_load(junk, sizeof junk, "junk.bin", NULL, &err);
    assert_null(img);

    size_t n;
    char *cmyk = read_fixture("cmyk.jpg", &n);
    expect_error(cmyk, n, "cmyk.jpg", GEMMA_ERR_UNSUPPORTED, "CMYK");
    free(cmyk);
    char path[512];
    snprintf(path, sizeof path, "%s/cmyk.jpg", FIX);
    assert_int_equal(gemma_image_load(path, NULL, &img, &err), GEMMA_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, path));
    assert_int_equal(gemma_image_load(FIX "/no-such-file.png", NULL, &img, &err), GEMMA_ERR_IO);
    assert_non_null(strstr(err.message, "no-such-file.png"));
    assert_int_equal(gemma_image_load(FIX, NULL, &img, &err), GEMMA_ERR_IO);   /* a directory */
    const char *empty = tu_dir("image-empty");
    snprintf(path, sizeof path, "%s/empty.jpg", empty);
    tu_write(path, "", 0);
    assert_int_equal(gemma_image_load(path, NULL, &img, &err), GEMMA_ERR_FORMAT);
    assert_non_null(strstr(err.message, "empty"));

    /* API misuse */
    assert_int_equal(gemma_image_load(NULL, NULL, &img, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_image_load_memory(NULL, 5, NULL, NULL, &img, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_image_load_memory("x", 1, NULL, NULL, NULL, &err), GEMMA_ERR_ARG);
    uint8_t px[12] = {0};
    assert_int_equal(gemma_image_from_rgb(NULL, 2, 2, 0, &img, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_image_from_rgb(px, 0, 2, 0, &img, &err), GEMMA_ERR_FORMAT);
    assert_int_equal(gemma_image_from_rgb(px, 2, 2, 5, &img, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_image_from_rgb(px, 100000, 1, 0, &img, &err), GEMMA_ERR_FORMAT);
    assert_int_equal(gemma_image_from_rgb(px, 2, 2, 6, &img, &err), GEMMA_OK);
    assert_string_equal(gemma_image_format(img), "rgb");
    gemma_image_free(img);
    gemma_image_free(NULL);
    assert_int_equal(gemma_image_width(NULL), 0);
    assert_null(gemma_image_rgb(NULL));
}

/* Byte flips in every fixture's first 512 bytes (headers, tables): whatever
 * decodes must decode without a crash (ASan build), failures are one line. */
static void test_mutations(void **state) {
    (void)state;
    static const char *const files[] = {"tiny_7x5.png", "grey1.png", "palette4.png", "interlaced.png", "jpeg444.jpg",
                                        "progressive.jpg", "palette8.bmp", "plain.gif", "rle.tga", "grey100.pgm"};
    uint32_t s = 99;
    int decoded = 0, failed = 0;
    gemma_image_load_options lim = {.max_pixels = 1 << 22};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        char *full = read_fixture(files[f], &n);
        uint8_t *m = malloc(n);
        for (int t = 0; t < 150; t++) {
            memcpy(m, full, n);
            for (int k = 0; k < 1 + t % 3; k++) {
                s = s * 1103515245u + 12345u;
                size_t at = (s >> 8) % (n < 512 ? n : 512);
                s = s * 1103515245u + 12345u;
                m[at] ^= (uint8_t)(1u << ((s >> 16) & 7));
            }
            gemma_error err;
            gemma_image *img = try_load(m, n, files[f], &lim, &err);
            if (img) {
                decoded++;
                gemma_preprocess_options o = gemma_preprocess_default_options();
                o.size = 8;
                o.pan_and_scan = 1;
                o.pan_and_scan_min_crop_size = 1;
                size_t need = gemma_image_preprocess_floats(img, &o);
                float *out = malloc(need * sizeof *out);
                gemma_image_preprocess(img, &o, out, need, NULL, NULL, &err);
                free(out);
                gemma_image_free(img);
            } else {
                failed++;
            }
        }
        free(m);
        free(full);
    }
    print_message("  %d mutated files: %d decoded, %d refused, none crashed\n", decoded + failed, decoded, failed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_pil),
        cmocka_unit_test(test_exif_orientation_parser),
        cmocka_unit_test(test_preprocess_matches_hf),
        cmocka_unit_test(test_pan_and_scan_crops),
        cmocka_unit_test(test_preprocess_older_pillows),
        cmocka_unit_test(test_level_table),
        cmocka_unit_test(test_layout_and_buffer),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_not_images),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
