/* test_chat.c - chat prompts byte-identical to jinja2's rendering of the
 * model's own template (tests/fixtures/chat/gemma3.jsonl, made by
 * tools/reference/make_chat_cases.py), with the same conversations rejected,
 * and the token ids HF tokenizers gives for them; plus template recognition.
 * GEMMA_CHAT_CASES=file runs another case file (fresh, untuned cases). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma.h"
#include "text/chat.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* Every case of a jsonl file renders as jinja2 did (or is rejected as there);
 * with a tokenizer, the ids HF tokenizers gave are checked too.  Returns the case count. */
static int run_cases(const gemma_chat_format *fmt, const gemma_tokenizer *tok, const char *path) {
    gemma_error err;
    size_t len;
    char *all = slurp(path, &len);
    if (!all) fail_msg("%s: missing", path);
    int cases = 0, errors = 0, ids_checked = 0;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!*line) continue;
        char jerr[160];
        gm_json_doc *doc = gm_json_parse(line, strlen(line), NULL, jerr, sizeof jerr);
        if (!doc) fail_msg("%s: bad line: %s", path, jerr);
        const gm_json *c = gm_json_root(doc);
        const char *name = gm_json_string(gm_json_get(c, "name"));
        int gen = !gm_json_is(gm_json_get(c, "add_generation_prompt"), GM_JSON_FALSE) ? GEMMA_CHAT_GENERATION_PROMPT : 0;
        if (gm_json_is(gm_json_get(c, "enable_thinking"), GM_JSON_TRUE)) gen |= GEMMA_CHAT_THINKING;
        const gm_json *want = gm_json_get(c, "rendered"), *want_err = gm_json_get(c, "error");
        gm_strbuf out;
        gm_strbuf_init(&out);
        gemma_status st = gm_chat_render_json_value(fmt, gm_json_get(c, "messages"), gen, &out, &err);
        if (want_err) {
            if (st == GEMMA_OK) fail_msg("case %s: rendered, but jinja2 raised '%s'", name, gm_json_string(want_err));
            assert_null(strchr(err.message, '\n'));
            errors++;
        } else {
            if (st != GEMMA_OK) fail_msg("case %s: %s", name, err.message);
            if (out.len != want->len || memcmp(out.data, want->u.str, out.len) != 0)
                fail_msg("case %s: rendered\n%s\njinja2:\n%s", name, out.data, want->u.str);
            const gm_json *ids = gm_json_get(c, "ids");
            if (ids && tok) {
                int32_t *got = malloc((out.len + 2) * sizeof *got);
                size_t n = 0;
                if (gemma_tokenize(tok, out.data, out.len, 0, got, out.len + 2, &n, &err) != GEMMA_OK)
                    fail_msg("case %s: %s", name, err.message);
                if (n != gm_json_count(ids)) fail_msg("case %s: %zu ids, HF %zu", name, n, gm_json_count(ids));
                for (size_t i = 0; i < n; i++) {
                    int64_t v;
                    gm_json_int(gm_json_at(ids, i), &v);
                    if (got[i] != v) fail_msg("case %s: id %zu is %d, HF %lld", name, i, got[i], (long long)v);
                }
                ids_checked += (int)n;
                free(got);
            }
        }
        cases++;
        gm_strbuf_free(&out);
        gm_json_free(doc);
    }
    print_message("%s: %d chat cases (%d rejected as jinja2 rejects them), %d ids checked\n", path, cases, errors,
                  ids_checked);
    free(all);
    return cases;
}

