/* safetensors.c - see safetensors.h. */
#include "io/safetensors.h"
#include "core/error.h"
#include "core/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A header is JSON metadata; real ones are < 10 MB even for thousands of tensors. */
#define MAX_HEADER_BYTES (100u << 20)

/* ------------------------------------------------------------------ names */

static const struct {
    const char *name;
    gm_dtype dtype;
} dtype_names[] = {
    {"F32", GM_DT_F32}, {"F16", GM_DT_F16}, {"BF16", GM_DT_BF16}, {"U32", GM_DT_U32},
    {"I32", GM_DT_I32}, {"U8", GM_DT_U8},   {"I8", GM_DT_I8},     {"F64", GM_DT_F64},
    {"I64", GM_DT_I64}, {"U16", GM_DT_U16}, {"I16", GM_DT_I16},   {"BOOL", GM_DT_BOOL},
};

static gm_dtype parse_dtype(const char *s) {
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(s, dtype_names[i].name) == 0) return dtype_names[i].dtype;
    return GM_DT_UNKNOWN;
}

int64_t gm_tensor_numel(const gm_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const char *gm_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, n - used, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* ------------------------------------------------------------------ index */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int rebuild_index(gm_tensor_set *ts, size_t n_slots) {
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < ts->n_tensors; i++) {
        size_t j = hash_name(ts->tensors[i].name) & (n_slots - 1);
        while (slots[j]) j = (j + 1) & (n_slots - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(ts->slots);
    ts->slots = slots;
    ts->n_slots = n_slots;
    return 1;
}

const gm_tensor *gm_tensors_find(const gm_tensor_set *ts, const char *name) {
    if (!ts->n_slots) return NULL;
    size_t j = hash_name(name) & (ts->n_slots - 1);
    while (ts->slots[j]) {
        const gm_tensor *t = &ts->tensors[ts->slots[j] - 1];
        if (strcmp(t->name, name) == 0) return t;
        j = (j + 1) & (ts->n_slots - 1);
    }
    return NULL;
}

const char *gm_tensors_file_of(const gm_tensor_set *ts, const gm_tensor *t) {
    return (t && t->file >= 0 && t->file < ts->n_files) ? ts->files[t->file].path : "?";
}

/* ---------------------------------------------------------------- parsing */

typedef struct {
    uint64_t begin, end;
    const char *name;
} span;

static int compare_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static gemma_status parse_entry(const char *path, const gm_json *e, uint64_t data_size, gm_tensor *t,
                                gemma_error *err) {
    const char *name = e->key;
    if (!gm_json_is(e, GM_JSON_OBJECT))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const char *dt = gm_json_string(gm_json_get(e, "dtype"));
    if (!dt) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    t->dtype = parse_dtype(dt);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt);

    const gm_json *shape = gm_json_get(e, "shape");
    if (!gm_json_is(shape, GM_JSON_ARRAY))
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    if (gm_json_count(shape) > GM_MAX_DIMS)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name,
                       gm_json_count(shape), GM_MAX_DIMS);
    t->ndim = (int)gm_json_count(shape);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d;
        if (!gm_json_int(gm_json_at(shape, (size_t)i), &d) || d < 0 || d > (INT64_C(1) << 40))
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a valid dimension", path, name, i);
        t->shape[i] = d;
        if (d != 0 && numel > UINT64_MAX / (uint64_t)d)
            return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
        numel *= (uint64_t)d;
    }

    const gm_json *off = gm_json_get(e, "data_offsets");
    int64_t b, en;
    if (!gm_json_is(off, GM_JSON_ARRAY) || gm_json_count(off) != 2 || !gm_json_int(gm_json_at(off, 0), &b) ||
        !gm_json_int(gm_json_at(off, 1), &en) || b < 0 || en < b)
        return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                       path, name);
    if ((uint64_t)en > data_size)
        return gm_fail(err, GEMMA_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets end %" PRId64 " is past the end of the data (%" PRIu64
                       " bytes; file truncated?)",
                       path, name, en, data_size);
    t->nbytes = (size_t)(en - b);
    int esize = gm_dtype_size(t->dtype);
    if (esize) {
        if (numel > UINT64_MAX / (uint64_t)esize || numel * (uint64_t)esize != (uint64_t)(en - b)) {
            char sb[96];
            return gm_fail(err, GEMMA_ERR_FORMAT,
                           "%s: tensor '%s': %s %s needs %" PRIu64 " bytes but data_offsets span %" PRId64, path,
                           name, dt, gm_shape_str(t->shape, t->ndim, sb, sizeof sb), numel * (uint64_t)esize,
                           en - b);
        }
    }
    t->data = (const uint8_t *)(uintptr_t)b;   /* relative for now; made absolute by the caller */
    return GEMMA_OK;
}

