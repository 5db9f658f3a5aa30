/* test_json.c - unit tests for the strict JSON reader (src/core/json.c).
 *
 * Every document is parsed from a malloc'd copy of exactly its length, so a
 * read past the end (the input is never NUL-terminated) shows up under ASan,
 * and the copy is freed before the tree is inspected, so any pointer still
 * into the input shows up as use-after-free. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* ---- helpers ---- */

static char last_error[256];

static gm_json_doc *parse_len_limits(const char *text, size_t len, const gm_json_limits *limits) {
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, text, len);
    last_error[0] = '\0';
    gm_json_doc *doc = gm_json_parse(copy, len, limits, last_error, sizeof last_error);
    free(copy);
    return doc;
}

static gm_json_doc *parse_len(const char *text, size_t len) {
    return parse_len_limits(text, len, NULL);
}

static gm_json_doc *parse_ok(const char *text) {
    gm_json_doc *doc = parse_len(text, strlen(text));
    if (!doc) fail_msg("expected %s to parse, got: %s", text, last_error);
    return doc;
}

/* Literal with its exact size, so embedded NULs are part of the document. */
#define LIT(s) (s), (sizeof(s) - 1)

static void expect_reject_len(const char *text, size_t len, const char *error_part) {
    gm_json_doc *doc = parse_len(text, len);
    if (doc) {
        gm_json_free(doc);
        fail_msg("expected rejection of %.*s", (int)len, text);
    }
    if (strncmp(last_error, "line ", 5) != 0) fail_msg("bad error format: %s", last_error);
    if (error_part && !strstr(last_error, error_part))
        fail_msg("error for %.*s is \"%s\", expected it to contain \"%s\"", (int)len, text,
                 last_error, error_part);
}

static void expect_reject(const char *text, const char *error_part) {
    expect_reject_len(text, strlen(text), error_part);
}

static double number_of(const char *text) {
    gm_json_doc *doc = parse_ok(text);
    double v = NAN;
    assert_true(gm_json_number(gm_json_root(doc), &v));
    gm_json_free(doc);
    return v;
}

/* Appends to a growable buffer; for generated documents. */
typedef struct {
    char *data;
    size_t len, cap;
} text_buffer;

static void append(text_buffer *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
}

static char *nested(const char *open, const char *inner, const char *close, int depth) {
    size_t len = strlen(open) * (size_t)depth + strlen(inner) + strlen(close) * (size_t)depth;
    char *s = malloc(len + 1), *o = s;
    assert_non_null(s);
    for (int i = 0; i < depth; i++) o += sprintf(o, "%s", open);
    o += sprintf(o, "%s", inner);
    for (int i = 0; i < depth; i++) o += sprintf(o, "%s", close);
    return s;
}

/* ---- valid documents ---- */

static void test_scalars_at_root(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok(" \t\r\n null \t\r\n");
    assert_true(gm_json_is(gm_json_root(doc), GM_JSON_NULL));
    gm_json_free(doc);

    doc = parse_ok("true");
    assert_true(gm_json_is(gm_json_root(doc), GM_JSON_TRUE));
    assert_true(gm_json_is_bool(gm_json_root(doc)));
    gm_json_free(doc);

    doc = parse_ok("false");
    assert_true(gm_json_is(gm_json_root(doc), GM_JSON_FALSE));
    assert_true(gm_json_is_bool(gm_json_root(doc)));
    gm_json_free(doc);

    doc = parse_ok("42");
    int64_t i = 0;
    assert_true(gm_json_int(gm_json_root(doc), &i));
    assert_int_equal(i, 42);
    assert_false(gm_json_is_bool(gm_json_root(doc)));
    gm_json_free(doc);

    doc = parse_ok("\"hi\"");
    assert_string_equal(gm_json_string(gm_json_root(doc)), "hi");
    assert_int_equal(gm_json_root(doc)->len, 2);
    assert_null(gm_json_root(doc)->key);
    gm_json_free(doc);
}

static void test_nested_structure_and_order(void **state) {
    (void)state;
    gm_json_doc *doc =
        parse_ok("{\"a\": [1, \"two\", {\"b\": null, \"c\": [true, false]}], \"d\": {\"e\": \"f\"},"
                 " \"g\": []}");
    const gm_json *root = gm_json_root(doc);
    assert_true(gm_json_is(root, GM_JSON_OBJECT));
    assert_int_equal(gm_json_count(root), 3);
    assert_string_equal(gm_json_at(root, 0)->key, "a");
    assert_string_equal(gm_json_at(root, 1)->key, "d");
    assert_string_equal(gm_json_at(root, 2)->key, "g");
    assert_int_equal(gm_json_at(root, 2)->key_len, 1);

    const gm_json *a = gm_json_get(root, "a");
    assert_ptr_equal(a, gm_json_at(root, 0));
    assert_int_equal(gm_json_count(a), 3);
    int64_t one = 0;
    assert_true(gm_json_int(gm_json_at(a, 0), &one));
    assert_int_equal(one, 1);
    assert_string_equal(gm_json_string(gm_json_at(a, 1)), "two");
    assert_null(gm_json_at(a, 1)->key); /* array elements have no key */

    const gm_json *inner = gm_json_at(a, 2);
    assert_true(gm_json_is(gm_json_get(inner, "b"), GM_JSON_NULL));
    const gm_json *c = gm_json_get(inner, "c");
    assert_int_equal(gm_json_count(c), 2);
    assert_true(gm_json_is(gm_json_at(c, 0), GM_JSON_TRUE));
    assert_true(gm_json_is(gm_json_at(c, 1), GM_JSON_FALSE));
    assert_null(gm_json_at(c, 2));

    assert_string_equal(gm_json_string(gm_json_get(gm_json_get(root, "d"), "e")), "f");
    assert_int_equal(gm_json_count(gm_json_get(root, "g")), 0);
    assert_null(gm_json_get(root, "zzz"));
    gm_json_free(doc);
}

