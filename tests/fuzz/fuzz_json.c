/* fuzz_json.c - libFuzzer target for the JSON reader (src/core/json.c).
 *
 * Why: the reader is the first thing to touch untrusted bytes.  Parsing the
 * raw input catches crashes and over-reads (libFuzzer's buffer has no NUL);
 * walking the whole tree checks the invariants the rest of the engine relies
 * on, so a bad tree aborts here instead of corrupting something later; and
 * re-serializing then re-parsing every accepted tree must reproduce it.
 * The first input byte also picks a small depth limit now and then, so the
 * limit path gets exercised as well as the default one.  Every accepted
 * document is also read as a config.json (src/io/config.c): a config it
 * accepts must describe layers the forward passes can index safely. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "io/config.h"

#define CHECK(cond) \
    do {            \
        if (!(cond)) abort(); \
    } while (0)

/* Walks without recursion, so a 256-deep document cannot overflow the
 * fuzzer's stack either: an explicit stack of (container, next child). */
typedef struct {
    const gm_json *container;
    size_t next;
} walk_frame;

static void check_value(const gm_json *v) {
    CHECK(gm_json_is(v, v->type));
    switch (v->type) {
    case GM_JSON_NULL:
    case GM_JSON_TRUE:
    case GM_JSON_FALSE:
        CHECK(gm_json_is_bool(v) == (v->type != GM_JSON_NULL));
        CHECK(gm_json_string(v) == NULL && gm_json_count(v) == 0);
        break;
    case GM_JSON_NUMBER: {
        double d = 0;
        int64_t i = 0;
        CHECK(gm_json_number(v, &d));
        CHECK(d == d && d - d == 0); /* finite, never NaN */
        if (gm_json_int(v, &i)) CHECK((double)i == d);
        break;
    }
    case GM_JSON_STRING: {
        const char *s = gm_json_string(v);
        CHECK(s != NULL);
        CHECK(s[v->len] == '\0'); /* terminated right after len bytes */
        CHECK(strlen(s) <= v->len);
        break;
    }
    case GM_JSON_ARRAY:
    case GM_JSON_OBJECT:
        CHECK(gm_json_string(v) == NULL);
        CHECK(gm_json_count(v) == v->len);
        CHECK(gm_json_at(v, v->len) == NULL);
        break;
    default:
        abort();
    }
}

static void walk(const gm_json *root, size_t max_depth) {
    walk_frame *stack = malloc((max_depth + 1) * sizeof *stack);
    CHECK(stack != NULL);
    size_t depth = 0;
    check_value(root);
    if (gm_json_count(root)) stack[depth++] = (walk_frame){root, 0};
    while (depth) {
        walk_frame *top = &stack[depth - 1];
        if (top->next == gm_json_count(top->container)) {
            depth--;
            continue;
        }
        size_t index = top->next++;
        const gm_json *kid = gm_json_at(top->container, index);
        CHECK(kid != NULL && kid == gm_json_at(top->container, 0) + index);
        check_value(kid);
        if (gm_json_is(top->container, GM_JSON_OBJECT)) {
            CHECK(kid->key != NULL && kid->key[kid->key_len] == '\0');
            /* The first member with this key must be at or before this one. */
            if (strlen(kid->key) == kid->key_len) {
                const gm_json *found = gm_json_get(top->container, kid->key);
                CHECK(found != NULL && found <= kid && found->key_len == kid->key_len);
            }
        } else {
            CHECK(kid->key == NULL);
        }
        if (gm_json_count(kid)) {
            CHECK(depth < max_depth);
            stack[depth++] = (walk_frame){kid, 0};
        }
    }
    free(stack);
}

/* ---- round trip ----
 * Re-serializing an accepted tree and parsing it again must give the same
 * tree: catches decoding bugs (escapes, surrogates, keys, numbers) that a
 * crash-only target would miss.  Recursion is bounded by the depth limit. */

typedef struct {
    char *data;
    size_t len, cap;
} out_buffer;

static void put(out_buffer *b, const void *bytes, size_t n) {
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        b->data = realloc(b->data, cap);
        CHECK(b->data != NULL);
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void put_string(out_buffer *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(b, esc, 6);
        } else {
            put(b, &s[i], 1);
        }
    }
    put(b, "\"", 1);
}

