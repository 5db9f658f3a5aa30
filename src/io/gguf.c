/* gguf.c - see gguf.h.
 *
 * Parsing is one forward pass over the map with a bounds-checked reader; every
 * allocation is bounded by what the remaining bytes could possibly hold (a
 * string costs at least its 8-byte length, a sub-array 12 bytes), so a file
 * claiming 2^63 of anything fails before anything is allocated. */
#include "io/gguf.h"
#include "core/error.h"
#include "quant/ggml_blocks.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Real files: a few hundred keys, < 2000 tensors, 262144-entry vocab arrays. */
#define MAX_TENSORS (1u << 20)
#define MAX_KVS (1u << 20)
#define MAX_KEY_BYTES 65535u              /* the GGUF spec's limit */
#define MAX_NAME_BYTES 1024u              /* ggml itself allows 63 */
#define MAX_STRING_BYTES (UINT64_C(1) << 28)
#define MAX_ARRAY_COUNT (UINT64_C(1) << 28)
#define MAX_NESTING 8                     /* arrays inside arrays */
#define MAX_SUBARRAYS (1u << 20)          /* in the whole file */

/* -------------------------------------------------------------- messages */

/* Up to ~100 bytes of a name for a message: control bytes become '?', long
 * names end in "..." (cut on a UTF-8 boundary). */
static const char *printable(const char *s, size_t len, char *buf, size_t n) {
    size_t limit = n - 4, o = 0;
    if (limit > 100) limit = 100;
    size_t i = 0;
    for (; i < len && o < limit; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < len) {
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80) o--;   /* continuation bytes */
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0) o--;     /* the lead byte */
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

static const char *pname(const char *s, char *buf, size_t n) { return printable(s, strlen(s), buf, n); }

/* ---------------------------------------------------------------- reader */

typedef struct {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    gemma_error *err;
    char ctx[160];            /* "key 'general.name'", "tensor 3", ... */
    size_t subarrays_left;
} reader;

static gemma_status fail(reader *r, const char *fmt, ...) GM_PRINTF(2, 3);
static gemma_status fail(reader *r, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gm_fail(r->err, GEMMA_ERR_FORMAT, "%s: %s: %s", r->path, r->ctx, what);
}

static uint64_t left(const reader *r) { return r->size - r->pos; }

static gemma_status need(reader *r, uint64_t n, const char *what) {
    if (n <= left(r)) return GEMMA_OK;
    return fail(r, "%s at byte %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes; truncated?)", what,
                r->pos, r->size);
}

static uint64_t load_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static gemma_status read_u32(reader *r, uint32_t *v, const char *what) {
    gemma_status st = need(r, 4, what);
    if (st) return st;
    *v = (uint32_t)load_le(r->base + r->pos, 4);
    r->pos += 4;
    return GEMMA_OK;
}

static gemma_status read_u64(reader *r, uint64_t *v, const char *what) {
    gemma_status st = need(r, 8, what);
    if (st) return st;
    *v = load_le(r->base + r->pos, 8);
    r->pos += 8;
    return GEMMA_OK;
}

#define NO_INDEX UINT64_MAX

/* A u64 length and that many bytes.  `what` (and `index`, unless NO_INDEX)
 * name the string in messages; the common path formats nothing. */
static gemma_status read_string(reader *r, const char *what, uint64_t index, uint64_t max, const uint8_t **p,
                                uint64_t *len) {
    *len = left(r) >= 8 ? load_le(r->base + r->pos, 8) : 0;
    if (left(r) >= 8 && *len <= left(r) - 8 && *len <= max) {
        *p = r->base + r->pos + 8;
        r->pos += 8 + *len;
        return GEMMA_OK;
    }
    char w[64];
    if (index == NO_INDEX) snprintf(w, sizeof w, "%s", what);
    else snprintf(w, sizeof w, "%s %" PRIu64, what, index);
    if (left(r) < 8) return need(r, 8, w);
    if (*len > left(r) - 8)
        return fail(r, "%s length %" PRIu64 " at byte %" PRIu64 " runs past the end of the file (%" PRIu64
                    " bytes; truncated?)", w, *len, r->pos, r->size);
    return fail(r, "%s is %" PRIu64 " bytes, more than the %" PRIu64 " allowed", w, *len, max);
}

/* ---------------------------------------------------------------- values */