static void test_children_are_contiguous(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok("[[1,2],[3,[4,5,6]],7,{\"x\":[8]},9]");
    const gm_json *root = gm_json_root(doc);
    assert_int_equal(gm_json_count(root), 5);
    for (size_t i = 0; i < 5; i++) assert_ptr_equal(gm_json_at(root, i), gm_json_at(root, 0) + i);
    const gm_json *deep = gm_json_at(gm_json_at(root, 1), 1);
    for (size_t i = 0; i < 3; i++) {
        int64_t v = 0;
        assert_ptr_equal(gm_json_at(deep, i), deep->u.kids + i);
        assert_true(gm_json_int(gm_json_at(deep, i), &v));
        assert_int_equal(v, (int64_t)i + 4);
    }
    int64_t eight = 0;
    assert_true(gm_json_int(gm_json_at(gm_json_get(gm_json_at(root, 3), "x"), 0), &eight));
    assert_int_equal(eight, 8);
    gm_json_free(doc);
}

static void test_empty_containers(void **state) {
    (void)state;
    const char *docs[] = {"[]", "{}", " [ ] ", " { } ", "[[]]", "{\"a\":{}}", "[{},[],{}]"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) gm_json_free(parse_ok(docs[i]));

    gm_json_doc *doc = parse_ok("[]");
    assert_true(gm_json_is(gm_json_root(doc), GM_JSON_ARRAY));
    assert_int_equal(gm_json_count(gm_json_root(doc)), 0);
    assert_null(gm_json_at(gm_json_root(doc), 0));
    gm_json_free(doc);

    doc = parse_ok("{\"a\":{},\"b\":[]}");
    const gm_json *a = gm_json_get(gm_json_root(doc), "a");
    assert_true(gm_json_is(a, GM_JSON_OBJECT));
    assert_int_equal(gm_json_count(a), 0);
    assert_null(gm_json_get(a, "a"));
    assert_true(gm_json_is(gm_json_get(gm_json_root(doc), "b"), GM_JSON_ARRAY));
    assert_int_equal(gm_json_count(gm_json_get(gm_json_root(doc), "b")), 0);
    gm_json_free(doc);
}

static void test_string_escapes(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    assert_string_equal(gm_json_string(gm_json_root(doc)), "\"\\/\b\f\n\r\t");
    assert_int_equal(gm_json_root(doc)->len, 8);
    gm_json_free(doc);

    doc = parse_ok("\"\\u0041\\u00e9\\u20AC\\uFFFF\"");
    assert_string_equal(gm_json_string(gm_json_root(doc)), "A\xC3\xA9\xE2\x82\xAC\xEF\xBF\xBF");
    gm_json_free(doc);

    doc = parse_ok("\"\\ud83d\\ude00\"");
    assert_int_equal(gm_json_root(doc)->len, 4);
    assert_memory_equal(gm_json_string(gm_json_root(doc)), "\xF0\x9F\x98\x80", 5);
    gm_json_free(doc);

    doc = parse_ok("\"\\uDBFF\\uDFFF|\\uD800\\uDC00\""); /* U+10FFFF and U+10000 */
    assert_string_equal(gm_json_string(gm_json_root(doc)), "\xF4\x8F\xBF\xBF|\xF0\x90\x80\x80");
    gm_json_free(doc);

    /* Raw UTF-8 of every length passes through unchanged; DEL needs no escape. */
    const char *raw = "\"A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x7F\xF4\x8F\xBF\xBF\"";
    doc = parse_ok(raw);
    assert_string_equal(gm_json_string(gm_json_root(doc)),
                        "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x7F\xF4\x8F\xBF\xBF");
    gm_json_free(doc);

    doc = parse_ok("{\"k\\n\\u00e9\": \"\"}");
    const gm_json *member = gm_json_at(gm_json_root(doc), 0);
    assert_string_equal(member->key, "k\n\xC3\xA9");
    assert_int_equal(member->key_len, 4);
    assert_ptr_equal(gm_json_get(gm_json_root(doc), "k\n\xC3\xA9"), member);
    assert_string_equal(gm_json_string(member), "");
    assert_int_equal(member->len, 0);
    gm_json_free(doc);
}

