/* json.c - strict, bounded JSON reader (contract in json.h).
 *
 * Why this file exists: every JSON document we read (config.json, safetensors
 * headers, tokenizer.json, HTTP bodies) is untrusted, and the biggest one is a
 * 33 MB tokenizer with ~2 million values.  So the parser must never recurse on
 * input, must enforce size and depth limits, must reject anything RFC 8259
 * rejects, and must not malloc per node.
 *
 * How the tree is built (one pass, three allocations plus the document):
 *   - Finished values are pushed onto a growable "pending" stack while their
 *     container is still open.  When a container closes, all of its children
 *     are complete, so they are copied as one contiguous block onto the end of
 *     the node array and popped; the container then becomes a single pending
 *     value of its own parent.  That is what makes gm_json_at O(1).
 *   - The node array grows with realloc, so a container records where its
 *     children start as an index while parsing; one final pass turns indices
 *     into pointers after the array has stopped moving.
 *   - Decoding never makes a string longer (every escape and every UTF-8
 *     sequence decodes to at most as many bytes as it occupies, and the two
 *     quotes pay for the NUL terminator), so a single buffer of len + 1 bytes
 *     holds every decoded string and key of the document.  The decoder thus
 *     needs no capacity checks, and the buffer never moves.
 *   - Open containers live on an explicit stack capped by max_depth, so
 *     hostile nesting is an error message, never a C stack overflow.
 *
 * Strictness choices: a UTF-8 byte order mark is rejected (RFC 8259 allows
 * parsers to ignore it but producers must not emit it; none of our inputs
 * carry one).  Numbers that round to zero (1e-400) are accepted as 0; numbers
 * that round to infinity are rejected.
 *
 * No globals besides constant tables: safe to use from any number of threads. */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GM_JSON_DEFAULT_MAX_DEPTH 256

struct gm_json_doc {
    gm_json root;
    gm_json *nodes;   /* every non-root node; container children are contiguous runs */
    char *strings;    /* every decoded string and key, each NUL-terminated */
};

typedef struct {
    gm_json_type type;     /* GM_JSON_ARRAY or GM_JSON_OBJECT */
    size_t first_pending;  /* index in the pending stack of this container's first child */
    const char *key;       /* the container's own member key (NULL unless in an object) */
    uint32_t key_len;
} open_container;

typedef struct {
    const unsigned char *text;   /* start of input, for line/column on error */
    const unsigned char *cur;
    const unsigned char *end;

    char *str_next;              /* next free byte of the decoded-string buffer */

    gm_json *pending;            /* finished values whose container is still open */
    size_t pending_len, pending_cap;

    gm_json *nodes;              /* children of closed containers, in contiguous runs */
    size_t nodes_len, nodes_cap;

    open_container *open;        /* containers entered but not yet closed */
    size_t depth, open_cap, max_depth;

    /* First error wins; formatted into the caller's buffer at the very end. */
    bool failed;
    bool out_of_memory;
    size_t err_offset;
    char err_what[96];
} parser;

/* ---- errors ---- */

static bool fail_at(parser *p, const unsigned char *where, const char *what) {
    if (p->failed) return false;
    p->failed = true;
    p->err_offset = (size_t)(where - p->text);
    snprintf(p->err_what, sizeof p->err_what, "%s", what);
    return false;
}

static bool fail_out_of_memory(parser *p) {
    if (p->failed) return false;
    p->failed = true;
    p->out_of_memory = true;
    return false;
}

/* Names the offending byte so "unexpected 'N'" points straight at NaN etc. */
static bool fail_unexpected(parser *p, const unsigned char *where, const char *expected) {
    char what[96];
    unsigned char c = *where;
    if (c > 0x20 && c < 0x7f)
        snprintf(what, sizeof what, "unexpected '%c', expected %s", c, expected);
    else
        snprintf(what, sizeof what, "unexpected byte 0x%02X, expected %s", c, expected);
    return fail_at(p, where, what);
}

static void write_error(const char *text, size_t offset, const char *what, char *err,
                        size_t errlen) {
    if (!err || errlen == 0) return;
    /* Computed only on failure so the hot loop never tracks lines. */
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    snprintf(err, errlen, "line %zu, column %zu: %s", line, offset - line_start + 1, what);
}

static void write_plain_error(const char *what, char *err, size_t errlen) {
    if (!err || errlen == 0) return;
    snprintf(err, errlen, "%s", what);
}

/* ---- storage ---- */