static gemma_status grow_tensors(gm_tensor_set *ts, size_t extra, const char *path, gemma_error *err) {
    if (ts->n_tensors + extra <= ts->cap_tensors) return GEMMA_OK;
    size_t cap = ts->cap_tensors ? ts->cap_tensors : 64;
    while (cap < ts->n_tensors + extra) cap *= 2;
    gm_tensor *nt = realloc(ts->tensors, cap * sizeof *nt);
    if (!nt) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    ts->tensors = nt;
    ts->cap_tensors = cap;
    return GEMMA_OK;
}

gemma_status gm_tensors_add_file(gm_tensor_set *ts, const char *path, gemma_error *err) {
    gm_mapfile mf;
    gemma_status st = gm_mapfile_open(&mf, path, err);
    if (st) return st;
    return gm_tensors_add_mapped(ts, mf, err);
}

/* Fail with a message about mf, then release it (the message needs its path). */
static gemma_status fail_and_close(gm_mapfile *mf, gemma_error *err, gemma_status code, const char *what) {
    gm_fail(err, code, "%s: %s", mf->path, what);
    gm_mapfile_close(mf);
    return code;
}

gemma_status gm_tensors_add_mapped(gm_tensor_set *ts, gm_mapfile mf, gemma_error *err) {
    const char *path = mf.path;
    gemma_status st;
    char what[256];
    if (mf.size < 8) {
        snprintf(what, sizeof what, "too short for a safetensors file (%zu bytes)", mf.size);
        return fail_and_close(&mf, err, GEMMA_ERR_FORMAT, what);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | mf.data[i];
    if (hlen > MAX_HEADER_BYTES || hlen > mf.size - 8) {
        snprintf(what, sizeof what,
                 "header length %" PRIu64 " is past the end of the file (%zu bytes) or too large; "
                 "not a safetensors file or truncated",
                 hlen, mf.size);
        return fail_and_close(&mf, err, GEMMA_ERR_FORMAT, what);
    }
    char jerr[160];
    gm_json_limits lim = {.max_bytes = MAX_HEADER_BYTES, .max_depth = 8};
    gm_json_doc *doc = gm_json_parse((const char *)mf.data + 8, (size_t)hlen, &lim, jerr, sizeof jerr);
    if (!doc) {
        snprintf(what, sizeof what, "header is not valid JSON: %s", jerr);
        return fail_and_close(&mf, err, GEMMA_ERR_FORMAT, what);
    }
    const gm_json *root = gm_json_root(doc);
    uint64_t data_size = mf.size - 8 - hlen;
    const uint8_t *data_base = mf.data + 8 + hlen;
    size_t n = gm_json_count(root);
    span *spans = NULL;
    size_t first = ts->n_tensors, n_spans = 0;

    if (!gm_json_is(root, GM_JSON_OBJECT)) {
        st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    if ((st = grow_tensors(ts, n, path, err))) goto done;
    spans = calloc(n ? n : 1, sizeof *spans);
    if (!spans) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const gm_json *e = gm_json_at(root, i);
        if (strcmp(e->key, "__metadata__") == 0) continue;
        if (strlen(e->key) != e->key_len || e->key_len == 0) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: a tensor name is empty or contains NUL", path);
            goto done;
        }
        gm_tensor t = {.ggml_type = -1};
        if ((st = parse_entry(path, e, data_size, &t, err))) goto done;
        uint64_t rel = (uint64_t)(uintptr_t)t.data;
        t.data = data_base + rel;
        if (gm_tensors_find(ts, e->key)) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' appears twice", path, e->key);
            goto done;
        }
        t.name = strdup(e->key);
        if (!t.name) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        t.file = ts->n_files;
        ts->tensors[ts->n_tensors++] = t;
        if (t.nbytes) spans[n_spans++] = (span){rel, rel + t.nbytes, ts->tensors[ts->n_tensors - 1].name};
        /* keep the index at most half full */
        if (ts->n_tensors * 2 > ts->n_slots && !rebuild_index(ts, ts->n_slots ? ts->n_slots * 2 : 256)) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        {   /* insert the new tensor into the index */
            size_t j = hash_name(t.name) & (ts->n_slots - 1);
            while (ts->slots[j] && ts->slots[j] != ts->n_tensors) j = (j + 1) & (ts->n_slots - 1);
            ts->slots[j] = (uint32_t)ts->n_tensors;
        }
    }
    qsort(spans, n_spans, sizeof *spans, compare_spans);
    for (size_t i = 1; i < n_spans; i++) {
        if (spans[i].begin < spans[i - 1].end) {
            st = gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", path,
                         spans[i - 1].name, spans[i].name);
            goto done;
        }
    }
    {
        gm_mapfile *nf = realloc(ts->files, (size_t)(ts->n_files + 1) * sizeof *nf);
        if (!nf) {
            st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        ts->files = nf;
        ts->files[ts->n_files++] = mf;
    }
done:
    free(spans);
    gm_json_free(doc);
    if (st) {
        /* roll back this file's tensors */
        for (size_t i = first; i < ts->n_tensors; i++) free(ts->tensors[i].name);
        ts->n_tensors = first;
        if (ts->n_slots) rebuild_index(ts, ts->n_slots);
        gm_mapfile_close(&mf);
    }
    return st;
}