static void test_embedded_nul(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok("[\"a\\u0000b\", \"\\u0000\"]");
    const gm_json *s = gm_json_at(gm_json_root(doc), 0);
    assert_int_equal(s->len, 3);
    assert_memory_equal(gm_json_string(s), "a\0b", 4); /* plus the terminator */
    assert_int_equal(gm_json_at(gm_json_root(doc), 1)->len, 1);
    gm_json_free(doc);

    doc = parse_ok("{\"a\\u0000b\": 1, \"a\": 2}");
    const gm_json *root = gm_json_root(doc);
    assert_int_equal(gm_json_at(root, 0)->key_len, 3);
    assert_memory_equal(gm_json_at(root, 0)->key, "a\0b", 4);
    /* "a" must find the real "a", not the key that merely starts with "a\0". */
    int64_t v = 0;
    assert_true(gm_json_int(gm_json_get(root, "a"), &v));
    assert_int_equal(v, 2);
    gm_json_free(doc);

    doc = parse_ok("{\"a\\u0000b\": 1}");
    assert_null(gm_json_get(gm_json_root(doc), "a"));
    gm_json_free(doc);
}

static void test_numbers(void **state) {
    (void)state;
    assert_true(number_of("0") == 0.0);
    double neg_zero = number_of("-0");
    assert_true(neg_zero == 0.0 && signbit(neg_zero));
    assert_true(signbit(number_of("-0.0e+5")));
    assert_true(number_of("0.1") == 0.1);
    assert_true(number_of("-0.1") == -0.1);
    assert_true(number_of("1.5") == 1.5);
    assert_true(number_of("123.456e-2") == 1.23456);
    assert_true(number_of("1E2") == 100.0);
    assert_true(number_of("1e+2") == 100.0);
    assert_true(number_of("1e-2") == 0.01);
    assert_true(number_of("0.000001") == 1e-6);
    assert_true(number_of("1e308") == 1e308);
    assert_true(number_of("-1e308") == -1e308);
    assert_true(number_of("1.7976931348623157e308") == 1.7976931348623157e308);
    assert_true(number_of("2.2250738585072014e-308") == 2.2250738585072014e-308);
    assert_true(number_of("4.9406564584124654e-324") == 4.9406564584124654e-324);
    assert_true(number_of("1e-400") == 0.0); /* underflow rounds to zero */
    assert_true(number_of("3.141592653589793") == 3.141592653589793);
    assert_true(number_of("12345678901234567890") == 12345678901234567890.0);
    assert_true(number_of("1e22") == 1e22);
    assert_true(number_of("1e23") == 1e23);
    assert_true(number_of("9007199254740993") == 9007199254740992.0); /* ties to even */
    /* More digits than the fast path holds; correct rounding still expected. */
    assert_true(number_of("0.1000000000000000055511151231257827") == 0.1);
    assert_true(number_of("2.22507385850720113605740979670913197593481954635164564e-308") ==
                2.22507385850720113605740979670913197593481954635164564e-308);
    assert_true(number_of("100000000000000000000000000000000000000000000e-44") == 1.0);
    assert_true(number_of("0.00000000000000000000000000000000000000000000001e46") == 0.1);

    /* A 400-digit mantissa takes the heap copy in the slow path. */
    char big[512] = "0.";
    for (int i = 0; i < 400; i++) strcat(big, i % 7 ? "3" : "1");
    assert_true(number_of(big) == strtod(big, NULL));
}

/* Sweep both conversion paths against the C library (correctly rounded on
 * glibc, and this test runs in the "C" locale where strtod reads '.').
 * Catches an inexact fast path such as multiplying by 1/10^k. */
static void test_numbers_match_strtod(void **state) {
    (void)state;
    char text[64];
    uint64_t mantissa = 1;
    for (int i = 0; i < 4000; i++) {
        mantissa = mantissa * 6364136223846793005u + 1442695040888963407u;
        int exponent = (int)(mantissa >> 58) - 32 + (i % 5 == 0 ? (i % 600) - 300 : 0);
        uint64_t digits = (mantissa >> 11) % (i % 3 ? 100000u : UINT64_C(100000000000000000));
        snprintf(text, sizeof text, "%llu.%llue%d", (unsigned long long)(digits / 1000),
                 (unsigned long long)(digits % 1000), exponent);
        double expect = strtod(text, NULL);
        if (isinf(expect)) continue;
        if (number_of(text) != expect) fail_msg("%s parsed as %.17g, expected %.17g", text,
                                                number_of(text), expect);
    }
    assert_true(number_of("0.3") == 0.3);
    assert_true(number_of("123e-20") == 123e-20);
}