/* Grows *buf (elements of elem_size) so that at least `need` elements fit.
 * Doubling keeps pushes amortized O(1); every multiplication is checked. */
static bool grow_array(parser *p, void **buf, size_t *cap, size_t need, size_t elem_size) {
    if (need <= *cap) return true;
    size_t new_cap = *cap ? *cap : 64;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2) return fail_out_of_memory(p);
        new_cap *= 2;
    }
    if (new_cap > SIZE_MAX / elem_size) return fail_out_of_memory(p);
    void *grown = realloc(*buf, new_cap * elem_size);
    if (!grown) return fail_out_of_memory(p);
    *buf = grown;
    *cap = new_cap;
    return true;
}

/* Inline: runs once per value, and only the rare growth leaves the hot path. */
static inline bool push_pending(parser *p, const gm_json *value) {
    if (p->pending_len == p->pending_cap &&
        !grow_array(p, (void **)&p->pending, &p->pending_cap, p->pending_len + 1,
                    sizeof *p->pending))
        return false;
    p->pending[p->pending_len++] = *value;
    return true;
}

/* While parsing, u.kids holds an index into p->nodes (the array may still
 * move).  memcpy keeps this free of integer-to-pointer casts. */
static void store_kids_index(gm_json *container, size_t index) {
    memcpy(&container->u, &index, sizeof index);
}

static size_t load_kids_index(const gm_json *container) {
    size_t index;
    memcpy(&index, &container->u, sizeof index);
    return index;
}

static void resolve_kids(gm_json *node, gm_json *nodes) {
    if (node->type != GM_JSON_ARRAY && node->type != GM_JSON_OBJECT) return;
    node->u.kids = node->len ? nodes + load_kids_index(node) : NULL;
}

/* ---- containers ---- */

static bool enter_container(parser *p, gm_json_type type, const char *key, uint32_t key_len) {
    if (p->depth >= p->max_depth) {
        char what[96];
        snprintf(what, sizeof what, "nesting deeper than the limit of %zu", p->max_depth);
        return fail_at(p, p->cur, what);
    }
    if (p->depth == p->open_cap &&
        !grow_array(p, (void **)&p->open, &p->open_cap, p->depth + 1, sizeof *p->open))
        return false;
    open_container *c = &p->open[p->depth++];
    c->type = type;
    c->first_pending = p->pending_len;
    c->key = key;
    c->key_len = key_len;
    return true;
}

/* Moves the innermost container's children to the node array in one block
 * and leaves the container itself as a pending value of its parent. */
static bool leave_container(parser *p) {
    open_container *c = &p->open[p->depth - 1];
    size_t count = p->pending_len - c->first_pending;
    if (count > UINT32_MAX) return fail_at(p, p->cur, "too many elements in one container");

    gm_json container;
    memset(&container, 0, sizeof container);
    container.type = c->type;
    container.len = (uint32_t)count;
    container.key = c->key;
    container.key_len = c->key_len;
    if (count) {
        if (count > SIZE_MAX - p->nodes_len) return fail_out_of_memory(p);
        if (!grow_array(p, (void **)&p->nodes, &p->nodes_cap, p->nodes_len + count,
                        sizeof *p->nodes))
            return false;
        memcpy(p->nodes + p->nodes_len, p->pending + c->first_pending, count * sizeof *p->nodes);
        store_kids_index(&container, p->nodes_len);
        p->nodes_len += count;
    }
    p->pending_len = c->first_pending;
    p->depth--;
    return push_pending(p, &container);
}

/* ---- strings ---- */

/* 1 for bytes that are copied verbatim inside a string: printable ASCII other
 * than '"' and '\\'.  Lets the common case run as a tight copy loop. */
static const unsigned char plain_string_byte[256] = {
    ['\x20'] = 1, 1, 0 /* " */, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 /* \ */, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the XXXX of a \uXXXX escape; `at` points at the 'u'. */
static bool read_hex4(parser *p, const unsigned char *at, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 1; i <= 4; i++) {
        if (p->end - at <= i) return fail_at(p, p->end, "unexpected end of input in \\u escape");
        int h = hex_value(at[i]);
        if (h < 0) return fail_at(p, at + i, "expected 4 hex digits after \\u");
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

static char *encode_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | cp >> 6);
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | cp >> 12);
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | cp >> 18);
        *out++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

/* Decodes the escape whose backslash is at bs into *out.  Returns the input
 * position after it, or NULL on error. */
