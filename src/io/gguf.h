/* gguf.h - memory-mapped GGUF files (llama.cpp's checkpoint format): metadata and tensor index.
 *
 * Format (v2 and v3, little-endian): "GGUF", u32 version, u64 tensor count,
 * u64 metadata count; the metadata key/value pairs (u64-length strings, typed
 * values, arrays that may nest); the tensor infos (name, n_dims, ne[n_dims],
 * ggml type, offset); padding to general.alignment (default 32); the data.
 * Every count, length and offset is checked against the file before it is
 * used, so a corrupt or hostile file is a one-line error naming the file and
 * the key or tensor, never a crash or a huge allocation.  Tensor data stay in
 * the map; nothing is copied.  Values in the map are little-endian and may be
 * unaligned: read them with the accessors below (byte loads), not by casting.
 *
 * Shapes are in ggml order: ne[0] is the row length (the fastest-varying
 * dimension), so a PyTorch [rows, cols] weight has ne = {cols, rows}. */
#ifndef GM_GGUF_H
#define GM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/mapfile.h"
#include "gemma.h"
#include "io/safetensors.h"

#define GM_GGUF_MAX_DIMS 4
#define GM_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, ids as stored. */
typedef enum {
    GM_GGUF_U8 = 0,
    GM_GGUF_I8 = 1,
    GM_GGUF_U16 = 2,
    GM_GGUF_I16 = 3,
    GM_GGUF_U32 = 4,
    GM_GGUF_I32 = 5,
    GM_GGUF_F32 = 6,
    GM_GGUF_BOOL = 7,
    GM_GGUF_STRING = 8,
    GM_GGUF_ARRAY = 9,
    GM_GGUF_U64 = 10,
    GM_GGUF_I64 = 11,
    GM_GGUF_F64 = 12,
    GM_GGUF_TYPE_COUNT
} gm_gguf_type;

/* One metadata value.  Scalars, strings and arrays of fixed-size elements
 * point into the map; arrays of strings keep an offset table, arrays of
 * arrays their parsed sub-arrays. */
typedef struct gm_gguf_value {
    gm_gguf_type type;
    gm_gguf_type elem_type;           /* ARRAY: the element type */
    uint64_t count;                   /* ARRAY: elements; STRING: bytes */
    const uint8_t *data;              /* scalar bytes, string bytes, or the array's first element */
    char *str;                        /* STRING (not inside arrays): NUL-terminated copy */
    uint64_t *str_offsets;            /* ARRAY of STRING: element i's length prefix is at data + str_offsets[i] */
    struct gm_gguf_value *items;      /* ARRAY of ARRAY: `count` sub-arrays */
} gm_gguf_value;

typedef struct {
    char *key;                        /* NUL-terminated (keys with NUL bytes are rejected) */
    gm_gguf_value value;
} gm_gguf_kv;

typedef struct {
    char *name;
    uint32_t type;                    /* ggml type id as stored (see quant/ggml_blocks.h) */
    int known;                        /* 0: type id unknown, nbytes unknown: loading it is an error */
    int n_dims;
    int64_t ne[GM_GGUF_MAX_DIMS];     /* unused dimensions are 1 */
    uint64_t offset;                  /* from the start of the data section */
    const uint8_t *data;              /* into the map */
    size_t nbytes;                    /* 0 when !known */
} gm_gguf_tensor;

typedef struct gm_gguf_s {
    gm_mapfile mf;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;             /* file offset of the data section */
    gm_gguf_kv *kvs;
    size_t n_kvs;
    gm_gguf_tensor *tensors;          /* in file order */
    size_t n_tensors;
    uint32_t *kv_slots, *tensor_slots;  /* open-addressing indexes: entry index + 1, 0 = empty */
    size_t n_kv_slots, n_tensor_slots;
} gm_gguf;

/* Map and parse `path`.  On failure g is left empty (gm_gguf_close is still safe). */
gemma_status gm_gguf_open(gm_gguf *g, const char *path, gemma_error *err);
/* Same for a file already in memory (tests, fuzzing); g takes ownership of mf, also on failure. */
gemma_status gm_gguf_open_mapped(gm_gguf *g, gm_mapfile mf, gemma_error *err);
void gm_gguf_close(gm_gguf *g);
/* 1 if the file at `path` starts with the GGUF magic (whatever its name). */
int gm_gguf_file_has_magic(const char *path);
const char *gm_gguf_path(const gm_gguf *g);

