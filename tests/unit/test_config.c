/* test_config.c - config.json in every spelling becomes the same gm_config;
 * missing keys take the reference defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "io/config.h"

static void parse_ok(gm_config *c, const char *text) {
    gemma_error err;
    if (gm_config_parse(c, "config.json", text, strlen(text), &err) != GEMMA_OK) fail_msg("%s", err.message);
}

static void test_defaults(void **state) {
    (void)state;
    gm_config c;
    parse_ok(&c, "{\"model_type\":\"gemma3_text\"}");
    assert_int_equal(c.vocab_size, 262208);
    assert_int_equal(c.hidden_size, 2304);
    assert_int_equal(c.n_layers, 26);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 256);
    assert_true(c.query_pre_attn_scalar == 256);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_int_equal(c.sliding_window, 4096);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_true(c.final_softcap == 0);
    for (int i = 0; i < c.n_layers; i++) {
        int global = (i + 1) % 6 == 0;
        assert_int_equal(c.layers[i].sliding, !global);
        assert_true(c.layers[i].rope_theta == (global ? 1e6 : 1e4));
        assert_true(c.layers[i].rope_factor == 1.0);
    }
    assert_int_equal(c.bos_token_id, 2);
    assert_int_equal(c.has_quantization, 0);
    gm_config_free(&c);
}

/* MedGemma 4B as the Hub writes it (multimodal, abbreviated text_config). */
static const char *const hub =
    "{\"model_type\":\"gemma3\",\"eos_token_id\":[1,106],\"text_config\":{\"hidden_size\":2560,"
    "\"intermediate_size\":10240,\"model_type\":\"gemma3_text\",\"num_hidden_layers\":34,"
    "\"rope_scaling\":{\"factor\":8.0,\"rope_type\":\"linear\"},\"sliding_window\":1024},"
    "\"vision_config\":{\"hidden_size\":1152},\"quantization\":{\"group_size\":64,\"bits\":4,"
    "\"language_model.model.layers.0.mlp.down_proj\":{\"group_size\":32,\"bits\":8},"
    "\"language_model.model.layers.1.mlp.down_proj\":false}}";

/* The same model as transformers 5 writes it. */
static const char *const t5 =
    "{\"model_type\":\"gemma3\",\"text_config\":{\"hidden_size\":2560,\"intermediate_size\":10240,"
    "\"num_hidden_layers\":34,\"sliding_window\":1024,\"num_attention_heads\":8,\"num_key_value_heads\":4,"
    "\"head_dim\":256,\"query_pre_attn_scalar\":256,\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"linear\","
    "\"factor\":8.0,\"rope_theta\":1000000.0},\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0}},"
    "\"layer_types\":[\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
    "\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
    "\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_attention\","
    "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\","
    "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\","
    "\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\","
    "\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\"]}}";

static void test_hub_and_t5_spellings_agree(void **state) {
    (void)state;
    gm_config a, b;
    parse_ok(&a, hub);
    parse_ok(&b, t5);
    assert_int_equal(a.hidden_size, 2560);
    assert_int_equal(a.n_layers, 34);
    assert_int_equal(a.sliding_window, 1024);
    assert_int_equal(a.n_eos, 2);
    assert_int_equal(a.eos_token_ids[1], 106);
    int globals = 0;
    for (int i = 0; i < 34; i++) {
        assert_int_equal(a.layers[i].sliding, b.layers[i].sliding);
        assert_true(a.layers[i].rope_theta == b.layers[i].rope_theta);
        assert_true(a.layers[i].rope_factor == b.layers[i].rope_factor);
        if (!a.layers[i].sliding) {
            globals++;
            assert_true(a.layers[i].rope_factor == 8.0);
            assert_true(a.layers[i].rope_theta == 1e6);
        } else {
            assert_true(a.layers[i].rope_factor == 1.0);
            assert_true(a.layers[i].rope_theta == 1e4);
        }
    }
    assert_int_equal(globals, 5);
    assert_false(a.layers[33].sliding == 0);

    gm_quant_spec q;
    assert_int_equal(a.has_quantization, 1);
    assert_true(gm_config_module_quant(&a, "language_model.model.layers.0.mlp.down_proj", &q));
    assert_int_equal(q.bits, 8);
    assert_int_equal(q.group_size, 32);
    assert_true(gm_config_module_quant(&a, "language_model.model.layers.1.mlp.down_proj", &q));
    assert_int_equal(q.bits, 0);
    assert_true(gm_config_module_quant(&a, "language_model.model.layers.2.mlp.down_proj", &q));
    assert_int_equal(q.bits, 4);
    assert_int_equal(q.group_size, 64);
    assert_false(gm_config_module_quant(&b, "x", &q));
    gm_config_free(&a);
    gm_config_free(&b);
}