static const char *const type_names[GM_GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

const char *gm_gguf_type_name(gm_gguf_type t) {
    return ((unsigned)t < GM_GGUF_TYPE_COUNT) ? type_names[t] : "unknown";
}

/* Bytes of a fixed-size value, 0 for STRING and ARRAY. */
static int value_size(gm_gguf_type t) {
    static const int sizes[GM_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return ((unsigned)t < GM_GGUF_TYPE_COUNT) ? sizes[t] : 0;
}

static void free_value(gm_gguf_value *v) {
    if (v->items)
        for (uint64_t i = 0; i < v->count; i++) free_value(&v->items[i]);
    free(v->items);
    free(v->str_offsets);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static gemma_status check_bools(reader *r, const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1) return fail(r, "bool value %u at byte %" PRIu64 " is not 0 or 1", p[i], (uint64_t)(p - r->base) + i);
    return GEMMA_OK;
}

static gemma_status parse_array(reader *r, gm_gguf_value *v, int depth);

static gemma_status parse_array_of_strings(reader *r, gm_gguf_value *v) {
    v->data = r->base + r->pos;
    if (!v->count) return GEMMA_OK;
    v->str_offsets = malloc((size_t)v->count * sizeof *v->str_offsets);
    if (!v->str_offsets) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: %s: out of memory", r->path, r->ctx);
    for (uint64_t i = 0; i < v->count; i++) {
        v->str_offsets[i] = (uint64_t)(r->base + r->pos - v->data);
        const uint8_t *p;
        uint64_t len;
        gemma_status st = read_string(r, "string element", i, MAX_STRING_BYTES, &p, &len);
        if (st) return st;
    }
    return GEMMA_OK;
}

static gemma_status parse_array_of_arrays(reader *r, gm_gguf_value *v, int depth) {
    if (v->count > r->subarrays_left)
        return fail(r, "more than %u nested arrays in the file", MAX_SUBARRAYS);
    r->subarrays_left -= (size_t)v->count;
    v->data = r->base + r->pos;
    if (!v->count) return GEMMA_OK;
    v->items = calloc((size_t)v->count, sizeof *v->items);
    if (!v->items) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: %s: out of memory", r->path, r->ctx);
    for (uint64_t i = 0; i < v->count; i++) {
        v->items[i].type = GM_GGUF_ARRAY;
        gemma_status st = parse_array(r, &v->items[i], depth + 1);
        if (st) return st;
    }
    return GEMMA_OK;
}

/* After the ARRAY type id: element type, count, elements. */
static gemma_status parse_array(reader *r, gm_gguf_value *v, int depth) {
    if (depth >= MAX_NESTING) return fail(r, "arrays nested more than %d deep", MAX_NESTING);
    uint32_t et;
    uint64_t count;
    gemma_status st = read_u32(r, &et, "array element type");
    if (st || (st = read_u64(r, &count, "array length"))) return st;
    if (et >= GM_GGUF_TYPE_COUNT) return fail(r, "array element type %" PRIu32 " is unknown", et);
    v->type = GM_GGUF_ARRAY;
    v->elem_type = (gm_gguf_type)et;
    v->count = count;
    /* the fewest bytes an element can take: a string its length, an array its type and count */
    int esize = value_size(v->elem_type);
    uint64_t min_bytes = esize ? (uint64_t)esize : v->elem_type == GM_GGUF_STRING ? 8 : 12;
    if (count > left(r) / min_bytes)
        return fail(r, "array of %" PRIu64 " %s at byte %" PRIu64 " runs past the end of the file (%" PRIu64
                    " bytes; truncated?)", count, type_names[et], r->pos, r->size);
    if (count > MAX_ARRAY_COUNT)
        return fail(r, "array of %" PRIu64 " elements, more than the %" PRIu64 " allowed", count, MAX_ARRAY_COUNT);
    if (v->elem_type == GM_GGUF_STRING) return parse_array_of_strings(r, v);
    if (v->elem_type == GM_GGUF_ARRAY) return parse_array_of_arrays(r, v, depth);
    v->data = r->base + r->pos;
    r->pos += count * (uint64_t)esize;
    return v->elem_type == GM_GGUF_BOOL ? check_bools(r, v->data, count) : GEMMA_OK;
}

static gemma_status parse_value(reader *r, uint32_t type, gm_gguf_value *v) {
    if (type >= GM_GGUF_TYPE_COUNT) return fail(r, "value type %" PRIu32 " is unknown", type);
    v->type = (gm_gguf_type)type;
    if (type == GM_GGUF_ARRAY) return parse_array(r, v, 0);
    if (type == GM_GGUF_STRING) {
        gemma_status st = read_string(r, "string", NO_INDEX, MAX_STRING_BYTES, &v->data, &v->count);
        if (st) return st;
        v->str = malloc((size_t)v->count + 1);
        if (!v->str) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: %s: out of memory", r->path, r->ctx);
        memcpy(v->str, v->data, (size_t)v->count);
        v->str[v->count] = 0;
        return GEMMA_OK;
    }
    int esize = value_size(v->type);
    gemma_status st = need(r, (uint64_t)esize, "value");
    if (st) return st;
    v->data = r->base + r->pos;
    r->pos += (uint64_t)esize;
    return type == GM_GGUF_BOOL ? check_bools(r, v->data, 1) : GEMMA_OK;
}

/* ----------------------------------------------------------------- index */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Entries are structs of `stride` bytes whose first member is the char * name. */
static const char *entry_name(const void *entries, size_t stride, size_t i) {
    return *(char *const *)(const void *)((const char *)entries + i * stride);
}

/* 0: indexed; 1: *dup is the first entry whose name appeared before; -1: out of memory. */
static int build_index(const void *entries, size_t stride, size_t n, uint32_t **slots_out, size_t *n_slots_out,
                       size_t *dup) {
    size_t n_slots = 16;
    while (n_slots < 2 * n) n_slots *= 2;
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots) return -1;
    *slots_out = slots;
    *n_slots_out = n_slots;
    for (size_t i = 0; i < n; i++) {
        const char *name = entry_name(entries, stride, i);
        size_t j = hash_str(name) & (n_slots - 1);
        for (; slots[j]; j = (j + 1) & (n_slots - 1)) {
            if (strcmp(entry_name(entries, stride, slots[j] - 1), name) == 0) {
                *dup = i;
                return 1;
            }
        }
        slots[j] = (uint32_t)(i + 1);
    }
    return 0;
}

static const void *index_find(const void *entries, size_t stride, const uint32_t *slots, size_t n_slots,
                              const char *name) {
    if (!n_slots || !name) return NULL;
    for (size_t j = hash_str(name) & (n_slots - 1); slots[j]; j = (j + 1) & (n_slots - 1)) {
        const char *e = entry_name(entries, stride, slots[j] - 1);
        if (strcmp(e, name) == 0) return (const char *)entries + (size_t)(slots[j] - 1) * stride;
    }
    return NULL;
}

const gm_gguf_kv *gm_gguf_find_kv(const gm_gguf *g, const char *key) {
    return index_find(g->kvs, sizeof *g->kvs, g->kv_slots, g->n_kv_slots, key);
}

const gm_gguf_tensor *gm_gguf_find_tensor(const gm_gguf *g, const char *name) {
    return index_find(g->tensors, sizeof *g->tensors, g->tensor_slots, g->n_tensor_slots, name);
}

/* ---------------------------------------------------------------- header */

/* A name (key or tensor): non-empty, no NUL bytes; returns a heap copy. */
static gemma_status read_name(reader *r, const char *what, uint64_t max, char **out) {
    const uint8_t *p = NULL;
    uint64_t len = 0;
    gemma_status st = read_string(r, what, NO_INDEX, max, &p, &len);
    if (st) return st;
    if (len == 0) return fail(r, "%s is empty", what);
    if (memchr(p, 0, (size_t)len)) return fail(r, "%s contains a NUL byte", what);
    *out = malloc((size_t)len + 1);
    if (!*out) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: out of memory", r->path);
    memcpy(*out, p, (size_t)len);
    (*out)[len] = 0;
    return GEMMA_OK;
}

static gemma_status parse_header(gm_gguf *g, reader *r, uint64_t *n_tensors, uint64_t *n_kvs) {
    snprintf(r->ctx, sizeof r->ctx, "header");
    if (r->size < 4) return gm_fail(r->err, GEMMA_ERR_FORMAT, "%s: too short for a GGUF file (%" PRIu64 " bytes)", r->path, r->size);
    if (memcmp(r->base, "GGUF", 4) != 0)
        return gm_fail(r->err, GEMMA_ERR_FORMAT, "%s: not a GGUF file (starts with %02x %02x %02x %02x, expected 'GGUF')",
                       r->path, r->base[0], r->base[1], r->base[2], r->base[3]);
    r->pos = 4;
    uint32_t version;
    gemma_status st = read_u32(r, &version, "version");
    if (st) return st;
    uint32_t swapped = (version >> 24) | ((version >> 8) & 0xff00u) | ((version << 8) & 0xff0000u) | (version << 24);
    if ((version & 0xffffu) == 0 && swapped >= 1 && swapped <= 3)
        return gm_fail(r->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: big-endian GGUF file (version %" PRIu32 " byte-swapped); only little-endian files are supported",
                       r->path, swapped);
    if (version == 1)
        return gm_fail(r->err, GEMMA_ERR_UNSUPPORTED,
                       "%s: GGUF version 1 is not supported (32-bit counts; re-convert with a current llama.cpp)", r->path);
    if (version != 2 && version != 3)
        return gm_fail(r->err, GEMMA_ERR_UNSUPPORTED, "%s: GGUF version %" PRIu32 " is not supported (supported: 2, 3)",
                       r->path, version);
    g->version = version;
    if ((st = read_u64(r, n_tensors, "tensor count")) || (st = read_u64(r, n_kvs, "metadata count"))) return st;
    /* smallest possible entries: key (8 + 1) + type (4) + u8 (1); tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    if (*n_kvs > MAX_KVS) return fail(r, "metadata count %" PRIu64 " is more than the %u allowed", *n_kvs, MAX_KVS);
    if (*n_kvs > left(r) / 14)
        return fail(r, "metadata count %" PRIu64 " cannot fit in the file (%" PRIu64 " bytes; truncated?)", *n_kvs, r->size);
    if (*n_tensors > MAX_TENSORS)
        return fail(r, "tensor count %" PRIu64 " is more than the %u allowed", *n_tensors, MAX_TENSORS);
    if (*n_tensors > left(r) / 33)
        return fail(r, "tensor count %" PRIu64 " cannot fit in the file (%" PRIu64 " bytes; truncated?)", *n_tensors,
                    r->size);
    return GEMMA_OK;
}

/* Entry i's name, read while messages say "<counter> i"; afterwards they say "<label> 'name'". */
static gemma_status read_entry_name(reader *r, const char *counter, uint64_t i, const char *what, uint64_t max,
                                    const char *label, char **name) {
    snprintf(r->ctx, sizeof r->ctx, "%s %" PRIu64, counter, i);
    gemma_status st = read_name(r, what, max, name);
    if (st) return st;
    char nb[112];
    snprintf(r->ctx, sizeof r->ctx, "%s '%s'", label, pname(*name, nb, sizeof nb));
    return GEMMA_OK;
}

/* Index n entries by name; a name seen twice is an error naming it. */
static gemma_status index_entries(reader *r, const void *entries, size_t stride, size_t n, uint32_t **slots,
                                  size_t *n_slots, const char *label) {
    size_t dup;
    int rc = build_index(entries, stride, n, slots, n_slots, &dup);
    if (rc < 0) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: out of memory", r->path);
    if (rc == 0) return GEMMA_OK;
    char nb[112];
    return gm_fail(r->err, GEMMA_ERR_FORMAT, "%s: %s '%s' appears twice", r->path, label,
                   pname(entry_name(entries, stride, dup), nb, sizeof nb));
}

static gemma_status parse_kvs(gm_gguf *g, reader *r, uint64_t n) {
    g->kvs = calloc(n ? (size_t)n : 1, sizeof *g->kvs);
    if (!g->kvs) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: out of memory", r->path);
    for (uint64_t i = 0; i < n; i++) {
        gm_gguf_kv *kv = &g->kvs[i];
        gemma_status st = read_entry_name(r, "metadata entry", i, "key", MAX_KEY_BYTES, "key", &kv->key);
        if (st) return st;
        g->n_kvs = (size_t)i + 1;
        uint32_t type;
        if ((st = read_u32(r, &type, "value type")) || (st = parse_value(r, type, &kv->value))) return st;
    }
    return index_entries(r, g->kvs, sizeof *g->kvs, g->n_kvs, &g->kv_slots, &g->n_kv_slots, "key");
}

static gemma_status parse_alignment(gm_gguf *g, reader *r) {
    g->alignment = GM_GGUF_DEFAULT_ALIGNMENT;
    const gm_gguf_kv *kv = gm_gguf_find_kv(g, "general.alignment");
    if (!kv) return GEMMA_OK;
    snprintf(r->ctx, sizeof r->ctx, "key 'general.alignment'");
    if (kv->value.type != GM_GGUF_U32) return fail(r, "type is %s, expected UINT32", gm_gguf_type_name(kv->value.type));
    uint32_t a = (uint32_t)load_le(kv->value.data, 4);
    if (a == 0 || (a & (a - 1)) != 0) return fail(r, "alignment %" PRIu32 " is not a power of two", a);
    g->alignment = a;
    return GEMMA_OK;
}

/* --------------------------------------------------------------- tensors */

static gemma_status parse_tensor_info(gm_gguf *g, reader *r, gm_gguf_tensor *t) {
    uint32_t n_dims;
    gemma_status st = read_u32(r, &n_dims, "n_dims");
    if (st) return st;
    if (n_dims < 1 || n_dims > GM_GGUF_MAX_DIMS)
        return fail(r, "n_dims %" PRIu32 " is not between 1 and %d", n_dims, GM_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t numel = 1;
    for (int d = 0; d < GM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((st = read_u64(r, &ne, "ne"))) return st;
        if (ne == 0) return fail(r, "ne[%d] is 0", d);
        if (ne > (uint64_t)INT64_MAX || numel > (uint64_t)INT64_MAX / ne)
            return fail(r, "ne[%d] = %" PRIu64 " makes the element count overflow", d, ne);
        t->ne[d] = (int64_t)ne;
        numel *= ne;
    }
    if ((st = read_u32(r, &t->type, "type")) || (st = read_u64(r, &t->offset, "offset"))) return st;
    if (t->offset % g->alignment)
        return fail(r, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu32, t->offset, g->alignment);
    t->known = gm_ggml_type_known(t->type);
    if (!t->known) return GEMMA_OK;   /* kept; gm_gguf_tensor_check reports it if someone needs it */
    int bs = gm_ggml_block_size(t->type);
    if (t->ne[0] % bs)
        return fail(r, "row length ne[0] = %" PRId64 " is not a multiple of the %s block size %d", t->ne[0],
                    gm_ggml_type_name(t->type), bs);
    uint64_t blocks = (uint64_t)(t->ne[0] / bs), block_bytes = (uint64_t)gm_ggml_type_size(t->type);
    uint64_t rows = numel / (uint64_t)t->ne[0];
    uint64_t row = blocks * block_bytes;   /* blocks >= 1, so row > 0 unless it wrapped */
    if (blocks > UINT64_MAX / block_bytes || rows > UINT64_MAX / row || row * rows > SIZE_MAX)
        return fail(r, "%s data size overflows", gm_ggml_type_name(t->type));
    t->nbytes = (size_t)(row * rows);
    return GEMMA_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} span;

static int compare_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;   /* file order: stable messages */
}

/* Place every tensor in the data section: inside the file, no overlaps. */
static gemma_status place_tensors(gm_gguf *g, reader *r) {
    uint64_t start = r->pos + (g->alignment - r->pos % g->alignment) % g->alignment;
    g->data_offset = start;
    if (!g->n_tensors) return GEMMA_OK;
    if (start > r->size)
        return gm_fail(r->err, GEMMA_ERR_FORMAT,
                       "%s: the tensor data would start at byte %" PRIu64 ", past the end of the file (%" PRIu64
                       " bytes; truncated?)", r->path, start, r->size);
    uint64_t data_size = r->size - start;
    span *spans = malloc(g->n_tensors * sizeof *spans);
    if (!spans) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: out of memory", r->path);
    size_t n_spans = 0;
    gemma_status st = GEMMA_OK;
    for (size_t i = 0; i < g->n_tensors && !st; i++) {
        gm_gguf_tensor *t = &g->tensors[i];
        char nb[112];
        const char *name = pname(t->name, nb, sizeof nb);
        if (t->offset > data_size || (!t->known && t->offset == data_size)) {
            st = gm_fail(r->err, GEMMA_ERR_FORMAT,
                         "%s: tensor '%s': offset %" PRIu64 " is past the end of the file (data section of %" PRIu64
                         " bytes from byte %" PRIu64 "; truncated?)", r->path, name, t->offset, data_size, start);
        } else if (t->nbytes > data_size - t->offset) {
            uint64_t begin = start + t->offset;
            if ((uint64_t)t->nbytes > UINT64_MAX - begin)
                st = gm_fail(r->err, GEMMA_ERR_FORMAT,
                             "%s: tensor '%s': data of %zu bytes from byte %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)",
                             r->path, name, t->nbytes, begin, r->size);
            else
                st = gm_fail(r->err, GEMMA_ERR_FORMAT,
                             "%s: tensor '%s': data ends at byte %" PRIu64 ", past the end of the file (%" PRIu64
                             " bytes; truncated?)", r->path, name, begin + t->nbytes, r->size);
        } else {
            t->data = r->base + start + t->offset;
            if (t->known) spans[n_spans++] = (span){t->offset, t->offset + t->nbytes, i};
        }
    }
    if (!st) {
        qsort(spans, n_spans, sizeof *spans, compare_spans);
        for (size_t i = 1; i < n_spans && !st; i++) {
            if (spans[i].begin < spans[i - 1].end) {
                char na[112], nb[112];
                st = gm_fail(r->err, GEMMA_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", r->path,
                             pname(g->tensors[spans[i - 1].index].name, na, sizeof na),
                             pname(g->tensors[spans[i].index].name, nb, sizeof nb));
            }
        }
    }
    free(spans);
    return st;
}

static gemma_status parse_tensors(gm_gguf *g, reader *r, uint64_t n) {
    g->tensors = calloc(n ? (size_t)n : 1, sizeof *g->tensors);
    if (!g->tensors) return gm_fail(r->err, GEMMA_ERR_NOMEM, "%s: out of memory", r->path);
    for (uint64_t i = 0; i < n; i++) {
        gm_gguf_tensor *t = &g->tensors[i];
        gemma_status st = read_entry_name(r, "tensor", i, "name", MAX_NAME_BYTES, "tensor", &t->name);
        if (st) return st;
        g->n_tensors = (size_t)i + 1;
        if ((st = parse_tensor_info(g, r, t))) return st;
    }
    gemma_status st = index_entries(r, g->tensors, sizeof *g->tensors, g->n_tensors, &g->tensor_slots,
                                    &g->n_tensor_slots, "tensor");
    return st ? st : place_tensors(g, r);
}

/* ------------------------------------------------------------ open/close */

gemma_status gm_gguf_open(gm_gguf *g, const char *path, gemma_error *err) {
    memset(g, 0, sizeof *g);
    gm_mapfile mf;
    gemma_status st = gm_mapfile_open(&mf, path, err);
    if (st) return st;
    return gm_gguf_open_mapped(g, mf, err);
}

gemma_status gm_gguf_open_mapped(gm_gguf *g, gm_mapfile mf, gemma_error *err) {
    memset(g, 0, sizeof *g);
    g->mf = mf;
    reader r = {.base = mf.data, .size = mf.size, .path = mf.path ? mf.path : "?", .err = err,
                .subarrays_left = MAX_SUBARRAYS};
    uint64_t n_tensors = 0, n_kvs = 0;
    gemma_status st = parse_header(g, &r, &n_tensors, &n_kvs);
    if (!st) st = parse_kvs(g, &r, n_kvs);
    if (!st) st = parse_alignment(g, &r);
    if (!st) st = parse_tensors(g, &r, n_tensors);
    if (st) {
        gm_gguf_close(g);
        return st;
    }
    gm_ok(err);
    return GEMMA_OK;
}

void gm_gguf_close(gm_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kvs; i++) {
        free(g->kvs[i].key);
        free_value(&g->kvs[i].value);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_slots);
    free(g->tensor_slots);
    gm_mapfile_close(&g->mf);
    memset(g, 0, sizeof *g);
}

const char *gm_gguf_path(const gm_gguf *g) { return g->mf.path ? g->mf.path : "?"; }

/* ------------------------------------------------------ scalar accessors */

/* An integer element as sign + magnitude, so u64 and i64 both fit. */
typedef struct {
    int neg;
    int64_t s;     /* when neg */
    uint64_t u;    /* when !neg */
} integer;

static int load_integer(gm_gguf_type t, const uint8_t *p, integer *out) {
    int size = value_size(t);
    uint64_t raw = size ? load_le(p, size) : 0;
    switch (t) {
    case GM_GGUF_U8: case GM_GGUF_U16: case GM_GGUF_U32: case GM_GGUF_U64:
        *out = (integer){0, 0, raw};
        return 1;
    case GM_GGUF_I8: case GM_GGUF_I16: case GM_GGUF_I32: case GM_GGUF_I64: {
        int64_t s = t == GM_GGUF_I8 ? (int8_t)raw : t == GM_GGUF_I16 ? (int16_t)raw
                  : t == GM_GGUF_I32 ? (int32_t)raw : (int64_t)raw;   /* two's complement, as stored */
        *out = s < 0 ? (integer){1, s, 0} : (integer){0, 0, (uint64_t)s};
        return 1;
    }
    default: return 0;
    }
}

static int load_f64(gm_gguf_type t, const uint8_t *p, double *out) {
    if (t == GM_GGUF_F32) {
        uint32_t b = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
        return 1;
    }
    if (t == GM_GGUF_F64) {
        uint64_t b = load_le(p, 8);
        memcpy(out, &b, 8);
        return 1;
    }
    integer v;
    if (!load_integer(t, p, &v)) return 0;
    *out = v.neg ? (double)v.s : (double)v.u;
    return 1;
}

static int integer_to_i64(integer v, int64_t *out) {
    if (v.neg) {
        *out = v.s;
        return 1;
    }
    if (v.u > (uint64_t)INT64_MAX) return 0;
    *out = (int64_t)v.u;
    return 1;
}

static int is_scalar(const gm_gguf_value *v) { return value_size(v->type) != 0; }

int gm_gguf_value_int(const gm_gguf_value *v, int64_t *out) {
    integer x;
    if (v->type == GM_GGUF_BOOL) {
        *out = v->data[0];
        return 1;
    }
    return is_scalar(v) && load_integer(v->type, v->data, &x) && integer_to_i64(x, out);
}

int gm_gguf_value_u64(const gm_gguf_value *v, uint64_t *out) {
    integer x;
    if (!is_scalar(v) || !load_integer(v->type, v->data, &x) || x.neg) return 0;
    *out = x.u;
    return 1;
}

int gm_gguf_value_f64(const gm_gguf_value *v, double *out) { return is_scalar(v) && load_f64(v->type, v->data, out); }

/* ---------------------------------------------------------------- getters */

static gemma_status lookup(const gm_gguf *g, const char *key, const gm_gguf_kv **kv, gemma_error *err) {
    *kv = gm_gguf_find_kv(g, key);
    if (*kv) return GEMMA_OK;
    return gm_fail(err, GEMMA_ERR_FORMAT, "%s: key '%s' is missing", gm_gguf_path(g), key);
}

static gemma_status wrong_type(const gm_gguf *g, const gm_gguf_kv *kv, const char *expected, gemma_error *err) {
    return gm_fail(err, GEMMA_ERR_FORMAT, "%s: key '%s' has type %s, expected %s", gm_gguf_path(g), kv->key,
                   gm_gguf_type_name(kv->value.type), expected);
}

/* An integer key whose value lies in [lo, hi]. */
static gemma_status get_integer(const gm_gguf *g, const char *key, int64_t lo, uint64_t hi, const char *target,
                                integer *out, gemma_error *err) {
    const gm_gguf_kv *kv;
    gemma_status st = lookup(g, key, &kv, err);
    if (st) return st;
    if (!is_scalar(&kv->value) || !load_integer(kv->value.type, kv->value.data, out))
        return wrong_type(g, kv, "an integer", err);
    if (out->neg ? out->s < lo : out->u > hi) {
        char num[32];
        if (out->neg) snprintf(num, sizeof num, "%" PRId64, out->s);
        else snprintf(num, sizeof num, "%" PRIu64, out->u);
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: key '%s' = %s does not fit in %s", gm_gguf_path(g), key, num, target);
    }
    return GEMMA_OK;
}

gemma_status gm_gguf_get_u32(const gm_gguf *g, const char *key, uint32_t *out, gemma_error *err) {
    integer v;
    gemma_status st = get_integer(g, key, 0, UINT32_MAX, "UINT32", &v, err);
    if (!st) *out = (uint32_t)v.u;
    return st;
}

gemma_status gm_gguf_get_i32(const gm_gguf *g, const char *key, int32_t *out, gemma_error *err) {
    integer v;
    gemma_status st = get_integer(g, key, INT32_MIN, INT32_MAX, "INT32", &v, err);
    if (!st) *out = v.neg ? (int32_t)v.s : (int32_t)v.u;
    return st;
}

gemma_status gm_gguf_get_u64(const gm_gguf *g, const char *key, uint64_t *out, gemma_error *err) {
    integer v;
    gemma_status st = get_integer(g, key, 0, UINT64_MAX, "UINT64", &v, err);
    if (!st) *out = v.u;
    return st;
}

gemma_status gm_gguf_get_i64(const gm_gguf *g, const char *key, int64_t *out, gemma_error *err) {
    integer v;
    gemma_status st = get_integer(g, key, INT64_MIN, INT64_MAX, "INT64", &v, err);
    if (!st) *out = v.neg ? v.s : (int64_t)v.u;
    return st;
}

gemma_status gm_gguf_get_f32(const gm_gguf *g, const char *key, float *out, gemma_error *err) {
    const gm_gguf_kv *kv;
    gemma_status st = lookup(g, key, &kv, err);
    if (st) return st;
    if (kv->value.type == GM_GGUF_F32) {
        uint32_t b = (uint32_t)load_le(kv->value.data, 4);
        memcpy(out, &b, 4);
        return GEMMA_OK;
    }
    double d;
    if (kv->value.type != GM_GGUF_F64 || !load_f64(GM_GGUF_F64, kv->value.data, &d))
        return wrong_type(g, kv, "FLOAT32", err);
    *out = (float)d;
    return GEMMA_OK;
}

gemma_status gm_gguf_get_bool(const gm_gguf *g, const char *key, int *out, gemma_error *err) {
    const gm_gguf_kv *kv;
    gemma_status st = lookup(g, key, &kv, err);
    if (st) return st;
    if (kv->value.type != GM_GGUF_BOOL) return wrong_type(g, kv, "BOOL", err);
    *out = kv->value.data[0] != 0;
    return GEMMA_OK;
}

gemma_status gm_gguf_get_str(const gm_gguf *g, const char *key, const char **out, size_t *len, gemma_error *err) {
    const gm_gguf_kv *kv;
    gemma_status st = lookup(g, key, &kv, err);
    if (st) return st;
    if (kv->value.type != GM_GGUF_STRING) return wrong_type(g, kv, "STRING", err);
    *out = kv->value.str;
    if (len) *len = (size_t)kv->value.count;
    return GEMMA_OK;
}

gemma_status gm_gguf_get_arr(const gm_gguf *g, const char *key, gm_gguf_type elem, const gm_gguf_value **out,
                             gemma_error *err) {
    const gm_gguf_kv *kv;
    gemma_status st = lookup(g, key, &kv, err);
    if (st) return st;
    if (kv->value.type != GM_GGUF_ARRAY) return wrong_type(g, kv, "ARRAY", err);
    if (elem != GM_GGUF_TYPE_COUNT && kv->value.elem_type != elem)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: key '%s' is an array of %s, expected an array of %s",
                       gm_gguf_path(g), key, gm_gguf_type_name(kv->value.elem_type), gm_gguf_type_name(elem));
    *out = &kv->value;
    return GEMMA_OK;
}