static void test_number_rejections(void **state) {
    (void)state;
    expect_reject("1e309", "out of range");
    expect_reject("-1e309", "out of range");
    expect_reject("1.8e308", "out of range");
    expect_reject("1e999999999999999999999", "out of range");
    expect_reject("[1, 2e400]", "line 1, column 5: number out of range");
    expect_reject("01", "leading zeros");
    expect_reject("-01", "leading zeros");
    expect_reject("00", "leading zeros");
    expect_reject("+1", "line 1, column 1: unexpected '+'");
    expect_reject(".5", "line 1, column 1: unexpected '.'");
    expect_reject("1.", "line 1, column 3");
    expect_reject("1.e5", "line 1, column 3");
    expect_reject("1e", "line 1, column 3");
    expect_reject("1e+", "line 1, column 4");
    expect_reject("1ex", "line 1, column 3");
    expect_reject("-", "line 1, column 2");
    expect_reject("-a", "line 1, column 2");
    expect_reject("- 1", "line 1, column 2");
    expect_reject("0x10", "line 1, column 2");
    expect_reject("1.5.2", NULL);
    expect_reject("NaN", "unexpected 'N'");
    expect_reject("Infinity", "unexpected 'I'");
    expect_reject("-Infinity", "line 1, column 2");
    expect_reject("[nan]", NULL);
}

static void test_integers(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok("[9007199254740992, -9007199254740992, 9007199254740994, 1.5,"
                                " 1e3, -7, 0, 1e300, 1.0, -0, 262143]");
    const gm_json *root = gm_json_root(doc);
    int64_t v = 0;
    assert_true(gm_json_int(gm_json_at(root, 0), &v));
    assert_int_equal(v, INT64_C(9007199254740992));
    assert_true(gm_json_int(gm_json_at(root, 1), &v));
    assert_int_equal(v, -INT64_C(9007199254740992));
    assert_false(gm_json_int(gm_json_at(root, 2), &v)); /* above 2^53 */
    assert_false(gm_json_int(gm_json_at(root, 3), &v)); /* not integral */
    assert_true(gm_json_int(gm_json_at(root, 4), &v));
    assert_int_equal(v, 1000);
    assert_true(gm_json_int(gm_json_at(root, 5), &v));
    assert_int_equal(v, -7);
    assert_true(gm_json_int(gm_json_at(root, 6), &v));
    assert_int_equal(v, 0);
    assert_false(gm_json_int(gm_json_at(root, 7), &v));
    assert_true(gm_json_int(gm_json_at(root, 8), &v));
    assert_int_equal(v, 1);
    assert_true(gm_json_int(gm_json_at(root, 9), &v));
    assert_int_equal(v, 0);
    assert_true(gm_json_int(gm_json_at(root, 10), NULL));
    double d = 0;
    assert_true(gm_json_number(gm_json_at(root, 3), &d));
    assert_true(d == 1.5);
    gm_json_free(doc);

    /* Every integer up to 2^53 must round-trip exactly. */
    char text[32];
    const int64_t samples[] = {1, 255, 65535, 4294967296, 123456789012345, 4503599627370497,
                               9007199254740991};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        snprintf(text, sizeof text, "%lld", (long long)samples[i]);
        doc = parse_ok(text);
        assert_true(gm_json_int(gm_json_root(doc), &v));
        assert_int_equal(v, samples[i]);
        gm_json_free(doc);
    }
}

/* strtod's decimal point follows LC_NUMERIC; the parser must not. */
static void test_numbers_ignore_locale(void **state) {
    (void)state;
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE"};
    const char *chosen = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !chosen; i++)
        if (setlocale(LC_NUMERIC, names[i])) chosen = names[i];
    if (!chosen) {
        print_message("no comma-decimal locale installed (try LOCPATH); skipping\n");
        skip();
    }
    assert_string_equal(localeconv()->decimal_point, ",");
    double fast = number_of("1.5");
    double slow = number_of("0.1000000000000000055511151231257827");
    double slow_exp = number_of("1.2345678901234567890123e-200");
    setlocale(LC_NUMERIC, "C");
    assert_true(fast == 1.5);
    assert_true(slow == 0.1);
    assert_true(slow_exp == 1.2345678901234567890123e-200);
}

static void test_duplicate_keys_first_wins(void **state) {
    (void)state;
    gm_json_doc *doc = parse_ok("{\"a\": 1, \"b\": 2, \"a\": 3}");
    const gm_json *root = gm_json_root(doc);
    assert_int_equal(gm_json_count(root), 3);
    int64_t v = 0;
    assert_true(gm_json_int(gm_json_get(root, "a"), &v));
    assert_int_equal(v, 1);
    assert_true(gm_json_int(gm_json_at(root, 2), &v));
    assert_int_equal(v, 3);
    assert_string_equal(gm_json_at(root, 2)->key, "a");
    gm_json_free(doc);
}

/* ---- rejections ---- */

