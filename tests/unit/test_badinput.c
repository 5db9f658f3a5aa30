/* test_badinput.c - every corrupt, truncated or inconsistent model directory
 * must fail to load with a one-line error naming the file and the tensor or
 * field at fault, never a crash.  Each test corrupts one thing in an
 * otherwise valid tiny model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma.h"
#include <unistd.h>
#include "unit/testutil.h"

/* Load dir; expect failure with `code` and a message containing each of the strings. */
static void expect_load_error(const char *dir, gemma_status code, const char *s1, const char *s2) {
    gemma_error err;
    gemma_model *m = (gemma_model *)0x1;
    gemma_status st = gemma_model_load(dir, NULL, &m, &err);
    if (st == GEMMA_OK) {
        gemma_model_free(m);
        fail_msg("%s: loaded, expected an error containing '%s'", dir, s1);
    }
    assert_null(m);
    assert_int_equal(err.code, st);
    if (code) assert_int_equal(st, code);
    assert_null(strchr(err.message, '\n'));
    if (s1 && !strstr(err.message, s1)) fail_msg("message '%s' lacks '%s'", err.message, s1);
    if (s2 && !strstr(err.message, s2)) fail_msg("message '%s' lacks '%s'", err.message, s2);
}

static const char *write_variant(const char *name, tu_model *m, const char *config) {
    const char *dir = tu_dir(name);
    tu_model_write(m, dir, config);
    return dir;
}

/* Numerics: llama.cpp's is for GGUF files only; unknown values and names are refused. */
static void test_numerics_options(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("numerics", &m, NULL);
    gemma_error err;
    gemma_model *model = (gemma_model *)&err;
    gemma_model_options mo = {.numerics = GEMMA_NUMERICS_LLAMACPP};
    assert_int_equal(gemma_model_load(dir, &mo, &model, &err), GEMMA_ERR_UNSUPPORTED);
    assert_null(model);
    assert_non_null(strstr(err.message, "numerics llamacpp is for GGUF files"));
    mo.numerics = (gemma_numerics)7;
    assert_int_equal(gemma_model_load(dir, &mo, &model, &err), GEMMA_ERR_ARG);
    mo.numerics = GEMMA_NUMERICS_EXACT;
    assert_int_equal(gemma_model_load(dir, &mo, &model, &err), GEMMA_OK);
    assert_int_equal(gemma_model_numerics(model), GEMMA_NUMERICS_EXACT);
    assert_non_null(strstr(gemma_model_describe(model), "numerics exact"));
    gemma_model_free(model);
    assert_int_equal(gemma_numerics_parse("llamacpp"), GEMMA_NUMERICS_LLAMACPP);
    assert_int_equal(gemma_numerics_parse("auto"), GEMMA_NUMERICS_AUTO);
    assert_int_equal(gemma_numerics_parse("LLAMACPP"), -1);
    assert_int_equal(gemma_numerics_parse(NULL), -1);
    assert_string_equal(gemma_numerics_name(GEMMA_NUMERICS_EXACT), "exact");
    assert_string_equal(gemma_numerics_name((gemma_numerics)9), "?");
    /* a GGUF file: AUTO is llamacpp */
    mo.numerics = GEMMA_NUMERICS_AUTO;
    assert_int_equal(gemma_model_load(GEMMA_FIXTURES_DIR "/gemma3/gguf-mixed/model.gguf", &mo, &model, &err), GEMMA_OK);
    assert_int_equal(gemma_model_numerics(model), GEMMA_NUMERICS_LLAMACPP);
    gemma_model_free(model);
    tu_model_free(&m);
}

