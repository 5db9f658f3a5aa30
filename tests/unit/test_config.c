/* test_config.c - config.json in every spelling becomes the same gm_config;
 * missing keys take the reference defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

static void test_rejections_name_the_field(void **state) {
    (void)state;
    struct { const char *text, *needle; } cases[] = {
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
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gm_config c;
        gemma_error err;
        assert_int_not_equal(gm_config_parse(&c, "cfg/config.json", cases[i].text, strlen(cases[i].text), &err),
                             GEMMA_OK);
        if (!strstr(err.message, cases[i].needle) || !strstr(err.message, "cfg/config.json"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.message, cases[i].needle);
        gm_config_free(&c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_hub_and_t5_spellings_agree),
        cmocka_unit_test(test_flat_rope_parameters_and_softcaps),
        cmocka_unit_test(test_multimodal_reference_semantics),
        cmocka_unit_test(test_rejections_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
