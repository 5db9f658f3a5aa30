/* test_multimodal.c - the text side of images: gemma_session_eval_mm.
 *
 * Parity of whole multimodal prompts against transformers lives in the
 * parity tests; these check the mechanics on a real multimodal checkpoint
 * (the mm-f32-hub-sharded fixture, whose image token 262144 lies outside its
 * 333-token vocabulary, as in transformers' tiny test models): image rows
 * replace embeddings unscaled, an image run attends bidirectionally and
 * nothing before it sees it, runs are never split across batches, and every
 * misuse is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gemma.h"

#define FIXTURE GEMMA_FIXTURES_DIR "/gemma3/mm-f32-hub-sharded"
#define IMG 262144
#define N 12

static gemma_model *model;
static int vocab, hidden;
/* 3 text tokens, an image of 5, 4 text tokens */
static const int32_t prompt[N] = {2, 17, 40, IMG, IMG, IMG, IMG, IMG, 9, 33, 101, 7};
static float embeds[5 * 64];

static int setup(void **state) {
    (void)state;
    gemma_error err;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_EXACT};
    if (gemma_model_load(FIXTURE, &mo, &model, &err) != GEMMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    vocab = gemma_model_vocab_size(model);
    hidden = gemma_model_hidden_size(model);
    uint32_t r = 7;
    for (int i = 0; i < 5 * hidden; i++) {
        r = r * 1664525u + 1013904223u;
        embeds[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 4.0f;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gemma_model_free(model);
    return 0;
}

/* All-position logits of prompt with embeds, in batches of n_batch (-1 = plain eval). */
static gemma_status run(const int32_t *toks, int n, const float *e, size_t n_e, int n_batch, float *out,
                        gemma_error *err) {
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 32;
    o.n_batch = n_batch;
    o.n_threads = 2;
    if (gemma_session_create(model, &o, &s, err) != GEMMA_OK) return err->code;
    gemma_status st = gemma_session_eval_mm(s, toks, (size_t)n, e, n_e, GEMMA_LOGITS_ALL, out, err);
    if (!st) assert_int_equal(gemma_session_position(s), n);
    gemma_session_free(s);
    return st;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

static void test_image_token_and_text_equivalence(void **state) {
    (void)state;
    assert_int_equal(gemma_model_image_token(model), IMG);
    /* no image tokens: eval_mm is eval */
    static float a[N * 400], b[N * 400];
    gemma_error err;
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 32;
    o.n_threads = 1;
    assert_int_equal(gemma_session_create(model, &o, &s, &err), GEMMA_OK);
    int32_t text[4] = {2, 17, 40, 9};
    assert_int_equal(gemma_session_eval(s, text, 4, GEMMA_LOGITS_ALL, a, &err), GEMMA_OK);
    gemma_session_reset(s);
    assert_int_equal(gemma_session_eval_mm(s, text, 4, NULL, 0, GEMMA_LOGITS_ALL, b, &err), GEMMA_OK);
    assert_memory_equal(a, b, 4 * (size_t)vocab * sizeof(float));
    /* plain eval still refuses the image token: it is outside the vocabulary */
    assert_int_equal(gemma_session_eval(s, prompt, N, GEMMA_LOGITS_LAST, a, &err), GEMMA_ERR_ARG);
    gemma_session_free(s);
}

static void test_bidirectional_within_the_image(void **state) {
    (void)state;
    static float base[N * 400], changed[N * 400];
    gemma_error err;
    assert_int_equal(run(prompt, N, embeds, 5, 0, base, &err), GEMMA_OK);
    /* change the last image row: positions before the image are untouched,
     * every image position changes (it sees the whole run), and so does the text after */
    static float e2[5 * 64];
    memcpy(e2, embeds, sizeof e2);
    for (int d = 0; d < hidden; d++) e2[4 * hidden + d] += 1.0f;
    assert_int_equal(run(prompt, N, e2, 5, 0, changed, &err), GEMMA_OK);
    size_t V = (size_t)vocab;
    assert_true(max_diff(base, changed, 3 * V) == 0.0);
    for (int p = 3; p < N; p++)
        if (!(max_diff(base + p * V, changed + p * V, V) > 1e-4)) fail_msg("position %d did not see the last image row", p);
    /* the image rows are used as given: the same rows at another scale change the logits */
    for (int d = 0; d < 5 * hidden; d++) e2[d] = embeds[d] * 2.0f;
    assert_int_equal(run(prompt, N, e2, 5, 0, changed, &err), GEMMA_OK);
    assert_true(max_diff(base + 3 * V, changed + 3 * V, V) > 1e-4);
}

static void test_runs_are_never_split(void **state) {
    (void)state;
    static float whole[N * 400], split[N * 400];
    gemma_error err;
    assert_int_equal(run(prompt, N, embeds, 5, 0, whole, &err), GEMMA_OK);
    /* batches of 5 and 6 would cut the run at 3..7; the step ends before it instead */
    for (int nb = 5; nb <= 7; nb++) {
        assert_int_equal(run(prompt, N, embeds, 5, nb, split, &err), GEMMA_OK);
        double d = max_diff(whole, split, (size_t)N * vocab);
        if (d > 1e-4) fail_msg("n_batch %d: max |d| %g", nb, d);
    }
    /* a run longer than a batch is refused */
    assert_int_equal(run(prompt, N, embeds, 5, 4, split, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "does not fit in one batch"));
}

static void test_misuse(void **state) {
    (void)state;
    static float out[N * 400];
    gemma_error err;
    assert_int_equal(run(prompt, N, embeds, 4, 0, out, &err), GEMMA_ERR_ARG);   /* 5 image tokens, 4 rows */
    assert_non_null(strstr(err.message, "5 image tokens but 4 image embeddings"));
    assert_int_equal(run(prompt, N, NULL, 5, 0, out, &err), GEMMA_ERR_ARG);
    int32_t bad[3] = {2, 5000, IMG};
    assert_int_equal(run(bad, 3, embeds, 1, 0, out, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "outside the vocabulary"));
    assert_int_equal(gemma_session_eval_mm(NULL, prompt, N, embeds, 5, GEMMA_LOGITS_NONE, NULL, &err), GEMMA_ERR_ARG);
    /* a text-only model takes no images */
    gemma_model *text;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_EXACT};
    assert_int_equal(gemma_model_load(GEMMA_FIXTURES_DIR "/gemma3/text-f32-hub", &mo, &text, &err), GEMMA_OK);
    assert_int_equal(gemma_model_image_token(text), -1);
    gemma_session *s;
    assert_int_equal(gemma_session_create(text, NULL, &s, &err), GEMMA_OK);
    assert_int_equal(gemma_session_eval_mm(s, prompt, N, embeds, 5, GEMMA_LOGITS_NONE, NULL, &err),
                     GEMMA_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "takes no images"));
    gemma_session_free(s);
    gemma_model_free(text);
}

/* A GGUF text model takes llama.cpp's mmproj file: named, or found beside it in a folder. */
static void test_mmproj_pairing(void **state) {
    (void)state;
    const char *text = GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf";   /* hidden 128 */
    const char *proj = GEMMA_FIXTURES_DIR "/siglip/gguf-f16/mmproj.gguf";   /* projection_dim 64 */
    gemma_error err;
    gemma_model *m;
    gemma_model_options mo = {.mmproj = proj};
    assert_int_equal(gemma_model_load(text, &mo, &m, &err), GEMMA_ERR_FORMAT);
    assert_non_null(strstr(err.message, "gives 64 values per token, the text model takes 128"));
    mo.mmproj = GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf";          /* not an mmproj */
    assert_int_equal(gemma_model_load(text, &mo, &m, &err) == GEMMA_OK, 0);
    mo.mmproj = proj;                                                          /* safetensors: refused */
    assert_int_equal(gemma_model_load(GEMMA_FIXTURES_DIR "/gemma3/text-f32-hub", &mo, &m, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "goes with a GGUF text model"));
    mo.text_only = 1;   /* text only: the mmproj is not even opened */
    assert_int_equal(gemma_model_load(text, &mo, &m, &err), GEMMA_OK);
    assert_int_equal(gemma_model_has_vision(m), 0);
    gemma_model_free(m);

    /* a folder with the model and one mmproj*.gguf pairs them; with two it asks which */
    char dir[512], a[600], b[600];
    snprintf(dir, sizeof dir, "%s/mmproj-pair", GEMMA_TEST_TMPDIR);
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/model.gguf", dir);
    snprintf(b, sizeof b, "%s/mmproj-other.gguf", dir);
    unlink(b);   /* from an earlier run */
    snprintf(b, sizeof b, "%s/mmproj-model-f16.gguf", dir);
    unlink(a);
    unlink(b);
    assert_int_equal(symlink(text, a), 0);
    assert_int_equal(symlink(proj, b), 0);
    mo = (gemma_model_options){0};
    assert_int_equal(gemma_model_load(dir, &mo, &m, &err), GEMMA_ERR_FORMAT);
    assert_non_null(strstr(err.message, "gives 64 values per token"));
    snprintf(b, sizeof b, "%s/mmproj-other.gguf", dir);
    unlink(b);
    assert_int_equal(symlink(proj, b), 0);
    assert_int_equal(gemma_model_load(dir, &mo, &m, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "several mmproj"));
    mo.text_only = 1;
    assert_int_equal(gemma_model_load(dir, &mo, &m, &err), GEMMA_OK);
    gemma_model_free(m);
    /* a text model has no tower to encode with */
    assert_int_equal(gemma_model_load(text, NULL, &m, &err), GEMMA_OK);
    gemma_session *s;
    assert_int_equal(gemma_session_create(m, NULL, &s, &err), GEMMA_OK);
    float px[3 * 4], out[4];
    assert_int_equal(gemma_session_encode_images(s, px, 1, out, &err), GEMMA_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "no vision tower"));
    gemma_session_free(s);
    gemma_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_token_and_text_equivalence),
        cmocka_unit_test(test_bidirectional_within_the_image),
        cmocka_unit_test(test_runs_are_never_split),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_mmproj_pairing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