static void test_valid_model_loads(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("valid", &m, NULL);
    gemma_error err;
    gemma_model *model;
    assert_int_equal(gemma_model_load(dir, NULL, &model, &err), GEMMA_OK);
    assert_int_equal(gemma_model_vocab_size(model), TU_V);
    gemma_session *s;
    gemma_session_options o = gemma_session_default_options();
    o.n_ctx = 8;
    o.n_threads = 2;
    assert_int_equal(gemma_session_create(model, &o, &s, &err), GEMMA_OK);
    float logits[TU_V];
    int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* out-of-range token, context overflow: errors, session unchanged */
    int32_t bad = TU_V;
    assert_int_equal(gemma_session_eval(s, &bad, 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "outside the vocabulary"));
    bad = -1;
    assert_int_equal(gemma_session_eval(s, &bad, 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_session_eval(s, ids, 9, GEMMA_LOGITS_LAST, logits, &err), GEMMA_ERR_CONTEXT_FULL);
    assert_int_equal(gemma_session_position(s), 0);
    assert_int_equal(gemma_session_eval(s, ids, 8, GEMMA_LOGITS_LAST, logits, &err), GEMMA_OK);
    assert_int_equal(gemma_session_eval(s, ids, 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_ERR_CONTEXT_FULL);
    assert_int_equal(gemma_session_eval(s, ids, 1, GEMMA_LOGITS_LAST, NULL, &err), GEMMA_ERR_ARG);
    gemma_session_reset(s);
    assert_int_equal(gemma_session_eval(s, ids, 1, GEMMA_LOGITS_LAST, logits, &err), GEMMA_OK);
    gemma_session_free(s);
    gemma_model_free(model);
    tu_model_free(&m);
}

static void test_missing_dir_and_files(void **state) {
    (void)state;
    expect_load_error(GEMMA_TEST_TMPDIR "/does-not-exist", GEMMA_ERR_IO, "does-not-exist", NULL);
    const char *dir = tu_dir("empty");
    expect_load_error(dir, GEMMA_ERR_IO, "config.json", NULL);
    char p[1200];
    tu_write_str(tu_path(p, sizeof p, dir, "config.json"), TU_CONFIG);
    expect_load_error(dir, GEMMA_ERR_IO, "no model.safetensors", NULL);
    /* a file instead of a directory */
    expect_load_error(p, GEMMA_ERR_ARG, "expected a model directory", NULL);
}

static void test_header_length_past_end(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("hdrlen", &m, NULL);
    char p[1200];
    FILE *f = fopen(tu_path(p, sizeof p, dir, "model.safetensors"), "r+b");
    unsigned char big[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
    fwrite(big, 1, 8, f);
    fclose(f);
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", "header length");
    /* shorter than the 8-byte length itself, and empty */
    tu_write(p, "abc", 3);
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", "too short");
    tu_write(p, "", 0);
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", "empty");
    tu_model_free(&m);
}

static void test_truncated_data(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("truncated", &m, NULL);
    char p[1200];
    tu_path(p, sizeof p, dir, "model.safetensors");
    struct stat st;
    stat(p, &st);
    assert_int_equal(truncate(p, st.st_size - 10), 0);
    /* the last tensor added runs past the end */
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", m.st.t[m.st.n - 1].name);
    tu_model_free(&m);
}

static void test_header_not_json(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = tu_dir("badjson");
    char p[1200];
    tu_write_str(tu_path(p, sizeof p, dir, "config.json"), TU_CONFIG);
    tu_st_write_with_header(&m.st, tu_path(p, sizeof p, dir, "model.safetensors"), "{\"a\": [1, 2,}");
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", "not valid JSON");
    tu_st_write_with_header(&m.st, p, "[1, 2]");
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.safetensors", "not a JSON object");
    tu_model_free(&m);
}

/* Rewrite the header with one tensor's entry replaced by `entry`. */
static const char *with_entry(const char *name, tu_model *m, const char *tensor, const char *entry) {
    const char *dir = tu_dir(name);
    char p[1200];
    tu_write_str(tu_path(p, sizeof p, dir, "config.json"), TU_CONFIG);
    char *h = tu_st_header(&m->st);
    char key[200];
    snprintf(key, sizeof key, "\"%s\":{", tensor);
    char *at = strstr(h, key);
    assert_non_null(at);
    char *end = strchr(at, '}');
    size_t need = strlen(h) + strlen(entry) + 8;
    char *out = malloc(need);
    snprintf(out, need, "%.*s\"%s\":%s%s", (int)(at - h), h, tensor, entry, end + 1);
    tu_st_write_with_header(&m->st, tu_path(p, sizeof p, dir, "model.safetensors"), out);
    free(out);
    free(h);
    return dir;
}

static void test_bad_entries(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *t = "model.layers.0.self_attn.q_proj.weight";
    expect_load_error(with_entry("oob", &m, t, "{\"dtype\":\"F32\",\"shape\":[32,32],\"data_offsets\":[0,99999999]}"),
                      GEMMA_ERR_FORMAT, t, "past the end");
    expect_load_error(with_entry("neg", &m, t, "{\"dtype\":\"F32\",\"shape\":[32,32],\"data_offsets\":[100,50]}"),
                      GEMMA_ERR_FORMAT, t, "data_offsets");
    /* overlaps the embedding (bytes 0..6400) */
    expect_load_error(with_entry("overlap", &m, t, "{\"dtype\":\"F32\",\"shape\":[32,32],\"data_offsets\":[0,4096]}"),
                      GEMMA_ERR_FORMAT, t, "overlap");
    expect_load_error(with_entry("dtsize", &m, t, "{\"dtype\":\"BF16\",\"shape\":[32,32],\"data_offsets\":[6528,10624]}"),
                      GEMMA_ERR_FORMAT, t, "needs 2048 bytes");
    expect_load_error(with_entry("noshape", &m, t, "{\"dtype\":\"F32\",\"data_offsets\":[0,4]}"), GEMMA_ERR_FORMAT, t,
                      "shape");
    expect_load_error(with_entry("negdim", &m, t, "{\"dtype\":\"F32\",\"shape\":[-1,32],\"data_offsets\":[0,4]}"),
                      GEMMA_ERR_FORMAT, t, "shape[0]");
    expect_load_error(with_entry("hugedim", &m, t,
                                 "{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,4]}"),
                      GEMMA_ERR_FORMAT, t, NULL);
    expect_load_error(with_entry("nodtype", &m, t, "{\"shape\":[32,32],\"data_offsets\":[0,4]}"), GEMMA_ERR_FORMAT, t,
                      "dtype");
    expect_load_error(with_entry("notobj", &m, t, "7"), GEMMA_ERR_FORMAT, t, "not an object");
    /* a dtype we do not read, on a tensor we need */
    expect_load_error(with_entry("f8", &m, t, "{\"dtype\":\"F8_E4M3\",\"shape\":[32,32],\"data_offsets\":[6528,7552]}"),
                      GEMMA_ERR_FORMAT, t, "F8_E4M3");
    tu_model_free(&m);
}

static void test_shape_mismatch_with_config(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    tu_tensor *q = tu_model_find(&m, "model.layers.1.self_attn.q_proj.weight");
    q->shape[0] = 16;
    q->nbytes = 16 * 32 * 4;
    expect_load_error(write_variant("shape", &m, NULL), GEMMA_ERR_FORMAT, "model.layers.1.self_attn.q_proj.weight",
                      "expected F32/F16/BF16 [32, 32]");
    tu_model_free(&m);
    tu_model_build(&m);
    tu_tensor *n = tu_model_find(&m, "model.layers.0.self_attn.k_norm.weight");
    n->shape[0] = 8;
    n->nbytes = 32;
    expect_load_error(write_variant("normshape", &m, NULL), GEMMA_ERR_FORMAT, "model.layers.0.self_attn.k_norm.weight",
                      "[16]");
    tu_model_free(&m);
}

static void test_missing_tensor(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    tu_model_remove(&m, "model.layers.1.mlp.down_proj.weight");
    expect_load_error(write_variant("missing", &m, NULL), GEMMA_ERR_FORMAT, "model.layers.1.mlp.down_proj.weight",
                      "missing");
    tu_model_free(&m);
    tu_model_build(&m);
    tu_model_remove(&m, "model.embed_tokens.weight");
    expect_load_error(write_variant("noembed", &m, NULL), GEMMA_ERR_FORMAT, "embed_tokens", NULL);
    tu_model_free(&m);
}

static void test_duplicate_tensor(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("dup", &m, NULL);
    char p[1200];
    /* a second shard holding the same tensor name */
    tu_st second = {0};
    float v[TU_D] = {0};
    int64_t sh[1] = {TU_D};
    tu_st_add(&second, "model.norm.weight", "F32", sh, 1, v, sizeof v);
    tu_st_write(&second, tu_path(p, sizeof p, dir, "extra.safetensors"));
    tu_path(p, sizeof p, dir, "model.safetensors");
    char q[1200];
    rename(p, tu_path(q, sizeof q, dir, "a.safetensors"));
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.norm.weight", "appears twice");
    tu_model_free(&m);
}

/* A Gemma 4 fixture whose config.json disagrees with its tensors in one field. */
static const char *gemma4_variant(const char *name, const char *from, const char *to) {
    const char *src = GEMMA_FIXTURES_DIR "/gemma4/e2b-f32-text";
    const char *dir = tu_dir(name);
    char path[1200], cmd[2600];
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/'", src, dir);
    if (system(cmd) != 0) fail_msg("%s", cmd);
    FILE *f = fopen(tu_path(path, sizeof path, src, "config.json"), "rb");
    assert_non_null(f);
    static char text[8192], out[8300];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    if (!at) fail_msg("config.json of %s lacks '%s'", src, from);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    tu_write_str(tu_path(path, sizeof path, dir, "config.json"), out);
    return dir;
}

/* Gemma 4: each per-layer shape the config implies is checked against the file. */
static void test_gemma4_config_vs_tensors(void **state) {
    (void)state;
    expect_load_error(gemma4_variant("g4-noshare", "\"num_kv_shared_layers\": 5", "\"num_kv_shared_layers\": 0"),
                      GEMMA_ERR_FORMAT, "model.layers.5.self_attn.k_proj", NULL);
    expect_load_error(gemma4_variant("g4-narrow", "\"use_double_wide_mlp\": true", "\"use_double_wide_mlp\": false"),
                      GEMMA_ERR_FORMAT, "model.layers.5.mlp.gate_proj", NULL);
    expect_load_error(gemma4_variant("g4-ghd", "\"global_head_dim\": 32", "\"global_head_dim\": 16"),
                      GEMMA_ERR_FORMAT, "model.layers.4.self_attn.q_proj", NULL);
    expect_load_error(gemma4_variant("g4-ple", "\"hidden_size_per_layer_input\": 8", "\"hidden_size_per_layer_input\": 4"),
                      GEMMA_ERR_FORMAT, "model.embed_tokens_per_layer", NULL);
    expect_load_error(gemma4_variant("g4-moe", "\"enable_moe_block\": false", "\"enable_moe_block\": true"),
                      GEMMA_ERR_UNSUPPORTED, "config.json", "enable_moe_block");
}

static void test_bad_configs(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    expect_load_error(write_variant("arch", &m, "{\"model_type\":\"llama\"}"), GEMMA_ERR_UNSUPPORTED, "config.json",
                      "'llama'");
    expect_load_error(write_variant("notype", &m, "{\"hidden_size\":32}"), GEMMA_ERR_FORMAT, "config.json",
                      "model_type");
    expect_load_error(write_variant("cfgjson", &m, "{\"model_type\":\"gemma3_text\","), GEMMA_ERR_FORMAT, "config.json",
                      "not valid JSON");
    char cfg[1024];
    const char *body = TU_CONFIG + 1; /* without the leading '{' */
    snprintf(cfg, sizeof cfg, "{\"hidden_size\":\"wide\",%s", body);
    expect_load_error(write_variant("type", &m, cfg), GEMMA_ERR_FORMAT, "config.json", "hidden_size");
    snprintf(cfg, sizeof cfg, "{\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4},%s", body);
    expect_load_error(write_variant("yarn", &m, cfg), GEMMA_ERR_UNSUPPORTED, "rope_scaling.rope_type", "yarn");
    snprintf(cfg, sizeof cfg, "{\"hidden_activation\":\"silu\",%s", body);
    expect_load_error(write_variant("act", &m, cfg), GEMMA_ERR_UNSUPPORTED, "hidden_activation", "silu");
    snprintf(cfg, sizeof cfg, "{\"layer_types\":[\"sliding_attention\",\"chunked\"],%s", body);
    expect_load_error(write_variant("ltypes", &m, cfg), GEMMA_ERR_UNSUPPORTED, "layer_types[1]", NULL);
    snprintf(cfg, sizeof cfg, "{\"layer_types\":[\"sliding_attention\"],%s", body);
    expect_load_error(write_variant("ltypes2", &m, cfg), GEMMA_ERR_FORMAT, "layer_types", NULL);
    snprintf(cfg, sizeof cfg, "{\"quantization\":{\"bits\":7,\"group_size\":64},%s", body);
    expect_load_error(write_variant("qbits", &m, cfg), GEMMA_ERR_UNSUPPORTED, "quantization.bits", NULL);
    snprintf(cfg, sizeof cfg, "{\"quantization\":{\"bits\":4,\"group_size\":64,\"mode\":\"mxfp4\"},%s", body);
    expect_load_error(write_variant("qmode", &m, cfg), GEMMA_ERR_UNSUPPORTED, "mode", "mxfp4");
    snprintf(cfg, sizeof cfg, "{\"num_key_value_heads\":3,%s", body);
    /* later duplicate keys lose: put the bad value in a fresh config instead */
    expect_load_error(write_variant("gqa", &m,
                                    "{\"model_type\":\"gemma3_text\",\"num_attention_heads\":2,\"num_key_value_heads\":3}"),
                      GEMMA_ERR_FORMAT, "num_attention_heads", NULL);
    expect_load_error(write_variant("mmnotext", &m, "{\"model_type\":\"gemma3\"}"), GEMMA_ERR_FORMAT, "text_config",
                      NULL);
    expect_load_error(write_variant("untied", &m,
                                    "{\"model_type\":\"gemma3_text\",\"hidden_size\":32,\"num_attention_heads\":2,"
                                    "\"num_key_value_heads\":1,\"head_dim\":16,\"intermediate_size\":64,"
                                    "\"num_hidden_layers\":2,\"vocab_size\":50,\"tie_word_embeddings\":false}"),
                      GEMMA_ERR_FORMAT, "lm_head", NULL);
    tu_model_free(&m);
}

static void test_bad_index(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    const char *dir = write_variant("index", &m, NULL);
    char p[1200], q[1200];
    rename(tu_path(p, sizeof p, dir, "model.safetensors"), tu_path(q, sizeof q, dir, "model-00001-of-00001.safetensors"));
    tu_path(p, sizeof p, dir, "model.safetensors.index.json");
    tu_write_str(p, "{\"weight_map\":{\"model.norm.weight\":\"../../etc/passwd.safetensors\"}}");
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.norm.weight", "not a .safetensors file name");
    tu_write_str(p, "{\"weight_map\":{\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_load_error(dir, GEMMA_ERR_IO, "model-00002-of-00002.safetensors", NULL);
    tu_write_str(p, "{\"weight_map\":{\"model.nothere.weight\":\"model-00001-of-00001.safetensors\"}}");
    expect_load_error(dir, GEMMA_ERR_FORMAT, "model.nothere.weight", "not found");
    tu_write_str(p, "{\"metadata\":{}}");
    expect_load_error(dir, GEMMA_ERR_FORMAT, "weight_map", NULL);
    tu_model_free(&m);
}

static void test_bad_quantized(void **state) {
    (void)state;
    tu_model m;
    tu_model_build(&m);
    /* q_proj as MLX 4-bit g32: U32 [32, 4] + scales/biases [32, 1] */
    static uint32_t packed[32 * 4];
    static uint16_t scales[32], biases[32];
    tu_tensor *q = tu_model_find(&m, "model.layers.0.self_attn.q_proj.weight");
    assert_non_null(q);
    memcpy(q->dtype, "U32", sizeof "U32");
    q->shape[1] = 4;
    q->data = packed;
    q->nbytes = sizeof packed;
    int64_t sh[2] = {32, 1};
    tu_st_add(&m.st, "model.layers.0.self_attn.q_proj.scales", "BF16", sh, 2, scales, sizeof scales);
    expect_load_error(write_variant("nobiases", &m, NULL), GEMMA_ERR_FORMAT, "q_proj.biases", "missing");
    tu_st_add(&m.st, "model.layers.0.self_attn.q_proj.biases", "BF16", sh, 2, biases, sizeof biases);
    /* consistent now: loads */
    gemma_error err;
    gemma_model *model;
    const char *dir = write_variant("quant_ok", &m, NULL);
    assert_int_equal(gemma_model_load(dir, NULL, &model, &err), GEMMA_OK);
    gemma_model_free(model);
    /* config disagrees with the tensors */
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"quantization\":{\"bits\":8,\"group_size\":32},%s", TU_CONFIG + 1);
    expect_load_error(write_variant("quant_cfg", &m, cfg), GEMMA_ERR_FORMAT, "model.layers.0.self_attn.q_proj",
                      "bits 8");
    /* packed width that implies 7 bits */
    q->shape[1] = 7;
    q->nbytes = 32 * 7 * 4;
    static uint32_t packed7[32 * 7];
    q->data = packed7;
    expect_load_error(write_variant("quant_bits", &m, NULL), GEMMA_ERR_UNSUPPORTED, "q_proj.weight", "7 bits");
    tu_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_model_loads),  cmocka_unit_test(test_numerics_options),  cmocka_unit_test(test_missing_dir_and_files),
        cmocka_unit_test(test_header_length_past_end), cmocka_unit_test(test_truncated_data),
        cmocka_unit_test(test_header_not_json),    cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_shape_mismatch_with_config), cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_duplicate_tensor),   cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_index),          cmocka_unit_test(test_bad_quantized),
        cmocka_unit_test(test_gemma4_config_vs_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