static void test_cases_match_jinja2(void **state) {
    (void)state;
    gemma_error err;
    gemma_chat_format *fmt;
    if (gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &fmt, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_string_equal(gemma_chat_format_name(fmt), "gemma3");
    gemma_tokenizer *tok;
    if (gemma_tokenizer_load(GEMMA_TOKENIZER_DIR, &tok, &err) != GEMMA_OK) fail_msg("%s", err.message);
    const char *path = getenv("GEMMA_CHAT_CASES");
    if (!path || !*path) path = GEMMA_FIXTURES_DIR "/chat/gemma3.jsonl";
    assert_true(run_cases(fmt, tok, path) >= 100);
    gemma_tokenizer_free(tok);
    gemma_chat_format_free(fmt);
}

/* gemma-4-E2B-it's template (a copy in the fixtures) is recognised and
 * rendered as jinja2 renders it (tests/fixtures/chat/gemma4.jsonl,
 * tools/reference/make_gemma4_chat_cases.py). */
static void test_gemma4_cases_match_jinja2(void **state) {
    (void)state;
    gemma_error err;
    gemma_chat_format *fmt;
    const char *tmpl = GEMMA_FIXTURES_DIR "/chat/gemma4-e2b";
    if (gemma_chat_format_load(tmpl, &fmt, &err) != GEMMA_OK) fail_msg("%s", err.message);
    assert_string_equal(gemma_chat_format_name(fmt), "gemma4");
    assert_true(run_cases(fmt, NULL, GEMMA_FIXTURES_DIR "/chat/gemma4.jsonl") >= 100);
    gemma_chat_format_free(fmt);
}

static void test_recognition(void **state) {
    (void)state;
    gemma_error err;
    gemma_chat_format *f;
    size_t len;
    char *cfg = slurp(GEMMA_TOKENIZER_DIR "/tokenizer_config.json", &len);
    assert_non_null(cfg);
    /* a variant with "\n" after the system prompt (as in some GGUF conversions) */
    const char *variant =
        "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = "
        "messages[0]['content'] + '\\n' -%}{%- endif -%}<start_of_turn> raise_exception(\"Conversation roles must "
        "alternate user/assistant/user/assistant/...\")";
    assert_int_equal(gemma_chat_format_from_template(variant, &f, &err), GEMMA_OK);
    gemma_chat_message m[2] = {{.role = "system", .content = "S"}, {.role = "user", .content = " hi "}};
    char out[256];
    assert_int_equal(gemma_chat_render(f, m, 2, 1, out, sizeof out, &len, &err), GEMMA_OK);
    assert_string_equal(out, "<bos><start_of_turn>user\nS\nhi<end_of_turn>\n<start_of_turn>model\n");
    /* buffer too small: the size is still reported */
    assert_int_equal(gemma_chat_render(f, m, 2, 1, out, 10, &len, &err), GEMMA_ERR_BUFFER);
    assert_int_equal(len, strlen("<bos><start_of_turn>user\nS\nhi<end_of_turn>\n<start_of_turn>model\n"));
    gemma_chat_format_free(f);
    assert_int_equal(gemma_chat_format_from_template("{{ '<|turn>user' }}", &f, &err), GEMMA_ERR_UNSUPPORTED);
    assert_int_equal(gemma_chat_format_from_template("{% for m in messages %}{{ m.content }}{% endfor %}", &f, &err),
                     GEMMA_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "not recognised"));
    assert_int_equal(gemma_chat_format_load(GEMMA_TEST_TMPDIR "/no-such-dir", &f, &err), GEMMA_ERR_IO);
    free(cfg);
}

static void test_struct_messages(void **state) {
    (void)state;
    gemma_error err;
    gemma_chat_format *f;
    assert_int_equal(gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &f, &err), GEMMA_OK);
    gemma_chat_part parts[3] = {{.type = GEMMA_PART_TEXT, .text = "  Describe this X-ray "},
                                {.type = GEMMA_PART_IMAGE},
                                {.type = GEMMA_PART_OTHER, .text = "x"}};
    gemma_chat_message m[4] = {
        {.role = "system", .content = "You are an expert radiologist."},
        {.role = "user", .parts = parts, .n_parts = 3},
        {.role = "assistant", .content = "\tA chest film.\n"},
        {.role = "user", .content = "More?"},
    };
    char out[512];
    size_t len;
    assert_int_equal(gemma_chat_render(f, m, 4, 1, out, sizeof out, &len, &err), GEMMA_OK);
    assert_string_equal(out, "<bos><start_of_turn>user\nYou are an expert radiologist.\n\nDescribe this X-ray"
                             "<start_of_image><end_of_turn>\n<start_of_turn>model\nA chest film.<end_of_turn>\n"
                             "<start_of_turn>user\nMore?<end_of_turn>\n<start_of_turn>model\n");
    gemma_chat_message bad[2] = {{.role = "user", .content = "a"}, {.role = "user", .content = "b"}};
    assert_int_equal(gemma_chat_render(f, bad, 2, 1, out, sizeof out, &len, &err), GEMMA_ERR_ARG);
    assert_non_null(strstr(err.message, "alternate"));
    assert_int_equal(gemma_chat_render(f, bad, 0, 1, out, sizeof out, &len, &err), GEMMA_ERR_ARG);
    gemma_chat_message nocontent[1] = {{.role = "user"}};
    assert_int_equal(gemma_chat_render(f, nocontent, 1, 1, out, sizeof out, &len, &err), GEMMA_ERR_ARG);
    const char *json = "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\" Hi \"}]}]";
    assert_int_equal(gemma_chat_render_json(f, json, strlen(json), 0, out, sizeof out, &len, &err), GEMMA_OK);
    assert_string_equal(out, "<bos><start_of_turn>user\n<start_of_image>Hi<end_of_turn>\n");
    assert_int_equal(gemma_chat_render_json(f, "[{", 2, 1, out, sizeof out, &len, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_chat_render_json(f, "{}", 2, 1, out, sizeof out, &len, &err), GEMMA_ERR_ARG);
    gemma_chat_format_free(f);
}