static void test_flat_rope_parameters_and_softcaps(void **state) {
    (void)state;
    gm_config c;
    parse_ok(&c, "{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":4,\"sliding_window_pattern\":2,"
                 "\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0,\"rope_theta\":500000},"
                 "\"rope_local_base_freq\":20000,\"final_logit_softcapping\":30.0,\"attn_logit_softcapping\":null}");
    assert_int_equal(c.layers[0].sliding, 1);
    assert_int_equal(c.layers[1].sliding, 0);
    assert_true(c.layers[1].rope_theta == 500000 && c.layers[1].rope_factor == 2.0);
    assert_true(c.layers[0].rope_theta == 20000 && c.layers[0].rope_factor == 1.0);
    assert_true(c.final_softcap == 30.0);
    gm_config_free(&c);
}

/* The multimodal reference ignores the final soft-cap and ties at the top level. */
static void test_multimodal_reference_semantics(void **state) {
    (void)state;
    gm_config c;
    parse_ok(&c, "{\"model_type\":\"gemma3\",\"text_config\":{\"final_logit_softcapping\":30.0,"
                 "\"tie_word_embeddings\":true}}");
    assert_true(c.final_softcap == 0);
    assert_int_equal(c.tie_word_embeddings, 1);
    gm_config_free(&c);
    parse_ok(&c, "{\"model_type\":\"gemma3\",\"tie_word_embeddings\":false,\"text_config\":{\"tie_word_embeddings\":true}}");
    assert_int_equal(c.tie_word_embeddings, 0);
    gm_config_free(&c);
}

typedef struct {
    const char *text, *needle;
} rejection;

/* Each text fails to parse with a message naming the file and the field. */
static void expect_rejections(const rejection *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        gm_config c;
        gemma_error err;
        assert_int_not_equal(gm_config_parse(&c, "cfg/config.json", cases[i].text, strlen(cases[i].text), &err),
                             GEMMA_OK);
        if (!strstr(err.message, cases[i].needle) || !strstr(err.message, "cfg/config.json"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.message, cases[i].needle);
        gm_config_free(&c);
    }
}

static void test_rejections_name_the_field(void **state) {
    (void)state;
    const rejection cases[] = {
        {"{\"model_type\":\"gemma3_text\",\"head_dim\":17}", "head_dim"},
        {"{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":0}", "num_hidden_layers"},
        {"{\"model_type\":\"gemma3_text\",\"rms_norm_eps\":-1}", "rms_norm_eps"},
        {"{\"model_type\":\"gemma3_text\",\"vocab_size\":1.5}", "vocab_size"},
        {"{\"model_type\":\"gemma3_text\",\"attention_bias\":true}", "attention_bias"},
        {"{\"model_type\":\"gemma3_text\",\"tie_word_embeddings\":\"yes\"}", "tie_word_embeddings"},
        {"{\"model_type\":\"gemma3\",\"text_config\":{\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"dynamic\"}}}}",
         "text_config.rope_parameters.full_attention.rope_type"},
        {"{\"model_type\":\"gemma3_text\",\"rope_scaling\":{\"rope_type\":\"linear\"}}", "rope_scaling.factor"},
        {"{\"model_type\":\"gemma3_text\",\"quantization\":{\"bits\":4,\"group_size\":48}}", "quantization.group_size"},
        {"{\"model_type\":\"gemma3_text\",\"quantization\":{\"bits\":4,\"group_size\":64,\"m\":{\"bits\":9,\"group_size\":64}}}",
         "quantization.m.bits"},
        {"{\"model_type\":\"gemma4\"}", "model_type"},
        {"[]", "not a JSON object"},
    };
    expect_rejections(cases, sizeof cases / sizeof cases[0]);
}

/* ------------------------------------------------------------------ Gemma 4 */

/* google/gemma-4-E2B-it's text_config as the Hub writes it (multimodal wrapper). */
static const char *const e2b =
    "{\"model_type\":\"gemma4\",\"eos_token_id\":[1,106],\"image_token_id\":258880,\"text_config\":{"
    "\"model_type\":\"gemma4_text\",\"hidden_size\":1536,\"num_hidden_layers\":35,\"intermediate_size\":6144,"
    "\"use_double_wide_mlp\":true,\"num_attention_heads\":8,\"num_key_value_heads\":1,\"head_dim\":256,"
    "\"global_head_dim\":512,\"attention_k_eq_v\":false,\"num_global_key_value_heads\":null,"
    "\"sliding_window\":512,\"sliding_window_pattern\":5,\"rms_norm_eps\":1e-06,\"vocab_size\":262144,"
    "\"vocab_size_per_layer_input\":262144,\"hidden_size_per_layer_input\":256,\"num_kv_shared_layers\":20,"
    "\"final_logit_softcapping\":30.0,\"enable_moe_block\":false,\"num_experts\":null,\"tie_word_embeddings\":true,"
    "\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0},"
    "\"full_attention\":{\"rope_type\":\"proportional\",\"partial_rotary_factor\":0.25,\"rope_theta\":1000000.0}},"
    "\"layer_types\":[%s]}}";

static char *layer_types_json(int n, int period, char *buf, size_t cap) {
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"", i ? "," : "",
                                (i + 1) % period ? "sliding_attention" : "full_attention");
    return buf;
}

