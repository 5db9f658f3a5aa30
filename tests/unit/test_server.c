/* test_server.c - the parts of `gemma serve` that need no socket: request
 * bodies (every field's type and range, images as data: URLs, the error each
 * bad body gets), base64, the JSON replies (parsed back by our reader), the
 * prefix match that picks a slot, and the stop-string helpers the streamed
 * text depends on.  The HTTP side is tested by tests/server/ with real clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "core/json.h"
#include "engine.h"
#include "gemma.h"
#include "reply.h"
#include "request.h"

typedef struct {
    gemma_model *model;          /* tiny multimodal fixture: vocab 300, 4 soft tokens per image */
    gemma_chat_format *fmt;      /* the real Gemma 3 template */
    gemma_sampler_params defaults;
    srv_limits lim;
} env;

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    gemma_error err;
    if (gemma_model_load(GEMMA_FIXTURES_DIR "/mm/e2e-f32-hub", NULL, &e->model, &err) != GEMMA_OK) fail_msg("%s", err.message);
    if (gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &e->fmt, &err) != GEMMA_OK) fail_msg("%s", err.message);
    e->defaults = gemma_sampler_default_params();
    e->lim = srv_default_limits();
    *state = e;
    return 0;
}

static int teardown(void **state) {
    env *e = *state;
    gemma_chat_format_free(e->fmt);
    gemma_model_free(e->model);
    free(e);
    return 0;
}

static int parse(const env *e, const char *body, srv_kind kind, srv_request *r, srv_error *err) {
    return srv_parse_request(body, strlen(body), kind, &e->lim, e->model, e->fmt, &e->defaults, 42, r, err);
}

static void test_base64(void **state) {
    (void)state;
    size_t n;
    unsigned char *d = srv_base64_decode("aGVsbG8gd29ybGQ=", 16, 100, &n);
    assert_non_null(d);
    assert_int_equal(n, 11);
    assert_memory_equal(d, "hello world", 11);
    free(d);
    d = srv_base64_decode("aGk", 3, 100, &n);   /* padding optional */
    assert_non_null(d);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "hi", 2);
    free(d);
    d = srv_base64_decode("", 0, 100, &n);
    assert_non_null(d);
    assert_int_equal(n, 0);
    free(d);
    assert_null(srv_base64_decode("a", 1, 100, &n));            /* impossible length */
    assert_null(srv_base64_decode("aGk*", 4, 100, &n));         /* not base64 */
    assert_null(srv_base64_decode("aGVsbG8gd29ybGQ=", 16, 10, &n));   /* over the limit */
}