/* Image placeholders expanded as Gemma3Processor does, then tokenized as HF
 * tokenizers 0.23.3 tokenizes the same text (ids computed there: the "\n" of
 * the turn and the "\n\n" before the image merge into one token, 109). */
static void test_expand_images(void **state) {
    (void)state;
    gemma_chat_format *f;
    gemma_tokenizer *tok;
    gemma_error err;
    assert_int_equal(gemma_chat_format_load(GEMMA_TOKENIZER_DIR, &f, &err), GEMMA_OK);
    assert_int_equal(gemma_tokenizer_load(GEMMA_TOKENIZER_DIR, &tok, &err), GEMMA_OK);
    gemma_chat_part parts[2] = {{GEMMA_PART_IMAGE, NULL, 0}, {GEMMA_PART_TEXT, "What is this?", 0}};
    gemma_chat_message m = {"user", NULL, 0, parts, 2};
    char rendered[512], expanded[1024], again[1024];
    size_t len, len2;
    int n_images = -1;
    assert_int_equal(gemma_chat_render(f, &m, 1, 1, rendered, sizeof rendered, &len, &err), GEMMA_OK);
    assert_string_equal(rendered, "<bos><start_of_turn>user\n<start_of_image>What is this?<end_of_turn>\n"
                                  "<start_of_turn>model\n");
    assert_int_equal(gemma_chat_expand_images(rendered, 0, 4, expanded, sizeof expanded, &len, &n_images, &err),
                     GEMMA_OK);
    assert_int_equal(n_images, 1);
    assert_string_equal(expanded, "<bos><start_of_turn>user\n\n\n<start_of_image><image_soft_token><image_soft_token>"
                                  "<image_soft_token><image_soft_token><end_of_image>\n\nWhat is this?<end_of_turn>\n"
                                  "<start_of_turn>model\n");
    static const int32_t want[] = {2,   105, 2364, 109, 255999, 262144, 262144, 262144, 262144, 256000,
                                   108, 3689, 563, 672, 236881, 106,    107,    105,    4368,   107};
    int32_t ids[64];
    size_t n;
    assert_int_equal(gemma_tokenize(tok, expanded, len, 0, ids, 64, &n, &err), GEMMA_OK);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    assert_memory_equal(ids, want, sizeof want);
    /* expanding an expanded prompt changes nothing; a small buffer says how much is needed */
    assert_int_equal(gemma_chat_expand_images(expanded, len, 4, again, sizeof again, &len2, &n_images, &err), GEMMA_OK);
    assert_string_equal(again, expanded);
    assert_int_equal(n_images, 1);
    assert_int_equal(gemma_chat_expand_images(rendered, 0, 256, again, sizeof again, &len2, NULL, &err),
                     GEMMA_ERR_BUFFER);
    assert_true(len2 > 256 * 18);
    assert_int_equal(gemma_chat_expand_images(rendered, 0, 0, again, sizeof again, &len2, NULL, &err), GEMMA_ERR_ARG);
    assert_int_equal(gemma_chat_expand_images("no images", 0, 4, again, sizeof again, &len2, &n_images, &err), GEMMA_OK);
    assert_int_equal(n_images, 0);
    assert_string_equal(again, "no images");
    gemma_tokenizer_free(tok);
    gemma_chat_format_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recognition),
        cmocka_unit_test(test_gemma4_cases_match_jinja2),
        cmocka_unit_test(test_struct_messages),
        cmocka_unit_test(test_expand_images),
        cmocka_unit_test(test_cases_match_jinja2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