static const unsigned char *decode_escape(parser *p, const unsigned char *bs, char **out) {
    if (p->end - bs < 2) {
        fail_at(p, p->end, "unexpected end of input in string escape");
        return NULL;
    }
    char *o = *out;
    switch (bs[1]) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
        uint32_t cp;
        if (!read_hex4(p, bs + 1, &cp)) return NULL;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail_at(p, bs, "unpaired low surrogate in \\u escape");
            return NULL;
        }
        const unsigned char *next = bs + 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* UTF-16 pair: only a directly following \uDC00-\uDFFF completes it. */
            uint32_t low;
            if (p->end - next < 2 || next[0] != '\\' || next[1] != 'u' ||
                !read_hex4(p, next + 1, &low) || low < 0xDC00 || low > 0xDFFF) {
                fail_at(p, bs, "unpaired high surrogate in \\u escape");
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            next += 6;
        }
        *out = encode_utf8(o, cp);
        return next;
    }
    default:
        fail_at(p, bs + 1, "invalid escape in string");
        return NULL;
    }
    *out = o;
    return bs + 2;
}

/* Length of the valid UTF-8 sequence starting at s (lead byte >= 0x80), or 0.
 * Rejects overlongs, UTF-16 surrogates (ED A0..BF) and code points above
 * U+10FFFF by narrowing the range of the second byte (Unicode table 3-7). */