/* ------------------------------------------------------- array elements */

static const uint8_t *fixed_elem(const gm_gguf_value *a, uint64_t i) {
    int size = value_size(a->elem_type);
    if (a->type != GM_GGUF_ARRAY || !size || i >= a->count) return NULL;
    return a->data + i * (uint64_t)size;
}

const char *gm_gguf_arr_str(const gm_gguf_value *a, uint64_t i, size_t *len) {
    if (a->type != GM_GGUF_ARRAY || a->elem_type != GM_GGUF_STRING || i >= a->count) return NULL;
    const uint8_t *p = a->data + a->str_offsets[i];
    if (len) *len = (size_t)load_le(p, 8);
    return (const char *)p + 8;
}

const gm_gguf_value *gm_gguf_arr_sub(const gm_gguf_value *a, uint64_t i) {
    if (a->type != GM_GGUF_ARRAY || a->elem_type != GM_GGUF_ARRAY || i >= a->count) return NULL;
    return &a->items[i];
}

int gm_gguf_arr_int(const gm_gguf_value *a, uint64_t i, int64_t *out) {
    const uint8_t *p = fixed_elem(a, i);
    integer v;
    if (!p) return 0;
    if (a->elem_type == GM_GGUF_BOOL) {
        *out = p[0];
        return 1;
    }
    return load_integer(a->elem_type, p, &v) && integer_to_i64(v, out);
}

