/* test_mm_parity.c - whole multimodal prompts against transformers.
 *
 * For each fixture in tests/fixtures/mm/MANIFEST (make_mm_fixtures.py): the
 * checkpoint's vision tower turns the HF processor's pixel values into image
 * features that must match get_image_features, and the prompt with those
 * features spliced in (gemma_session_eval_mm) must give transformers'
 * all-position logits: max|d| <= 2e-3 max|ref|, same top-1 where the margin
 * is clear.  Every kernel table, 1 and 2 threads, and several batch sizes
 * (image runs are never split, text around them is). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "fixture.h"
#include "gemma.h"
#include "kernels/kernels.h"
#include "runtime/session.h"

#define ROOT GEMMA_FIXTURES_DIR "/mm"

typedef struct {
    char dir[1024];
    int32_t tokens[512];
    int n_tokens, vocab, n_images, image_size, tokens_per_image, hidden;
    char image_names[8][128];
    float *pixels, *features, *logits;
} mm_fixture;

static int load(const char *name, mm_fixture *f) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", ROOT, name);
    char path[1200], *text;
    size_t len;
    gemma_error err;
    snprintf(path, sizeof path, "%s/fixture.json", f->dir);
    if (gm_read_file(path, 1 << 20, &text, &len, &err)) return 0;
    gm_json_doc *doc = gm_json_parse(text, len, NULL, NULL, 0);
    free(text);
    if (!doc) return 0;
    const gm_json *r = gm_json_root(doc), *toks = gm_json_get(r, "tokens");
    int64_t v;
    int ok = toks && gm_json_count(toks) <= 512;
    f->n_tokens = (int)gm_json_count(toks);
    for (int i = 0; ok && i < f->n_tokens; i++) {
        ok = gm_json_int(gm_json_at(toks, (size_t)i), &v);
        f->tokens[i] = (int32_t)v;
    }
    struct { const char *key; int *dst; } ints[] = {{"vocab_size", &f->vocab}, {"image_size", &f->image_size},
                                                  {"tokens_per_image", &f->tokens_per_image}, {"hidden", &f->hidden}};
    for (size_t i = 0; ok && i < sizeof ints / sizeof ints[0]; i++) {
        ok = gm_json_int(gm_json_get(r, ints[i].key), &v);
        *ints[i].dst = (int)v;
    }
    const gm_json *images = gm_json_get(r, "images");
    f->n_images = (int)gm_json_count(images);
    if (f->n_images > 8) ok = 0;
    for (int i = 0; ok && i < f->n_images; i++) {
        const char *nm = gm_json_string(gm_json_at(images, (size_t)i));
        ok = nm != NULL;
        if (ok) snprintf(f->image_names[i], sizeof f->image_names[i], "%s", nm);
    }
    gm_json_free(doc);
    if (!ok) return 0;
    size_t S = (size_t)f->image_size;
    snprintf(path, sizeof path, "%s/pixels.f32", f->dir);
    f->pixels = fixture_read_f32(path, (size_t)f->n_images * 3 * S * S);
    snprintf(path, sizeof path, "%s/features.f32", f->dir);
    f->features = fixture_read_f32(path, (size_t)f->n_images * f->tokens_per_image * f->hidden);
    snprintf(path, sizeof path, "%s/ref_hf.f32", f->dir);
    f->logits = fixture_read_f32(path, (size_t)f->n_tokens * f->vocab);
    return f->pixels && f->features && f->logits;
}

static void unload(mm_fixture *f) {
    free(f->pixels);
    free(f->features);
    free(f->logits);
}

static double rel_err(const float *got, const float *ref, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= d)) d = isnan(e) ? INFINITY : e;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? d / m : d;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

static void test_fixture(void **state) {
    const char *name = *state;
    mm_fixture f;
    assert_true(load(name, &f));
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_EXACT};
    if (gemma_model_load(f.dir, &mo, &m, &err) != GEMMA_OK) fail_msg("load %s: %s", f.dir, err.message);
    assert_true(gemma_model_has_vision(m));
    assert_int_equal(gemma_model_image_size(m), f.image_size);
    assert_int_equal(gemma_model_image_tokens(m), f.tokens_per_image);
    size_t nf = (size_t)f.n_images * f.tokens_per_image * f.hidden, nl = (size_t)f.n_tokens * f.vocab;
    float *feats = malloc(nf * sizeof(float)), *logits = malloc(nl * sizeof(float));
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    const char *only = getenv("GEMMA_PARITY_ISAS"), *tenv = getenv("GEMMA_PARITY_THREADS");
    int max_threads = tenv && atoi(tenv) > 0 ? atoi(tenv) : 2, batches[] = {0, 9, 5}, runs = 0;
    double worst_feat = 0, worst_logit = 0;
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        const gm_kernels *k = gm_kernels_by_name(isas[ii]);
        if (!k || (only && *only && !strstr(only, isas[ii]))) continue;
        for (int threads = 1; threads <= max_threads; threads++)
            for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
                gemma_session *s;
                gemma_session_options o = gemma_session_default_options();
                o.n_ctx = f.n_tokens;
                o.n_batch = batches[bi];
                o.n_threads = threads;
                assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
                s->k = k;   /* test hook: force this kernel table */
                if (gemma_session_encode_images(s, f.pixels, f.n_images, feats, &err))
                    fail_msg("encode: %s", err.message);
                double ef = rel_err(feats, f.features, nf);
                if (ef > worst_feat) worst_feat = ef;
                if (ef > 1e-4) fail_msg("%s [%s, %d threads]: image features rel err %.3g", name, isas[ii], threads, ef);
                for (size_t i = 0; i < nl; i++) logits[i] = -12345.0f;
                if (gemma_session_eval_mm(s, f.tokens, (size_t)f.n_tokens, feats, nf / (size_t)f.hidden,
                                          GEMMA_LOGITS_ALL, logits, &err))
                    fail_msg("eval: %s", err.message);
                double clear = 2e-3 * max_abs(f.logits, nl);
                logit_cmp c = compare_logits(logits, f.logits, f.n_tokens, f.vocab, clear);
                if (c.rel > worst_logit) worst_logit = c.rel;
                if (c.rel > 2e-3 || c.top1_mismatch)
                    fail_msg("%s [%s, %d threads, n_batch %d]: logits rel err %.3g, top-1 mismatches %d/%d", name,
                             isas[ii], threads, batches[bi], c.rel, c.top1_mismatch, c.top1_checked);
                gemma_session_free(s);
                runs++;
            }
    }
    printf("MM-PARITY %-14s %2d runs  %d images: features rel err %.2e, logits rel err %.2e vs transformers\n", name,
           runs, f.n_images, worst_feat, worst_logit);

    /* From the image files: our decode + resize against the PIL processor's pixels (Pillow 13), then the
     * whole chain.  The pixels must be equal, JPEG included (libjpeg-turbo-exact decoding), so the logits
     * must match as tightly as from the reference pixels. */
    size_t S = (size_t)f.image_size, per = 3 * S * S;
    float *ours = malloc((size_t)f.n_images * per * sizeof(float));
    gemma_preprocess_options po = gemma_preprocess_default_options();
    po.size = f.image_size;
    gemma_model_image_norm(m, po.mean, po.std);
    po.pillow_version = 0;   /* Pillow 13, as the fixture's pixels (make_mm_fixtures.py pixels) */
    for (int i = 0; i < f.n_images; i++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", f.dir, f.image_names[i]);
        gemma_image *img;
        if (gemma_image_load(path, NULL, &img, &err)) fail_msg("%s", err.message);
        int nc;
        if (gemma_image_preprocess(img, &po, ours + i * per, per, NULL, &nc, &err)) fail_msg("%s", err.message);
        double worst = 0;
        for (size_t e = 0; e < per; e++) {
            double d = fabs((double)ours[i * per + e] - f.pixels[i * per + e]) * 127.5;   /* in 8-bit levels */
            if (d > worst) worst = d;
        }
        printf("MM-PARITY %-14s %s: max pixel diff vs the HF processor %.3g levels\n", name, f.image_names[i], worst);
        if (worst > 0) fail_msg("%s: pixels differ by %.3g levels", f.image_names[i], worst);
        gemma_image_free(img);
    }
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = f.n_tokens;
    o.n_threads = max_threads;
    assert_int_equal(gemma_session_create(m, &o, &s, &err), GEMMA_OK);
    assert_int_equal(gemma_session_encode_images(s, ours, f.n_images, feats, &err), GEMMA_OK);
    assert_int_equal(gemma_session_eval_mm(s, f.tokens, (size_t)f.n_tokens, feats, nf / (size_t)f.hidden,
                                           GEMMA_LOGITS_ALL, logits, &err), GEMMA_OK);
    logit_cmp c = compare_logits(logits, f.logits, f.n_tokens, f.vocab, 2e-3 * max_abs(f.logits, nl));
    printf("MM-PARITY %-14s from the files: logits rel err %.2e, top-1 %d/%d where the margin is clear\n", name, c.rel,
           c.top1_checked - c.top1_mismatch, c.top1_checked);
    if (c.rel > 2e-3 || c.top1_mismatch) fail_msg("from the image files: logits rel err %.3g", c.rel);
    gemma_session_free(s);
    free(ours);
    free(feats);
    free(logits);
    gemma_model_free(m);
    unload(&f);
}

int main(void) {
    static char names[16][128];
    int n = fixture_list(ROOT, names, 16);
    if (n == 0) {
        fprintf(stderr, "no fixtures in %s/MANIFEST\n", ROOT);
        return 1;
    }
    struct CMUnitTest tests[16];
    for (int i = 0; i < n; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_fixture, names[i]);
        tests[i].name = names[i];
    }
    return _cmocka_run_group_tests("mm-parity", tests, (size_t)n, NULL, NULL);
}