static size_t utf8_sequence_length(const unsigned char *s, const unsigned char *end) {
    unsigned char lead = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        n = 3;
        if (lead == 0xE0) lo = 0xA0;
        if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        n = 4;
        if (lead == 0xF0) lo = 0x90;
        if (lead == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* Decodes the string whose opening quote is at p->cur into the string buffer
 * and leaves p->cur just past the closing quote.  Works on locals: stores
 * through `out` (a char pointer) could alias the parser, which would force
 * the compiler to reload and store p->cur on every byte. */
static bool parse_string(parser *p, const char **str, uint32_t *str_len) {
    const unsigned char *s = p->cur + 1, *end = p->end;
    char *start = p->str_next;
    char *out = start;
    for (;;) {
        while (s < end && plain_string_byte[*s]) *out++ = (char)*s++;
        if (s == end) return fail_at(p, end, "unexpected end of input in string");
        unsigned char c = *s;
        if (c == '"') break;
        if (c == '\\') {
            s = decode_escape(p, s, &out);
            if (!s) return false;
        } else if (c < 0x20) {
            return fail_at(p, s, "unescaped control character in string");
        } else {
            size_t n = utf8_sequence_length(s, end);
            if (!n) return fail_at(p, s, "invalid UTF-8 in string");
            memcpy(out, s, n);
            out += n;
            s += n;
        }
    }
    p->cur = s + 1;
    size_t len = (size_t)(out - start);
    if (len > UINT32_MAX) return fail_at(p, p->cur, "string longer than 4 GiB");
    *out++ = '\0';
    p->str_next = out;
    *str = start;
    *str_len = (uint32_t)len;
    return true;
}

/* ---- numbers ---- */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Converts a validated number.  Integers and short decimals (<= 2^53 and a
 * power of ten up to 1e22, both exact doubles) take an exact fast path;
 * everything else goes through strtod for correct rounding.  strtod gets a
 * copy with the decimal point removed ("12.5e3" -> "125e2"), so the result
 * does not depend on the locale's decimal separator. */
static bool convert_number(parser *p, const unsigned char *start, bool negative,
                           const unsigned char *int_digits, const unsigned char *int_end,
                           const unsigned char *frac_digits, const unsigned char *frac_end,
                           int64_t exponent, double *out) {
    static const double exact_powers_of_ten[] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    };
    /* value = (int digits ++ frac digits) * 10^(exponent - frac digit count).
     * Sizes fit int64: no object is larger than PTRDIFF_MAX. */
    int64_t scale = exponent - (int64_t)(frac_end - frac_digits);

    /* Significant digits: leading zeros of the concatenated digits carry no
     * value, and dropping them keeps the fast path and strtod copy short. */
    const unsigned char *int_sig = int_digits, *frac_sig = frac_digits;
    while (int_sig < int_end && *int_sig == '0') int_sig++;
    if (int_sig == int_end)
        while (frac_sig < frac_end && *frac_sig == '0') frac_sig++;
    int64_t digit_count = (int64_t)(int_end - int_sig) + (int64_t)(frac_end - frac_sig);
    if (digit_count == 0) {
        *out = negative ? -0.0 : 0.0;
        return true;
    }
    /* The value lies in [10^(digit_count-1+scale), 10^(digit_count+scale)). */
    if (digit_count + scale >= 310) return fail_at(p, start, "number out of range of double");
    if (digit_count + scale <= -325) {
        /* Below half the smallest subnormal (~2.47e-324): rounds to zero. */
        *out = negative ? -0.0 : 0.0;
        return true;
    }

    if (digit_count <= 19 && scale >= -22 && scale <= 22) {
        uint64_t mantissa = 0;
        for (const unsigned char *d = int_sig; d < int_end; d++) mantissa = mantissa * 10 + (*d - '0');
        for (const unsigned char *d = frac_sig; d < frac_end; d++) mantissa = mantissa * 10 + (*d - '0');
        if (mantissa <= (UINT64_C(1) << 53)) {
            double v = (double)mantissa;
            v = scale >= 0 ? v * exact_powers_of_ten[scale] : v / exact_powers_of_ten[-scale];
            *out = negative ? -v : v;
            return true;
        }
    }

    /* digits + "e" + sign + up to 20 exponent digits + NUL. */
    char small[128];
    char *buf = small;
    size_t need = (size_t)digit_count + 24;
    if (need > sizeof small) {
        buf = malloc(need);
        if (!buf) return fail_out_of_memory(p);
    }
    char *o = buf;
    for (const unsigned char *d = int_sig; d < int_end; d++) *o++ = (char)*d;
    for (const unsigned char *d = frac_sig; d < frac_end; d++) *o++ = (char)*d;
    snprintf(o, 24, "e%lld", (long long)scale);
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (isinf(v)) return fail_at(p, start, "number out of range of double");
    *out = negative ? -v : v;
    return true;
}

/* Validates RFC 8259 number syntax at p->cur and converts it. */
static bool parse_number(parser *p, double *out) {
    const unsigned char *start = p->cur, *s = p->cur, *end = p->end;
    bool negative = false;
    if (*s == '-') {
        negative = true;
        s++;
    }
    if (s == end) return fail_at(p, s, "unexpected end of input in number");
    if (!is_digit(*s)) return fail_unexpected(p, s, "a digit");

    const unsigned char *int_digits = s;
    if (*s == '0') {
        s++;
        if (s < end && is_digit(*s)) return fail_at(p, int_digits, "leading zeros are not allowed");
    } else {
        while (s < end && is_digit(*s)) s++;
    }
    const unsigned char *int_end = s;

    const unsigned char *frac_digits = s, *frac_end = s;
    if (s < end && *s == '.') {
        s++;
        if (s == end) return fail_at(p, s, "unexpected end of input in number");
        if (!is_digit(*s)) return fail_unexpected(p, s, "a digit after '.'");
        frac_digits = s;
        while (s < end && is_digit(*s)) s++;
        frac_end = s;
    }

    int64_t exponent = 0;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        bool exp_negative = false;
        if (s < end && (*s == '+' || *s == '-')) exp_negative = *s++ == '-';
        if (s == end) return fail_at(p, s, "unexpected end of input in number");
        if (!is_digit(*s)) return fail_unexpected(p, s, "a digit in the exponent");
        /* Saturate: anything past 1e9 is already far outside double's range. */
        while (s < end && is_digit(*s)) {
            if (exponent < 1000000000) exponent = exponent * 10 + (*s - '0');
            s++;
        }
        if (exp_negative) exponent = -exponent;
    }
    p->cur = s;
    return convert_number(p, start, negative, int_digits, int_end, frac_digits, frac_end,
                          exponent, out);
}

/* ---- parsing ---- */

static void skip_whitespace(parser *p) {
    const unsigned char *s = p->cur, *end = p->end;
    while (s < end && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) s++;
    p->cur = s;
}

static bool parse_literal(parser *p, const char *word, size_t word_len) {
    if ((size_t)(p->end - p->cur) < word_len || memcmp(p->cur, word, word_len) != 0)
        return fail_at(p, p->cur, "invalid literal, expected true, false or null");
    p->cur += word_len;
    return true;
}