int gm_tensors_add_source(gm_tensor_set *ts, gm_mapfile mf) {
    gm_mapfile *nf = realloc(ts->files, (size_t)(ts->n_files + 1) * sizeof *nf);
    if (!nf) {
        gm_mapfile_close(&mf);
        return -1;
    }
    ts->files = nf;
    ts->files[ts->n_files] = mf;
    return ts->n_files++;
}

gemma_status gm_tensors_add(gm_tensor_set *ts, const gm_tensor *t, gemma_error *err) {
    const char *path = gm_tensors_file_of(ts, t);
    if (gm_tensors_find(ts, t->name)) return gm_fail(err, GEMMA_ERR_FORMAT, "%s: tensor '%s' appears twice", path, t->name);
    gemma_status st = grow_tensors(ts, 1, path, err);
    if (st) return st;
    gm_tensor c = *t;
    if (!(c.name = strdup(t->name))) return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    ts->tensors[ts->n_tensors++] = c;
    if (!rebuild_index(ts, ts->n_tensors * 2 > ts->n_slots ? (ts->n_slots ? ts->n_slots * 2 : 256) : ts->n_slots))
        return gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
    return GEMMA_OK;
}

void gm_tensors_free(gm_tensor_set *ts) {
    if (!ts) return;
    for (size_t i = 0; i < ts->n_tensors; i++) free(ts->tensors[i].name);
    for (int i = 0; i < ts->n_files; i++) gm_mapfile_close(&ts->files[i]);
    free(ts->tensors);
    free(ts->files);
    free(ts->slots);
    memset(ts, 0, sizeof *ts);
}