static void test_parse_fields(void **state) {
    const env *e = *state;
    srv_request r;
    srv_error err;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],"
                       "\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1,\"seed\":9,"
                       "\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"stop\":[\"a\",\"bc\"],"
                       "\"logit_bias\":{\"17\":-100,\"3\":2.5},\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"unknown\":{\"deep\":[1,2,3]}}";
    assert_true(parse(e, body, SRV_CHAT, &r, &err));
    assert_int_equal(r.max_tokens, 7);
    assert_float_equal(r.sp.temperature, 0.5f, 1e-6);
    assert_float_equal(r.sp.top_p, 0.9f, 1e-6);
    assert_int_equal(r.sp.top_k, 5);
    assert_float_equal(r.sp.min_p, 0.1f, 1e-6);
    assert_int_equal(r.sp.seed, 9);
    assert_float_equal(r.sp.presence_penalty, 0.5f, 1e-6);
    assert_float_equal(r.sp.frequency_penalty, -0.5f, 1e-6);
    assert_int_equal(r.n_stops, 2);
    assert_string_equal(r.stops[1], "bc");
    assert_int_equal(r.sp.n_logit_bias, 2);
    assert_int_equal(r.sp.logit_bias[0].token, 17);
    assert_float_equal(r.sp.logit_bias[1].bias, 2.5f, 1e-6);
    assert_true(r.stream && r.include_usage);
    assert_string_equal(r.model, "m");
    assert_string_equal(r.prompt, "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    srv_request_free(&r);

    assert_true(parse(e, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", SRV_CHAT, &r, &err));
    assert_int_equal(r.max_tokens, -1);   /* defaults: until a stop */
    assert_int_equal(r.sp.seed, 42);
    assert_false(r.stream);
    srv_request_free(&r);

    assert_true(parse(e, "{\"prompt\":[\"Once\"],\"max_completion_tokens\":3,\"stop\":\"x\",\"temperature\":null}",
                      SRV_COMPLETION, &r, &err));
    assert_string_equal(r.prompt, "Once");
    assert_true(r.add_bos);
    assert_int_equal(r.max_tokens, 3);
    assert_int_equal(r.n_stops, 1);
    srv_request_free(&r);
}

/* Each bad body: 400 (or the given status) naming the field; nothing leaks (ASan). */
static void test_parse_errors(void **state) {
    const env *e = *state;
    static const struct {
        const char *body;
        const char *param;
    } cases[] = {
        {"", ""},
        {"{", ""},
        {"[]", ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} trailing", ""},
        {"{}", "messages"},
        {"{\"messages\":\"hi\"}", "messages"},
        {"{\"messages\":[]}", "messages"},
        {"{\"messages\":[1]}", "messages"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"no type\"}]}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
         "\"https://example.com/a.png\"}}]}]}",
         "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
         "\"data:image/png,rawbytes\"}}]}]}",
         "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
         "\"data:image/png;base64,bm90IGFuIGltYWdl\"}}]}]}",
         "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2.5}", "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":-1}", "top_p"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_k\":-3}", "top_k"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"s\"}", "seed"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":1}", "stream"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":[]}", "stream_options"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",3]}", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":[1]}", "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"300\":1}}", "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"1\":101}}", "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"1x\":1}}", "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":5}", "model"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_request r;
        srv_error err;
        memset(&err, 0, sizeof err);
        if (parse(e, cases[i].body, SRV_CHAT, &r, &err)) fail_msg("case %zu accepted: %s", i, cases[i].body);
        if (err.status != 400 || strcmp(err.param, cases[i].param) != 0 || !err.message[0] || !err.type)
            fail_msg("case %zu: status %d param '%s' (want '%s'): %s", i, err.status, err.param, cases[i].param,
                     err.message);
    }
    srv_request r;
    srv_error err;
    assert_false(parse(e, "{\"max_tokens\":3}", SRV_COMPLETION, &r, &err));
    assert_string_equal(err.param, "prompt");
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = 0;
    assert_false(parse(e, deep, SRV_CHAT, &r, &err));   /* deeper than max_json_depth */
    assert_int_equal(err.status, 400);
}

static char *data_url(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char raw[1 << 16];
    size_t n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(64 + n * 2), *w = out + sprintf(out, "data:image/png;base64,");
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0) | (i + 2 < n ? raw[i + 2] : 0);
        *w++ = tbl[v >> 18 & 63];
        *w++ = tbl[v >> 12 & 63];
        *w++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *w = 0;
    return out;
}

static void test_parse_images(void **state) {
    env *e = *state;
    char *url = data_url(GEMMA_FIXTURES_DIR "/mm/e2e-f32-hub/image0.png");
    size_t cap = strlen(url) * 3 + 512;
    char *body = malloc(cap);
    snprintf(body, cap,
             "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}},"
             "{\"type\":\"image_url\",\"image_url\":\"%s\"},{\"type\":\"text\",\"text\":\"Two?\"}]}]}",
             url, url);
    srv_request r;
    srv_error err;
    assert_true(parse(e, body, SRV_CHAT, &r, &err));
    assert_int_equal(r.n_images, 2);
    assert_true(r.images[0].hash == r.images[1].hash);   /* the same bytes, the same cache key */
    assert_non_null(strstr(r.prompt, "<start_of_image><image_soft_token><image_soft_token><image_soft_token>"
                                     "<image_soft_token><end_of_image>"));
    srv_request_free(&r);
    e->lim.max_images = 1;
    assert_false(parse(e, body, SRV_CHAT, &r, &err));
    assert_string_equal(err.param, "messages");
    e->lim = srv_default_limits();
    e->lim.max_image_bytes = 100;
    assert_false(parse(e, body, SRV_CHAT, &r, &err));
    e->lim = srv_default_limits();
    free(body);
    free(url);
}