static void test_gemma4_e2b(void **state) {
    (void)state;
    char types[2048], text[8192];
    snprintf(text, sizeof text, e2b, layer_types_json(35, 5, types, sizeof types));
    gm_config c;
    parse_ok(&c, text);
    assert_int_equal(c.arch, GM_ARCH_GEMMA4);
    assert_int_equal(c.n_layers, 35);
    assert_int_equal(c.ple_dim, 256);
    assert_int_equal(c.ple_vocab, 262144);
    assert_int_equal(c.n_kv_shared, 20);
    assert_true(c.final_softcap == 30.0);
    assert_true(c.norm_shift == 0.0f);
    assert_true(c.query_pre_attn_scalar == 1.0);
    assert_int_equal(c.max_head_dim, 512);
    assert_int_equal(c.max_ffn, 12288);
    assert_int_equal(c.max_kv_dim, 512);
    for (int i = 0; i < 35; i++) {
        const gm_layer_config *L = &c.layers[i];
        int full = i % 5 == 4;
        assert_int_equal(L->sliding, !full);
        assert_int_equal(L->head_dim, full ? 512 : 256);
        assert_int_equal(L->rope_pairs, full ? 64 : 128);
        assert_true(L->rope_theta == (full ? 1e6 : 1e4));
        assert_int_equal(L->ffn, i < 15 ? 6144 : 12288);
        assert_int_equal(L->kv_source, i < 15 ? i : (full ? 14 : 13));
    }
    assert_int_equal(c.n_eos, 2);
    gm_config_free(&c);
}

/* E4B as transformers re-saves it: gemma4_text at the top level, per_layer_config
 * instead of global_head_dim, no double-wide MLP; the 5:1 default pattern. */
static void test_gemma4_e4b_per_layer_config(void **state) {
    (void)state;
    char text[4096], plc[1024];
    size_t len = 0;
    for (int i = 5; i < 42; i += 6) len += (size_t)snprintf(plc + len, sizeof plc - len, "%s\"%d\":{\"head_dim\":512}", i > 5 ? "," : "", i);
    snprintf(text, sizeof text,
             "{\"model_type\":\"gemma4_text\",\"hidden_size\":2560,\"num_hidden_layers\":42,\"intermediate_size\":10240,"
             "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":256,\"num_kv_shared_layers\":18,"
             "\"per_layer_config\":{%s}}", plc);
    gm_config c;
    parse_ok(&c, text);
    assert_true(c.final_softcap == 0);   /* transformers' default: none */
    for (int i = 0; i < 42; i++) {
        const gm_layer_config *L = &c.layers[i];
        int full = i % 6 == 5;
        assert_int_equal(L->head_dim, full ? 512 : 256);
        assert_int_equal(L->ffn, 10240);
        assert_int_equal(L->kv_source, i < 24 ? i : (full ? 23 : 22));
    }
    assert_int_equal(c.max_kv_dim, 1024);
    gm_config_free(&c);
}

static void test_gemma4_rejections(void **state) {
    (void)state;
    const rejection cases[] = {
        {"{\"model_type\":\"gemma4_text\",\"attention_k_eq_v\":true}", "attention_k_eq_v"},
        {"{\"model_type\":\"gemma4_text\",\"enable_moe_block\":true}", "enable_moe_block"},
        {"{\"model_type\":\"gemma4\",\"text_config\":{\"num_experts\":128}}", "text_config.num_experts"},
        {"{\"model_type\":\"gemma4_text\",\"num_hidden_layers\":4,\"num_kv_shared_layers\":4}", "num_kv_shared_layers"},
        {"{\"model_type\":\"gemma4_text\",\"num_hidden_layers\":4,\"num_kv_shared_layers\":3,"
         "\"layer_types\":[\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"]}",
         "num_kv_shared_layers"},
        {"{\"model_type\":\"gemma4_text\",\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"yarn\"}}}",
         "rope_parameters.full_attention.rope_type"},
        {"{\"model_type\":\"gemma4_text\",\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"proportional\","
         "\"partial_rotary_factor\":2}}}", "partial_rotary_factor"},
        {"{\"model_type\":\"gemma4_text\",\"per_layer_config\":{\"99\":{\"head_dim\":512}}}", "per_layer_config.99"},
        {"{\"model_type\":\"gemma4_text\",\"per_layer_config\":{\"5\":{\"head_dim\":\"x\"}}}",
         "per_layer_config.5.head_dim"},
        {"{\"model_type\":\"gemma4_text\",\"global_head_dim\":511}", "head_dim"},
        {"{\"model_type\":\"gemma4_text\",\"use_double_wide_mlp\":1}", "use_double_wide_mlp"},
        {"{\"model_type\":\"gemma4_text\",\"hidden_size_per_layer_input\":-1}", "hidden_size_per_layer_input"},
    };
    expect_rejections(cases, sizeof cases / sizeof cases[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_hub_and_t5_spellings_agree),
        cmocka_unit_test(test_flat_rope_parameters_and_softcaps),
        cmocka_unit_test(test_multimodal_reference_semantics),
        cmocka_unit_test(test_rejections_name_the_field),
        cmocka_unit_test(test_gemma4_e2b),
        cmocka_unit_test(test_gemma4_e4b_per_layer_config),
        cmocka_unit_test(test_gemma4_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
