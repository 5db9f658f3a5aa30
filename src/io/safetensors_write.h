/* safetensors_write.h - writing safetensors files the way MLX writes them.
 *
 * A converter streams tensors far larger than the memory it may use, so the
 * writer is planned first: the caller lists every tensor (name, dtype,
 * shape) up front, the header ({"__metadata__": {"format": "mlx"}, name:
 * {dtype, shape, data_offsets}}, padded with spaces to 8 bytes) is written at
 * once, the data section is laid out contiguously in list order, and tensor
 * bytes are then written in any order and in pieces at their final offsets.
 * Finishing checks that every byte of every tensor was written.  The result
 * is read back by io/safetensors.c, mx.load and the safetensors library. */
#ifndef GM_SAFETENSORS_WRITE_H
#define GM_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/strbuf.h"
#include "gemma.h"
#include "io/safetensors.h"

typedef struct {
    const char *name;
    gm_dtype dtype;          /* one safetensors can name: F32 ... BOOL */
    int ndim;
    int64_t shape[GM_MAX_DIMS];
} gm_st_entry;

typedef struct {
    int fd;
    char *path;
    size_t n;
    uint64_t data_start;     /* file offset of the data section */
    uint64_t *begin, *size, *written;
    uint64_t file_size;
} gm_st_writer;

/* Bytes of a tensor of this dtype and shape (UINT64_MAX for an unnamed dtype or absurd shape). */
uint64_t gm_st_entry_bytes(const gm_st_entry *e);

/* Create `path` (which must not exist) with the header for entries[0..n). */
gemma_status gm_st_create(gm_st_writer *w, const char *path, const gm_st_entry *entries, size_t n,
                          gemma_error *err);
/* Write len bytes of tensor i starting at byte `at` of that tensor. */
gemma_status gm_st_write(gm_st_writer *w, size_t i, uint64_t at, const void *data, size_t len, gemma_error *err);
/* Check that every tensor is complete and close the file (kept on success, removed on failure). */
gemma_status gm_st_finish(gm_st_writer *w, gemma_error *err);
/* Close and remove the file (after a failure elsewhere); safe on a zeroed or finished writer. */
void gm_st_abort(gm_st_writer *w);

/* Append s as a JSON string literal (quotes, escapes) to b. */
void gm_json_append_string(gm_strbuf *b, const char *s);

#endif
