/* json.h - a small, strict, bounded JSON reader.
 *
 * Why our own: config.json, safetensors headers, tokenizer.json (33 MB, ~2M
 * values) and HTTP bodies are all hostile input.  We need depth/size limits,
 * error messages with line:column, O(1) child access by index, and no global
 * state, in one file that vendors to iOS/Android and builds under fuzzers.
 *
 * The document is immutable after parsing.  All nodes and decoded strings live
 * in one allocation set owned by the gm_json_doc. */
#ifndef GM_JSON_H
#define GM_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    GM_JSON_NULL = 0,
    GM_JSON_FALSE,
    GM_JSON_TRUE,
    GM_JSON_NUMBER,
    GM_JSON_STRING,
    GM_JSON_ARRAY,
    GM_JSON_OBJECT
} gm_json_type;

typedef struct gm_json gm_json;
struct gm_json {
    gm_json_type type;
    uint32_t len;          /* STRING: byte length (may contain NUL); ARRAY/OBJECT: child count */
    uint32_t key_len;      /* byte length of key when this node is an object member */
    const char *key;       /* member key (decoded, NUL-terminated) or NULL */
    union {
        double num;        /* NUMBER */
        const char *str;   /* STRING: decoded UTF-8, NUL-terminated */
        gm_json *kids;     /* ARRAY/OBJECT: `len` children, contiguous, in document order */
    } u;
};

typedef struct {
    size_t max_bytes;      /* reject longer input; 0 = no limit */
    int max_depth;         /* nesting limit; 0 = default (256) */
} gm_json_limits;

typedef struct gm_json_doc gm_json_doc;

/* Parse `len` bytes (need not be NUL-terminated).  On failure returns NULL and
 * writes "line L, column C: what" into err (if errlen > 0).  Rejects: invalid
 * syntax, trailing garbage, invalid UTF-8 in strings, unpaired surrogates,
 * control characters in strings, numbers that overflow double, nesting deeper
 * than the limit, input longer than the limit.  Duplicate object keys are
 * kept (gm_json_get returns the first). */
gm_json_doc *gm_json_parse(const char *text, size_t len, const gm_json_limits *limits,
                           char *err, size_t errlen);
void gm_json_free(gm_json_doc *doc);
const gm_json *gm_json_root(const gm_json_doc *doc);

/* Accessors: all accept NULL and return NULL / false / the fallback. */
const gm_json *gm_json_get(const gm_json *obj, const char *key);   /* object member */
const gm_json *gm_json_at(const gm_json *arr, size_t i);           /* array/object child */
size_t gm_json_count(const gm_json *v);                            /* children of array/object */
bool gm_json_is(const gm_json *v, gm_json_type t);
bool gm_json_is_bool(const gm_json *v);
/* Numbers: gm_json_int succeeds only for integral values that fit in int64. */
/* (Precisely: integral with |v| <= 2^53, where doubles are still exact; see json.c.) */
bool gm_json_number(const gm_json *v, double *out);
bool gm_json_int(const gm_json *v, int64_t *out);
const char *gm_json_string(const gm_json *v);                      /* NULL unless STRING */

#endif