/* Replies are valid JSON of OpenAI's shape; control bytes are escaped. */
static void test_replies(void **state) {
    (void)state;
    gm_strbuf b;
    gm_strbuf_init(&b);
    srv_json_string(&b, "a\"b\\c\n\x01\x7f\xc3\xa9", 10);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9\"");
    gm_strbuf_free(&b);

    srv_error err;
    srv_fail(&err, 400, "invalid_request_error", NULL, "temperature", "bad \"%s\"", "t");
    srv_error_json(&b, &err);
    assert_string_equal(b.data, "{\"error\":{\"message\":\"bad \\\"t\\\"\",\"type\":\"invalid_request_error\","
                                "\"param\":\"temperature\",\"code\":null}}");
    gm_strbuf_free(&b);

    srv_reply_head h = {.kind = SRV_CHAT, .id = "chatcmpl-1", .created = 5, .model = "m\"x"};
    srv_usage u = {10, 3, 4};
    srv_completion_json(&b, &h, "hi\n", 3, "stop", &u);
    char jerr[128];
    gm_json_doc *doc = gm_json_parse(b.data, b.len, NULL, jerr, sizeof jerr);
    if (!doc) fail_msg("%s: %s", jerr, b.data);
    const gm_json *root = gm_json_root(doc);
    assert_string_equal(gm_json_string(gm_json_get(root, "object")), "chat.completion");
    assert_string_equal(gm_json_string(gm_json_get(root, "model")), "m\"x");
    const gm_json *choice = gm_json_at(gm_json_get(root, "choices"), 0);
    assert_string_equal(gm_json_string(gm_json_get(gm_json_get(choice, "message"), "content")), "hi\n");
    assert_string_equal(gm_json_string(gm_json_get(choice, "finish_reason")), "stop");
    int64_t total;
    assert_true(gm_json_int(gm_json_get(gm_json_get(root, "usage"), "total_tokens"), &total));
    assert_int_equal(total, 13);
    gm_json_free(doc);
    gm_strbuf_free(&b);

    /* stream events: "data: {json}\n\n" */
    const char *events[3];
    srv_chunk_event(&b, &h, 1, "", 0, NULL, NULL);
    size_t ends[3];
    ends[0] = b.len;
    srv_chunk_event(&b, &h, 0, NULL, 0, "length", NULL);
    ends[1] = b.len;
    srv_chunk_event(&b, &h, 0, NULL, 0, NULL, &u);
    ends[2] = b.len;
    events[0] = b.data;
    events[1] = b.data + ends[0];
    events[2] = b.data + ends[1];
    for (int i = 0; i < 3; i++) {
        size_t len = ends[i] - (size_t)(events[i] - b.data);
        assert_memory_equal(events[i], "data: ", 6);
        assert_memory_equal(events[i] + len - 2, "\n\n", 2);
        doc = gm_json_parse(events[i] + 6, len - 8, NULL, jerr, sizeof jerr);
        if (!doc) fail_msg("event %d: %s", i, jerr);
        root = gm_json_root(doc);
        assert_string_equal(gm_json_string(gm_json_get(root, "object")), "chat.completion.chunk");
        const gm_json *choices = gm_json_get(root, "choices");
        if (i == 0)
            assert_string_equal(gm_json_string(gm_json_get(gm_json_get(gm_json_at(choices, 0), "delta"), "role")),
                                "assistant");
        if (i == 1)
            assert_string_equal(gm_json_string(gm_json_get(gm_json_at(choices, 0), "finish_reason")), "length");
        if (i == 2) {
            assert_int_equal(gm_json_count(choices), 0);
            assert_non_null(gm_json_get(root, "usage"));
        }
        gm_json_free(doc);
    }
    gm_strbuf_free(&b);
}

static void test_prefix_and_stops(void **state) {
    (void)state;
    uint64_t a[] = {2, 105, 7, 9}, b[] = {2, 105, 7, 8, 1};
    assert_int_equal(srv_common_prefix(a, 4, b, 5), 3);
    assert_int_equal(srv_common_prefix(a, 0, b, 5), 0);
    assert_int_equal(srv_common_prefix(a, 4, a, 4), 4);

    const char *stops[] = {"END", "xy"};
    const char *text = "abc EN";
    /* "EN" may begin "END": held back; "x" may begin "xy" */
    assert_int_equal(cli_stop_prefix_tail(text, strlen(text), stops, 2), 2);
    assert_int_equal(cli_stop_prefix_tail("abcx", 4, stops, 2), 1);
    assert_int_equal(cli_stop_prefix_tail("abc", 3, stops, 2), 0);
    assert_int_equal(cli_find_stop("abc END xy", 10, 0, stops, 2), 4);
    assert_int_equal(cli_find_stop("abc END xy", 10, 5, stops, 2), 8);
    assert_int_equal(cli_find_stop("abc", 3, 0, stops, 2), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_images),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_prefix_and_stops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
