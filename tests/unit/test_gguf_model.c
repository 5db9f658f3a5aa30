/* test_gguf_model.c - GGUF files as models: what loads, and every way a GGUF
 * language model can be wrong failing with one line naming the file and the
 * key or tensor.  The valid file is the committed parity fixture gguf-mixed
 * (tools/reference/make_gguf_model_fixtures.py); each test patches a few bytes
 * of a copy, keeping lengths, so only the one thing under test changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/mapfile.h"
#include "gemma.h"
#include "unit/testutil.h"

#define FIXTURE GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf"

static unsigned char *read_all(const char *path, size_t *n) {
    char *buf;
    gemma_error err;
    if (gm_read_file(path, 64u << 20, &buf, n, &err) != GEMMA_OK) fail_msg("%s", err.message);
    return (unsigned char *)buf;
}

/* Replace the first occurrence of `from` (n bytes) after byte `start` by `to` (same length). */
static void patch(unsigned char *buf, size_t len, size_t start, const void *from, const void *to, size_t n) {
    for (size_t i = start; i + n <= len; i++)
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            return;
        }
    fail_msg("pattern not found in the fixture");
}

/* Offset just past a metadata key's name (its value's type follows). */
static size_t key_end(const unsigned char *buf, size_t len, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 8; i + n <= len; i++)
        if (memcmp(buf + i, key, n) == 0 && buf[i - 8] == n) return i + n;
    fail_msg("key %s not found", key);
    return 0;
}

static const char *write_copy(const char *name, const unsigned char *buf, size_t len) {
    static char path[1200];
    const char *dir = tu_dir(name);
    tu_path(path, sizeof path, dir, "model.gguf");
    tu_write(path, buf, len);
    return path;
}

static void expect_error(const char *path, gemma_status code, const char *s1, const char *s2) {
    gemma_error err;
    gemma_model *m = (gemma_model *)0x1;
    gemma_status st = gemma_model_load(path, NULL, &m, &err);
    if (st == GEMMA_OK) {
        gemma_model_free(m);
        fail_msg("%s: loaded, expected an error containing '%s'", path, s1);
    }
    assert_null(m);
    if (code) assert_int_equal(st, code);
    const char *why = tu_message_problem(err.message, path, s1, s2);
    if (why) fail_msg("message '%s' %s", err.message, why);
}

/* ================================================================ loads */

static void test_file_and_directory_load(void **state) {
    (void)state;
    gemma_error err;
    gemma_model *m;
    assert_int_equal(gemma_model_load(FIXTURE, NULL, &m, &err), GEMMA_OK);
    assert_int_equal(gemma_model_vocab_size(m), 300);
    assert_int_equal(gemma_model_n_layers(m), 6);
    assert_int_equal(gemma_model_hidden_size(m), 128);
    assert_non_null(strstr(gemma_model_describe(m), "embed Q8_0"));
    gemma_model_free(m);

    /* a directory with one model .gguf, no config.json, and an mmproj beside it: the mmproj is not
     * taken for the model but paired with it as its vision file, so a broken one is an error naming it
     * (text_only skips it) */
    size_t len;
    unsigned char *buf = read_all(FIXTURE, &len);
    const char *path = write_copy("gguf_dir", buf, len);
    char dir[1200], other[1300];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    tu_write(tu_path(other, sizeof other, dir, "mmproj-model-f16.gguf"), "GGUF", 4);
    gemma_model_options text_only = {.text_only = 1};
    assert_int_equal(gemma_model_load(dir, &text_only, &m, &err), GEMMA_OK);
    assert_int_equal(gemma_model_vocab_size(m), 300);
    gemma_model_free(m);
    assert_int_not_equal(gemma_model_load(dir, NULL, &m, &err), GEMMA_OK);
    assert_non_null(strstr(err.message, "mmproj-model-f16.gguf"));

    /* two candidates: ambiguous, the user must name the file */
    tu_write(tu_path(other, sizeof other, dir, "second.gguf"), buf, len);
    gemma_model *m2 = (gemma_model *)0x1;
    assert_int_not_equal(gemma_model_load(dir, NULL, &m2, &err), GEMMA_OK);
    assert_null(m2);
    const char *why = tu_message_problem(err.message, dir, "more than one", ".gguf");
    if (why) fail_msg("message '%s' %s", err.message, why);
    free(buf);
}

/* ============================================================ bad input */

static void test_other_architectures(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = read_all(FIXTURE, &len);
    size_t at = key_end(buf, len, "general.architecture");
    patch(buf, len, at, "gemma3", "llama\x01", 6);   /* the value, not the key prefixes */
    expect_error(write_copy("gguf_arch", buf, len), GEMMA_ERR_UNSUPPORTED, "general.architecture", "not supported");
    free(buf);

    /* a multimodal projector is not a language model */
    expect_error(GEMMA_FIXTURES_DIR "/mmproj/mmproj-f16.gguf", GEMMA_ERR_ARG, "mmproj", "general.architecture");
}

static void test_missing_and_misshapen_tensors(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = read_all(FIXTURE, &len);
    patch(buf, len, 0, "blk.2.attn_k.weight", "blk.2.attn_x.weight", 19);
    expect_error(write_copy("gguf_missing", buf, len), GEMMA_ERR_FORMAT, "missing tensor",
                 "model.layers.2.self_attn.k_proj.weight");
    free(buf);

    /* the config says ffn 512 but the tensors hold 256 */
    buf = read_all(FIXTURE, &len);
    size_t at = key_end(buf, len, "gemma3.feed_forward_length");
    uint32_t type, v;
    memcpy(&type, buf + at, 4);
    assert_int_equal(type, 4);   /* UINT32 */
    memcpy(&v, buf + at + 4, 4);
    assert_int_equal(v, 256);
    v = 512;
    memcpy(buf + at + 4, &v, 4);
    expect_error(write_copy("gguf_shape", buf, len), GEMMA_ERR_FORMAT, "mlp.gate_proj.weight", "expected [512, 128]");
    free(buf);

    /* a required key missing */
    buf = read_all(FIXTURE, &len);
    patch(buf, len, 0, "gemma3.block_count", "gemma3.block_cnt__", 18);
    expect_error(write_copy("gguf_nokey", buf, len), GEMMA_ERR_FORMAT, "missing metadata key", "gemma3.block_count");
    free(buf);

    /* a value out of range */
    buf = read_all(FIXTURE, &len);
    at = key_end(buf, len, "gemma3.attention.head_count_kv");
    v = 3;   /* 4 heads are not a multiple of 3 */
    memcpy(buf + at + 4, &v, 4);
    expect_error(write_copy("gguf_gqa", buf, len), GEMMA_ERR_FORMAT, "head_count", "multiple");
    free(buf);
}

static void test_truncated(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = read_all(FIXTURE, &len);
    size_t cuts[] = {3, 24, 200, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *p = write_copy("gguf_trunc", buf, cuts[i]);
        gemma_error err;
        gemma_model *m = (gemma_model *)0x1;
        /* a 3-byte file is not recognisably GGUF: a usage error, not a crash */
        assert_int_not_equal(gemma_model_load(p, NULL, &m, &err), GEMMA_OK);
        assert_null(m);
        assert_null(strchr(err.message, '\n'));
        assert_non_null(strstr(err.message, p));
    }
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_directory_load),
        cmocka_unit_test(test_other_architectures),
        cmocka_unit_test(test_missing_and_misshapen_tensors),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
