/* safetensors_write.c - see safetensors_write.h. */
#include "io/safetensors_write.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const dtype_names[GM_DT_COUNT] = {
    [GM_DT_F32] = "F32", [GM_DT_F16] = "F16", [GM_DT_BF16] = "BF16", [GM_DT_U32] = "U32",
    [GM_DT_I32] = "I32", [GM_DT_U8] = "U8",   [GM_DT_I8] = "I8",     [GM_DT_F64] = "F64",
    [GM_DT_I64] = "I64", [GM_DT_U16] = "U16", [GM_DT_I16] = "I16",   [GM_DT_BOOL] = "BOOL",
};

void gm_json_append_string(gm_strbuf *b, const char *s) {
    gm_strbuf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            gm_strbuf_append(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            gm_strbuf_append(b, esc, 6);
        } else {
            gm_strbuf_append(b, (const char *)&c, 1);
        }
    }
    gm_strbuf_append(b, "\"", 1);
}

uint64_t gm_st_entry_bytes(const gm_st_entry *e) {
    if (e->dtype < 0 || e->dtype >= GM_DT_COUNT || e->ndim < 0 || e->ndim > GM_MAX_DIMS) return UINT64_MAX;
    uint64_t n = (uint64_t)gm_dtype_size(e->dtype);
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] < 0 || e->shape[i] > (INT64_C(1) << 40)) return UINT64_MAX;
        uint64_t d = (uint64_t)e->shape[i];
        if (d && n > (UINT64_MAX >> 1) / d) return UINT64_MAX;
        n *= d;
    }
    return n;
}

/* The writer owns a file iff path is set (fd may already be closed). */
static void writer_release(gm_st_writer *w, int remove_file) {
    if (w->path && w->fd >= 0) close(w->fd);
    if (w->path && remove_file) unlink(w->path);
    free(w->path);
    free(w->begin);
    free(w->size);
    free(w->written);
    memset(w, 0, sizeof *w);
    w->fd = -1;
}

void gm_st_abort(gm_st_writer *w) {
    if (w && w->path) writer_release(w, 1);
}

static gemma_status write_all(gm_st_writer *w, uint64_t off, const void *data, size_t len, gemma_error *err) {
    const char *p = data;
    while (len) {
        ssize_t k = pwrite(w->fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return gm_fail(err, GEMMA_ERR_IO, "%s: write failed: %s", w->path, k < 0 ? strerror(errno) : "no progress");
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return GEMMA_OK;
}

gemma_status gm_st_create(gm_st_writer *w, const char *path, const gm_st_entry *entries, size_t n,
                          gemma_error *err) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    gemma_status st = GEMMA_OK;
    gm_strbuf h;
    gm_strbuf_init(&h);
    w->path = strdup(path);
    w->begin = calloc(n ? n : 1, sizeof *w->begin);
    w->size = calloc(n ? n : 1, sizeof *w->size);
    w->written = calloc(n ? n : 1, sizeof *w->written);
    w->n = n;
    if (!w->path || !w->begin || !w->size || !w->written) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    gm_strbuf_puts(&h, "{\"__metadata__\":{\"format\":\"mlx\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const gm_st_entry *e = &entries[i];
        uint64_t bytes = gm_st_entry_bytes(e);
        if (bytes == UINT64_MAX || off > UINT64_MAX / 2 - bytes) {
            st = gm_fail(err, GEMMA_ERR_INTERNAL, "%s: tensor '%s': dtype or shape cannot be written", path, e->name);
            goto fail;
        }
        char num[96];
        gm_strbuf_puts(&h, ",");
        gm_json_append_string(&h, e->name);
        gm_strbuf_puts(&h, ":{\"dtype\":\"");
        gm_strbuf_puts(&h, dtype_names[e->dtype]);
        gm_strbuf_puts(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", e->shape[d]);
            gm_strbuf_puts(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        gm_strbuf_puts(&h, num);
        w->begin[i] = off;
        w->size[i] = bytes;
        off += bytes;
    }
    gm_strbuf_puts(&h, "}");
    while (h.ok && h.len % 8) gm_strbuf_puts(&h, " ");
    if (!h.ok) {
        st = gm_fail(err, GEMMA_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    w->data_start = 8 + (uint64_t)h.len;
    w->file_size = w->data_start + off;
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (w->fd < 0) {
        st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(w->path);   /* not ours: never remove it */
        w->path = NULL;
        goto fail;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if ((st = write_all(w, 0, len8, 8, err)) || (st = write_all(w, 8, h.data, h.len, err))) goto fail;
    if (ftruncate(w->fd, (off_t)w->file_size) != 0) {
        st = gm_fail(err, GEMMA_ERR_IO, "%s: cannot extend to %" PRIu64 " bytes: %s", path, w->file_size,
                     strerror(errno));
        goto fail;
    }
    gm_strbuf_free(&h);
    return GEMMA_OK;
fail:
    gm_strbuf_free(&h);
    writer_release(w, 1);
    return st;
}

gemma_status gm_st_write(gm_st_writer *w, size_t i, uint64_t at, const void *data, size_t len, gemma_error *err) {
    if (i >= w->n || at > w->size[i] || len > w->size[i] - at)
        return gm_fail(err, GEMMA_ERR_INTERNAL, "%s: write of %zu bytes at %" PRIu64 " is outside tensor %zu",
                       w->path, len, at, i);
    gemma_status st = write_all(w, w->data_start + w->begin[i] + at, data, len, err);
    if (!st) w->written[i] += len;
    return st;
}

gemma_status gm_st_finish(gm_st_writer *w, gemma_error *err) {
    gemma_status st = GEMMA_OK;
    for (size_t i = 0; i < w->n && !st; i++)
        if (w->written[i] != w->size[i])
            st = gm_fail(err, GEMMA_ERR_INTERNAL, "%s: tensor %zu has %" PRIu64 " of %" PRIu64 " bytes written", w->path,
                         i, w->written[i], w->size[i]);
    if (close(w->fd) != 0 && !st) st = gm_fail(err, GEMMA_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    w->fd = -1;
    writer_release(w, st != GEMMA_OK);
    return st;
}