int gm_gguf_arr_u64(const gm_gguf_value *a, uint64_t i, uint64_t *out) {
    const uint8_t *p = fixed_elem(a, i);
    integer v;
    if (!p || !load_integer(a->elem_type, p, &v) || v.neg) return 0;
    *out = v.u;
    return 1;
}

int gm_gguf_arr_f64(const gm_gguf_value *a, uint64_t i, double *out) {
    const uint8_t *p = fixed_elem(a, i);
    return p && a->elem_type != GM_GGUF_BOOL && load_f64(a->elem_type, p, out);
}

/* ---------------------------------------------------------------- tensors */

int64_t gm_gguf_tensor_numel(const gm_gguf_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

int64_t gm_gguf_tensor_rows(const gm_gguf_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

gemma_status gm_gguf_tensor_check(const gm_gguf *g, const gm_gguf_tensor *t, gemma_error *err) {
    char nb[112];
    const char *name = pname(t->name, nb, sizeof nb);
    if (!t->known)
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s': ggml type %" PRIu32 " is unknown", gm_gguf_path(g),
                       name, t->type);
    if (!gm_ggml_type_supported(t->type))
        return gm_fail(err, GEMMA_ERR_UNSUPPORTED, "%s: tensor '%s': ggml type %s is not supported (supported: %s)",
                       gm_gguf_path(g), name, gm_ggml_type_name(t->type), gm_ggml_supported_list());
    return GEMMA_OK;
}

gm_tensor gm_gguf_tensor_view(const gm_gguf_tensor *t, const char *name, int file) {
    gm_tensor v = {.name = (char *)name, .dtype = GM_DT_UNKNOWN, .ndim = t->n_dims, .data = t->data,
                   .nbytes = t->nbytes, .file = file, .ggml_type = -1};
    for (int d = 0; d < t->n_dims; d++) v.shape[d] = t->ne[t->n_dims - 1 - d];
    switch (t->type) {
    case GM_GGML_F32: v.dtype = GM_DT_F32; break;
    case GM_GGML_F16: v.dtype = GM_DT_F16; break;
    case GM_GGML_BF16: v.dtype = GM_DT_BF16; break;
    default: v.ggml_type = (int)t->type; break;
    }
    snprintf(v.dtype_name, sizeof v.dtype_name, "%s", gm_ggml_type_name(t->type));
    return v;
}

int gm_gguf_file_has_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4];
    int yes = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}