/* ------------------------------------------------------------- metadata */

const gm_gguf_kv *gm_gguf_find_kv(const gm_gguf *g, const char *key);   /* NULL if absent */
const char *gm_gguf_type_name(gm_gguf_type t);                           /* "UINT32", "ARRAY", ... */

/* Typed getters: GEMMA_ERR_FORMAT naming the file and key when the key is
 * missing, has another type, or its value does not fit.  Integer getters
 * accept any integer type whose value fits the target (converters disagree on
 * u32 vs i32); gm_gguf_get_f32 accepts F32 and F64; the others are exact. */
gemma_status gm_gguf_get_u32(const gm_gguf *g, const char *key, uint32_t *out, gemma_error *err);
gemma_status gm_gguf_get_i32(const gm_gguf *g, const char *key, int32_t *out, gemma_error *err);
gemma_status gm_gguf_get_u64(const gm_gguf *g, const char *key, uint64_t *out, gemma_error *err);
gemma_status gm_gguf_get_i64(const gm_gguf *g, const char *key, int64_t *out, gemma_error *err);
gemma_status gm_gguf_get_f32(const gm_gguf *g, const char *key, float *out, gemma_error *err);
gemma_status gm_gguf_get_bool(const gm_gguf *g, const char *key, int *out, gemma_error *err);
/* NUL-terminated copy owned by g; *len (if not NULL) is the byte length (the string may hold NULs). */
gemma_status gm_gguf_get_str(const gm_gguf *g, const char *key, const char **out, size_t *len, gemma_error *err);
/* An array whose elements have type elem (GM_GGUF_TYPE_COUNT: any). */
gemma_status gm_gguf_get_arr(const gm_gguf *g, const char *key, gm_gguf_type elem, const gm_gguf_value **out,
                             gemma_error *err);

/* Array elements (a must be an ARRAY value, i < a->count; no checks beyond
 * that the element type fits, which returns 0 / NULL otherwise). */
const char *gm_gguf_arr_str(const gm_gguf_value *a, uint64_t i, size_t *len);   /* not NUL-terminated */
const gm_gguf_value *gm_gguf_arr_sub(const gm_gguf_value *a, uint64_t i);       /* ARRAY of ARRAY */
/* Integer and bool elements as int64 (u64 above INT64_MAX fails). */
int gm_gguf_arr_int(const gm_gguf_value *a, uint64_t i, int64_t *out);
/* u64 elements (and non-negative other integers). */
int gm_gguf_arr_u64(const gm_gguf_value *a, uint64_t i, uint64_t *out);
/* Float elements (F32 exact, F64 as double) and integers converted. */
int gm_gguf_arr_f64(const gm_gguf_value *a, uint64_t i, double *out);

/* Scalar values of any kv, for generic code (printing, `gemma info`). */
int gm_gguf_value_int(const gm_gguf_value *v, int64_t *out);
int gm_gguf_value_u64(const gm_gguf_value *v, uint64_t *out);
int gm_gguf_value_f64(const gm_gguf_value *v, double *out);

/* --------------------------------------------------------------- tensors */

const gm_gguf_tensor *gm_gguf_find_tensor(const gm_gguf *g, const char *name);   /* NULL if absent */
int64_t gm_gguf_tensor_numel(const gm_gguf_tensor *t);
int64_t gm_gguf_tensor_rows(const gm_gguf_tensor *t);   /* ne[1] * ne[2] * ne[3] */
/* OK if this code can compute with t (gm_ggml_type_supported), else an error
 * naming the file, the tensor and its type. */
gemma_status gm_gguf_tensor_check(const gm_gguf *g, const gm_gguf_tensor *t, gemma_error *err);
/* t as a gm_tensor view for a gm_tensor_set (gm_tensors_add copies the name):
 * shape in PyTorch order (ne reversed); F32/F16/BF16 as plain dtypes with
 * ggml_type -1, block types as dtype GM_DT_UNKNOWN with ggml_type = the id;
 * dtype_name = the ggml type name either way; data stays in the map. */
gm_tensor gm_gguf_tensor_view(const gm_gguf_tensor *t, const char *name, int file);

#endif