/* Parses `"key" :` with p->cur at the (possibly whitespace-preceded) key. */
static bool parse_member_key(parser *p, const char **key, uint32_t *key_len) {
    skip_whitespace(p);
    if (p->cur == p->end) return fail_at(p, p->cur, "unexpected end of input in object");
    if (*p->cur != '"') return fail_unexpected(p, p->cur, "a string key in object");
    if (!parse_string(p, key, key_len)) return false;
    skip_whitespace(p);
    if (p->cur == p->end) return fail_at(p, p->cur, "unexpected end of input in object");
    if (*p->cur != ':') return fail_unexpected(p, p->cur, "':' after object key");
    p->cur++;
    return true;
}

/* Parses one value at p->cur.  Scalars and empty containers are pushed as
 * pending values and *complete is set; a non-empty container is entered
 * instead (its first member key already read), and its children follow. */
static bool begin_value(parser *p, const char **key, uint32_t *key_len, bool *complete) {
    skip_whitespace(p);
    if (p->cur == p->end) return fail_at(p, p->cur, "unexpected end of input, expected a value");

    gm_json v;
    memset(&v, 0, sizeof v);
    v.key = *key;
    v.key_len = *key_len;
    *complete = true;
    unsigned char c = *p->cur;
    switch (c) {
    case '[':
    case '{': {
        bool is_object = c == '{';
        if (!enter_container(p, is_object ? GM_JSON_OBJECT : GM_JSON_ARRAY, *key, *key_len))
            return false;
        p->cur++;
        skip_whitespace(p);
        if (p->cur == p->end)
            return fail_at(p, p->cur, is_object ? "unexpected end of input in object"
                                                : "unexpected end of input in array");
        if (*p->cur == (is_object ? '}' : ']')) {
            p->cur++;
            return leave_container(p);
        }
        *complete = false;
        *key = NULL;
        *key_len = 0;
        return is_object ? parse_member_key(p, key, key_len) : true;
    }
    case '"':
        v.type = GM_JSON_STRING;
        if (!parse_string(p, &v.u.str, &v.len)) return false;
        break;
    case 't':
        v.type = GM_JSON_TRUE;
        if (!parse_literal(p, "true", 4)) return false;
        break;
    case 'f':
        v.type = GM_JSON_FALSE;
        if (!parse_literal(p, "false", 5)) return false;
        break;
    case 'n':
        v.type = GM_JSON_NULL;
        if (!parse_literal(p, "null", 4)) return false;
        break;
    default:
        if (c != '-' && !is_digit(c)) return fail_unexpected(p, p->cur, "a value");
        v.type = GM_JSON_NUMBER;
        if (!parse_number(p, &v.u.num)) return false;
        break;
    }
    return push_pending(p, &v);
}

/* After a complete value: consumes separators and closing brackets until the
 * next value is due (*done = false, with its member key read when inside an
 * object) or the root value is finished (*done = true). */
static bool finish_value(parser *p, const char **key, uint32_t *key_len, bool *done) {
    for (;;) {
        skip_whitespace(p);
        if (p->depth == 0) {
            if (p->cur != p->end)
                return fail_unexpected(p, p->cur, "end of input after the document");
            *done = true;
            return true;
        }
        bool in_object = p->open[p->depth - 1].type == GM_JSON_OBJECT;
        if (p->cur == p->end)
            return fail_at(p, p->cur, in_object ? "unexpected end of input in object"
                                                : "unexpected end of input in array");
        unsigned char c = *p->cur;
        if (c == ',') {
            p->cur++;
            *done = false;
            *key = NULL;
            *key_len = 0;
            return in_object ? parse_member_key(p, key, key_len) : true;
        }
        if (c == (in_object ? '}' : ']')) {
            p->cur++;
            if (!leave_container(p)) return false;
            continue;
        }
        return fail_unexpected(p, p->cur, in_object ? "',' or '}' in object"
                                                    : "',' or ']' in array");
    }
}

static bool parse_document(parser *p) {
    const char *key = NULL;
    uint32_t key_len = 0;
    for (;;) {
        bool complete, done;
        if (!begin_value(p, &key, &key_len, &complete)) return false;
        if (!complete) continue;
        if (!finish_value(p, &key, &key_len, &done)) return false;
        if (done) return true;
    }
}