static void test_reject_syntax(void **state) {
    (void)state;
    expect_reject("", "line 1, column 1: unexpected end of input");
    expect_reject("   ", "line 1, column 4: unexpected end of input");
    expect_reject("[1,]", "line 1, column 4: unexpected ']', expected a value");
    expect_reject("[1,,2]", "line 1, column 4");
    expect_reject("[,1]", "line 1, column 2");
    expect_reject("{\"a\":1,}", "line 1, column 8: unexpected '}', expected a string key");
    expect_reject("{,}", "line 1, column 2");
    expect_reject("[1 2]", "expected ',' or ']' in array");
    expect_reject("{\"a\" 1}", "expected ':' after object key");
    expect_reject("{\"a\":1 \"b\":2}", "line 1, column 8: unexpected '\"', expected ',' or '}' in object");
    expect_reject("{1:2}", "expected a string key");
    expect_reject("{'a':1}", "unexpected '''");
    expect_reject("'a'", "line 1, column 1");
    expect_reject("// c\n1", "line 1, column 1");
    expect_reject("1 // c", "line 1, column 3");
    expect_reject("/* c */ 1", "line 1, column 1");
    expect_reject("[1] /* c */", "line 1, column 5");
    expect_reject("[", "line 1, column 2: unexpected end of input in array");
    expect_reject("[1", "unexpected end of input in array");
    expect_reject("{", "unexpected end of input in object");
    expect_reject("{\"a\"", "unexpected end of input in object");
    expect_reject("{\"a\":", "unexpected end of input");
    expect_reject("{\"a\":1", "unexpected end of input in object");
    expect_reject("]", "line 1, column 1");
    expect_reject("}", NULL);
    expect_reject("tru", "invalid literal");
    expect_reject("nul", "invalid literal");
    expect_reject("True", NULL);
    expect_reject("nulL", NULL);
    expect_reject("\f1", "unexpected byte 0x0C"); /* form feed is not JSON whitespace */
    expect_reject("\xEF\xBB\xBF{}", "line 1, column 1"); /* byte order mark */
    expect_reject("[1]]", "line 1, column 4");
}

static void test_reject_trailing_garbage(void **state) {
    (void)state;
    expect_reject("1 2", "line 1, column 3: unexpected '2', expected end of input");
    expect_reject("{} x", "line 1, column 4");
    expect_reject("nulll", "line 1, column 5");
    expect_reject("truex", NULL);
    expect_reject("\"a\"\"b\"", NULL);
    expect_reject("[] []", NULL);
    expect_reject_len(LIT("1\0"), "line 1, column 2: unexpected byte 0x00");
    expect_reject_len(LIT("\0"), NULL);
    gm_json_free(parse_ok("[]  \n\t\r "));
}

static void test_reject_bad_strings(void **state) {
    (void)state;
    expect_reject("\"abc", "line 1, column 5: unexpected end of input in string");
    expect_reject("\"\x01\"", "line 1, column 2: unescaped control character");
    expect_reject("\"a\tb\"", "line 1, column 3: unescaped control character");
    expect_reject("\"a\nb\"", "line 1, column 3: unescaped control character");
    expect_reject("\"\x1F\"", "unescaped control character");
    expect_reject_len(LIT("\"a\0b\""), "line 1, column 3: unescaped control character");
    expect_reject("\"\\x\"", "line 1, column 3: invalid escape");
    expect_reject("\"\\a\"", "invalid escape");
    expect_reject("\"\\U0041\"", "invalid escape");
    expect_reject("\"\\'\"", "invalid escape");
    expect_reject("\"\\u12G4\"", "line 1, column 6: expected 4 hex digits");
    expect_reject("\"\\u12\"", "expected 4 hex digits");
    expect_reject("\"\\u12", "unexpected end of input");
    expect_reject("\"\\", "unexpected end of input");
    expect_reject("{\"a\\q\":1}", "invalid escape");
}