static void serialize(out_buffer *b, const gm_json *v) {
    char num[40];
    switch (v->type) {
    case GM_JSON_NULL: put(b, "null", 4); break;
    case GM_JSON_TRUE: put(b, "true", 4); break;
    case GM_JSON_FALSE: put(b, "false", 5); break;
    case GM_JSON_NUMBER: put(b, num, (size_t)snprintf(num, sizeof num, "%.17g", v->u.num)); break;
    case GM_JSON_STRING: put_string(b, v->u.str, v->len); break;
    case GM_JSON_ARRAY:
    case GM_JSON_OBJECT: {
        bool object = v->type == GM_JSON_OBJECT;
        put(b, object ? "{" : "[", 1);
        for (size_t i = 0; i < v->len; i++) {
            const gm_json *kid = gm_json_at(v, i);
            if (i) put(b, ",", 1);
            if (object) {
                put_string(b, kid->key, kid->key_len);
                put(b, ":", 1);
            }
            serialize(b, kid);
        }
        put(b, object ? "}" : "]", 1);
        break;
    }
    }
}

static void check_same(const gm_json *a, const gm_json *b) {
    CHECK(a->type == b->type && a->len == b->len && a->key_len == b->key_len);
    CHECK((a->key == NULL) == (b->key == NULL));
    if (a->key) CHECK(memcmp(a->key, b->key, a->key_len + 1) == 0);
    if (a->type == GM_JSON_NUMBER) CHECK(memcmp(&a->u.num, &b->u.num, sizeof a->u.num) == 0);
    if (a->type == GM_JSON_STRING) CHECK(memcmp(a->u.str, b->u.str, a->len + 1) == 0);
    if (a->type == GM_JSON_ARRAY || a->type == GM_JSON_OBJECT)
        for (size_t i = 0; i < a->len; i++) check_same(gm_json_at(a, i), gm_json_at(b, i));
}

static void check_round_trip(const gm_json *root, const gm_json_limits *limits) {
    out_buffer b = {0};
    serialize(&b, root);
    char err[128];
    gm_json_doc *again = gm_json_parse(b.data, b.len, limits, err, sizeof err);
    CHECK(again != NULL);
    check_same(root, gm_json_root(again));
    gm_json_free(again);
    free(b.data);
}

/* The per-layer table of an accepted config: donors come first and share
 * the head width, RoPE rotates at most half the head, buffer maxima hold. */
static void check_config(const char *text, size_t size) {
    gm_config cfg;
    gemma_error err;
    if (gm_config_parse(&cfg, "config.json", text, size, &err) == GEMMA_OK) {
        for (int l = 0; l < cfg.n_layers; l++) {
            const gm_layer_config *L = &cfg.layers[l];
            CHECK(L->kv_source >= 0 && L->kv_source <= l);
            CHECK(cfg.layers[L->kv_source].kv_source == L->kv_source);
            CHECK(cfg.layers[L->kv_source].head_dim == L->head_dim);
            CHECK(L->head_dim >= 2 && L->head_dim % 2 == 0 && L->head_dim <= cfg.max_head_dim);
            CHECK(L->rope_pairs >= 0 && L->rope_pairs <= L->head_dim / 2);
            CHECK(L->ffn >= 1 && L->ffn <= cfg.max_ffn);
            CHECK(cfg.n_kv_heads * L->head_dim <= cfg.max_kv_dim);
        }
    } else {
        CHECK(strchr(err.message, '\n') == NULL);
    }
    gm_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gm_json_limits limits = {0, 0};
    /* A leading '\x01'..'\x08' byte selects a tiny depth limit for the rest. */
    if (size && data[0] >= 1 && data[0] <= 8) {
        limits.max_depth = data[0];
        data++;
        size--;
    }
    size_t max_depth = limits.max_depth ? (size_t)limits.max_depth : 256;

    char err[128];
    gm_json_doc *doc = gm_json_parse((const char *)data, size, &limits, err, sizeof err);
    if (!doc) {
        CHECK(strncmp(err, "line ", 5) == 0 || strcmp(err, "out of memory") == 0);
        return 0;
    }
    walk(gm_json_root(doc), max_depth);
    check_round_trip(gm_json_root(doc), &limits);
    gm_json_free(doc);
    check_config((const char *)data, size);
    return 0;
}