gm_json_doc *gm_json_parse(const char *text, size_t len, const gm_json_limits *limits,
                           char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!text && len) {
        write_plain_error("no input (NULL text)", err, errlen);
        return NULL;
    }
    if (!text) text = "";
    size_t max_bytes = limits ? limits->max_bytes : 0;
    if (max_bytes && len > max_bytes) {
        char what[96];
        snprintf(what, sizeof what, "input is longer than the limit of %zu bytes", max_bytes);
        write_error(text, max_bytes, what, err, errlen);
        return NULL;
    }

    parser p;
    memset(&p, 0, sizeof p);
    p.text = (const unsigned char *)text;
    p.cur = p.text;
    p.end = p.text + len;
    p.max_depth = (limits && limits->max_depth > 0) ? (size_t)limits->max_depth
                                                    : GM_JSON_DEFAULT_MAX_DEPTH;

    gm_json_doc *doc = NULL;
    /* len + 1 bytes hold every decoded string; see the top of the file. */
    char *strings = len < SIZE_MAX ? malloc(len + 1) : NULL;
    if (!strings) {
        fail_out_of_memory(&p);
    } else {
        p.str_next = strings;
        if (parse_document(&p)) {
            doc = malloc(sizeof *doc);
            if (!doc) fail_out_of_memory(&p);
        }
    }
    free(p.open);

    if (!doc) {
        if (p.out_of_memory)
            write_plain_error("out of memory", err, errlen);
        else
            write_error(text, p.err_offset, p.err_what, err, errlen);
        free(p.pending);
        free(p.nodes);
        free(strings);
        return NULL;
    }

    /* Trim slack; failure to shrink just keeps the larger block. */
    if (p.nodes && p.nodes_len < p.nodes_cap) {
        gm_json *trimmed = realloc(p.nodes, p.nodes_len * sizeof *p.nodes);
        if (trimmed) p.nodes = trimmed;
    }
    doc->root = p.pending[0];
    free(p.pending);
    doc->nodes = p.nodes;
    doc->strings = strings;
    resolve_kids(&doc->root, doc->nodes);
    for (size_t i = 0; i < p.nodes_len; i++) resolve_kids(&doc->nodes[i], doc->nodes);
    return doc;
}

void gm_json_free(gm_json_doc *doc) {
    if (!doc) return;
    free(doc->nodes);
    free(doc->strings);
    free(doc);
}

/* ---- accessors ---- */

const gm_json *gm_json_root(const gm_json_doc *doc) { return doc ? &doc->root : NULL; }

static bool is_container(const gm_json *v) {
    return v && (v->type == GM_JSON_ARRAY || v->type == GM_JSON_OBJECT);
}

/* Linear scan: objects in our inputs are small, except tokenizer vocabularies,
 * which callers index once into their own hash table.  The first duplicate
 * wins.  Comparing key_len first means a key with an embedded NUL never
 * matches the shorter C string. */
const gm_json *gm_json_get(const gm_json *obj, const char *key) {
    if (!obj || !key || obj->type != GM_JSON_OBJECT) return NULL;
    size_t key_len = strlen(key);
    for (uint32_t i = 0; i < obj->len; i++) {
        const gm_json *member = &obj->u.kids[i];
        if (member->key_len == key_len && memcmp(member->key, key, key_len) == 0) return member;
    }
    return NULL;
}

const gm_json *gm_json_at(const gm_json *arr, size_t i) {
    if (!is_container(arr) || i >= arr->len) return NULL;
    return &arr->u.kids[i];
}

size_t gm_json_count(const gm_json *v) { return is_container(v) ? v->len : 0; }

bool gm_json_is(const gm_json *v, gm_json_type t) { return v && v->type == t; }

bool gm_json_is_bool(const gm_json *v) {
    return v && (v->type == GM_JSON_TRUE || v->type == GM_JSON_FALSE);
}

bool gm_json_number(const gm_json *v, double *out) {
    if (!v || v->type != GM_JSON_NUMBER) return false;
    if (out) *out = v->u.num;
    return true;
}

/* Succeeds only for integral values with |v| <= 2^53, narrower than the
 * int64 range on purpose: above 2^53 neighbouring integers share one double,
 * so a larger id would read back as some other integer without any error.
 * (A document that spells 2^53 + 1 already rounds to 2^53 while parsing, as
 * every double-based reader does.) */
bool gm_json_int(const gm_json *v, int64_t *out) {
    if (!v || v->type != GM_JSON_NUMBER) return false;
    const double limit = 9007199254740992.0; /* 2^53 */
    double d = v->u.num;
    if (!(d >= -limit && d <= limit)) return false;
    int64_t i = (int64_t)d;
    if ((double)i != d) return false;
    if (out) *out = i;
    return true;
}

const char *gm_json_string(const gm_json *v) {
    return v && v->type == GM_JSON_STRING ? v->u.str : NULL;
}