static void test_reject_bad_utf8(void **state) {
    (void)state;
    const char *bad[] = {
        "\"\xC0\xAF\"",             /* overlong '/' */
        "\"\xC1\xBF\"",             /* overlong */
        "\"\xE0\x80\xAF\"",         /* overlong 3-byte */
        "\"\xE0\x9F\xBF\"",         /* overlong 3-byte, top */
        "\"\xF0\x80\x80\xAF\"",     /* overlong 4-byte */
        "\"\xF0\x8F\xBF\xBF\"",     /* overlong 4-byte, top */
        "\"\xED\xA0\x80\"",         /* U+D800 encoded directly */
        "\"\xED\xBF\xBF\"",         /* U+DFFF encoded directly */
        "\"\xED\xA0\xBD\xED\xB8\x80\"", /* CESU-8 style surrogate pair */
        "\"\xF4\x90\x80\x80\"",     /* U+110000 */
        "\"\xF5\x80\x80\x80\"",     /* lead byte beyond range */
        "\"\xF8\x88\x80\x80\x80\"", /* 5-byte form */
        "\"\xFF\"",
        "\"\xFE\"",
        "\"\x80\"",                 /* lone continuation byte */
        "\"\xBF\"",
        "\"\xC3\"",                 /* truncated 2-byte */
        "\"\xC3x\"",
        "\"\xE2\x82\"",             /* truncated 3-byte */
        "\"\xF0\x9F\x98\"",         /* truncated 4-byte */
        "\"\xE2\x82\xC3\xA9\"",     /* truncated, then a valid sequence */
        "{\"\xC0\x80\":1}",         /* bad key too */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_reject(bad[i], "invalid UTF-8");
    expect_reject("[\"ok\", \"\xC3\x28\"]", "line 1, column 9: invalid UTF-8");
    /* Truncated at the very end of the input: no closing quote to find. */
    expect_reject("\"\xF0\x9F\x98", "invalid UTF-8");
    expect_reject("\"\xC3", "invalid UTF-8");
}

static void test_reject_unpaired_surrogates(void **state) {
    (void)state;
    expect_reject("\"\\ud83d\"", "line 1, column 2: unpaired high surrogate");
    expect_reject("\"\\ude00\"", "line 1, column 2: unpaired low surrogate");
    expect_reject("\"\\ude00\\ud83d\"", "unpaired low surrogate");
    expect_reject("\"\\ud83d\\u0041\"", "unpaired high surrogate");
    expect_reject("\"\\ud83d\\ud83d\"", "unpaired high surrogate");
    expect_reject("\"\\ud83dx\"", "unpaired high surrogate");
    expect_reject("\"\\ud83d\\n\"", "unpaired high surrogate");
    expect_reject("\"x\\uDBFF", "unpaired high surrogate");
    expect_reject("\"\\ud83d\\u", "unexpected end of input");
    expect_reject("\"\\ud83d\\ude0", "unexpected end of input");
    expect_reject("\"\\ud83d\\ude0z\"", "expected 4 hex digits");
}

static void test_error_positions(void **state) {
    (void)state;
    expect_reject("{\n  \"a\": 1,\n  \"bb\": 2 \"c\"\n}", "line 3, column 11: unexpected '\"', expected ',' or '}' in object");
    expect_reject("[\n1,\n2,\n]", "line 4, column 1: unexpected ']'");
    expect_reject("{\r\n\"a\": \"x\x01\"}", "line 2, column 8: unescaped control character");
    expect_reject("[1,\n  2,\n  01]", "line 3, column 3: leading zeros");
    expect_reject("[\n\"\\ud800\"]", "line 2, column 2: unpaired high surrogate");
    expect_reject("\n\n", "line 3, column 1: unexpected end of input");
    /* The exact example from the header comment's format. */
    expect_reject("{\n\"k\": 1,\n\"kkkkkkk\": 2 3}", "line 3, column 14: unexpected '3', expected ',' or '}' in object");
}

static void test_error_buffer_handling(void **state) {
    (void)state;
    /* No error buffer at all: must still fail cleanly. */
    assert_null(gm_json_parse("[1,]", 4, NULL, NULL, 0));
    assert_null(gm_json_parse("[1,]", 4, NULL, NULL, 100));
    char one = 'X';
    assert_null(gm_json_parse("[1,]", 4, NULL, &one, 0));
    assert_int_equal(one, 'X'); /* errlen 0: untouched */

    /* Truncation never writes past errlen. */
    char buf[16];
    memset(buf, 'Z', sizeof buf);
    assert_null(gm_json_parse("[1,]", 4, NULL, buf, 8));
    assert_int_equal(strlen(buf), 7);
    assert_memory_equal(buf, "line 1,", 7);
    for (size_t i = 8; i < sizeof buf; i++) assert_int_equal(buf[i], 'Z');

    /* Success clears a stale message. */
    strcpy(buf, "stale");
    gm_json_doc *doc = gm_json_parse("1", 1, NULL, buf, sizeof buf);
    assert_non_null(doc);
    assert_string_equal(buf, "");
    gm_json_free(doc);

    /* NULL text is only acceptable with zero length (then it is empty input). */
    char message[128];
    assert_null(gm_json_parse(NULL, 5, NULL, message, sizeof message));
    assert_true(strlen(message) > 0);
    assert_null(gm_json_parse(NULL, 0, NULL, message, sizeof message));
    assert_non_null(strstr(message, "line 1, column 1: unexpected end of input"));
}

static void test_input_not_nul_terminated(void **state) {
    (void)state;
    /* Only the first len bytes count, whatever follows in memory. */
    gm_json_doc *doc = parse_len("123456", 3);
    assert_non_null(doc);
    int64_t v = 0;
    assert_true(gm_json_int(gm_json_root(doc), &v));
    assert_int_equal(v, 123);
    gm_json_free(doc);

    doc = parse_len("[1]garbage", 3);
    assert_non_null(doc);
    gm_json_free(doc);

    assert_null(parse_len("\"abc\"", 4));
    assert_null(parse_len("true", 3));
    assert_null(parse_len("1.5", 2));
    assert_null(parse_len("1e5", 2));
    assert_null(parse_len("-1", 1));
    assert_null(parse_len("\"\\u00e9\"", 6));
    assert_null(parse_len("\"\xE2\x82\xAC\"", 3));
}

/* ---- limits ---- */

static void test_depth_limit(void **state) {
    (void)state;
    char *ok = nested("[", "1", "]", 256);
    gm_json_doc *doc = parse_ok(ok);
    const gm_json *v = gm_json_root(doc);
    for (int i = 0; i < 256; i++) {
        assert_true(gm_json_is(v, GM_JSON_ARRAY));
        v = gm_json_at(v, 0);
    }
    assert_true(gm_json_is(v, GM_JSON_NUMBER));
    gm_json_free(doc);
    free(ok);

    char *too_deep = nested("[", "1", "]", 257);
    expect_reject(too_deep, "line 1, column 257: nesting deeper than the limit of 256");
    free(too_deep);

    char *objects = nested("{\"a\":", "{}", "}", 255);
    gm_json_free(parse_ok(objects));
    free(objects);
    objects = nested("{\"a\":", "{}", "}", 256);
    expect_reject(objects, "nesting deeper");
    free(objects);

    gm_json_limits three = {0, 3};
    doc = parse_len_limits(LIT("[[[1]]]"), &three);
    assert_non_null(doc);
    gm_json_free(doc);
    assert_null(parse_len_limits(LIT("[[[[1]]]]"), &three));
    assert_non_null(strstr(last_error, "line 1, column 4: nesting deeper than the limit of 3"));
    assert_null(parse_len_limits(LIT("[{\"a\":[{}]}]"), &three));
    doc = parse_len_limits(LIT("[[], [[]], {\"a\": [1]}]"), &three);
    assert_non_null(doc); /* depth is nesting, not the number of containers */
    gm_json_free(doc);

    /* Scalars need no depth at all. */
    gm_json_limits one = {0, 1};
    doc = parse_len_limits(LIT("[1, \"x\", null]"), &one);
    assert_non_null(doc);
    gm_json_free(doc);
    assert_null(parse_len_limits(LIT("[[]]"), &one));

    /* Hostile nesting far beyond the limit must fail fast, not crash. */
    size_t n = 1000000;
    char *bomb = malloc(n);
    assert_non_null(bomb);
    memset(bomb, '[', n);
    assert_null(parse_len(bomb, n));
    assert_non_null(strstr(last_error, "nesting deeper"));

    /* A generous custom limit really allows deep documents (no recursion). */
    int deep = 200000;
    char *deep_doc = nested("[", "", "]", deep);
    gm_json_limits generous = {0, deep};
    doc = parse_len_limits(deep_doc, strlen(deep_doc), &generous);
    assert_non_null(doc);
    gm_json_free(doc);
    generous.max_depth = deep - 1;
    assert_null(parse_len_limits(deep_doc, strlen(deep_doc), &generous));
    free(deep_doc);
    free(bomb);
}

static void test_max_bytes_limit(void **state) {
    (void)state;
    const char *text = "[1, 2, 3]"; /* 9 bytes */
    gm_json_limits exact = {9, 0};
    gm_json_doc *doc = parse_len_limits(text, 9, &exact);
    assert_non_null(doc);
    gm_json_free(doc);

    gm_json_limits smaller = {8, 0};
    assert_null(parse_len_limits(text, 9, &smaller));
    assert_non_null(strstr(last_error, "line 1, column 9: input is longer than the limit of 8 bytes"));

    gm_json_limits unlimited = {0, 0};
    doc = parse_len_limits(text, 9, &unlimited);
    assert_non_null(doc);
    gm_json_free(doc);

    gm_json_limits tiny = {1, 0};
    assert_null(parse_len_limits(LIT("\n\n12"), &tiny));
    assert_non_null(strstr(last_error, "line 2, column 1"));
}

/* ---- accessors ---- */

static void test_accessors_null_and_wrong_types(void **state) {
    (void)state;
    double d = 7;
    int64_t i = 7;
    assert_null(gm_json_root(NULL));
    gm_json_free(NULL);
    assert_null(gm_json_get(NULL, "a"));
    assert_null(gm_json_at(NULL, 0));
    assert_int_equal(gm_json_count(NULL), 0);
    assert_false(gm_json_is(NULL, GM_JSON_NULL));
    assert_false(gm_json_is_bool(NULL));
    assert_false(gm_json_number(NULL, &d));
    assert_false(gm_json_int(NULL, &i));
    assert_null(gm_json_string(NULL));
    assert_true(d == 7 && i == 7);

    gm_json_doc *doc = parse_ok("{\"s\": \"text\", \"n\": 1.25, \"a\": [\"x\"], \"t\": true, \"z\": null}");
    const gm_json *root = gm_json_root(doc);
    const gm_json *s = gm_json_get(root, "s");
    const gm_json *n = gm_json_get(root, "n");
    const gm_json *a = gm_json_get(root, "a");
    const gm_json *t = gm_json_get(root, "t");
    const gm_json *z = gm_json_get(root, "z");
    assert_null(gm_json_get(root, NULL));

    assert_null(gm_json_get(a, "x"));           /* arrays have no members */
    assert_null(gm_json_get(s, "s"));
    assert_null(gm_json_at(s, 0));              /* strings have no children */
    assert_null(gm_json_at(n, 0));
    assert_int_equal(gm_json_count(s), 0);
    assert_int_equal(gm_json_count(n), 0);
    assert_int_equal(gm_json_count(root), 5);
    assert_ptr_equal(gm_json_at(root, 1), n);   /* at() also indexes objects */
    assert_null(gm_json_at(root, 5));
    assert_null(gm_json_at(root, (size_t)-1));

    assert_false(gm_json_number(s, &d));
    assert_false(gm_json_number(t, &d));
    assert_false(gm_json_number(z, &d));
    assert_false(gm_json_int(s, &i));
    assert_false(gm_json_int(n, &i));
    assert_true(d == 7 && i == 7);              /* failed reads leave outputs alone */
    assert_true(gm_json_number(n, &d));
    assert_true(d == 1.25);
    assert_true(gm_json_number(n, NULL));

    assert_null(gm_json_string(n));
    assert_null(gm_json_string(a));
    assert_null(gm_json_string(z));
    assert_string_equal(gm_json_string(s), "text");
    assert_string_equal(gm_json_string(gm_json_at(a, 0)), "x");

    assert_true(gm_json_is_bool(t));
    assert_false(gm_json_is_bool(z));
    assert_false(gm_json_is_bool(s));
    assert_true(gm_json_is(z, GM_JSON_NULL));
    assert_false(gm_json_is(z, GM_JSON_FALSE));
    assert_true(gm_json_is(root, GM_JSON_OBJECT));
    assert_true(gm_json_is(a, GM_JSON_ARRAY));

    /* Keys match exactly, not by prefix. */
    assert_null(gm_json_get(root, ""));
    assert_null(gm_json_get(root, "ss"));
    assert_null(gm_json_get(root, "S"));
    gm_json_free(doc);

    doc = parse_ok("{\"\": 5}");
    assert_non_null(gm_json_get(gm_json_root(doc), ""));
    assert_int_equal(gm_json_at(gm_json_root(doc), 0)->key_len, 0);
    gm_json_free(doc);
}

/* ---- size ---- */

static void test_large_generated_document(void **state) {
    (void)state;
    const int n = 200000;
    text_buffer b = {0};
    append(&b, "{\"vocab\": {");
    for (int i = 0; i < n; i++) append(&b, "%s\"tok%d\\u00e9\": %d", i ? ", " : "", i, i);
    append(&b, "}, \"merges\": [");
    for (int i = 0; i < n; i++) append(&b, "%s[\"a%d\", \"b%d\"]", i ? ", " : "", i, n - i);
    append(&b, "]}");
    assert_true(b.len > 4000000);

    gm_json_doc *doc = parse_len(b.data, b.len);
    free(b.data);
    if (!doc) fail_msg("large document rejected: %s", last_error);

    const gm_json *root = gm_json_root(doc);
    const gm_json *vocab = gm_json_get(root, "vocab");
    const gm_json *merges = gm_json_get(root, "merges");
    assert_int_equal(gm_json_count(vocab), n);
    assert_int_equal(gm_json_count(merges), n);

    int64_t id = -1;
    assert_true(gm_json_int(gm_json_get(vocab, "tok123456\xC3\xA9"), &id));
    assert_int_equal(id, 123456);
    const int probes[] = {0, 1, 99999, 199999};
    for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
        int k = probes[p];
        char expect[32];
        const gm_json *member = gm_json_at(vocab, (size_t)k);
        snprintf(expect, sizeof expect, "tok%d\xC3\xA9", k);
        assert_string_equal(member->key, expect);
        assert_true(gm_json_int(member, &id));
        assert_int_equal(id, k);

        const gm_json *pair = gm_json_at(merges, (size_t)k);
        assert_int_equal(gm_json_count(pair), 2);
        snprintf(expect, sizeof expect, "a%d", k);
        assert_string_equal(gm_json_string(gm_json_at(pair, 0)), expect);
        snprintf(expect, sizeof expect, "b%d", n - k);
        assert_string_equal(gm_json_string(gm_json_at(pair, 1)), expect);
    }
    gm_json_free(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_at_root),
        cmocka_unit_test(test_nested_structure_and_order),
        cmocka_unit_test(test_children_are_contiguous),
        cmocka_unit_test(test_empty_containers),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_numbers_match_strtod),
        cmocka_unit_test(test_number_rejections),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_numbers_ignore_locale),
        cmocka_unit_test(test_duplicate_keys_first_wins),
        cmocka_unit_test(test_reject_syntax),
        cmocka_unit_test(test_reject_trailing_garbage),
        cmocka_unit_test(test_reject_bad_strings),
        cmocka_unit_test(test_reject_bad_utf8),
        cmocka_unit_test(test_reject_unpaired_surrogates),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_error_buffer_handling),
        cmocka_unit_test(test_input_not_nul_terminated),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_max_bytes_limit),
        cmocka_unit_test(test_accessors_null_and_wrong_types),
        cmocka_unit_test(test_large_generated_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
